"""Sample frames: every bad file fails whole, with line and column, and nothing is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook

from storage import FrameConflict, open_storage
from surveys.project import load_survey, store_survey
from surveys.frame_files import MAX_PROBLEMS
from surveys.sampling import FrameError, import_frame_file, read_frame

FORMS = Path(__file__).parent / "forms" / "survey"
T0 = "2026-07-01T08:00:00+07:00"
HEADER = "id,group,unit,name,phone,gender"
GOOD = [
    "c1,citizen,xa-a,Nguyễn Thị Ánh,0912 345 678,",
    "c2,Người dân,Xã Bình,Trần Văn Bảo,+84 912-345-679,",  # group by label, unit by name
    "c3,citizen,xa-c,Lê Thị Cúc,,",
    "h1,hdnd,tinh-t,Phạm Văn Dũng,,",
    "l1,leader,xa-a,Hoàng Thị Én,912345680,nu",  # Excel dropped the leading 0
]


@pytest.fixture
def project():
    return load_survey(FORMS / "survey.toml")


def write_csv(path: Path, lines: list[str], *, bom: bool = False, encoding: str = "utf-8") -> Path:
    path.write_bytes((("\ufeff" if bom else "") + "\n".join(lines) + "\n").encode(encoding))
    return path


def errors_of(path: Path, project) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(FrameError) as caught:
        read_frame(path, project)
    return [(p.line, p.column, p.message) for p in caught.value.problems]


@pytest.mark.parametrize("bom", [False, True])
def test_a_good_csv_with_or_without_bom_keeps_diacritics(tmp_path, project, bom):
    frame = read_frame(write_csv(tmp_path / "f.csv", [HEADER, *GOOD], bom=bom), project)
    assert list(frame["frame_id"]) == ["c1", "c2", "c3", "h1", "l1"]
    assert frame.loc[0, "name"] == "Nguyễn Thị Ánh" and frame.loc[0, "phone"] == "+84912345678"
    assert frame.loc[1, "group"] == "citizen" and frame.loc[1, "unit"] == "xa-b"
    assert frame.loc[1, "phone"] == "+84912345679" and frame.loc[4, "phone"] == "+84912345680"
    assert list(frame["stratum"]) == ["citizen/xa-a", "citizen/xa-b", "citizen/xa-c", "hdnd", "leader/xa-a/nu"]
    assert frame.loc[2, "phone"] is None


def test_nfd_text_and_semicolons_are_read(tmp_path, project):
    import unicodedata

    lines = [HEADER.replace(",", ";"), unicodedata.normalize("NFD", "c1;Người dân;Xã Bình;Đỗ Thị Ý;;")]
    frame = read_frame(write_csv(tmp_path / "f.csv", lines), project)
    assert frame.loc[0, "group"] == "citizen" and frame.loc[0, "name"] == "Đỗ Thị Ý"


def test_xlsx_frames_are_read_with_spreadsheet_line_numbers(tmp_path, project):
    book = Workbook()
    sheet = book.active
    sheet.append(["ID", "Group", "Unit", "Name", "Phone", "gender"])
    sheet.append(["c1", "citizen", "xa-a", "Nguyễn Thị Ánh", 912345678, None])
    sheet.append([None] * 6)  # a blank row keeps its number
    sheet.append([2, "citizen", "xa-b", "Trần Văn Bảo", "0912abc", None])
    sheet.append([3.0, "ufo", "xa-b", "X", None, None])
    book.save(tmp_path / "f.xlsx")
    assert errors_of(tmp_path / "f.xlsx", project) == [
        (4, "phone", "'0912abc' is not a phone number"),
        (5, "group", "unknown group 'ufo' (known: citizen, hdnd, leader)"),
    ]
    sheet.delete_rows(4, 2)
    book.save(tmp_path / "ok.xlsx")
    frame = read_frame(tmp_path / "ok.xlsx", project)
    assert list(frame["frame_id"]) == ["c1"] and frame.loc[0, "phone"] == "+84912345678"


BAD = {
    "missing column": ([HEADER.replace("unit,", ""), "c1,citizen,A,,"], [(1, "unit", "missing column")]),
    "duplicate id": ([HEADER, *GOOD, "c2,citizen,xa-a,,,"],
                     [(7, "id", "duplicate id 'c2' (first on line 3)")]),
    "unknown group": ([HEADER, *GOOD[:2], "x1,chairman,xa-a,,,"],
                      [(4, "group", "unknown group 'chairman' (known: citizen, hdnd, leader)")]),
    "unknown unit": ([HEADER, "c1,citizen,xa-z,,,"], [(2, "unit", "unknown unit 'xa-z'")]),
    "malformed phone": ([HEADER, *GOOD, "c9,citizen,xa-a,,12345,"],
                        [(7, "phone", "'12345' is not a Vietnamese phone number (0xxxxxxxxx or +84xxxxxxxxx)")]),
    "empty strata value": ([HEADER, "l1,leader,xa-a,,,"], [(2, "gender", "empty (a strata variable)")]),
    "unit above the strata level": ([HEADER, "c1,citizen,tinh-t,,,"],
                                    [(2, "unit", "'tinh-t' is a province; group citizen is stratified by commune, "
                                                 "so the unit must be a commune or below")]),
    "unknown column": ([HEADER + ",address", "c1,citizen,xa-a,,,,Huế"], None),
    "header only": ([HEADER], [(2, None, "the file has a header but no rows")]),
}


@pytest.mark.parametrize("case", sorted(BAD))
async def test_bad_frames_fail_whole_and_nothing_is_imported(tmp_path, project, case):
    lines, expected = BAD[case]
    path = write_csv(tmp_path / "f.csv", lines)
    found = errors_of(path, project)
    if expected is not None:
        assert found == expected
    else:
        assert found[0][:2] == (1, "address") and found[0][2].startswith("unknown column")
    async with await open_storage(tmp_path / "k.sqlite") as storage:
        await store_survey(storage, project, "", "survey.toml", T0)
        with pytest.raises(FrameError):
            await import_frame_file(storage, project, path, T0)
        assert await storage.frame_rows(project.id) == []


def test_empty_and_non_utf8_files(tmp_path, project):
    assert errors_of(write_csv(tmp_path / "empty.csv", [""]), project) == [(None, None, "the file is empty")]
    path = write_csv(tmp_path / "cp.csv", [HEADER, "c1,citizen,xa-a,Tran,,", "c2,citizen,xa-a,Đào Hà,,"],
                     encoding="cp1258")
    (line, column, message), = errors_of(path, project)
    assert line == 3 and column is None and "not UTF-8" in message
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes(("\t".join(HEADER.split(",")) + "\nc1\tcitizen\txa-a\tĐặng\t\t\n").encode("utf-16"))
    assert read_frame(utf16, project).loc[0, "name"] == "Đặng"


def test_many_errors_are_capped_but_counted(tmp_path, project):
    lines = [HEADER] + [f"c{i},citizen,nowhere,,," for i in range(80)]
    with pytest.raises(FrameError) as caught:
        read_frame(write_csv(tmp_path / "f.csv", lines), project)
    assert len(caught.value.problems) == MAX_PROBLEMS and caught.value.total == 80
    assert caught.value.problems[0].line == 2 and caught.value.problems[-1].line == MAX_PROBLEMS + 1


async def test_reimport_is_idempotent_personal_data_apart_and_frozen_after_the_draw(tmp_path, project):
    path = write_csv(tmp_path / "f.csv", [HEADER, *GOOD])
    async with await open_storage(tmp_path / "k.sqlite") as storage:
        await store_survey(storage, project, "", "survey.toml", T0)
        result, _ = await import_frame_file(storage, project, path, T0)
        assert (result.added, result.changed, result.removed, result.unchanged) == (5, 0, 0, 0)
        result, _ = await import_frame_file(storage, project, path, T0)
        assert (result.added, result.changed, result.removed, result.unchanged) == (0, 0, 0, 5)
        changed = write_csv(tmp_path / "g.csv", [HEADER, *GOOD[:3], GOOD[4].replace("Én", "Yến")])
        result, _ = await import_frame_file(storage, project, changed, T0)
        assert (result.added, result.changed, result.removed, result.unchanged) == (0, 1, 1, 3)
        rows = await storage.frame_rows(project.id)
        assert rows[0].name is None and rows[0].phone is None  # personal data only when asked
        personal = await storage.frame_rows(project.id, personal=True)
        assert personal[-1].name == "Hoàng Thị Yến"
        await storage.record_sample(project.id, [], [], source="drawn", seed=1, frame_sha256="x", params="{}", at=T0)
        with pytest.raises(FrameConflict):
            await import_frame_file(storage, project, path, T0)
        result, _ = await import_frame_file(storage, project, changed, T0)
        assert result.unchanged == 4
    import sqlite3

    with sqlite3.connect(tmp_path / "k.sqlite") as db:
        assert db.execute("SELECT count(*) FROM frame_personal").fetchone()[0] == 4
        columns = {row[1] for row in db.execute("PRAGMA table_info(frame_units)")}
        assert not columns & {"name", "phone"}


def test_cli_frame_import_exit_1_with_line_and_column(tmp_path):
    db = tmp_path / "k.sqlite"
    run = lambda *a: subprocess.run([sys.executable, "-m", "bot.cli", *a], capture_output=True, text=True)
    assert run("survey", "load", str(FORMS / "survey.toml"), "--db", str(db)).returncode == 0
    bad = write_csv(tmp_path / "bad.csv", [HEADER, *GOOD, "c1,citizen,xa-q,,1,"])
    result = run("frame", "import", str(bad), "--db", str(db))
    assert result.returncode == 1
    assert "line 7, column id: duplicate id 'c1' (first on line 2)" in result.stderr
    assert "line 7, column unit: unknown unit 'xa-q'" in result.stderr
    assert "line 7, column phone:" in result.stderr
    good = write_csv(tmp_path / "good.csv", [HEADER, *GOOD])
    result = run("frame", "import", str(good), "--survey", "test-2026", "--db", str(db))
    assert result.returncode == 0 and "5 added" in result.stdout
