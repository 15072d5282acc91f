"""Engine output as plain text: whole prompts for channels without buttons (the console and Zalo),
and the pieces every channel shares (a label's HTML as plain text, the question with what to type)."""

from __future__ import annotations

from surveys.engine import Ask, Output, PromptKind, Say
from surveys.markup import render_plain
from surveys.messages import consent_words, say, ui_language


def render(output: Output, language: str, *, show_names: bool = False, chat: bool = False) -> str:
    """One message. `show_names` adds each choice's name, which is what a script types."""
    if isinstance(output, Say):
        return plain_text(output.text)  # a form's note is a label, with the label's HTML
    return render_ask(output, language, show_names=show_names, chat=chat)


def question_line(ask: Ask) -> str:
    """The question as plain text, with what a valid answer looks like in brackets (dates)."""
    text = plain_text(ask.text)
    return f"{text} ({ask.expected})" if ask.expected else text


def render_ask(ask: Ask, language: str, *, show_names: bool = False, chat: bool = False) -> str:
    """`chat`: a messenger where an empty reply cannot be sent, so skipping and going back are words."""
    ui = ui_language(language)
    lines: list[str] = []
    if ask.section:
        lines.append(f"== {plain_text(ask.section)} ==")
    text = question_line(ask)
    lines.append(f"[{ask.progress}] {text}" if ask.progress else text)
    if ask.hint:
        lines.append(f"  ({plain_text(ask.hint)})")
    for option in ask.options:
        mark = "[x] " if option.selected else ("[ ] " if ask.kind is PromptKind.SELECT_MULTIPLE else "")
        name = f"  «{option.name}»" if show_names and option.name != str(option.number) else ""
        lines.append(f"  {option.number}. {mark}{one_line(option.label)}{name}")
    if ask.kind is PromptKind.SELECT_MULTIPLE:
        lines.append(say("multi_typed_hint", ui))
    elif ask.kind is PromptKind.SELECT_ONE and chat:
        lines.append(say("single_typed_hint", ui))
    elif ask.kind is PromptKind.CONSENT and chat:
        lines.append(say("consent_typed_hint", ui, **consent_words(ui)))
    elif ask.kind is PromptKind.ACKNOWLEDGE:
        lines.append(say("acknowledge_hint", ui))
    elif ask.kind is PromptKind.RANK and len(ask.options) > 1:
        numbers = [str(option.number) for option in ask.options]
        lines.append(say("rank_typed_hint", ui, example=" ".join(numbers[-1:] + numbers[:-1])))
    if ask.current_answer:
        lines.append(say("current_answer", ui, value=plain_text(ask.current_answer)))
    if not ask.required and ask.kind is PromptKind.RANK and chat:
        lines.append(say("rank_done_hint", ui))
    elif not ask.required and ask.kind not in (PromptKind.CONSENT, PromptKind.ACKNOWLEDGE):
        lines.append(say("skip_word_hint" if chat else "skip_hint", ui))
    if chat and ask.can_go_back:
        lines.append(say("back_words_hint", ui))
    return "\n".join(lines)


def plain_text(text: str) -> str:
    """A label's markup (XLSForm markdown, simple HTML) as plain text for a messenger: `<br>`, `<p>`
    → new lines; `**bold**`, `<b>` etc. dropped (surveys.markup reads it)."""
    return render_plain(text)


def one_line(text: str) -> str:
    """A label as plain text on one line, for a button or a numbered option."""
    return " ".join(plain_text(text).split())


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut at line ends where possible, then at spaces."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = line if not current else f"{current}\n{line}"
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            pieces.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        current = line
    if current or not pieces:
        pieces.append(current)
    return pieces
