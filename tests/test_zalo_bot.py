"""The Zalo bot end to end against the Zalo Bot API emulator over HTTP on 127.0.0.1, with the
real storage; and one person moving between Telegram and Zalo."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.config import BotConfig, Config
from bot.invitations import code_hash, new_link_code, new_typed_code
from bot.outbox import Pace
from bot.run import RunningBot, run
from bot.telegram.emulator import BotApiEmulator, Limits
from bot.zalo.emulator import ZaloBotApiEmulator, ZaloLimits
from storage import Storage, open_storage
from surveys import codec
from surveys.model import QuestionType
from surveys.templates import FOLDER as TEMPLATES
from surveys.xlsform import load_questionnaire

SIPAS = TEMPLATES / "sipas_citizen.md"
TOUR = Path(__file__).parent / "forms" / "tour.md"
ZALO_TOKEN = "777:zalo-test-token"
TG_TOKEN = "888:telegram-test-token"
FAST_PACE = Pace(per_second=900, per_chat_per_second=900, per_chat_burst=900)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=7)))


@dataclass
class Harness:
    zalo: object
    telegram: object | None
    storage: Storage
    running: list[RunningBot]
    emulator: ZaloBotApiEmulator

    async def invite(self, external_id: str, form_id: str) -> tuple[int, str, str]:
        respondent = await self.storage.add_respondent(external_id, form_id=form_id, stratum="xa-a",
                                                       at=now().isoformat())
        typed, link = new_typed_code(), new_link_code()
        await self.storage.issue_invitation(respondent.id, "typed", code_hash(typed), now().isoformat())
        await self.storage.issue_invitation(respondent.id, "link", code_hash(link), now().isoformat())
        return respondent.id, typed, link

    async def settle(self) -> None:
        for _ in range(300):
            counts = await self.storage.outbox_counts()
            if counts["pending"] == 0 and counts["sending"] == 0:
                return
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def harness(tmp_path: Path, database: Path | str | None = None, *, with_telegram: bool = False,
                  forms=(SIPAS, TOUR), **zalo_options):
    database = database or tmp_path / "survey.sqlite"
    zalo_emulator = ZaloBotApiEmulator(limits=ZaloLimits(per_bot_per_second=1000, per_chat_per_second=1000,
                                                         per_chat_burst=1000))
    zalo_base = await zalo_emulator.start()
    zalo = zalo_emulator.add_bot(ZALO_TOKEN, "Bot Khảo sát")
    bots = [BotConfig(channel="zalo", name="zl", token=ZALO_TOKEN, api_base=zalo_base, forms=tuple(forms),
                      pace=FAST_PACE, **zalo_options)]
    tg_emulator = telegram = None
    if with_telegram:
        tg_emulator = BotApiEmulator(limits=Limits(per_bot_per_second=1000, per_chat_per_second=1000,
                                                   per_chat_burst=1000))
        tg_base = await tg_emulator.start()
        telegram = tg_emulator.add_bot(TG_TOKEN, "khaosat_test_bot")
        bots.append(BotConfig(channel="telegram", name="tg", token=TG_TOKEN, api_base=tg_base, forms=tuple(forms),
                              pace=FAST_PACE))
    config = Config(database=database, bots=tuple(bots), source=tmp_path / "c.toml")
    stop, ready = asyncio.Event(), asyncio.Event()
    running: list[RunningBot] = []
    task = asyncio.create_task(run(config, stop, started=lambda b: (running.extend(b), ready.set())))
    await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    storage = await open_storage(config.database)
    try:
        yield Harness(zalo, telegram, storage, running, zalo_emulator)
    finally:
        stop.set()
        await task
        await storage.close()
        await zalo_emulator.stop()
        if tg_emulator:
            await tg_emulator.stop()
    assert zalo_emulator.violations == []


def has(text: str):
    return lambda m: text in (m.text or "")


async def answer_sipas_by_typing(user, form, *, words: bool = False, limit: int = 90) -> None:
    """Reply to each prompt by typing: the first option's number (or its words without accents)."""
    for _ in range(limit):
        message = await user.wait_for(lambda m: True)
        text = message.text or ""
        if "hoàn thành khảo sát" in text:
            return
        options = re.findall(r"^  (\d+)\. (?:\[[ x]\] )?(.+)$", text, re.MULTILINE)
        question = next((q for q in form.asked if q.label.get("vi").split("${")[0].strip() in text), None)
        if question is None:
            continue  # a note, a heading or the "linked" message
        if options:
            if question.type is QuestionType.SELECT_MULTIPLE:
                await user.send_text("1, 2" if len(options) > 1 else "1")
            elif words:
                await user.send_text(strip_accents(options[0][1]).lower())
            else:
                await user.send_text(options[0][0])
        elif question.type is QuestionType.INTEGER:
            await user.send_text("1975")
        elif question.type is QuestionType.DATE:
            await user.send_text("02/11/2026")
        else:
            await user.send_text("bỏ qua")
    raise AssertionError("did not finish")


