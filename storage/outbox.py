"""The outbox: messages waiting to be sent, their sending, retries and outcome.

Tables written here: ``outbox`` (also by ``sessions`` — a step's replies, through
``enqueue_messages`` — and by ``reminders_store`` when reminders are handed over or withdrawn).
"""

from __future__ import annotations

import abc
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

from .coordination import serialise
from .records import OUTBOX_STATES, OutgoingMessage, QueuedMessage
from .sqlite_hops import BATCH_ROWS, SQLiteRepository, chunks, placeholders


_OUTBOX_COLUMNS = (
    "id, channel, bot, chat_id, method, payload, priority, dedupe_key, respondent_id, state,"
    " attempts, not_before, created_at, updated_at, result, error"
)


def enqueue_messages(conn: sqlite3.Connection, messages: Sequence[tuple[OutgoingMessage, str]]) -> int:
    """Insert (message, at) pairs in order, in as few statements as the batch size allows.

    ON CONFLICT (dedupe_key) rather than INSERT OR IGNORE: OR IGNORE would also silently drop
    rows failing the json_valid CHECK or NOT NULL. Coalesced messages (``OutgoingMessage.coalesce``)
    for a chat that already has one pending are left out.
    """
    if any(m.coalesce for m, _ in messages):
        messages = _coalesced(conn, messages)
    queued = 0
    for chunk in chunks(messages, BATCH_ROWS):
        queued += conn.execute(
            "INSERT INTO outbox (channel, bot, chat_id, method, payload, priority, dedupe_key, respondent_id,"
            f" not_before, created_at, updated_at) VALUES {placeholders(len(chunk), 11)}"
            " ON CONFLICT (dedupe_key) DO NOTHING",
            [value for m, at in chunk for value in (
                m.channel, m.bot, str(m.chat_id), m.method, m.payload, m.priority, m.dedupe_key,
                m.respondent_id, m.not_before, at, at)],
        ).rowcount
    return queued


def _coalesced(conn: sqlite3.Connection,
               messages: Sequence[tuple[OutgoingMessage, str]]) -> list[tuple[OutgoingMessage, str]]:
    """``messages`` without the coalesced ones whose chat already has a pending message of their
    priority (decided once per chat and priority for the whole batch, so a batch's parts, say an
    error and the question asked again, are kept or dropped together)."""
    waiting: dict[tuple[str, str, str, int], bool] = {}
    for m, _ in messages:
        key = (m.channel, m.bot, str(m.chat_id), m.priority)
        if m.coalesce and key not in waiting:
            waiting[key] = conn.execute(
                "SELECT 1 FROM outbox WHERE channel = ? AND bot = ? AND state = 'pending' AND priority = ?"
                " AND chat_id = ? LIMIT 1", (m.channel, m.bot, m.priority, str(m.chat_id))).fetchone() is not None
    return [(m, at) for m, at in messages
            if not (m.coalesce and waiting[(m.channel, m.bot, str(m.chat_id), m.priority)])]


