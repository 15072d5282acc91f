"""Survey dates as the bots apply them: the phase of fieldwork on a given local day, and the
`grace_days` key of a survey project."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.chat.fieldwork import Phase, Window
from surveys.project import SurveyError, parse_survey
from survey_toml import survey_toml


def survey(survey_keys: str = "") -> str:
    """A survey open 1 August to 30 September 2026, with more [survey] keys if given."""
    return survey_toml("t", "Thử", "tour", closes="2026-09-30", survey_keys=survey_keys)


HCM = ZoneInfo("Asia/Ho_Chi_Minh")
WINDOW = Window("t", "Thử", dt.date(2026, 8, 1), dt.date(2026, 9, 30), 3, HCM)


@pytest.mark.parametrize("local, phase", [
    (dt.datetime(2026, 7, 31, 23, 59), Phase.NOT_YET),
    (dt.datetime(2026, 8, 1, 0, 0), Phase.OPEN),
    (dt.datetime(2026, 9, 30, 23, 59), Phase.OPEN),
    (dt.datetime(2026, 10, 1, 0, 0), Phase.GRACE),
    (dt.datetime(2026, 10, 3, 23, 59), Phase.GRACE),
    (dt.datetime(2026, 10, 4, 0, 0), Phase.CLOSED),
])
def test_the_phase_follows_the_local_calendar_day(local, phase):
    assert WINDOW.phase(local.replace(tzinfo=HCM)) is phase
    # The same instant seen from UTC (17:00 the day before for a local midnight) gives the same phase.
    assert WINDOW.phase(local.replace(tzinfo=HCM).astimezone(dt.timezone.utc)) is phase


def test_grace_days_is_read_and_a_bad_value_names_the_key():
    assert parse_survey(survey("grace_days = 5")).grace_days == 5
    assert parse_survey(survey("")).grace_days == 0
    with pytest.raises(SurveyError, match="survey.grace_days"):
        parse_survey(survey('grace_days = "a week"'))
    with pytest.raises(SurveyError, match="survey.grace_days"):
        parse_survey(survey("grace_days = -1"))


def test_a_project_without_a_grace_period_keeps_the_hash_it_was_stored_with():
    project = parse_survey(survey(""))
    assert "grace_days" not in project.to_json()
    assert "grace_days" in parse_survey(survey("grace_days = 2")).to_json()
