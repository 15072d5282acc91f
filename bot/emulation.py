"""Machinery shared by the local Bot API emulators (:mod:`bot.telegram.emulator`, :mod:`bot.zalo.emulator`).

Each emulator keeps what its platform does (methods, error texts, update formats, webhook bodies);
this module has what they do alike: the HTTP server with its ``/bot{token}/{method}`` route, the
record of requests, the change notifier that wakes long polls and waiting people, the flood
limiter, the webhook delivery loop with retries, and a simulated person's ``wait_for`` cursor.

The limiter is deliberately the emulators' own and not :mod:`bot.outbox`'s ``SlidingWindow`` /
``TokenBucket``: the emulator referees the outbox's pacing (tests assert no 429 was answered), so
it must not share the arithmetic it is checking.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
from aiohttp import web

__all__ = [
    "LOOPBACK_HOSTS",
    "ScriptedAnswer",
    "Broadcast",
    "EmulatedApiError",
    "EmulatorServer",
    "Inbox",
    "RateLimiter",
    "RecordedRequest",
]

#: Hosts where a webhook may be plain HTTP: the emulators' webhooks are local test servers.
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

E = TypeVar("E")


class EmulatedApiError(Exception):
    """An error answer: ``{"ok": false, "error_code", "description"}`` (+ parameters.retry_after)."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass(frozen=True)
class RecordedRequest:
    """One API call as the emulator saw it."""

    token: str
    method: str
    params: dict[str, Any]
    status: int


@dataclass(frozen=True)
class ScriptedAnswer:
    """A test switch: what the next call of ``method`` (any method if None) gets instead of its answer.

    ``body`` is sent as is (an error's JSON, or garbage no client can parse); with ``reset`` the
    connection is dropped after half of it, as a proxy or a flaky network does mid-response.

    With ``deliver`` the call is first done for real (a message reaches the person) and then its
    own answer is lost: cut half-way (``reset``) or never given until the client gives up
    (``hang``) — what a client sees when its request got through and the way back broke.
    """

    method: str | None
    status: int
    body: bytes
    reset: bool = False
    deliver: bool = False
    hang: bool = False
    #: Only a call whose parameters this accepts (None: any call of ``method``).
    when: Callable[[dict[str, Any]], bool] | None = None


class Broadcast:
    """Wake every waiter on each change; waiters re-check their own condition.

    A fresh Event per round means a waiter that grabbed the current one can never miss a
    notification, and nothing needs a lock (notifying is synchronous).
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float | None) -> bool:
        """True when notified, False when ``timeout`` seconds passed first."""
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True


class FloodLimits(Protocol):
    per_bot_per_second: float
    per_chat_per_second: float
    per_chat_burst: int


class RateLimiter:
    """A bot's flood limits: a 1-second window overall, a token bucket per chat.

    ``refuse(retry_after)`` makes the platform's 429 error (``retry_after`` in whole seconds, at least 1).
    """

    def __init__(self, limits: FloodLimits, clock: Callable[[], float],
                 refuse: Callable[[int], Exception]) -> None:
        self._limits = limits
        self._clock = clock
        self._refuse = refuse
        self._recent: deque[float] = deque()
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # chat id -> (tokens, at)

    def acquire(self, chat_id: Hashable) -> None:
        """Count one message to ``chat_id``, or raise 429 without counting it."""
        limits, now = self._limits, self._clock()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        bot_wait = self._recent[0] + 1.0 - now if len(self._recent) >= limits.per_bot_per_second else 0.0
        tokens, at = self._buckets.get(chat_id, (float(limits.per_chat_burst), now))
        tokens = min(float(limits.per_chat_burst), tokens + (now - at) * limits.per_chat_per_second)
        chat_wait = (1.0 - tokens) / limits.per_chat_per_second if tokens < 1.0 else 0.0
        wait = max(bot_wait, chat_wait)
        if wait > 0:
            raise self._refuse(max(1, math.ceil(wait)))
        self._recent.append(now)
        self._buckets[chat_id] = (tokens - 1.0, now)


class Inbox(Generic[E]):
    """What the bot did in one simulated chat, in order, read by ``wait_for`` from a cursor.

    Events are consumed from where the previous ``wait_for`` stopped, so a reply that arrived
    before the call is not missed; events ``accept`` rejects are skipped.
    """

    def __init__(self) -> None:
        self._events: list[E] = []
        self._cursor = 0
        self._changed = Broadcast()

    def record(self, event: E) -> None:
        self._events.append(event)
        self._changed.notify()

    async def wait_for(self, accept: Callable[[E], bool], timeout: float, who: object,
                       latest: Callable[[], list[Any]]) -> E:
        """The next event ``accept`` takes; TimeoutError (naming ``who`` and ``latest()``) after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while self._cursor < len(self._events):
                event = self._events[self._cursor]
                self._cursor += 1
                if accept(event):
                    return event
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self._changed.wait(remaining):
                raise TimeoutError(f"user {who}: no matching message within {timeout}s; "
                                   f"latest received: {latest()}")


