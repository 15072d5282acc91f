"""One aiosqlite connection for the coordinator console's stores, to the survey database.

The console's tables (accounts, web sessions, login attempts, audit log, jobs: migration 10)
live in the same SQLite file as the fieldwork. This connection is the console's own, in WAL
mode beside the bots' one, opened with the same pragmas and migrated by the same runner, so
whichever opens a database first brings it up to date.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite

from .errors import StorageError
from .migrations import migrate
from .ownership import check_sqlite_file
from .sqlite_hops import _PRAGMAS  # noqa: PLC2701 — the same pragmas as the fieldwork storage

if TYPE_CHECKING:  # the store modules import this one
    from .accounts import SQLiteAccounts
    from .audit import SQLiteAudit
    from .fieldwork_views import SQLiteFieldworkViews
    from .jobs import SQLiteJobs


async def open_connection(path: str | os.PathLike[str]) -> aiosqlite.Connection:
    """Open (creating if needed) and migrate; autocommit mode, rows as ``sqlite3.Row``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_sqlite_file(path)  # another program's file: refused before anything is written to it
    try:
        db = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as error:
        raise StorageError(f"cannot open {path}: {error}") from None
    try:
        db.row_factory = sqlite3.Row
        for statement in (*_PRAGMAS, "PRAGMA synchronous = FULL"):
            await db.execute(statement)
        await migrate(db)
    except sqlite3.Error as error:
        await db.close()
        raise StorageError(f"cannot use {path}: {error}") from None
    except BaseException:
        await db.close()
        raise
    return db


class Transactions:
    """``async with transactions.write(): …`` — one BEGIN IMMEDIATE … COMMIT at a time on a
    shared connection (coroutines would otherwise interleave their statements)."""

    #: What a statement breaking a constraint raises (storage/pg_connection.py has PostgreSQL's).
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)

    def __init__(self, db: aiosqlite.Connection):
        self.db = db
        self.lock = asyncio.Lock()

    def write(self) -> "_Write":
        return _Write(self)

    async def execute(self, sql: str, params: tuple | dict = ()) -> tuple[int, int | None]:
        """One write statement, never inside another coroutine's transaction: (rowcount, lastrowid)."""
        async with self.lock:
            cursor = await self.db.execute(sql, params)
            return cursor.rowcount, cursor.lastrowid

    async def fetchall(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        async with self.db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        async with self.db.execute(sql, params) as cursor:
            return await cursor.fetchone()


class _Write:
    def __init__(self, owner: Transactions):
        self.owner = owner

    async def __aenter__(self) -> aiosqlite.Connection:
        await self.owner.lock.acquire()
        try:
            await self.owner.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.owner.lock.release()
            raise
        return self.owner.db

    async def __aexit__(self, kind, error, trace) -> None:
        try:
            await self.owner.db.execute("ROLLBACK" if kind else "COMMIT")
        finally:
            self.owner.lock.release()


@dataclass
class ConsoleStores:
    """Every console store on one connection; ``await ConsoleStores.open(path)``, then ``close()``."""

    db: aiosqlite.Connection
    accounts: "SQLiteAccounts"
    audit: "SQLiteAudit"
    jobs: "SQLiteJobs"
    fieldwork: "SQLiteFieldworkViews"

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> "ConsoleStores":
        """``path`` of an SQLite file, or a ``postgresql://`` URL (storage/pg_console.py)."""
        from . import is_postgresql_url
        from .accounts import SQLiteAccounts
        from .audit import SQLiteAudit
        from .fieldwork_views import SQLiteFieldworkViews
        from .jobs import SQLiteJobs

        if is_postgresql_url(path):
            from .pg_console import open_console_stores

            return await open_console_stores(cls, path)
        db = await open_connection(path)
        transactions = Transactions(db)
        return cls(db, SQLiteAccounts(transactions), SQLiteAudit(transactions), SQLiteJobs(transactions),
                   SQLiteFieldworkViews(transactions))

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> "ConsoleStores":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
