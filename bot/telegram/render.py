"""Engine output as Telegram Bot API calls: inline keyboards for choices, text for the rest.

Button data is `op:seq:key` — the engine's short choice id and the prompt's sequence
number — so it stays far below Telegram's 64-byte limit whatever the labels say, and a press
on an old prompt is recognised as such by the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, Sequence

from bot.chat.events import (
    BACK, CHOOSE, CONFIRM_STOP, DONE, SKIP, TICK, UNTICK,
    AskPhone, Call, Capabilities, ConfirmStop, Document, Leave, Notice, Outgoing, Press,
)
from bot.text import one_line, plain_text, split_text
from surveys.engine import Ask, PromptKind, Say, Tone
from surveys.markup import render_html
from surveys.model import LabelMedia
from surveys.messages import say, ui_language

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
#: kind of a label's media → (Bot API method, its file field)
_MEDIA_METHODS = {"image": ("sendPhoto", "photo"), "audio": ("sendAudio", "audio"), "video": ("sendVideo", "video")}
CALLBACK_ANSWER_LIMIT = 200
_ONE_ROW_LABEL = 14


@dataclass(frozen=True)
class Pressed:
    """The message whose button was pressed: its id, its keyboard and the button's data."""

    message_id: int
    markup: dict | None
    data: str


def button_data(op: str, seq: int, key: str = "") -> str:
    return f"{op}:{seq}:{key}"


def parse_button(data: str | None) -> Press | None:
    parts = (data or "").split(":", 2)
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
        return None
    return Press(parts[0], int(parts[1]), parts[2])


class TelegramRenderer:
    capabilities = Capabilities(buttons=True, phone_request=True, documents=True, text_limit=TEXT_LIMIT)

    def render(self, outputs: Sequence[Outgoing], chat_id: str, language: str, *, accepted: bool = True,
               pressed: Any = None) -> tuple[list[Call], str | None]:
        return render_outputs(tuple(outputs), int(chat_id), language, pressed, accepted)


def render_outputs(outputs: tuple[Outgoing, ...], chat_id: int | str, language: str,
                   pressed: Pressed | None = None, accepted: bool = True) -> tuple[list[Call], str | None]:
    """The calls to make, and the short notice for the callback query if a button was pressed.

    A rejected press (stale prompt, invalid choice) is answered on the button itself rather
    than with a new message; a re-rendered prompt edits the message that was pressed; an
    accepted answer leaves only the chosen button, marked, on the question it answered.
    """
    calls: list[Call] = []
    notice: str | None = None
    if pressed is not None and accepted:
        calls.extend(_mark_answered(chat_id, pressed))
    for output in outputs:
        if isinstance(output, Say):
            if pressed is not None and notice is None and output.tone in (Tone.STALE, Tone.ERROR):
                notice = output.text[:CALLBACK_ANSWER_LIMIT]
                continue
            # A form's note is a label, with its markup; the engine's own texts have none.
            if output.media:
                calls.extend(with_media(chat_id, output.media, render_html(output.text)))
            else:
                calls.extend(_messages(chat_id, render_html(output.text), html=True))
        elif isinstance(output, Notice):
            calls.extend(_messages(chat_id, output.text,
                                   {"remove_keyboard": True} if output.closes_phone_request else None))
        elif isinstance(output, ConfirmStop):
            buttons = [[_button(output.yes, CONFIRM_STOP, output.seq, "yes"),
                        _button(output.no, CONFIRM_STOP, output.seq, "no")]]
            calls.extend(_messages(chat_id, output.text, {"inline_keyboard": buttons}))
        elif isinstance(output, AskPhone):
            calls.extend(_messages(chat_id, output.text, {
                "keyboard": [[{"text": output.button, "request_contact": True}]],
                "resize_keyboard": True, "one_time_keyboard": True}))
        elif isinstance(output, Leave):
            calls.append(Call("leaveChat", {"chat_id": chat_id}))
        elif isinstance(output, Document):
            calls.append(Call("sendDocument", {"chat_id": chat_id, "caption": output.caption,
                                               "document": {"path": output.path, "filename": output.filename}}))
        elif output.update:
            if pressed is not None and output.kind is PromptKind.SELECT_MULTIPLE:
                calls.append(Call("editMessageReplyMarkup", {
                    "chat_id": chat_id, "message_id": pressed.message_id,
                    "reply_markup": keyboard(output, language)}))
            # Otherwise the prompt is still on screen just above the error: no need to repeat it.
        elif output.kind is PromptKind.GEOPOINT:
            calls.extend(with_media(chat_id, output.media, prompt_text(output, language), location_keyboard(language)))
        else:
            calls.extend(with_media(chat_id, output.media, prompt_text(output, language), keyboard(output, language)))
    return calls, notice


def with_media(chat_id: int | str, media: Sequence[LabelMedia], text: str, markup: dict | None = None) -> list[Call]:
    """The text (Telegram HTML) sent with the label's media: the first file carries it as its caption
    when it fits (1024 characters), else the file goes first and the text, with its keyboard, after.

    The file is named by form, version and file name (`form_media`); the transport uploads the
    stored bytes the first time and reuses the file_id Telegram returns after.
    """
    if not media:
        return _messages(chat_id, text, markup, html=True)
    calls = [Call(_MEDIA_METHODS[m.kind][0], {"chat_id": chat_id, _MEDIA_METHODS[m.kind][1]: form_media(m)})
             for m in media]
    if len(text) > CAPTION_LIMIT:
        return calls + _messages(chat_id, text, markup, html=True)
    carrier = calls[0].payload
    carrier.update(caption=text, parse_mode="HTML")
    if markup is not None:
        carrier["reply_markup"] = markup
    return calls[1:] + calls[:1]  # the carrier last: its keyboard stays the last thing on screen


