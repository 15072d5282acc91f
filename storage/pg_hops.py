"""The repositories' connection on PostgreSQL: the same storage thread and hops as SQLite's
(storage/sqlite_hops.py: ``SQLiteThread``, ``Hops``, group commit, batched calls), over a
connection object that offers the small surface of ``sqlite3.Connection`` the bodies use.

Why the same thread and the same bodies: every repository body is a synchronous function of a
connection, run whole in one hop of a worker thread; ``PostgresConnection`` lets each of them
run unchanged on PostgreSQL, so no statement and no transaction rule is written twice. Within
one process the thread runs one hop at a time, exactly as on SQLite, so whatever relied on
SQLite's single writer (a quota's last slot, an outbox row marked sending, a disposition moved
once) holds the same way here under READ COMMITTED: the process's writes never interleave.
(Several processes on one database are another matter: storage/pg_locks.py and the outbox's
claiming.)

The driver is asyncpg, as for the console's pool and the migrations (one PostgreSQL driver in
the project): the storage thread runs a private event loop of its own and waits on it for each
statement (``run_until_complete``), which is what a synchronous body needs. Each statement is
translated once (storage/pg_dialect.py) and prepared once on the server (``_PREPARED`` most
recent kept), so the answer path's statements are a bind and an execute each.

What ``execute(sql, params)`` gives back: a cursor with ``fetchone``/``fetchall``, rows read by
name or position (asyncpg's ``Record``), ``rowcount`` (from the command tag) and ``lastrowid``
(an ``INSERT`` into a table with an ``id`` column gets ``RETURNING id``). Transactions: the hop's
``BEGIN IMMEDIATE`` is a plain ``BEGIN`` (READ COMMITTED: one process writes one hop at a time);
its read-only ``BEGIN`` is ``REPEATABLE READ`` so the reads of a hop see one state, as SQLite's
read transaction does; and since PostgreSQL refuses every statement after a failed one until the
transaction ends, a read that fails restarts the read transaction so the hop's other reads go on
(a write group is undone and run again body by body with SAVEPOINTs, as on SQLite).
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import asyncpg

from .errors import StorageError
from .pg_connection import redacted
from .pg_dialect import as_sqlite_number, postgresql_query
from .pg_migrations import migrate
from .sqlite_hops import SQLiteThread

#: Prepared statements kept per connection (the batched statements have one text per row count).
_PREPARED = 2048

_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|END)\b", re.I)
_CHANGES = re.compile(r"^\s*SELECT\s+changes\(\)\s*$", re.I)
_INSERT_INTO = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.I)
_RETURNING = re.compile(r"\bRETURNING\b", re.I)
#: The hop's transactions (storage/sqlite_hops.py) in PostgreSQL's words.
_TRANSACTIONS = {"BEGIN IMMEDIATE": "BEGIN", "BEGIN": "BEGIN ISOLATION LEVEL REPEATABLE READ"}


#: A broken constraint said as SQLite says it, so that a message reads the same on both databases.
_CONSTRAINTS = ((asyncpg.CheckViolationError, "CHECK"), (asyncpg.UniqueViolationError, "UNIQUE"),
                (asyncpg.NotNullViolationError, "NOT NULL"), (asyncpg.ForeignKeyViolationError, "FOREIGN KEY"))


def _described(error: BaseException) -> str:
    for kind, name in _CONSTRAINTS:
        if isinstance(error, kind):
            where = getattr(error, "constraint_name", None) or getattr(error, "column_name", None) or ""
            return f"{name} constraint failed: {where} ({error})"
    return str(error)


class Cursor:
    """What ``PostgresConnection.execute`` returns: the rows, ``rowcount`` and ``lastrowid``."""

    __slots__ = ("_rows", "_next", "rowcount", "lastrowid")

    def __init__(self, rows: Sequence[Any], rowcount: int = -1, lastrowid: int | None = None) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows[self._next:])
        self._next = len(self._rows)
        return rows

    def __iter__(self):
        return iter(self.fetchall())

    def close(self) -> None:
        pass


class PostgresConnection:
    """One asyncpg connection driven synchronously from the storage thread (module docstring)."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._prepared: OrderedDict[str, asyncpg.prepared_stmt.PreparedStatement] = OrderedDict()
        self._changes = 0
        self._snapshot = False  # in the hop's read transaction
        try:
            self._asyncpg: asyncpg.Connection = self._loop.run_until_complete(self._connect(url))
        except BaseException:
            self._loop.close()
            raise
        self._id_tables = frozenset(row[0] for row in self._wait(self._asyncpg.fetch(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'id'"
            " AND table_schema = current_schema()")))
        self._statements: dict[str, str] = {}  # translated statement → as run (RETURNING id added)

    @staticmethod
    async def _connect(url: str) -> asyncpg.Connection:
        try:
            conn = await asyncpg.connect(url, server_settings={"timezone": "UTC"}, statement_cache_size=0)
        except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise StorageError(f"cannot open {redacted(url)}: {error}") from None
        try:
            await conn.set_type_codec("numeric", encoder=str, decoder=as_sqlite_number, schema="pg_catalog", format="text")
            await migrate(conn)
        except asyncpg.PostgresError as error:
            await conn.close()
            raise StorageError(f"cannot use {redacted(url)}: {error}") from None
        except BaseException:
            await conn.close()
            raise
        return conn

    def _wait(self, coroutine: Any) -> Any:
        return self._loop.run_until_complete(coroutine)

    @property
    def in_transaction(self) -> bool:
        return self._asyncpg.is_in_transaction()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        try:
            return self._run(sql, params)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            if self._snapshot and self._asyncpg.is_in_transaction():
                # The hop's other reads go on in a new read transaction (module docstring).
                self._wait(self._asyncpg.execute("ROLLBACK"))
                self._wait(self._asyncpg.execute(_TRANSACTIONS["BEGIN"]))
            raise StorageError(f"postgresql: {_described(error)}") from error

    def _statement(self, statement: str) -> Any:
        """``statement`` prepared on the server, once while it is among the ``_PREPARED`` latest."""
        prepared = self._prepared.get(statement)
        if prepared is None:
            prepared = self._wait(self._asyncpg.prepare(statement))
            self._prepared[statement] = prepared
            if len(self._prepared) > _PREPARED:
                self._prepared.popitem(last=False)
        else:
            self._prepared.move_to_end(statement)
        return prepared

    def _run(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> Cursor:
        if not params and _CONTROL.match(sql):
            statement = sql.strip().upper()
            if statement in _TRANSACTIONS:
                self._snapshot = statement == "BEGIN"
                statement = _TRANSACTIONS[statement]
            elif statement in ("COMMIT", "ROLLBACK", "END"):
                self._snapshot = False
            self._wait(self._asyncpg.execute(statement))
            return Cursor(())
        if not params and _CHANGES.match(sql):
            return Cursor(((self._changes,),))
        query, args = postgresql_query(sql, params)
        statement = self._statements.get(query)
        if statement is None:
            statement = query
            insert = _INSERT_INTO.match(query)
            if insert and insert[1].lower() in self._id_tables and not _RETURNING.search(query):
                statement = query + " RETURNING id"
            self._statements[query] = statement
        prepared = self._statement(statement)
        rows = self._wait(prepared.fetch(*args))
        tag = prepared.get_statusmsg() or ""
        count = tag.rsplit(" ", 1)[-1]
        rowcount = int(count) if count.isdigit() else -1
        if not tag.startswith("SELECT"):
            self._changes = max(rowcount, 0)
        lastrowid = None
        if statement is not query and rows:
            lastrowid = rows[-1][0]
            rows = ()
        return Cursor(rows, rowcount, lastrowid)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any] | dict[str, Any]]) -> Cursor:
        """``sql`` once per row, in order: consecutive rows that translate alike go as one
        pipelined ``executemany`` (rows whose Nones differ are different statements here)."""
        runs: list[tuple[str, list[list[Any]]]] = []
        for params in rows:
            query, args = postgresql_query(sql, params)
            if runs and runs[-1][0] == query:
                runs[-1][1].append(args)
            else:
                runs.append((query, [args]))
        try:
            for query, batch in runs:
                self._wait(self._statement(query).executemany(batch))
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise StorageError(f"postgresql: {_described(error)}") from error
        return Cursor(())

    def close(self) -> None:
        try:
            self._wait(self._asyncpg.close())
        finally:
            self._loop.close()


async def open_connection(url: str) -> SQLiteThread:
    """The storage thread on a connection to ``url``, the database migrated."""
    db = SQLiteThread(lambda: PostgresConnection(url))
    try:
        await db.run(lambda conn: None)  # the connection is open, or its error is raised here
    except BaseException:
        await db.close()
        raise
    return db
