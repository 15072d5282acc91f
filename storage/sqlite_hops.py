"""The SQLite repositories' connection: one worker thread, calls grouped into hops.

Durability choices: WAL with ``synchronous=FULL`` by default so every committed step is
on disk before the call returns (NORMAL survives a killed process but may lose the last
commits on power loss or an OS crash); every write is one ``BEGIN IMMEDIATE`` transaction
so a killed process leaves all of it or none, and concurrent writers in other processes
queue on ``busy_timeout`` instead of failing mid-transaction.

Hops to the worker thread: the whole body of each public method is one synchronous function
run on the worker thread that owns the ``sqlite3.Connection`` (``SQLiteThread``).
That thread runs one hop at a time, so transactions of different coroutines cannot interleave
on the one connection and no ``asyncio.Lock`` is needed. A hop costs the event loop more than
a typical read, and with ``synchronous=FULL`` the fsync of a COMMIT costs more than a typical
write, so calls that arrive while hops are out wait and go together in the next one
(``Hops._launch``): the waiting reads in one read transaction, then the waiting writes in one
``BEGIN IMMEDIATE … COMMIT`` (group commit; if a body fails, the group is rolled back and run
again with one SAVEPOINT each). Two hops may be out at once, so the thread starts the next as
soon as one ends instead of waiting for the event loop to answer the last one's callers. Within
a hop, calls of the kinds every answer makes (``apply_step``, ``linked_session``) run as a few
multi-row statements (``_batched``): each statement hands the GIL to the event loop and waits
for it back, so fewer statements is what lets the two threads work at the same time. A body
that fails is undone alone and only its caller sees the error; no caller hears of a write
before the COMMIT that holds it has returned; with nothing in progress a call goes at once. A
body already handed to the thread runs to the end even if its caller is cancelled, so a write
is still all or nothing.

The worker thread is this module's own (``SQLiteThread``: a ``threading.Thread`` and a queue
over a stdlib ``sqlite3.Connection``), not aiosqlite's: aiosqlite's public API costs one hop per
statement, and running a whole body in one hop needed its private ``_execute``/``_conn``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .errors import StorageError
from .migrations import migrate
from .ownership import ForeignDatabase, check_sqlite_file, unwritable

T = TypeVar("T")

#: Accepted values of ``open(..., synchronous=...)`` and the PRAGMA each sets.
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}

_PRAGMAS = (
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA journal_mode = WAL",
    # 64 MiB of page cache instead of SQLite's 2 MiB: a reminder pass or an export touches tens
    # of MiB, and a transaction that outgrows the cache spills pages to the WAL before its COMMIT.
    "PRAGMA cache_size = -65536",
)


def _driver_error(exc: BaseException) -> BaseException:
    """Driver errors become ``StorageError`` so callers need not know the backend; so does a
    StopIteration, which an asyncio future refuses to carry."""
    if isinstance(exc, (sqlite3.Error, StopIteration)):
        error = StorageError(f"sqlite: {exc}" if isinstance(exc, sqlite3.Error) else f"{type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error
    return exc


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise _driver_error(exc) from exc


# Synchronous helpers: they run on the worker thread, inside one hop. -----------------------

def all_rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    return conn.execute(sql, params).fetchall()


def one_row(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
    return conn.execute(sql, params).fetchone()


_Call = tuple[Callable[..., Any], tuple[Any, ...]]
_Outcome = tuple[bool, Any]
_Waiting = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


class _Isolate(Exception):
    """A body of a group failed: run the group again, each body in its own SAVEPOINT."""


def _in_group_transaction(conn: sqlite3.Connection, bodies: Sequence[_Call]) -> list[_Outcome]:
    """Run each ``fn(conn, *args)`` in one write transaction; a failed body is undone alone.

    Returns ``(True, result)`` or ``(False, exception)`` per body, in order. The results mean
    nothing until the COMMIT at the end has returned, which is why callers are only told
    afterwards. A failure that ends the whole transaction (SQLite rolls back by itself on
    some I/O and disk-full errors) or a failed COMMIT raises: then nothing of the group is
    stored.

    The bodies first run without a SAVEPOINT each, calls of the same kind together
    (``_batched``); only when one fails is the transaction rolled back and the group run again
    body by body with a SAVEPOINT each, so the failure is undone alone. Bodies touch nothing
    but the connection, so running one twice is safe.
    """
    try:
        return _group_pass(conn, bodies, isolate=len(bodies) == 1)
    except _Isolate:
        return _group_pass(conn, bodies, isolate=True)


def _group_pass(conn: sqlite3.Connection, bodies: Sequence[_Call], *, isolate: bool) -> list[_Outcome]:
    outcomes: list[_Outcome] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        done: dict[int, _Outcome] = {}
        if not isolate:
            try:
                done = _batched(conn, bodies)
            except Exception as exc:
                if not conn.in_transaction:
                    raise
                raise _Isolate from exc
        for index, (fn, args) in enumerate(bodies):
            if index in done:
                outcomes.append(done[index])
                continue
            if isolate:
                conn.execute("SAVEPOINT step")
            try:
                outcome: _Outcome = (True, fn(conn, *args))
            except Exception as exc:
                if not conn.in_transaction:
                    raise
                if not isolate:
                    raise _Isolate from exc
                conn.execute("ROLLBACK TO step")
                outcome = (False, exc)
            if isolate:
                conn.execute("RELEASE step")
            outcomes.append(outcome)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


def _in_group_snapshot(conn: sqlite3.Connection, bodies: Sequence[_Call]) -> list[_Outcome]:
    """Run each read ``fn(conn, *args)`` in one read transaction (they all see one state)."""
    outcomes: list[_Outcome] = []
    conn.execute("BEGIN")
    try:
        try:
            done = _batched(conn, bodies)
        except Exception:
            if not conn.in_transaction:
                raise
            done = {}  # reads change nothing: ask them one by one instead
        for index, (fn, args) in enumerate(bodies):
            if index in done:
                outcomes.append(done[index])
                continue
            try:
                outcomes.append((True, fn(conn, *args)))
            except Exception as exc:
                if not conn.in_transaction:
                    raise
                outcomes.append((False, exc))
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
    return outcomes


#: A batch function's answer for a call it leaves to be run by itself (``_batched``).
ALONE = object()


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    """A batch function's answer for a call it refuses without having written anything for it:
    its caller gets ``error``, and the rest of the group goes on (nothing to undo)."""

    error: Exception


#: Calls the worker thread runs together when several wait in one group (``_batched``):
#: single-call body → its batch form. The aggregates register theirs with ``batch_form``.
_BATCHES: dict[Callable[..., Any], Callable[[sqlite3.Connection, Sequence[tuple[Any, ...]]], list[Any]]] = {}


def batch_form(single: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated ``batch(conn, [args, ...]) -> [result | ALONE | Refused, ...]`` as
    the form ``single(conn, *args)`` takes when several such calls share a hop."""

    def register(batch: Callable[..., Any]) -> Callable[..., Any]:
        _BATCHES[single] = batch
        return batch

    return register


