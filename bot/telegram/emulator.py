"""A local Telegram Bot API server for tests and the demo.

The real bot (aiogram with ``TelegramAPIServer.from_base(url)``) talks HTTP to this emulator on
127.0.0.1, while tests and the demo drive simulated people through :class:`SimulatedUser`.
The point is to catch bot bugs before Telegram does, so the emulator enforces what Telegram
enforces — text and button limits, flood limits with ``retry_after``, blocked users, stale
callback queries, "message is not modified", one poller at a time, webhook/polling exclusivity —
and checks every request against the published spec (``api.json``), recording each breach in
:attr:`BotApiEmulator.violations` so a test can assert there were none.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import mimetypes
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aiohttp import web

from bot.emulation import LOOPBACK_HOSTS, Broadcast, EmulatedApiError, EmulatorServer, Inbox, RateLimiter, RecordedRequest
from bot.telegram.botapi_spec import BotApiSpec, Upload, parse_boolean_text

__all__ = [
    "ApiError",
    "BotApiEmulator",
    "BotStats",
    "EmulatedBot",
    "Limits",
    "ReceivedMessage",
    "Request",
    "SimulatedGroup",
    "SimulatedUser",
    "Upload",
]

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same"
    " as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete"
    " the webhook first"
)
POLLING_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_BOT_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_INTEGER_TEXT = re.compile(r"\s*-?\d+\s*")
_WEBHOOK_PORTS = {80, 88, 443, 8443}
# Update kinds Telegram leaves out unless a bot asks for them in allowed_updates.
_OPT_IN_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}
_CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
}
# Inline buttons need exactly one action besides their label; a label-only button is refused.
_INLINE_BUTTON_LABEL_FIELDS = {"text", "icon_custom_emoji_id", "style"}
# Tags Telegram's HTML parse mode understands; anything else (<br>, <p>, <div>) is a 400.
_HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "code", "pre", "blockquote", "tg-emoji", "tg-time",
}


@dataclass(frozen=True)
class Limits:
    """Telegram's limits (defaults are the documented or observed values), all overridable."""

    per_bot_per_second: float = 30
    per_chat_per_second: float = 1
    per_chat_burst: int = 3
    text_max: int = 4096
    caption_max: int = 1024
    callback_data_max_bytes: int = 64
    buttons_max: int = 100
    callback_query_ttl: float = 15.0
    document_max_bytes: int = 50 * 1024 * 1024
    photo_max_bytes: int = 10 * 1024 * 1024
    # Pauses between webhook delivery attempts; the last one repeats until delivery succeeds,
    # because Telegram keeps undelivered updates instead of dropping them.
    webhook_retry_delays: tuple[float, ...] = (0.05, 0.2, 1.0)
    webhook_timeout: float = 10.0


class Request(RecordedRequest):
    """One API call as the emulator saw it (after ``attach://`` references are resolved)."""


@dataclass
class BotStats:
    """Per-bot counters, so tests can assert e.g. that a broadcast never hit a 429."""

    sent: int = 0
    edits: int = 0
    deleted: int = 0
    callback_answers: int = 0
    too_many_requests: int = 0
    forbidden: int = 0
    bad_requests: int = 0


@dataclass
class ReceivedMessage:
    """A message the bot sent to a simulated user; edits update it in place."""

    message_id: int
    chat_id: int
    date: int
    text: str | None = None
    caption: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    document: dict[str, Any] | None = None
    photo: dict[str, Any] | None = None
    file_data: bytes | None = None
    edits: int = 0
    edit_date: int | None = None
    deleted: bool = False
    source_text: str | None = None  # text as sent, before parse_mode markup was rendered

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        return (self.reply_markup or {}).get("inline_keyboard", [])


class ApiError(EmulatedApiError):
    """An error answer of the Bot API: status code, description, optional retry_after."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(status, description, retry_after)
        self.status = status


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def _forbidden(description: str) -> ApiError:
    return ApiError(403, f"Forbidden: {description}")


def _too_many_requests(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


class _Params:
    """Typed access to request parameters, which arrive as text (forms) or as JSON values."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else str(value)

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
            return int(value)
        raise _bad(f"invalid {name} specified")

    def boolean(self, name: str) -> bool:
        value = self.values.get(name)
        if value is None or isinstance(value, bool):
            return bool(value)
        parsed = parse_boolean_text(str(value))
        if parsed is None:
            raise _bad(f"invalid {name} specified")
        return parsed

    def json(self, name: str) -> Any:
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise _bad(f"can't parse {name} JSON object") from None

    def required(self, name: str, getter: Callable[[str], Any]) -> Any:
        value = getter(name)
        if value is None or value == "":
            raise _bad(f"{name} is empty")
        return value


