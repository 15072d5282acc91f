"""A local Zalo Bot Platform API server for tests and the demo.

The real bot (:class:`bot.zalo.client.ZaloClient` with the emulator's base URL) talks HTTP to
this emulator on 127.0.0.1, while tests and the demo drive simulated people through
:class:`SimulatedZaloUser` — the same way as :mod:`bot.telegram.emulator`'s ``SimulatedUser``.

Zalo publishes no machine-readable spec, so each method's parameters and their types are listed
in :data:`METHOD_PARAMETERS`; a call outside that table (unknown method, unknown or missing
parameter, wrong type, GET for anything but getMe, a body that is not a JSON object) is answered
with an error and recorded in :attr:`ZaloBotApiEmulator.violations`, so a test can assert there
were none.

What the emulator enforces, because the platform does or may:
- ``getUpdates`` long-polls and hands out ONE update (not a list) or 408 "Request timeout";
  there is no offset, and delivery is at-least-once: :meth:`EmulatedZaloBot.redeliver` and
  ``duplicate_probability`` hand a message out again.
- The bot cannot write first: a chat id is usable only after the person wrote (403).
- A person who blocked the bot cannot be written to (403, :data:`USER_BLOCKED`).
- ``sendMessage`` text is 1..2000 characters; rate limits are undocumented, so they are
  configurable (:class:`ZaloLimits`) and answered with 429 and ``parameters.retry_after``.
- Webhooks: updates are POSTed as ``{"ok": true, "result": <update>}`` with the secret in
  :data:`SECRET_HEADER`; ``getUpdates`` is refused while a webhook is set.
Error codes the platform does not document are named constants here, so they are easy to change.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bot.emulation import LOOPBACK_HOSTS, Broadcast, EmulatedApiError, EmulatorServer, Inbox, RateLimiter, RecordedRequest

__all__ = [
    "CHAT_NOT_STARTED",
    "METHOD_PARAMETERS",
    "SECRET_HEADER",
    "USER_BLOCKED",
    "WEBHOOK_ACTIVE",
    "EmulatedZaloBot",
    "SimulatedZaloUser",
    "ZaloApiError",
    "ZaloBotApiEmulator",
    "ZaloBotStats",
    "ZaloLimits",
    "ZaloReceived",
    "ZaloRequest",
]

#: Header carrying setWebhook's secret_token on every webhook POST.
SECRET_HEADER = "X-Bot-Api-Secret-Token"
#: Error codes and descriptions the platform does not document; the emulator's choices.
FORBIDDEN = 403
USER_BLOCKED = "user blocked the bot"
CHAT_NOT_STARTED = "the bot cannot write first: this person has never messaged the bot"
TIMEOUT = 408
REQUEST_TIMEOUT = "Request timeout"
WEBHOOK_CONFLICT = 409
WEBHOOK_ACTIVE = "webhook is active: call deleteWebhook before getUpdates"
TOO_MANY_REQUESTS = "Too many requests"
TEXT_TOO_LONG = "text too long"

#: Event names of updates, by the kind of message the person sent.
EVENT_NAMES = {
    "text": "message.text.received",
    "photo": "message.image.received",
    "sticker": "message.sticker.received",
    "unsupported": "message.unsupported.received",
}
CHAT_ACTIONS = {"typing", "upload_photo"}

# Parameter types: "string" is a JSON string; "number" is a JSON number or numeric text (clients
# send getUpdates' timeout both ways).
_STRING, _NUMBER = "string", "number"
#: Each method's parameters: name -> (type, required). The platform's whole surface as we know it.
METHOD_PARAMETERS: dict[str, dict[str, tuple[str, bool]]] = {
    "getMe": {},
    "getUpdates": {"timeout": (_NUMBER, False)},
    "setWebhook": {"url": (_STRING, True), "secret_token": (_STRING, True)},
    "deleteWebhook": {},
    "getWebhookInfo": {},
    "sendMessage": {"chat_id": (_STRING, True), "text": (_STRING, True)},
    "sendPhoto": {"chat_id": (_STRING, True), "photo": (_STRING, True), "caption": (_STRING, False)},
    "sendSticker": {"chat_id": (_STRING, True), "sticker": (_STRING, True)},
    "sendChatAction": {"chat_id": (_STRING, True), "action": (_STRING, True)},
}
_GET_ALLOWED = {"getMe"}


@dataclass(frozen=True)
class ZaloLimits:
    """Zalo's limits. Only text_max is documented; the rate limits are guesses, all overridable."""

    per_bot_per_second: float = 30
    per_chat_per_second: float = 1
    per_chat_burst: int = 3
    text_max: int = 2000
    caption_max: int = 2000
    secret_token_min: int = 8
    secret_token_max: int = 256
    # Whether a 429 carries parameters.retry_after (undocumented: a bot must cope without it).
    retry_after_hint: bool = True
    # Pauses between webhook delivery attempts; the last one repeats until delivery succeeds.
    webhook_retry_delays: tuple[float, ...] = (0.05, 0.2, 1.0)
    webhook_timeout: float = 10.0