def form_media(media: LabelMedia) -> dict:
    """How a queued call names a form's file: read from the stored form when it is sent."""
    return {"form_media": {"form_id": media.form_id, "version": media.version, "name": media.name}}


def _mark_answered(chat_id: int | str, pressed: Pressed) -> list[Call]:
    """The answered question keeps only what was chosen, ticked, so it no longer looks live
    (pressing it again is a stale press, answered on the button)."""
    press = parse_button(pressed.data)
    if press is None or press.op not in (CHOOSE, DONE, SKIP) or not pressed.markup:
        return []
    buttons = [b for row in pressed.markup.get("inline_keyboard", []) for b in row]
    if press.op == DONE:
        kept = [b for b in buttons if (b.get("callback_data") or "").startswith(f"{UNTICK}:")]
    else:
        kept = [dict(b, text=f"✓ {b.get('text', '')}") for b in buttons if b.get("callback_data") == pressed.data]
    return [Call("editMessageReplyMarkup", {"chat_id": chat_id, "message_id": pressed.message_id,
                                            "reply_markup": {"inline_keyboard": [[b] for b in kept]}})]


def _messages(chat_id: int | str, text: str, markup: dict | None = None, *, html: bool = False) -> list[Call]:
    """`html`: the text is Telegram HTML (labels' markup rendered, the rest escaped); every tag opens
    and closes on one line, so cutting at line ends keeps each piece well formed."""
    parts = split_text(text, TEXT_LIMIT)
    extra = {"parse_mode": "HTML"} if html else {}
    calls = [Call("sendMessage", {"chat_id": chat_id, "text": part, **extra}) for part in parts]
    if markup is not None:
        calls[-1].payload["reply_markup"] = markup
    return calls


def prompt_text(ask: Ask, language: str) -> str:
    """The prompt as Telegram HTML: labels with their markup (bold, italic), everything else escaped."""
    ui = ui_language(language)
    lines: list[str] = []
    if ask.section:
        lines += [f"📋 <b>{escape(plain_text(ask.section), quote=False)}</b>", ""]
    if ask.progress:
        lines.append(escape(ask.progress, quote=False))
    question = render_html(ask.text)
    lines.append(f"{question} ({escape(ask.expected, quote=False)})" if ask.expected else question)
    if ask.hint:
        lines.append(f"💡 {render_html(ask.hint)}")
    if ask.current_answer:
        lines.append(escape(say("current_answer", ui, value=plain_text(ask.current_answer)), quote=False))
    if ask.kind is PromptKind.GEOPOINT:  # the location keyboard leaves no room for inline buttons: words
        if not ask.required:
            lines.append(escape(say("skip_word_hint", ui), quote=False))
        if ask.can_go_back:
            lines.append(escape(say("back_words_hint", ui), quote=False))
    return "\n".join(lines)


def location_keyboard(language: str) -> dict:
    """One button that sends the person's location; typed coordinates work as well."""
    return {"keyboard": [[{"text": say("share_location", ui_language(language)), "request_location": True}]],
            "resize_keyboard": True, "one_time_keyboard": True}


def keyboard(ask: Ask, language: str) -> dict | None:
    ui = ui_language(language)
    rows: list[list[dict]] = []
    if ask.kind is PromptKind.SELECT_MULTIPLE:
        for option in ask.options:
            mark = "✅" if option.selected else "⬜"
            rows.append([_button(f"{mark} {one_line(option.label)}", UNTICK if option.selected else TICK, ask.seq, option.key)])
        rows.append([_button(f"✔ {say('done', ui)}", DONE, ask.seq)])
    elif ask.options:
        labels = [one_line(option.label) for option in ask.options]
        buttons = [_button(label, CHOOSE, ask.seq, option.key) for label, option in zip(labels, ask.options)]
        short = len(buttons) <= 5 and all(len(label) <= _ONE_ROW_LABEL for label in labels)
        rows.extend([buttons] if short else [[b] for b in buttons])
    elif ask.kind is PromptKind.ACKNOWLEDGE:
        rows.append([_button(say("acknowledge_ok", ui), CHOOSE, ask.seq, "ok")])
    if ask.kind is PromptKind.RANK and not ask.required:  # stop ranking here (none ranked: skipped)
        rows.append([_button(f"✔ {say('done', ui)}", DONE, ask.seq)])
    if not ask.required and ask.kind in (PromptKind.TEXT, PromptKind.INTEGER, PromptKind.DECIMAL, PromptKind.DATE,
                                         PromptKind.IMAGE, PromptKind.AUDIO, PromptKind.VIDEO, PromptKind.FILE):
        rows.append([_button(say("skip", ui), SKIP, ask.seq)])
    if ask.can_go_back:
        rows.append([_button(say("back", ui), BACK, ask.seq)])
    return {"inline_keyboard": rows} if rows else None


def _button(text: str, op: str, seq: int, key: str = "") -> dict:
    return {"text": text, "callback_data": button_data(op, seq, key)}