@dataclass
class _Pending:
    update: dict[str, Any]
    redelivery: bool = False  # a duplicate survives confirmation until it has been handed out

    @property
    def update_id(self) -> int:
        return self.update["update_id"]

    @property
    def kind(self) -> str:
        return next(key for key in self.update if key != "update_id")


@dataclass
class _CallbackQuery:
    user: SimulatedUser
    created: float
    answered: bool = False


@dataclass(frozen=True)
class _StoredFile:
    kind: str  # "document" or "photo": Telegram refuses a file_id of the other kind
    info: dict[str, Any]
    data: bytes | None


class SimulatedUser:
    """A person in a private chat with one bot (chat id == user id)."""

    def __init__(self, bot: EmulatedBot, user_id: int, first_name: str, language_code: str,
                 username: str | None) -> None:
        self.bot = bot
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.username = username
        self.received: list[ReceivedMessage] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.chat_actions: list[str] = []
        self.blocked = False
        self.started = False  # a bot cannot write first: the person must message it once
        self.reply_keyboard: dict[str, Any] | None = None
        self.chat_instance = str(random.Random(f"{bot.id}:{user_id}").getrandbits(62))
        self._message_ids = itertools.count(1)
        self._own_message_ids: set[int] = set()
        self._inbox: Inbox[tuple[str, ReceivedMessage]] = Inbox()  # ("new" | "edit", message)

    @property
    def as_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name,
                                "language_code": self.language_code}
        if self.username:
            user["username"] = self.username
        return user

    @property
    def as_chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username:
            chat["username"] = self.username
        return chat

    async def start(self, payload: str | None = None) -> int:
        """Open the chat (``/start`` or a deep link's ``/start payload``); unblocks a blocked bot."""
        self.unblock()
        return self._send({"text": "/start" if payload is None else f"/start {payload}"})

    async def send_text(self, text: str) -> int:
        return self._send({"text": text})

    async def share_contact(self, phone: str) -> int:
        """Share this person's own phone number, as the request_contact button does."""
        return self._send({"contact": {"phone_number": phone, "first_name": self.first_name,
                                       "user_id": self.id}})

    async def press(self, button: str, message: ReceivedMessage | None = None) -> int:
        """Press an inline button (by label or callback_data); old messages' buttons work too."""
        message = message or self._latest_with_keyboard()
        if message.deleted:
            raise LookupError(f"message {message.message_id} was deleted")
        pressed = next((b for row in message.inline_keyboard for b in row
                        if button in (b.get("text"), b.get("callback_data"))), None)
        if pressed is None:
            raise LookupError(f"no button {button!r} on message {message.message_id}; "
                              f"buttons: {self.inline_buttons(message)}")
        if "callback_data" not in pressed:
            raise ValueError(f"button {button!r} has no callback_data")
        self._ensure_not_blocked()
        query_id = self.bot.register_callback_query(self)
        return self.bot.push_update("callback_query", {
            "id": query_id, "from": self.as_user, "message": self.bot.message_json(message),
            "chat_instance": self.chat_instance, "data": pressed["callback_data"],
        })

    def block(self) -> None:
        """Block the bot: sends to this chat now fail with 403, and the bot is told."""
        if not self.blocked:
            self.blocked = True
            self._push_membership("member", "kicked")

    def unblock(self) -> None:
        if self.blocked:
            self.blocked = False
            self._push_membership("kicked", "member")

    def inline_buttons(self, message: ReceivedMessage | None = None) -> list[tuple[str, str]]:
        """(label, callback_data) of the given message's or the latest inline keyboard."""
        message = message or self._latest_with_keyboard()
        return [(b["text"], b["callback_data"]) for row in message.inline_keyboard for b in row
                if "callback_data" in b]

    async def wait_for(self, predicate: Callable[[ReceivedMessage], bool] | None = None,
                       timeout: float = 10) -> ReceivedMessage:
        """The next message event (new, or an edit) that satisfies ``predicate``.

        Events are consumed in order from where the previous ``wait_for`` stopped, so a reply
        that arrived before the call is not missed; ``predicate=None`` takes the next new message.
        """
        _, message = await self._inbox.wait_for(
            lambda event: predicate(event[1]) if predicate else event[0] == "new", timeout, self.id,
            lambda: [m.text or m.caption for m in self.received[-3:]])
        return message

    def deliver(self, message: ReceivedMessage) -> None:
        """Called by the emulator when the bot sends a message to this chat."""
        self.received.append(message)
        self._record("new", message)

    def edited(self, message: ReceivedMessage) -> None:
        self._record("edit", message)

    def new_message_id(self) -> int:
        """Message ids count per chat, shared by both sides, as in Telegram private chats."""
        return next(self._message_ids)

    def owns_message(self, message_id: int) -> bool:
        return message_id in self._own_message_ids

    def find_received(self, message_id: int) -> ReceivedMessage | None:
        return next((m for m in self.received if m.message_id == message_id and not m.deleted), None)

    def _record(self, kind: str, message: ReceivedMessage) -> None:
        self._inbox.record((kind, message))

    def _send(self, content: dict[str, Any]) -> int:
        self._ensure_not_blocked()
        self.started = True
        message_id = self.new_message_id()
        self._own_message_ids.add(message_id)
        message = {"message_id": message_id, "from": self.as_user, "chat": self.as_chat,
                   "date": int(time.time()), **content}
        text = content.get("text", "")
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        return self.bot.push_update("message", message)

    def _push_membership(self, old_status: str, new_status: str) -> None:
        def member(status: str) -> dict[str, Any]:
            member = {"status": status, "user": self.bot.as_user}
            if status == "kicked":
                member["until_date"] = 0  # 0 = banned forever, i.e. blocked until unblocked
            return member

        self.bot.push_update("my_chat_member", {
            "chat": self.as_chat, "from": self.as_user, "date": int(time.time()),
            "old_chat_member": member(old_status), "new_chat_member": member(new_status),
        })

    def _ensure_not_blocked(self) -> None:
        if self.blocked:
            raise RuntimeError(f"user {self.id} blocked the bot; call start() or unblock() first")

    def _latest_with_keyboard(self) -> ReceivedMessage:
        for message in reversed(self.received):
            if message.inline_keyboard and not message.deleted:
                return message
        raise LookupError(f"user {self.id} has no message with an inline keyboard")


