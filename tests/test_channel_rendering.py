"""What each channel's renderer makes of the engine's output, on one form: label HTML never sent
raw (buttons too), a date question's expected form beside it, the "answer again" notice before
the re-asked question, and one thank-you at the end. The real engine feeds the real renderers;
the calls are what the transports would send."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from bot.telegram.render import TelegramRenderer
from bot.zalo.channel import ZaloRenderer
from surveys import engine as E
from surveys.messages import say

FORM = """
| survey |
|        | type          | name  | label                                 | hint                    | constraint    |
|        | begin group   | part  | Phần <b>một</b>                       |                         |               |
|        | select_one yn | agree | Quý vị đồng ý?<br>Xin chọn một        | Gợi ý<p>thêm dòng</p>   |               |
|        | integer       | total | Tổng số lần                           |                         |               |
|        | integer       | some  | Trong đó, số lần trực tuyến           |                         | . <= ${total} |
|        | date          | visit | Ngày đến <i>cơ quan</i>               |                         | . <= today()  |
|        | end group     |       |                                       |                         |               |
|        | note          | bye   | Cảm ơn quý vị!<br>Hẹn gặp lại.        |                         |               |
| choices |
|         | list_name | name  | label                |
|         | yn        | co    | Có<br>ạ              |
|         | yn        | khong | <b>Không</b> &amp; thôi |
| settings |
|          | form_id | default_language |
|          | render  | vi               |
"""

CHANNELS = {"telegram": TelegramRenderer(), "zalo": ZaloRenderer()}
T0 = dt.datetime(2026, 6, 20, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))


class Session:
    def __init__(self, form):
        self.form, self.state, self.at = form, E.new_session(form, "vi"), T0

    def send(self, make) -> E.Step:
        self.at += dt.timedelta(minutes=1)
        step = E.step(self.form, self.state, make(self.state.seq, self.at))
        self.state = step.state
        return step


def rendered(channel: str, step: E.Step) -> list[dict]:
    calls, _ = CHANNELS[channel].render(list(step.say), "5", "vi")
    return [call.payload for call in calls if call.method == "sendMessage"]


def visible(payload: dict) -> str:
    """What Telegram shows of a message sent with parse_mode HTML: the text without its tags."""
    if payload.get("parse_mode") != "HTML":
        return payload["text"]
    return html.unescape(re.sub(r"</?[bi]>", "", payload["text"]))


def shown(payloads: list[dict]) -> str:
    """Every text a person sees: the messages and the labels of their buttons."""
    parts = []
    for payload in payloads:
        parts.append(visible(payload))
        for row in (payload.get("reply_markup") or {}).get("inline_keyboard", []):
            parts.extend(button["text"] for button in row)
    return "\n".join(parts)


def begin(form) -> tuple[Session, E.Step]:
    session = Session(form)
    session.send(lambda seq, at: E.Start(at))
    return session, session.send(lambda seq, at: E.Choose("yes", seq, at))


@pytest.mark.parametrize("channel", CHANNELS)
def test_label_html_is_never_sent_raw_and_a_date_shows_what_to_type(markdown_form, channel):
    session, first = begin(markdown_form(FORM))
    first_screen = shown(rendered(channel, first))
    for raw in ("<br>", "<p>", "</p>", "<b>", "</b>", "&amp;"):
        assert raw not in first_screen, (raw, first_screen)
    assert "Phần một" in first_screen and "Quý vị đồng ý?\nXin chọn một" in first_screen
    assert "Gợi ý\nthêm dòng" in first_screen
    assert "Có ạ" in first_screen and "Không & thôi" in first_screen  # options stay on one line
    if channel == "telegram":
        buttons = [b["text"] for row in rendered(channel, first)[-1]["reply_markup"]["inline_keyboard"] for b in row]
        assert "Có ạ" in buttons and "Không & thôi" in buttons
    session.send(lambda seq, at: E.Choose("1", seq, at))
    session.send(lambda seq, at: E.Reply("3", at, seq))
    date_step = session.send(lambda seq, at: E.Reply("1", at, seq))
    date_screen = shown(rendered(channel, date_step))
    ask = date_step.say[-1]
    assert ask.expected.startswith("ngày/tháng/năm, ví dụ ")
    assert f"Ngày đến cơ quan ({ask.expected})" in date_screen, date_screen
    assert "<i>" not in date_screen and "Xin nhập ngày theo dạng" not in date_screen


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_answer_again_notice_comes_before_the_question_it_reasks(markdown_form, channel):
    session, _ = begin(markdown_form(FORM))
    session.send(lambda seq, at: E.Choose("1", seq, at))
    session.send(lambda seq, at: E.Reply("5", at, seq))
    session.send(lambda seq, at: E.Reply("4", at, seq))  # some = 4 <= total = 5
    session.send(lambda seq, at: E.Back(at, seq))  # from the date back to "some"
    session.send(lambda seq, at: E.Back(at, seq))  # and to "total"
    step = session.send(lambda seq, at: E.Reply("2", at, seq))  # now 4 > 2: "some" is asked again
    texts = [visible(payload) for payload in rendered(channel, step)]
    notice = say("answer_again", "vi")
    assert notice in texts, texts
    assert any("Trong đó, số lần trực tuyến" in text for text in texts[texts.index(notice) + 1:]), texts
    assert not any("Trong đó, số lần trực tuyến" in text for text in texts[:texts.index(notice)]), texts


@pytest.mark.parametrize("channel", CHANNELS)
def test_one_thank_you_at_completion_the_closing_note_and_the_completed_line(markdown_form, channel):
    session, _ = begin(markdown_form(FORM))
    session.send(lambda seq, at: E.Choose("1", seq, at))
    session.send(lambda seq, at: E.Reply("5", at, seq))
    session.send(lambda seq, at: E.Reply("4", at, seq))
    last = session.send(lambda seq, at: E.Reply("15/06/2026", at, seq))
    assert session.state.status is E.Status.COMPLETED
    texts = [visible(payload) for payload in rendered(channel, last)]
    assert texts == [f"Cảm ơn quý vị!\nHẹn gặp lại.\n{say('completed', 'vi')}"], texts


MARKUP_FORM = """
| survey |
|        | type          | name  | label                                                    |
|        | note          | intro | # Phần một<br>Xin **đọc kỹ** & trả lời *thật lòng*        |
|        | select_one yn | agree | Quý vị **đồng ý** với _điều 3_ không? (3 * 4 < 13; mã hh_size) |
| choices |
|         | list_name | name  | label        |
|         | yn        | co    | **Có**       |
|         | yn        | khong | Không        |
| settings |
|          | form_id | default_language |
|          | markup  | vi               |
"""


def test_label_markup_is_telegram_html_escaped_and_plain_text_on_zalo(markdown_form):
    _, first = begin(markdown_form(MARKUP_FORM))
    telegram = rendered("telegram", first)
    assert all(payload.get("parse_mode") == "HTML" for payload in telegram)
    texts = "\n".join(payload["text"] for payload in telegram)
    assert "<b>Phần một</b>\nXin <b>đọc kỹ</b> &amp; trả lời <i>thật lòng</i>" in texts
    assert "Quý vị <b>đồng ý</b> với <i>điều 3</i> không? (3 * 4 &lt; 13; mã hh_size)" in texts
    buttons = [b["text"] for b in telegram[-1]["reply_markup"]["inline_keyboard"][0]]
    assert buttons == ["Có", "Không"]  # buttons cannot carry markup: plain
    zalo = shown(rendered("zalo", first))
    assert "Phần một\nXin đọc kỹ & trả lời thật lòng" in zalo
    assert "Quý vị đồng ý với điều 3 không? (3 * 4 < 13; mã hh_size)" in zalo
    for marker in ("**", "<b>", "# ", "_điều", "&amp;"):
        assert marker not in zalo, marker
