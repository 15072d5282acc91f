"""One bot account on the emulated server: its users, pending updates and delivery mode."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from typing import Any

from bot.emulation import Broadcast, RateLimiter
from bot.telegram.emulator.model import (
    QUERY_TOO_OLD, _OPT_IN_UPDATES, BotStats, Limits, ReceivedMessage, _CallbackQuery, _Pending, _bad,
    _too_many_requests,
)
from bot.telegram.emulator.people import SimulatedGroup, SimulatedUser


class EmulatedBot:
    """One bot account on the emulated server: its users, updates and delivery mode."""

    def __init__(self, token: str, username: str, clock: Callable[[], float], limits: Limits) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError(f"bot token must look like '123456:ABC...', got {token!r}")
        self.token = token
        self.id = int(bot_id)
        self.username = username
        self.first_name = username.removesuffix("bot").removesuffix("_") or username
        self.users: dict[int, SimulatedUser] = {}
        self.stats = BotStats()
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.webhook_max_connections = 40
        self.webhook_last_error: tuple[int, str] | None = None
        self.allowed_updates: list[str] | None = None
        self.limiter = RateLimiter(limits, clock, _too_many_requests)
        self.pending: list[_Pending] = []
        self.changed = Broadcast()
        self.poll_generation = 0
        self.webhook_task: asyncio.Task[None] | None = None
        self._clock = clock
        self._history: dict[int, dict[str, Any]] = {}
        seeded = random.Random(token)
        self._update_ids = itertools.count(seeded.randrange(100_000_000, 900_000_000))
        self._user_ids = itertools.count(seeded.randrange(5_000_000_000, 6_000_000_000, 1000))
        self._query_ids = itertools.count(seeded.randrange(10**17, 9 * 10**17))
        self._group_ids = itertools.count(seeded.randrange(1_000_000_000_000, 1_000_100_000_000))
        self._queries: dict[str, _CallbackQuery] = {}
        #: Files people sent to this bot (a photo, a voice note...): file_id → (file_path, bytes),
        #: what getFile and the file download serve. `file_failures`: downloads to refuse (tests).
        self.user_files: dict[str, tuple[str, bytes]] = {}
        self.file_failures = 0
        self._file_numbers = itertools.count(1)

    def keep_user_file(self, kind: str, data: bytes, extension: str) -> dict[str, Any]:
        """Store a file a person sends; its file_id and file_unique_id, as Telegram gives them."""
        number = next(self._file_numbers)
        file_id = f"{kind[:3].upper()}BQ{number:08d}user"
        folder = {"photo": "photos", "voice": "voice", "audio": "music", "video": "videos",
                  "video_note": "video_notes"}.get(kind, "documents")
        self.user_files[file_id] = (f"{folder}/file_{number}{extension}", data)
        return {"file_id": file_id, "file_unique_id": f"AQAD{number:06d}u"}

    @property
    def as_user(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    @property
    def pending_update_count(self) -> int:
        return len(self.pending)

    def user(self, user_id: int | None = None, first_name: str = "Lan", language_code: str = "vi",
             username: str | None = None) -> SimulatedUser:
        """The simulated person with ``user_id`` (created on first use; a fresh id when None)."""
        if user_id is None:
            user_id = next(self._user_ids)
        if user_id not in self.users:
            self.users[user_id] = SimulatedUser(self, user_id, first_name, language_code, username)
        return self.users[user_id]

    def group(self, kind: str = "group", title: str = "Tổ dân phố 3") -> SimulatedGroup:
        """A new group, supergroup or channel (a negative chat id, as Telegram gives them)."""
        chat_id = -next(self._group_ids)
        group = SimulatedGroup(self, chat_id, title, kind)
        self.users[chat_id] = group  # chats by id: a group's messages are received like a person's
        return group

    async def redeliver(self, update_id: int) -> None:
        """Deliver an already-delivered update again, as Telegram's at-least-once delivery may."""
        if update_id not in self._history:
            raise LookupError(f"no update {update_id} was ever created for @{self.username}")
        entry = _Pending(self._history[update_id], redelivery=True)
        position = next((i for i, p in enumerate(self.pending) if p.update_id > update_id), len(self.pending))
        self.pending.insert(position, entry)
        self.changed.notify()

    def push_update(self, kind: str, payload: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        update = {"update_id": update_id, kind: payload}
        self._history[update_id] = update
        self.pending.append(_Pending(update))
        self.changed.notify()
        return update_id

    def register_callback_query(self, user: SimulatedUser) -> str:
        query_id = str(next(self._query_ids))
        self._queries[query_id] = _CallbackQuery(user, self._clock())
        return query_id

    def take_callback_query(self, query_id: str, ttl: float) -> _CallbackQuery:
        """The query being answered; each may be answered once and only while fresh."""
        query = self._queries.get(query_id)
        if query is None or query.answered or self._clock() - query.created > ttl:
            raise _bad(QUERY_TOO_OLD)
        query.answered = True
        return query

    def allows(self, entry: _Pending) -> bool:
        if self.allowed_updates:
            return entry.kind in self.allowed_updates
        return entry.kind not in _OPT_IN_UPDATES

    def deliverable(self, limit: int) -> list[_Pending]:
        """The next ``limit`` pending updates, dropping kinds the bot did not ask for."""
        self.pending = [entry for entry in self.pending if self.allows(entry)]
        return self.pending[:limit]

    def confirm(self, offset: int | None) -> None:
        """getUpdates' offset: forget updates before it (negative: keep only the last -offset)."""
        if offset is None:
            return
        if offset < 0:
            self.pending = self.pending[offset:]
        else:
            self.pending = [p for p in self.pending if p.update_id >= offset or p.redelivery]

    def message_json(self, message: ReceivedMessage) -> dict[str, Any]:
        """The Message object for one of the bot's own messages, as Telegram returns it."""
        result: dict[str, Any] = {"message_id": message.message_id, "from": self.as_user,
                                  "chat": self.users[message.chat_id].as_chat, "date": message.date}
        optional = {"edit_date": message.edit_date, "text": message.text, "caption": message.caption,
                    "document": message.document, "audio": message.audio, "video": message.video,
                    "photo": [message.photo] if message.photo else None}
        result.update({key: value for key, value in optional.items() if value is not None})
        if message.inline_keyboard:  # reply keyboards are not part of the Message object
            result["reply_markup"] = message.reply_markup
        return result