def strip_accents(text: str) -> str:
    import unicodedata

    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


async def completed_session(storage: Storage, respondent_id: int, form_id: str):
    session = await storage.latest_session(respondent_id, form_id)
    assert session.status == "completed"
    return session


# -- answering -------------------------------------------------------------------------------------


async def test_an_invited_respondent_completes_sipas_by_typed_numbers(tmp_path, database):
    form = load_questionnaire(SIPAS)
    async with harness(tmp_path, database) as h:
        respondent_id, typed, _ = await h.invite("Z-1", form.form_id)
        user = h.zalo.user(display_name="Lan")
        await user.send_text(f"{typed[:4].lower()} {typed[4:].lower()}")  # as read off the letter
        await user.wait_for(has("Đã xác nhận"))
        consent = await user.wait_for(has("đồng ý tham gia"))
        assert "1. Đồng ý" in consent.text
        await user.send_text("1")
        await answer_sipas_by_typing(user, form)
        await h.settle()
        session = await completed_session(h.storage, respondent_id, form.form_id)
        answers = {k: codec.decode_value(v.value) for k, v in (await h.storage.answers(session.id)).items()}
        assert answers["nam_sinh"] == 1975
        first_channel = next(q for q in form.asked if q.type is QuestionType.SELECT_MULTIPLE)
        assert len(answers[first_channel.name]) == 2  # "1, 2" chose two options
        assert (await h.storage.get_respondent(respondent_id)).disposition == "completed"
        assert all(len(m.text) <= 2000 for m in user.received)


async def test_choice_text_without_accents_answers_too(tmp_path, database):
    form = load_questionnaire(SIPAS)
    async with harness(tmp_path, database) as h:
        respondent_id, typed, _ = await h.invite("Z-2", form.form_id)
        user = h.zalo.user()
        await user.send_text(typed)
        await user.wait_for(has("đồng ý tham gia"))
        await user.send_text("dong y")
        await answer_sipas_by_typing(user, form, words=True)
        await completed_session(h.storage, respondent_id, form.form_id)


async def test_back_by_word_and_an_unclear_reply_gets_the_question_again(tmp_path, database):
    async with harness(tmp_path, database, forms=(TOUR,)) as h:
        respondent_id, typed, _ = await h.invite("Z-3", "tour")
        user = h.zalo.user()
        await user.send_text(typed)
        await user.wait_for(has("đồng ý tham gia"))
        await user.send_text("1")
        await user.wait_for(has("bao nhiêu tuổi"))
        await user.send_text("45")
        sex = await user.wait_for(has("Giới tính"))
        assert "(gõ “quay lại” hoặc “<” để quay lại câu trước)" in sex.text
        await user.send_text("ba")  # not an option
        await user.wait_for(has("Chưa nhận ra câu trả lời “ba”"))
        await user.wait_for(has("Giới tính"))  # the question again
        await user.send_text("Quay lại")
        back = await user.wait_for(has("bao nhiêu tuổi"))
        assert "Câu trả lời hiện tại: 45" in back.text
        await user.send_text("46")
        await user.wait_for(has("Giới tính"))
        await user.send_text("2")
        await user.wait_for(has("trực tuyến?"))
        await user.send_text("1")
        ways = await user.wait_for(has("kênh nào"))
        assert "gõ các số cách nhau" in ways.text
        await user.send_text("1,3")
        await user.wait_for(has("hài lòng với Cổng dịch vụ công, Ứng dụng VNeID"))
        await h.settle()
        session = await h.storage.latest_session(respondent_id, "tour")
        answers = {k: codec.decode_value(v.value) for k, v in (await h.storage.answers(session.id)).items()}
        assert (answers["age"], answers["sex"], answers["ways"]) == (46, "nu", ("web", "app"))


# -- linking ---------------------------------------------------------------------------------------


async def test_wrong_codes_are_limited_per_chat_and_hour(tmp_path, database):
    async with harness(tmp_path, database, code_attempts_per_hour=3) as h:
        _, typed, _ = await h.invite("Z-4", "sipas_citizen_example")
        user = h.zalo.user()
        for attempt in range(3):
            await user.send_text("ZZZZ" + f"{attempt:04d}")
            await user.wait_for(has("Mã mời không đúng"))
        await user.send_text(typed)  # even the right code waits now
        await user.wait_for(has("nhập sai mã quá nhiều lần"))
        assert await h.storage.linked_respondent("zalo", "zl", user.id) is None


