"""Serving the web channel: its own aiohttp server beside the bots (``khaosat run``) or the
console (``khaosat serve``), over the same storage and questionnaires."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from aiohttp import web

from bot.chat.core import ChatCore
from bot.web.channel import GuessLimit, WebChannel
from bot.web.pages import WebSettings, make_web_app
from bot.web.settings import WebConfig

log = logging.getLogger(__name__)


@dataclass
class RunningWeb:
    runner: web.AppRunner
    channel: WebChannel
    url: str

    async def stop(self) -> None:
        await self.runner.cleanup()


def web_channel(config: WebConfig, core: ChatCore) -> WebChannel:
    return WebChannel(core, GuessLimit(config.codes_per_address_per_hour, config.codes_per_hour))


async def start_web(config: WebConfig, core: ChatCore) -> RunningWeb:
    """Serve the pages on ``config.host:config.port`` (port 0: any free port) until ``stop()``."""
    channel = web_channel(config, core)
    app = make_web_app(channel, WebSettings(config.secure_cookies, config.behind_proxy))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    port = runner.addresses[0][1] if runner.addresses else config.port
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    url = f"http://{host}:{port}/s/"
    log.info("web pages at %s (public address %s/s/)", url, config.public_url)
    return RunningWeb(runner, channel, url)
