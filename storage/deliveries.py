"""What became of the replies sent to a chat: the chat core asks whether the person may be
looking at no question (the last reply to them was never confirmed delivered)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Protocol

from .sqlite_hops import SQLiteRepository

#: Outbox states after which the person may not have the message on screen.
UNCERTAIN = ("unknown", "failed")


@dataclass(frozen=True)
class LostReply:
    outbox_id: int
    chat_id: str
    respondent_id: int


class Deliveries(Protocol):
    async def last_reply_uncertain(self, channel: str, bot: str, chat_id: str, respondent_id: int,
                                   priority: int, before_key: str) -> bool:
        """Whether the newest message (``sendMessage``: edits lose no question) of ``priority``
        queued to this chat for this respondent, other than those queued under event key
        ``before_key``, ended "unknown" or "failed"."""

    async def replies_left_unknown(self, channel: str, bot: str, priority: int) -> list[LostReply]:
        """Chats of this bot whose newest message of ``priority`` to a respondent is "unknown"
        (a crash came while it was being sent)."""


class SQLiteDeliveries(SQLiteRepository):
    """Reads of the outbox about what reached a person, through the storage's read queue (one
    thread hop each); ``SQLiteStorage.deliveries``."""

    async def last_reply_uncertain(self, channel: str, bot: str, chat_id: str, respondent_id: int,
                                   priority: int, before_key: str) -> bool:
        # Replies are keyed "<event key>#n" or "<event key>:<what>#n" (bot/chat/surveys.py).
        mine = before_key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

        def read(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT state FROM outbox WHERE respondent_id = ? AND channel = ? AND bot = ? AND chat_id = ?"
                " AND priority = ? AND method = 'sendMessage' AND NOT (COALESCE(dedupe_key, '') LIKE ? ESCAPE '\\' OR COALESCE(dedupe_key, '') LIKE ? ESCAPE '\\')"
                " ORDER BY id DESC LIMIT 1",
                (respondent_id, channel, bot, chat_id, priority, f"{mine}#%", f"{mine}:%")).fetchone()
            return row is not None and row[0] in UNCERTAIN

        return await self._read(read)

    async def replies_left_unknown(self, channel: str, bot: str, priority: int) -> list[LostReply]:
        def read(conn: sqlite3.Connection) -> list[LostReply]:
            rows = conn.execute(
                "SELECT o.id, o.chat_id, o.respondent_id FROM outbox o WHERE o.channel = ? AND o.bot = ?"
                " AND o.state = 'unknown' AND o.priority = ? AND o.method = 'sendMessage' AND o.respondent_id IS NOT NULL"
                " AND o.id = (SELECT max(n.id) FROM outbox n WHERE n.respondent_id = o.respondent_id"
                "             AND n.channel = o.channel AND n.bot = o.bot AND n.chat_id = o.chat_id"
                "             AND n.priority = o.priority AND n.method = 'sendMessage')"
                " ORDER BY o.id", (channel, bot, priority)).fetchall()
            return [LostReply(*row) for row in rows]

        return await self._read(read)


def deliveries(storage) -> Deliveries:
    return storage.deliveries
