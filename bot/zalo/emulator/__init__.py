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
Error codes the platform does not document are named constants (in ``model``), so they are easy to change.

The emulator is split by responsibility: ``model`` (error codes, method parameters, limits,
records) and ``people`` (simulated people and each bot's state); this module is the HTTP side
and the Bot API methods, and re-exports the old names.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bot.emulation import LOOPBACK_HOSTS, EmulatedApiError, EmulatorServer
from bot.zalo.emulator.model import (
    CHAT_ACTIONS, CHAT_NOT_STARTED, FORBIDDEN, METHOD_PARAMETERS, REQUEST_TIMEOUT, SECRET_HEADER,
    TEXT_TOO_LONG, TIMEOUT, USER_BLOCKED, WEBHOOK_ACTIVE, WEBHOOK_CONFLICT, _GET_ALLOWED, _STRING,
    ZaloApiError, ZaloBotStats, ZaloLimits, ZaloReceived, ZaloRequest, _Pending, _bad, _now_ms,
)
from bot.zalo.emulator.people import EmulatedZaloBot, SimulatedZaloUser


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
        #: Images people sent, by file name, served at /media/<name> as Zalo's CDN serves them.
        self.images: dict[str, bytes] = {}

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

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/media/{name}", self._image)

    async def _image(self, request: web.Request) -> web.Response:
        data = self.images.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=data, content_type="image/jpeg")

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
