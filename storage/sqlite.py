"""SQLite implementation of ``Storage`` on aiosqlite.

Durability choices: WAL with ``synchronous=FULL`` by default so every committed step is
on disk before the call returns (NORMAL survives a killed process but may lose the last
commits on power loss or an OS crash); every write is one ``BEGIN IMMEDIATE`` transaction
so a killed process leaves all of it or none, and concurrent writers in other processes
queue on ``busy_timeout`` instead of failing mid-transaction.

Hops to the worker thread: the whole body of each public method is one synchronous function
run on aiosqlite's worker thread against the underlying ``sqlite3.Connection`` (see ``_run``).
That thread runs one hop at a time, so transactions of different coroutines cannot interleave
on the one connection and no ``asyncio.Lock`` is needed. A hop costs the event loop more than
a typical read, and with ``synchronous=FULL`` the fsync of a COMMIT costs more than a typical
write, so calls that arrive while hops are out wait and go together in the next one
(``_launch``): the waiting reads in one read transaction, then the waiting writes in one
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
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from .base import Storage
from .errors import (
    AmbiguousPhone,
    InvitationRevoked,
    InvitationUsed,
    LinkConflict,
    NotFound,
    QuestionnaireConflict,
    StaleRevision,
    StorageError,
    FrameConflict,
    NotReplaceable,
    ReserveExhausted,
    SampleConflict,
)
from .migrations import migrate
from .records import (
    OUTBOX_STATES,
    AnswerChange,
    AnswerRecord,
    Invitation,
    OutgoingMessage,
    Personal,
    QueuedMessage,
    ReminderHandOver,
    ReminderTexts,
    Respondent,
    SessionRecord,
    StepResult,
    StoredQuestionnaire,
    FrameImport,
    FrameRow,
    SampleInfo,
    SampleMember,
    SampleMemberInput,
    SampleStratum,
    StoredSurvey,
)

T = TypeVar("T")

#: Accepted values of ``open(..., synchronous=...)`` and the PRAGMA each sets.
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}

# The dispositions reminders go to (``enqueue_due_reminders``, ``hand_over_reminders``); moving
# to any other withdraws the reminders not sent yet.
_REMINDED = ("contacted", "started")

_PRAGMAS = (
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA journal_mode = WAL",
    # 64 MiB of page cache instead of SQLite's 2 MiB: a reminder pass or an export touches tens
    # of MiB, and a transaction that outgrows the cache spills pages to the WAL before its COMMIT.
    "PRAGMA cache_size = -65536",
)

# Crockford base32: no I, L, O, U, so pseudonyms survive being read aloud or retyped.
_PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_SESSION_COLUMNS = (
    "id, respondent_id, form_id, form_version, channel, status, state, "
    "revision, created_at, updated_at"
)
_RESPONDENT_COLUMNS = (
    "id, external_id, pseudonym, created_at, form_id, stratum, disposition, disposition_at"
)
_RESPONDENT_COLUMNS_R = ", ".join(f"r.{c.strip()}" for c in _RESPONDENT_COLUMNS.split(","))
_SESSION_COLUMNS_S = ", ".join(f"s.{c.strip()}" for c in _SESSION_COLUMNS.split(","))
# What an UPDATE of a session returns: the state is the one just written, no need to copy it back.
_SESSION_COLUMNS_BUT_STATE = ", ".join(c.strip() for c in _SESSION_COLUMNS.split(",") if c.strip() != "state")
# Unchanged answers are left alone (no history row); changed ones are updated in place.
_ANSWER_UPSERT = (
    "ON CONFLICT (session_id, question) DO UPDATE SET value = excluded.value, status = excluded.status,"
    " updated_at = excluded.updated_at"
    " WHERE answers.value IS NOT excluded.value OR answers.status IS NOT excluded.status"
)
_INVITATION_COLUMNS = (
    "id, respondent_id, kind, code_hash, created_at, revoked_at, used_at, used_channel,"
    " used_bot, used_chat"
)
_OUTBOX_COLUMNS = (
    "id, channel, bot, chat_id, method, payload, priority, dedupe_key, respondent_id, state,"
    " attempts, not_before, created_at, updated_at, result, error"
)
_SURVEY_COLUMNS = (
    "id, version, title, index_year, opens, closes, source_name, source, project, sha256, loaded_at"
)
_MEMBER_COLUMNS = (
    "survey_id, frame_id, grp, form_id, stratum, pi, weight, role, reserve_rank, respondent_id,"
    " promoted_at, replaces, replaced_by, replaced_disposition"
)
# Same predicate as the partial index sessions_one_open, so it can be used.
_OPEN = "status NOT IN ('completed', 'refused')"

# Who is due a reminder (see surveys/reminders.py for the rules, bot/reminders.py for the pass).
# Fielded members of the survey in disposition contacted/started, with a chat on one of the
# running bots (the most recently linked: {chat}); last activity = the later of their latest
# session's updated_at and that chat's linked_at (compared with julianday(), so any UTC offset
# works); k = reminders recorded since that activity, total = reminders recorded in all. Due when
# k and total are under the policy's limits, activity + after_days[k] <= now ({days} is NULL
# once k is past the offsets) and, for k > 0, the previous reminder was queued at least
# after_days[k] - after_days[k-1] days ago ({gaps}). {picks} takes each bot's due rows, oldest
# activity first, up to the bot's limit (a UNION ALL of one ``ORDER BY … LIMIT`` per bot: a
# row_number() window over all rows cost a fifth of a second per 100,000), straight into
# ``reminders``: SQLite buffers the selection before inserting, since it reads that table too.
_DUE_REMINDERS = """
WITH a AS (
    SELECT r.id AS rid, l.channel AS channel, l.bot AS bot,
        CASE WHEN s.id IS NULL THEN l.linked_at WHEN julianday(s.updated_at) >= julianday(l.linked_at)
             THEN s.updated_at ELSE l.linked_at END AS activity_at
    FROM sample_members sm JOIN respondents r ON r.id = sm.respondent_id
    {chat}
    LEFT JOIN sessions s ON s.id = (SELECT max(x.id) FROM sessions x
                                    WHERE x.respondent_id = r.id AND x.form_id = r.form_id)
    WHERE sm.survey_id = :survey AND r.disposition IN {reminded}
),
b AS MATERIALIZED (
    SELECT a.*, julianday(a.activity_at) AS act_jd,
        (SELECT count(*) FROM reminders x
            WHERE x.respondent_id = a.rid AND x.survey_id = :survey) AS total,
        (SELECT count(*) FROM reminders x WHERE x.respondent_id = a.rid
            AND x.survey_id = :survey AND x.activity_at = a.activity_at) AS k
    FROM a
),
c AS (
    SELECT b.*, b.act_jd + ({days}) AS due_jd
    FROM b
    WHERE b.total < :max AND b.act_jd + ({days}) <= :now_jd
        AND (b.k = 0 OR (SELECT max(julianday(x.enqueued_at)) FROM reminders x WHERE x.respondent_id = b.rid
                         AND x.survey_id = :survey AND x.activity_at = b.activity_at) + ({gaps})
                        <= :now_jd)
)
INSERT INTO reminders (respondent_id, survey_id, number, step, activity_at, due_at, enqueued_at, channel, bot)
{picks}
"""

# A bot's queued reminders, oldest first, with what handing one over needs: the person's
# disposition and form, their chat on that bot (a lookup in UNIQUE (channel, bot, respondent_id),
# cheaper than carrying the chat on every row of a 100,000-reminder pass), and their latest
# session's id and language. {surveys} is a list of placeholders.
_QUEUED_REMINDERS = """
SELECT q.id, q.respondent_id, q.survey_id, r.disposition, r.form_id, l.chat_id, s.id AS session_id,
    json_extract(s.state, '$.language') AS language
FROM reminders q JOIN respondents r ON r.id = q.respondent_id
LEFT JOIN chat_links l ON l.channel = q.channel AND l.bot = q.bot AND l.respondent_id = q.respondent_id
LEFT JOIN sessions s ON s.id = (SELECT max(x.id) FROM sessions x
                                WHERE x.respondent_id = r.id AND x.form_id = r.form_id)
WHERE q.channel = ? AND q.bot = ? AND q.outbox_id IS NULL AND q.withdrawn_at IS NULL
    AND q.survey_id IN ({surveys})
ORDER BY q.id LIMIT ?
"""


def _julianday(iso: str) -> float:
    """SQLite's julianday() of an ISO time (computed once instead of per row)."""
    with sqlite3.connect(":memory:") as conn:
        return conn.execute("SELECT julianday(?)", (iso,)).fetchone()[0]


def _payload_chat_id(channel: str, chat_id: str) -> int | str:
    """A chat id as a payload carries it: a Telegram id that is an integer written canonically
    as a JSON number (the Bot API's type), anything else as the text it is stored as."""
    if channel == "telegram":
        try:
            number = int(chat_id)
        except ValueError:
            return chat_id
        if str(number) == chat_id:
            return number
    return chat_id


def _new_pseudonym() -> str:
    return "R" + "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(10))


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


# Synchronous helpers: they run on aiosqlite's worker thread, inside one ``_run`` call. -------

def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    return conn.execute(sql, params).fetchall()


def _one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
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
_ALONE = object()