async def test_a_code_reused_from_a_second_zalo_chat_is_refused(tmp_path, database):
    async with harness(tmp_path, database) as h:
        respondent_id, typed, _ = await h.invite("Z-5", "sipas_citizen_example")
        first, second = h.zalo.user(), h.zalo.user()
        await first.send_text(typed)
        await first.wait_for(has("Đã xác nhận"))
        await second.send_text(typed)
        await second.wait_for(has("đã được dùng trên một tài khoản khác"))
        assert (await h.storage.linked_respondent("zalo", "zl", first.id)).id == respondent_id
        assert await h.storage.linked_respondent("zalo", "zl", second.id) is None


async def test_a_duplicate_delivery_is_processed_once(tmp_path, database):
    async with harness(tmp_path, database, forms=(TOUR,)) as h:
        respondent_id, typed, _ = await h.invite("Z-6", "tour")
        user = h.zalo.user()
        await user.send_text(typed)
        await user.wait_for(has("đồng ý tham gia"))
        message_id = await user.send_text("1")
        await user.wait_for(has("bao nhiêu tuổi"))
        await h.settle()
        session = await h.storage.latest_session(respondent_id, "tour")
        received = len(user.received)
        await h.zalo.redeliver(message_id)
        await asyncio.sleep(0.3)
        await h.settle()
        assert (await h.storage.latest_session(respondent_id, "tour")).revision == session.revision
        assert len(user.received) == received


async def test_a_long_message_is_split_at_line_boundaries(tmp_path, database):
    long_form = tmp_path / "long.md"
    paragraph = "Đây là một đoạn giới thiệu dài về cuộc khảo sát. " * 12
    long_form.write_text(TOUR.read_text(encoding="utf-8").replace(
        "Chào mừng đến với phiếu thử.", (paragraph.strip() + "<br>") * 5), encoding="utf-8")
    async with harness(tmp_path, database, forms=(long_form,)) as h:
        _, typed, _ = await h.invite("Z-7", "tour")
        user = h.zalo.user()
        await user.send_text(typed)
        await user.wait_for(has("đồng ý tham gia"))
        await user.send_text("1")
        await user.wait_for(has("bao nhiêu tuổi"))
        intro = [m.text for m in user.received if "đoạn giới thiệu" in (m.text or "")]
        assert len(intro) >= 2 and all(len(t) <= 2000 for t in intro)
        assert "".join(intro).count("đoạn giới thiệu") == 60  # nothing lost in the split


# -- across channels -------------------------------------------------------------------------------


async def test_start_on_telegram_and_finish_on_zalo(tmp_path, database):
    async with harness(tmp_path, database, with_telegram=True, forms=(TOUR,)) as h:
        respondent_id, typed, link = await h.invite("Z-8", "tour")
        tg = h.telegram.user(6001)
        await tg.start(link)
        consent = await tg.wait_for(has("đồng ý tham gia"))
        await tg.press("Đồng ý", consent)
        await tg.wait_for(has("bao nhiêu tuổi"))
        await tg.send_text("52")
        await tg.wait_for(has("Giới tính"))
        # The same person opens Zalo and types the code from the letter.
        zl = h.zalo.user()
        await zl.send_text(typed)
        resumed = await zl.wait_for(has("Giới tính"))
        assert "1. Nam" in resumed.text
        for reply, expect in [("1", "trực tuyến?"), ("2", "Góp ý"), ("bỏ qua", "Ngày"), ("bỏ qua", "hoàn thành")]:
            await zl.send_text(reply)
            await zl.wait_for(has(expect))
        await h.settle()
        session = await completed_session(h.storage, respondent_id, "tour")
        answers = {k: codec.decode_value(v.value) for k, v in (await h.storage.answers(session.id)).items()}
        assert (answers["age"], answers["sex"], answers["online"]) == (52, "nam", "khong")
        assert len(await h.storage.list_sessions("tour")) == 1  # one session, two channels
        assert {c[0] for c in await h.storage.chats_of(respondent_id)} == {"telegram", "zalo"}


async def test_webhook_mode_checks_the_secret_header(tmp_path, database):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/zalo/zl"
    async with harness(tmp_path, database, forms=(TOUR,), mode="webhook", webhook_url=url,
                       webhook_listen=f"127.0.0.1:{port}", webhook_secret="zalo-hook-secret") as h:
        _, typed, _ = await h.invite("Z-9", "tour")
        user = h.zalo.user()
        await user.send_text(typed)
        await user.wait_for(has("đồng ý tham gia"))
        forged = {"ok": True, "result": {"event_name": "message.text.received", "message": {
            "message_id": "x1", "from": {"id": "intruder"}, "chat": {"id": "intruder", "chat_type": "PRIVATE"},
            "date": 0, "text": typed}}}
        async with aiohttp.ClientSession() as client:
            for headers in ({}, {"X-Bot-Api-Secret-Token": "wrong-secret"}):
                async with client.post(url, json=forged, headers=headers) as response:
                    assert response.status == 403
        assert await h.storage.linked_respondent("zalo", "zl", "intruder") is None
