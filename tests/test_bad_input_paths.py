"""Paths and databases that cannot be used: one clear line, exit 1, no 0-byte or half-written file,
and another program's database is refused before anything is written into it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from storage import StorageError, open_storage
from storage.atomic_files import OutputError, atomic_open, write_text
from storage.console_db import ConsoleStores
from storage.ownership import APPLICATION_ID, ForeignDatabase
from storage.pg_migrations import migrate as migrate_postgresql

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "surveys" / "templates"


def khaosat(*args, cwd=None):
    result = subprocess.run([sys.executable, "-m", "bot.cli", *map(str, args)], capture_output=True, text=True,
                            cwd=cwd, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    """A tiny file system (root only): a full disk, or with ``remount_ro`` a read-only one."""
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


# -- the helper every writer uses ----------------------------------------------------------------


def test_a_writer_that_fails_leaves_the_earlier_file_and_no_temporary_one(tmp_path):
    out = tmp_path / "answers.csv"
    write_text(out, "earlier\n")
    with pytest.raises(RuntimeError):
        with atomic_open(out, "w", encoding="utf-8") as handle:
            handle.write("half of the new one")
            raise RuntimeError("the writer broke")
    assert out.read_text(encoding="utf-8") == "earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.csv"]


def test_a_folder_where_the_file_goes_and_a_file_where_the_folder_goes(tmp_path):
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(OutputError, match=r"cannot write .*out\.csv: it is a folder; give a file name"):
        write_text(tmp_path / "out.csv", "x")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*afile/out\.csv: a part of the path is a file"):
        write_text(tmp_path / "afile" / "out.csv", "x")


def _write_beyond_the_size_limit(path: str) -> None:  # in a child process: the limit is per process
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    try:
        write_text(Path(path), "x" * 100_000)
    except OutputError as error:
        print(error)
        sys.exit(1)


def test_a_file_too_large_for_the_system_is_one_line_and_leaves_nothing(tmp_path):
    out = tmp_path / "big.csv"
    result = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                             "from tests.test_bad_input_paths import _write_beyond_the_size_limit as w; "
                             f"w({str(out)!r})"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.strip() == f"cannot write {out}: the file would be larger than this system allows"
    assert list(tmp_path.iterdir()) == []


# -- the command line on a full or read-only disk ---------------------------------------------


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("db")
    db = folder / "k.sqlite"
    for args in (["survey", "load", TEMPLATES / "survey.example.toml"], ["frame", "import", TEMPLATES / "frame.example.csv"],
                 ["sample", "draw", "--seed", "1"]):
        assert khaosat(*args, "--db", db, cwd=TEMPLATES).returncode == 0
    return db


def test_a_full_disk_is_one_line_and_leaves_no_empty_file(tmp_path, database):
    with tmpfs(tmp_path / "full", "64k") as full:
        (full / "sample.csv").write_text("an earlier export\n")
        with contextlib.suppress(OSError), open(full / "filler", "wb") as filler:
            while True:  # until the disk is full
                filler.write(b"\0" * 1024)
                filler.flush()
        for args, out in ((["export", "--format", "xlsx", "--personal"], full / "sample.xlsx"),
                          (["export", "--format", "csv", "--layout", "long"], full / "sample.csv"),
                          (["backup"], full / "backup.sqlite"),
                          (["invite", "--telegram", "bot"], full / "letters")):
            result = khaosat(*args, "--db", database, "--out", out)
            assert result.returncode == 1, result.stdout + result.stderr
            message = result.stderr.strip()
            assert "the disk is full" in message or "database or disk is full" in message, message
            assert len(message.splitlines()) == 1, message
        assert (full / "sample.csv").read_text() == "an earlier export\n"
        leftovers = [p for p in full.rglob("*") if p.is_file() and p.name not in ("filler", "sample.csv")]
        assert leftovers == []


def test_a_read_only_database_location_is_named(tmp_path, database):
    with tmpfs(tmp_path / "ro", "1m") as folder:
        copy = folder / "k.sqlite"
        copy.write_bytes(database.read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        result = khaosat("frame", "import", TEMPLATES / "frame.example.csv", "--db", copy)
        assert result.returncode == 1
        assert f"cannot open for writing {copy}: the disk is read-only" in result.stderr
        result = khaosat("survey", "load", TEMPLATES / "survey.example.toml", "--db", folder / "new.sqlite")
        assert result.returncode == 1
        assert "the disk is read-only" in result.stderr


# -- another program's database ----------------------------------------------------------------


@pytest.fixture
def foreign(tmp_path) -> Path:
    path = tmp_path / "contacts.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
        db.execute("INSERT INTO contacts VALUES ('Nguyễn Văn A', '0912345678')")
        db.commit()
    return path


@pytest.mark.parametrize("args", [
    ["survey", "load", TEMPLATES / "survey.example.toml"],
    ["try", TEMPLATES / "sipas_citizen.md"],
    ["status"],
])
def test_another_programs_sqlite_file_is_refused_and_left_byte_for_byte(foreign, args):
    before = digest(foreign)
    result = khaosat(*args, "--db", foreign)
    assert result.returncode == 1
    assert f"{foreign} belongs to another program (no khaosat schema; tables: contacts)" in result.stderr
    assert digest(foreign) == before
    assert sorted(p.name for p in foreign.parent.iterdir()) == ["contacts.sqlite"]  # no -wal, no -shm


async def test_the_console_and_another_application_id_are_refused_too(foreign, tmp_path):
    with pytest.raises(ForeignDatabase):
        await ConsoleStores.open(foreign)
    marked = tmp_path / "other-app.sqlite"
    with contextlib.closing(sqlite3.connect(marked)) as db:
        db.execute("PRAGMA application_id = 1234")
        for table in ("questionnaires", "respondents", "sessions", "events", "answers"):  # even with our names
            db.execute(f"CREATE TABLE {table} (x)")
        db.execute("PRAGMA user_version = 3")
    with pytest.raises(ForeignDatabase, match="application id 0x4d2"):
        await open_storage(marked)


async def test_new_and_older_khaosat_databases_are_marked_and_opened(tmp_path):
    new = tmp_path / "new.sqlite"
    async with await open_storage(new):
        pass
    with contextlib.closing(sqlite3.connect(new)) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        db.execute("PRAGMA application_id = 0")  # as written by khaosat before the mark
    async with await open_storage(new):
        pass
    with contextlib.closing(sqlite3.connect(new)) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    async with await open_storage(empty):
        pass


async def test_a_postgresql_schema_with_another_programs_tables_is_refused(empty_postgresql_url):
    connection = await asyncpg.connect(empty_postgresql_url)
    try:
        await connection.execute("CREATE TABLE invoices (id integer PRIMARY KEY)")
        with pytest.raises(StorageError, match=r"belongs to another program \(no khaosat schema; tables: invoices\)"):
            await migrate_postgresql(connection)
        tables = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        assert [r["tablename"] for r in tables] == ["invoices"]
    finally:
        await connection.close()
