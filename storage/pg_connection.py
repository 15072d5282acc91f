"""PostgreSQL connections for the stores: an asyncpg pool, migrated when opened, and
``PostgresTransactions``, the same small interface as ``console_db.Transactions``.

The stores' SQL is written once, in the dialect both databases share, and translated by
``pg_dialect.postgresql_query`` (the same translation as the bots' storage thread, pg_hops.py);
rows are read by name or position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .errors import StorageError
from .pg_dialect import as_sqlite_number, postgresql_query
from .pg_migrations import migrate

_INSERT = re.compile(r"^\s*INSERT\b", re.I)
_RETURNING = re.compile(r"\bRETURNING\b", re.I)


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


@dataclass(frozen=True)
class Outcome:
    """What a write statement did, as a cursor says it: rows changed, and the id of the last
    row inserted (when its table has an integer ``id``)."""

    rowcount: int
    lastrowid: int | None = None


async def run(connection: asyncpg.Connection, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Outcome:
    query, args = postgresql_query(sql, params)
    if _INSERT.match(query) and not _RETURNING.search(query):
        rows = await connection.fetch(query + " RETURNING *", *args)
        last = rows[-1].get("id") if rows else None
        return Outcome(len(rows), last if isinstance(last, int) else None)
    status = await connection.execute(query, *args)
    count = status.rsplit(" ", 1)[-1]
    return Outcome(int(count) if count.isdigit() else 0)


async def _numbers_as_sqlite(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("numeric", encoder=str, decoder=as_sqlite_number, schema="pg_catalog",
                                    format="text")


async def open_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool of connections to ``url`` (sessions in UTC), the database migrated."""
    try:
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=_numbers_as_sqlite,
                                         server_settings={"timezone": "UTC"})
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise StorageError(f"cannot open {redacted(url)}: {error}") from None
    try:
        async with pool.acquire() as connection:
            await migrate(connection)
    except asyncpg.PostgresError as error:
        await pool.close()
        raise StorageError(f"cannot use {redacted(url)}: {error}") from None
    except BaseException:
        await pool.close()
        raise
    return pool


class PostgresTransactions:
    """``console_db.Transactions`` on a pool: each statement on a connection of its own,
    ``async with transactions.write() as db:`` one transaction on one connection."""

    integrity_errors: tuple[type[Exception], ...] = (asyncpg.IntegrityConstraintViolationError,)

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    def write(self) -> "_Write":
        return _Write(self.pool)

    async def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> tuple[int, int | None]:
        async with self.pool.acquire() as connection:
            outcome = await run(connection, sql, params)
        return outcome.rowcount, outcome.lastrowid

    async def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[asyncpg.Record]:
        query, args = postgresql_query(sql, params)
        return await self.pool.fetch(query, *args)

    async def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> asyncpg.Record | None:
        query, args = postgresql_query(sql, params)
        return await self.pool.fetchrow(query, *args)


class _InTransaction:
    """The ``db`` of ``write()``: ``await db.execute(sql, params)`` → ``.rowcount``, ``.lastrowid``."""

    def __init__(self, connection: asyncpg.Connection):
        self.connection = connection

    async def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Outcome:
        return await run(self.connection, sql, params)


class _Write:
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def __aenter__(self) -> _InTransaction:
        self.connection = await self.pool.acquire()
        self.transaction = self.connection.transaction()
        try:
            await self.transaction.start()
        except BaseException:
            await self.pool.release(self.connection)
            raise
        return _InTransaction(self.connection)

    async def __aexit__(self, kind, error, trace) -> None:
        try:
            if kind:
                await self.transaction.rollback()
            else:
                await self.transaction.commit()
        finally:
            await self.pool.release(self.connection)