class ZaloRequest(RecordedRequest):
    """One API call as the emulator saw it."""


@dataclass
class ZaloBotStats:
    """Per-bot counters, so tests can assert e.g. that a broadcast never hit a 429."""

    sent: int = 0
    too_many_requests: int = 0
    forbidden: int = 0
    bad_requests: int = 0
    updates_delivered: int = 0  # handed out by getUpdates or POSTed to the webhook, duplicates included
    duplicates: int = 0  # of those, redeliveries (redeliver() or spontaneous)


@dataclass
class ZaloReceived:
    """A message the bot sent to a simulated person."""

    message_id: str
    text: str | None
    date: int  # milliseconds since the epoch
    kind: str  # "text", "photo" or "sticker"
    photo: str | None = None
    caption: str | None = None
    sticker: str | None = None


class ZaloApiError(EmulatedApiError):
    """An error answer: ``{"ok": false, "error_code", "description"}`` (+ parameters.retry_after)."""


def _bad(description: str) -> ZaloApiError:
    return ZaloApiError(400, description)


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Limiter(RateLimiter):
    """A 1-second window per bot and a token bucket per chat; 429 carries retry_after if the limits say so."""

    def __init__(self, limits: ZaloLimits, clock: Callable[[], float]) -> None:
        super().__init__(limits, clock, lambda retry_after: ZaloApiError(
            429, TOO_MANY_REQUESTS, retry_after if limits.retry_after_hint else None))


@dataclass
class _Pending:
    update: dict[str, Any]
    duplicate: bool = False  # a redelivery; never duplicated again by chance

    @property
    def message_id(self) -> str:
        return self.update["message"]["message_id"]


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


Handler = Callable[[EmulatedZaloBot, dict[str, Any], web.Request | None], Awaitable[Any]]


