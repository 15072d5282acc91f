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
``BEGIN IMMEDIATE`` is a plain ``BEGIN`` (READ COMMITTED: one process writes one hop at a time),
a failed body is undone as on SQLite (the group rolled back and run again body by body with
SAVEPOINTs: PostgreSQL refuses every statement after a failed one until then). Each round trip
to the server costs more than SQLite's whole statement, so the control statements travel
together (``_control``): a write hop's ``BEGIN`` and ``SAVEPOINT`` go in one round trip before its
first statement, ``RELEASE`` with ``COMMIT``; and a read hop runs without a transaction, each
statement seeing what is committed when it starts. Within one process that is the state SQLite's
read transaction would show (the thread writes nothing between a hop's reads); across processes
a hop's reads may see another's commit between them, which no read here relies on (a decision
that must hold is taken in a write hop).
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
_ENDS = ("COMMIT", "ROLLBACK", "END")


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

    #: What ``storage.coordination.serialise`` asks to know whether to take an advisory lock.
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._prepared: OrderedDict[str, asyncpg.prepared_stmt.PreparedStatement] = OrderedDict()
        self._changes = 0
        self._snapshot = False  # in the hop's read "transaction" (module docstring)
        self._pending: list[str] = []  # transaction control not sent yet (``_control``)
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
        return (self._snapshot or (bool(self._pending) and self._pending[0] == "BEGIN")
                or self._asyncpg.is_in_transaction())

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        try:
            if not params and _CONTROL.match(sql):
                self._control(sql.strip().upper())
                return Cursor(())
            self._flush()
            return self._run(sql, params)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise StorageError(f"postgresql: {_described(error)}") from error

    def _flush(self) -> None:
        """Send the transaction control held back (``_control``) before a statement."""
        if self._pending:
            pending, self._pending = self._pending, []
            self._wait(self._asyncpg.execute("; ".join(pending)))

    def _control(self, statement: str) -> None:
        """The hops' transaction control, in as few round trips as it takes (module docstring):
        a read hop's ``BEGIN … COMMIT`` sends nothing; a write hop's ``BEGIN`` and ``SAVEPOINT``
        go with the next statement's round trip before it, ``RELEASE`` with the ``COMMIT``."""
        if statement == "BEGIN":
            self._snapshot = True
            return
        if self._snapshot and statement in _ENDS:
            self._snapshot = False
            return
        self._pending.append("BEGIN" if statement == "BEGIN IMMEDIATE" else statement)
        if statement in _ENDS:
            pending, self._pending = self._pending, []
            if pending[0] != "BEGIN":  # (BEGIN … COMMIT with nothing between: nothing to send)
                self._wait(self._asyncpg.execute("; ".join(pending)))

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
        if not params and _CHANGES.match(sql):
            return Cursor(((self._changes,),))
        query, args = postgresql_query(sql, params)
        statement = self._statements.get(query)
        if statement is None:
            statement = query
            insert = _INSERT_INTO.match(query)
            if insert and insert[1].lower() in self._id_tables and not _RETURNING.search(query):
                statement = query + " RETURNING id"
            if len(self._statements) > _PREPARED:  # bounded: texts differ by their NULLs too
                self._statements.clear()
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
            self._flush()
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
