"""What the web channel's tests share: ``khaosat run`` with a Telegram bot (emulated) and the
web pages on 127.0.0.1, over a real SQLite database."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
from dataclasses import dataclass
from pathlib import Path

from bot.config import BotConfig, Config
from bot.invitations import code_hash, new_link_code, new_typed_code
from bot.outbox import Pace
from bot.run import RunningBot, run
from bot.telegram.emulator import BotApiEmulator, Limits
from bot.web.settings import WebConfig
from storage import Storage, open_storage
from surveys.templates import FOLDER as TEMPLATES

SIPAS = TEMPLATES / "sipas_citizen.md"
PAR = TEMPLATES / "par_index_officials.md"
TOUR = Path(__file__).parent / "forms" / "tour.md"
#: A group with ``appearance = field-list`` (the web shows it on one page), one question after it.
FIELD_LIST = Path(__file__).parent / "forms" / "web_field_list.md"
TG_TOKEN = "888:telegram-web-test-token"
FAST_PACE = Pace(per_second=900, per_chat_per_second=900, per_chat_burst=900)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=7)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class WebHarness:
    url: str
    telegram: object
    storage: Storage
    running: list[RunningBot]

    async def invite(self, external_id: str, form_id: str) -> tuple[int, str, str]:
        respondent = await self.storage.add_respondent(external_id, form_id=form_id, stratum="xa-a",
                                                       at=now().isoformat())
        typed, link = new_typed_code(), new_link_code()
        await self.storage.issue_invitation(respondent.id, "typed", code_hash(typed), now().isoformat())
        await self.storage.issue_invitation(respondent.id, "link", code_hash(link), now().isoformat())
        return respondent.id, typed, link


@contextlib.asynccontextmanager
async def web_harness(tmp_path: Path, *, forms=(SIPAS, PAR, TOUR), open_codes=None, bot_options=None, **web_options):
    """`khaosat run` with one Telegram bot and the web pages; `bot_options`: more of the bot's
    settings (e.g. `media_limit_mb`), `web_options`: of [web]."""
    emulator = BotApiEmulator(limits=Limits(per_bot_per_second=1000, per_chat_per_second=1000, per_chat_burst=1000))
    base = await emulator.start()
    telegram = emulator.add_bot(TG_TOKEN, "khaosat_web_test_bot")
    bots = (BotConfig(channel="telegram", name="tg", token=TG_TOKEN, api_base=base, forms=tuple(forms),
                      pace=FAST_PACE, open_codes=open_codes or {}, **(bot_options or {})),)
    port = free_port()
    web = WebConfig(public_url="https://khaosat.example.vn", port=port, **web_options)
    config = Config(database=tmp_path / "survey.sqlite", bots=bots, source=tmp_path / "c.toml", web=web)
    stop, ready = asyncio.Event(), asyncio.Event()
    running: list[RunningBot] = []
    task = asyncio.create_task(run(config, stop, started=lambda b: (running.extend(b), ready.set())))
    await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    storage = await open_storage(config.database)
    try:
        yield WebHarness(f"http://127.0.0.1:{port}", telegram, storage, running)
    finally:
        stop.set()
        await task
        await storage.close()
        await emulator.stop()
