"""Starting and stopping the console: beside the bots in ``khaosat run``, alone in ``khaosat serve``,
and after ``khaosat demo``."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from aiohttp import web

from bot.config import ConsoleConfig
from bot.reminders import ReminderBot
from storage import Storage
from storage.console_db import ConsoleStores

from .app import make_app

log = logging.getLogger(__name__)


@dataclass
class RunningConsole:
    runner: web.AppRunner
    stores: ConsoleStores
    url: str

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.stores.close()


async def start_console(config: ConsoleConfig, storage: Storage, database: Path, *,
                        clock: Callable[[], dt.datetime], bots: Sequence[ReminderBot] = (),
                        on_reminders_queued: Callable[[], None] = lambda: None) -> RunningConsole:
    """Serve the console on ``config.host:config.port`` (port 0: any free port) until ``stop()``."""
    stores = await ConsoleStores.open(database)
    try:
        app = make_app(storage, stores, config, database, clock=clock, bots=bots,
                       on_reminders_queued=on_reminders_queued)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
    except BaseException:
        await stores.close()
        raise
    port = runner.addresses[0][1] if runner.addresses else config.port
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    url = f"http://{host}:{port}/"
    log.info("console at %s", url)
    return RunningConsole(runner, stores, url)


async def serve_until(stop: asyncio.Event, config: ConsoleConfig, database: Path, *,
                      clock: Callable[[], dt.datetime], bots: Sequence[ReminderBot] = (),
                      synchronous: str = "full", started: Callable[[RunningConsole], None] | None = None) -> None:
    """``khaosat serve``: open the database, serve until ``stop`` is set."""
    from storage import open_storage

    async with await open_storage(database, synchronous=synchronous) as storage:
        running = await start_console(config, storage, database, clock=clock, bots=bots)
        try:
            if started:
                started(running)
            await stop.wait()
        finally:
            await running.stop()
