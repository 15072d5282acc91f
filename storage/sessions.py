"""Sessions and answers: a respondent's sessions of a form, the step write (the event, the
session's new state and revision, the changed answers and the replies, ONE path, batched),
and the reads of answers, history and events.

Tables written here: ``sessions``, ``events``, ``answers`` (``answer_history`` by triggers
of migration 7 on ``answers``); a step's replies go in through the outbox's insert
(``enqueue_messages``) and the consent it accepts through the privacy aggregate's
(``insert_consents``), in the step's transaction.
"""

from __future__ import annotations

import abc
import dataclasses
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

from .errors import NotFound, StaleRevision
from .records import AnswerChange, AnswerRecord, ConsentRecord, OutgoingMessage, Respondent, SessionRecord, StepResult
from .links import RESPONDENT_COLUMNS_R
from .outbox import enqueue_messages
from .privacy import insert_consents
from .sqlite_hops import ALONE, BATCH_ROWS, Refused, SQLiteRepository, batch_form, chunks, one_row, placeholders


_SESSION_COLUMNS = (
    "id, respondent_id, form_id, form_version, channel, status, state, "
    "revision, created_at, updated_at"
)
_SESSION_COLUMNS_S = ", ".join(f"s.{c.strip()}" for c in _SESSION_COLUMNS.split(","))
# What an UPDATE of a session returns: the state is the one just written, no need to copy it back.
_SESSION_COLUMNS_BUT_STATE = ", ".join(c.strip() for c in _SESSION_COLUMNS.split(",") if c.strip() != "state")


# Unchanged answers are left alone (no history row); changed ones are updated in place.
_ANSWER_UPSERT = (
    "ON CONFLICT (session_id, question) DO UPDATE SET value = excluded.value, status = excluded.status,"
    " updated_at = excluded.updated_at"
    " WHERE answers.value IS DISTINCT FROM excluded.value OR answers.status IS DISTINCT FROM excluded.status"
)


# Same predicate as the partial index sessions_one_open, so it can be used.
_OPEN = "status NOT IN ('completed', 'refused')"


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
    consents: Sequence[ConsentRecord] = ()


def _apply_step(conn: sqlite3.Connection, write: _StepWrite) -> StepResult:
    """One step: the batch of one (``_apply_steps``), so a lone step and a group's steps are
    written by the same statements."""
    [result] = _apply_steps(conn, [(write,)])
    if isinstance(result, Refused):
        raise result.error
    return result


@batch_form(_apply_step)
def _apply_steps(conn: sqlite3.Connection, calls: Sequence[tuple[_StepWrite]]) -> list[Any]:
    """Many sessions' steps in a handful of multi-row statements (``_batched``): the only step write.

    One UPDATE moves every session that is at its expected revision and has not logged the
    event yet; only those steps' events, answers, messages and consents are then inserted, so nothing
    has to be undone for the others. Those others are told apart afterwards with reads only
    (``_refused_step``): a re-delivered event is a result that applied nothing, a stale
    revision or a missing session is ``Refused``. A second step of a session already in the
    round goes in the next round, after the first has moved the revision on.
    """
    writes = [args[0] for args in calls]
    results: list[Any] = [ALONE] * len(writes)
    pending = list(range(len(writes)))
    while pending:
        first: dict[int, int] = {}
        later: list[int] = []
        for index in pending:
            if first.setdefault(writes[index].session_id, index) != index:
                later.append(index)
        _write_steps(conn, writes, list(first.values()), results)
        for index in first.values():
            if results[index] is ALONE:
                results[index] = _refused_step(conn, writes[index])
        pending = later
    return results


