"""Engine output as plain text, for channels without buttons (the console and Zalo)."""

from __future__ import annotations

from surveys.engine import Ask, Output, PromptKind, Say
from surveys.messages import say, ui_language


def render(output: Output, language: str, *, show_names: bool = False, chat: bool = False) -> str:
    """One message. `show_names` adds each choice's name, which is what a script types."""
    if isinstance(output, Say):
        return output.text
    return render_ask(output, language, show_names=show_names, chat=chat)


def render_ask(ask: Ask, language: str, *, show_names: bool = False, chat: bool = False) -> str:
    """`chat`: a messenger where an empty reply cannot be sent, so skipping and going back are words."""
    ui = ui_language(language)
    lines: list[str] = []
    if ask.section:
        lines.append(f"== {ask.section} ==")
    lines.append(f"[{ask.progress}] {ask.text}" if ask.progress else ask.text)
    if ask.hint:
        lines.append(f"  ({ask.hint})")
    for option in ask.options:
        mark = "[x] " if option.selected else ("[ ] " if ask.kind is PromptKind.SELECT_MULTIPLE else "")
        name = f"  «{option.name}»" if show_names and option.name != str(option.number) else ""
        lines.append(f"  {option.number}. {mark}{option.label}{name}")
    if ask.kind is PromptKind.SELECT_MULTIPLE:
        lines.append(say("multi_typed_hint", ui))
    elif ask.kind is PromptKind.SELECT_ONE and chat:
        lines.append(say("single_typed_hint", ui))
    elif ask.kind is PromptKind.CONSENT and chat:
        lines.append(say("consent_typed_hint", ui))
    elif ask.kind is PromptKind.ACKNOWLEDGE:
        lines.append(say("acknowledge_hint", ui))
    if ask.current_answer:
        lines.append(say("current_answer", ui, value=ask.current_answer))
    if not ask.required and ask.kind not in (PromptKind.CONSENT, PromptKind.ACKNOWLEDGE):
        lines.append(say("skip_word_hint" if chat else "skip_hint", ui))
    if chat and ask.can_go_back:
        lines.append(say("back_words_hint", ui))
    return "\n".join(lines)


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
