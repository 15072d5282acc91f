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
import dataclasses
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
from .errors import (
    AmbiguousPhone,
    InvitationRevoked,
    InvitationUsed,
    LinkConflict,
    NotFound,
    QuestionnaireConflict,
    StaleRevision,
    StorageError,
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
_RESPONDENT_COLUMNS = (
    "id, external_id, pseudonym, created_at, form_id, stratum, disposition, disposition_at"
)
_RESPONDENT_COLUMNS_R = ", ".join(f"r.{c.strip()}" for c in _RESPONDENT_COLUMNS.split(","))
_INVITATION_COLUMNS = (
    "id, respondent_id, kind, code_hash, created_at, revoked_at, used_at, used_channel,"
    " used_bot, used_chat"
)
_OUTBOX_COLUMNS = (
    "id, channel, bot, chat_id, method, payload, priority, dedupe_key, respondent_id, state,"
    " attempts, not_before, created_at, updated_at, result, error"
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
            existing = await self._respondent_by_external_id(db, external_id)
            if existing is not None:
                return existing
            return await self._insert_respondent(db, external_id, None, None, at)

    @staticmethod
    async def _respondent_by_external_id(
        db: aiosqlite.Connection, external_id: str
    ) -> Respondent | None:
        rows = await db.execute_fetchall(
            f"SELECT {_RESPONDENT_COLUMNS} FROM respondents WHERE external_id = ?",
            (external_id,),
        )
        return Respondent(**dict(rows[0])) if rows else None

    @staticmethod
    async def _insert_respondent(
        db: aiosqlite.Connection,
        external_id: str,
        form_id: str | None,
        stratum: str | None,
        at: str,
    ) -> Respondent:
        pseudonym = _new_pseudonym()
        while await db.execute_fetchall(
            "SELECT 1 FROM respondents WHERE pseudonym = ?", (pseudonym,)
        ):
            pseudonym = _new_pseudonym()
        cursor = await db.execute(
            "INSERT INTO respondents (external_id, pseudonym, created_at, form_id, stratum)"
            " VALUES (?, ?, ?, ?, ?)",
            (external_id, pseudonym, at, form_id, stratum),
        )
        return Respondent(cursor.lastrowid, external_id, pseudonym, at, form_id, stratum)

    @staticmethod
    async def _require_respondent(db: aiosqlite.Connection, respondent_id: int) -> Respondent:
        rows = await db.execute_fetchall(
            f"SELECT {_RESPONDENT_COLUMNS} FROM respondents WHERE id = ?", (respondent_id,)
        )
        if not rows:
            raise NotFound(f"respondent {respondent_id}")
        return Respondent(**dict(rows[0]))

    async def get_respondent(self, respondent_id: int) -> Respondent:
        rows = await self._fetchall(
            f"SELECT {_RESPONDENT_COLUMNS} FROM respondents WHERE id = ?", (respondent_id,)
        )
        if not rows:
            raise NotFound(f"respondent {respondent_id}")
        return Respondent(**dict(rows[0]))

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
        async with self._transaction() as db:
            existing = await self._respondent_by_external_id(db, external_id)
            if existing is not None:
                return existing
            respondent = await self._insert_respondent(db, external_id, form_id, stratum, at)
            if name is not None or phone is not None:
                await db.execute(
                    "INSERT INTO respondent_personal (respondent_id, name, phone)"
                    " VALUES (?, ?, ?)",
                    (respondent.id, name, phone),
                )
            return respondent

    async def personal(self, respondent_id: int) -> Personal:
        async with self._lock:
            with _translated():
                if not await self._db.execute_fetchall(
                    "SELECT 1 FROM respondents WHERE id = ?", (respondent_id,)
                ):
                    raise NotFound(f"respondent {respondent_id}")
                rows = await self._db.execute_fetchall(
                    "SELECT name, phone FROM respondent_personal WHERE respondent_id = ?",
                    (respondent_id,),
                )
        return Personal(**dict(rows[0])) if rows else Personal()

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
        async with self._transaction() as db:
            await self._require_respondent(db, respondent_id)
            await db.execute(
                "UPDATE respondents SET form_id = ?, stratum = ? WHERE id = ?",
                (form_id, stratum, respondent_id),
            )
            return await self._require_respondent(db, respondent_id)

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
        async with self._transaction() as db:
            respondent = await self._require_respondent(db, respondent_id)
            if key is not None and await db.execute_fetchall(
                "SELECT 1 FROM disposition_history WHERE key = ?", (key,)
            ):
                return False
            if respondent.disposition == status:
                return False
            await db.execute(
                "UPDATE respondents SET disposition = ?, disposition_at = ? WHERE id = ?",
                (status, at, respondent_id),
            )
            await db.execute(
                "INSERT INTO disposition_history (respondent_id, status, reason, at, key)"
                " VALUES (?, ?, ?, ?, ?)",
                (respondent_id, status, reason, at, key),
            )
            return True

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
        async with self._transaction() as db:
            await self._require_respondent(db, respondent_id)
            await db.execute(
                "UPDATE invitations SET revoked_at = ?"
                " WHERE respondent_id = ? AND kind = ? AND revoked_at IS NULL",
                (at, respondent_id, kind),
            )
            cursor = await db.execute(
                "INSERT INTO invitations (respondent_id, kind, code_hash, created_at)"
                " VALUES (?, ?, ?, ?)",
                (respondent_id, kind, code_hash, at),
            )
            return Invitation(cursor.lastrowid, respondent_id, kind, code_hash, at)

    async def revoke_invitations(self, respondent_id: int, at: str) -> int:
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE invitations SET revoked_at = ?"
                " WHERE respondent_id = ? AND revoked_at IS NULL",
                (at, respondent_id),
            )
            return cursor.rowcount

    async def find_invitation(self, code_hash: str) -> Invitation | None:
        rows = await self._fetchall(
            f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE code_hash = ?", (code_hash,)
        )
        return Invitation(**dict(rows[0])) if rows else None

    async def active_invitation(self, respondent_id: int, kind: str) -> Invitation | None:
        rows = await self._fetchall(
            f"SELECT {_INVITATION_COLUMNS} FROM invitations"
            " WHERE respondent_id = ? AND kind = ? AND revoked_at IS NULL",
            (respondent_id, kind),
        )
        return Invitation(**dict(rows[0])) if rows else None

    async def use_invitation(
        self, invitation_id: int, channel: str, bot: str, chat_id: str, at: str
    ) -> Invitation:
        chat_id = str(chat_id)
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE id = ?", (invitation_id,)
            )
            if not rows:
                raise NotFound(f"invitation {invitation_id}")
            invitation = Invitation(**dict(rows[0]))
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
            await db.execute(
                "UPDATE invitations SET used_at = ?, used_channel = ?, used_bot = ?,"
                " used_chat = ? WHERE id = ?",
                (at, channel, bot, chat_id, invitation_id),
            )
            return dataclasses.replace(
                invitation, used_at=at, used_channel=channel, used_bot=bot, used_chat=chat_id
            )

    # Chat links ---------------------------------------------------------

    async def link_chat(
        self, channel: str, bot: str, chat_id: str, respondent_id: int, at: str
    ) -> None:
        chat_id = str(chat_id)
        async with self._transaction() as db:
            await self._require_respondent(db, respondent_id)
            rows = await db.execute_fetchall(
                "SELECT respondent_id FROM chat_links"
                " WHERE channel = ? AND bot = ? AND chat_id = ?",
                (channel, bot, chat_id),
            )
            if rows:
                if rows[0]["respondent_id"] == respondent_id:
                    return
                raise LinkConflict(
                    f"{channel} chat {chat_id} on bot {bot!r} is linked to another respondent"
                )
            if await db.execute_fetchall(
                "SELECT 1 FROM chat_links WHERE channel = ? AND bot = ? AND respondent_id = ?",
                (channel, bot, respondent_id),
            ):
                raise LinkConflict(
                    f"respondent {respondent_id} is linked to another {channel} chat"
                    f" on bot {bot!r}"
                )
            await db.execute(
                "INSERT INTO chat_links (channel, bot, chat_id, respondent_id, linked_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (channel, bot, chat_id, respondent_id, at),
            )

    async def linked_respondent(
        self, channel: str, bot: str, chat_id: str
    ) -> Respondent | None:
        rows = await self._fetchall(
            f"SELECT {_RESPONDENT_COLUMNS_R} FROM chat_links l"
            " JOIN respondents r ON r.id = l.respondent_id"
            " WHERE l.channel = ? AND l.bot = ? AND l.chat_id = ?",
            (channel, bot, str(chat_id)),
        )
        return Respondent(**dict(rows[0])) if rows else None

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
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO link_attempts (channel, bot, chat_id, outcome, detail, at, key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (channel, bot, str(chat_id), outcome, detail, at, key),
            )
            return cursor.rowcount == 1

    async def count_link_attempts(
        self, channel: str, bot: str, chat_id: str, outcome: str, since: str
    ) -> int:
        rows = await self._fetchall(
            "SELECT count(*) FROM link_attempts"
            " WHERE channel = ? AND bot = ? AND chat_id = ? AND outcome = ? AND at >= ?",
            (channel, bot, str(chat_id), outcome, since),
        )
        return rows[0][0]

    # Outbox -------------------------------------------------------------

    async def enqueue(self, messages: Sequence[OutgoingMessage], at: str) -> int:
        async with self._transaction() as db:
            return await self._enqueue(db, messages, at)

    @staticmethod
    async def _enqueue(
        db: aiosqlite.Connection, messages: Sequence[OutgoingMessage], at: str
    ) -> int:
        # ON CONFLICT (dedupe_key) rather than INSERT OR IGNORE: OR IGNORE would
        # also silently drop rows failing the json_valid CHECK or NOT NULL.
        new = 0
        for m in messages:
            cursor = await db.execute(
                "INSERT INTO outbox (channel, bot, chat_id, method, payload, priority,"
                " dedupe_key, respondent_id, not_before, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
                (m.channel, m.bot, str(m.chat_id), m.method, m.payload, m.priority,
                 m.dedupe_key, m.respondent_id, m.not_before, at, at),
            )
            new += cursor.rowcount
        return new

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
        async with self._transaction() as db:
            cursor = await db.execute(
                f"UPDATE outbox SET {sets} WHERE id = ? AND state = ?",
                (*params, message_id, from_state),
            )
            return cursor.rowcount == 1

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
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE outbox SET state = 'unknown', updated_at = ?,"
                " error = 'process stopped while sending; delivery unknown, not resent'"
                " WHERE channel = ? AND bot = ? AND state = 'sending'",
                (at, channel, bot),
            )
            return cursor.rowcount

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
        outgoing: Sequence[OutgoingMessage] = (),
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
            await self._enqueue(db, outgoing, at)
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
