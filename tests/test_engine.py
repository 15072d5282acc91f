"""Example-based tests of the conversation engine, on small forms written as XLSForm markdown."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest

from surveys import codec
from surveys import engine as E
from surveys import engine_plan
from surveys.engine import Ask, Say, Status, Tone
from surveys.expressions import NOT_APPLICABLE
from surveys.model import QuestionType
from surveys.xlsform import load_questionnaire

T0 = dt.datetime(2025, 3, 1, 8, 0, 0)
TEMPLATES = Path(__file__).resolve().parents[1] / "surveys" / "templates"

CHOICES = """
| choices |
| | list_name | name | label::Tiếng Việt (vi) | label::English (en) |
| | l | a | Hài lòng | Satisfied |
| | l | b | Bình thường | Neutral |
| | l | c | Không hài lòng | Dissatisfied |
"""

HEADER = ("| | type | name | label::Tiếng Việt (vi) | label::English (en) | required "
          "| required_message::Tiếng Việt (vi) | required_message::English (en) | relevant | constraint "
          "| constraint_message::Tiếng Việt (vi) | constraint_message::English (en) | calculation "
          "| choice_filter | default |")


def survey(*rows: str) -> str:
    """A survey sheet with the columns of HEADER; each row is its cells after `| |`."""
    return "| survey |\n" + HEADER + "\n" + "\n".join(f"| | {row} |" for row in rows) + "\n" + CHOICES


class Chat:
    """Drives one session, one minute per event, and checks the codec round trip after each step."""

    def __init__(self, form, language: str | None = None):
        self.form = form
        self.state = E.new_session(form, language)
        self.time = T0
        self.events: list = []
        self.result: E.Step | None = None

    def tick(self) -> dt.datetime:
        self.time += dt.timedelta(minutes=1)
        return self.time

    def send(self, event) -> E.Step:
        self.events.append(event)
        result = E.step(self.form, self.state, event)
        assert codec.decode_state(codec.encode_state(result.state)) == result.state
        assert codec.decode_event(codec.encode_event(event)) == event
        self.result = result
        self.state = result.state
        return result

    # events, with the current seq unless told otherwise
    def start(self) -> E.Step:
        return self.send(E.Start(self.tick()))

    def consent(self, key: str = "yes") -> E.Step:
        return self.send(E.Choose(key, self.state.seq, self.tick()))

    def begin(self) -> E.Step:
        self.start()
        return self.consent()

    def reply(self, text: str, seq: int | None = None) -> E.Step:
        return self.send(E.Reply(text, self.tick(), seq))

    def choose(self, key: str, seq: int | None = None) -> E.Step:
        return self.send(E.Choose(key, self.state.seq if seq is None else seq, self.tick()))

    def toggle(self, key: str) -> E.Step:
        return self.send(E.Toggle(key, self.state.seq, self.tick()))

    def done(self) -> E.Step:
        return self.send(E.Done(self.state.seq, self.tick()))

    def back(self) -> E.Step:
        return self.send(E.Back(self.tick(), self.state.seq))

    def stop(self, refuse: bool = False) -> E.Step:
        return self.send(E.Stop(self.tick(), refuse))

    def resume(self) -> E.Step:
        return self.send(E.Resume(self.tick()))

    def language(self, code: str) -> E.Step:
        return self.send(E.SetLanguage(code, self.tick()))

    # what was said
    @property
    def ask(self) -> Ask:
        asks = [out for out in self.result.say if isinstance(out, Ask)]
        assert asks, self.result.say
        return asks[-1]

    def said(self, tone: Tone | None = None) -> list[str]:
        return [out.text for out in self.result.say if isinstance(out, Say) and (tone is None or out.tone is tone)]

    def error(self) -> str:
        errors = self.said(Tone.ERROR)
        assert errors, self.result.say
        return errors[0]


def rejected(chat: Chat, before: E.SessionState) -> None:
    assert chat.result.accepted is False
    assert chat.state == before
    assert dict(chat.result.changes) == {}


# -- consent -------------------------------------------------------------------------------

ONE_QUESTION = survey("text | name | Tên | Name |  |  |  |  |  |  |  |  |  |  |")


def test_consent_screen_comes_first_and_accepting_asks_the_first_question(markdown_form):
    chat = Chat(markdown_form(ONE_QUESTION))
    chat.start()
    assert chat.state.status is Status.CONSENT and chat.state.current == E.CONSENT
    assert chat.ask.kind is E.PromptKind.CONSENT and chat.ask.seq == chat.state.seq == 1
    assert [o.key for o in chat.ask.options] == ["yes", "no"]
    chat.consent("yes")
    assert chat.state.status is Status.ACTIVE and chat.state.current == "name"
    assert chat.ask.question == "name" and chat.ask.text == "Tên" and chat.ask.seq == 2


@pytest.mark.parametrize("text", ["có", "Đồng ý", "yes", "1", "I agree"])
def test_consent_can_be_typed(markdown_form, text):
    chat = Chat(markdown_form(ONE_QUESTION))
    chat.start()
    chat.reply(text)
    assert chat.state.status is Status.ACTIVE and chat.state.current == "name"


def test_declining_consent_refuses_and_asks_nothing(markdown_form):
    chat = Chat(markdown_form(ONE_QUESTION))
    chat.start()
    chat.consent("no")
    assert chat.state.status is Status.REFUSED and chat.state.current is None
    assert chat.said(Tone.THANKS)
    assert not any(isinstance(o, Ask) for o in chat.result.say)
    before = chat.state
    chat.reply("Nguyễn Văn A")
    rejected(chat, before)
    assert "từ chối" in chat.said()[0]


def test_unclear_consent_answer_is_asked_again(markdown_form):
    chat = Chat(markdown_form(ONE_QUESTION))
    chat.start()
    before = chat.state
    chat.reply("để xem")
    rejected(chat, before)
    assert chat.error() and chat.ask.kind is E.PromptKind.CONSENT and chat.ask.update


@pytest.mark.parametrize("text", ["Không đồng ý", "I decline"])
def test_the_consent_labels_the_unclear_reply_names_decline_when_typed(markdown_form, text):
    chat = Chat(markdown_form(ONE_QUESTION))
    chat.start()
    chat.reply(text)
    assert chat.state.status is Status.REFUSED


def test_events_before_start_say_not_started(markdown_form):
    chat = Chat(markdown_form(ONE_QUESTION))
    before = chat.state
    chat.reply("xin chào")
    rejected(chat, before)
    assert "/start" in chat.said()[0]


# -- question types ------------------------------------------------------------------------

TYPES = survey(
    "integer | n | Số | Number |  |  |  |  |  |  |  |  |  |  |",
    "decimal | d | Thập phân | Decimal |  |  |  |  |  |  |  |  |  |  |",
    "date | day | Ngày | Day |  |  |  |  |  |  |  |  |  |  |",
    "text | t | Chữ | Text |  |  |  |  |  |  |  |  |  |  |",
    "acknowledge | ack | Xác nhận | Confirm |  |  |  |  |  |  |  |  |  |  |",
)


def at_question(chat: Chat, name: str) -> None:
    """Answer with blanks (all optional) until `name` is on screen."""
    if chat.state.status is Status.NEW:
        chat.begin()
    while chat.state.current != name:
        chat.reply("")
    assert chat.state.current == name


@pytest.mark.parametrize("text, value", [("12", 12), ("-3", -3), ("+7", 7), ("1 000", 1000), ("0", 0)])
def test_integer_answers(markdown_form, text, value):
    chat = Chat(markdown_form(TYPES))
    at_question(chat, "n")
    chat.reply(text)
    assert chat.result.changes["n"] == value and type(chat.state.answers["n"]) is int
    assert chat.state.current == "d"


@pytest.mark.parametrize("text", ["1 2", "12a", "1.5", "mười", "1,000"])
def test_integer_rejects_what_is_not_a_whole_number(markdown_form, text):
    chat = Chat(markdown_form(TYPES))
    at_question(chat, "n")
    before = chat.state
    chat.reply(text)
    rejected(chat, before)
    assert chat.error() == "Xin nhập một số nguyên (chỉ gồm chữ số). Ví dụ: 12."
    assert chat.ask.question == "n" and chat.ask.update


@pytest.mark.parametrize("text, value", [("3,5", 3.5), ("3.5", 3.5), ("7", 7.0), ("-0,25", -0.25),
                                         ("1 000,5", 1000.5)])
def test_decimal_answers(markdown_form, text, value):
    chat = Chat(markdown_form(TYPES))
    at_question(chat, "d")
    chat.reply(text)
    assert chat.state.answers["d"] == value and isinstance(chat.state.answers["d"], float)


@pytest.mark.parametrize("text", ["3 5", "3,5,1", "ba", "1.000,5"])
def test_decimal_rejects_garbage(markdown_form, text):
    chat = Chat(markdown_form(TYPES))
    at_question(chat, "d")
    before = chat.state
    chat.reply(text)
    rejected(chat, before)


@pytest.mark.parametrize("text", ["2025-12-25", "25/12/2025", "25.12.2025", "25-12-2025"])
def test_date_answers(markdown_form, text):
    chat = Chat(markdown_form(TYPES))
    at_question(chat, "day")
    chat.reply(text)
    assert chat.state.answers["day"] == dt.date(2025, 12, 25)


@pytest.mark.parametrize("text", ["31/02/2025", "2025-02-30", "29/02/2025", "12/25/2025", "hôm qua", "2025"])
def test_invalid_dates_are_rejected(markdown_form, text):
    chat = Chat(markdown_form(TYPES))
    at_question(chat, "day")
    before = chat.state
    chat.reply(text)
    rejected(chat, before)
    assert "25/12/2025" in chat.error()


def test_text_and_acknowledge(markdown_form):
    chat = Chat(markdown_form(TYPES))
    at_question(chat, "t")
    chat.reply("  Rất tốt, cảm ơn  ")
    assert chat.state.answers["t"] == "Rất tốt, cảm ơn"
    assert chat.ask.kind is E.PromptKind.ACKNOWLEDGE
    before = chat.state
    chat.reply("chưa")
    rejected(chat, before)
    chat.choose("ok")
    assert chat.state.answers["ack"] == "OK" and chat.state.status is Status.COMPLETED


def test_acknowledge_typed_ok(markdown_form):
    chat = Chat(markdown_form(TYPES))
    at_question(chat, "ack")
    chat.reply("OK")
    assert chat.state.answers["ack"] == "OK"


# -- select one ----------------------------------------------------------------------------

SELECTS = survey(
    "select_one l | one | Một | One | yes |  |  |  |  |  |  |  |  |  |",
    "select_multiple l | many | Nhiều | Many | yes | Chọn ít nhất một. | Choose at least one. "
    "|  |  |  |  |  |  |  |",
    "text | after | Sau | After |  |  |  |  |  |  |  |  |  |  |",
)


@pytest.mark.parametrize("reply", ["b", "2", "２", "Bình thường", "binh thuong", "BÌNH THƯỜNG"])
def test_select_one_by_name_number_or_label(markdown_form, reply):
    chat = Chat(markdown_form(SELECTS))
    chat.begin()
    assert [(o.key, o.number, o.name, o.label) for o in chat.ask.options] == [
        ("1", 1, "a", "Hài lòng"), ("2", 2, "b", "Bình thường"), ("3", 3, "c", "Không hài lòng")]
    chat.reply(reply)
    assert chat.result.changes["one"] == "b"


@pytest.mark.parametrize("reply", ["²", "1²", "⑵"])
def test_a_digit_that_is_no_number_is_an_unknown_choice(markdown_form, reply):
    chat = Chat(markdown_form(SELECTS))
    chat.begin()
    chat.reply(reply)
    assert not chat.result.accepted and "one" not in chat.state.answers
    assert chat.result.say[0].tone is E.Tone.ERROR


def test_select_one_label_without_accents(markdown_form):
    chat = Chat(markdown_form(SELECTS))
    chat.begin()
    chat.reply("hai long")
    assert chat.state.answers["one"] == "a"


def test_select_one_button_and_unknown_choice(markdown_form):
    chat = Chat(markdown_form(SELECTS))
    chat.begin()
    before = chat.state
    chat.reply("9")
    rejected(chat, before)
    assert "9" in chat.error()
    chat.choose("7")
    rejected(chat, before)
    chat.choose("3")
    assert chat.state.answers["one"] == "c"


def test_toggle_on_a_select_one_is_refused(markdown_form):
    chat = Chat(markdown_form(SELECTS))
    chat.begin()
    before = chat.state
    chat.toggle("1")
    rejected(chat, before)


# -- select multiple -----------------------------------------------------------------------


def test_select_multiple_typed(markdown_form):
    chat = Chat(markdown_form(SELECTS))
    chat.begin()
    chat.choose("1")
    chat.reply("c a")
    assert chat.result.changes["many"] == ("a", "c")  # in form order
    chat.back()
    chat.reply("1 2")
    assert chat.state.answers["many"] == ("a", "b")


def test_select_multiple_toggle_and_done(markdown_form):
    chat = Chat(markdown_form(SELECTS))
    chat.begin()
    chat.choose("1")
    seq = chat.state.seq
    chat.toggle("3")
    assert chat.ask.update and chat.ask.seq == seq
    assert [o.selected for o in chat.ask.options] == [False, False, True]
    assert dict(chat.result.changes) == {} and "many" not in chat.state.answers
    chat.toggle("1")
    chat.toggle("3")  # off again
    assert [o.selected for o in chat.ask.options] == [True, False, False]
    assert chat.state.seq == seq
    chat.done()
    assert chat.result.changes["many"] == ("a",) and chat.state.current == "after"


def test_a_tick_or_untick_pressed_twice_counts_once(markdown_form):
    chat = Chat(markdown_form(SELECTS))
    chat.begin()
    chat.choose("1")
    seq = chat.state.seq
    chat.send(E.Toggle("3", seq, chat.tick(), on=True))
    chat.send(E.Toggle("3", seq, chat.tick(), on=True))  # the double tap: the mark stays
    assert chat.state.draft == ("c",) and not chat.result.accepted
    assert [(s.text, s.tone) for s in chat.result.say if isinstance(s, E.Say)] == [("Đã chọn rồi.", E.Tone.STALE)]
    chat.send(E.Toggle("3", seq, chat.tick(), on=False))
    chat.send(E.Toggle("3", seq, chat.tick(), on=False))
    assert chat.state.draft == () and not chat.result.accepted
    assert [s.text for s in chat.result.say if isinstance(s, E.Say)] == ["Đã bỏ chọn rồi."]
    chat.send(E.Toggle("1", seq, chat.tick(), on=True))
    chat.done()
    assert chat.result.changes["many"] == ("a",)


def test_done_with_nothing_on_a_required_multi_select(markdown_form):
    chat = Chat(markdown_form(SELECTS))
    chat.begin()
    chat.choose("1")
    chat.toggle("2")
    chat.toggle("2")
    before = chat.state
    chat.done()
    rejected(chat, before)
    assert chat.error() == "Chọn ít nhất một."


def test_done_on_a_question_that_is_not_multi_select(markdown_form):
    chat = Chat(markdown_form(SELECTS))
    chat.begin()
    before = chat.state
    chat.done()
    rejected(chat, before)


# -- required and constraints --------------------------------------------------------------

REQUIRED = survey(
    "integer | age | Tuổi | Age | yes | Xin cho biết tuổi. | Please give your age. |  | . >= 18 and . < 120 "
    "| Tuổi phải từ 18. | Age must be 18 or more. |  |  |  |",
    "text | name | Tên | Name | yes |  |  |  |  |  |  |  |  |  |",
    "text | note_ | Ghi chú | Notes |  |  |  |  | string-length(.) <= 3 |  |  |  |  |  |",
)


def test_required_message_in_the_respondents_language(markdown_form):
    form = markdown_form(REQUIRED)
    # The form's message, then an example that satisfies the constraint (18 to 119).
    for language, message in (("vi", "Xin cho biết tuổi. Ví dụ: 30."), ("en", "Please give your age. For example: 30.")):
        chat = Chat(form, language)
        chat.begin()
        before = chat.state
        chat.reply("")
        rejected(chat, before)
        assert chat.error() == message


def test_required_without_a_message_uses_the_software_words(markdown_form):
    form = markdown_form(REQUIRED)
    for language, message in (("vi", "Câu hỏi này cần có câu trả lời; xin quý vị trả lời để tiếp tục."),
                              ("en", "This question needs an answer; please answer it to go on.")):
        chat = Chat(form, language)
        chat.begin()
        chat.reply("30")
        chat.reply("")
        assert chat.error() == message


def test_constraint_with_dot_and_its_message(markdown_form):
    chat = Chat(markdown_form(REQUIRED))
    chat.begin()
    before = chat.state
    chat.reply("17")
    rejected(chat, before)
    assert chat.error() == "Tuổi phải từ 18. Ví dụ: 30."
    chat.language("en")
    chat.reply("200")
    assert chat.error() == "Age must be 18 or more. For example: 30."
    chat.reply("18")
    assert chat.state.answers["age"] == 18


def test_constraint_without_message_and_optional_blank(markdown_form):
    chat = Chat(markdown_form(REQUIRED))
    chat.begin()
    chat.reply("40")
    chat.reply("An")
    chat.reply("dài quá")
    assert chat.error() == "Câu trả lời chưa phù hợp với yêu cầu của câu hỏi; xin quý vị trả lời lại."
    chat.reply("")  # optional: left empty, the constraint does not apply
    assert chat.state.answers["note_"] is None and chat.state.status is Status.COMPLETED


# -- relevance, groups, calculations, choice filters -----------------------------------------

FLOW = survey(
    "select_one l | q1 | Câu 1 | Q1 | yes |  |  |  |  |  |  |  |  |  |",
    "text | q2 | Câu 2 | Q2 | yes |  |  | ${q1} = 'a' |  |  |  |  |  |  |",
    "integer | n | Số | Number | yes |  |  |  |  |  |  |  |  |  |",
    "calculate | c |  |  |  |  |  |  |  |  |  | ${n} * 2 |  |  |",
    "text | q4 | Câu 4 | Q4 |  |  |  | ${c} > 10 |  |  |  |  |  |  |",
    "end | end |  |  |  |  |  |  |  |  |  |  |  |  |",
)


def test_skipped_question_is_recorded_not_applicable(markdown_form):
    chat = Chat(markdown_form(FLOW))
    chat.begin()
    chat.reply("b")
    assert chat.result.changes == {"q1": "b", "q2": NOT_APPLICABLE}
    assert chat.state.current == "n"
    chat.reply("3")
    assert chat.result.changes == {"n": 3, "c": 6, "q4": NOT_APPLICABLE, "end": chat.time}
    assert chat.state.status is Status.COMPLETED


def test_calculation_recomputed_after_an_answer_changes(markdown_form):
    chat = Chat(markdown_form(FLOW))
    chat.begin()
    chat.reply("a")
    chat.reply("xin chào")
    chat.reply("7")
    assert chat.state.answers["c"] == 14 and chat.state.current == "q4"
    chat.back()
    assert chat.state.current == "n" and chat.ask.current_answer == "7"
    chat.reply("4")
    assert chat.result.changes["n"] == 4 and chat.result.changes["c"] == 8
    # q4 is no longer relevant: the flow goes past it to the end.
    assert chat.result.changes["q4"] is NOT_APPLICABLE and chat.state.status is Status.COMPLETED


def test_back_shows_the_answer_and_a_change_reevaluates_later_relevance(markdown_form):
    chat = Chat(markdown_form(FLOW))
    chat.begin()
    chat.reply("a")
    chat.reply("chi tiết")
    assert chat.state.current == "n"
    seq = chat.state.seq
    chat.back()
    assert chat.state.current == "q2" and chat.ask.current_answer == "chi tiết" and not chat.ask.update
    assert chat.state.seq == seq + 1 and dict(chat.result.changes) == {}
    chat.back()
    assert chat.state.current == "q1" and chat.ask.current_answer == "Hài lòng"
    assert not chat.ask.can_go_back
    before = chat.state
    chat.back()
    rejected(chat, before)
    chat.choose("2")
    assert chat.result.changes == {"q1": "b", "q2": NOT_APPLICABLE}
    assert chat.state.current == "n"  # the first question still unanswered
    chat.back()
    assert chat.state.current == "q1"  # q2 is skipped going back too


def test_back_then_keep_answer_continues_at_first_unanswered(markdown_form):
    chat = Chat(markdown_form(FLOW))
    chat.begin()
    chat.reply("a")
    chat.reply("x")
    chat.back()
    chat.back()
    chat.reply("")  # keep the current answer
    assert chat.state.answers["q1"] == "a" and dict(chat.result.changes) == {}
    assert chat.state.current == "n"


GROUPS = survey(
    "select_one l | q1 | Câu 1 | Q1 | yes |  |  |  |  |  |  |  |  |  |",
    "begin group | g | Nhóm G | Group G |  |  |  | ${q1} = 'a' |  |  |  |  |  |  |",
    "text | g1 | G1 | G1 |  |  |  |  |  |  |  |  |  |  |",
    "note | gn | Ghi chú nhóm | Group note |  |  |  |  |  |  |  |  |  |  |",
    "integer | g2 | G2 | G2 |  |  |  |  |  |  |  |  |  |  |",
    "end group |  |  |  |  |  |  |  |  |  |  |  |  |  |",
    "text | last | Cuối | Last |  |  |  |  |  |  |  |  |  |  |",
)


def test_group_relevance_skips_the_whole_group(markdown_form):
    chat = Chat(markdown_form(GROUPS))
    chat.begin()
    chat.reply("c")
    assert chat.result.changes == {"q1": "c", "g1": NOT_APPLICABLE, "gn": NOT_APPLICABLE, "g2": NOT_APPLICABLE}
    assert chat.state.current == "last"


def test_group_heading_and_notes(markdown_form):
    chat = Chat(markdown_form(GROUPS))
    chat.begin()
    chat.reply("a")
    assert chat.state.current == "g1" and chat.ask.section == "Nhóm G"
    chat.reply("x")
    assert chat.said(Tone.NOTE) == ["Ghi chú nhóm"]
    assert chat.state.current == "g2" and chat.ask.section == ""
    chat.back()
    chat.reply("y")
    assert chat.said(Tone.NOTE) == []  # a note is shown once


FILTER = survey(
    "select_one l | best | Tốt nhất | Best | yes |  |  |  |  |  |  |  |  |  |",
    "select_one l | second | Thứ hai | Second | yes |  |  |  |  |  |  |  | name != ${best} |  |",
    "select_multiple l | others | Khác | Others |  |  |  |  |  |  |  |  | name != ${best} | a |",
)


def test_choice_filter_hides_options_and_a_hidden_option_cannot_be_chosen(markdown_form):
    chat = Chat(markdown_form(FILTER))
    chat.begin()
    chat.choose("1")  # a
    assert [(o.key, o.number, o.name) for o in chat.ask.options] == [("2", 1, "b"), ("3", 2, "c")]
    before = chat.state
    chat.choose("1")  # the key of the hidden `a`
    rejected(chat, before)
    chat.reply("a")
    rejected(chat, before)
    chat.reply("hai long")
    rejected(chat, before)
    chat.reply("1")  # shown number 1 is `b`
    assert chat.state.answers["second"] == "b"


def test_a_hidden_default_is_not_submitted(markdown_form):
    chat = Chat(markdown_form(FILTER))
    chat.begin()
    chat.choose("1")
    chat.choose("2")
    assert chat.state.current == "others"
    before = chat.state
    chat.toggle("1")
    rejected(chat, before)
    chat.done()
    assert chat.state.answers["others"] is None  # the default `a` is hidden here


# -- stale prompts, language, stop and resume ------------------------------------------------


def test_stale_seq_changes_nothing(markdown_form):
    chat = Chat(markdown_form(FLOW))
    chat.begin()
    old = chat.state.seq
    chat.choose("1")
    before = chat.state
    chat.choose("2", seq=old)
    rejected(chat, before)
    assert chat.result.say == (Say("Câu hỏi đó đã qua; xin quý vị trả lời câu hỏi hiện tại.", Tone.STALE),)
    chat.reply("văn bản", seq=old)
    rejected(chat, before)
    chat.send(E.Back(chat.tick(), old))
    rejected(chat, before)
    chat.send(E.Done(old + 100, chat.tick()))
    rejected(chat, before)


def test_double_tap_second_is_stale(markdown_form):
    chat = Chat(markdown_form(FLOW))
    chat.begin()
    tap = E.Choose("1", chat.state.seq, chat.tick())
    chat.send(tap)
    assert chat.result.accepted and chat.state.answers["q1"] == "a"
    before = chat.state
    chat.send(tap)
    rejected(chat, before)
    assert chat.said(Tone.STALE)


def test_set_language_rerenders_in_english(markdown_form):
    form = markdown_form(FLOW)
    chat = Chat(form)
    chat.begin()
    assert chat.ask.progress == "Tiến độ ░░░░░░░░░░ 0%"
    seq = chat.state.seq
    chat.language("en")
    assert chat.said() == ["Switched to English."]
    assert chat.ask.text == "Q1" and chat.ask.progress == "Progress ░░░░░░░░░░ 0%" and chat.ask.seq == seq + 1
    assert [o.label for o in chat.ask.options] == ["Satisfied", "Neutral", "Dissatisfied"]
    chat.reply("satisfied")
    assert chat.state.answers["q1"] == "a"
    assert chat.ask.progress == "Progress ▓▓░░░░░░░░ 25%"  # q2: one of the form's four questions is behind


def test_unknown_language_is_refused(markdown_form):
    chat = Chat(markdown_form(FLOW))
    chat.begin()
    before = chat.state
    chat.language("fr")
    rejected(chat, before)
    assert "fr" in chat.error() and "en" in chat.error()


def test_progress_is_the_share_of_the_forms_questions_behind(markdown_form):
    chat = Chat(markdown_form(TYPES))
    chat.begin()
    assert chat.ask.progress == "Tiến độ ░░░░░░░░░░ 0%"
    chat.reply("1")
    assert chat.ask.progress == "Tiến độ ▓▓░░░░░░░░ 20%"
    english = Chat(markdown_form(TYPES), "en")
    english.begin()
    assert english.ask.progress == "Progress ░░░░░░░░░░ 0%"


def test_stop_pauses_and_resume_asks_the_same_question(markdown_form):
    chat = Chat(markdown_form(FLOW))
    chat.begin()
    chat.choose("1")
    old = chat.state.seq
    chat.stop()
    assert chat.state.status is Status.PAUSED and chat.state.current == "q2"
    assert not any(isinstance(o, Ask) for o in chat.result.say)
    chat.resume()
    assert chat.state.status is Status.ACTIVE and chat.ask.question == "q2" and chat.ask.seq == old + 1
    assert chat.said() == ["Tiếp tục từ câu quý vị đang trả lời."]
    before = chat.state
    chat.reply("cũ", seq=old)  # the prompt before the pause is stale now
    rejected(chat, before)


def test_refuse_mid_survey_and_answers_after_are_refused_politely(markdown_form):
    chat = Chat(markdown_form(FLOW))
    chat.begin()
    chat.choose("1")
    chat.stop(refuse=True)
    assert chat.state.status is Status.REFUSED and chat.said(Tone.THANKS)
    before = chat.state
    chat.reply("thêm")
    rejected(chat, before)
    assert chat.said() == ["Quý vị đã từ chối tham gia. Nếu muốn tiếp tục, xin gửi /resume."]
    chat.stop()  # stopping a refusal does not turn it into a pause
    rejected(chat, before)
    chat.resume()
    assert chat.state.status is Status.ACTIVE and chat.ask.question == "q2"


def test_refused_at_consent_then_stop_then_reply_does_not_crash(markdown_form):
    chat = Chat(markdown_form(FLOW))
    chat.start()
    chat.consent("no")
    chat.stop()
    assert chat.state.status is Status.REFUSED
    chat.reply("x")
    chat.back()
    assert chat.state.status is Status.REFUSED
    chat.resume()
    assert chat.state.status is Status.CONSENT


# -- completion, metadata, determinism ------------------------------------------------------

META = survey(
    "start | start |  |  |  |  |  |  |  |  |  |  |  |  |",
    "today | today |  |  |  |  |  |  |  |  |  |  |  |  |",
    "deviceid | deviceid |  |  |  |  |  |  |  |  |  |  |  |  |",
    "date | visit | Ngày | Day |  |  |  |  | . <= today() |  |  |  |  |  |",
    "end | end |  |  |  |  |  |  |  |  |  |  |  |  |",
)


def test_metadata_and_completion(markdown_form):
    chat = Chat(markdown_form(META))
    chat.start()
    chat.consent()
    consent_time = chat.time
    assert chat.result.changes == {"start": consent_time, "today": consent_time.date(), "deviceid": None}
    before = chat.state
    chat.reply("02/03/2025")  # after `today` (the day of consent): refused
    rejected(chat, before)
    chat.reply("01/03/2025")
    assert chat.state.status is Status.COMPLETED and chat.state.current is None
    assert chat.result.changes == {"visit": dt.date(2025, 3, 1), "end": chat.time}
    assert chat.state.completed_at == chat.time and chat.state.started_at == consent_time
    assert chat.said(Tone.THANKS) == ["Quý vị đã hoàn thành khảo sát. Xin chân thành cảm ơn!"]
    done = chat.state
    for event in (E.Reply("nữa", chat.tick()), E.Start(chat.tick()), E.Resume(chat.tick()),
                  E.Back(chat.tick()), E.Stop(chat.tick()), E.Choose("1", done.seq, chat.tick())):
        chat.send(event)
        rejected(chat, done)
        assert chat.said() == ["Quý vị đã hoàn thành khảo sát này rồi. Cảm ơn quý vị!"]


def test_same_events_give_the_same_result(markdown_form):
    form = markdown_form(META)
    first = Chat(form)
    first.begin()
    first.reply("01/01/2025")
    replay = E.new_session(form)
    for event in first.events:
        replay = E.step(form, replay, event).state
    assert replay == first.state
    # No clock inside: the same events a year later still give the recorded times.
    assert replay.answers["start"] == T0 + dt.timedelta(minutes=2)


def test_state_survives_storage_between_steps(markdown_form):
    form = markdown_form(FLOW)
    direct = Chat(form)
    direct.begin()
    for text in ("a", "x", "12"):
        direct.reply(text)
    stored = E.new_session(form)
    for event in direct.events:
        stored = codec.decode_state(codec.encode_state(E.step(form, stored, event).state))
    assert stored == direct.state


# -- bundled templates --------------------------------------------------------------------


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.md")))
def test_bundled_templates_complete_with_cooperative_answers(template):
    form = load_questionnaire(TEMPLATES / template)
    chat = Chat(form)
    chat.begin()
    for _ in range(5 * len(form.asked)):
        if chat.state.status is Status.COMPLETED:
            break
        question = form.question(chat.state.current)
        if question.type is QuestionType.SELECT_ONE:
            chat.choose(chat.ask.options[0].key)
        elif question.type is QuestionType.SELECT_MULTIPLE:
            chat.toggle(E.current_prompt(form, chat.state).options[0].key)
            chat.done()
        elif question.type is QuestionType.ACKNOWLEDGE:
            chat.choose("ok")
        else:
            candidates = {QuestionType.INTEGER: ("1985", "10", "1"), QuestionType.DECIMAL: ("3,5",),
                          QuestionType.DATE: ("01/01/2025",)}.get(question.type, ("Không có",))
            for text in candidates:
                chat.reply(text)
                if chat.result.accepted:
                    break
        assert chat.result.accepted, (question.name, chat.result.say)
    assert chat.state.status is Status.COMPLETED


# -- per-form caches (surveys.engine_plan._Plan): the same steps as a form that has cached nothing --


def replay_steps(form, events) -> list[E.Step]:
    """Every step of `events` from a new session, the state stored and read back between steps."""
    state, steps = E.new_session(form), []
    for event in events:
        result = E.step(form, state, event)
        steps.append(result)
        state = codec.decode_state(codec.encode_state(result.state))
    return steps


RELEVANCE_AND_PROGRESS = survey(
    "select_one l | q1 | Câu 1 | Q1 | yes |  |  |  |  |  |  |  |  |  |",
    "text | q2 | Câu 2 | Q2 | yes |  |  | ${q1} = 'a' |  |  |  |  |  |  |",
    "begin group | g | Nhóm G | Group G |  |  |  | ${q1} != 'c' |  |  |  |  |  |  |",
    "integer | n | Số | Number | yes |  |  |  |  |  |  |  |  |  |",
    "text | g2 | G2 | G2 |  |  |  | ${n} > 5 |  |  |  |  |  |  |",
    "end group |  |  |  |  |  |  |  |  |  |  |  |  |  |",
    "calculate | c |  |  |  |  |  |  |  |  |  | ${n} * 2 |  |  |",
    "text | q4 | Câu 4 (${c}) | Q4 (${c}) |  |  |  | ${c} > 10 |  |  |  |  |  |  |",
    "text | last | Cuối | Last |  |  |  |  |  |  |  |  |  |  |",
)


def answer_relevance_and_progress(form, first: str, number: str | None) -> Chat:
    """A session of RELEVANCE_AND_PROGRESS: the first choice, the text q2 asks after "a", a number."""
    chat = Chat(form)
    chat.begin()
    chat.reply(first)
    if first == "a":
        chat.reply("chữ")
    if number is not None:
        chat.reply(number)
    return chat


def test_a_changed_answer_changes_relevance_and_progress_after_caching(markdown_form):
    form = markdown_form(RELEVANCE_AND_PROGRESS)
    # Warm the form's caches with other sessions and other answers first.
    for first, number in (("a", "7"), ("b", "3"), ("c", None), ("a", "2")):
        answer_relevance_and_progress(form, first, number)
    chat = Chat(form)
    chat.begin()
    # Six questions to ask: the share of them behind the one on screen, whether they apply or not.
    assert chat.ask.progress == "Tiến độ ░░░░░░░░░░ 0%"
    chat.reply("a")
    assert chat.state.current == "q2" and chat.ask.progress == "Tiến độ ▓░░░░░░░░░ 16%"
    chat.reply("chữ")
    chat.reply("7")  # g2 becomes relevant
    assert chat.state.current == "g2" and chat.ask.progress == "Tiến độ ▓▓▓▓▓░░░░░ 50%"
    chat.back()
    chat.back()
    assert chat.state.current == "q2"
    chat.back()
    chat.reply("b")  # q2 no longer relevant; the flow goes on at g2, still unanswered
    assert chat.result.changes == {"q1": "b", "q2": NOT_APPLICABLE}
    assert chat.state.current == "g2" and chat.ask.progress == "Tiến độ ▓▓▓▓▓░░░░░ 50%"
    chat.back()
    chat.reply("3")  # g2 drops out; c is calculated and q4 skipped
    assert chat.result.changes == {"n": 3, "g2": NOT_APPLICABLE, "c": 6, "q4": NOT_APPLICABLE}
    assert chat.state.current == "last" and chat.ask.progress == "Tiến độ ▓▓▓▓▓▓▓▓░░ 83%"
    chat.back()
    chat.back()
    chat.reply("c")  # the whole group goes, and c with it
    assert chat.result.changes == {"q1": "c", "n": NOT_APPLICABLE, "c": None}
    assert chat.state.current == "last" and chat.ask.progress == "Tiến độ ▓▓▓▓▓▓▓▓░░ 83%"
    # The same events on a form object that has never cached anything give the very same steps.
    assert replay_steps(markdown_form(RELEVANCE_AND_PROGRESS), chat.events) == replay_steps(form, chat.events)


def test_piped_labels_follow_a_changed_calculation(markdown_form):
    form = markdown_form(RELEVANCE_AND_PROGRESS)
    chat = Chat(form)
    chat.begin()
    chat.reply("b")
    chat.reply("6")
    chat.reply("")  # g2
    assert chat.state.current == "q4" and chat.ask.text == "Câu 4 (12)" and chat.ask.progress == "Tiến độ ▓▓▓▓▓▓░░░░ 66%"
    chat.back()
    chat.back()
    assert chat.state.current == "n"
    chat.reply("8")
    assert chat.result.changes == {"n": 8, "c": 16}
    assert chat.state.current == "q4" and chat.ask.text == "Câu 4 (16)"


TYPED_CALCULATIONS = survey(
    "select_one l | x | X | X | yes |  |  |  |  |  |  |  |  |  |",
    "calculate | c1 |  |  |  |  |  |  |  |  |  | if(${x} = 'a', 0, if(${x} = 'b', 0.0, -0.0)) |  |  |",
    "calculate | c2 |  |  |  |  |  |  |  |  |  | ${c1} * 1 |  |  |",
    "calculate | c3 |  |  |  |  |  |  |  |  |  | 1 div ${c1} |  |  |",
    "text | t | T | T |  |  |  | ${c2} = 0 |  |  |  |  |  |  |",
)


@pytest.mark.parametrize("order", [("a", "b", "c"), ("c", "b", "a"), ("b", "c", "a")])
def test_remembered_calculations_tell_equal_values_of_other_types_apart(markdown_form, order):
    """0 == 0.0 == -0.0 in Python, yet they calculate differently: no remembered result mixes them up."""
    form = markdown_form(TYPED_CALCULATIONS)
    expected = {"a": (0, 0, math.inf), "b": (0.0, 0.0, math.inf), "c": (-0.0, -0.0, -math.inf)}
    for choice in order:
        chat = Chat(form)
        chat.begin()
        chat.choose({"a": "1", "b": "2", "c": "3"}[choice])
        assert chat.state.current == "t"
        for name, value in zip(("c1", "c2", "c3"), expected[choice]):
            got = chat.state.answers[name]
            assert type(got) is type(value) and got == value, (choice, name, got)
            assert math.copysign(1, got) == math.copysign(1, value), (choice, name, got)
        assert replay_steps(markdown_form(TYPED_CALCULATIONS), chat.events) == replay_steps(form, chat.events)


def test_forms_with_the_same_names_do_not_share_cached_results(markdown_form):
    shown_if_a = markdown_form(FLOW)
    shown_if_b = markdown_form(FLOW.replace("${q1} = 'a'", "${q1} = 'b'"))
    for _ in range(2):
        for form, shown in ((shown_if_a, "a"), (shown_if_b, "b")):
            chat = Chat(form)
            chat.begin()
            chat.reply("a")
            assert chat.state.current == ("q2" if shown == "a" else "n")
            assert chat.ask.progress == ("Tiến độ ▓▓░░░░░░░░ 25%" if shown == "a" else "Tiến độ ▓▓▓▓▓░░░░░ 50%")


def test_the_plan_is_worked_out_once_per_form(markdown_form):
    form, other = markdown_form(FLOW), markdown_form(FLOW)
    assert E._plan(form) is E._plan(form)
    assert E._plan(other) is not E._plan(form)


def test_a_full_cache_is_emptied_and_results_stay_right(markdown_form, monkeypatch):
    monkeypatch.setattr(engine_plan, "_MEMO_LIMIT", 3)
    form = markdown_form(RELEVANCE_AND_PROGRESS)
    for first, number in (("a", "7"), ("b", "3"), ("c", None), ("a", "2"), ("b", "9")):
        chat = answer_relevance_and_progress(form, first, number)
        assert len(E._plan(form).memo) <= 3
        assert replay_steps(markdown_form(RELEVANCE_AND_PROGRESS), chat.events) == replay_steps(form, chat.events)


def test_cached_options_are_marked_per_session(markdown_form):
    form = markdown_form(survey("select_multiple l | m | Nhiều | Many |  |  |  |  |  |  |  |  |  |  |"))
    first, second = Chat(form), Chat(form)
    first.begin()
    second.begin()
    first.toggle("2")
    assert [o.selected for o in first.ask.options] == [False, True, False]
    second.toggle("1")
    assert [o.selected for o in second.ask.options] == [True, False, False]
    assert [o.selected for o in E.current_prompt(form, first.state).options] == [False, True, False]


# -- the stored form of states and events --------------------------------------------------

# Exactly as earlier versions stored them (sessions in existing databases): they must still
# decode, and encoding gives the same text back, so nothing stored needs rewriting.
STORED_STATE = (
    '{"answers": {"c": 24, "d": 3.5, "empty": null, "kenh": ["mot_cua", "truc_tuyen"], "n": 12, "q1": "a", '
    '"q2": {"na": true}, "start": {"datetime": "2025-03-01T08:00:00+07:00"}, "t": "Hài lòng", '
    '"today": {"date": "2025-03-01"}}, "completed_at": null, "current": "q5", "draft": ["x"], "form_id": "f", '
    '"form_version": "2026.1", "format": 1, "furthest": 9, "language": "vi", "seq": 7, '
    '"started_at": "2025-03-01T08:00:00+07:00", "status": "active"}')
STORED_EVENTS = ('{"at": "2025-03-01T08:05:00+07:00", "key": "2", "seq": 7, "type": "Choose"}',
                 '{"at": "2025-03-01T08:05:00", "seq": null, "text": "1 000", "type": "Reply"}')


def test_integers_beyond_64_bits_survive_the_codec():
    big = 10 ** 30 + 7
    assert codec.decode_value(codec.encode_value(big)) == big
    assert codec.decode_value(codec.encode_value((big, "a"))) == (big, "a")
    state = E.SessionState("f", "1", "vi", Status.ACTIVE, "q", 1, {"n": big}, (), 1, None, None)
    assert codec.decode_state(codec.encode_state(state)).answers["n"] == big


def test_infinite_calculations_are_stored_as_standard_json():
    for value in (math.inf, -math.inf):
        text = codec.encode_value(value)
        assert "Infinity" not in text  # json's non-standard literal, which other readers refuse
        assert json.loads(text) == {"float": repr(value)} and codec.decode_value(text) == value
    assert codec.decode_value("Infinity") == math.inf  # as earlier versions wrote it


def test_states_stored_by_earlier_versions_decode_to_the_same_state():
    tz = dt.timezone(dt.timedelta(hours=7))
    state = codec.decode_state(STORED_STATE)
    assert state == E.SessionState(
        "f", "2026.1", "vi", Status.ACTIVE, "q5", 7,
        {"c": 24, "d": 3.5, "empty": None, "kenh": ("mot_cua", "truc_tuyen"), "n": 12, "q1": "a",
         "q2": NOT_APPLICABLE, "start": dt.datetime(2025, 3, 1, 8, 0, tzinfo=tz), "t": "Hài lòng",
         "today": dt.date(2025, 3, 1)},
        ("x",), 9, dt.datetime(2025, 3, 1, 8, 0, tzinfo=tz), None)
    assert state.answers["q2"] is NOT_APPLICABLE and type(state.answers["today"]) is dt.date
    # Earlier versions wrote with json's separators; today's compact text means the same.
    assert json.loads(codec.encode_state(state)) == json.loads(STORED_STATE)
    assert codec.decode_state(codec.encode_state(state)) == state
    assert [json.loads(codec.encode_event(codec.decode_event(text))) for text in STORED_EVENTS] == \
        [json.loads(text) for text in STORED_EVENTS]
    with pytest.raises(ValueError):
        codec.decode_state(STORED_STATE.replace('"status": "active"', '"status": "unknown"'))
    # Text as json.loads takes it: surrounding whitespace is fine, anything else after it is not.
    assert codec.decode_state(f"  {STORED_STATE}\n") == state
    with pytest.raises(json.JSONDecodeError):
        codec.decode_state(STORED_STATE + "}")


FORWARD = survey(
    "integer | n | Số | Number | yes |  |  |  |  |  |  |  |  |  |",
    "text | q2 | Câu 2 | Q2 |  |  |  | ${c} > 10 |  |  |  |  |  |  |",
    "calculate | c |  |  |  |  |  |  |  |  |  | ${n} * 2 |  |  |",
    "text | last | Cuối | Last |  |  |  |  |  |  |  |  |  |  |",
)


def test_relevance_that_reads_a_later_calculation_sees_its_current_value(markdown_form):
    """c is calculated before q2 is judged, though it comes after q2 in the form."""
    form = markdown_form(FORWARD)
    chat = Chat(form)
    chat.begin()
    chat.reply("7")
    assert chat.result.changes == {"n": 7, "c": 14}
    assert chat.state.current == "q2" and chat.ask.progress == "Tiến độ ▓▓▓░░░░░░░ 33%"
    chat.reply("")
    chat.back()
    chat.back()
    chat.reply("2")  # c = 4: q2 is not relevant any more
    assert chat.result.changes == {"n": 2, "c": 4, "q2": NOT_APPLICABLE}
    assert chat.state.current == "last" and chat.ask.progress == "Tiến độ ▓▓▓▓▓▓░░░░ 66%"
    assert replay_steps(markdown_form(FORWARD), chat.events) == replay_steps(form, chat.events)
