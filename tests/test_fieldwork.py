"""Fieldwork operations shared by the command line and the console: each refuses bad input with
its place and writes nothing; the allocation preview is what the draw draws; quota and reminder
edits become a new, re-loadable survey version."""

from __future__ import annotations

import datetime as dt
import shutil
import tomllib
from pathlib import Path

import pytest

from fieldwork import Refused
from fieldwork import invitations
from fieldwork.sample import allocation_preview, draw, import_frame
from fieldwork.settings import check_edit, project_table, quota_table, reminder_table, save_edit
from surveys.project import parse_survey_table
from fieldwork.surveys import check_survey, find_project, store_checked
from storage import open_storage

HERE = Path(__file__).parent
SURVEY = HERE / "forms" / "survey"
TEMPLATES = HERE.parent / "surveys" / "templates"
AT = dt.datetime(2026, 7, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=7)))
FRAME = ["id,group,unit,name,phone,gender"] + [f"c{i},citizen,xa-{'abc'[i % 3]},Người {i},,"
                                                for i in range(90)] + ["h1,hdnd,tinh-t,Đại biểu,,",
                                                                       "l1,leader,xa-a,Lãnh đạo,,nam",
                                                                       "l2,leader,xa-a,Lãnh đạo 2,,nu"]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_a_broken_questionnaire_stops_the_whole_load_with_sheet_row_column(tmp_path):
    broken = tmp_path / "sipas.md"
    shutil.copy(HERE / "forms" / "broken" / "duplicate_names.md", broken)
    with pytest.raises(Refused) as refused:
        check_survey(SURVEY / "survey.toml", (TEMPLATES / "sipas_citizen.md", broken))
    assert "nothing stored" in refused.value.message
    assert refused.value.problems and all(p.startswith("sipas.md: ") for p in refused.value.problems)
    assert any("row" in p for p in refused.value.problems)


async def test_survey_and_forms_are_stored_together_and_a_conflicting_form_stores_nothing(database, tmp_path):
    checked = check_survey(SURVEY / "survey.toml", (TEMPLATES / "sipas_citizen.md",))
    async with await open_storage(database) as storage:
        loaded = await store_checked(storage, checked, AT)
        assert (loaded.version, loaded.new) == (1, True)
        assert [q.form_id for q in await storage.list_questionnaires()] == ["sipas_citizen_example"]
        # the same form_id and version with other content: refused before anything is written
        changed = tmp_path / "sipas_citizen.md"
        changed.write_text((TEMPLATES / "sipas_citizen.md").read_text(encoding="utf-8").replace(
            "Bình thường", "Trung bình"), encoding="utf-8")
        other = (SURVEY / "survey.toml").read_text(encoding="utf-8").replace("Khảo sát thử 2026", "Đổi tên")
        (tmp_path / "survey.toml").write_text(other, encoding="utf-8")
        shutil.copy(SURVEY / "units.csv", tmp_path / "units.csv")
        with pytest.raises(Refused) as refused:
            await store_checked(storage, check_survey(tmp_path / "survey.toml", (changed,)), AT)
        assert "sipas_citizen.md: the database already holds form 'sipas_citizen_example'" in refused.value.problems[0]
        assert [s.version for s in await storage.survey_versions("test-2026")] == [1]


async def test_a_form_no_group_answers_is_refused():
    with pytest.raises(Refused) as refused:
        check_survey(SURVEY / "survey.toml", (HERE / "forms" / "tour.md",))
    assert "is not the questionnaire of any group" in refused.value.problems[0]


async def test_allocation_preview_is_what_the_draw_draws_and_frame_errors_name_lines(database, tmp_path):
    async with await open_storage(database) as storage:
        await store_checked(storage, check_survey(SURVEY / "survey.toml"), AT)
        project = await find_project(storage, None)
        with pytest.raises(Refused, match="no frame"):
            await allocation_preview(storage, project)
        bad = write(tmp_path / "bad.csv", [*FRAME, "c1,citizen,xa-zz,,,"])
        with pytest.raises(Refused) as refused:
            await import_frame(storage, project, bad, AT.isoformat(), name="bad.csv")
        assert refused.value.message.startswith("bad.csv: nothing imported")
        assert any(p.startswith(f"line {len(FRAME) + 1}") for p in refused.value.problems)
        assert await storage.frame_rows(project.id) == []
        imported = await import_frame(storage, project, write(tmp_path / "f.csv", FRAME), AT.isoformat())
        assert imported.rows == len(FRAME) - 1 and imported.added == imported.rows
        preview = await allocation_preview(storage, project)
        drawn = await draw(storage, project, 7, AT.isoformat())
        assert drawn.recorded and preview == drawn.strata
        citizens = {s.stratum: (s.population, s.n) for s in preview if s.group == "citizen"}
        assert citizens == {"citizen/xa-a": (30, 20), "citizen/xa-b": (30, 20), "citizen/xa-c": (30, 20)}
        assert next(s for s in preview if s.stratum == "citizen/xa-a").pi == pytest.approx(2 / 3)


