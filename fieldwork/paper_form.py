"""A questionnaire as a printed paper form: HTML to print (A4, print CSS), one copy per person.

Vietnamese first with English beneath, every question numbered, choice codes printed beside each
choice (to circle, and to type at data entry), skip instructions in words from `relevant`
(``surveys.phrasing``), required questions marked, constraints stated, boxes for numbers and
dates, lines for text. Above the questions, the survey's consent text (``surveys.privacy``) in both
languages with its version: a returned form is a consent to that text. Each copy carries the
person's code and a QR code of it, so a returned form identifies its respondent (a scanner
reading the QR types the code on the entry screen).

A repeat group (a household roster) is printed as one framed block per instance, headed by the
repeat's label and the block's number ("Thành viên 1 / Member 1"), nested repeats inside their
parent's block, under an instruction ("one block per member; leave unused blocks empty"); how many
blocks is ``fieldwork.paper_repeats``'s rule.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from dataclasses import dataclass
from typing import Callable

import segno

from fieldwork.paper_repeats import Blocks, block_path, fill_label, literal_count, position_names, printed_blocks
from surveys.markup import render_html
from surveys.model import Question, QuestionType, Questionnaire
from surveys.phrasing import Phraser, choice_codes, constraint_words, numbering
from surveys.privacy import PrivacyNotice
from surveys.repeats import Block, repeat_plan

LANGUAGES = ("vi", "en")
#: The channel of what is typed from paper: its sessions, and the consent its printed text records.
PAPER = "paper"


@dataclass(frozen=True)
class Copy:
    """One printed copy: the person's code (as printed, "AB3D EF9H") and the survey's title."""

    code: str
    title: str
    unit: str = ""


def _e(text: str) -> str:
    return html.escape(text or "")


def refuse_unprintable(form: Questionnaire) -> None:
    """What paper cannot carry, refused by name: a required photo, recording or file (an optional
    one is printed as "not on paper" and left empty)."""
    from fieldwork import Refused

    required = [q.name for q in form.questions if q.type.is_media and q.required is not None
                and q.required.source.strip() not in ("false()", "0")]
    if required:
        raise Refused(f"questionnaire {form.form_id} requires a photo, recording or file ({', '.join(required)}), "
                      "which a paper form cannot carry: make it optional to print the form; nothing printed or written")


class FormPrinter:
    """The body of one questionnaire, worked out once, printed for every copy."""

    def __init__(self, form: Questionnaire, notice: PrivacyNotice | None = None, blocks: Blocks = Blocks(), *,
                 image_src: Callable[[str, bytes], str] | None = None):
        """`image_src(name, bytes)`: the address a label's image is printed from (`print_forms` writes
        each file once beside the HTML: every copy repeats the body); by default a data URI."""
        refuse_unprintable(form)
        self.form = form
        self.blocks = blocks
        self.image_src = image_src or _data_uri
        self.numbers = numbering(form)
        self.phrasers = {lang: Phraser(form, lang) for lang in LANGUAGES}
        self.body = self._body()
        self.consent = self._consent(notice or PrivacyNotice(form.title))

    @staticmethod
    def _consent(notice: PrivacyNotice) -> str:
        vi, en = notice.consent("vi", PAPER), notice.consent("en", PAPER)
        return (f'<div class="consent"><p class="vi">{_e(vi.text)}</p><p class="en">{_e(en.text)}</p>'
                f'<p class="version">Phiên bản {_e(vi.version)} / Version {_e(en.version)}</p></div>')

    def text(self, text, lang: str, positions: dict[str, int] | None = None) -> str:
        """A label in ``lang``; a ``${name}`` in it (an answer shown in chat) points to its question,
        or, for an instance's ``position(..)`` (``positions``), is the block's number."""
        words = text.get(lang, self.form.default_language) if text else ""
        return fill_label(words, self.phrasers[lang], positions or {})

    def both(self, text, css: str = "", positions: dict[str, int] | None = None) -> str:
        """A text in Vietnamese, with the English beneath when it differs."""
        vi, en = self.text(text, "vi", positions), self.text(text, "en", positions)
        # render_html escapes the text and keeps the label's **bold** and *italic* (surveys/markup.py).
        out = f'<span class="vi {css}">{render_html(vi)}</span>'
        if en and en != vi:
            out += f'<span class="en {css}">{render_html(en)}</span>'
        return out

    def image(self, question: Question) -> str:
        """The label's image, inline (a data URI: the printed page needs no other file); the English
        one as well when it is another file. Audio and video have no place on paper."""
        files = question.media.get("image")
        if not files:
            return ""
        names = dict.fromkeys(files.get(lang, self.form.default_language) for lang in LANGUAGES)
        out = []
        for name in names:
            data = self.form.attachments.get(name)
            if data:
                out.append(f'<img class="media" alt="" src="{_e(self.image_src(name, data))}">')
        return f'<p class="media">{"".join(out)}</p>' if out else ""

    # -- skips ---------------------------------------------------------------------------------

    def _runs(self) -> dict[str, tuple[str, int, int, int | None]]:
        """First question of each run of consecutive numbered questions under the same conditions →
        (condition key, first number, last number, the number to go to otherwise)."""
        asked = [q for q in self.form.questions if q.name in self.numbers]
        runs: dict[str, tuple[str, int, int, int | None]] = {}
        index = 0
        while index < len(asked):
            conditions, repeats = self.form.conditions(asked[index]), asked[index].repeats
            end = index
            while end + 1 < len(asked) and self.form.conditions(asked[end + 1]) == conditions \
                    and asked[end + 1].repeats == repeats:
                end += 1
            if conditions:
                # Inside a block, a question after the block's end is not where the skip goes: None
                # (the instruction says "the next block").
                following = asked[end + 1] if end + 1 < len(asked) else None
                after = self.numbers[following.name] if following is not None \
                    and following.repeats[:len(repeats)] == repeats else None
                runs[asked[index].name] = (asked[index].name, self.numbers[asked[index].name],
                                           self.numbers[asked[end].name], after)
            index = end + 1
        return runs

    def skip_instruction(self, question: Question, first: int, last: int, after: int | None) -> str:
        parts = []
        for lang in LANGUAGES:
            phraser = self.phrasers[lang]
            words = phraser.words["and"].join(phraser.condition(c) for c in self.form.conditions(question))
            span = f"{first}" if first == last else f"{first}–{last}"
            if lang == "vi":
                where = f"chuyển sang câu {after}" if after else \
                    "chuyển sang khối tiếp theo" if question.repeats else "chuyển sang phần cuối phiếu"
                parts.append(f'<span class="vi">Nếu {_e(words)}, trả lời câu {span}; nếu không, {where}.</span>')
            else:
                where = f"go to Q{after}" if after else \
                    "go to the next block" if question.repeats else "go to the end of the form"
                parts.append(f'<span class="en">If {_e(words)}, answer Q{span}; otherwise {where}.</span>')
        return f'<p class="skip">➜ {"".join(parts)}</p>'

    # -- questions -----------------------------------------------------------------------------

    def _body(self) -> str:
        self.runs = self._runs()
        return "\n".join(self._items(repeat_plan(self.form).root, (), ()))

    def _items(self, block: Block, repeats: tuple[str, ...], numbers: tuple[int, ...]) -> list[str]:
        """A block's questions and inner repeats, in form order (the form itself: ``repeats`` empty)."""
        out, group = [], None
        positions = self._positions(repeats, numbers)
        for item in block.items:
            if isinstance(item, Block):
                out.append(self._repeat(item, repeats, numbers))
                continue
            question = self.form.questions[item]
            # The headings of the groups inside the innermost repeat (that repeat's own heading is the block's).
            groups = question.groups[question.groups.index(repeats[-1]) + 1:] if repeats else question.groups
            if groups != group and question.type.is_shown:
                group = groups
                labels = [self.form.groups[g].label for g in groups
                          if self.form.groups[g].label and not self.form.groups[g].repeat]
                if labels:
                    out.append(f'<h2 class="section">{self.both(labels[-1], positions=positions)}</h2>')
            if question.type is QuestionType.NOTE:
                out.append(f'<div class="note">{self.both(question.label, positions=positions)}{self.image(question)}</div>')
                continue
            if question.name not in self.numbers:
                continue
            if question.name in self.runs:
                _, first, last, after = self.runs[question.name]
                out.append(self.skip_instruction(question, first, last, after))
            out.append(self._question(question, positions, block_path(repeats, numbers) if repeats else ""))
        return out

    def _positions(self, repeats: tuple[str, ...], numbers: tuple[int, ...]) -> dict[str, int]:
        """The instance's ``position(..)`` calculations (``${pos}`` in a label): the block's number."""
        return {name: numbers[-1] for name in position_names(self.form, repeats)} if repeats else {}

    def _repeat(self, block: Block, repeats: tuple[str, ...], numbers: tuple[int, ...]) -> str:
        """A repeat: its instruction, then one block per instance, each headed by its name and number."""
        group = self.form.groups[block.name]
        count = printed_blocks(self.form, block.name, self.blocks)
        inner = repeats + (block.name,)
        heading = f'<h2 class="section">{self.both(group.label)}</h2>' if group.label and not repeats else ""
        instances = []
        vi, en = (self.text(group.label, lang) or block.name for lang in LANGUAGES)
        for number in range(1, count + 1):
            title = f'<span class="vi">{_e(vi)} {number}</span>' + (
                f'<span class="en">{_e(en)} {number}</span>' if en != vi else "")
            body = "\n".join(self._items(block, inner, numbers + (number,)))
            instances.append(f'<div class="instance" data-block="{_e(block_path(inner, numbers + (number,)))}">'
                             f'<h3 class="instance-title">{title}</h3>\n{body}</div>')
        return (f'<div class="repeat" data-repeat="{_e(block.name)}">{heading}{self._repeat_how(block.name)}\n'
                + "\n".join(instances) + "</div>")

    def _repeat_how(self, name: str) -> str:
        """How to fill a repeat's blocks: one per instance, unused ones left empty."""
        group, parts = self.form.groups[name], []
        literal = literal_count(self.form, name)
        for lang in LANGUAGES:
            label = self.text(group.label, lang) or name
            label = label[:1].lower() + label[1:]
            count = self.phrasers[lang].readable(group.repeat_count.source) if group.repeat_count is not None else ""
            if lang == "vi":
                words = (f"Mỗi {label} một khối ({literal} khối)." if literal is not None else
                         f"Mỗi {label} một khối; điền số khối bằng {count}; để trống các khối không dùng."
                         if count else f"Mỗi {label} một khối, điền theo thứ tự; để trống các khối không dùng; "
                                       "nếu không đủ khối, xin ghi tiếp vào tờ rời.")
            else:
                words = (f"One block per {label} ({literal} blocks)." if literal is not None else
                         f"One block per {label}; fill as many blocks as {count}; leave unused blocks empty."
                         if count else f"One block per {label}, in order; leave unused blocks empty; if the "
                                       "blocks are not enough, continue on a separate sheet.")
            parts.append(f'<span class="{lang}">{_e(words)}</span>')
        return f'<p class="repeat-how">{"".join(parts)}</p>'

    def _question(self, question: Question, positions: dict[str, int] | None = None, path: str = "") -> str:
        number = self.numbers[question.name]
        required = question.required is not None and question.required.source.strip() not in ("false()", "0")
        mark = '<span class="req" title="bắt buộc / required">*</span>' if required else ""
        hint = f'<p class="hint">{self.both(question.hint, positions=positions)}</p>' if question.hint else ""
        rule = ""
        words = [constraint_words(question, lang) for lang in LANGUAGES]
        if any(words):
            rule = (f'<p class="rule"><span class="vi">{_e(words[0])}</span>'
                    + (f'<span class="en">{_e(words[1])}</span>' if words[1] and words[1] != words[0] else "") + "</p>")
        where = f' data-block="{_e(path)}"' if path else f' id="q{number}"'  # a number repeats in every block
        return (f'<div class="q"{where}><p class="label"><b class="num">{number}.</b>{mark} '
                f'{self.both(question.label, positions=positions)}</p>{self.image(question)}{hint}'
                f'{self._answer(question)}{rule}</div>')

    def _answer(self, question: Question) -> str:
        kind = question.type
        if kind.is_select:
            codes = choice_codes(question)
            how = ('<p class="how"><span class="vi">Khoanh tròn một mã</span><span class="en">Circle one code</span></p>'
                   if kind is QuestionType.SELECT_ONE else
                   '<p class="how"><span class="vi">Ghi các mã theo thứ tự ưu tiên, quan trọng nhất trước</span>'
                   '<span class="en">Write the codes in order of preference, the first one first</span></p>'
                   if kind is QuestionType.RANK else
                   '<p class="how"><span class="vi">Khoanh tròn các mã phù hợp (có thể chọn nhiều)</span>'
                   '<span class="en">Circle every code that applies</span></p>')
            items = "".join(f'<li><span class="code">{_e(codes[c.name])}</span> {self.both(c.label)}</li>'
                            for c in question.choices)
            if kind is QuestionType.RANK:
                return f'{how}<ol class="choices">{items}</ol><p class="boxes">{self._boxes(len(question.choices))}</p>'
            return f'{how}<ol class="choices">{items}</ol>'
        if kind is QuestionType.INTEGER:
            return f'<p class="boxes">{self._boxes(self._digits(question))}</p>'
        if kind is QuestionType.DECIMAL:
            return f'<p class="boxes">{self._boxes(6)}<span class="sep">,</span>{self._boxes(2)}</p>'
        if kind is QuestionType.DATE:
            return (f'<p class="boxes">{self._boxes(2)}<span class="sep">/</span>{self._boxes(2)}'
                    f'<span class="sep">/</span>{self._boxes(4)} <span class="fmt">(ngày/tháng/năm · dd/mm/yyyy)</span></p>')
        if kind is QuestionType.ACKNOWLEDGE:
            return f'<p class="boxes">{self._boxes(1)} <span class="fmt">✓</span></p>'
        if kind.is_media:  # answered in the chat or on the web only; left empty when typed from paper
            return ('<p class="how"><span class="vi">Không trả lời trên giấy (ảnh, ghi âm hoặc tệp chỉ gửi được qua '
                    'khảo sát trực tuyến)</span><span class="en">Not on paper (a photo, recording or file can only be '
                    'sent in the online survey)</span></p>')
        return '<p class="lines"><span></span><span></span><span></span></p>'

    @staticmethod
    def _boxes(count: int) -> str:
        return f'<span class="box-row">{"<span class=box></span>" * count}</span>'

    @staticmethod
    def _digits(question: Question) -> int:
        """As many boxes as the largest number the constraint allows has digits (default 4)."""
        if question.constraint is not None:
            numbers = [n for n in re.findall(r"\d+", question.constraint.source)]
            if numbers:
                return max(1, min(12, max(len(n) for n in numbers)))
        return 4

    # -- a copy --------------------------------------------------------------------------------

    def copy(self, copy: Copy) -> str:
        qr = segno.make(copy.code.replace(" ", ""), error="m").svg_data_uri(scale=3)
        unit = f'<p class="unit">{_e(copy.unit)}</p>' if copy.unit else ""
        legend = ('<p class="legend"><span class="vi">Câu có dấu <b>*</b> là câu bắt buộc. Xin khoanh tròn mã '
                  'bên cạnh phương án chọn; viết rõ ràng vào các ô.</span><span class="en">Questions marked '
                  '<b>*</b> must be answered. Circle the code beside your choice; write clearly in the boxes.'
                  '</span></p>')
        return f"""<section class="paper">
<header><div class="ident"><img class="qr" src="{qr}" alt="QR {_e(copy.code)}">
<p class="code-label">Mã phiếu / Form code<br><b class="code">{_e(copy.code)}</b></p></div>
<div class="titles"><h1>{_e(copy.title)}</h1><p class="form-title">{_e(self.form.title)}</p>{unit}</div></header>
{self.consent}
{legend}
{self.body}
<p class="end"><span class="vi">Xin chân thành cảm ơn quý vị. Xin gửi lại phiếu cho cán bộ khảo sát.</span>
<span class="en">Thank you. Please return this form to the survey staff.</span></p>
</section>"""


