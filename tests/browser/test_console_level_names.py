"""Levels are named for people on the Progress page: the survey file's ``survey.level_labels``,
else built-in names for province/commune, else the id; a malformed key is refused by name."""

from __future__ import annotations

import dataclasses

import pytest

from storage import open_storage
from surveys.project import SurveyError, parse_survey, store_survey
from tests.browser.conftest import FORMS, T0, run_async

SURVEY = "test-2026"
SOURCE = (FORMS / "survey.toml").read_text(encoding="utf-8")


def with_level_labels(line: str) -> str:
    assert 'levels = ["province", "commune"]' in SOURCE
    return SOURCE.replace('levels = ["province", "commune"]', f'levels = ["province", "commune"]\n{line}', 1)


def level_headings(page) -> dict[str, str]:
    return {h.get_attribute("data-level"): h.inner_text() for h in page.locator("h2[data-level]").all()}


@pytest.mark.parametrize("line, expected", [
    ('level_labels = "Tỉnh"', "survey.level_labels: must be a table of level → label"),
    ('level_labels = { district = "Huyện" }', "survey.level_labels.district: not one of survey.levels"),
    ('level_labels = { commune = 3 }', "survey.level_labels.commune: required, e.g."),
    ('level_labels = { commune = { fr = "Commune" } }', "survey.level_labels.commune.fr: language must be one of"),
    ('level_labels = { commune = { vi = " " } }', "survey.level_labels.commune.vi: must be non-empty text"),
])
def test_malformed_level_labels_are_refused_naming_the_key(line, expected):
    with pytest.raises(SurveyError) as caught:
        parse_survey(with_level_labels(line), "survey.toml", base=FORMS)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_level_labels_survive_storage_and_an_unlabelled_project_keeps_its_hash():
    plain = parse_survey(SOURCE, "survey.toml", base=FORMS)
    labelled = parse_survey(with_level_labels('level_labels = { province = "Tỉnh", commune = { vi = "Xã", en = "Commune" } }'),
                            "survey.toml", base=FORMS)
    assert labelled.level_labels == {"province": {"vi": "Tỉnh"}, "commune": {"vi": "Xã", "en": "Commune"}}
    assert type(labelled).from_json(labelled.to_json()) == labelled
    assert "level_labels" not in plain.to_json()
    assert labelled.level_label("province", "en") == "Tỉnh" and labelled.level_label("commune", "en") == "Commune"
    assert plain.level_label("province", "vi") is None


def test_built_in_names_for_province_and_commune(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("admin", role="admin")
    log_in(page, server, "admin")
    page.goto(f"{server.url}/surveys/{SURVEY}/progress")
    assert level_headings(page) == {"province": "Tổng theo cấp tỉnh", "commune": "Tổng theo cấp xã, phường"}
    page.goto(f"{server.url}/lang/en?next=/surveys/{SURVEY}/progress")
    page.goto(f"{server.url}/surveys/{SURVEY}/progress")
    assert level_headings(page) == {"province": "Totals by province", "commune": "Totals by commune"}


def test_the_survey_files_labels_win_and_an_unknown_level_shows_its_id(page, fieldwork, console_server, log_in):
    labelled = parse_survey(with_level_labels('level_labels = { commune = { vi = "Xã/phường", en = "Ward" } }'),
                            "survey.toml", base=FORMS)
    # a level id with no built-in name: the same project with "province" renamed "vung"
    renamed = dataclasses.replace(
        labelled, levels=("vung", "commune"),
        units={k: dataclasses.replace(u, level="vung" if u.level == "province" else u.level) for k, u in labelled.units.items()})

    async def store():
        async with await open_storage(fieldwork.db) as storage:
            await store_survey(storage, renamed, "", "survey.toml", T0)
    run_async(store)
    server = console_server(fieldwork.db)
    server.add_account("admin", role="admin")
    log_in(page, server, "admin")
    page.goto(f"{server.url}/surveys/{SURVEY}/progress")
    assert level_headings(page) == {"vung": "Tổng theo cấp vung", "commune": "Tổng theo cấp Xã/phường"}
    assert "(Xã/phường)" in page.locator("select[name=unit]").inner_text()