def _batched(conn: sqlite3.Connection, bodies: Sequence[_Call]) -> dict[int, _Outcome]:
    """Run the group's calls that have a batch form (``_BATCHES``) together; index → outcome.

    Why: every statement hands the GIL back and forth between this thread and the event loop
    (sqlite3 releases it while SQLite works), and a busy loop keeps the worker waiting for it
    each time; one multi-row statement for a whole group's answers waits once. The bodies of a
    group are calls of different coroutines that were waiting at the same time, so running
    some of them first is one more order they could have arrived in. A batch function returns
    ``Refused(error)`` for a call it refuses having written nothing for it (its caller gets
    ``error``), ``ALONE`` for a call it leaves to the ordinary body, and raises when anything is
    off: the caller then runs every body alone (the step write's ``_apply_step`` is itself the
    batch of one, so even then it is written by the same statements).
    """
    kinds: dict[Callable[..., Any], list[int]] = {}
    for index, (fn, _) in enumerate(bodies):
        if fn in _BATCHES:
            kinds.setdefault(fn, []).append(index)
    done: dict[int, _Outcome] = {}
    for fn, indices in kinds.items():
        if len(indices) < 2:
            continue
        results = _BATCHES[fn](conn, [bodies[index][1] for index in indices])
        for index, result in zip(indices, results, strict=True):
            if isinstance(result, Refused):
                done[index] = (False, result.error)
            elif result is not ALONE:
                done[index] = (True, result)
    return done


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def placeholders(rows: int, columns: int) -> str:
    row = "(" + ", ".join("?" * columns) + ")"
    return ", ".join([row] * rows)