class Outbox(Protocol):
    """The outbox aggregate's storage: the contract every backend keeps."""

    @abc.abstractmethod
    async def enqueue(self, messages: Sequence[OutgoingMessage], at: str) -> int:
        """Queue messages for sending in one transaction; returns how many were new.

        A message whose ``dedupe_key`` is already in the outbox (or earlier
        in ``messages``) is skipped. Only that uniqueness conflict is
        ignored: an invalid JSON payload or unknown respondent fails the
        whole call and queues nothing. New rows are "pending" with 0
        attempts and created_at = updated_at = ``at``.
        """

    @abc.abstractmethod
    async def due_messages(
        self, channel: str, bot: str, now: str, limit: int
    ) -> list[QueuedMessage]:
        """Up to ``limit`` pending messages of one bot whose not_before is unset or <= ``now``.

        Ordered by priority (smaller first) then id (oldest first). Reading
        does not claim them: call ``mark_sending`` before sending.
        """

    @abc.abstractmethod
    async def mark_sending(self, message_id: int, at: str) -> bool:
        """pending -> sending, just before the platform call; False if not pending."""

    @abc.abstractmethod
    async def mark_sent(self, message_id: int, at: str, result: str | None) -> bool:
        """sending -> sent, keeping the platform's ``result`` (text); False if not sending."""

    @abc.abstractmethod
    async def mark_retry(
        self, message_id: int, at: str, not_before: str, error: str
    ) -> bool:
        """sending -> pending with attempts + 1, ``error`` kept and retry not before ``not_before``.

        False if the message was not in "sending".
        """

    @abc.abstractmethod
    async def mark_failed(self, message_id: int, at: str, error: str) -> bool:
        """sending -> failed (permanent), attempts + 1; False if not sending."""

    @abc.abstractmethod
    async def mark_unknown(self, message_id: int, at: str, error: str) -> bool:
        """sending -> unknown, attempts + 1, ``error`` kept; False if not sending.

        For a send whose request reached the platform (or may have) and whose answer was lost (cut
        half-way, the connection dropped, a read timeout): as for a crash (``recover_outbox``) it
        may have been delivered, so it is never resent.
        """

    @abc.abstractmethod
    async def recover_outbox(self, channel: str, bot: str, at: str) -> int:
        """At start-up, turn this bot's messages left in "sending" into "unknown".

        A row in "sending" means the process died between ``mark_sending``
        and ``mark_sent``/``mark_retry``: the platform may or may not have
        delivered it, and Telegram's Bot API has no idempotency key, so
        resending could show the respondent a duplicate. We choose
        at-most-once for those few messages: they are NOT resent, only
        marked "unknown" (error notes the crash) for an operator or a later
        step to resolve. Only call this when no other process is sending
        for this bot. Returns how many rows were marked.
        """

    @abc.abstractmethod
    async def claim_message(self, message: QueuedMessage, holder: str, at: str, lease_until: str) -> bool:
        """pending -> sending for ``holder`` (a process id) until ``lease_until``, just before the
        platform call; False, writing nothing, if the row is not pending any more (another process
        took it, or it was withdrawn), is not due at ``at`` (a send refused or failed since it was
        read put it back for a later retry: its not_before is the backoff or the platform's
        retry_after, which a stale read must not skip) or another message of its chat is being sent
        (by any process: a chat's messages leave one at a time, in order, whichever process sends
        them).
        """

    @abc.abstractmethod
    async def recover_abandoned(self, at: str) -> int:
        """Turn messages left in "sending" by processes that are gone into "unknown".

        Gone: the row's lease has passed at ``at`` and its claimer is no live process
        (``Coordination.live_processes``) — killed, or a row from before claims were recorded. As
        ``recover_outbox`` does for a crash, they are never resent: the platform may have delivered
        them. Safe to call from any process at any time. Returns how many rows were marked.
        """

    @abc.abstractmethod
    async def outbox_counts(
        self, channel: str | None = None, bot: str | None = None
    ) -> dict[str, int]:
        """Number of outbox rows per state (every state present, 0 if none), optionally filtered."""

    @abc.abstractmethod
    async def chat_reached(self, channel: str, bot: str, chat_id: str) -> bool:
        """Whether the bot has delivered anything to this chat (so it may write there)."""


class SQLiteOutbox(SQLiteRepository):
    """``Outbox`` on SQLite."""

    async def enqueue(self, messages: Sequence[OutgoingMessage], at: str) -> int:
        return await self._write(enqueue_messages, [(message, at) for message in messages])

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

    async def mark_unknown(self, message_id: int, at: str, error: str) -> bool:
        return await self._move(
            message_id,
            "sending",
            "state = 'unknown', attempts = attempts + 1, updated_at = ?, error = ?",
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

    async def claim_message(self, message: QueuedMessage, holder: str, at: str, lease_until: str) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            serialise(conn, f"outbox-chat:{message.channel}:{message.bot}:{message.chat_id}")
            return conn.execute(
                "UPDATE outbox SET state = 'sending', updated_at = ?, claimed_by = ?, lease_until = ?"
                " WHERE id = ? AND state = 'pending' AND (not_before IS NULL OR not_before <= ?)"
                " AND NOT EXISTS (SELECT 1 FROM outbox busy"
                "   WHERE busy.channel = ? AND busy.bot = ? AND busy.chat_id = ? AND busy.state = 'sending')",
                (at, holder, lease_until, message.id, at, message.channel, message.bot,
                 message.chat_id)).rowcount == 1

        return await self._write(body)

    async def recover_abandoned(self, at: str) -> int:
        def body(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE outbox SET state = 'unknown', updated_at = ?,"
                " error = 'process ' || coalesce(claimed_by, '?') || ' stopped while sending;"
                " delivery unknown, not resent'"
                " WHERE state = 'sending' AND coalesce(lease_until, '') <= ?"
                " AND NOT EXISTS (SELECT 1 FROM processes p WHERE p.id = outbox.claimed_by AND p.lease_until > ?)",
                (at, at, at)).rowcount

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

    async def chat_reached(self, channel: str, bot: str, chat_id: str) -> bool:
        row = await self._fetchone(
            "SELECT 1 FROM outbox WHERE channel = ? AND bot = ? AND state = 'sent' AND chat_id = ?"
            " LIMIT 1",
            (channel, bot, str(chat_id)),
        )
        return row is not None
