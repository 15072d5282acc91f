"""Typed replies matched to choices in one place (the engine), so every channel stores the same
value for the same reply: a number is the position shown on screen, words need no accents."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from surveys import engine as E
from surveys.xlsform import load_questionnaire

T0 = dt.datetime(2026, 8, 2, 9, 0)

FORM = """| survey |
| | type | name | label::Tiếng Việt (vi) | required | default |
| | select_one rating | rating | Quý vị hài lòng ở mức nào? | yes | |
| | select_multiple kenh | kenh | Quý vị đã dùng kênh nào? | yes | |
| | integer | times | Bao nhiêu lần? Ghi 0 nếu không lần nào. | yes | |
| | text | comment | Góp ý | yes | |
| | select_one rating | again | Lần này thì sao? | | 4 |
| choices |
| | list_name | name | label::Tiếng Việt (vi) |
| | rating | 5 | Rất hài lòng |
| | rating | 4 | Hài lòng |
| | rating | 3 | Bình thường |
| | rating | 1 | Rất không hài lòng |
| | kenh | mot_cua | Trực tiếp tại bộ phận một cửa |
| | kenh | buu_chinh | Dịch vụ bưu chính công ích |
| | kenh | web | Cổng dịch vụ công |
| | kenh | app | Ứng dụng VNeID |
| settings |
| | form_id | version | default_language |
| | typed | 1 | Tiếng Việt (vi) |
"""


@pytest.fixture(scope="module")
def form(tmp_path_factory):
    path = Path(tmp_path_factory.mktemp("forms")) / "typed.md"
    path.write_text(FORM, encoding="utf-8")
    return load_questionnaire(path)


def at_question(form, name: str) -> E.SessionState:
    state = E.new_session(form)
    state = E.step(form, state, E.Start(T0)).state
    state = E.step(form, state, E.Reply("1", T0)).state  # consent
    answers = {"rating": "1", "kenh": "3", "times": "2", "comment": "ok"}
    for question in ("rating", "kenh", "times", "comment", "again"):
        if question == name:
            return state
        state = E.step(form, state, E.Reply(answers[question], T0)).state
    raise AssertionError(name)


def reply(form, question: str, text: str):
    result = E.step(form, at_question(form, question), E.Reply(text, T0))
    return result.changes.get(question, "REFUSED") if result.accepted else "REFUSED"


@pytest.mark.parametrize("text, stored", [
    ("1", "5"),  # the first option shown, whatever its name
    ("4", "1"),
    ("4.", "1"), ("4)", "1"), (" 2 ", "4"),
    ("hai long", "4"), ("Rất hài lòng", "5"), ("binh thuong", "3"),
    ("5", "REFUSED"),  # no fifth option on screen: not read as the name "5"
    ("0", "REFUSED"),
])
def test_a_single_choice_by_position_or_words(form, text, stored):
    assert reply(form, "rating", text) == stored


@pytest.mark.parametrize("text, stored", [
    ("1 3", ("mot_cua", "web")),
    ("2 và 4", ("buu_chinh", "app")),
    ("2 and 4", ("buu_chinh", "app")),
    ("1, 4.", ("mot_cua", "app")),
    ("2;3", ("buu_chinh", "web")),
    ("một cửa, bưu chính", ("mot_cua", "buu_chinh")),
    ("mot cua va vneid", ("mot_cua", "app")),
    ("Cổng dịch vụ công", ("web",)),
    ("4) 1)", ("mot_cua", "app")),
    ("1 9", "REFUSED"),
    ("dich vu", "REFUSED"),  # in two options' words: ambiguous, asked again
])
def test_several_choices_by_positions_or_words(form, text, stored):
    assert reply(form, "kenh", text) == stored


def test_a_number_question_takes_zero_and_a_text_question_takes_a_digit(form):
    assert reply(form, "times", "0") == 0
    assert reply(form, "comment", "0") == "0"


def test_a_default_is_a_choice_name_not_a_position(form):
    # `again` defaults to the choice named "4" (shown second): an empty reply keeps that choice.
    assert reply(form, "again", "") == "4"


def test_consent_accepts_a_number_with_a_full_stop(form):
    state = E.step(form, E.new_session(form), E.Start(T0)).state
    assert E.step(form, state, E.Reply("1.", T0)).state.status is E.Status.ACTIVE
    assert E.step(form, state, E.Reply("Đồng ý.", T0)).state.status is E.Status.ACTIVE
