"""An online backup of a SQLite database: a consistent copy taken while the bots keep writing.

SQLite's backup API (``sqlite3.Connection.backup``) copies the database page by page under one
read transaction. In WAL mode, which khaosat's databases use, a reader holds a snapshot and never
blocks a writer, so the copy is the database as it was at one instant — no half-written answer —
and the bots go on answering meanwhile. It is copied in one step: copied in several, a write by
another connection between steps would make SQLite start the copy again, and under a busy bot it
might never finish.

The copy is written next to its destination under a temporary name (``atomic_files``), checked
(``PRAGMA integrity_check``), switched to a rollback journal so that it is one self-contained
file, and only then renamed over the destination: a failed or interrupted backup leaves the
previous one in place. For PostgreSQL, ``pg_dump`` does the same job.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .atomic_files import atomic_path, describe, make_folder


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
    try:
        make_folder(destination.parent)
        with atomic_path(destination) as partial:
            source = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True,
                                     timeout=busy_timeout_ms / 1000)
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
    except sqlite3.Error as error:
        raise BackupError(f"cannot back up {database}: {error}") from None
    except OSError as error:  # OutputError: the disk is full, the folder read-only…
        raise BackupError(describe(error, destination)) from None
    return Backup(destination, pages, destination.stat().st_size)
