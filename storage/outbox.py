"""The outbox: messages waiting to be sent, their sending, retries and outcome.

Tables written here: ``outbox`` (also by ``sessions`` — a step's replies, through
``enqueue_messages`` — and by ``reminders_store`` when reminders are handed over or withdrawn).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

from .records import OUTBOX_STATES, OutgoingMessage, QueuedMessage
from .sqlite_hops import BATCH_ROWS, SQLiteRepository, chunks, placeholders


_OUTBOX_COLUMNS = (
    "id, channel, bot, chat_id, method, payload, priority, dedupe_key, respondent_id, state,"
    " attempts, not_before, created_at, updated_at, result, error"
)


def enqueue_messages(conn: sqlite3.Connection, messages: Sequence[tuple[OutgoingMessage, str]]) -> int:
    """Insert (message, at) pairs in order, in as few statements as the batch size allows.

    ON CONFLICT (dedupe_key) rather than INSERT OR IGNORE: OR IGNORE would also silently drop
    rows failing the json_valid CHECK or NOT NULL.
    """
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


class Outbox(Protocol):
    """The outbox aggregate's storage (see ``storage/README.md``)."""

    async def enqueue(self, messages: Sequence[OutgoingMessage], at: str) -> int:
        """Queue messages for sending in one transaction; returns how many were new."""

    async def due_messages(
        self, channel: str, bot: str, now: str, limit: int
    ) -> list[QueuedMessage]:
        """Up to ``limit`` pending messages of one bot whose not_before is unset or <= ``now``."""

    async def mark_sending(self, message_id: int, at: str) -> bool:
        """pending -> sending, just before the platform call; False if not pending."""

    async def mark_sent(self, message_id: int, at: str, result: str | None) -> bool:
        """sending -> sent, keeping the platform's ``result`` (text); False if not sending."""

    async def mark_retry(
        self, message_id: int, at: str, not_before: str, error: str
    ) -> bool:
        """sending -> pending with attempts + 1, ``error`` kept and retry not before ``not_before``."""

    async def mark_failed(self, message_id: int, at: str, error: str) -> bool:
        """sending -> failed (permanent), attempts + 1; False if not sending."""

    async def recover_outbox(self, channel: str, bot: str, at: str) -> int:
        """At start-up, turn this bot's messages left in "sending" into "unknown"."""

    async def outbox_counts(
        self, channel: str | None = None, bot: str | None = None
    ) -> dict[str, int]:
        """Number of outbox rows per state (every state present, 0 if none), optionally filtered."""

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

    async def chat_reached(self, channel: str, bot: str, chat_id: str) -> bool:
        row = await self._fetchone(
            "SELECT 1 FROM outbox WHERE channel = ? AND bot = ? AND state = 'sent' AND chat_id = ?"
            " LIMIT 1",
            (channel, bot, str(chat_id)),
        )
        return row is not None
