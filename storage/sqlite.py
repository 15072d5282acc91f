"""SQLite implementation of ``Storage`` on aiosqlite.

Durability choices: WAL with ``synchronous=FULL`` so every committed step is
on disk before the call returns (NORMAL may lose the last commits on power
loss); every write is one ``BEGIN IMMEDIATE`` transaction so a killed process
leaves all of it or none, and concurrent writers queue on ``busy_timeout``
instead of failing mid-transaction. One connection serves all coroutines, so
an ``asyncio.Lock`` keeps their transactions from interleaving on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from .base import Storage
from .errors import NotFound, QuestionnaireConflict, StaleRevision, StorageError
from .migrations import migrate
from .records import (
    AnswerChange,
    AnswerRecord,
    Respondent,
    SessionRecord,
    StepResult,
    StoredQuestionnaire,
)

_PRAGMAS = (
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
)

# Crockford base32: no I, L, O, U, so pseudonyms survive being read aloud or retyped.
_PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_SESSION_COLUMNS = (
    "id, respondent_id, form_id, form_version, channel, status, state, "
    "revision, created_at, updated_at"
)
# Same predicate as the partial index sessions_one_open, so it can be used.
_OPEN = "status NOT IN ('completed', 'refused')"


def _new_pseudonym() -> str:
    return "R" + "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(10))


@contextmanager
def _translated() -> Iterator[None]:
    """Surface driver errors as ``StorageError`` so callers need not know the backend."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(f"sqlite: {exc}") from exc


