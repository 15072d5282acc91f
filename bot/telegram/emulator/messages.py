"""Bot API methods that send, edit and delete messages and files, and their checks (text and
button limits, Telegram's HTML subset).
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.telegram.botapi_spec import Upload
from bot.telegram.emulator.model import (
    NOT_MODIFIED, _HTML_TAGS, _INLINE_BUTTON_LABEL_FIELDS, _INTEGER_TEXT, ApiError, ReceivedMessage, _Params,
    _StoredFile, _bad, _forbidden,
)
from bot.telegram.emulator.bots import EmulatedBot
from bot.telegram.emulator.people import SimulatedGroup, SimulatedUser


class MessageMethods:
    """Mixin of :class:`BotApiEmulator` (its state is there)."""

    # --- sending, editing, deleting -------------------------------------------------------------

    def _recipient(self, bot: EmulatedBot, p: _Params) -> SimulatedUser:
        """The private chat named by chat_id, if the bot may write there."""
        chat_id = p.required("chat_id", p.text)
        user = bot.users.get(int(chat_id)) if _INTEGER_TEXT.fullmatch(chat_id) else None
        if user is None:
            raise _bad("chat not found")
        if isinstance(user, SimulatedGroup) and not user.bot_present:
            raise _forbidden(f"bot is not a member of the {user.kind} chat")
        if user.blocked:
            raise _forbidden("bot was blocked by the user")
        if not user.started:
            raise _forbidden("bot can't initiate conversation with a user")
        return user

    async def _send_message(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        user = self._recipient(bot, p)
        text = p.required("text", p.text)
        return self._deliver(bot, user, p, text=self._visible(text, p, self.limits.text_max, "message"),
                             source_text=text)

    async def _send_document(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        return await self._send_file(bot, p, "document")

    async def _send_photo(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        return await self._send_file(bot, p, "photo")

    async def _send_audio(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        return await self._send_file(bot, p, "audio")

    async def _send_video(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        return await self._send_file(bot, p, "video")

    async def _send_file(self, bot: EmulatedBot, p: _Params, kind: str) -> dict[str, Any]:
        user = self._recipient(bot, p)
        stored = self._file(p, kind)
        caption = p.text("caption")
        if caption:
            caption = self._visible(caption, p, self.limits.caption_max, "caption")
        return self._deliver(bot, user, p, caption=caption or None, file_data=stored.data, **{kind: stored.info})

    def _deliver(self, bot: EmulatedBot, user: SimulatedUser, p: _Params, **content: Any) -> dict[str, Any]:
        """Everything sendMessage/sendDocument/sendPhoto share: markup checks, limits, storage."""
        markup = self._reply_markup(p)
        bot.limiter.acquire(user.id)
        message = ReceivedMessage(message_id=user.new_message_id(), chat_id=user.id, date=int(time.time()),
                                  parse_mode=p.text("parse_mode"), reply_markup=markup, **content)
        if markup is not None and ("keyboard" in markup or "remove_keyboard" in markup):
            user.reply_keyboard = markup if "keyboard" in markup else None
        user.deliver(message)
        bot.stats.sent += 1
        return bot.message_json(message)

    async def _edit_message_text(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        def change(message: ReceivedMessage) -> dict[str, Any]:
            if message.text is None:
                raise _bad("there is no text in the message to edit")
            text = p.required("text", p.text)
            return {"text": self._visible(text, p, self.limits.text_max, "message"), "source_text": text,
                    "parse_mode": p.text("parse_mode")}

        return self._edit(bot, p, change)

    async def _edit_message_reply_markup(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        return self._edit(bot, p, lambda message: {})

    def _edit(self, bot: EmulatedBot, p: _Params,
              change: Callable[[ReceivedMessage], dict[str, Any]]) -> dict[str, Any]:
        """Shared by the edit methods. Omitting reply_markup removes the inline keyboard, as in Telegram."""
        if p.raw("inline_message_id") is not None:
            self.violations.append("edit: inline_message_id is not implemented by the emulator")
            raise _bad("inline messages are not implemented by the emulator")
        user = self._recipient(bot, p)
        message_id = p.required("message_id", p.integer)
        message = user.find_received(message_id)
        if message is None:
            mine = user.owns_message(message_id)
            raise _bad("message can't be edited" if mine else "message to edit not found")
        updates = {**change(message), "reply_markup": self._reply_markup(p)}
        if updates["reply_markup"] is not None and "inline_keyboard" not in updates["reply_markup"]:
            raise _bad("inline keyboard expected")
        if all(getattr(message, key) == value for key, value in updates.items()):
            raise _bad(NOT_MODIFIED)
        bot.limiter.acquire(user.id)
        for key, value in updates.items():
            setattr(message, key, value)
        message.edits += 1
        message.edit_date = int(time.time())
        user.edited(message)
        bot.stats.edits += 1
        return bot.message_json(message)

    async def _delete_message(self, bot: EmulatedBot, p: _Params) -> bool:
        user = self._recipient(bot, p)
        message = user.find_received(p.required("message_id", p.integer))
        if message is None:
            raise _bad("message to delete not found")
        message.deleted = True
        bot.stats.deleted += 1
        return True

    def _visible(self, text: str, p: _Params, limit: int, what: str) -> str:
        """The text the person sees (markup rendered), checked against the length limit."""
        visible = _render(text, p.text("parse_mode"))
        if what == "message" and not visible.strip():
            raise _bad(f"{what} text is empty")
        if len(visible) > limit:
            raise _bad("message is too long" if what == "message" else "message caption is too long")
        return visible

    def _reply_markup(self, p: _Params) -> dict[str, Any] | None:
        """Decode reply_markup and enforce Telegram's button limits."""
        markup = p.json("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        for key in ("inline_keyboard", "keyboard"):
            if key in markup:
                buttons = _buttons(markup[key])
                if len(buttons) > self.limits.buttons_max:
                    raise _bad("reply markup is too long")
                if key == "inline_keyboard":
                    for button in buttons:
                        self._check_inline_button(button)
        return markup

    def _check_inline_button(self, button: dict[str, Any]) -> None:
        if not set(button) - _INLINE_BUTTON_LABEL_FIELDS:
            raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
        if "callback_data" in button:
            size = len(str(button["callback_data"]).encode("utf-8"))
            if not 1 <= size <= self.limits.callback_data_max_bytes:
                raise _bad("BUTTON_DATA_INVALID")

    def _file(self, p: _Params, kind: str) -> _StoredFile:
        """The file of sendDocument/sendPhoto/sendAudio/sendVideo: an upload, a known file_id, or an HTTP URL."""
        value = p.raw(kind)
        if isinstance(value, Upload):
            return self._store_upload(value, kind)
        if not value:
            raise _bad(f"there is no {kind} in the request")
        value = str(value)
        if value in self._files:
            stored = self._files[value]
            if stored.kind != kind:
                raise _bad(f"wrong file identifier/HTTP URL specified: can't use file of type "
                           f"{stored.kind.title()} as {kind.title()}")
            return stored
        if urlsplit(value).scheme in ("http", "https"):
            name = Path(urlsplit(value).path).name or kind
            return _StoredFile(kind, self._file_info(kind, name, size=None), None)
        raise _bad("wrong file identifier/HTTP URL specified")

    def _store_upload(self, upload: Upload, kind: str) -> _StoredFile:
        limit = self.limits.photo_max_bytes if kind == "photo" else self.limits.document_max_bytes
        if upload.size > limit:
            raise ApiError(413, "Request Entity Too Large")
        if upload.size == 0:
            raise _bad("file must be non-empty")
        stored = _StoredFile(kind, self._file_info(kind, upload.filename, upload.size, upload.content_type),
                             upload.data)
        self._files[stored.info["file_id"]] = stored
        return stored

    def _file_info(self, kind: str, name: str, size: int | None,
                   content_type: str | None = None) -> dict[str, Any]:
        number = next(self._file_ids)
        info: dict[str, Any] = {"file_id": f"{kind[:3].upper()}AAQ{number:08d}emu",
                                "file_unique_id": f"AgAD{number:06d}"}
        if kind == "photo":  # the emulator does not decode images, so dimensions are unknown
            info.update(width=0, height=0)
        else:
            # Audio and Video objects require these; the emulator decodes no media, so they are 0.
            info.update({"audio": {"duration": 0}, "video": {"width": 0, "height": 0, "duration": 0}}.get(kind, {}))
            guessed = mimetypes.guess_type(name)[0]
            info.update(file_name=name, mime_type=guessed or content_type or "application/octet-stream")
        if size is not None:
            info["file_size"] = size
        return info


def _buttons(rows: Any) -> list[dict[str, Any]]:
    """All buttons of a keyboard, after checking it is a list of rows of button objects."""
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad("can't parse reply keyboard markup JSON object: field must be an Array of Array")
    buttons = [button for row in rows for button in row]
    if not all(isinstance(button, dict) and isinstance(button.get("text"), str) for button in buttons):
        raise _bad("can't parse keyboard button: text must be a String")
    return buttons


def _render(text: str, parse_mode: str | None) -> str:
    """The visible text. HTML is parsed strictly like Telegram; Markdown modes are kept verbatim."""
    if parse_mode is None or parse_mode.lower() in ("markdown", "markdownv2"):
        return text
    if parse_mode.lower() != "html":
        raise _bad("unsupported parse_mode")
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    return parser.visible()


class _TelegramHtml(HTMLParser):
    """Telegram's HTML subset: unknown tags and unbalanced tags are errors, not ignored."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._open: list[str] = []
        self._parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise _bad(f'can\'t parse entities: Unsupported start tag "{tag}"')
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1] != tag:
            expected = f'"</{self._open[-1]}>"' if self._open else "no end tag"
            raise _bad(f'can\'t parse entities: Unmatched end tag "</{tag}>", expected {expected}')
        self._open.pop()

    def handle_data(self, data: str) -> None:
        self._parts.append(data)

    def visible(self) -> str:
        if self._open:
            tag = self._open[-1]
            raise _bad(f'can\'t parse entities: Can\'t find end tag corresponding to start tag "{tag}"')
        return "".join(self._parts)
