"""`khaosat run` with [console]: the console is served beside the bots, and "send a reminder now"
goes through the running bot's outbox to the person's chat (the real aiogram bot against the
Telegram Bot API emulator, real SQLite, a real HTTP client on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from pathlib import Path

import aiohttp

from bot.config import BotConfig, Config, ConsoleConfig
from bot.invitations import code_hash
from bot.outbox import Pace
from bot.run import run
from bot.telegram.emulator import BotApiEmulator, Limits
from console.accounts import create_account
from storage import open_storage
from storage.console_db import ConsoleStores
from surveys.project import parse_survey, store_survey
from surveys.sampling import draw_sample, import_frame_file
from surveys.templates import FOLDER as TEMPLATES

FORMS = Path(__file__).parent / "forms" / "survey"
ZONE = dt.timezone(dt.timedelta(hours=7))
TOKEN = "123456:TEST-token"
CODE = "C" * 11 + "d" * 11
PASSWORD = "mat-khau-thu-2026"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def sampled_and_invited(db: Path, today: dt.date, tmp_path: Path) -> int:
    """The test survey, open around today, its sample drawn; one member invited with a link code."""
    text = (FORMS / "survey.toml").read_text(encoding="utf-8")
    text = text.replace("opens = 2026-08-01", f"opens = {today - dt.timedelta(days=5)}").replace(
        "closes = 2026-08-31", f"closes = {today + dt.timedelta(days=20)}").replace("after_days = [3, 7]",
                                                                                     "after_days = [1, 3]")
    project = parse_survey(text, base=FORMS)
    frame = tmp_path / "frame.csv"
    frame.write_text("id,group,unit\n" + "".join(f"a{i},citizen,xa-a\n" for i in range(80)), encoding="utf-8")
    at = f"{today - dt.timedelta(days=5)}T08:00:00+07:00"
    async with await open_storage(db) as storage:
        await store_survey(storage, project, text, "survey.toml", at)
        await import_frame_file(storage, project, frame, at)
        await draw_sample(storage, project, 1, at)
        member = (await storage.sample_members(project.id, "main"))[0].respondent_id
        await storage.issue_invitation(member, "link", code_hash(CODE), at)
        await storage.set_disposition(member, "invited", at)
    async with await ConsoleStores.open(db) as stores:
        await create_account(stores, "coordinator", PASSWORD, role="coordinator", at=at, surveys=(project.id,))
    return member


async def test_run_serves_the_console_and_remind_now_reaches_the_chat(tmp_path):
    today = dt.datetime.now(ZONE).date()
    clock = lambda: dt.datetime.combine(today, dt.time(10, 0), ZONE)  # noqa: E731 — outside quiet hours
    db = tmp_path / "survey.sqlite"
    member = await sampled_and_invited(db, today, tmp_path)
    emulator = BotApiEmulator(limits=Limits(per_bot_per_second=1000, per_chat_per_second=1000, per_chat_burst=1000))
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, "khaosat_test_bot")
    port = free_port()
    config = Config(database=db, source=tmp_path / "k.toml", console=ConsoleConfig(port=port), bots=(
        BotConfig(channel="telegram", name="test", token=TOKEN, api_base=base,
                  forms=(TEMPLATES / "sipas_citizen.md",), pace=Pace(per_second=900, per_chat_per_second=900,
                                                                     per_chat_burst=900)),))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run(config, stop, clock=clock, started=lambda bots: ready.set()))
    await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        person = telegram.user(777001)
        await person.start(CODE)  # opens the invitation: the chat is linked, the consent screen shown
        await person.wait_for(lambda m: bool(m.text))
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            url = f"http://127.0.0.1:{port}"
            page = await (await browser.get(f"{url}/login")).text()
            token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            await browser.post(f"{url}/login", data={"csrf_token": token, "username": "coordinator",
                                                     "password": PASSWORD})
            page = await (await browser.get(f"{url}/surveys/test-2026/nonrespondents")).text()
            token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            async with browser.post(f"{url}/surveys/test-2026/nonrespondents/remind",
                                    data={"csrf_token": token}) as response:
                assert response.status == 200
                assert "Đã xếp 1 nhắc nhở vào hàng đợi." in await response.text()
        reminder = await asyncio.wait_for(person.wait_for(lambda m: "/resume" in (m.text or "")), timeout=20)
        assert "Bạn đã trả lời 0/" in reminder.text
        async with await open_storage(db) as storage:
            sent = await storage.reminders_of(member)
        assert len(sent) == 1 and sent[0]["channel"] == "telegram"
    finally:
        stop.set()
        await task
        await emulator.stop()