class WebhookBot(Protocol):
    """What :class:`EmulatorServer` needs of an emulated bot account."""

    token: str
    stats: Any
    changed: Broadcast
    webhook_task: asyncio.Task[None] | None


B = TypeVar("B", bound=WebhookBot)


class EmulatorServer(Generic[B]):
    """An aiohttp server on ``/bot{token}/{method}`` for any number of emulated bots.

    Subclasses read a request's parameters (:meth:`_read_params`), run a call (:meth:`_call`,
    usually through :meth:`_answer`) and deliver webhooks (the ``_webhook_*`` hooks).
    """

    #: The platform's record of one request (a :class:`RecordedRequest` subclass).
    request_type: type[RecordedRequest] = RecordedRequest
    #: The platform's error class.
    error_type: type[EmulatedApiError] = EmulatedApiError
    #: The status counted as ``stats.forbidden`` (the person blocked the bot or never wrote).
    forbidden_status = 403
    #: The largest request body the server accepts (aiohttp's default unless a platform needs more).
    client_max_size: int = 1024 * 1024

    def __init__(self, limits: Any, clock: Callable[[], float]) -> None:
        self.limits = limits  # with webhook_retry_delays (the last pause repeats) and webhook_timeout
        self.clock = clock
        self.violations: list[str] = []
        self.requests: list[RecordedRequest] = []
        self.base_url: str | None = None
        self._bots: dict[str, B] = {}
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._closing = False
        self._scripted: list[ScriptedAnswer] = []
        self._site: web.TCPSite | None = None
        self._address: tuple[str, int] | None = None

    def answer_next(self, method: str | None = None, *, status: int = 200, description: str | None = None,
                    body: bytes | str | None = None, reset: bool = False) -> None:
        """Answer the next call of ``method`` (of any method if None) with ``status`` and the platform's
        error body carrying ``description`` (default: the status's reason), or with the raw ``body``;
        ``reset`` drops the connection half-way through, having done nothing. Each call queues one
        answer, used once."""
        if body is None:
            text = description or HTTPStatus(status).phrase
            body = json.dumps(self.error_type(status, text).body() if status >= 400
                              else {"ok": True, "result": text})
        self._scripted.append(ScriptedAnswer(method, status, body.encode() if isinstance(body, str) else body,
                                             reset))

    def deliver_then_cut(self, method: str | None = None,
                         when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Do the next call of ``method`` (any if None) whose parameters ``when`` accepts for real,
        then hang up half-way through its answer."""
        self._scripted.append(ScriptedAnswer(method, 200, b"", reset=True, deliver=True, when=when))

    def deliver_then_hang(self, method: str | None = None,
                          when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Do the next such call for real, then say nothing until the client gives up (its read
        timeout) and closes the connection."""
        self._scripted.append(ScriptedAnswer(method, 200, b"", deliver=True, hang=True, when=when))

    async def go_offline(self) -> None:
        """Stop listening and close every open connection: a client's next request is refused
        before anything is written (the platform unreachable). ``come_back`` listens again."""
        assert self._runner is not None and self._site is not None
        await self._site.stop()
        self._site = None
        server = self._runner.server
        for connection in list(server.connections if server is not None else ()):
            connection.force_close()  # keep-alive connections too: nothing may reach the emulator

    async def come_back(self) -> None:
        """Listen again, on the same address, after ``go_offline``."""
        assert self._runner is not None and self._site is None and self._address is not None
        self._site = web.TCPSite(self._runner, *self._address)
        await self._site.start()

    def _take_scripted(self, method: str, params: dict[str, Any]) -> ScriptedAnswer | None:
        for index, scripted in enumerate(self._scripted):
            if (scripted.method is None or scripted.method.lower() == method.lower()) and (
                    scripted.when is None or scripted.when(params)):
                return self._scripted.pop(index)
        return None

    @property
    def stats(self) -> dict[str, Any]:
        """Counters per bot token."""
        return {token: bot.stats for token, bot in self._bots.items()}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = any free port) and return the base URL for the client."""
        app = web.Application(client_max_size=self.client_max_size)
        app.router.add_route("*", "/bot{token}/{method}", self._serve)
        self._add_routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        self._site, self._address = site, (host, bound_port)
        self._client = aiohttp.ClientSession()
        self._closing = False
        self.base_url = f"http://{host}:{bound_port}"
        return self.base_url

    def _add_routes(self, app: web.Application) -> None:
        """More routes of an emulator beside its API (files people sent, to download)."""

    async def stop(self) -> None:
        """End long polls at once, stop webhook delivery, close the server."""
        self._closing = True
        for bot in self._bots.values():
            bot.changed.notify()
            await self._stop_webhook_delivery(bot)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._site = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    # --- HTTP ----------------------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.Response:
        token, name = request.match_info["token"], request.match_info["method"]
        bot = self._bots.get(token)
        if bot is None:
            return web.json_response(self.error_type(401, "Unauthorized").body(), status=401)
        try:
            params = await self._read_params(request, name)
        except EmulatedApiError as error:
            self._unreadable(bot, name, error)
            return web.json_response(error.body(), status=error.error_code)
        scripted = self._take_scripted(name, params)
        if scripted is not None and not scripted.deliver:
            self._record(bot.token, name, params, scripted.status)
            return await _scripted_response(request, scripted)
        status, body = await self._call(bot, name, params, request)
        if scripted is not None:  # done for real; now its answer is lost on the way back
            if scripted.hang:
                return await self._hang(request)
            return await _scripted_response(request, ScriptedAnswer(
                None, status, json.dumps(body).encode(), reset=True))
        return web.json_response(body, status=status)

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        """Say nothing until the client closes the connection (or the emulator stops), then hang up.

        aiohttp tells a handler nothing when its client leaves, so this looks, a few times a second."""
        while not self._closing and request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.02)
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=200)

    async def _read_params(self, request: web.Request, method: str) -> dict[str, Any]:
        raise NotImplementedError

    def _unreadable(self, bot: B, method: str, error: EmulatedApiError) -> None:
        """A request whose parameters could not be read (by default not recorded)."""

    async def _call(self, bot: B, method: str, params: dict[str, Any],
                    request: web.Request | None = None) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    async def _answer(self, bot: B, method: str, params: dict[str, Any],
                      run: Callable[[], Awaitable[Any]]) -> tuple[int, dict[str, Any]]:
        """Run one call; record it; return (HTTP status, JSON body), counting errors per bot."""
        try:
            status, body = 200, {"ok": True, "result": await run()}
        except EmulatedApiError as error:
            status, body = error.error_code, error.body()
            self._count_error(bot.stats, status)
        self._record(bot.token, method, params, status)
        return status, body

    def _record(self, token: str, method: str, params: dict[str, Any], status: int) -> None:
        self.requests.append(self.request_type(token, method, params, status))

    def _count_error(self, stats: Any, status: int) -> None:
        if status == 429:
            stats.too_many_requests += 1
        elif status == self.forbidden_status:
            stats.forbidden += 1
        elif status == 400:
            stats.bad_requests += 1

    # --- webhooks --------------------------------------------------------------------------------

    def _start_webhook_delivery(self, bot: B) -> None:
        if bot.webhook_task is None:
            bot.webhook_task = asyncio.create_task(self._deliver_webhooks(bot))

    async def _stop_webhook_delivery(self, bot: B) -> None:
        task, bot.webhook_task = bot.webhook_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _deliver_webhooks(self, bot: B) -> None:
        """POST updates one at a time, in order; retry a failed one until it gets through."""
        failures = 0
        while True:
            entry = self._webhook_next(bot)
            if entry is None:
                await bot.changed.wait(None)
                continue
            try:
                error = await self._post_update(bot, entry.update)
            except asyncio.CancelledError:
                self._webhook_cancelled(bot, entry)
                raise
            if error is None:
                self._webhook_delivered(bot, entry)
                failures = 0
                continue
            self._webhook_failed(bot, entry, error)
            delays = self.limits.webhook_retry_delays
            await asyncio.sleep(delays[min(failures, len(delays) - 1)])
            failures += 1

    def _webhook_next(self, bot: B) -> Any:
        """The pending entry (with an ``update``) to POST next, or None when there is none."""
        raise NotImplementedError

    async def _post_update(self, bot: B, update: dict[str, Any]) -> str | None:
        """Deliver one update; None on success, else what went wrong."""
        raise NotImplementedError

    def _webhook_delivered(self, bot: B, entry: Any) -> None:
        pass

    def _webhook_failed(self, bot: B, entry: Any, error: str) -> None:
        pass

    def _webhook_cancelled(self, bot: B, entry: Any) -> None:
        """Delivery stopped (deleteWebhook, stop) while ``entry`` was being POSTed."""

    async def _post_json(self, url: str, body: Any, headers: dict[str, str],
                         read_reply: Callable[[aiohttp.ClientResponse], Awaitable[Any]] | None = None,
                         ) -> tuple[int, str | None, Any]:
        """POST ``body`` to a webhook within ``limits.webhook_timeout``: (status, reason, reply).

        ``reply`` is ``await read_reply(response)`` for a 2xx answer, else None. A network failure
        or timeout raises ``aiohttp.ClientError`` or ``TimeoutError``.
        """
        assert self._client is not None
        async with self._client.post(
            url, json=body, headers=headers,
            timeout=aiohttp.ClientTimeout(total=self.limits.webhook_timeout),
        ) as response:
            ok = 200 <= response.status < 300
            reply = await read_reply(response) if ok and read_reply is not None else None
            return response.status, response.reason, reply


async def _scripted_response(request: web.Request, scripted: ScriptedAnswer) -> web.StreamResponse:
    if not scripted.reset:
        return web.Response(body=scripted.body, status=scripted.status, content_type="application/json")
    # Promise the whole body, send half, and hang up: the client sees the connection reset mid-response.
    response = web.StreamResponse(status=scripted.status, headers={"Content-Type": "application/json"})
    response.content_length = len(scripted.body)
    await response.prepare(request)
    await response.write(scripted.body[: len(scripted.body) // 2])
    assert request.transport is not None
    request.transport.abort()
    return response
