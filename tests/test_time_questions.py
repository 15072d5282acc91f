"""`time` and `dateTime` questions: typed as people type them, stored as ODK writes them (with the
session's UTC offset, Asia/Ho_Chi_Minh's +07:00), refused politely otherwise."""

from __future__ import annotations

import datetime as dt

import pytest

from surveys import engine as E

FORM = """
| survey |
| | type | name | label | required |
| | time | opened | Mấy giờ cơ quan mở cửa? | yes |
| | dateTime | visit | Quý vị đến lúc nào? | yes |
| settings |
| | form_id | version | default_language |
| | times | 1 | vi |
"""
AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def at_time(markdown_form):
    form = markdown_form(FORM)
    state = E.new_session(form, None)
    for event in (E.Start(AT), E.Choose("yes", 1, AT)):
        state = E.step(form, state, event).state
    return form, state


@pytest.mark.parametrize("typed, stored", [
    ("7:30", "07:30:00.000+07:00"), ("14h30", "14:30:00.000+07:00"), ("14h", "14:00:00.000+07:00"),
    ("2:30 chiều", "14:30:00.000+07:00"), ("9 giờ 15 phút", "09:15:00.000+07:00"),
    ("12:05 am", "00:05:00.000+07:00"), ("8:00:15", "08:00:15.000+07:00"),
])
def test_a_time_is_read_as_typed_and_stored_as_odk_writes_it(markdown_form, typed: str, stored: str) -> None:
    form, state = at_time(markdown_form)
    assert E.current_prompt(form, state).expected == "giờ:phút, ví dụ 14:30"
    step = E.step(form, state, E.Reply(typed, AT))
    assert step.accepted and step.changes["opened"] == stored


@pytest.mark.parametrize("typed", ["25:00", "7:75", "sáng sớm", "13 pm"])
def test_what_is_not_a_time_is_refused_and_changes_nothing(markdown_form, typed: str) -> None:
    form, state = at_time(markdown_form)
    step = E.step(form, state, E.Reply(typed, AT))
    assert not step.accepted and "giờ:phút" in step.say[0].text and "opened" not in step.state.answers


@pytest.mark.parametrize("typed, stored", [
    ("02/03/2026 14:30", "2026-03-02T14:30:00.000+07:00"), ("2026-03-01T08:15", "2026-03-01T08:15:00.000+07:00"),
    ("1/3/2026 9h", "2026-03-01T09:00:00.000+07:00"),
])
def test_a_date_and_time_is_stored_as_odk_datetime(markdown_form, typed: str, stored: str) -> None:
    form, state = at_time(markdown_form)
    state = E.step(form, state, E.Reply("7:30", AT)).state
    assert E.current_prompt(form, state).expected == "ngày/tháng/năm giờ:phút, ví dụ 02/03/2026 14:30"
    step = E.step(form, state, E.Reply(typed, AT))
    assert step.accepted and step.changes["visit"] == stored and step.state.status is E.Status.COMPLETED


@pytest.mark.parametrize("typed", ["02/03/2026", "31/02/2026 10:00", "14:30", "hôm qua"])
def test_a_date_without_a_time_or_an_impossible_day_is_refused(markdown_form, typed: str) -> None:
    form, state = at_time(markdown_form)
    state = E.step(form, state, E.Reply("7:30", AT)).state
    step = E.step(form, state, E.Reply(typed, AT))
    assert not step.accepted and "ngày/tháng/năm giờ:phút" in step.say[0].text


def test_an_optional_time_gets_the_skip_button_on_telegram(markdown_form) -> None:
    """As an optional text, number or date does: a person who does not know can go on with a tap."""
    from bot.telegram.render import TelegramRenderer

    form = markdown_form(FORM.replace("| yes |\n| | dateTime", "| no |\n| | dateTime"))
    state = E.new_session(form, None)
    step = None
    for event in (E.Start(AT), E.Choose("yes", 1, AT)):
        step = E.step(form, state, event)
        state = step.state
    ask = step.say[-1]
    assert ask.kind is E.PromptKind.TIME and not ask.required
    calls, _ = TelegramRenderer().render(step.say, "5", "vi")
    buttons = [b["text"] for row in calls[-1].payload["reply_markup"]["inline_keyboard"] for b in row]
    assert any("Bỏ qua" in text for text in buttons), buttons
