"""The one reader of label markup (XLSForm's markdown subset and ODK's simple HTML) and its two renderings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveys.markup import Line, Run, parse_markup, render_html, render_plain


@pytest.mark.parametrize("label, plain, html", [
    ("**Đậm** và *nghiêng* và _nghiêng_ và __đậm__", "Đậm và nghiêng và nghiêng và đậm",
     "<b>Đậm</b> và <i>nghiêng</i> và <i>nghiêng</i> và <b>đậm</b>"),
    ("# Tiêu đề\ndòng hai<br/>dòng ba", "Tiêu đề\ndòng hai\ndòng ba", "<b>Tiêu đề</b>\ndòng hai\ndòng ba"),
    ("<p>Một</p><p>Hai <strong>đậm</strong> <em>nghiêng</em></p>", "Một\nHai đậm nghiêng",
     "Một\nHai <b>đậm</b> <i>nghiêng</i>"),
    ("**đậm _lồng_ nhau**", "đậm lồng nhau", "<b>đậm <i>lồng</i> nhau</b>"),
    ("3 * 4 * 5 < 70 & hh_size_2", "3 * 4 * 5 < 70 & hh_size_2", "3 * 4 * 5 &lt; 70 &amp; hh_size_2"),
    ("**a _b** c_", "**a _b** c_", "**a _b** c_"),  # crossed: left as typed
    ("**chưa đóng", "**chưa đóng", "**chưa đóng"),
    ("<span style='color:red'>đỏ</span> &lt;tag&gt;", "đỏ <tag>", "đỏ &lt;tag&gt;"),
    ("#hashtag", "#hashtag", "#hashtag"),
])
def test_markup_is_read_once_and_rendered_plain_or_as_html(label, plain, html) -> None:
    assert render_plain(label) == plain
    assert render_html(label) == html


def test_lines_carry_runs_with_their_emphasis() -> None:
    assert parse_markup("# A\nx **y**") == (Line((Run("A"),), heading=True), Line((Run("x "), Run("y", bold=True))))


@given(st.text(alphabet="ab *_#<>&/\n", max_size=40))
def test_the_html_is_always_well_formed_and_shows_what_the_plain_text_shows(label: str) -> None:
    import html as stdlib_html
    import re
    rendered = render_html(label)
    stack: list[str] = []
    for closing, tag in re.findall(r"<(/?)([bi])>", rendered):
        if closing:
            assert stack and stack.pop() == tag, rendered
        else:
            stack.append(tag)
    assert not stack and "<" not in re.sub(r"</?[bi]>", "", rendered)
    assert stdlib_html.unescape(re.sub(r"</?[bi]>", "", rendered)) == render_plain(label)


def test_the_web_page_and_the_paper_form_show_a_labels_markup_escaped():
    """The same reader as Telegram's: bold and italic kept, anything else escaped."""
    from bot.web.pages import _said
    from fieldwork.paper_form import FormPrinter
    from surveys.engine import Say
    from surveys.xlsform import load_questionnaire_bytes

    [item] = _said([Say("Xin **lưu ý**: <script>x()</script> *ngày* mai")], "vi")
    assert str(item["text"]) == "Xin <b>lưu ý</b>: &lt;script&gt;x()&lt;/script&gt; <i>ngày</i> mai"
    form = load_questionnaire_bytes("""
| survey |
| | type | name | label |
| | text | q | Quý vị **thường** dùng <dịch vụ> nào? |
| settings |
| | form_id | version |
| | m | 1 |
""".strip().encode("utf-8"), "m.md")
    printer = FormPrinter(form)
    assert "Quý vị <b>thường</b> dùng &lt;dịch vụ&gt; nào?" in printer.both(form.questions[0].label)