def _batched(conn: sqlite3.Connection, bodies: Sequence[_Call]) -> dict[int, _Outcome]:
    """Run the group's calls that have a batch form (``_BATCHES``) together; index → outcome.

    Why: every statement hands the GIL back and forth between this thread and the event loop
    (sqlite3 releases it while SQLite works), and a busy loop keeps the worker waiting for it
    each time; one multi-row statement for a whole group's answers waits once. The bodies of a
    group are calls of different coroutines that were waiting at the same time, so running
    some of them first is one more order they could have arrived in. A batch function returns
    ``_ALONE`` for a call it leaves to the ordinary body (a re-delivered event, a second step
    of one session), and raises when anything is off: the caller then runs every body alone.
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
            if result is not _ALONE:
                done[index] = (True, result)
    return done


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _values(rows: int, columns: int) -> str:
    row = "(" + ", ".join("?" * columns) + ")"
    return ", ".join([row] * rows)


# Rows per multi-row statement: far below SQLite's limit of 32,766 parameters, and few enough
# distinct statement texts (one per row count) that sqlite3 keeps them all prepared.
_BATCH_ROWS = 64
_STATEMENT_CACHE = 1024
#: Hops handed to the worker thread at once (``SQLiteStorage._launch``).
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


@dataclasses.dataclass(frozen=True, slots=True)
class _StepWrite:
    """One ``apply_step`` call, as the worker thread runs it."""

    session_id: int
    event_key: str
    event: str
    expected_revision: int
    status: str
    state: str
    changes: Sequence[AnswerChange]
    at: str
    outgoing: Sequence[OutgoingMessage]


def _apply_step(conn: sqlite3.Connection, write: _StepWrite) -> StepResult:
    # Every answer takes this path (or ``_apply_steps``), so the usual case is two statements
    # before the answers: the event (a re-delivered key inserts nothing) and the session's
    # update, which checks the revision and returns the row. The rest is the unusual case.
    session_id, expected_revision, event_key = write.session_id, write.expected_revision, write.event_key
    revision = expected_revision + 1
    problem: sqlite3.IntegrityError | None = None
    try:
        logged = conn.execute(
            "INSERT INTO events (session_id, event_key, event, revision, at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (session_id, event_key) DO NOTHING",
            (session_id, event_key, write.event, revision, write.at),
        ).rowcount
    except sqlite3.IntegrityError as error:  # no such session, this revision taken, or a bad event
        problem, logged = error, None
    if logged != 1:
        row = _one(conn, f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,))
        if row is None:
            raise NotFound(f"session {session_id}")
        record = SessionRecord(*row)
        if logged == 0 or _one(conn, "SELECT 1 FROM events WHERE session_id = ? AND event_key = ?",
                               (session_id, event_key)):
            return StepResult(applied=False, revision=record.revision, session=record)
        if record.revision != expected_revision:
            raise StaleRevision(
                f"session {session_id} is at revision {record.revision}, not {expected_revision}")
        raise problem
    row = conn.execute(
        "UPDATE sessions SET state = ?, status = ?, revision = ?, updated_at = ?"
        f" WHERE id = ? AND revision = ? RETURNING {_SESSION_COLUMNS_BUT_STATE}",
        (write.state, write.status, revision, write.at, session_id, expected_revision),
    ).fetchone()
    if row is None:  # the session's revision moved on without an event of that revision
        raise StaleRevision(f"session {session_id} is not at revision {expected_revision}")
    # Unchanged answers are left alone; the answer_history triggers (migration 7) log the
    # rest, against this event.
    conn.executemany(
        f"INSERT INTO answers (session_id, question, value, status, updated_at) VALUES (?, ?, ?, ?, ?) {_ANSWER_UPSERT}",
        [(session_id, change.question, change.value, change.status, write.at) for change in write.changes],
    )
    _enqueue_messages(conn, [(message, write.at) for message in write.outgoing])
    return StepResult(applied=True, revision=revision, session=_session_after(row, write.state))


def _apply_steps(conn: sqlite3.Connection, calls: Sequence[tuple[_StepWrite]]) -> list[Any]:
    """Many sessions' steps in a handful of multi-row statements (``_batched``).

    One UPDATE moves every session that is at its expected revision and has not logged the
    event yet; only those steps' events, answers and messages are then inserted, so nothing
    has to be undone for the others. Those others (a re-delivered event, a stale revision, a
    missing session) and a second step of a session already in the group are left to
    ``_apply_step`` (``_ALONE``), which tells them apart as it always does.
    """
    writes = [args[0] for args in calls]
    results: list[Any] = [_ALONE] * len(writes)
    first: dict[int, int] = {}
    for index, write in enumerate(writes):
        first.setdefault(write.session_id, index)
    applied: list[_StepWrite] = []
    for chunk in _chunks(list(first.values()), _BATCH_ROWS):
        rows = conn.execute(
            f"WITH v (v_id, v_expected, v_key, v_state, v_status, v_at) AS (VALUES {_values(len(chunk), 6)})"
            " UPDATE sessions SET state = v.v_state, status = v.v_status, revision = v.v_expected + 1,"
            " updated_at = v.v_at FROM v WHERE sessions.id = v.v_id AND sessions.revision = v.v_expected"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.session_id = v.v_id AND e.event_key = v.v_key)"
            f" RETURNING {_SESSION_COLUMNS_BUT_STATE}",
            [value for index in chunk for value in (
                writes[index].session_id, writes[index].expected_revision, writes[index].event_key,
                writes[index].state, writes[index].status, writes[index].at)],
        ).fetchall()
        moved = {row[0]: row for row in rows}
        for index in chunk:
            write = writes[index]
            row = moved.get(write.session_id)
            if row is not None:
                results[index] = StepResult(applied=True, revision=write.expected_revision + 1,
                                            session=_session_after(row, write.state))
                applied.append(write)
    for chunk in _chunks(applied, _BATCH_ROWS):
        conn.execute(
            f"INSERT INTO events (session_id, event_key, event, revision, at) VALUES {_values(len(chunk), 5)}",
            [value for write in chunk for value in (
                write.session_id, write.event_key, write.event, write.expected_revision + 1, write.at)],
        )
    answers = [(write.session_id, change.question, change.value, change.status, write.at)
               for write in applied for change in write.changes]
    for chunk in _chunks(answers, _BATCH_ROWS):
        conn.execute(
            f"INSERT INTO answers (session_id, question, value, status, updated_at) VALUES {_values(len(chunk), 5)}"
            f" {_ANSWER_UPSERT}",
            [value for answer in chunk for value in answer],
        )
    _enqueue_messages(conn, [(message, write.at) for write in applied for message in write.outgoing])
    return results


def _session_after(row: Sequence[Any], state: str) -> SessionRecord:
    """The session from ``RETURNING {_SESSION_COLUMNS_BUT_STATE}`` and the state just written."""
    return SessionRecord(row[0], row[1], row[2], row[3], row[4], row[5], state, row[6], row[7], row[8])


def _enqueue_messages(conn: sqlite3.Connection, messages: Sequence[tuple[OutgoingMessage, str]]) -> int:
    """Insert (message, at) pairs in order, in as few statements as the batch size allows.

    ON CONFLICT (dedupe_key) rather than INSERT OR IGNORE: OR IGNORE would also silently drop
    rows failing the json_valid CHECK or NOT NULL.
    """
    queued = 0
    for chunk in _chunks(messages, _BATCH_ROWS):
        queued += conn.execute(
            "INSERT INTO outbox (channel, bot, chat_id, method, payload, priority, dedupe_key, respondent_id,"
            f" not_before, created_at, updated_at) VALUES {_values(len(chunk), 11)}"
            " ON CONFLICT (dedupe_key) DO NOTHING",
            [value for m, at in chunk for value in (
                m.channel, m.bot, str(m.chat_id), m.method, m.payload, m.priority, m.dedupe_key,
                m.respondent_id, m.not_before, at, at)],
        ).rowcount
    return queued


def _linked_session(
    conn: sqlite3.Connection, channel: str, bot: str, chat_id: str, default_form: str | None
) -> tuple[Respondent | None, SessionRecord | None]:
    return _linked_sessions(conn, [(channel, bot, chat_id, default_form)])[0]


def _linked_sessions(
    conn: sqlite3.Connection, calls: Sequence[tuple[str, str, str, str | None]]
) -> list[tuple[Respondent | None, SessionRecord | None]]:
    """Each chat's respondent and their latest session of their form (else ``default_form``)."""
    found: list[tuple[Respondent | None, SessionRecord | None]] = []
    for chunk in _chunks(calls, _BATCH_ROWS):
        rows = conn.execute(
            f"WITH q (n, channel, bot, chat_id, default_form) AS (VALUES {_values(len(chunk), 5)})"
            f" SELECT q.n, {_RESPONDENT_COLUMNS_R}, {_SESSION_COLUMNS_S} FROM q"
            " JOIN chat_links l ON l.channel = q.channel AND l.bot = q.bot AND l.chat_id = q.chat_id"
            " JOIN respondents r ON r.id = l.respondent_id"
            " LEFT JOIN sessions s ON s.id = (SELECT x.id FROM sessions x WHERE x.respondent_id = r.id"
            " AND x.form_id = coalesce(nullif(r.form_id, ''), nullif(q.default_form, ''))"
            " ORDER BY x.id DESC LIMIT 1)",
            [value for n, (channel, bot, chat_id, default_form) in enumerate(chunk)
             for value in (n, channel, bot, str(chat_id), default_form)],
        ).fetchall()
        linked = {row[0]: row for row in rows}
        for n in range(len(chunk)):
            row = linked.get(n)
            if row is None:
                found.append((None, None))
            else:
                found.append((Respondent(*row[1:9]), SessionRecord(*row[9:19]) if row[9] is not None else None))
    return found


