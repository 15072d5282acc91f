"""The engine and text defects of issue 14 (10, 11 and the engine/text parts of 13), one test each.

Each test was written before its fix and failed on the code before it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.text import plain_text, render
from fieldwork.conversations import Conversations
from storage import open_storage
from surveys import codec
from surveys import engine as E
from surveys.engine import Status, Tone
from surveys.expressions import NOT_APPLICABLE
from surveys.model import QuestionType
from surveys.xlsform import load_questionnaire, load_questionnaire_bytes
from test_engine import FORWARD, Chat, survey

ROOT = Path(__file__).resolve().parents[1]
FORMS = sorted((ROOT / "surveys" / "templates").glob("*.md")) + [ROOT / "tests" / "forms" / "tour.md"]


def percent(ask: E.Ask) -> int:
    """The share of the way shown with a prompt, e.g. 40 from "Tiến độ ▓▓▓▓░░░░░░ 40%"."""
    found = re.fullmatch(r".*?(\d+)%", ask.progress)
    assert found, ask.progress
    return int(found.group(1))


# -- 10. progress only moves forward ---------------------------------------------------------

GROWING = survey(
    "select_one l | q1 | Câu 1 | Q1 | yes |  |  |  |  |  |  |  |  |  |",
    "text | q2 | Câu 2 | Q2 | yes |  |  | ${q1} = 'a' |  |  |  |  |  |  |",
    "text | q3 | Câu 3 | Q3 | yes |  |  | ${q1} = 'a' |  |  |  |  |  |  |",
    "integer | n | Số | Number | yes |  |  |  |  |  |  |  |  |  |",
    "text | g2 | G2 | G2 |  |  |  | ${n} > 5 |  |  |  |  |  |  |",
    "text | g3 | G3 | G3 |  |  |  | ${n} > 5 |  |  |  |  |  |  |",
    "text | last | Cuối | Last |  |  |  |  |  |  |  |  |  |  |",
)


def test_progress_is_a_share_that_never_shrinks_when_answers_add_questions(markdown_form):
    chat = Chat(markdown_form(GROWING))
    chat.begin()
    shown = [chat.ask.progress]
    for text in ("a", "x", "y", "9", "p", "q"):  # every answer makes more questions apply
        chat.reply(text)
        shown.append(chat.ask.progress)
    assert chat.state.current == "last"
    shares = [int(re.search(r"(\d+)%", text).group(1)) for text in shown]
    assert shares == sorted(shares) and shares[0] == 0 and shares[-1] < 100, shown
    assert not any("/" in text for text in shown), shown  # no total that could grow


def test_progress_reads_in_both_languages(markdown_form):
    for language, word in (("vi", "Tiến độ"), ("en", "Progress")):
        chat = Chat(markdown_form(GROWING), language)
        chat.begin()
        chat.reply("b")  # q2 and q3 do not apply: the share jumps past them
        assert chat.ask.progress.startswith(word) and percent(chat.ask) == 42, chat.ask.progress


def cooperative_replies(question: QuestionType) -> tuple[str, ...]:
    return {QuestionType.INTEGER: ("30", "1985", "12", "1", "0"), QuestionType.DECIMAL: ("3,5", "1"),
            QuestionType.DATE: ("01/01/2025", "15/06/2024")}.get(question, ("Không có", "ok"))


@pytest.mark.parametrize("path", FORMS, ids=lambda p: p.name)
def test_progress_never_goes_backwards_on_forward_answers(path):
    form = load_questionnaire(path)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def walk(data) -> None:
        chat = Chat(form)
        chat.begin()
        last = percent(chat.ask)
        assert last == 0
        for _ in range(3 * len(form.asked)):
            if chat.state.status is Status.COMPLETED:
                return
            question = form.question(chat.state.current)
            prompt = E.current_prompt(form, chat.state)
            if question.type is QuestionType.SELECT_ONE:
                chat.choose(data.draw(st.sampled_from(prompt.options)).key)
            elif question.type is QuestionType.SELECT_MULTIPLE:
                for option in data.draw(st.lists(st.sampled_from(prompt.options), min_size=1, max_size=2, unique=True)):
                    chat.toggle(option.key)
                chat.done()
            elif question.type is QuestionType.ACKNOWLEDGE:
                chat.choose("ok")
            else:
                for text in cooperative_replies(question.type):
                    chat.reply(text)
                    if chat.result.accepted:
                        break
            assert chat.result.accepted, (question.name, chat.result.say)
            if chat.state.status is not Status.COMPLETED:
                now = percent(chat.ask)
                assert last <= now < 100, (question.name, last, now)
                last = now
        assert chat.state.status is Status.COMPLETED

    walk()


# -- 11. a changed answer re-validates what comes after it -------------------------------------

DEPENDENT = survey(
    "integer | n | Số người | People | yes |  |  |  |  |  |  |  |  |  |",
    "integer | m | Số người hài lòng | Satisfied people | yes |  |  |  | . <= ${n} | Không quá ${n}. "
    "| At most ${n}. |  |  |  |",
    "select_one l | q1 | Câu 1 | Q1 | yes |  |  |  |  |  |  |  |  |  |",
    "select_one l | q2 | Câu 2 | Q2 | yes |  |  |  |  |  |  |  | name != ${q1} |  |",
    "text | last | Cuối | Last |  |  |  |  |  |  |  |  |  |  |",
)


def back_to(chat: Chat, name: str) -> None:
    while chat.state.current != name:
        chat.back()
        assert chat.result.accepted


def test_a_later_answer_that_breaks_its_constraint_after_a_change_is_asked_again(markdown_form):
    chat = Chat(markdown_form(DEPENDENT))
    chat.begin()
    for text in ("10", "8", "a", "b"):
        chat.reply(text)
    assert chat.state.current == "last"
    back_to(chat, "n")
    chat.reply("5")  # m = 8 is more than 5 now
    assert chat.result.changes == {"n": 5, "m": NOT_APPLICABLE}  # recorded: storage keeps the 8 in history
    assert chat.state.current == "m" and chat.ask.current_answer == ""
    assert any("trả lời lại" in text for text in chat.said(Tone.INFO)), chat.result.say
    chat.reply("3")
    assert chat.state.current == "last"  # q1 and q2 are still valid: kept
    assert chat.state.answers["q1"] == "a" and chat.state.answers["q2"] == "b"


async def test_a_dropped_answer_stays_in_the_stored_history(tmp_path):
    """Through the real chat store (SQLite): the invalid 8 is replaced, and its history keeps it."""
    source = DEPENDENT.encode("utf-8")
    form = load_questionnaire_bytes(source, "dependent.md")
    async with await open_storage(tmp_path / "history.sqlite") as storage:
        conversations = Conversations(storage)
        at = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.timezone.utc)
        await conversations.register(form, source, "dependent.md", at)
        session, _ = await conversations.open("person-1", form, "telegram", "vi", at)
        state = E.new_session(form)
        events = [E.Start(at), "yes", "10", "8", "a", "b", E.Back(at), E.Back(at), E.Back(at), E.Back(at), "5", "3"]
        for number, item in enumerate(events):
            at += dt.timedelta(minutes=1)
            if item == "yes":
                event = E.Choose("yes", state.seq, at)
            elif isinstance(item, str):
                event = E.Reply(item, at, state.seq)
            else:
                event = type(item)(at=at)
            state = (await conversations.handle(session.id, event, f"event-{number}")).step.state
        assert state.current == "last"
        history = await storage.answer_history(session.id, "m")
        assert [(h["new_value"], h["new_status"]) for h in history] == [
            ("8", "answered"), (codec.encode_value(NOT_APPLICABLE), "not_applicable"), ("3", "answered")]
        assert (await storage.answers(session.id))["m"].value == "3"


def test_a_later_choice_the_filter_now_hides_is_asked_again(markdown_form):
    chat = Chat(markdown_form(DEPENDENT))
    chat.begin()
    for text in ("10", "8", "a", "b"):
        chat.reply(text)
    back_to(chat, "q1")
    chat.reply("b")  # q2 = b is hidden by the filter now
    assert chat.result.changes == {"q1": "b", "q2": NOT_APPLICABLE}
    assert chat.state.current == "q2"
    assert [o.name for o in chat.ask.options] == ["a", "c"]


def test_a_kept_change_that_leaves_later_answers_valid_goes_on_where_it_was(markdown_form):
    chat = Chat(markdown_form(DEPENDENT))
    chat.begin()
    for text in ("10", "8", "a", "b"):
        chat.reply(text)
    back_to(chat, "n")
    chat.reply("9")
    assert chat.result.changes == {"n": 9} and chat.state.current == "last"


def test_a_relevance_reading_a_later_calculation_sees_its_value(markdown_form):
    chat = Chat(markdown_form(FORWARD))
    chat.begin()
    chat.reply("7")  # c, after q2 in the form, is 14 before q2 is judged: q2 applies
    assert chat.result.changes == {"n": 7, "c": 14}
    assert chat.state.current == "q2"


def test_a_question_whose_relevance_reads_a_later_answer_is_asked_once_that_answer_is_given(markdown_form):
    chat = Chat(markdown_form(survey(
        "text | why | Vì sao? | Why? | yes |  |  | ${q3} = 'c' |  |  |  |  |  |  |",
        "text | q2 | Câu 2 | Q2 |  |  |  |  |  |  |  |  |  |  |",
        "select_one l | q3 | Câu 3 | Q3 | yes |  |  |  |  |  |  |  |  |  |",
        "text | last | Cuối | Last |  |  |  |  |  |  |  |  |  |  |",
    )))
    chat.begin()
    assert chat.state.current == "q2"  # q3 is empty yet: `why` does not apply
    chat.reply("x")
    chat.reply("c")
    assert chat.state.current == "why"  # it applies now, and is asked rather than left empty
    chat.reply("vì chậm")
    assert chat.state.current == "last" and chat.state.answers["q2"] == "x"


# -- 13. dates, examples, one thank-you, HTML, the date format up front ------------------------

DATES = survey(
    "date | visit | Ngày đến | Visit day | yes |  |  |  | . <= today() |  |  |  |  |  |",
    "integer | born | Năm sinh | Year of birth | yes |  |  |  | . >= 1920 and . <= 2008 "
    "| Năm sinh phải từ 1920 đến 2008. | Year of birth must be between 1920 and 2008. |  |  |  |",
    "integer | times | Số lần | Times | yes |  |  |  | . >= 0 |  |  |  |  |  |",
    "decimal | km | Số km | Kilometres |  |  |  |  | . >= 10 and . <= 20 |  |  |  |  |  |",
)


def test_a_day_that_does_not_exist_in_its_month_is_said_so(markdown_form):
    chat = Chat(markdown_form(DATES))
    chat.begin()
    chat.reply("31/02/2025")
    assert chat.result.accepted is False
    error = chat.error()
    assert error.startswith("Tháng 2/2025 không có ngày 31."), error
    assert "ngày/tháng/năm" in error  # and what is expected
    english = Chat(markdown_form(DATES), "en")
    english.begin()
    english.reply("30/02/2024")
    assert "February 2024 has no day 30" in english.error(), english.error()
    english.reply("2024-02-30")  # the other way a date may be typed is read by the same rule
    assert "February 2024 has no day 30" in english.error(), english.error()


def test_the_date_format_is_shown_with_the_question_and_its_example_fits(markdown_form):
    chat = Chat(markdown_form(DATES))
    chat.begin()  # T0 is 01/03/2025: the example must not be after it
    expected = chat.ask.expected
    assert expected.startswith("ngày/tháng/năm, ví dụ "), expected
    example = dt.datetime.strptime(expected.rsplit(" ", 1)[1], "%d/%m/%Y").date()
    assert example <= T0_DAY and example.day > 12  # day first cannot be misread
    assert f"({expected})" in render(chat.ask, "vi", chat=True)


T0_DAY = dt.date(2025, 3, 1)


def test_examples_in_errors_fit_the_question(markdown_form):
    chat = Chat(markdown_form(DATES))
    chat.begin()
    chat.reply("01/01/2025")
    chat.reply("năm bảy lăm")
    error = chat.error()
    assert error.startswith("Xin nhập một số nguyên") and "ví dụ 12" not in error.casefold(), error
    year = int(re.fullmatch(r".* Ví dụ: (\d+)\.", error).group(1))
    assert 1920 <= year <= 2008  # a year, from the constraint's bounds
    chat.reply("1890")  # the form's own message, and what fits
    assert re.fullmatch(r"Năm sinh phải từ 1920 đến 2008\. Ví dụ: (\d{4})\.", chat.error()), chat.error()
    chat.reply("1975")
    chat.reply("nhiều")
    assert chat.error().endswith("Ví dụ: 12.")  # 12 fits `. >= 0`
    chat.reply("2")
    chat.reply("xa")
    example = re.fullmatch(r".* Ví dụ: ([\d,]+)\.", chat.error()).group(1)
    assert 10 <= float(example.replace(",", ".")) <= 20, chat.error()
    chat.language("en")
    chat.reply("far")
    assert re.fullmatch(r".* For example: ([\d.]+)\.", chat.error()), chat.error()


def test_a_closing_note_is_the_one_thank_you(markdown_form):
    form = markdown_form(survey(
        "text | name | Tên | Name | yes |  |  |  |  |  |  |  |  |  |",
        "note | cam_on | Xin chân thành cảm ơn quý vị! | Thank you very much! |  |  |  |  |  |  |  |  |  |  |",
    ))
    chat = Chat(form)
    chat.begin()
    chat.reply("An")
    assert chat.state.status is Status.COMPLETED
    assert [(o.text, o.tone) for o in chat.result.say] == [
        ("Xin chân thành cảm ơn quý vị!\nQuý vị đã hoàn thành khảo sát; các câu trả lời đã được ghi nhận.", Tone.THANKS)]
    plain = Chat(markdown_form(survey("text | name | Tên | Name | yes |  |  |  |  |  |  |  |  |  |")))
    plain.begin()
    plain.reply("An")
    assert len(plain.said(Tone.THANKS)) == 1 and len(plain.result.say) == 1


def test_simple_html_in_labels_becomes_plain_text(markdown_form):
    assert plain_text("Dòng 1<br>Dòng 2<br/>Dòng 3") == "Dòng 1\nDòng 2\nDòng 3"
    assert plain_text("<p>Đoạn một</p><p>Đoạn <b>hai</b> &amp; <i>ba</i></p>") == "Đoạn một\nĐoạn hai & ba"
    assert plain_text("3 < 5 và 7 > 2") == "3 < 5 và 7 > 2"
    form = markdown_form(survey(
        "select_one l | q | Mức độ<br>hài lòng của <b>quý vị</b> | Level<br>of satisfaction |  |  |  |  |  |  |  |  |  |  |",
    ))
    chat = Chat(form)
    chat.begin()
    text = render(chat.ask, "vi", chat=True)
    assert "Mức độ\nhài lòng của quý vị" in text and "<" not in text.replace("(gõ <", ""), text


# -- texts: one form of address, Vietnamese quotation marks, no jargon --------------------------


def test_respondent_texts_address_people_one_way():
    import tomllib

    from surveys.messages import _MESSAGES, say

    texts = {key: value["vi"] for key, value in _MESSAGES.items()}
    for path in (ROOT / "surveys" / "templates").glob("*.toml"):
        reminders = tomllib.loads(path.read_text(encoding="utf-8")).get("reminders", {}).get("text", {})
        if "vi" in reminders:
            texts[path.name] = reminders["vi"]
    for key, text in texts.items():
        folded = text.casefold()
        assert "anh/chị" not in folded and "ông/bà" not in folded and not re.search(r"\bbạn\b", folded), key
        assert "«" not in text and "»" not in text and '"' not in text, key  # “…” in Vietnamese
        assert "danh sách mẫu" not in folded, key
    assert say("consent", "vi", title="X").endswith("Quý vị có đồng ý tham gia không?")
    assert "“X”" in say("consent", "vi", title="X")


def test_a_number_outside_plain_bounds_is_refused_with_the_bounds_in_words(markdown_form):
    """A form without a constraint_message: "the answer does not fit" told a person nothing; plain
    bounds (". >= 0 and . <= 120", ". >= 18", ". < 10") are said in the person's language. Other
    constraints keep the generic message, and nothing is stored for a refused answer."""
    form = markdown_form("""
        | survey |
        |        | type    | name  | label::Tiếng Việt (vi) | label::English (en) | constraint           |
        |        | integer | age   | Tuổi?                  | Age?                | . >= 0 and . <= 120  |
        |        | integer | kids  | Số con?                | Children?           | . >= 0               |
        |        | decimal | hours | Số giờ?                | Hours?              | . < 10               |
        |        | integer | code  | Mã?                    | Code?               | . mod 2 = 0          |
    """)
    at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))

    def run(language: str, answers: list[str]) -> list[str]:
        state = E.new_session(form, language)
        step = E.step(form, state, E.Start(at))
        step = E.step(form, step.state, E.Choose("yes", step.say[-1].seq, at))
        said = []
        for text in answers:
            before = step.state.answers
            step = E.step(form, step.state, E.Reply(text, at))
            if not step.accepted:
                said.append(next(s.text for s in step.say if isinstance(s, E.Say) and s.tone is E.Tone.ERROR))
                assert step.state.answers == before
        return said

    said = run("vi", ["130", "30", "-1", "2", "12", "9.5", "3", "4"])
    # (each followed by an example that passes, as every refused number is)
    assert [text.split(" Ví dụ")[0] for text in said] == [
        "Xin trả lời một số từ 0 đến 120.", "Xin trả lời một số từ 0 trở lên.", "Xin trả lời một số không quá 10.",
        "Câu trả lời chưa phù hợp với yêu cầu của câu hỏi; xin quý vị trả lời lại."]
    assert run("en", ["130"])[0].startswith("Please answer with a number from 0 to 120.")