class SQLiteStorage(Storage):
    """``Storage`` on one SQLite file. Create with ``await SQLiteStorage.open(path)``."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SQLiteStorage:
        """Open (creating the file and its directory if needed) and migrate."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _translated():
            db = await aiosqlite.connect(path, isolation_level=None)
        try:
            with _translated():
                db.row_factory = sqlite3.Row
                for pragma in _PRAGMAS:
                    await db.execute(pragma)
                await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            with _translated():
                await self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    await self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        await self._db.execute("ROLLBACK")
                    raise

    async def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._lock:
            with _translated():
                return list(await self._db.execute_fetchall(sql, params))

    # Questionnaires -----------------------------------------------------

    async def save_questionnaire(
        self, form_id: str, version: str, source_name: str, source: bytes, at: str
    ) -> StoredQuestionnaire:
        sha256 = hashlib.sha256(source).hexdigest()
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                "SELECT * FROM questionnaires WHERE form_id = ? AND version = ?",
                (form_id, version),
            )
            if rows:
                existing = StoredQuestionnaire(**dict(rows[0]))
                if existing.sha256 != sha256:
                    raise QuestionnaireConflict(
                        f"questionnaire {form_id!r} version {version!r} is already stored "
                        f"with different content (sha256 {existing.sha256}, "
                        f"loaded from {existing.source_name!r} at {existing.loaded_at}); "
                        "bump the form version"
                    )
                return existing
            record = StoredQuestionnaire(form_id, version, source_name, bytes(source), sha256, at)
            await db.execute(
                "INSERT INTO questionnaires (form_id, version, source_name, source, sha256,"
                " loaded_at) VALUES (?, ?, ?, ?, ?, ?)",
                (form_id, version, source_name, record.source, sha256, at),
            )
            return record

    async def get_questionnaire(self, form_id: str, version: str) -> StoredQuestionnaire:
        rows = await self._fetchall(
            "SELECT * FROM questionnaires WHERE form_id = ? AND version = ?", (form_id, version)
        )
        if not rows:
            raise NotFound(f"questionnaire {form_id!r} version {version!r}")
        return StoredQuestionnaire(**dict(rows[0]))

    async def list_questionnaires(self) -> list[StoredQuestionnaire]:
        rows = await self._fetchall("SELECT * FROM questionnaires ORDER BY form_id, loaded_at")
        return [StoredQuestionnaire(**dict(row)) for row in rows]

    # Respondents --------------------------------------------------------

    async def ensure_respondent(self, external_id: str, at: str) -> Respondent:
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                "SELECT * FROM respondents WHERE external_id = ?", (external_id,)
            )
            if rows:
                return Respondent(**dict(rows[0]))
            pseudonym = _new_pseudonym()
            while await db.execute_fetchall(
                "SELECT 1 FROM respondents WHERE pseudonym = ?", (pseudonym,)
            ):
                pseudonym = _new_pseudonym()
            cursor = await db.execute(
                "INSERT INTO respondents (external_id, pseudonym, created_at) VALUES (?, ?, ?)",
                (external_id, pseudonym, at),
            )
            return Respondent(cursor.lastrowid, external_id, pseudonym, at)

    async def get_respondent(self, respondent_id: int) -> Respondent:
        rows = await self._fetchall("SELECT * FROM respondents WHERE id = ?", (respondent_id,))
        if not rows:
            raise NotFound(f"respondent {respondent_id}")
        return Respondent(**dict(rows[0]))

    # Sessions -----------------------------------------------------------

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
        async with self._transaction() as db:
            if not await db.execute_fetchall(
                "SELECT 1 FROM respondents WHERE id = ?", (respondent_id,)
            ):
                raise NotFound(f"respondent {respondent_id}")
            if not await db.execute_fetchall(
                "SELECT 1 FROM questionnaires WHERE form_id = ? AND version = ?",
                (form_id, form_version),
            ):
                raise NotFound(f"questionnaire {form_id!r} version {form_version!r}")
            rows = await db.execute_fetchall(
                f"SELECT {_SESSION_COLUMNS} FROM sessions"
                f" WHERE respondent_id = ? AND form_id = ? AND {_OPEN}",
                (respondent_id, form_id),
            )
            if rows:
                return SessionRecord(**dict(rows[0])), False
            cursor = await db.execute(
                "INSERT INTO sessions (respondent_id, form_id, form_version, channel, status,"
                " state, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (respondent_id, form_id, form_version, channel, status, state, at, at),
            )
            record = SessionRecord(
                cursor.lastrowid, respondent_id, form_id, form_version, channel,
                status, state, 0, at, at,
            )
            return record, True

    async def get_session(self, session_id: int) -> SessionRecord:
        rows = await self._fetchall(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        )
        if not rows:
            raise NotFound(f"session {session_id}")
        return SessionRecord(**dict(rows[0]))

    async def latest_session(self, respondent_id: int, form_id: str) -> SessionRecord | None:
        rows = await self._fetchall(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE respondent_id = ? AND form_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (respondent_id, form_id),
        )
        return SessionRecord(**dict(rows[0])) if rows else None

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
    ) -> StepResult:
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                "SELECT revision FROM sessions WHERE id = ?", (session_id,)
            )
            if not rows:
                raise NotFound(f"session {session_id}")
            revision = rows[0]["revision"]
            if await db.execute_fetchall(
                "SELECT 1 FROM events WHERE session_id = ? AND event_key = ?",
                (session_id, event_key),
            ):
                return StepResult(applied=False, revision=revision)
            if revision != expected_revision:
                raise StaleRevision(
                    f"session {session_id} is at revision {revision}, "
                    f"not {expected_revision}"
                )
            revision += 1
            cursor = await db.execute(
                "INSERT INTO events (session_id, event_key, event, revision, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, event_key, event, revision, at),
            )
            event_id = cursor.lastrowid
            await db.execute(
                "UPDATE sessions SET state = ?, status = ?, revision = ?, updated_at = ?"
                " WHERE id = ?",
                (state, status, revision, at, session_id),
            )
            for change in changes:
                await self._apply_change(db, session_id, change, event_id, at)
            return StepResult(applied=True, revision=revision)

    @staticmethod
    async def _apply_change(
        db: aiosqlite.Connection, session_id: int, change: AnswerChange, event_id: int, at: str
    ) -> None:
        """Upsert one answer and log it, unless it is unchanged (no history noise)."""
        rows = await db.execute_fetchall(
            "SELECT value, status FROM answers WHERE session_id = ? AND question = ?",
            (session_id, change.question),
        )
        old_value, old_status = tuple(rows[0]) if rows else (None, None)
        if (old_value, old_status) == (change.value, change.status):
            return
        await db.execute(
            "INSERT INTO answers (session_id, question, value, status, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id, question) DO UPDATE SET"
            " value = excluded.value, status = excluded.status, updated_at = excluded.updated_at",
            (session_id, change.question, change.value, change.status, at),
        )
        await db.execute(
            "INSERT INTO answer_history (session_id, question, old_value, old_status,"
            " new_value, new_status, event_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (session_id, change.question, old_value, old_status,
             change.value, change.status, event_id, at),
        )

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