def _aiosqlite_internals_missing() -> list[str]:
    return [name for name in ("_execute", "_conn") if not hasattr(aiosqlite.Connection, name)]


class SQLiteStorage(Storage):
    """``Storage`` on one SQLite file. Create with ``await SQLiteStorage.open(path)``."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # Calls waiting for the next hop to the worker thread, whether a launch is scheduled,
        # and the hops handed to the thread whose callers have not been told yet.
        self._reads: list[_Waiting] = []
        self._writes: list[_Waiting] = []
        self._launch_scheduled = False
        self._hops: set[asyncio.Future[Any]] = set()

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], synchronous: str = "full"
    ) -> SQLiteStorage:
        """Open (creating the file and its directory if needed) and migrate.

        ``synchronous`` is "full" (the default: every commit is fsynced before the call
        returns, so it survives power loss and OS crashes) or "normal" (WAL is fsynced only
        at checkpoints: a killed process loses nothing, but power loss or an OS crash may
        lose the last committed transactions; the database stays consistent).
        """
        pragma = SYNCHRONOUS.get(str(synchronous).lower())
        if pragma is None:
            raise StorageError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}"
            )
        missing = _aiosqlite_internals_missing()
        if missing:
            raise StorageError(
                f"aiosqlite {getattr(aiosqlite, '__version__', '?')} lacks"
                f" Connection.{' and Connection.'.join(missing)}, which khaosat's storage uses"
                " to run each call in one hop; install aiosqlite>=0.20,<0.23"
            )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _translated():
            db = await aiosqlite.connect(path, isolation_level=None, cached_statements=_STATEMENT_CACHE)
        try:
            with _translated():
                db.row_factory = sqlite3.Row
                for statement in (*_PRAGMAS, f"PRAGMA synchronous = {pragma}"):
                    await db.execute(statement)
                await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        # Writes still waiting for their group are committed first; aiosqlite then queues the
        # close behind every function already handed to its thread.
        while self._hops or self._reads or self._writes:
            if self._hops:
                await asyncio.wait(set(self._hops))
            else:
                await asyncio.sleep(0)  # the launch already scheduled hands them over
        await self._db.close()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on aiosqlite's worker thread: one hop, whatever ``fn`` does.

        ``Connection._execute`` (queue a callable for the worker thread and await its result)
        and ``Connection._conn`` (the ``sqlite3.Connection`` that thread owns) are private to
        aiosqlite; they are used only here, because aiosqlite's public API costs one thread
        hop per statement, and ``open()`` checks they exist (aiosqlite is pinned to
        >=0.20,<0.23 in pyproject.toml). The worker thread runs callables one at a time, so
        ``fn`` has the connection to itself while it runs.
        """
        with _translated():
            return await self._db._execute(fn, self._db._conn, *args)  # noqa: SLF001

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` committed all or nothing; returns once it is durably committed.

        Group commit: every write waiting when the worker thread comes free shares one
        ``BEGIN IMMEDIATE … COMMIT`` (``_in_group_transaction``), so one fsync serves them all; with nothing in progress a write starts at once.
        """
        return await self._submit(self._writes, fn, args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
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
        hop = asyncio.ensure_future(self._run(_in_group, [entry[:2] for entry in reads],
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

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self._read(_rows, sql, params)

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return await self._read(_one, sql, params)

    # Questionnaires -----------------------------------------------------

    async def save_questionnaire(
        self, form_id: str, version: str, source_name: str, source: bytes, at: str
    ) -> StoredQuestionnaire:
        sha256 = hashlib.sha256(source).hexdigest()

        def body(conn: sqlite3.Connection) -> StoredQuestionnaire:
            row = _one(
                conn,
                "SELECT * FROM questionnaires WHERE form_id = ? AND version = ?",
                (form_id, version),
            )
            if row is not None:
                existing = StoredQuestionnaire(**dict(row))
                if existing.sha256 != sha256:
                    raise QuestionnaireConflict(
                        f"questionnaire {form_id!r} version {version!r} is already stored "
                        f"with different content (sha256 {existing.sha256}, "
                        f"loaded from {existing.source_name!r} at {existing.loaded_at}); "
                        "bump the form version"
                    )
                return existing
            record = StoredQuestionnaire(form_id, version, source_name, bytes(source), sha256, at)
            conn.execute(
                "INSERT INTO questionnaires (form_id, version, source_name, source, sha256,"
                " loaded_at) VALUES (?, ?, ?, ?, ?, ?)",
                (form_id, version, source_name, record.source, sha256, at),
            )
            return record

        return await self._write(body)

    async def get_questionnaire(self, form_id: str, version: str) -> StoredQuestionnaire:
        row = await self._fetchone(
            "SELECT * FROM questionnaires WHERE form_id = ? AND version = ?", (form_id, version)
        )
        if row is None:
            raise NotFound(f"questionnaire {form_id!r} version {version!r}")
        return StoredQuestionnaire(**dict(row))

    async def list_questionnaires(self) -> list[StoredQuestionnaire]:
        rows = await self._fetchall("SELECT * FROM questionnaires ORDER BY form_id, loaded_at")
        return [StoredQuestionnaire(**dict(row)) for row in rows]

    # Respondents --------------------------------------------------------

    async def ensure_respondent(self, external_id: str, at: str) -> Respondent:
        def body(conn: sqlite3.Connection) -> Respondent:
            existing = self._respondent_by_external_id(conn, external_id)
            if existing is not None:
                return existing
            return self._insert_respondent(conn, external_id, None, None, at)

        return await self._write(body)

    @staticmethod
    def _respondent_by_external_id(
        conn: sqlite3.Connection, external_id: str
    ) -> Respondent | None:
        row = _one(
            conn,
            f"SELECT {_RESPONDENT_COLUMNS} FROM respondents WHERE external_id = ?",
            (external_id,),
        )
        return Respondent(**dict(row)) if row is not None else None

    @staticmethod
    def _insert_respondent(
        conn: sqlite3.Connection,
        external_id: str,
        form_id: str | None,
        stratum: str | None,
        at: str,
    ) -> Respondent:
        pseudonym = _new_pseudonym()
        while _one(conn, "SELECT 1 FROM respondents WHERE pseudonym = ?", (pseudonym,)):
            pseudonym = _new_pseudonym()
        cursor = conn.execute(
            "INSERT INTO respondents (external_id, pseudonym, created_at, form_id, stratum)"
            " VALUES (?, ?, ?, ?, ?)",
            (external_id, pseudonym, at, form_id, stratum),
        )
        return Respondent(cursor.lastrowid, external_id, pseudonym, at, form_id, stratum)

    @staticmethod
    def _require_respondent(conn: sqlite3.Connection, respondent_id: int) -> Respondent:
        row = _one(
            conn, f"SELECT {_RESPONDENT_COLUMNS} FROM respondents WHERE id = ?", (respondent_id,)
        )
        if row is None:
            raise NotFound(f"respondent {respondent_id}")
        return Respondent(**dict(row))

    async def get_respondent(self, respondent_id: int) -> Respondent:
        return await self._read(self._require_respondent, respondent_id)

    async def add_respondent(
        self,
        external_id: str,
        *,
        form_id: str | None = None,
        stratum: str | None = None,
        name: str | None = None,
        phone: str | None = None,
        at: str,
    ) -> Respondent:
        def body(conn: sqlite3.Connection) -> Respondent:
            existing = self._respondent_by_external_id(conn, external_id)
            if existing is not None:
                return existing
            respondent = self._insert_respondent(conn, external_id, form_id, stratum, at)
            if name is not None or phone is not None:
                conn.execute(
                    "INSERT INTO respondent_personal (respondent_id, name, phone)"
                    " VALUES (?, ?, ?)",
                    (respondent.id, name, phone),
                )
            return respondent

        return await self._write(body)

    async def personal(self, respondent_id: int) -> Personal:
        def body(conn: sqlite3.Connection) -> Personal:
            if not _one(conn, "SELECT 1 FROM respondents WHERE id = ?", (respondent_id,)):
                raise NotFound(f"respondent {respondent_id}")
            row = _one(
                conn,
                "SELECT name, phone FROM respondent_personal WHERE respondent_id = ?",
                (respondent_id,),
            )
            return Personal(**dict(row)) if row is not None else Personal()

        return await self._read(body)

    async def respondent_by_phone(self, phone: str) -> Respondent | None:
        rows = await self._fetchall(
            f"SELECT {_RESPONDENT_COLUMNS_R} FROM respondents r"
            " JOIN respondent_personal p ON p.respondent_id = r.id"
            " WHERE p.phone = ? ORDER BY r.id LIMIT 2",
            (phone,),
        )
        if len(rows) > 1:
            raise AmbiguousPhone(f"several respondents have phone {phone}")
        return Respondent(**dict(rows[0])) if rows else None

    async def list_respondents(self, form_id: str | None = None) -> list[Respondent]:
        if form_id is None:
            rows = await self._fetchall(
                f"SELECT {_RESPONDENT_COLUMNS} FROM respondents ORDER BY id"
            )
        else:
            rows = await self._fetchall(
                f"SELECT {_RESPONDENT_COLUMNS} FROM respondents WHERE form_id = ? ORDER BY id",
                (form_id,),
            )
        return [Respondent(**dict(row)) for row in rows]

    async def set_respondent_form(
        self, respondent_id: int, form_id: str, stratum: str | None, at: str
    ) -> Respondent:
        def body(conn: sqlite3.Connection) -> Respondent:
            self._require_respondent(conn, respondent_id)
            conn.execute(
                "UPDATE respondents SET form_id = ?, stratum = ? WHERE id = ?",
                (form_id, stratum, respondent_id),
            )
            return self._require_respondent(conn, respondent_id)

        return await self._write(body)

    # Dispositions -------------------------------------------------------

    async def set_disposition(
        self,
        respondent_id: int,
        status: str,
        at: str,
        *,
        reason: str | None = None,
        key: str | None = None,
    ) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            respondent = self._require_respondent(conn, respondent_id)
            if key is not None and _one(
                conn, "SELECT 1 FROM disposition_history WHERE key = ?", (key,)
            ):
                return False
            if respondent.disposition == status:
                return False
            conn.execute(
                "UPDATE respondents SET disposition = ?, disposition_at = ? WHERE id = ?",
                (status, at, respondent_id),
            )
            conn.execute(
                "INSERT INTO disposition_history (respondent_id, status, reason, at, key)"
                " VALUES (?, ?, ?, ?, ?)",
                (respondent_id, status, reason, at, key),
            )
            if respondent.disposition in _REMINDED and status not in _REMINDED:
                self._withdraw_reminders(conn, respondent_id, status, at)
            return True

        return await self._write(body)

    @staticmethod
    def _withdraw_reminders(conn: sqlite3.Connection, respondent_id: int, because: str, at: str) -> None:
        """Stop the person's reminders not sent yet: those still queued (no message yet) and
        those whose message is pending in the outbox, which ends 'failed' ("withdrawn: <status>"),
        unsent. Not deleted: a sender may hold the message's id already, and a deleted highest
        id would be given to the next message."""
        unsent = conn.execute(
            "SELECT q.id, q.outbox_id FROM reminders q LEFT JOIN outbox o ON o.id = q.outbox_id"
            " WHERE q.respondent_id = ? AND q.withdrawn_at IS NULL"
            " AND (q.outbox_id IS NULL OR o.state = 'pending')", (respondent_id,)).fetchall()
        if not unsent:
            return
        conn.executemany("UPDATE reminders SET withdrawn_at = ?, withdrawn_because = ? WHERE id = ?",
                         [(at, because, reminder_id) for reminder_id, _ in unsent])
        conn.executemany("UPDATE outbox SET state = 'failed', error = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
                         [(f"withdrawn: {because}", at, message_id) for _, message_id in unsent
                          if message_id is not None])

    async def disposition_history(self, respondent_id: int) -> list[dict[str, Any]]:
        rows = await self._fetchall(
            "SELECT status, reason, at, key FROM disposition_history WHERE respondent_id = ?"
            " ORDER BY id",
            (respondent_id,),
        )
        return [dict(row) for row in rows]

    # Invitations --------------------------------------------------------

    async def issue_invitation(
        self, respondent_id: int, kind: str, code_hash: str, at: str
    ) -> Invitation:
        def body(conn: sqlite3.Connection) -> Invitation:
            self._require_respondent(conn, respondent_id)
            conn.execute(
                "UPDATE invitations SET revoked_at = ?"
                " WHERE respondent_id = ? AND kind = ? AND revoked_at IS NULL",
                (at, respondent_id, kind),
            )
            cursor = conn.execute(
                "INSERT INTO invitations (respondent_id, kind, code_hash, created_at)"
                " VALUES (?, ?, ?, ?)",
                (respondent_id, kind, code_hash, at),
            )
            return Invitation(cursor.lastrowid, respondent_id, kind, code_hash, at)

        return await self._write(body)

    async def revoke_invitations(self, respondent_id: int, at: str) -> int:
        def body(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "UPDATE invitations SET revoked_at = ?"
                " WHERE respondent_id = ? AND revoked_at IS NULL",
                (at, respondent_id),
            )
            return cursor.rowcount

        return await self._write(body)

    async def find_invitation(self, code_hash: str) -> Invitation | None:
        row = await self._fetchone(
            f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE code_hash = ?", (code_hash,)
        )
        return Invitation(**dict(row)) if row is not None else None

    async def active_invitation(self, respondent_id: int, kind: str) -> Invitation | None:
        row = await self._fetchone(
            f"SELECT {_INVITATION_COLUMNS} FROM invitations"
            " WHERE respondent_id = ? AND kind = ? AND revoked_at IS NULL",
            (respondent_id, kind),
        )
        return Invitation(**dict(row)) if row is not None else None

    async def use_invitation(
        self, invitation_id: int, channel: str, bot: str, chat_id: str, at: str
    ) -> Invitation:
        chat_id = str(chat_id)

        def body(conn: sqlite3.Connection) -> Invitation:
            row = _one(
                conn,
                f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE id = ?",
                (invitation_id,),
            )
            if row is None:
                raise NotFound(f"invitation {invitation_id}")
            invitation = Invitation(**dict(row))
            if invitation.used_at is not None:
                if (invitation.used_channel, invitation.used_bot, invitation.used_chat) == (
                    channel, bot, chat_id,
                ):
                    return invitation
                raise InvitationUsed(
                    f"invitation {invitation_id} was already used at {invitation.used_at}"
                    " from another chat"
                )
            if invitation.revoked_at is not None:
                raise InvitationRevoked(
                    f"invitation {invitation_id} was revoked at {invitation.revoked_at}"
                )
            conn.execute(
                "UPDATE invitations SET used_at = ?, used_channel = ?, used_bot = ?,"
                " used_chat = ? WHERE id = ?",
                (at, channel, bot, chat_id, invitation_id),
            )
            return dataclasses.replace(
                invitation, used_at=at, used_channel=channel, used_bot=bot, used_chat=chat_id
            )

        return await self._write(body)

    # Chat links ---------------------------------------------------------

    async def link_chat(
        self, channel: str, bot: str, chat_id: str, respondent_id: int, at: str
    ) -> None:
        chat_id = str(chat_id)

        def body(conn: sqlite3.Connection) -> None:
            self._require_respondent(conn, respondent_id)
            row = _one(
                conn,
                "SELECT respondent_id FROM chat_links"
                " WHERE channel = ? AND bot = ? AND chat_id = ?",
                (channel, bot, chat_id),
            )
            if row is not None:
                if row["respondent_id"] == respondent_id:
                    return
                raise LinkConflict(
                    f"{channel} chat {chat_id} on bot {bot!r} is linked to another respondent"
                )
            if _one(
                conn,
                "SELECT 1 FROM chat_links WHERE channel = ? AND bot = ? AND respondent_id = ?",
                (channel, bot, respondent_id),
            ):
                raise LinkConflict(
                    f"respondent {respondent_id} is linked to another {channel} chat"
                    f" on bot {bot!r}"
                )
            conn.execute(
                "INSERT INTO chat_links (channel, bot, chat_id, respondent_id, linked_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (channel, bot, chat_id, respondent_id, at),
            )

        await self._write(body)

    @staticmethod
    def _linked_respondent(
        conn: sqlite3.Connection, channel: str, bot: str, chat_id: str
    ) -> Respondent | None:
        row = _one(
            conn,
            f"SELECT {_RESPONDENT_COLUMNS_R} FROM chat_links l"
            " JOIN respondents r ON r.id = l.respondent_id"
            " WHERE l.channel = ? AND l.bot = ? AND l.chat_id = ?",
            (channel, bot, str(chat_id)),
        )
        return Respondent(**dict(row)) if row is not None else None

    async def linked_respondent(
        self, channel: str, bot: str, chat_id: str
    ) -> Respondent | None:
        return await self._read(self._linked_respondent, channel, bot, chat_id)

    async def linked_session(
        self, channel: str, bot: str, chat_id: str, default_form: str | None
    ) -> tuple[Respondent | None, SessionRecord | None]:
        return await self._read(_linked_session, channel, bot, chat_id, default_form)

    async def chats_of(self, respondent_id: int) -> list[tuple[str, str, str]]:
        rows = await self._fetchall(
            "SELECT channel, bot, chat_id FROM chat_links WHERE respondent_id = ?"
            " ORDER BY linked_at, channel, bot, chat_id",
            (respondent_id,),
        )
        return [tuple(row) for row in rows]

    async def log_link_attempt(
        self,
        channel: str,
        bot: str,
        chat_id: str,
        outcome: str,
        at: str,
        *,
        key: str,
        detail: str | None = None,
    ) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT INTO link_attempts (channel, bot, chat_id, outcome, detail, at, key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (channel, bot, str(chat_id), outcome, detail, at, key),
            )
            return cursor.rowcount == 1

        return await self._write(body)

    async def count_link_attempts(
        self, channel: str, bot: str, chat_id: str, outcome: str, since: str
    ) -> int:
        row = await self._fetchone(
            "SELECT count(*) FROM link_attempts"
            " WHERE channel = ? AND bot = ? AND chat_id = ? AND outcome = ? AND at >= ?",
            (channel, bot, str(chat_id), outcome, since),
        )
        return row[0]

    # Outbox -------------------------------------------------------------

    async def enqueue(self, messages: Sequence[OutgoingMessage], at: str) -> int:
        return await self._write(_enqueue_messages, [(message, at) for message in messages])

    async def due_messages(
        self, channel: str, bot: str, now: str, limit: int
    ) -> list[QueuedMessage]:
        rows = await self._fetchall(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox"
            " WHERE channel = ? AND bot = ? AND state = 'pending'"
            " AND (not_before IS NULL OR not_before <= ?)"
            " ORDER BY priority, id LIMIT ?",
            (channel, bot, now, limit),
        )
        return [QueuedMessage(**dict(row)) for row in rows]

    async def _move(
        self, message_id: int, from_state: str, sets: str, params: Sequence[Any]
    ) -> bool:
        """Apply ``sets`` only if the row is in ``from_state``; True if it moved."""

        def body(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                f"UPDATE outbox SET {sets} WHERE id = ? AND state = ?",
                (*params, message_id, from_state),
            )
            return cursor.rowcount == 1

        return await self._write(body)

    async def mark_sending(self, message_id: int, at: str) -> bool:
        return await self._move(
            message_id, "pending", "state = 'sending', updated_at = ?", (at,)
        )

    async def mark_sent(self, message_id: int, at: str, result: str | None) -> bool:
        return await self._move(
            message_id, "sending", "state = 'sent', updated_at = ?, result = ?", (at, result)
        )

    async def mark_retry(
        self, message_id: int, at: str, not_before: str, error: str
    ) -> bool:
        return await self._move(
            message_id,
            "sending",
            "state = 'pending', attempts = attempts + 1, updated_at = ?, not_before = ?,"
            " error = ?",
            (at, not_before, error),
        )

    async def mark_failed(self, message_id: int, at: str, error: str) -> bool:
        return await self._move(
            message_id,
            "sending",
            "state = 'failed', attempts = attempts + 1, updated_at = ?, error = ?",
            (at, error),
        )

    async def recover_outbox(self, channel: str, bot: str, at: str) -> int:
        def body(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "UPDATE outbox SET state = 'unknown', updated_at = ?,"
                " error = 'process stopped while sending; delivery unknown, not resent'"
                " WHERE channel = ? AND bot = ? AND state = 'sending'",
                (at, channel, bot),
            )
            return cursor.rowcount

        return await self._write(body)

    async def outbox_counts(
        self, channel: str | None = None, bot: str | None = None
    ) -> dict[str, int]:
        rows = await self._fetchall(
            "SELECT state, count(*) FROM outbox"
            " WHERE (? IS NULL OR channel = ?) AND (? IS NULL OR bot = ?) GROUP BY state",
            (channel, channel, bot, bot),
        )
        counts = dict.fromkeys(OUTBOX_STATES, 0)
        counts.update({row[0]: row[1] for row in rows})
        return counts

    # Sessions -----------------------------------------------------------

    @staticmethod
    def _latest_session(
        conn: sqlite3.Connection, respondent_id: int, form_id: str
    ) -> SessionRecord | None:
        row = _one(
            conn,
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE respondent_id = ? AND form_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (respondent_id, form_id),
        )
        return SessionRecord(**dict(row)) if row is not None else None

    @staticmethod
    def _open_session(
        conn: sqlite3.Connection,
        respondent_id: int,
        form_id: str,
        form_version: str,
        channel: str,
        status: str,
        state: str,
        at: str,
    ) -> tuple[SessionRecord, bool]:
        """``open_session``'s body; runs inside a write transaction."""
        if not _one(conn, "SELECT 1 FROM respondents WHERE id = ?", (respondent_id,)):
            raise NotFound(f"respondent {respondent_id}")
        if not _one(
            conn,
            "SELECT 1 FROM questionnaires WHERE form_id = ? AND version = ?",
            (form_id, form_version),
        ):
            raise NotFound(f"questionnaire {form_id!r} version {form_version!r}")
        row = _one(
            conn,
            f"SELECT {_SESSION_COLUMNS} FROM sessions"
            f" WHERE respondent_id = ? AND form_id = ? AND {_OPEN}",
            (respondent_id, form_id),
        )
        if row is not None:
            return SessionRecord(**dict(row)), False
        cursor = conn.execute(
            "INSERT INTO sessions (respondent_id, form_id, form_version, channel, status,"
            " state, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (respondent_id, form_id, form_version, channel, status, state, at, at),
        )
        record = SessionRecord(
            cursor.lastrowid, respondent_id, form_id, form_version, channel,
            status, state, 0, at, at,
        )
        return record, True

    async def open_session(
        self,
        respondent_id: int,
        form_id: str,
        form_version: str,
        channel: str,
        status: str,
        state: str,
        at: str,
    ) -> tuple[SessionRecord, bool]:
        return await self._write(
            self._open_session, respondent_id, form_id, form_version, channel, status, state, at
        )

    async def current_session(
        self,
        respondent_id: int,
        form_id: str,
        form_version: str,
        channel: str,
        status: str,
        state: str,
        at: str,
    ) -> tuple[SessionRecord, bool]:
        args = (respondent_id, form_id, form_version, channel, status, state, at)

        # The latest session is finished (completed/refused: it is the answer) or else it is
        # the one open session (sessions_one_open): usually a read, no write transaction.
        latest = await self._read(self._latest_session, respondent_id, form_id)
        if latest is not None:
            return latest, False

        def create(conn: sqlite3.Connection) -> tuple[SessionRecord, bool]:
            # Look again under the write lock: another call or process may have just made one.
            latest = self._latest_session(conn, respondent_id, form_id)
            if latest is not None:
                return latest, False
            return self._open_session(conn, *args)

        return await self._write(create)

    async def get_session(self, session_id: int) -> SessionRecord:
        row = await self._fetchone(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        )
        if row is None:
            raise NotFound(f"session {session_id}")
        return SessionRecord(**dict(row))

    async def latest_session(self, respondent_id: int, form_id: str) -> SessionRecord | None:
        return await self._read(self._latest_session, respondent_id, form_id)

    async def list_sessions(self, form_id: str | None = None) -> list[SessionRecord]:
        if form_id is None:
            rows = await self._fetchall(f"SELECT {_SESSION_COLUMNS} FROM sessions ORDER BY id")
        else:
            rows = await self._fetchall(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE form_id = ? ORDER BY id",
                (form_id,),
            )
        return [SessionRecord(**dict(row)) for row in rows]

    async def apply_step(
        self,
        session_id: int,
        *,
        event_key: str,
        event: str,
        expected_revision: int,
        status: str,
        state: str,
        changes: Sequence[AnswerChange],
        at: str,
        outgoing: Sequence[OutgoingMessage] = (),
    ) -> StepResult:
        return await self._write(_apply_step, _StepWrite(session_id, event_key, event, expected_revision, status,
                                                         state, changes, at, outgoing))

    async def answers(self, session_id: int) -> dict[str, AnswerRecord]:
        rows = await self._fetchall(
            "SELECT question, value, status, updated_at FROM answers WHERE session_id = ?"
            " ORDER BY question",
            (session_id,),
        )
        return {row["question"]: AnswerRecord(**dict(row)) for row in rows}

    async def answer_history(
        self, session_id: int, question: str | None = None
    ) -> list[dict[str, Any]]:
        rows = await self._fetchall(
            "SELECT question, old_value, old_status, new_value, new_status, event_id, at"
            " FROM answer_history WHERE session_id = ? AND (? IS NULL OR question = ?)"
            " ORDER BY id",
            (session_id, question, question),
        )
        return [dict(row) for row in rows]

    async def events(self, session_id: int) -> list[dict[str, Any]]:
        rows = await self._fetchall(
            "SELECT id, event_key, event, revision, at FROM events WHERE session_id = ?"
            " ORDER BY revision",
            (session_id,),
        )
        return [dict(row) for row in rows]

    # Survey projects ----------------------------------------------------------------

    async def save_survey(
        self,
        survey_id: str,
        *,
        title: str,
        index_year: int,
        opens: str,
        closes: str,
        source_name: str,
        source: str,
        project: str,
        at: str,
    ) -> tuple[StoredSurvey, bool]:
        sha256 = hashlib.sha256(project.encode("utf-8")).hexdigest()

        def body(conn: sqlite3.Connection) -> tuple[StoredSurvey, bool]:
            row = _one(
                conn,
                f"SELECT {_SURVEY_COLUMNS} FROM survey_versions WHERE id = ?"
                " ORDER BY version DESC LIMIT 1",
                (survey_id,),
            )
            if row is not None and row["sha256"] == sha256:
                return StoredSurvey(**dict(row)), False
            version = row["version"] + 1 if row is not None else 1
            record = StoredSurvey(survey_id, version, title, index_year, opens, closes,
                                  source_name, source, project, sha256, at)
            conn.execute(
                f"INSERT INTO survey_versions ({_SURVEY_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                dataclasses.astuple(record),
            )
            return record, True

        return await self._write(body)

    async def get_survey(self, survey_id: str, version: int | None = None) -> StoredSurvey:
        row = await self._fetchone(
            f"SELECT {_SURVEY_COLUMNS} FROM survey_versions WHERE id = ? AND (? IS NULL OR version = ?)"
            " ORDER BY version DESC LIMIT 1",
            (survey_id, version, version),
        )
        if row is None:
            raise NotFound(f"survey {survey_id!r}" + (f" version {version}" if version else ""))
        return StoredSurvey(**dict(row))

    async def list_surveys(self) -> list[StoredSurvey]:
        rows = await self._fetchall(
            f"SELECT {_SURVEY_COLUMNS} FROM survey_versions v WHERE version ="
            " (SELECT max(version) FROM survey_versions w WHERE w.id = v.id) ORDER BY id"
        )
        return [StoredSurvey(**dict(row)) for row in rows]

    async def survey_versions(self, survey_id: str) -> list[StoredSurvey]:
        rows = await self._fetchall(
            f"SELECT {_SURVEY_COLUMNS} FROM survey_versions WHERE id = ? ORDER BY version",
            (survey_id,),
        )
        return [StoredSurvey(**dict(row)) for row in rows]

    # Sample frames ------------------------------------------------------------------

    async def import_frame(self, survey_id: str, rows: Sequence[FrameRow], at: str) -> FrameImport:
        return await self._write(self._import_frame, survey_id, rows, at)

    @staticmethod
    def _import_frame(
        conn: sqlite3.Connection, survey_id: str, rows: Sequence[FrameRow], at: str
    ) -> FrameImport:
        existing = {
            row[0]: tuple(row[1:])
            for row in _rows(
                conn,
                "SELECT f.frame_id, f.grp, f.unit, f.stratum, f.attributes, p.name, p.phone"
                " FROM frame_units f LEFT JOIN frame_personal p"
                " ON p.survey_id = f.survey_id AND p.frame_id = f.frame_id WHERE f.survey_id = ?",
                (survey_id,),
            )
        }
        wanted = {r.frame_id: (r.group, r.unit, r.stratum, r.attributes, r.name, r.phone) for r in rows}
        if len(wanted) != len(rows):
            raise StorageError("frame ids must be unique")
        added = [fid for fid in wanted if fid not in existing]
        changed = [fid for fid in wanted if fid in existing and existing[fid] != wanted[fid]]
        removed = [fid for fid in existing if fid not in wanted]
        if (added or changed or removed) and _one(
            conn, "SELECT 1 FROM samples WHERE survey_id = ?", (survey_id,)
        ):
            raise FrameConflict(
                f"survey {survey_id!r} already has a sample drawn from its frame; this file would "
                f"add {len(added)}, change {len(changed)} and remove {len(removed)} row(s)"
            )
        conn.executemany(
            "DELETE FROM frame_units WHERE survey_id = ? AND frame_id = ?",
            [(survey_id, fid) for fid in (*removed, *changed)],
        )
        conn.executemany(
            "INSERT INTO frame_units (survey_id, frame_id, grp, unit, stratum, attributes, imported_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(survey_id, fid, *wanted[fid][:4], at) for fid in (*added, *changed)],
        )
        conn.executemany(
            "INSERT INTO frame_personal (survey_id, frame_id, name, phone) VALUES (?, ?, ?, ?)",
            [(survey_id, fid, *wanted[fid][4:]) for fid in (*added, *changed)
             if wanted[fid][4] is not None or wanted[fid][5] is not None],
        )
        return FrameImport(len(added), len(changed), len(removed),
                           len(wanted) - len(added) - len(changed))

    async def frame_rows(self, survey_id: str, *, personal: bool = False) -> list[FrameRow]:
        if personal:
            sql = ("SELECT f.frame_id, f.grp AS \"group\", f.unit, f.stratum, f.attributes, p.name, p.phone"
                   " FROM frame_units f LEFT JOIN frame_personal p"
                   " ON p.survey_id = f.survey_id AND p.frame_id = f.frame_id"
                   " WHERE f.survey_id = ? ORDER BY f.frame_id")
        else:
            sql = ("SELECT frame_id, grp AS \"group\", unit, stratum, attributes FROM frame_units"
                   " WHERE survey_id = ? ORDER BY frame_id")
        return [FrameRow(**dict(row)) for row in await self._fetchall(sql, (survey_id,))]

    async def frame_references(self, survey_id: str) -> tuple[set[str], set[str]]:
        def body(conn: sqlite3.Connection) -> tuple[set[str], set[str]]:
            groups = _rows(
                conn,
                "SELECT grp FROM frame_units WHERE survey_id = ?"
                " UNION SELECT grp FROM sample_members WHERE survey_id = ?",
                (survey_id, survey_id),
            )
            units = _rows(
                conn, "SELECT DISTINCT unit FROM frame_units WHERE survey_id = ?", (survey_id,)
            )
            return {row[0] for row in groups}, {row[0] for row in units}

        return await self._read(body)

    # Samples ----------------------------------------------------------------------

    async def record_sample(
        self,
        survey_id: str,
        members: Sequence[SampleMemberInput],
        strata: Sequence[SampleStratum],
        *,
        source: str,
        seed: int | None,
        frame_sha256: str | None,
        params: str,
        at: str,
        personal: dict[str, tuple[str | None, str | None]] | None = None,
        frame: Sequence[FrameRow] | None = None,
    ) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            old = _one(
                conn,
                "SELECT source, seed, frame_sha256, created_at FROM samples WHERE survey_id = ?",
                (survey_id,),
            )
            if old is not None:
                if (old["source"], old["seed"], old["frame_sha256"]) == (source, seed, frame_sha256):
                    return False
                raise SampleConflict(
                    f"survey {survey_id!r} already has a sample ({old['source']} at {old['created_at']}"
                    + (f", seed {old['seed']}" if old["seed"] is not None else "") + ")"
                )
            if frame is not None:
                self._import_frame(conn, survey_id, frame, at)
            conn.execute(
                "INSERT INTO samples (survey_id, source, seed, frame_sha256, params, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (survey_id, source, seed, frame_sha256, params, at),
            )
            conn.executemany(
                "INSERT INTO sample_strata (survey_id, grp, stratum, population, n, reserve)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(survey_id, s.group, s.stratum, s.population, s.n, s.reserve) for s in strata],
            )
            known = personal
            if known is None:
                known = {
                    row[0]: (row[1], row[2])
                    for row in _rows(
                        conn,
                        "SELECT frame_id, name, phone FROM frame_personal WHERE survey_id = ?",
                        (survey_id,),
                    )
                }
            for m in members:
                if m.role not in ("main", "reserve"):
                    raise StorageError(f"unknown sample role {m.role!r}")
                respondent_id = None
                if m.role == "main":
                    name, phone = known.get(m.frame_id, (None, None))
                    respondent_id = self._field(conn, survey_id, m.frame_id, m.form_id, m.stratum,
                                                name, phone, at)
                conn.execute(
                    "INSERT INTO sample_members (survey_id, frame_id, grp, form_id, stratum, pi, weight,"
                    " role, reserve_rank, respondent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (survey_id, m.frame_id, m.group, m.form_id, m.stratum, m.pi, 1.0 / m.pi, m.role,
                     m.reserve_rank, respondent_id),
                )
            return True

        return await self._write(body)

    @classmethod
    def _field(
        cls, conn: sqlite3.Connection, survey_id: str, frame_id: str, form_id: str, stratum: str,
        name: str | None, phone: str | None, at: str,
    ) -> int:
        """Make a sample member a respondent (disposition "sampled") with its personal row."""
        external_id = f"{survey_id}:{frame_id}"
        if cls._respondent_by_external_id(conn, external_id) is not None:
            raise SampleConflict(f"respondent {external_id!r} exists already")
        respondent = cls._insert_respondent(conn, external_id, form_id, stratum, at)
        if name is not None or phone is not None:
            conn.execute(
                "INSERT INTO respondent_personal (respondent_id, name, phone) VALUES (?, ?, ?)",
                (respondent.id, name, phone),
            )
        return respondent.id

    async def sample_info(self, survey_id: str) -> SampleInfo | None:
        row = await self._fetchone(
            "SELECT survey_id, source, seed, frame_sha256, params, created_at FROM samples"
            " WHERE survey_id = ?",
            (survey_id,),
        )
        return SampleInfo(**dict(row)) if row is not None else None

    async def sample_strata(self, survey_id: str) -> list[SampleStratum]:
        rows = await self._fetchall(
            "SELECT grp, stratum, population, n, reserve FROM sample_strata WHERE survey_id = ?"
            " ORDER BY stratum",
            (survey_id,),
        )
        return [SampleStratum(*row) for row in rows]

    async def sample_members(
        self, survey_id: str, role: str | None = None
    ) -> list[SampleMember]:
        rows = await self._fetchall(
            f"SELECT {_MEMBER_COLUMNS} FROM sample_members WHERE survey_id = ?"
            " AND (? IS NULL OR role = ?) ORDER BY stratum, role, reserve_rank, frame_id",
            (survey_id, role, role),
        )
        return [SampleMember(*row) for row in rows]

    async def replace_member(
        self,
        survey_id: str,
        respondent_id: int,
        at: str,
        *,
        reason: str | None = None,
        replaceable: Sequence[str] = ("refused", "unreachable", "ineligible"),
    ) -> SampleMember:
        def body(conn: sqlite3.Connection) -> SampleMember:
            row = _one(
                conn,
                f"SELECT {_MEMBER_COLUMNS} FROM sample_members WHERE survey_id = ? AND respondent_id = ?",
                (survey_id, respondent_id),
            )
            if row is None:
                raise NotReplaceable(f"respondent {respondent_id} is not in the sample of {survey_id!r}")
            member = SampleMember(*row)
            if member.replaced_by is not None:
                raise NotReplaceable(
                    f"respondent {respondent_id} was replaced already (by {member.replaced_by})")
            respondent = self._require_respondent(conn, respondent_id)
            if respondent.disposition not in replaceable:
                raise NotReplaceable(
                    f"respondent {respondent_id} is {respondent.disposition}; only "
                    f"{', '.join(replaceable)} can be replaced")
            row = _one(
                conn,
                f"SELECT {_MEMBER_COLUMNS} FROM sample_members WHERE survey_id = ? AND stratum = ?"
                " AND role = 'reserve' AND respondent_id IS NULL ORDER BY reserve_rank LIMIT 1",
                (survey_id, member.stratum),
            )
            if row is None:
                raise ReserveExhausted(f"stratum {member.stratum!r} has no reserve left")
            reserve = SampleMember(*row)
            personal = _one(
                conn,
                "SELECT name, phone FROM frame_personal WHERE survey_id = ? AND frame_id = ?",
                (survey_id, reserve.frame_id),
            )
            name, phone = tuple(personal) if personal is not None else (None, None)
            new_id = self._field(conn, survey_id, reserve.frame_id, reserve.form_id,
                                 reserve.stratum, name, phone, at)
            conn.execute(
                "UPDATE sample_members SET respondent_id = ?, promoted_at = ?, replaces = ?"
                " WHERE survey_id = ? AND frame_id = ?",
                (new_id, at, respondent_id, survey_id, reserve.frame_id),
            )
            conn.execute(
                "UPDATE sample_members SET replaced_by = ?, replaced_disposition = ?"
                " WHERE survey_id = ? AND frame_id = ?",
                (new_id, respondent.disposition, survey_id, member.frame_id),
            )
            conn.execute(
                "UPDATE respondents SET disposition = 'replaced', disposition_at = ? WHERE id = ?",
                (at, respondent_id),
            )
            self._withdraw_reminders(conn, respondent_id, "replaced", at)
            conn.execute(
                "INSERT INTO disposition_history (respondent_id, status, reason, at, key)"
                " VALUES (?, 'replaced', ?, ?, ?)",
                (respondent_id, reason or f"replaced by reserve {reserve.reserve_rank} ({new_id})",
                 at, f"replace:{survey_id}:{respondent_id}"),
            )
            row = _one(
                conn,
                f"SELECT {_MEMBER_COLUMNS} FROM sample_members WHERE survey_id = ? AND frame_id = ?",
                (survey_id, reserve.frame_id),
            )
            return SampleMember(*row)

        return await self._write(body)

    async def replaceable_members(
        self, survey_id: str, dispositions: Sequence[str] = ("refused", "unreachable", "ineligible")
    ) -> list[int]:
        marks = ", ".join("?" for _ in dispositions)
        rows = await self._fetchall(
            "SELECT r.id FROM sample_members sm JOIN respondents r ON r.id = sm.respondent_id"
            f" WHERE sm.survey_id = ? AND sm.replaced_by IS NULL AND r.disposition IN ({marks})"
            " ORDER BY r.id",
            (survey_id, *dispositions),
        )
        return [row[0] for row in rows]

    # Fieldwork status ----------------------------------------------------------------

    async def status_counts(self, survey_id: str) -> list[dict[str, Any]]:
        # disposition and stage are kept on sample_members by triggers (migration 3).
        rows = await self._fetchall(
            "SELECT grp AS \"group\", stratum, disposition, replaced_disposition, stage, count(*) AS n"
            " FROM sample_members WHERE survey_id = ? AND respondent_id IS NOT NULL"
            " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2",
            (survey_id,),
        )
        return [dict(row) for row in rows]

    async def completes_since(self, survey_id: str, since: str) -> dict[tuple[str, str], int]:
        rows = await self._fetchall(
            "SELECT sm.grp, sm.stratum, count(DISTINCT h.respondent_id)"
            " FROM disposition_history h JOIN sample_members sm ON sm.respondent_id = h.respondent_id"
            " WHERE h.status = 'completed' AND h.at >= ? AND sm.survey_id = ?"
            " GROUP BY 1, 2",
            (since, survey_id),
        )
        return {(row[0], row[1]): row[2] for row in rows}

    async def disposition_counts(self) -> list[tuple[str | None, str | None, str, int]]:
        rows = await self._fetchall(
            "SELECT form_id, stratum, disposition, count(*) FROM respondents GROUP BY 1, 2, 3"
        )
        return [tuple(row) for row in rows]

    # Quota slots (migration 4) -------------------------------------------------------

    async def quota_member(self, respondent_id: int) -> tuple[str, str] | None:
        row = await self._fetchone(
            "SELECT survey_id, stratum FROM sample_members WHERE respondent_id = ?", (respondent_id,)
        )
        return (row[0], row[1]) if row is not None else None

    async def reserve_quota_slot(
        self, survey_id: str, stratum: str, respondent_id: int, target: int | None, at: str
    ) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            row = _one(
                conn, "SELECT state FROM quota_slots WHERE respondent_id = ?", (respondent_id,)
            )
            if row is not None and row[0] in ("reserved", "completed"):
                return True
            if target is not None:
                (taken,) = _one(
                    conn,
                    "SELECT count(*) FROM quota_slots WHERE survey_id = ? AND stratum = ?"
                    " AND state IN ('reserved', 'completed')",
                    (survey_id, stratum),
                )
                if taken >= target:
                    return False
            conn.execute(
                "INSERT INTO quota_slots (survey_id, stratum, respondent_id, state, reserved_at,"
                " updated_at) VALUES (?, ?, ?, 'reserved', ?, ?) ON CONFLICT (respondent_id) DO UPDATE"
                " SET survey_id = excluded.survey_id, stratum = excluded.stratum, state = 'reserved',"
                " reserved_at = excluded.reserved_at, updated_at = excluded.updated_at",
                (survey_id, stratum, respondent_id, at, at),
            )
            return True

        return await self._write(body)

    async def complete_quota_slot(self, respondent_id: int, at: str) -> bool:
        return await self._move_quota_slot(respondent_id, "completed", "state != 'completed'", at)

    async def release_quota_slot(self, respondent_id: int, at: str) -> bool:
        return await self._move_quota_slot(respondent_id, "released", "state = 'reserved'", at)

    async def _move_quota_slot(self, respondent_id: int, to: str, only_if: str, at: str) -> bool:
        """One slot to its next state; True when it moved (the callers' conditions are constants)."""
        def body(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                f"UPDATE quota_slots SET state = ?, updated_at = ? WHERE respondent_id = ? AND {only_if}",
                (to, at, respondent_id),
            )
            return cursor.rowcount == 1

        return await self._write(body)

    async def release_stale_quota_slots(self, survey_id: str, older_than: str, at: str) -> list[int]:
        def body(conn: sqlite3.Connection) -> list[int]:
            # Heal slots whose step hook did not run (a crash between the step and the hook).
            conn.execute(
                "UPDATE quota_slots SET state = 'completed', updated_at = ?"
                " WHERE survey_id = ? AND state = 'reserved' AND respondent_id IN"
                " (SELECT id FROM respondents WHERE disposition = 'completed')",
                (at, survey_id),
            )
            conn.execute(
                "UPDATE quota_slots SET state = 'released', updated_at = ?"
                " WHERE survey_id = ? AND state = 'reserved' AND respondent_id IN"
                " (SELECT id FROM respondents WHERE disposition IN ('refused', 'replaced'))",
                (at, survey_id),
            )
            rows = _rows(
                conn,
                "SELECT q.id, q.respondent_id, q.reserved_at FROM quota_slots q"
                " JOIN respondents r ON r.id = q.respondent_id"
                " WHERE q.survey_id = ? AND q.state = 'reserved'"
                " AND r.disposition IN ('contacted', 'started', 'partial')"
                " AND julianday(coalesce((SELECT max(s.updated_at) FROM sessions s"
                "   WHERE s.respondent_id = q.respondent_id AND s.form_id = r.form_id), q.reserved_at))"
                "   < julianday(?)"
                " ORDER BY q.respondent_id",
                (survey_id, older_than),
            )
            released = []
            for slot_id, respondent_id, reserved_at in rows:
                conn.execute(
                    "UPDATE quota_slots SET state = 'released', updated_at = ? WHERE id = ?",
                    (at, slot_id),
                )
                key = f"quota-release:{respondent_id}:{reserved_at}"
                if _one(conn, "SELECT 1 FROM disposition_history WHERE key = ?", (key,)) is None:
                    conn.execute(
                        "UPDATE respondents SET disposition = 'partial', disposition_at = ?"
                        " WHERE id = ? AND disposition != 'partial'",
                        (at, respondent_id),
                    )
                    self._withdraw_reminders(conn, respondent_id, "partial", at)
                    conn.execute(
                        "INSERT INTO disposition_history (respondent_id, status, reason, at, key)"
                        " VALUES (?, 'partial', ?, ?, ?)",
                        (respondent_id, f"quota slot released: no activity since {older_than}", at, key),
                    )
                released.append(respondent_id)
            return released

        return await self._write(body)

    async def quota_counts(self, survey_id: str) -> dict[str, dict[str, int]]:
        rows = await self._fetchall(
            "SELECT stratum, state, count(*) FROM quota_slots WHERE survey_id = ? GROUP BY 1, 2",
            (survey_id,),
        )
        counts: dict[str, dict[str, int]] = {}
        for stratum, state, n in rows:
            counts.setdefault(stratum, {"reserved": 0, "completed": 0, "released": 0})[state] = n
        return counts

    # Reminders (migration 4) ---------------------------------------------------------

    async def enqueue_due_reminders(
        self,
        survey_id: str,
        *,
        after_days: Sequence[int],
        max_count: int,
        now: str,
        limits: Mapping[tuple[str, str], int | None],
        at: str,
    ) -> int:
        # The policy's offsets as SQL literals (ints): CASE k ... END is NULL once k >= len(after_days).
        steps = [int(d) for d in after_days]
        days = " ".join(f"WHEN {k} THEN {d}" for k, d in enumerate(steps))
        gaps = " ".join(f"WHEN {k} THEN {d - steps[k - 1]}" for k, d in enumerate(steps) if k)
        days = f"CASE b.k {days} END" if days else "NULL"
        gaps = f"CASE b.k {gaps} END" if gaps else "NULL"
        # Bots in (channel, bot) order: the reminders are numbered in that order, each bot's oldest first.
        bots = sorted(limits.items())
        if not bots:
            return 0
        params: dict[str, Any] = {
            "survey": survey_id,
            "max": max_count,
            "now_jd": _julianday(now),
            "at": at,
        }
        for i, ((channel, bot), limit) in enumerate(bots):
            params.update({f"c{i}": channel, f"b{i}": bot, f"n{i}": -1 if limit is None else int(limit)})
        if len(bots) == 1:  # one link per (bot, person): a lookup in the UNIQUE (channel, bot, respondent_id)
            chat = "JOIN chat_links l ON l.channel = :c0 AND l.bot = :b0 AND l.respondent_id = r.id"
        else:
            either = " OR ".join(f"(l2.channel = :c{i} AND l2.bot = :b{i})" for i in range(len(bots)))
            chat = ("JOIN chat_links l ON l.rowid = (SELECT l2.rowid FROM chat_links l2 WHERE l2.respondent_id = r.id"
                    f" AND ({either}) ORDER BY l2.linked_at DESC, l2.rowid DESC LIMIT 1)")
        picks = "\nUNION ALL\n".join(
            "SELECT * FROM (SELECT c.rid, :survey, c.total + 1, c.k, c.activity_at,"
            " strftime('%Y-%m-%dT%H:%M:%S+00:00', c.due_jd), :at, c.channel, c.bot"
            f" FROM c WHERE c.channel = :c{i} AND c.bot = :b{i} ORDER BY c.act_jd, c.rid LIMIT :n{i})"
            for i in range(len(bots)))
        insert = _DUE_REMINDERS.format(chat=chat, days=days, gaps=gaps, picks=picks, reminded=repr(_REMINDED))

        def body(conn: sqlite3.Connection) -> int:
            # A reminder already recorded fails the whole pass (rolled back) rather than queue twice.
            conn.execute(insert, params)
            # changes(), not rowcount: sqlite3 counts no statement that starts with WITH.
            return conn.execute("SELECT changes()").fetchone()[0]

        return await self._write(body)

    async def hand_over_reminders(
        self,
        channel: str,
        bot: str,
        limit: int,
        *,
        texts: Mapping[str, ReminderTexts],
        stopped: Mapping[str, str],
        at: str,
        method: str = "sendMessage",
        priority: int = 0,
    ) -> ReminderHandOver:
        surveys = sorted(set(texts) - set(stopped))
        select = _QUEUED_REMINDERS.format(surveys=", ".join("?" * len(surveys)))
        asked = {survey: {form_id: frozenset(names) for form_id, names in wording.asked.items()}
                 for survey, wording in texts.items()}

        def body(conn: sqlite3.Connection) -> ReminderHandOver:
            # A stopped survey's reminders all at once: batch by batch, a closed survey's 100,000
            # would hold the sender (and the replies behind it) for as many transactions.
            stopped_count = sum(conn.execute(
                "UPDATE reminders SET withdrawn_at = ?, withdrawn_because = ? WHERE channel = ? AND bot = ?"
                " AND outbox_id IS NULL AND withdrawn_at IS NULL AND survey_id = ?",
                (at, because, channel, bot, survey)).rowcount for survey, because in stopped.items())
            if limit <= 0 or not surveys:
                return ReminderHandOver(withdrawn=stopped_count)
            queued = conn.execute(select, (channel, bot, *surveys, limit)).fetchall()
            sessions = sorted({row["session_id"] for row in queued if row["session_id"] is not None})
            answered: dict[int, list[str]] = {}
            if sessions:
                for session_id, question in conn.execute(
                        f"SELECT session_id, question FROM answers WHERE session_id IN ({', '.join('?' * len(sessions))})"
                        " AND status = 'answered'", sessions):
                    answered.setdefault(session_id, []).append(question)
            withdrawn: list[tuple[str, str, int]] = []
            handed_over = 0
            for row in queued:
                survey = row["survey_id"]
                because = (row["disposition"] if row["disposition"] not in _REMINDED
                           else "no chat" if row["chat_id"] is None else None)
                if because is not None:
                    withdrawn.append((at, because, row["id"]))
                    continue
                form_id = row["form_id"]
                questions = asked[survey].get(form_id or "", frozenset())
                progress = sum(1 for name in answered.get(row["session_id"], ()) if name in questions)
                text = texts[survey].render(row["language"] or None, form_id or None, progress)
                payload = json.dumps({"chat_id": _payload_chat_id(channel, row["chat_id"]), "text": text},
                                     ensure_ascii=False, separators=(",", ":"))
                message_id = conn.execute(
                    "INSERT INTO outbox (channel, bot, chat_id, method, payload, priority, respondent_id,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (channel, bot, row["chat_id"], method, payload, priority, row["respondent_id"], at, at),
                ).lastrowid
                conn.execute("UPDATE reminders SET outbox_id = ? WHERE id = ?", (message_id, row["id"]))
                handed_over += 1
            conn.executemany("UPDATE reminders SET withdrawn_at = ?, withdrawn_because = ? WHERE id = ?", withdrawn)
            return ReminderHandOver(handed_over, stopped_count + len(withdrawn), len(queued) == limit)

        return await self._write(body)

    async def queued_reminders(self, channel: str | None = None, bot: str | None = None) -> int:
        row = await self._fetchone(
            "SELECT count(*) FROM reminders WHERE outbox_id IS NULL AND withdrawn_at IS NULL"
            " AND (? IS NULL OR channel = ?) AND (? IS NULL OR bot = ?)",
            (channel, channel, bot, bot),
        )
        return row[0]

    async def reminders_of(self, respondent_id: int) -> list[dict[str, Any]]:
        rows = await self._fetchall(
            "SELECT survey_id, number, step, activity_at, due_at, enqueued_at, channel, bot, dedupe_key, outbox_id,"
            " withdrawn_at, withdrawn_because FROM reminders WHERE respondent_id = ? ORDER BY id",
            (respondent_id,),
        )
        return [dict(row) for row in rows]

    async def chat_reached(self, channel: str, bot: str, chat_id: str) -> bool:
        row = await self._fetchone(
            "SELECT 1 FROM outbox WHERE channel = ? AND bot = ? AND state = 'sent' AND chat_id = ?"
            " LIMIT 1",
            (channel, bot, str(chat_id)),
        )
        return row is not None

    async def unreached_members(self, survey_id: str | None = None) -> list[dict[str, Any]]:
        rows = await self._fetchall(
            "SELECT sm.survey_id, r.id AS respondent_id, r.pseudonym, sm.grp, sm.stratum, r.disposition,"
            " (SELECT min(i.created_at) FROM invitations i WHERE i.respondent_id = r.id) AS invited_at,"
            " p.name, p.phone"
            " FROM sample_members sm JOIN respondents r ON r.id = sm.respondent_id"
            " LEFT JOIN respondent_personal p ON p.respondent_id = r.id"
            " WHERE (? IS NULL OR sm.survey_id = ?) AND sm.replaced_by IS NULL"
            " AND r.disposition IN ('sampled', 'invited')"
            " AND EXISTS (SELECT 1 FROM invitations i WHERE i.respondent_id = r.id)"
            " AND NOT EXISTS (SELECT 1 FROM chat_links l WHERE l.respondent_id = r.id)"
            " ORDER BY sm.survey_id, sm.stratum, r.id",
            (survey_id, survey_id),
        )
        return [dict(row) for row in rows]

    async def reminder_counts(self, survey_id: str | None = None) -> dict[int, int]:
        rows = await self._fetchall(
            "SELECT respondent_id, count(*) FROM reminders WHERE (? IS NULL OR survey_id = ?)"
            " AND withdrawn_at IS NULL GROUP BY respondent_id",
            (survey_id, survey_id),
        )
        return {row[0]: row[1] for row in rows}


#: Calls the worker thread runs together when several wait in one group (``_batched``).
_BATCHES: dict[Callable[..., Any], Callable[[sqlite3.Connection, Sequence[tuple[Any, ...]]], list[Any]]] = {
    _apply_step: _apply_steps,
    _linked_session: _linked_sessions,
}
