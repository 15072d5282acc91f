"""What the Telegram and Zalo emulator tests share: a fake clock, a running emulator, a webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

import aiohttp
from aiohttp import web


class FakeClock:
    """The emulator's clock for limits and query ages; tests move it explicitly."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Startable(Protocol):
    async def start(self, host: str = ..., port: int = ...) -> str: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


@asynccontextmanager
async def serving(emulator: S) -> AsyncIterator[S]:
    """The emulator, started on a free port and stopped afterwards."""
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


async def post_json(session: aiohttp.ClientSession, base_url: str, token: str, method: str,
                    params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST a JSON body to ``/bot{token}/{method}``: (HTTP status, JSON answer)."""
    async with session.post(f"{base_url}/bot{token}/{method}", json=params) as response:
        return response.status, await response.json()


@asynccontextmanager
async def failing_once_webhook(path: str, secret_header: str,
                               answer: Callable[[dict[str, Any]], dict[str, Any]]
                               ) -> AsyncIterator[tuple[str, asyncio.Queue[tuple[dict, str | None]]]]:
    """A local webhook that fails its first delivery, then records (body, secret header) in order.

    Yields (its URL, the queue of what it received); each body is answered with ``answer(body)``.
    """
    received: asyncio.Queue[tuple[dict, str | None]] = asyncio.Queue()
    calls = {"n": 0}

    async def handle(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return web.Response(status=500)
        body = await request.json()
        await received.put((body, request.headers.get(secret_header)))
        return web.json_response(answer(body))

    app = web.Application()
    app.router.add_post(path, handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}{path}", received
    finally:
        await runner.cleanup()
