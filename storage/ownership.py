"""Is this database khaosat's? Checked before anything is written to it.

``khaosat … --db other.sqlite`` on a file that belongs to another program would otherwise get
khaosat's tables (and WAL mode) written into it. An SQLite file is khaosat's to use when it is

* empty or new (no tables): khaosat creates its schema; or
* marked: ``PRAGMA application_id`` is ``APPLICATION_ID`` (the migration runner sets it, in the
  file header, where ``file(1)`` and other tools look); or
* a khaosat database from before the marker: ``application_id`` 0, ``user_version`` ≥ 1 and
  khaosat's first tables present (the runner marks it on this opening).

Anything else — another application id, or tables without khaosat's schema — is refused with
the file and a few of its tables named. The check opens the file read-only (``mode=ro``), so
even the refusal writes nothing. For PostgreSQL, the same rule is in ``pg_migrations.migrate``:
a schema with tables but no ``schema_version`` is refused.

``unwritable`` explains an SQLite file that cannot be opened for writing (a read-only disk or
folder), which SQLite reports only as "unable to open database file".
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from .atomic_files import describe
from .errors import StorageError

#: "khao" in ASCII: khaosat's mark in the SQLite header (offset 68).
APPLICATION_ID = 0x6B68616F
#: Tables of khaosat's first migration: a file with all of them and no mark is an older khaosat database.
FIRST_TABLES = frozenset({"questionnaires", "respondents", "sessions", "events", "answers"})


class ForeignDatabase(StorageError):
    """The database belongs to another program; nothing was written."""


def check_sqlite_file(path: Path) -> None:
    """Refuse ``path`` unless it is new, empty or khaosat's (see the module docstring)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return  # the opening proper reports it
    try:
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        user_version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    except sqlite3.Error:
        return  # not a database at all, or damaged: the opening proper says which
    finally:
        connection.close()
    if application_id == APPLICATION_ID or not tables:
        return
    if application_id == 0 and user_version >= 1 and FIRST_TABLES <= tables:
        return
    raise ForeignDatabase(foreign_message(str(path), application_id, tables))


def foreign_message(where: str, application_id: int, tables: set[str]) -> str:
    shown = ", ".join(sorted(tables)[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    owner = f"application id {application_id:#x}" if application_id else "no khaosat schema"
    return (f"{where} belongs to another program ({owner}; tables: {shown}); khaosat writes nothing into it: "
            "give the path of a khaosat database, or of a new file")


def unwritable(path: Path) -> str | None:
    """Why ``path`` (or its folder, where SQLite keeps its -wal and -shm files) cannot be written,
    or None if it can."""
    probes = [path] if path.exists() else []
    for probe in probes:
        try:
            with open(probe, "r+b"):
                pass
        except OSError as error:
            return describe(error, probe, "open for writing")
    folder = path.parent
    try:
        handle = os.open(folder / f".{path.name}.probe", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return None
    except OSError as error:
        return describe(error, folder, "write in the folder")
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(folder / f".{path.name}.probe")
    return None
