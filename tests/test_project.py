"""Survey projects: TOML validation, units from CSV or inline, storage with versions."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage import open_storage
from surveys.project import SurveyError, SurveyProject, load_survey, parse_survey, store_survey, stored_project

FORMS = Path(__file__).parent / "forms" / "survey"
EXAMPLE = Path(__file__).resolve().parents[1] / "surveys" / "templates" / "survey.example.toml"
T0 = "2026-07-01T08:00:00+07:00"

BASE = """
[survey]
id = "s1"
title = "Thử"
index_year = 2026
opens = 2026-08-01
closes = 2026-08-31
levels = ["province", "commune"]
strata = ["commune"]

[[units]]
id = "p"
name = "Tỉnh P"
level = "province"

[[units]]
id = "x"
name = "Xã X"
level = "commune"
parent = "p"

[groups.citizen]
label = { vi = "Người dân" }
form_id = "f1"
allocation = { n = 10 }
"""


def problems(text: str, base: Path | None = None) -> list[str]:
    with pytest.raises(SurveyError) as caught:
        parse_survey(textwrap.dedent(text), "t.toml", base=base)
    return caught.value.problems


def test_the_test_project_and_the_bundled_example_load():
    project = load_survey(FORMS / "survey.toml")
    assert project.title == "Khảo sát thử 2026" and project.index_year == 2026
    assert project.opens == dt.date(2026, 8, 1) and project.levels == ("province", "commune")
    assert project.units["xa-c"].name == "Phường Cẩm" and project.units["xa-c"].parent == "tinh-t"
    assert project.groups["citizen"].allocation.n == 60 and project.groups["citizen"].allocation.reserve == 3
    assert project.groups["hdnd"].strata == () and project.groups["leader"].strata == ("commune", "gender")
    assert project.quotas.targets == {"citizen/xa-a": 20}
    assert project.reminders.after_days == (3, 7) and project.reminders.max_count == 2
    assert project.ancestor("xa-a", "province") == "tinh-t" and project.ancestor("tinh-t", "commune") is None
    assert SurveyProject.from_json(project.to_json()) == project
    example = load_survey(EXAMPLE)
    assert "VÍ DỤ" in example.title and len(example.units) == 4


def test_inline_units_and_minimal_file():
    project = parse_survey(BASE)
    assert project.units["x"].parent == "p" and project.groups["citizen"].strata == ("commune",)


@pytest.mark.parametrize("change, expected", [
    (("index_year = 2026\n", ""), "survey.index_year: required"),
    (('id = "s1"', 'id = "s 1"'), "survey.id: 's 1' must be letters"),
    (("closes = 2026-08-31", "closes = 2026-07-31"), "survey.closes: 2026-07-31 is before survey.opens"),
    (('form_id = "f1"\n', ""), "groups.citizen.form_id: required"),
    (("allocation = { n = 10 }", "allocation = { method = \"stratified\", n = 10 }"),
     "groups.citizen.allocation.method: 'stratified' is not one of"),
    (("allocation = { n = 10 }", "allocation = {}"), "groups.citizen.allocation.n: method 'proportional' needs"),
    (('label = { vi = "Người dân" }', 'label = { vi = "Người dân" }\ncolour = "red"'),
     "groups.citizen.colour: unknown key"),
    (('strata = ["commune"]', 'strata = ["group"]'), "'group' is implicit"),
    (('parent = "p"', 'parent = "nowhere"'), "units[2], column parent: unknown unit 'nowhere'"),
    (('level = "commune"', 'level = "district"'), "units[2], column level: 'district' is not one of survey.levels"),
    (('name = "Tỉnh P"\n', ""), "units[1], column name: required"),
])
def test_validation_errors_name_the_key(change, expected):
    old, new = change
    assert old in BASE
    found = problems(BASE.replace(old, new, 1))
    assert any(expected in p for p in found), found


def test_quota_reminder_and_fixed_allocation_errors_are_all_collected():
    text = BASE + textwrap.dedent("""
    [quotas.targets]
    "citizen/x" = 5
    "citizen/nowhere" = 5
    "officials/x" = 5
    "citizen" = 5
    [reminders]
    after_days = [7, 3]
    max_count = 5
    quiet_hours = { start = "25:00", end = "07:00" }
    [reminders.text]
    en = "You answered {answered} of {count}"
    """)
    found = problems(text)
    assert any('quotas.targets."citizen/nowhere": \'nowhere\' is not a unit at level commune' in p for p in found)
    assert any('quotas.targets."officials/x": \'officials\' is not a group' in p for p in found)
    assert any('quotas.targets."citizen": group citizen has strata citizen/commune' in p for p in found)
    assert any("reminders.after_days: days must increase" in p for p in found)
    assert any("reminders.max_count: 5 is more than" in p for p in found)
    assert any("reminders.quiet_hours.start: must be a time HH:MM" in p for p in found)
    assert any("reminders.text.en: unknown placeholder {count}" in p for p in found)
    assert any("reminders.text.vi: required" in p for p in found)
    assert not any('"citizen/x"' in p for p in found)


def test_units_csv_errors_name_the_line_and_column(tmp_path):
    (tmp_path / "units.csv").write_text(
        "\ufeffid,name,level,parent\n"
        "p,Tỉnh P,province,\n"
        "x,Xã X,commune,p\n"
        "x,Xã X lặp,commune,p\n"         # line 4: repeated id
        "y,Xã Y,commune,\n"              # line 5: commune without parent
        "z,Xã Z,commune,q\n"             # line 6: unknown parent
        "w,,commune,p\n",                # line 7: no name
        encoding="utf-8")
    text = 'units = "units.csv"\n' + BASE.split("[[units]]")[0] + "[groups" + BASE.split("[groups", 1)[1]
    found = problems(text, base=tmp_path)
    assert "units.csv line 4, column id: 'x' is repeated (first at units.csv line 3)" in found
    assert "units.csv line 5, column parent: a commune needs a parent unit" in found
    assert "units.csv line 6, column parent: unknown unit 'q'" in found
    assert "units.csv line 7, column name: required" in found


def test_a_missing_units_file_and_bad_toml_are_reported(tmp_path):
    text = 'units = "nope.csv"\n' + BASE.split("[[units]]")[0] + "[groups" + BASE.split("[groups", 1)[1]
    assert any("units: file" in p and "not found" in p for p in problems(text, base=tmp_path))
    assert any("not valid TOML" in p for p in problems("[survey\n"))


async def test_reloading_keeps_versions_and_refuses_to_strand_the_frame(tmp_path):
    from storage import FrameRow

    project = parse_survey(BASE)
    async with await open_storage(tmp_path / "s.sqlite") as storage:
        stored, new = await store_survey(storage, project, BASE, "s.toml", T0)
        assert (stored.version, new) == (1, True)
        stored, new = await store_survey(storage, project, BASE, "s.toml", T0)
        assert (stored.version, new) == (1, False)
        changed_text = BASE.replace('title = "Thử"', 'title = "Thử lại"')
        stored, new = await store_survey(storage, parse_survey(changed_text), changed_text, "s.toml", T0)
        assert (stored.version, new) == (2, True)
        assert [v.title for v in await storage.survey_versions("s1")] == ["Thử", "Thử lại"]
        assert (await stored_project(storage, "s1")).title == "Thử lại"
        assert (await stored_project(storage, "s1", 1)).title == "Thử"
        assert [s.id for s in await storage.list_surveys()] == ["s1"]
        await storage.import_frame("s1", [FrameRow("1", "citizen", "x", "citizen/x")], T0)
        without_x = changed_text.replace('[[units]]\nid = "x"', '[[units]]\nid = "x2"')
        with pytest.raises(SurveyError) as caught:
            await store_survey(storage, parse_survey(without_x), without_x, "s.toml", T0)
        assert "units: unit 'x' is used by the stored frame; it cannot be removed" in caught.value.problems
        assert len(await storage.survey_versions("s1")) == 2


def test_cli_survey_load_reports_problems_and_stores(tmp_path):
    db = tmp_path / "k.sqlite"
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.replace('form_id = "f1"\n', ""), encoding="utf-8")
    run = lambda *a: subprocess.run([sys.executable, "-m", "bot.cli", *a], capture_output=True, text=True)
    result = run("survey", "load", str(bad), "--db", str(db))
    assert result.returncode == 1 and "groups.citizen.form_id: required" in result.stderr
    assert not db.exists()
    result = run("survey", "load", str(FORMS / "survey.toml"), "--db", str(db))
    assert result.returncode == 0 and "stored as version 1" in result.stdout
    result = run("survey", "load", str(FORMS / "survey.toml"), "--db", str(db))
    assert result.returncode == 0 and "unchanged (version 1)" in result.stdout
    assert "test-2026" in run("survey", "list", "--db", str(db)).stdout