async def test_quota_and_reminder_edits_are_checked_by_key_and_stored_as_a_new_version(database, tmp_path):
    async with await open_storage(database) as storage:
        await store_checked(storage, check_survey(SURVEY / "survey.toml"), AT)
        project = await find_project(storage, "test-2026")
        quotas, reminders = quota_table(project), reminder_table(project)
        assert parse_survey_table(project_table(project)).sha256 == project.sha256  # the tables say it all
        unchanged = await check_edit(storage, "test-2026", quotas, reminders)
        assert unchanged.changes == [] and unchanged.project.sha256 == project.sha256
        with pytest.raises(Refused) as refused:
            await check_edit(storage, "test-2026", {**quotas, "targets": {"citizen/xa-zz": 5, "citizen/xa-a": 0}},
                             {**reminders, "quiet_hours": {"start": "25:00", "end": "07:00"}})
        assert set(refused.value.problems) >= {
            "quotas.targets.\"citizen/xa-zz\": 'xa-zz' is not a unit at level commune",
            "quotas.targets.\"citizen/xa-a\": must be at least 1",
            "reminders.quiet_hours.start: must be a time HH:MM (24-hour)"}
        assert len(await storage.survey_versions("test-2026")) == 1
        edit = await check_edit(storage, "test-2026", {**quotas, "hard": False, "targets": {"citizen/xa-a": 25}},
                                {**reminders, "after_days": [2, 5], "quiet_hours": {"start": "22:00", "end": "06:30"}})
        assert edit.changes == ["quotas.hard: True → False", 'quotas.targets."citizen/xa-a": 20 → 25',
                                "reminders.after_days: [3, 7] → [2, 5]",
                                "reminders.quiet_hours.end: 07:00 → 06:30", "reminders.quiet_hours.start: 21:00 → 22:00"]
        stored, new = await save_edit(storage, edit, AT, "console: quotas and reminders")
        assert (stored.version, new) == (2, True)
        again = await find_project(storage, "test-2026")
        assert again.quotas.targets == {"citizen/xa-a": 25} and not again.quotas.hard
        assert again.reminders.after_days == (2, 5) and again.reminders.quiet_start == "22:00"
        assert again.units == project.units  # the units CSV of the original file, now inline
        assert tomllib.loads(stored.source)["quotas"]["targets"] == {"citizen/xa-a": 25}


async def test_revoke_and_reissue_one_person_and_open_posters(database, tmp_path):
    async with await open_storage(database) as storage:
        person = await storage.add_respondent("S-1", form_id="sipas_citizen_example", stratum="xa-a", name="Lan",
                                              phone=None, at=AT.isoformat())
        ways = invitations.channels("@khaosat_bot", "Khảo sát QT")
        first = await invitations.issue(storage, tmp_path / "letters", ways, "Khảo sát", AT)
        assert first.count == 1 and first.files["html"].name == "letters.html"
        assert await invitations.revoke(storage, person.id, AT) == 2
        assert await storage.active_invitation(person.id, "typed") is None
        with pytest.raises(Refused, match="no respondent 999"):
            await invitations.revoke(storage, 999, AT)
        again = await invitations.issue(storage, tmp_path / "letters", ways, "Khảo sát", AT, reissue=True,
                                        respondents=[await storage.get_respondent(person.id)])
        assert again.count == 1 and again.earlier_kept and again.files["html"].name == "letters-2.html"
    with pytest.raises(Refused, match="say how people answer"):
        invitations.channels(" ", None)
    posters = invitations.posters_for({"quay-hai-lang": "Bộ phận một cửa Hải Lăng"}, ways)
    files = invitations.write_posters(posters, tmp_path / "posters", "Khảo sát")
    page = files["html"].read_text(encoding="utf-8")
    assert "https://t.me/khaosat_bot?start=quay-hai-lang" in page and "Bộ phận một cửa Hải Lăng" in page
    assert files["qr1"].read_bytes().startswith(b"\x89PNG")
    with pytest.raises(Refused, match="Telegram start code"):
        invitations.posters_for({"có dấu": "x"}, ways)


@pytest.mark.skipif(invitations.pdf_browser() is None, reason="no headless Chromium to print PDF")
def test_letters_print_to_pdf(tmp_path):
    html = tmp_path / "l.html"
    html.write_text("<html><body><h1>Thư mời</h1></body></html>", encoding="utf-8")
    pdf = invitations.print_pdf(html, tmp_path / "l.pdf")
    assert pdf is not None and pdf.read_bytes().startswith(b"%PDF")


def test_the_cli_loads_questionnaires_with_the_survey_and_refuses_a_broken_one_whole(tmp_path):
    import subprocess
    import sys

    db = tmp_path / "s.sqlite"
    root = HERE.parent

    def load(*forms: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot.cli", "survey", "load", str(SURVEY / "survey.toml"),
                               "--db", str(db), *(f"--form={f}" for f in forms)],
                              capture_output=True, text=True, cwd=root, timeout=120)

    refused = load(TEMPLATES / "sipas_citizen.md", HERE / "forms" / "broken" / "duplicate_names.md")
    assert refused.returncode == 1 and "duplicate_names.md: " in refused.stderr and "Traceback" not in refused.stderr
    assert not db.exists()  # refused before the database is even opened
    done = load(TEMPLATES / "sipas_citizen.md")
    assert done.returncode == 0, done.stderr
    assert "stored as version 1" in done.stdout
