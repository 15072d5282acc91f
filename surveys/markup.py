"""The markup form authors put in labels, read once for every channel to render its own way.

XLSForm's markdown subset (`**bold**`/`__bold__`, `*italic*`/`_italic_`, `# heading` lines) and the
simple HTML ODK Collect shows (`<br>`, `<p>`, `<b>`, `<strong>`, `<i>`, `<em>`; other inline tags
dropped). `parse_markup` gives lines of runs; a channel renders them (`bot.text.plain_text` for
Zalo and the console, `bot.telegram.render` as Telegram HTML). Markers that do not pair up on one
line, or pair up crossed, stay as typed: "3 * 4 * 5" and `snake_case` are not emphasis.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from itertools import groupby


@dataclass(frozen=True)
class Run:
    text: str
    bold: bool = False
    italic: bool = False


@dataclass(frozen=True)
class Line:
    runs: tuple[Run, ...]
    heading: bool = False

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)


_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_BLOCK = re.compile(r"\s*</?(?:p|div|li|ul|ol|h[1-6])(?:\s[^<>]*)?>\s*", re.IGNORECASE)
_OTHER_INLINE = re.compile(r"</?(?:u|s|small|big|span|font|sup|sub)(?:\s[^<>]*)?>", re.IGNORECASE)
_BLOCK_MARK = "\x00"
# Emphasis becomes control characters (bold on/off, italic on/off) before the text is unescaped.
_B_ON, _B_OFF, _I_ON, _I_OFF = "\x01", "\x02", "\x03", "\x04"
_HTML_BOLD = re.compile(r"<(?:b|strong)>(.*?)</(?:b|strong)>", re.IGNORECASE)
_HTML_ITALIC = re.compile(r"<(?:i|em)>(.*?)</(?:i|em)>", re.IGNORECASE)
_MD_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_MD_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])|(?<!\w)_(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)")
_HEADING = re.compile(r"#{1,6}\s+(.*)")
_MARKS = {_B_ON: ("bold", True), _B_OFF: ("bold", False), _I_ON: ("italic", True), _I_OFF: ("italic", False)}


def parse_markup(text: str) -> tuple[Line, ...]:
    """The label as lines of runs, with blank lines at its ends removed."""
    text = _BREAK.sub("\n", text)
    text = _BLOCK.sub(_BLOCK_MARK, text)
    text = re.sub(f"{_BLOCK_MARK}+", "\n", text).strip("\n")
    return tuple(_line(raw) for raw in text.split("\n"))


def _line(raw: str) -> Line:
    heading = _HEADING.fullmatch(raw.strip())
    if heading:
        raw = heading.group(1)
    marked = _OTHER_INLINE.sub("", raw)
    marked = _HTML_BOLD.sub(lambda m: f"{_B_ON}{m.group(1)}{_B_OFF}", marked)
    marked = _HTML_ITALIC.sub(lambda m: f"{_I_ON}{m.group(1)}{_I_OFF}", marked)
    marked = _MD_BOLD.sub(lambda m: f"{_B_ON}{m.group(2)}{_B_OFF}", marked)
    marked = _MD_ITALIC.sub(lambda m: f"{_I_ON}{m.group(1) or m.group(2)}{_I_OFF}", marked)
    runs = _runs(marked)
    if runs is None:  # crossed emphasis: the line as typed, tags of ODK's HTML dropped
        runs = (Run(html.unescape(re.sub(r"</?(?:b|strong|i|em)>", "", _OTHER_INLINE.sub("", raw), flags=re.I))),)
    return Line(runs, heading=bool(heading))


def _runs(marked: str) -> tuple[Run, ...] | None:
    runs: list[Run] = []
    open_: list[str] = []
    state = {"bold": False, "italic": False}
    for piece in re.split(f"([{_B_ON}{_B_OFF}{_I_ON}{_I_OFF}])", marked):
        if piece in _MARKS:
            name, on = _MARKS[piece]
            if on:
                open_.append(name)
            elif not open_ or open_.pop() != name:
                return None
            state[name] = on
        elif piece:
            runs.append(Run(html.unescape(piece), **state))
    return None if open_ else tuple(runs)


def _unmarked(text: str) -> bool:
    """No markup at all: every renderer gives the text as it is (the common case, kept fast)."""
    return not any(mark in text for mark in "<>&*_#")


def render_plain(text: str) -> str:
    """Plain text (Zalo, the console, buttons): markers removed, lines kept."""
    if _unmarked(text):
        return text
    return "\n".join(line.text for line in parse_markup(text))


def render_html(text: str) -> str:
    """Escaped HTML with <b> and <i> (Telegram's parse_mode HTML; the web and paper forms): a heading bold."""
    if _unmarked(text):
        return text
    lines = []
    for line in parse_markup(text):
        parts = []
        for bold, runs in groupby(line.runs, key=lambda run: run.bold or line.heading):
            inner = "".join(f"<i>{html.escape(run.text, quote=False)}</i>" if run.italic
                            else html.escape(run.text, quote=False) for run in runs)
            parts.append(f"<b>{inner}</b>" if bold else inner)
        lines.append("".join(parts))
    return "\n".join(lines)