class SimulatedGroup(SimulatedUser):
    """A group, supergroup or channel the bot can be added to: what the bot sends there lands in
    ``received`` (as in a private chat), and members write to it with :meth:`say`.

    Telegram tells the bot it was added or removed with a ``my_chat_member`` update; ``leaveChat``
    takes it out again, after which sends to the chat fail with 403 and members' messages no
    longer reach it.
    """

    def __init__(self, bot: EmulatedBot, chat_id: int, title: str, kind: str) -> None:
        if kind not in ("group", "supergroup", "channel"):
            raise ValueError(f"a group chat is a group, a supergroup or a channel, not {kind!r}")
        super().__init__(bot, chat_id, title, "vi", None)
        self.title = title
        self.kind = kind
        self.started = True  # the bot may write in a group it was added to
        self.bot_present = False

    @property
    def as_chat(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.kind, "title": self.title}

    def add_bot(self, by: SimulatedUser) -> int:
        """``by`` adds the bot (as an administrator to a channel, as a member elsewhere)."""
        self.bot_present = True
        return self._push_bot_membership(by.as_user, "left", "administrator" if self.kind == "channel" else "member")

    def bot_left(self) -> None:
        """Called by the emulator when the bot calls leaveChat."""
        status = "administrator" if self.kind == "channel" else "member"
        self.bot_present = False
        self._push_bot_membership(self.bot.as_user, status, "left")

    async def say(self, member: SimulatedUser, text: str) -> int:
        """``member`` writes ``text`` in the group (commands as typed, e.g. ``/start CODE``)."""
        if self.kind == "channel":
            raise ValueError("members do not write in a channel")
        if not self.bot_present:
            raise RuntimeError(f"the bot is not in group {self.id}: add_bot() first")
        message_id = self.new_message_id()
        message = {"message_id": message_id, "from": member.as_user, "chat": self.as_chat,
                   "date": int(time.time()), "text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        return self.bot.push_update("message", message)

    def _push_bot_membership(self, sender: dict[str, Any], old_status: str, new_status: str) -> int:
        def member(status: str) -> dict[str, Any]:
            member: dict[str, Any] = {"status": status, "user": self.bot.as_user}
            if status == "administrator":
                member.update(dict.fromkeys(_ADMIN_RIGHTS, False), can_manage_chat=True, can_post_messages=True)
            return member

        return self.bot.push_update("my_chat_member", {
            "chat": self.as_chat, "from": sender, "date": int(time.time()),
            "old_chat_member": member(old_status), "new_chat_member": member(new_status),
        })


#: ChatMemberAdministrator's required rights (api.json), and can_send_welcome_messages, which the
#: installed aiogram requires too.
_ADMIN_RIGHTS = ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                 "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users",
                 "can_post_stories", "can_edit_stories", "can_delete_stories", "can_send_welcome_messages")


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
                    "document": message.document,
                    "photo": [message.photo] if message.photo else None}
        result.update({key: value for key, value in optional.items() if value is not None})
        if message.inline_keyboard:  # reply keyboards are not part of the Message object
            result["reply_markup"] = message.reply_markup
        return result