# Rows per multi-row statement: far below SQLite's limit of 32,766 parameters, and few enough
# distinct statement texts (one per row count) that sqlite3 keeps them all prepared.
BATCH_ROWS = 64
_STATEMENT_CACHE = 1024
#: Hops handed to the worker thread at once (``Hops._launch``).
_HOPS_IN_FLIGHT = 2

def _in_group(
    conn: sqlite3.Connection, reads: Sequence[_Call], writes: Sequence[_Call]
) -> tuple[list[_Outcome] | BaseException, list[_Outcome] | BaseException]:
    """One hop of the worker thread: the waiting reads, then the waiting writes.

    The reads go first and outside the write transaction, so no read ever sees a write that
    might still be rolled back. A failure of one part is returned for that part's callers.
    """
    parts: list[list[_Outcome] | BaseException] = []
    for group, run in ((reads, _in_group_snapshot), (writes, _in_group_transaction)):
        try:
            parts.append(run(conn, group) if group else [])
        except Exception as exc:
            parts.append(exc)
    return parts[0], parts[1]


def _answer(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # its caller was cancelled
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class SQLiteThread:
    """One ``sqlite3.Connection`` owned by one worker thread: ``await run(fn, *args)`` runs
    ``fn(conn, *args)`` there, one callable at a time, in the order they were handed over, so
    ``fn`` has the connection to itself while it runs."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._calls: queue.SimpleQueue[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue())
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, args=(connect,), name="khaosat-sqlite", daemon=True)
        self._thread.start()

    def _work(self, connect: Callable[[], sqlite3.Connection]) -> None:
        try:
            self._conn = connect()
        except BaseException as exc:  # told to every caller, beginning with the opener
            failure: BaseException | None = exc
        else:
            failure = None
        while (call := self._calls.get()) is not None:
            future, fn, args = call
            if failure is not None:
                ok, value = False, failure
            else:
                try:
                    ok, value = True, fn(self._conn, *args)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    ok, value = False, exc
            try:
                future.get_loop().call_soon_threadsafe(_answer, future, ok, value)
            except RuntimeError:  # the caller's loop is closed: nobody is waiting
                pass
        if self._conn is not None:
            self._conn.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StorageError("sqlite: the connection is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._calls.put((future, fn, args))
        return await future

    @property
    def in_transaction(self) -> bool:
        return self._conn is not None and self._conn.in_transaction

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One statement in a hop of its own (migrations, PRAGMAs)."""
        await self.run(lambda conn: conn.execute(sql, params).close())

    async def execute_fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self.run(all_rows, sql, params)

    async def close(self) -> None:
        """Close the connection after every callable already handed over; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._calls.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)


async def open_connection(path: str | os.PathLike[str], synchronous: str = "full") -> SQLiteThread:
    """Open (creating the file and its directory if needed) with the pragmas, and migrate.

    ``synchronous`` is "full" (the default: every commit is fsynced before the call returns, so
    it survives power loss and OS crashes) or "normal" (WAL is fsynced only at checkpoints: a
    killed process loses nothing, but power loss or an OS crash may lose the last committed
    transactions; the database stays consistent).
    """
    pragma = SYNCHRONOUS.get(str(synchronous).lower())
    if pragma is None:
        raise StorageError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_sqlite_file(path)  # another program's file: refused before the pragmas below write to it

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, cached_statements=_STATEMENT_CACHE,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for statement in (*_PRAGMAS, f"PRAGMA synchronous = {pragma}"):
            conn.execute(statement)
        return conn

    db = SQLiteThread(connect)
    try:
        with _translated():
            await db.run(lambda conn: None)  # the connection is open, or its error is raised here
            await migrate(db)
    except StorageError as error:
        await db.close()
        why = None if isinstance(error, ForeignDatabase) else unwritable(path)
        if why:  # SQLite says only "unable to open database file" or "readonly database"
            raise StorageError(why) from None
        raise
    except BaseException:
        await db.close()
        raise
    return db


class Hops:
    """Groups the calls of every repository on one ``SQLiteThread`` into hops (module docstring)."""

    def __init__(self, db: SQLiteThread) -> None:
        self._db = db
        # Calls waiting for the next hop to the worker thread, whether a launch is scheduled,
        # and the hops handed to the thread whose callers have not been told yet.
        self._reads: list[_Waiting] = []
        self._writes: list[_Waiting] = []
        self._launch_scheduled = False
        self._hops: set[asyncio.Future[Any]] = set()

    async def close(self) -> None:
        # Writes still waiting for their group are committed first; the thread then closes
        # the connection after every function already handed to it.
        while self._hops or self._reads or self._writes:
            if self._hops:
                await asyncio.wait(set(self._hops))
            else:
                await asyncio.sleep(0)  # the launch already scheduled hands them over
        await self._db.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the worker thread now, in a hop of its own."""
        with _translated():
            return await self._db.run(fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` committed all or nothing; returns once it is durably committed.

        Group commit: every write waiting when the worker thread comes free shares one
        ``BEGIN IMMEDIATE … COMMIT`` (``_in_group_transaction``), so one fsync serves them all; with nothing in progress a write starts at once.
        """
        return await self._submit(self._writes, fn, args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` in a read transaction shared with the other waiting reads."""
        return await self._submit(self._reads, fn, args)

    async def _submit(self, queue: list[_Waiting], fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[T] = loop.create_future()
        queue.append((fn, args, answered))
        if not self._launch_scheduled:
            self._launch_scheduled = True
            loop.call_soon(self._launch)
        return await answered

    def _launch(self) -> None:
        """Hand everything waiting to the worker thread as one hop, unless two hops are out.

        Two hops at most: while the thread runs one, the next already waits in its queue, so the
        thread goes on at once and the event loop meanwhile works on what the hop before
        answered. With one hop at a time the two took turns, each idle while the other worked.
        Calls that arrive meanwhile wait and go together in the hop launched when one lands. A
        caller cancelled before its hop leaves is dropped unrun.
        """
        self._launch_scheduled = False
        if len(self._hops) >= _HOPS_IN_FLIGHT:
            return  # _landed launches again
        reads = [entry for entry in self._reads if not entry[2].done()]
        writes = [entry for entry in self._writes if not entry[2].done()]
        self._reads, self._writes = [], []
        if not reads and not writes:
            return
        hop = asyncio.ensure_future(self.run(_in_group, [entry[:2] for entry in reads],
                                              [entry[:2] for entry in writes]))
        self._hops.add(hop)
        hop.add_done_callback(lambda done: self._landed(done, reads, writes))

    def _landed(self, hop: asyncio.Future[Any], reads: list[_Waiting], writes: list[_Waiting]) -> None:
        """Tell the callers of a finished hop; hand over whatever waited for it."""
        self._hops.discard(hop)
        if hop.cancelled():  # the loop is shutting down: callers must not wait for ever
            parts: tuple[Any, Any] = (None, None)
        elif hop.exception() is not None:
            parts = (hop.exception(), hop.exception())
        else:
            parts = hop.result()
        try:
            for waiting, outcomes in zip((reads, writes), parts):
                for index, (_, _, answered) in enumerate(waiting):
                    if answered.done():
                        continue
                    if outcomes is None:
                        answered.cancel()
                        continue
                    ok, value = (False, outcomes) if isinstance(outcomes, BaseException) else outcomes[index]
                    if ok:
                        answered.set_result(value)
                    else:
                        answered.set_exception(_driver_error(value))
        finally:
            # Whatever went wrong above, no caller of this hop waits for ever, and the calls
            # queued behind it still go.
            for _, _, answered in (*reads, *writes):
                if not answered.done():
                    answered.cancel()
            if (self._reads or self._writes) and not self._launch_scheduled:
                self._launch_scheduled = True
                asyncio.get_running_loop().call_soon(self._launch)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self.read(all_rows, sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return await self.read(one_row, sql, params)


class SQLiteRepository:
    """Base of the SQLite repositories of the aggregates: they share one ``Hops``."""

    def __init__(self, hops: Hops) -> None:
        # Bound methods, not wrappers: a call on the answer path costs no extra coroutine.
        self._read = hops.read
        self._write = hops.write
        self._fetchall = hops.fetchall
        self._fetchone = hops.fetchone