STYLE = """
body { font-family: "Times New Roman", "DejaVu Serif", serif; font-size: 11pt; margin: 0; }
.paper { page-break-after: always; padding: 1.2cm 1.5cm; }
header { display: flex; gap: 1em; align-items: center; border-bottom: 2px solid #000; padding-bottom: .4em; }
.ident { display: flex; gap: .5em; align-items: center; }
.qr { width: 2.6cm; height: 2.6cm; }
.code { font-family: "DejaVu Sans Mono", monospace; font-size: 16pt; letter-spacing: .15em; }
h1 { font-size: 14pt; margin: 0; } .form-title, .unit { margin: .2em 0; }
h2.section { font-size: 12pt; margin: 1em 0 .3em; border-bottom: 1px solid #666; }
.vi { display: block; } .en { display: block; color: #444; font-style: italic; font-size: 9.5pt; }
.label > .vi, .rule > .vi, .skip > .vi, .how > span { display: inline; } .how > .en::before { content: " · "; } .label > .en, .rule > .en, .skip > .en { margin-left: 1.6em; }
.q { break-inside: avoid; margin: .6em 0; }
img.media { max-width: 60%; max-height: 6cm; margin: .2em 1.6em; }
.label { margin: 0; } .num { margin-right: .3em; } .req { color: #000; font-weight: bold; }
.hint, .how, .rule, .fmt { font-size: 9.5pt; margin: .15em 0 .15em 1.6em; }
.rule::before { content: "⚠ "; }
.skip { border: 1px dashed #000; padding: .25em .5em; margin: .6em 0 .3em; font-size: 10pt; }
.choices { list-style: none; margin: .2em 0 .2em 1.6em; padding: 0; columns: 2; }
.choices li { break-inside: avoid; margin: .1em 0; display: flex; gap: .4em; }
.choices .code { display: inline-block; min-width: 1.6em; height: 1.6em; border: 1px solid #000; border-radius: 50%;
  text-align: center; line-height: 1.6em; font-weight: bold; font-size: 10pt; letter-spacing: 0; }
.boxes { margin: .2em 0 .2em 1.6em; display: flex; align-items: flex-end; gap: .2em; }
.box-row { display: inline-flex; } .box { display: inline-block; width: .75cm; height: .85cm; border: 1px solid #000;
  margin-right: -1px; } .sep { font-size: 14pt; }
.lines span { display: block; border-bottom: 1px dotted #000; height: 1.3em; margin-left: 1.6em; }
.note { margin: .6em 0; font-style: italic; }
.repeat-how { font-size: 10pt; border: 1px dashed #000; padding: .25em .5em; margin: .4em 0; }
.repeat-how > span { display: block; }
.instance { break-inside: avoid; border: 1.5px solid #000; padding: .2em .6em .4em; margin: .6em 0; }
.instance .instance { border-width: 1px; border-style: dashed; margin-left: .8em; }
.instance-title { font-size: 11.5pt; margin: .2em 0; } .instance-title > span { display: inline; }
.instance-title > .en::before { content: " / "; }
.legend { font-size: 9.5pt; margin: .5em 0; }
.consent { border: 1px solid #000; padding: .3em .6em; margin: .6em 0; font-size: 9.5pt; }
.consent p { margin: .2em 0; white-space: pre-line; } .consent .version { font-size: 8.5pt; }
.end { margin-top: 1.2em; text-align: center; }
@page { size: A4; margin: 0; }
"""


def forms_html(pages: list[str], title: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="vi"><head><meta charset="utf-8"><title>{_e(title)} — phiếu giấy</title>'
            f'<style>{STYLE}</style></head><body>\n' + "\n".join(pages) + "\n</body></html>\n")


def _data_uri(name: str, data: bytes) -> str:
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"