Handler = Callable[[EmulatedBot, _Params], Awaitable[Any]]


class BotApiEmulator(EmulatorServer[EmulatedBot]):
    """An aiohttp server speaking the Bot API for any number of emulated bots.

    :meth:`start` returns the base URL for aiogram; :meth:`stop` ends long polls at once (with
    no updates), stops webhook delivery and closes the server.
    """

    request_type = Request
    error_type = ApiError
    limits: Limits
    requests: list[Request]  # type: ignore[assignment]

    def __init__(self, *, spec_path: Path | None = None, limits: Limits = Limits(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(limits, clock)
        self.spec = BotApiSpec.load(spec_path)
        self._files: dict[str, _StoredFile] = {}
        self._file_ids = itertools.count(1)
        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._send_chat_action,
            "leaveChat": self._leave_chat,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
        }
        self._handler_by_lower = {name.lower(): name for name in self._handlers}

    @property
    def stats(self) -> dict[str, BotStats]:
        """Counters per bot token."""
        return super().stats

    @property
    def client_max_size(self) -> int:  # type: ignore[override]
        return self.limits.document_max_bytes + 1024 * 1024

    def add_bot(self, token: str, username: str) -> EmulatedBot:
        bot = EmulatedBot(token, username, self.clock, self.limits)
        self._bots[token] = bot
        return bot

    # --- HTTP ----------------------------------------------------------------------------------

    async def _read_params(self, request: web.Request, method: str) -> dict[str, Any]:
        params = dict(request.query)
        params.update(await _read_body(request.headers, request.content))
        return params

    async def _call(self, bot: EmulatedBot, name: str, params: dict[str, Any],
                    request: web.Request | None = None) -> tuple[int, dict[str, Any]]:
        """Check and run one method call; record it; return (HTTP status, JSON body)."""
        method = self.spec.method_name(name) if self.spec else None
        method = method or self._handler_by_lower.get(name.lower())
        if method is None:
            self._record(bot.token, name, params, 404)
            return 404, ApiError(404, "Not Found").body()
        return await self._answer(bot, method, params, lambda: self._run(bot, method, params))

    async def _run(self, bot: EmulatedBot, method: str, params: dict[str, Any]) -> Any:
        self._check_spec(method, params)
        handler = self._handlers.get(method)
        if handler is None:
            self.violations.append(f"{method}: not implemented by the emulator")
            raise _bad("method not implemented by the emulator")
        return await handler(bot, _Params(params))

    def _check_spec(self, method: str, params: dict[str, Any]) -> None:
        if self.spec is None:
            return
        problems = self.spec.check_call(method, params)
        if problems:
            self.violations += [f"{method}: {problem}" for problem in problems]
            raise _bad("; ".join(problems))

    # --- updates: long polling and webhooks ---------------------------------------------------------

    async def _get_me(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        return {**bot.as_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    async def _get_updates(self, bot: EmulatedBot, p: _Params) -> list[dict[str, Any]]:
        """Long polling: wait up to ``timeout`` seconds; a newer poll ends an older one with 409."""
        if bot.webhook_url:
            raise ApiError(409, WEBHOOK_CONFLICT)
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = max(p.integer("timeout") or 0, 0)
        if "allowed_updates" in p.values:
            bot.allowed_updates = p.json("allowed_updates")
        bot.confirm(p.integer("offset"))
        bot.poll_generation += 1
        generation = bot.poll_generation
        bot.changed.notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if bot.poll_generation != generation:
                raise ApiError(409, POLLING_CONFLICT)
            if bot.webhook_url:
                raise ApiError(409, WEBHOOK_CONFLICT)
            batch = bot.deliverable(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._closing:
                for entry in batch:
                    entry.redelivery = False
                return [entry.update for entry in batch]
            await bot.changed.wait(remaining)

    async def _set_webhook(self, bot: EmulatedBot, p: _Params) -> bool:
        url = p.text("url")
        if url is None:
            raise _bad("url is empty")
        if url == "":  # Telegram's documented way to switch back to getUpdates
            return await self._delete_webhook(bot, p)
        secret = p.text("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
            raise _bad("secret token contains unallowed characters")
        _check_webhook_url(url)
        max_connections = p.integer("max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise _bad("bad webhook: max_connections must be between 1 and 100")
        if "allowed_updates" in p.values:
            bot.allowed_updates = p.json("allowed_updates")
        if p.boolean("drop_pending_updates"):
            bot.pending.clear()
        bot.webhook_url, bot.webhook_secret = url, secret
        bot.webhook_max_connections = max_connections
        bot.webhook_last_error = None
        self._start_webhook_delivery(bot)
        bot.changed.notify()  # a waiting getUpdates must now fail with 409
        return True

    async def _delete_webhook(self, bot: EmulatedBot, p: _Params) -> bool:
        await self._stop_webhook_delivery(bot)
        bot.webhook_url = bot.webhook_secret = None
        if p.boolean("drop_pending_updates"):
            bot.pending.clear()
        return True

    async def _get_webhook_info(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        info: dict[str, Any] = {"url": bot.webhook_url or "", "has_custom_certificate": False,
                                "pending_update_count": bot.pending_update_count}
        if bot.webhook_url:
            info["max_connections"] = bot.webhook_max_connections
        if bot.webhook_last_error:
            info["last_error_date"], info["last_error_message"] = bot.webhook_last_error
        if bot.allowed_updates:
            info["allowed_updates"] = bot.allowed_updates
        return info

    def _webhook_next(self, bot: EmulatedBot) -> _Pending | None:
        batch = bot.deliverable(1)
        return batch[0] if batch else None

    def _webhook_delivered(self, bot: EmulatedBot, entry: _Pending) -> None:
        if entry in bot.pending:
            bot.pending.remove(entry)

    def _webhook_failed(self, bot: EmulatedBot, entry: _Pending, error: str) -> None:
        bot.webhook_last_error = (int(time.time()), error)

    async def _post_update(self, bot: EmulatedBot, update: dict[str, Any]) -> str | None:
        """Deliver one update; None on success, else the error Telegram would report.

        The webhook may answer with a method call in its body (aiogram does this when handling
        in the foreground); Telegram executes it without telling the bot the result.
        """
        assert bot.webhook_url is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": bot.webhook_secret} if bot.webhook_secret else {}
        try:
            status, reason, reply = await self._post_json(
                bot.webhook_url, update, headers, lambda response: _read_body(response.headers, response.content))
        except (aiohttp.ClientError, TimeoutError) as error:
            return f"Connection failed: {error or type(error).__name__}"
        except ApiError as error:
            return f"Wrong response from the webhook: {error.description}"
        if not 200 <= status < 300:
            return f"Wrong response from the webhook: {status} {reason}"
        if "method" in reply:
            method = str(reply.pop("method"))
            await self._call(bot, method, reply)
        return None

    # --- sending, editing, deleting -------------------------------------------------------------

    def _recipient(self, bot: EmulatedBot, p: _Params) -> SimulatedUser:
        """The private chat named by chat_id, if the bot may write there."""
        chat_id = p.required("chat_id", p.text)
        user = bot.users.get(int(chat_id)) if _INTEGER_TEXT.fullmatch(chat_id) else None
        if user is None:
            raise _bad("chat not found")
        if isinstance(user, SimulatedGroup) and not user.bot_present:
            raise _forbidden(f"bot is not a member of the {user.kind} chat")
        if user.blocked:
            raise _forbidden("bot was blocked by the user")
        if not user.started:
            raise _forbidden("bot can't initiate conversation with a user")
        return user

    async def _send_message(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        user = self._recipient(bot, p)
        text = p.required("text", p.text)
        return self._deliver(bot, user, p, text=self._visible(text, p, self.limits.text_max, "message"),
                             source_text=text)

    async def _send_document(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        return await self._send_file(bot, p, "document")

    async def _send_photo(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        return await self._send_file(bot, p, "photo")

    async def _send_file(self, bot: EmulatedBot, p: _Params, kind: str) -> dict[str, Any]:
        user = self._recipient(bot, p)
        stored = self._file(p, kind)
        caption = p.text("caption")
        if caption:
            caption = self._visible(caption, p, self.limits.caption_max, "caption")
        return self._deliver(bot, user, p, caption=caption or None, file_data=stored.data, **{kind: stored.info})

    def _deliver(self, bot: EmulatedBot, user: SimulatedUser, p: _Params, **content: Any) -> dict[str, Any]:
        """Everything sendMessage/sendDocument/sendPhoto share: markup checks, limits, storage."""
        markup = self._reply_markup(p)
        bot.limiter.acquire(user.id)
        message = ReceivedMessage(message_id=user.new_message_id(), chat_id=user.id, date=int(time.time()),
                                  parse_mode=p.text("parse_mode"), reply_markup=markup, **content)
        if markup is not None and ("keyboard" in markup or "remove_keyboard" in markup):
            user.reply_keyboard = markup if "keyboard" in markup else None
        user.deliver(message)
        bot.stats.sent += 1
        return bot.message_json(message)

    async def _edit_message_text(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        def change(message: ReceivedMessage) -> dict[str, Any]:
            if message.text is None:
                raise _bad("there is no text in the message to edit")
            text = p.required("text", p.text)
            return {"text": self._visible(text, p, self.limits.text_max, "message"), "source_text": text,
                    "parse_mode": p.text("parse_mode")}

        return self._edit(bot, p, change)

    async def _edit_message_reply_markup(self, bot: EmulatedBot, p: _Params) -> dict[str, Any]:
        return self._edit(bot, p, lambda message: {})

    def _edit(self, bot: EmulatedBot, p: _Params,
              change: Callable[[ReceivedMessage], dict[str, Any]]) -> dict[str, Any]:
        """Shared by the edit methods. Omitting reply_markup removes the inline keyboard, as in Telegram."""
        if p.raw("inline_message_id") is not None:
            self.violations.append("edit: inline_message_id is not implemented by the emulator")
            raise _bad("inline messages are not implemented by the emulator")
        user = self._recipient(bot, p)
        message_id = p.required("message_id", p.integer)
        message = user.find_received(message_id)
        if message is None:
            mine = user.owns_message(message_id)
            raise _bad("message can't be edited" if mine else "message to edit not found")
        updates = {**change(message), "reply_markup": self._reply_markup(p)}
        if updates["reply_markup"] is not None and "inline_keyboard" not in updates["reply_markup"]:
            raise _bad("inline keyboard expected")
        if all(getattr(message, key) == value for key, value in updates.items()):
            raise _bad(NOT_MODIFIED)
        bot.limiter.acquire(user.id)
        for key, value in updates.items():
            setattr(message, key, value)
        message.edits += 1
        message.edit_date = int(time.time())
        user.edited(message)
        bot.stats.edits += 1
        return bot.message_json(message)

    async def _delete_message(self, bot: EmulatedBot, p: _Params) -> bool:
        user = self._recipient(bot, p)
        message = user.find_received(p.required("message_id", p.integer))
        if message is None:
            raise _bad("message to delete not found")
        message.deleted = True
        bot.stats.deleted += 1
        return True

    def _visible(self, text: str, p: _Params, limit: int, what: str) -> str:
        """The text the person sees (markup rendered), checked against the length limit."""
        visible = _render(text, p.text("parse_mode"))
        if what == "message" and not visible.strip():
            raise _bad(f"{what} text is empty")
        if len(visible) > limit:
            raise _bad("message is too long" if what == "message" else "message caption is too long")
        return visible

    def _reply_markup(self, p: _Params) -> dict[str, Any] | None:
        """Decode reply_markup and enforce Telegram's button limits."""
        markup = p.json("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        for key in ("inline_keyboard", "keyboard"):
            if key in markup:
                buttons = _buttons(markup[key])
                if len(buttons) > self.limits.buttons_max:
                    raise _bad("reply markup is too long")
                if key == "inline_keyboard":
                    for button in buttons:
                        self._check_inline_button(button)
        return markup

    def _check_inline_button(self, button: dict[str, Any]) -> None:
        if not set(button) - _INLINE_BUTTON_LABEL_FIELDS:
            raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
        if "callback_data" in button:
            size = len(str(button["callback_data"]).encode("utf-8"))
            if not 1 <= size <= self.limits.callback_data_max_bytes:
                raise _bad("BUTTON_DATA_INVALID")

    def _file(self, p: _Params, kind: str) -> _StoredFile:
        """The file of sendDocument/sendPhoto: an upload, a known file_id, or an HTTP URL."""
        value = p.raw(kind)
        if isinstance(value, Upload):
            return self._store_upload(value, kind)
        if not value:
            raise _bad(f"there is no {kind} in the request")
        value = str(value)
        if value in self._files:
            stored = self._files[value]
            if stored.kind != kind:
                raise _bad(f"wrong file identifier/HTTP URL specified: can't use file of type "
                           f"{stored.kind.title()} as {kind.title()}")
            return stored
        if urlsplit(value).scheme in ("http", "https"):
            name = Path(urlsplit(value).path).name or kind
            return _StoredFile(kind, self._file_info(kind, name, size=None), None)
        raise _bad("wrong file identifier/HTTP URL specified")

    def _store_upload(self, upload: Upload, kind: str) -> _StoredFile:
        limit = self.limits.photo_max_bytes if kind == "photo" else self.limits.document_max_bytes
        if upload.size > limit:
            raise ApiError(413, "Request Entity Too Large")
        if upload.size == 0:
            raise _bad("file must be non-empty")
        stored = _StoredFile(kind, self._file_info(kind, upload.filename, upload.size, upload.content_type),
                             upload.data)
        self._files[stored.info["file_id"]] = stored
        return stored

    def _file_info(self, kind: str, name: str, size: int | None,
                   content_type: str | None = None) -> dict[str, Any]:
        number = next(self._file_ids)
        info: dict[str, Any] = {"file_id": f"{kind[:3].upper()}AAQ{number:08d}emu",
                                "file_unique_id": f"AgAD{number:06d}"}
        if kind == "photo":  # the emulator does not decode images, so dimensions are unknown
            info.update(width=0, height=0)
        else:
            guessed = mimetypes.guess_type(name)[0]
            info.update(file_name=name, mime_type=guessed or content_type or "application/octet-stream")
        if size is not None:
            info["file_size"] = size
        return info

    # --- everything else ------------------------------------------------------------------------

    async def _answer_callback_query(self, bot: EmulatedBot, p: _Params) -> bool:
        query_id = p.required("callback_query_id", p.text)
        text = p.text("text")
        if text is not None and len(text) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        query = bot.take_callback_query(query_id, self.limits.callback_query_ttl)
        answer: dict[str, Any] = {"callback_query_id": query_id, "text": text,
                                  "show_alert": p.boolean("show_alert"), "url": p.text("url"),
                                  "cache_time": p.integer("cache_time")}
        query.user.callback_answers.append({k: v for k, v in answer.items() if v is not None})
        bot.stats.callback_answers += 1
        return True

    async def _leave_chat(self, bot: EmulatedBot, p: _Params) -> bool:
        chat = self._recipient(bot, p)
        if not isinstance(chat, SimulatedGroup):
            raise _bad("chat member status can't be changed in private chats")
        chat.bot_left()
        return True

    async def _send_chat_action(self, bot: EmulatedBot, p: _Params) -> bool:
        user = self._recipient(bot, p)
        action = p.required("action", p.text)
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        user.chat_actions.append(action)
        return True

    async def _set_my_commands(self, bot: EmulatedBot, p: _Params) -> bool:
        commands = p.json("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("commands must be a list of at most 100 BotCommand")
        for command in commands:
            if not isinstance(command, dict) or not _BOT_COMMAND.fullmatch(str(command.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        bot.commands[_commands_key(p)] = commands
        return True

    async def _get_my_commands(self, bot: EmulatedBot, p: _Params) -> list[dict[str, Any]]:
        return bot.commands.get(_commands_key(p), [])

    async def _delete_my_commands(self, bot: EmulatedBot, p: _Params) -> bool:
        bot.commands.pop(_commands_key(p), None)
        return True


# --- helpers -------------------------------------------------------------------------------------


async def _read_body(headers: Any, content: aiohttp.StreamReader) -> dict[str, Any]:
    """Parameters from a JSON, urlencoded or multipart body (server requests and webhook replies).

    Multipart file parts become :class:`Upload` values; ``attach://name`` references at the top
    level (aiogram's way of sending files) are replaced by the part they name.
    """
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        params: dict[str, Any] = {}
        async for part in aiohttp.MultipartReader(headers, content):
            if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                raise _bad("can't parse multipart form")
            data = await part.read(decode=True)
            params[part.name] = (
                Upload(part.filename, part.headers.get("Content-Type", "application/octet-stream"), bytes(data))
                if part.filename is not None else data.decode(part.get_charset("utf-8"))
            )
        return _resolve_attachments(params)
    raw = await content.read()
    if content_type == "application/json":
        try:
            decoded = json.loads(raw or b"{}")
        except ValueError:
            raise _bad("can't parse JSON request body") from None
        if not isinstance(decoded, dict):
            raise _bad("JSON request body must be an object")
        return decoded
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    return {}


def _resolve_attachments(params: dict[str, Any]) -> dict[str, Any]:
    attached = {value.removeprefix("attach://") for value in params.values()
                if isinstance(value, str) and value.startswith("attach://")}
    return {
        name: params.get(value.removeprefix("attach://"), value)
        if isinstance(value, str) and value.startswith("attach://") else value
        for name, value in params.items() if name not in attached
    }


def _buttons(rows: Any) -> list[dict[str, Any]]:
    """All buttons of a keyboard, after checking it is a list of rows of button objects."""
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad("can't parse reply keyboard markup JSON object: field must be an Array of Array")
    buttons = [button for row in rows for button in row]
    if not all(isinstance(button, dict) and isinstance(button.get("text"), str) for button in buttons):
        raise _bad("can't parse keyboard button: text must be a String")
    return buttons


def _check_webhook_url(url: str) -> None:
    """HTTPS on ports 443/80/88/8443, as Telegram requires; plain HTTP is allowed on loopback only,
    because the emulator's webhooks are local test servers without certificates."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad("bad webhook: invalid webhook URL specified")
    if parts.hostname in LOOPBACK_HOSTS:
        return
    if parts.scheme != "https":
        raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
    if (parts.port or 443) not in _WEBHOOK_PORTS:
        raise _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")


def _commands_key(p: _Params) -> tuple[str, str]:
    scope = p.json("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), p.text("language_code") or ""


def _utf16_len(text: str) -> int:
    """Entity offsets and lengths are measured in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _render(text: str, parse_mode: str | None) -> str:
    """The visible text. HTML is parsed strictly like Telegram; Markdown modes are kept verbatim."""
    if parse_mode is None or parse_mode.lower() in ("markdown", "markdownv2"):
        return text
    if parse_mode.lower() != "html":
        raise _bad("unsupported parse_mode")
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    return parser.visible()


class _TelegramHtml(HTMLParser):
    """Telegram's HTML subset: unknown tags and unbalanced tags are errors, not ignored."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._open: list[str] = []
        self._parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise _bad(f'can\'t parse entities: Unsupported start tag "{tag}"')
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1] != tag:
            expected = f'"</{self._open[-1]}>"' if self._open else "no end tag"
            raise _bad(f'can\'t parse entities: Unmatched end tag "</{tag}>", expected {expected}')
        self._open.pop()

    def handle_data(self, data: str) -> None:
        self._parts.append(data)

    def visible(self) -> str:
        if self._open:
            tag = self._open[-1]
            raise _bad(f'can\'t parse entities: Can\'t find end tag corresponding to start tag "{tag}"')
        return "".join(self._parts)
