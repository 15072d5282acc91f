"""A respondent's rights end to end, on both messengers: `khaosat run` (with its console) against the
Telegram and Zalo emulators, real SQLite, a real HTTP client on 127.0.0.1 for the console and the
real command line. The person withdraws in the chat → the coordinator sees the request with its
legal deadline in the console → it is fulfilled (the console on Telegram, `khaosat privacy fulfil`
on Zalo) → exports no longer hold the person → the bot tells them, then forgets their chat."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import socket
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import BotConfig, Config, ConsoleConfig
from bot.invitations import code_hash, new_link_code, new_typed_code
from bot.outbox import Pace
from bot.run import run
from bot.telegram.emulator import BotApiEmulator, Limits
from bot.zalo.emulator import ZaloBotApiEmulator, ZaloLimits
from console.accounts import create_account
from storage import open_storage
from storage.console_db import ConsoleStores
from surveys.privacy import add_working_days, notice_of
from surveys.project import parse_survey, store_survey
from surveys.sampling import draw_sample, import_frame_file
from tests.survey_toml import survey_toml

TOUR = Path(__file__).parent / "forms" / "tour.md"
ZONE = dt.timezone(dt.timedelta(hours=7))
PASSWORD = "mat-khau-thu-2026"
FAST = Pace(per_second=900, per_chat_per_second=900, per_chat_burst=900)
SURVEY = "rieng-tu-2026"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def has(text: str):
    return lambda m: text in (m.text or "")


def project_text(today: dt.date) -> str:
    return survey_toml(SURVEY, "Khảo sát thử quyền riêng tư", "tour", opens=str(today - dt.timedelta(days=5)),
                       closes=str(today + dt.timedelta(days=20)),
                       extra='[organiser]\nname = "Sở Nội vụ tỉnh Thử"\nphone = "0233 3852 123"\n\n'
                             '[privacy]\nversion = "thu-1"\nretention_days = 30\n')


async def fielded(db: Path, today: dt.date, tmp_path: Path) -> tuple[int, int]:
    """The survey, its frame (names and phones) and a census sample; two members."""
    text = project_text(today)
    project = parse_survey(text)
    frame = tmp_path / "frame.csv"
    frame.write_text("id,group,unit,name,phone\n" + "".join(f"p{i},citizen,xa-a,Nguyễn Văn {i},090000000{i}\n"
                                                            for i in range(3)), encoding="utf-8")
    at = f"{today - dt.timedelta(days=5)}T08:00:00+07:00"
    async with await open_storage(db) as storage:
        await store_survey(storage, project, text, "survey.toml", at)
        await import_frame_file(storage, project, frame, at)
        await draw_sample(storage, project, 1, at)
        members = [m.respondent_id for m in await storage.sample_members(SURVEY, "main")]
    async with await ConsoleStores.open(db) as stores:
        await create_account(stores, "coordinator", PASSWORD, role="coordinator", at=at, surveys=(SURVEY,))
    return members[0], members[1]


async def log_in(browser: aiohttp.ClientSession, url: str) -> None:
    page = await (await browser.get(f"{url}/login")).text()
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    await browser.post(f"{url}/login", data={"csrf_token": token, "username": "coordinator", "password": PASSWORD})


async def cli(*args: str):
    """The command line, in a thread of its own (it runs its own event loop) beside the bot."""
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))


async def export_csv(db: Path, out: Path) -> str:
    result = await cli("export", "--db", str(db), "--format", "csv", "--out", str(out), "--personal")
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("channel", ["telegram", "zalo"])
async def test_withdraw_request_to_erasure_on_both_messengers(tmp_path, channel):
    today = dt.datetime.now(ZONE).date()
    clock = lambda: dt.datetime.combine(today, dt.time(10, 0), ZONE)  # noqa: E731
    db = tmp_path / "survey.sqlite"
    person, other = await fielded(db, today, tmp_path)
    link, typed = new_link_code(), new_typed_code()
    async with await open_storage(db) as storage:
        await storage.issue_invitation(person, "link", code_hash(link), clock().isoformat())
        await storage.issue_invitation(person, "typed", code_hash(typed), clock().isoformat())
    port = free_port()
    if channel == "telegram":
        emulator = BotApiEmulator(limits=Limits(per_bot_per_second=1000, per_chat_per_second=1000, per_chat_burst=1000))
        base = await emulator.start()
        platform = emulator.add_bot("123:tg-token", "khaosat_test_bot")
        bot = BotConfig(channel="telegram", name="tg", token="123:tg-token", api_base=base, forms=(TOUR,), pace=FAST)
    else:
        emulator = ZaloBotApiEmulator(limits=ZaloLimits(per_bot_per_second=1000, per_chat_per_second=1000,
                                                        per_chat_burst=1000))
        base = await emulator.start()
        platform = emulator.add_bot("777:zl-token", "Bot Khảo sát")
        bot = BotConfig(channel="zalo", name="zl", token="777:zl-token", api_base=base, forms=(TOUR,), pace=FAST)
    config = Config(database=db, source=tmp_path / "k.toml", console=ConsoleConfig(port=port), bots=(bot,))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run(config, stop, clock=clock, started=lambda bots: ready.set()))
    await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        # -- consent: the survey's own text, recorded exactly as shown ---------------------------
        if channel == "telegram":
            user = platform.user(555001)
            await user.start(link)
        else:
            user = platform.user()
            await user.send_text(typed)
        consent = await user.wait_for(has("đồng ý tham gia"))
        assert "91/2025/QH15" in consent.text and "356/2025/NĐ-CP" in consent.text
        assert "Sở Nội vụ tỉnh Thử" in consent.text and "30 ngày" in consent.text
        assert ("nước ngoài" in consent.text) is (channel == "telegram")  # Telegram's servers are abroad
        if channel == "telegram":
            await user.press("Đồng ý", consent)
        else:
            await user.send_text("1")
        await user.wait_for(has("bao nhiêu tuổi"))
        await user.send_text("52")
        await user.wait_for(has("Giới tính"))

        async with await open_storage(db) as storage:
            consents = await storage.consents_of(person)
            project = parse_survey(project_text(today))
            shown = notice_of(project, "").consent("vi", channel)
            assert [(c.version, c.sha256, c.channel, c.text) for c in consents] == \
                [("thu-1", shown.sha256, channel, shown.text)]
            assert shown.text.split("\n")[0] in consent.text  # the stored text is the one on screen
        before = await export_csv(db, tmp_path / "before.csv")
        async with await open_storage(db) as storage:
            pseudonym = (await storage.get_respondent(person)).pseudonym
        assert pseudonym in before and "Nguyễn Văn" in before

        # -- /privacy: fields held, not the secrets ----------------------------------------------
        await user.send_text("/privacy")
        held = await user.wait_for(has("đang lưu"))
        assert "Họ tên: có lưu" in held.text and "•••" in held.text and "0900000000" not in held.text
        assert "1 câu" in held.text and "phiên bản thu-1" in held.text and "Nguyễn" not in held.text, held.text

        # -- the request: plain words ask, the command confirms ----------------------------------
        await user.send_text("Xóa dữ liệu của tôi")
        await user.wait_for(has("/xoa có"))
        await user.send_text("/xoa có")
        opened = await user.wait_for(has("Đã nhận yêu cầu số"))
        handle_by = today + dt.timedelta(days=15)
        assert f"{handle_by:%d/%m/%Y}" in opened.text
        await user.send_text("40")  # no more questions: the answer is not taken
        await user.wait_for(has("đang được xử lý"))
        async with await open_storage(db) as storage:
            (request,) = await storage.rights_requests()
            assert (await storage.get_respondent(person)).disposition == "refused"
            session = await storage.latest_session(person, "tour")
            assert "age" in await storage.answers(session.id)  # kept until fulfilled

        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            await log_in(browser, url)
            page = await (await browser.get(f"{url}/surveys/{SURVEY}/privacy")).text()
            assert f'data-request="{request.id}"' in page and pseudonym in page
            assert f"{handle_by:%d/%m/%Y}" in page  # the legal deadline
            assert f"{add_working_days(today, 2):%d/%m/%Y}" in page
            if channel == "telegram":  # fulfilled in the console
                token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                async with browser.post(f"{url}/surveys/{SURVEY}/privacy/{request.id}/fulfil",
                                        data={"csrf_token": token, "confirm": "yes"}) as response:
                    assert response.status == 200
                    assert f"Đã xóa dữ liệu của yêu cầu số {request.id}" in await response.text()
        if channel == "zalo":  # fulfilled with the command line
            result = await cli("privacy", "fulfil", str(request.id), "--db", str(db))
            assert result.exit_code == 0, result.output
            again = await cli("privacy", "fulfil", str(request.id), "--db", str(db))
            assert again.exit_code == 1 and "already" in again.output

        done = await user.wait_for(has("đã hoàn tất"), timeout=20)
        assert f"số {request.id}" in done.text
        after = await export_csv(db, tmp_path / "after.csv")
        assert pseudonym not in after and "Nguyễn Văn" not in after
        async with await open_storage(db) as storage:
            other_pseudonym = (await storage.get_respondent(other)).pseudonym
            assert await storage.latest_session(person, "tour") is None
            assert (await storage.personal(person)).name is None
            for _ in range(100):  # the bot closes the request right after queueing the message
                if (await storage.rights_requests())[0].status == "closed":
                    break
                await asyncio.sleep(0.05)
            assert await storage.chats_of(person) == []
            assert [e["action"] for e in await storage.privacy_log(request_id=request.id)] == \
                ["opened", "fulfilled", "closed"]
            frame_id = next(m.frame_id for m in await storage.sample_members(SURVEY) if m.respondent_id == person)
            kept = [row[0] for row in await storage._fetchall("SELECT frame_id FROM frame_personal ORDER BY frame_id")]
            assert kept == sorted({"p0", "p1", "p2"} - {frame_id})
        assert other_pseudonym not in after  # nobody else had answered: an empty export stays valid
        assert list(csv.reader(after.splitlines()))[0]  # a header row is still written
        # The chat is forgotten: the person is now a stranger to the bot, which holds nothing of theirs.
        await user.send_text("delete my data")
        await user.wait_for(has("không lưu câu trả lời hay thông tin cá nhân nào"))
    finally:
        stop.set()
        await task
        await emulator.stop()
