"""/progress in chat is `khaosat status --format text`: the same text from the same data (targets,
quota fill, days left), split per group into messages that fit Telegram's 4,096 and Zalo's 2,000
characters — on a real database, through the real bots against the emulators and the real CLI."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from bot.config import BotConfig, Config
from bot.outbox import Pace
from bot.reminders import ReminderBot, daily_summary
from bot.run import run
from bot.telegram.emulator import BotApiEmulator, Limits
from bot.zalo.emulator import ZaloBotApiEmulator, ZaloLimits
from exporters.progress import status_messages, survey_status
from storage import open_storage
from surveys.project import load_survey, parse_survey, store_survey
from surveys.sampling import draw_sample, import_frame_file
from surveys.templates import FOLDER as TEMPLATES

ROOT = Path(__file__).resolve().parents[1]
SURVEY = Path(__file__).parent / "forms" / "survey" / "survey.toml"
ZONE = dt.timezone(dt.timedelta(hours=7))
NOW = dt.datetime(2026, 8, 21, 12, 0, tzinfo=ZONE)
T0 = "2026-07-01T08:00:00+07:00"
COORDINATOR = 900001
ZALO_COORDINATOR = "c0ffee0000000000c0de"
FAST_PACE = Pace(per_second=900, per_chat_per_second=900, per_chat_burst=900)


async def fielded(db: Path, project, frame: Path) -> None:
    async with await open_storage(db) as storage:
        await store_survey(storage, project, "", "survey.toml", T0)
        await import_frame_file(storage, project, frame, T0)
        await draw_sample(storage, project, 1, T0)
        members = await storage.sample_members(project.id, "main")
        for member in members[:5]:
            for step in ("invited", "contacted", "started", "completed"):
                await storage.set_disposition(member.respondent_id, step, "2026-08-18T09:00:00+07:00")


def small_frame(path: Path) -> Path:
    lines = ["id,group,unit"] + [f"{unit}-{i:03d},citizen,{unit}" for unit, size in
                                 {"xa-a": 120, "xa-b": 80, "xa-c": 40}.items() for i in range(size)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def big_survey(tmp_path: Path) -> tuple[object, Path]:
    """Three groups over 120 communes with long names: far more than one chat message."""
    communes = [f"xa-{n:03d}" for n in range(120)]
    units = "\n".join(["id,name,level,parent", "tinh,Tỉnh Ví Dụ,province,"]
                      + [f"{c},Xã Thuận Hòa Đông Nam Phía Trên Số {c[-3:]},commune,tinh" for c in communes])
    (tmp_path / "units.csv").write_text(units + "\n", encoding="utf-8")
    text = SURVEY.read_text(encoding="utf-8").replace('"citizen/xa-a" = 20', '"citizen/xa-001" = 2') \
        .replace('allocation = { method = "fixed", reserve = 1, n = { "leader/xa-a/nam" = 1, "leader/xa-a/nu" = 1 } }',
                 'allocation = { method = "proportional", n = 240, reserve = 0 }') \
        .replace("allocation = { n = 60 }", "allocation = { n = 240 }")
    project = parse_survey(text, "survey.toml", base=tmp_path)
    lines = ["id,group,unit,gender"]
    for c in communes:
        lines += [f"{c}-{i},citizen,{c}," for i in range(3)]
        lines += [f"L-{c}-{g},leader,{c},{g}" for g in ("nam", "nu")]
    lines += [f"H-{i},hdnd,tinh," for i in range(30)]
    frame = tmp_path / "frame.csv"
    frame.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return project, frame


def cli_status_text(db: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "bot.cli", "status", "--db", str(db), "--at", NOW.isoformat(),
                             "--format", "text"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.rstrip("\n")


async def test_a_long_status_is_split_per_group_within_each_platforms_limit(tmp_path):
    project, frame = big_survey(tmp_path)
    db = tmp_path / "big.sqlite"
    await fielded(db, project, frame)
    async with await open_storage(db) as storage:
        report = await survey_status(storage, project, NOW)
    strata = [row for row in report.rows if "*" not in (row.group, row.stratum)]
    assert len(strata) > 200
    whole = status_messages(report, project, "vi", limit=1_000_000)
    assert len(whole) == 1 and len(whole[0]) > 4096
    for limit in (4096, 2000):
        messages = status_messages(report, project, "vi", limit=limit)
        assert len(messages) > 1 and all(len(m) <= limit for m in messages), [len(m) for m in messages]
        head = whole[0].splitlines()[0]
        assert all(m.startswith(head) for m in messages)  # each message says what it is
        body = [line for m in messages for line in m.splitlines()[1:]]
        # every line of the whole text exactly once, in the same order: nothing lost to the limit
        assert body == whole[0].splitlines()[1:]
        # a group that fits in one message is never cut in two
        hdnd = [n for n, m in enumerate(messages) if "Đại biểu HĐND" in m]
        assert len(hdnd) == 1


async def test_cli_text_is_what_the_daily_summary_and_progress_are_made_of(tmp_path):
    project = load_survey(SURVEY)
    db = tmp_path / "k.sqlite"
    await fielded(db, project, small_frame(tmp_path / "f.csv"))
    async with await open_storage(db) as storage:
        report = await survey_status(storage, project, NOW)
    [message] = status_messages(report, project, "vi")
    assert cli_status_text(db) == message
    # what khaosat status shows: targets, quota fill, days left
    assert "còn 10 ngày" in message and "Xã Á: " in message and "/20 phiếu" in message


@contextlib.asynccontextmanager
async def bots(tmp_path: Path, db: Path):
    telegram_emulator = BotApiEmulator(limits=Limits(per_bot_per_second=1000, per_chat_per_second=1000,
                                                     per_chat_burst=1000))
    zalo_emulator = ZaloBotApiEmulator(limits=ZaloLimits(per_bot_per_second=1000, per_chat_per_second=1000,
                                                         per_chat_burst=1000))
    telegram_base, zalo_base = await telegram_emulator.start(), await zalo_emulator.start()
    telegram = telegram_emulator.add_bot("123:progress", "progress_bot")
    zalo = zalo_emulator.add_bot("456:progress", "Bot tiến độ")
    forms = (TEMPLATES / "sipas_citizen.md", TEMPLATES / "par_index_officials.md")
    config = Config(database=db, source=tmp_path / "c.toml", bots=(
        BotConfig(channel="telegram", name="tg", token="123:progress", api_base=telegram_base, forms=forms,
                  coordinators=(COORDINATOR,), pace=FAST_PACE),
        BotConfig(channel="zalo", name="zl", token="456:progress", api_base=zalo_base, forms=forms,
                  coordinators=(ZALO_COORDINATOR,), pace=FAST_PACE)))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run(config, stop, clock=lambda: NOW, started=lambda b: ready.set()))
    await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        yield telegram, zalo
    finally:
        stop.set()
        await task
        await telegram_emulator.stop()
        await zalo_emulator.stop()


async def test_progress_in_chat_is_the_status_text_on_both_platforms(tmp_path):
    project, frame = big_survey(tmp_path)
    db = tmp_path / "big.sqlite"
    await fielded(db, project, frame)
    async with await open_storage(db) as storage:
        report = await survey_status(storage, project, NOW)
    async with bots(tmp_path, db) as (telegram, zalo):
        coordinator = telegram.user(COORDINATOR)
        await coordinator.send_text("/progress")
        expected = status_messages(report, project, "vi", limit=4096)
        received = [(await coordinator.wait_for(lambda m: bool(m.text))).text for _ in expected]
        assert received == expected
        zalo_coordinator = zalo.user(ZALO_COORDINATOR)
        await zalo_coordinator.send_text("/progress")
        expected = status_messages(report, project, "vi", limit=2000)
        received = [(await zalo_coordinator.wait_for(lambda m: bool(m.text))).text for _ in expected]
        assert received == expected
    assert "\n\n".join(status_messages(report, project, "vi", limit=4096)) == cli_status_text(db)

    # The daily summary is the same messages, queued once per day however often it is asked for.
    coordinators = [ReminderBot("telegram", "tg", 30, (str(COORDINATOR),)), ReminderBot("zalo", "zl", 30,
                                                                                        (ZALO_COORDINATOR,))]
    async with await open_storage(db) as storage:
        queued = await daily_summary(storage, coordinators, NOW)
        assert await daily_summary(storage, coordinators, NOW) == 0
        rows = await storage._fetchall(  # noqa: SLF001 - what was queued is the point
            "SELECT channel, payload FROM outbox WHERE dedupe_key LIKE 'summary:%' ORDER BY id")
    texts = {channel: [json.loads(payload)["text"] for c, payload in rows if c == channel]
             for channel in ("telegram", "zalo")}
    assert texts == {"telegram": status_messages(report, project, "vi", limit=4096),
                     "zalo": status_messages(report, project, "vi", limit=2000)}
    assert queued == len(rows)