def _write_steps(conn: sqlite3.Connection, writes: Sequence[_StepWrite], indices: Sequence[int],
                 results: list[Any]) -> None:
    """Apply the steps at ``indices`` (of distinct sessions) that can be; set their results."""
    applied: list[_StepWrite] = []
    for chunk in chunks(indices, BATCH_ROWS):
        rows = conn.execute(
            f"WITH v (v_id, v_expected, v_key, v_state, v_status, v_at) AS (VALUES {placeholders(len(chunk), 6)})"
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
    # The answer_history triggers (migration 7) log the changed answers against these events.
    for chunk in chunks(applied, BATCH_ROWS):
        conn.execute(
            f"INSERT INTO events (session_id, event_key, event, revision, at) VALUES {placeholders(len(chunk), 5)}",
            [value for write in chunk for value in (
                write.session_id, write.event_key, write.event, write.expected_revision + 1, write.at)],
        )
    answers = [(write.session_id, change.question, change.value, change.status, write.at)
               for write in applied for change in write.changes]
    for chunk in chunks(answers, BATCH_ROWS):
        conn.execute(
            f"INSERT INTO answers (session_id, question, value, status, updated_at) VALUES {placeholders(len(chunk), 5)}"
            f" {_ANSWER_UPSERT}",
            [value for answer in chunk for value in answer],
        )
    enqueue_messages(conn, [(message, write.at) for write in applied for message in write.outgoing])
    # Once per person (the step that accepts the consent screen): most rounds have none.
    consents = [consent for write in applied for consent in write.consents]
    if consents:
        insert_consents(conn, consents)


def _refused_step(conn: sqlite3.Connection, write: _StepWrite) -> StepResult | Refused:
    """Why a step was not applied, from reads only: its event is logged already (a re-delivery:
    nothing applied), or the session is missing or at another revision."""
    row = one_row(conn, f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (write.session_id,))
    if row is None:
        return Refused(NotFound(f"session {write.session_id}"))
    record = SessionRecord(*row)
    if one_row(conn, "SELECT 1 FROM events WHERE session_id = ? AND event_key = ?",
               (write.session_id, write.event_key)):
        return StepResult(applied=False, revision=record.revision, session=record)
    return Refused(StaleRevision(
        f"session {write.session_id} is at revision {record.revision}, not {write.expected_revision}"))


def _session_after(row: Sequence[Any], state: str) -> SessionRecord:
    """The session from ``RETURNING {_SESSION_COLUMNS_BUT_STATE}`` and the state just written."""
    return SessionRecord(row[0], row[1], row[2], row[3], row[4], row[5], state, row[6], row[7], row[8])


def _linked_session(
    conn: sqlite3.Connection, channel: str, bot: str, chat_id: str, default_form: str | None
) -> tuple[Respondent | None, SessionRecord | None]:
    return _linked_sessions(conn, [(channel, bot, chat_id, default_form)])[0]


@batch_form(_linked_session)
def _linked_sessions(
    conn: sqlite3.Connection, calls: Sequence[tuple[str, str, str, str | None]]
) -> list[tuple[Respondent | None, SessionRecord | None]]:
    """Each chat's respondent and their latest session of their form (else ``default_form``)."""
    found: list[tuple[Respondent | None, SessionRecord | None]] = []
    for chunk in chunks(calls, BATCH_ROWS):
        rows = conn.execute(
            f"WITH q (n, channel, bot, chat_id, default_form) AS (VALUES {placeholders(len(chunk), 5)})"
            f" SELECT q.n, {RESPONDENT_COLUMNS_R}, {_SESSION_COLUMNS_S} FROM q"
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


class Sessions(Protocol):
    """The sessions aggregate's storage: the contract every backend keeps."""

    @abc.abstractmethod
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
        """Resume or start the respondent's session for a form.

        Returns ``(session, False)`` for the existing session of that form
        whose status is neither "completed" nor "refused", else creates one at
        revision 0 and returns ``(session, True)``. Concurrent callers never
        create two open sessions for one respondent and form. Raises
        ``NotFound`` if the respondent or questionnaire version is unknown.
        """

    @abc.abstractmethod
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
        """The session a chat update for this respondent and form goes to, in one call.

        One response per person: if the respondent's latest session of the form (as
        ``latest_session``) is "completed" or "refused", it is returned as is (the engine
        answers a finished session politely; a refused one can be resumed). Otherwise the
        open session is returned, or, if there is none, one is created as by
        ``open_session`` (at revision 0 with ``status`` and ``state``; concurrent callers
        never create two). Returns ``(session, created)``. Finding an existing session
        writes nothing. Raises ``NotFound`` if a session has to be created and the
        respondent or questionnaire version is unknown.
        """

    @abc.abstractmethod
    async def get_session(self, session_id: int) -> SessionRecord:
        """Return one session or raise ``NotFound``."""

    @abc.abstractmethod
    async def latest_session(self, respondent_id: int, form_id: str) -> SessionRecord | None:
        """The respondent's most recently created session for a form, if any."""

    @abc.abstractmethod
    async def list_sessions(self, form_id: str | None = None) -> list[SessionRecord]:
        """All sessions (optionally of one form), ordered by id."""

    @abc.abstractmethod
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
        consents: Sequence[ConsentRecord] = (),
    ) -> StepResult:
        """Record one engine step atomically.

        Chat platforms deliver at least once, so an ``event_key`` already
        recorded for this session returns ``StepResult(False, current)`` and
        writes nothing. The result's ``session`` is the session after the call
        (after this step, or as it is now for a re-delivered event), so callers
        need not read it again. Otherwise, if the session's revision is not
        ``expected_revision`` another writer got there first and
        ``StaleRevision`` is raised. Otherwise the event is logged, the
        session's state, status and revision (+1) are replaced, each change
        is upserted into the current answers, and every change that really
        alters an answer's value or status is appended to its history.
        Answer statuses are "answered", "skipped" (optional question left
        empty) or "not_applicable" (skipped by relevance); anything else
        fails the whole step. Values are compared as text, so serialise
        JSON deterministically.
        ``outgoing`` (the step's replies) is enqueued as by ``enqueue`` in the
        same transaction, so a step is never stored without its replies nor
        replies without their step, and a re-delivered event enqueues
        nothing. A bad outgoing message (e.g. invalid JSON) fails the whole
        step.
        ``consents`` (the consent the step accepts) are stored as by
        ``record_consent`` in the same transaction: a session never moves past
        its consent screen without the record of the text accepted, and a
        consent that cannot be stored fails the whole step.
        Raises ``NotFound`` for an unknown session.
        """

    @abc.abstractmethod
    async def answers(self, session_id: int) -> dict[str, AnswerRecord]:
        """Current answers of a session keyed by question (empty if none)."""

    @abc.abstractmethod
    async def answer_history(
        self, session_id: int, question: str | None = None
    ) -> list[dict[str, Any]]:
        """Answer changes in the order they happened.

        Each dict has question, old_value, old_status (both None for a first
        answer), new_value, new_status, event_id and at.
        """

    @abc.abstractmethod
    async def events(self, session_id: int) -> list[dict[str, Any]]:
        """The session's applied events by revision.

        Dicts of id (what ``answer_history`` rows point to), event_key,
        event, revision and at.
        """

    @abc.abstractmethod
    async def linked_session(
        self, channel: str, bot: str, chat_id: str, default_form: str | None
    ) -> tuple[Respondent | None, SessionRecord | None]:
        """The respondent linked to this chat and their latest session of their questionnaire
        (``default_form`` if they have none), read together: what every update of a chat
        needs first. The session is None if there is none yet (``current_session`` makes it)."""


class SQLiteSessions(SQLiteRepository):
    """``Sessions`` on SQLite."""

    @staticmethod
    def _latest_session(
        conn: sqlite3.Connection, respondent_id: int, form_id: str
    ) -> SessionRecord | None:
        row = one_row(
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
        if not one_row(conn, "SELECT 1 FROM respondents WHERE id = ?", (respondent_id,)):
            raise NotFound(f"respondent {respondent_id}")
        if not one_row(
            conn,
            "SELECT 1 FROM questionnaires WHERE form_id = ? AND version = ?",
            (form_id, form_version),
        ):
            raise NotFound(f"questionnaire {form_id!r} version {form_version!r}")
        row = one_row(
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
        consents: Sequence[ConsentRecord] = (),
    ) -> StepResult:
        return await self._write(_apply_step, _StepWrite(session_id, event_key, event, expected_revision, status,
                                                         state, changes, at, outgoing, consents))

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

    async def linked_session(
        self, channel: str, bot: str, chat_id: str, default_form: str | None
    ) -> tuple[Respondent | None, SessionRecord | None]:
        return await self._read(_linked_session, channel, bot, chat_id, default_form)
