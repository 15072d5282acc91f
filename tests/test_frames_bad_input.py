"""Frame files that are not clean tables: refused whole with the line (and column), nothing written."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from fieldwork import Refused
from fieldwork.sample import import_frame
from storage import open_storage
from surveys.frame_files import FrameError
from surveys.project import load_survey, store_survey
from surveys.sampling import read_frame

ROOT = Path(__file__).resolve().parents[1]
FORMS = Path(__file__).parent / "forms" / "survey"
T0 = "2026-07-01T08:00:00+07:00"
HEADER = "id,group,unit,name,phone,gender"
GOOD = ["c1,citizen,xa-a,Nguyễn Thị Ánh,0912 345 678,", "c2,citizen,xa-a,Trần Văn Bảo,,"]


@pytest.fixture
def project():
    return load_survey(FORMS / "survey.toml")


def text(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


LONG = "x" * (csv.field_size_limit() + 10)

BAD: dict[str, tuple[bytes, tuple[int | None, str | None, str]]] = {
    "a NUL byte": (text(HEADER, GOOD[0], "c3,citizen,xa-a,Lê\x00Cúc,,"),
                   (3, None, "a NUL byte: this is not a text file (or it is damaged)")),
    "UTF-16 without a BOM": ("\n".join([HEADER, *GOOD]).encode("utf-16-le"),
                             (None, None, "the file is UTF-16 without a byte-order mark; save it as 'CSV UTF-8'")),
    "UTF-32": ("\n".join([HEADER, *GOOD]).encode("utf-32"), (None, None, "the file is UTF-32; save it as 'CSV UTF-8'")),
    "a quote never closed": (text(HEADER, GOOD[0], 'c3,citizen,xa-a,"Lê Cúc,,', *GOOD[1:]),
                             (3, None, 'a quote (") opened in this record is never closed')),
    "text after a closing quote": (text(HEADER, 'c3,citizen,xa-a,"Lê" Cúc,,', GOOD[1]),
                                   (2, None, "broken quoting (',' expected after '\"'): a quoted cell must end "
                                             "with a quote followed by the separator")),
    "a row with a cell too many": (text(HEADER, GOOD[0], "c3,citizen,xa-a,Lê, Cúc,,"),
                                   (3, None, "7 cells but the header has 6: a separator inside an unquoted cell, "
                                             "or a column without a header")),
    "a row cut short": (text(HEADER, "c3,citizen,xa-a,Lê", GOOD[1]),
                        (2, None, "4 cells but the header has 6: a row cut short (a line break inside a cell that "
                                  "is not quoted?)")),
    "a cell over the csv limit": (text(HEADER, GOOD[0], f"c3,citizen,xa-a,{LONG},,"),
                                  (3, "name", f"a cell longer than {csv.field_size_limit():,} characters (the csv "
                                              "module's limit): a frame cell is an id, a name, a phone or a code")),
}


def problems_of(path: Path, project) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(FrameError) as caught:
        read_frame(path, project)
    return [(p.line, p.column, p.message) for p in caught.value.problems]


@pytest.mark.parametrize("case", sorted(BAD))
async def test_a_file_that_is_not_a_clean_table_fails_whole_and_writes_nothing(tmp_path, project, case):
    data, expected = BAD[case]
    path = tmp_path / "frame.csv"
    path.write_bytes(data)
    assert problems_of(path, project) == [expected]
    db = tmp_path / "k.sqlite"
    async with await open_storage(db) as storage:
        await store_survey(storage, project, "", "survey.toml", T0)
        good = tmp_path / "good.csv"
        good.write_bytes(text(HEADER, *GOOD))
        await import_frame(storage, project, good, T0)  # a frame in place: a refused one must not touch it
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    async with await open_storage(db) as storage:
        with pytest.raises(Refused) as refused:  # the path the CLI and the console's upload take
            await import_frame(storage, project, path, T0, name="frame.csv")
        assert str(refused.value).startswith("frame.csv: nothing imported, 1 problem(s)")
        assert [r.frame_id for r in await storage.frame_rows(project.id)] == ["c1", "c2"]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_utf16_with_its_byte_order_mark_is_decoded(tmp_path, project):
    path = tmp_path / "frame.csv"
    path.write_bytes("\r\n".join([HEADER, *GOOD]).encode("utf-16"))  # Excel's "Unicode text", with BOM
    frame = read_frame(path, project)
    assert list(frame["name"]) == ["Nguyễn Thị Ánh", "Trần Văn Bảo"]


def test_quoted_cells_with_separators_and_line_breaks_are_still_one_cell(tmp_path, project):
    path = tmp_path / "frame.csv"
    path.write_bytes(text(HEADER + ",,", 'c1,citizen,xa-a,"Nguyễn, Thị\nÁnh",,,,', "c2,citizen,xa-a,Bảo,,,,"))
    frame = read_frame(path, project)  # a spreadsheet's empty trailing columns are not ragged rows
    assert list(frame["name"]) == ["Nguyễn, Thị\nÁnh", "Bảo"] and list(frame["line"]) == [2, 4]


def test_a_folder_or_a_missing_file_is_one_problem(tmp_path, project):
    assert problems_of(tmp_path, project) == [(None, None, "is a folder, not a frame file")]
    assert problems_of(tmp_path / "none.csv", project) == [(None, None, "no such file")]


def test_the_command_line_names_the_line_exits_1_and_writes_nothing(tmp_path):
    db = tmp_path / "k.sqlite"

    def khaosat(*args):
        result = subprocess.run([sys.executable, "-m", "bot.cli", *map(str, args)], capture_output=True, text=True,
                                timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert "Traceback" not in result.stdout + result.stderr
        return result

    assert khaosat("survey", "load", FORMS / "survey.toml", "--db", db).returncode == 0
    before = db.read_bytes()
    for case in ("a cell over the csv limit", "a quote never closed", "UTF-16 without a BOM"):
        bad = tmp_path / "bad.csv"
        bad.write_bytes(BAD[case][0])
        result = khaosat("frame", "import", bad, "--db", db)
        assert result.returncode == 1, result.stdout + result.stderr
        assert BAD[case][1][2] in result.stderr
    assert db.read_bytes() == before