class ZaloBotApiEmulator(EmulatorServer[EmulatedZaloBot]):
    """An aiohttp server speaking the Zalo Bot Platform API for any number of emulated bots.

    :meth:`start` returns the base URL for the client; :meth:`stop` ends long polls at once
    (408), stops webhook delivery and closes the server.
    """

    request_type = ZaloRequest
    error_type = ZaloApiError
    forbidden_status = FORBIDDEN
    limits: ZaloLimits
    requests: list[ZaloRequest]  # type: ignore[assignment]

    def __init__(self, limits: ZaloLimits = ZaloLimits(), clock: Callable[[], float] = time.monotonic,
                 duplicate_probability: float = 0.0, seed: int = 0) -> None:
        super().__init__(limits, clock)
        self.duplicate_probability = duplicate_probability  # may be changed while running
        self.seed = seed
        self._random = random.Random(seed)
        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendSticker": self._send_sticker,
            "sendChatAction": self._send_chat_action,
        }
        assert set(self._handlers) == set(METHOD_PARAMETERS)

    @property
    def stats(self) -> dict[str, ZaloBotStats]:
        """Counters per bot token."""
        return super().stats

    def add_bot(self, token: str, name: str) -> EmulatedZaloBot:
        bot = EmulatedZaloBot(self, token, name)
        self._bots[token] = bot
        return bot

    def roll_duplicate(self) -> bool:
        return self.duplicate_probability > 0 and self._random.random() < self.duplicate_probability

    # --- HTTP ----------------------------------------------------------------------------------

    def _unreadable(self, bot: EmulatedZaloBot, method: str, error: EmulatedApiError) -> None:
        self._count_error(bot.stats, error.error_code)
        self._record(bot.token, method, {}, error.error_code)

    async def _read_params(self, request: web.Request, method: str) -> dict[str, Any]:
        """The JSON object body of a POST (an empty body is {}); GET only where the platform allows."""
        if request.method == "GET":
            if method not in _GET_ALLOWED:
                self.violations.append(f"{method}: called with GET; the platform expects POST with a JSON body")
                raise _bad(f"{method} must be called with POST")
            return dict(request.query)
        if request.method != "POST":
            self.violations.append(f"{method}: called with {request.method}")
            raise ZaloApiError(405, "Method Not Allowed")
        raw = await request.read()
        if not raw.strip():
            return {}
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self.violations.append(f"{method}: body sent as {content_type or 'no content type'}, not JSON")
            raise _bad("request body must be JSON")
        try:
            params = json.loads(raw)
        except ValueError:
            self.violations.append(f"{method}: body is not valid JSON")
            raise _bad("can't parse JSON request body") from None
        if not isinstance(params, dict):
            self.violations.append(f"{method}: body is JSON but not an object")
            raise _bad("request body must be a JSON object")
        return params

    async def _call(self, bot: EmulatedZaloBot, method: str, params: dict[str, Any],
                    request: web.Request | None = None) -> tuple[int, dict[str, Any]]:
        """Check and run one method call; record it; return (HTTP status, JSON body)."""
        return await self._answer(bot, method, params, lambda: self._run(bot, method, params, request))

    async def _run(self, bot: EmulatedZaloBot, method: str, params: dict[str, Any],
                   request: web.Request | None) -> Any:
        self._check_parameters(method, params)
        return await self._handlers[method](bot, params, request)

    def _check_parameters(self, method: str, params: dict[str, Any]) -> None:
        """Compare a call with :data:`METHOD_PARAMETERS`; record and refuse anything off the table."""
        table = METHOD_PARAMETERS.get(method)
        if table is None:
            self.violations.append(f"{method}: unknown method")
            raise ZaloApiError(404, "Not Found: unknown method")
        problems = [f"unknown parameter {name}" for name in params if name not in table]
        for name, (kind, required) in table.items():
            value = params.get(name)
            if value is None:
                if required:
                    problems.append(f"missing parameter {name}")
            elif not _has_type(value, kind):
                problems.append(f"parameter {name} must be a {kind}, got {type(value).__name__}")
        if problems:
            self.violations += [f"{method}: {problem}" for problem in problems]
            raise _bad("; ".join(problems))

    # --- the bot and its updates -----------------------------------------------------------------

    async def _get_me(self, bot: EmulatedZaloBot, p: dict[str, Any], request: web.Request | None) -> dict[str, Any]:
        return {"id": bot.id, "account_name": bot.name, "account_type": "BASIC", "can_join_groups": False}

    async def _get_updates(self, bot: EmulatedZaloBot, p: dict[str, Any],
                           request: web.Request | None) -> dict[str, Any]:
        """Long polling: ONE update within ``timeout`` seconds (fractions allowed), else 408.

        Concurrent polls are allowed; each update goes to one of them. A poll whose client has
        hung up takes nothing, so a cancelled poll never swallows an update.
        """
        if bot.webhook_url:
            raise ZaloApiError(WEBHOOK_CONFLICT, WEBHOOK_ACTIVE)
        timeout = max(float(p.get("timeout") or 0), 0.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if bot.webhook_url:
                raise ZaloApiError(WEBHOOK_CONFLICT, WEBHOOK_ACTIVE)
            if self._closing or _hung_up(request):
                raise ZaloApiError(TIMEOUT, REQUEST_TIMEOUT)
            entry = bot.take()
            if entry is not None:
                return entry.update
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ZaloApiError(TIMEOUT, REQUEST_TIMEOUT)
            await bot.changed.wait(remaining)

    async def _set_webhook(self, bot: EmulatedZaloBot, p: dict[str, Any],
                           request: web.Request | None) -> dict[str, Any]:
        url, secret = p["url"], p["secret_token"]
        _check_webhook_url(url)
        if not self.limits.secret_token_min <= len(secret) <= self.limits.secret_token_max:
            raise _bad(f"secret_token must be {self.limits.secret_token_min}-{self.limits.secret_token_max}"
                       " characters")
        if not secret.isascii() or not secret.isprintable() or " " in secret:
            raise _bad("secret_token must be printable ASCII without spaces")
        bot.webhook_url, bot.webhook_secret, bot.webhook_updated_at = url, secret, _now_ms()
        self._start_webhook_delivery(bot)
        bot.changed.notify()  # a waiting getUpdates must now fail
        return {"url": url, "updated_at": bot.webhook_updated_at}

    async def _delete_webhook(self, bot: EmulatedZaloBot, p: dict[str, Any],
                              request: web.Request | None) -> dict[str, Any]:
        await self._stop_webhook_delivery(bot)
        bot.webhook_url = bot.webhook_secret = None
        bot.webhook_updated_at = _now_ms()
        return {"url": "", "updated_at": bot.webhook_updated_at}

    async def _get_webhook_info(self, bot: EmulatedZaloBot, p: dict[str, Any],
                                request: web.Request | None) -> dict[str, Any]:
        return {"url": bot.webhook_url or "", "updated_at": bot.webhook_updated_at}

    def _webhook_next(self, bot: EmulatedZaloBot) -> _Pending | None:
        return bot.take()

    def _webhook_failed(self, bot: EmulatedZaloBot, entry: _Pending, error: str) -> None:
        bot.put_back(entry)
        bot.webhook_errors.append(error)

    def _webhook_cancelled(self, bot: EmulatedZaloBot, entry: _Pending) -> None:
        bot.put_back(entry)  # deleteWebhook mid-delivery: getUpdates will hand it out

    async def _post_update(self, bot: EmulatedZaloBot, update: dict[str, Any]) -> str | None:
        """Deliver one update; None on success (any 2xx answer), else what went wrong."""
        assert bot.webhook_url is not None
        try:
            status, reason, _ = await self._post_json(bot.webhook_url, {"ok": True, "result": update},
                                                      {SECRET_HEADER: bot.webhook_secret or ""})
        except (aiohttp.ClientError, TimeoutError) as error:
            return f"connection failed: {error or type(error).__name__}"
        if not 200 <= status < 300:
            return f"webhook answered {status} {reason}"
        return None

    # --- sending ---------------------------------------------------------------------------------

    def _recipient(self, bot: EmulatedZaloBot, p: dict[str, Any]) -> SimulatedZaloUser:
        """The private chat named by chat_id, if the bot may write there."""
        user = bot.users.get(p["chat_id"])
        if user is None or not user.started:
            raise ZaloApiError(FORBIDDEN, CHAT_NOT_STARTED)
        if user.blocked:
            raise ZaloApiError(FORBIDDEN, USER_BLOCKED)
        return user

    def _deliver(self, bot: EmulatedZaloBot, user: SimulatedZaloUser, kind: str, **content: Any) -> dict[str, Any]:
        bot.limiter.acquire(user.id)
        message = ZaloReceived(message_id=bot.new_message_id(), date=_now_ms(), kind=kind,
                               text=content.pop("text", None), **content)
        user.deliver(message)
        bot.stats.sent += 1
        return {"message_id": message.message_id, "date": message.date}

    async def _send_message(self, bot: EmulatedZaloBot, p: dict[str, Any],
                            request: web.Request | None) -> dict[str, Any]:
        user = self._recipient(bot, p)
        text = p["text"]
        if not text.strip():
            raise _bad("text is empty")
        if len(text) > self.limits.text_max:
            raise _bad(TEXT_TOO_LONG)
        return self._deliver(bot, user, "text", text=text)

    async def _send_photo(self, bot: EmulatedZaloBot, p: dict[str, Any],
                          request: web.Request | None) -> dict[str, Any]:
        user = self._recipient(bot, p)
        photo, caption = p["photo"], p.get("caption")
        if urlsplit(photo).scheme not in ("http", "https") or not urlsplit(photo).hostname:
            raise _bad("photo must be an http(s) URL")
        if caption is not None and len(caption) > self.limits.caption_max:
            raise _bad("caption too long")
        return self._deliver(bot, user, "photo", photo=photo, caption=caption or None)

    async def _send_sticker(self, bot: EmulatedZaloBot, p: dict[str, Any],
                            request: web.Request | None) -> dict[str, Any]:
        user = self._recipient(bot, p)
        if not p["sticker"].strip():
            raise _bad("sticker is empty")
        return self._deliver(bot, user, "sticker", sticker=p["sticker"])

    async def _send_chat_action(self, bot: EmulatedZaloBot, p: dict[str, Any],
                                request: web.Request | None) -> bool:
        user = self._recipient(bot, p)
        if p["action"] not in CHAT_ACTIONS:
            raise _bad(f"action must be one of {sorted(CHAT_ACTIONS)}")
        user.chat_actions.append(p["action"])
        return True


# --- helpers -------------------------------------------------------------------------------------


def _has_type(value: Any, kind: str) -> bool:
    if kind == _STRING:
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False
    return False


def _hung_up(request: web.Request | None) -> bool:
    """Whether the HTTP client of a long poll has gone away (aiohttp keeps the handler running)."""
    if request is None:
        return False
    transport = request.transport
    return transport is None or transport.is_closing()


def _check_webhook_url(url: str) -> None:
    """An HTTPS URL; plain HTTP only on loopback, because test webhooks have no certificates."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad("invalid webhook url")
    if parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS:
        raise _bad("webhook url must be HTTPS")

