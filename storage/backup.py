"""An online backup of a SQLite database: a consistent copy taken while the bots keep writing.

SQLite's backup API (``sqlite3.Connection.backup``) copies the database page by page under one
read transaction. In WAL mode, which khaosat's databases use, a reader holds a snapshot and never
blocks a writer, so the copy is the database as it was at one instant — no half-written answer —
and the bots go on answering meanwhile. It is copied in one step: copied in several, a write by
another connection between steps would make SQLite start the copy again, and under a busy bot it
might never finish.

The copy is written next to its destination under a temporary name, checked
(``PRAGMA integrity_check``), switched to a rollback journal so that it is one self-contained
file, and only then renamed over the destination: a failed or interrupted backup leaves the
previous one in place. For PostgreSQL, ``pg_dump`` does the same job.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path


class BackupError(Exception):
    """The backup could not be made; nothing was written at the destination."""


@dataclass(frozen=True)
class Backup:
    path: Path
    pages: int
    bytes: int


def backup_sqlite(database: Path, destination: Path, *, busy_timeout_ms: int = 10_000) -> Backup:
    """Copy ``database`` to ``destination`` (replacing an earlier backup there) and check the copy."""
    if not database.is_file():
        raise BackupError(f"{database} does not exist")
    if destination.exists() and destination.resolve() == database.resolve():
        raise BackupError(f"{destination} is the database itself: give another file for the backup")
    if destination.is_dir():
        raise BackupError(f"{destination} is a folder: give the file to write, e.g. {destination / database.name}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    os.close(handle)
    partial = Path(name)
    try:
        source = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout_ms / 1000)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy, pages=-1)  # one step: one snapshot (see the module docstring)
                copy.execute("PRAGMA journal_mode = DELETE")
                check = copy.execute("PRAGMA integrity_check").fetchone()[0]
                pages = copy.execute("PRAGMA page_count").fetchone()[0]
            finally:
                copy.close()
        finally:
            source.close()
        if check != "ok":
            raise BackupError(f"the copy of {database} failed its integrity check: {check}")
        os.replace(partial, destination)
    except sqlite3.Error as error:
        raise BackupError(f"cannot back up {database}: {error}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return Backup(destination, pages, destination.stat().st_size)
