"""The simulated people's side of the Zalo emulator, and each bot account's state (its people,
pending updates and webhook).
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.emulation import Broadcast, Inbox
from bot.zalo.emulator.model import EVENT_NAMES, ZaloBotStats, ZaloReceived, _Limiter, _Pending, _now_ms

if TYPE_CHECKING:
    from bot.zalo.emulator import ZaloBotApiEmulator


class SimulatedZaloUser:
    """A person in a private chat with one bot (chat id == user id)."""

    def __init__(self, bot: EmulatedZaloBot, user_id: str, display_name: str) -> None:
        self.bot = bot
        self.id = user_id
        self.display_name = display_name
        self.received: list[ZaloReceived] = []
        self.chat_actions: list[str] = []
        self.blocked = False
        self.started = False  # the bot learns the chat id only after the person writes
        self._inbox: Inbox[ZaloReceived] = Inbox()

    @property
    def as_from(self) -> dict[str, Any]:
        return {"id": self.id, "display_name": self.display_name, "is_bot": False}

    @property
    def as_chat(self) -> dict[str, Any]:
        return {"id": self.id, "chat_type": "PRIVATE"}

    async def send_text(self, text: str) -> str:
        """Write to the bot; returns the update's message_id."""
        return self._send("text", {"text": text})

    async def send_sticker(self, sticker: str = "bfa4e8d5b4905dce0481") -> str:
        return self._send("sticker", {"sticker": sticker,
                                      "url": f"https://zalo-api.zadn.vn/api/emoticon/sticker/webpc?eid={sticker}"})

    async def send_photo(self, url: str = "https://example.org/photo.jpg", caption: str | None = None) -> str:
        content: dict[str, Any] = {"photo": url}
        if caption is not None:
            content["caption"] = caption
        return self._send("photo", content)

    async def send_image(self, data: bytes, caption: str | None = None) -> str:
        """Send a photo as the platform delivers it: `message.photo` is the URL of the image, here
        served by the emulator on 127.0.0.1 (``ZaloBotApiEmulator.images``)."""
        return await self.send_photo(self.bot.host_image(data), caption)

    async def send_unsupported(self) -> str:
        """A message the platform does not pass on (voice, file, location...)."""
        return self._send("unsupported", {})

    async def send_in_group(self, group_id: str, text: str) -> str:
        """Write ``text`` in a group chat the bot is a member of (``chat_type`` "GROUP")."""
        message = {"message_id": self.bot.new_message_id(), "from": self.as_from,
                   "chat": {"id": group_id, "chat_type": "GROUP"}, "date": _now_ms(), "text": text}
        return self.bot.push_update(EVENT_NAMES["text"], message)

    def block(self) -> None:
        """Block the bot: sends to this chat now fail with 403. The bot is not told."""
        self.blocked = True

    def unblock(self) -> None:
        self.blocked = False

    async def wait_for(self, predicate: Callable[[ZaloReceived], bool] | None = None,
                       timeout: float = 10) -> ZaloReceived:
        """The next received message that satisfies ``predicate`` (None: the next message at all).

        Messages are consumed in order from where the previous ``wait_for`` stopped, so a reply
        that arrived before the call is not missed; messages the predicate rejects are skipped.
        """
        return await self._inbox.wait_for(
            lambda message: predicate is None or predicate(message), timeout, self.id,
            lambda: [m.text or m.caption or m.sticker for m in self.received[-3:]])

    def deliver(self, message: ZaloReceived) -> None:
        """Called by the emulator when the bot sends a message to this chat."""
        self.received.append(message)
        self._inbox.record(message)

    def _send(self, kind: str, content: dict[str, Any]) -> str:
        if self.blocked:
            raise RuntimeError(f"user {self.id} blocked the bot; call unblock() first")
        self.started = True
        message = {"message_id": self.bot.new_message_id(), "from": self.as_from, "chat": self.as_chat,
                   "date": _now_ms(), **content}
        return self.bot.push_update(EVENT_NAMES[kind], message)


class EmulatedZaloBot:
    """One bot account on the emulated platform: its people, pending updates and webhook."""

    def __init__(self, emulator: ZaloBotApiEmulator, token: str, name: str) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret or "/" in token:
            raise ValueError(f"bot token must look like '1234567890:AbCd...', got {token!r}")
        self.token = token
        self.id = bot_id
        self.name = name
        self.users: dict[str, SimulatedZaloUser] = {}
        self.stats = ZaloBotStats()
        self.limiter = _Limiter(emulator.limits, emulator.clock)
        self.pending: deque[_Pending] = deque()
        self.changed = Broadcast()
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.webhook_updated_at = 0
        self.webhook_errors: list[str] = []  # the platform does not report them; tests may look
        self.webhook_task: asyncio.Task[None] | None = None
        self._emulator = emulator
        self._history: dict[str, dict[str, Any]] = {}  # message_id -> update, for redeliver()
        self._ids = random.Random(f"{emulator.seed}:{token}")

    @property
    def pending_update_count(self) -> int:
        return len(self.pending)

    def user(self, user_id: str | None = None, display_name: str = "Lan") -> SimulatedZaloUser:
        """The simulated person with ``user_id`` (created on first use; a fresh id when None)."""
        if user_id is None:
            user_id = f"{self._ids.getrandbits(80):020x}"
        if user_id not in self.users:
            self.users[user_id] = SimulatedZaloUser(self, user_id, display_name)
        return self.users[user_id]

    def new_message_id(self) -> str:
        return f"{self._ids.getrandbits(128):032x}"

    def host_image(self, data: bytes) -> str:
        """Keep an image a person sends; the URL the platform gives the bot for it."""
        name = f"{self._ids.getrandbits(64):016x}.jpg"
        self._emulator.images[name] = data
        return f"{self._emulator.base_url}/media/{name}"

    async def redeliver(self, message_id: str) -> None:
        """Hand a person's message out again (at the end of the queue), as the platform may."""
        if message_id not in self._history:
            raise LookupError(f"no message {message_id} was ever sent to bot {self.name!r}")
        self.pending.append(_Pending(self._history[message_id], duplicate=True))
        self.changed.notify()

    def push_update(self, event_name: str, message: dict[str, Any]) -> str:
        update = {"event_name": event_name, "message": message}
        self._history[message["message_id"]] = update
        self.pending.append(_Pending(update))
        self.changed.notify()
        return message["message_id"]

    def take(self) -> _Pending | None:
        """The next update to hand out; by chance, queue a duplicate of it for later."""
        if not self.pending:
            return None
        entry = self.pending.popleft()
        self.stats.updates_delivered += 1
        if entry.duplicate:
            self.stats.duplicates += 1
        elif self._emulator.roll_duplicate():
            self.pending.append(_Pending(entry.update, duplicate=True))
        return entry

    def put_back(self, entry: _Pending) -> None:
        """An update that could not be delivered goes back to the front of the queue."""
        self.stats.updates_delivered -= 1
        if entry.duplicate:
            self.stats.duplicates -= 1
        self.pending.appendleft(entry)
