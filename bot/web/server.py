"""Serving the web channel: its own aiohttp server beside the bots (``khaosat run``) or the
console (``khaosat serve``), over the same storage and questionnaires."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from aiohttp import web

from bot.chat.core import ChatCore
from bot.web.channel import GuessLimit, WebChannel
from bot.web.pages import WebSettings, make_web_app
from bot.web.settings import WebConfig
from storage import personal_crypto

if TYPE_CHECKING:
    from bot.config import Config

log = logging.getLogger(__name__)


@dataclass
class RunningWeb:
    runner: web.AppRunner
    channel: WebChannel
    url: str

    async def stop(self) -> None:
        await self.runner.cleanup()


def web_channel(config: WebConfig, core: ChatCore) -> WebChannel:
    return WebChannel(core, GuessLimit(core.surveys.storage, config.codes_per_address_per_hour, config.codes_per_hour,
                                        core.clock))


async def start_web(config: WebConfig, core: ChatCore) -> RunningWeb:
    """Serve the pages on ``config.host:config.port`` (port 0: any free port) until ``stop()``."""
    channel = web_channel(config, core)
    # With a data key the CSRF secret is derived from it: a page loaded before a restart, or served by
    # another process, still posts (without one it is drawn per process, and such a post gets the
    # "page expired" page and is sent again).
    app = make_web_app(channel, WebSettings(config.secure_cookies, config.behind_proxy),
                       secret=personal_crypto.codec().derived_secret(b"web csrf"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    port = runner.addresses[0][1] if runner.addresses else config.port
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    url = f"http://{host}:{port}/s/"
    log.info("web pages at %s (public address %s/s/)", url, config.public_url)
    return RunningWeb(runner, channel, url)


async def serve_web_until(stop: asyncio.Event, config: Config, database, *, clock: Callable[[], dt.datetime],
                          started: Callable[[RunningWeb], None] | None = None) -> None:
    """``khaosat serve`` with ``[web]``: the pages beside the console, over their own connection
    to the database, asking what the bot named in ``[web] bot`` asks (the first bot by default)."""
    from bot.run import chat_core, load_forms
    from fieldwork.conversations import Conversations
    from fieldwork.quotas import QuotaGate
    from storage import open_storage

    bot = next((b for b in config.bots if b.name == config.web.bot), config.bots[0])
    try:
        async with await open_storage(database, synchronous=config.synchronous) as storage:
            conversations = Conversations(storage, quotas=QuotaGate(storage))
            forms = await load_forms(conversations, bot.forms, clock())
            core = chat_core(bot, storage, conversations, forms, Path(str(database)).parent / "exports", clock,
                             on_enqueued=lambda: None)
            running = await start_web(config.web, core)
            try:
                if started:
                    started(running)
                await stop.wait()
            finally:
                await running.stop()
    finally:
        stop.set()  # the console stops with the pages
