"""One table of conversations, run on Telegram and on Zalo through the real clients (aiogram, the
Zalo client) against the emulators: the same replies must store the same values and leave the
same disposition on both. Then the chat rules each channel shares (stale confirmations, lost
prompts, survey dates, back words, languages, texts per channel)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import BotConfig, Config
from bot.invitations import code_hash, new_link_code, new_typed_code
from bot.outbox import REPLY, Pace
from bot.run import RunningBot, run
from bot.telegram.emulator import BotApiEmulator, Limits
from bot.zalo.emulator import ZaloBotApiEmulator, ZaloLimits
from storage import OutgoingMessage, Storage, open_storage
from surveys import codec
from surveys.messages import ui_language
from surveys.project import parse_survey, store_survey
from survey_toml import survey_toml

TOUR = Path(__file__).parent / "forms" / "tour.md"
TG_TOKEN, ZALO_TOKEN = "888:telegram-test-token", "777:zalo-test-token"
FAST_PACE = Pace(per_second=900, per_chat_per_second=900, per_chat_burst=900)
COORDINATOR = 900001
ZONE = dt.timezone(dt.timedelta(hours=7))


def now() -> dt.datetime:
    return dt.datetime.now(ZONE)


def has(text: str):
    return lambda m: text in (m.text or "")


@dataclass
class Bots:
    """Both emulators, kept across runs of `khaosat run` on one database."""

    tmp_path: Path
    database: Path | str
    telegram_emulator: BotApiEmulator
    zalo_emulator: ZaloBotApiEmulator
    telegram: object
    zalo: object
    #: The questionnaires both bots ask.
    forms: tuple[Path, ...] = (TOUR,)

    @property
    def config(self) -> Config:
        bots = (BotConfig(channel="telegram", name="tg", token=TG_TOKEN, api_base=self.telegram_emulator.base_url,
                          forms=self.forms, pace=FAST_PACE, coordinators=(COORDINATOR,)),
                BotConfig(channel="zalo", name="zl", token=ZALO_TOKEN, api_base=self.zalo_emulator.base_url,
                          forms=self.forms, pace=FAST_PACE, coordinators=("zalo-coordinator",)))
        return Config(database=self.database, bots=bots, source=self.tmp_path / "c.toml")


@contextlib.asynccontextmanager
async def emulators(tmp_path: Path, database: Path | str, forms: tuple[Path, ...] = (TOUR,)):
    fast = dict(per_bot_per_second=1000, per_chat_per_second=1000, per_chat_burst=1000)
    telegram_emulator, zalo_emulator = BotApiEmulator(limits=Limits(**fast)), ZaloBotApiEmulator(limits=ZaloLimits(**fast))
    await telegram_emulator.start()
    await zalo_emulator.start()
    try:
        yield Bots(tmp_path, database, telegram_emulator, zalo_emulator, telegram_emulator.add_bot(TG_TOKEN, "khaosat_test_bot"),
                   zalo_emulator.add_bot(ZALO_TOKEN, "Bot Khảo sát"), forms)
    finally:
        await telegram_emulator.stop()
        await zalo_emulator.stop()
    assert telegram_emulator.violations == [] and zalo_emulator.violations == []


@contextlib.asynccontextmanager
async def running(bots: Bots):
    """`khaosat run` with both bots until the block ends; yields a second storage connection."""
    stop, ready = asyncio.Event(), asyncio.Event()
    started: list[RunningBot] = []
    task = asyncio.create_task(run(bots.config, stop, started=lambda b: (started.extend(b), ready.set())))
    await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    storage = await open_storage(bots.config.database)
    try:
        yield storage
        await settle(storage)
    finally:
        stop.set()
        await task
        await storage.close()


async def settle(storage: Storage) -> None:
    for _ in range(300):
        counts = await storage.outbox_counts()
        if counts["pending"] == 0 and counts["sending"] == 0:
            return
        await asyncio.sleep(0.02)


async def invite(storage: Storage, external_id: str, form_id: str = "tour") -> tuple[int, str, str]:
    respondent = await storage.add_respondent(external_id, form_id=form_id, stratum="xa-a", at=now().isoformat())
    typed, link = new_typed_code(), new_link_code()
    await storage.issue_invitation(respondent.id, "typed", code_hash(typed), now().isoformat())
    await storage.issue_invitation(respondent.id, "link", code_hash(link), now().isoformat())
    return respondent.id, typed, link


async def arrive(bots: Bots, storage: Storage, channel: str, external_id: str, chat: int, form_id: str = "tour"):
    """An invited person opens the bot: Telegram by the letter's link, Zalo by typing the code
    inside a sentence. Returns (respondent id, user) once the consent question is on screen."""
    respondent_id, typed, link = await invite(storage, external_id, form_id)
    if channel == "telegram":
        user = bots.telegram.user(chat)
        await user.start(link)
    else:
        user = bots.zalo.user(f"zl-{chat}")
        await user.send_text(f"Mã của tôi là {typed[:4]} {typed[4:]}")
    await user.wait_for(has("đồng ý tham gia"))
    return respondent_id, user


async def stored(storage: Storage, respondent_id: int) -> tuple[dict, str]:
    session = await storage.latest_session(respondent_id, "tour")
    answers = {name: codec.decode_value(a.value) for name, a in (await storage.answers(session.id)).items()
               if codec.decode_value(a.value) is not None and name not in ("start", "end")}
    return answers, (await storage.get_respondent(respondent_id)).disposition


# -- the shared table ------------------------------------------------------------------------------

#: (name, [(reply, what the next message says)], answers stored, disposition)
SCENARIOS = [
    ("numbers, words and a full stop",
     [("1.", "bao nhiêu tuổi"), ("45", "Giới tính"), ("nu", "trực tuyến"), ("1", "kênh nào"),
      ("1 và 3", "hài lòng với"), ("4.", "Góp ý"), ("bỏ qua", "Ngày"), ("bỏ qua", "hoàn thành")],
     {"age": 45, "sex": "nu", "online": "co", "ways": ("web", "app"), "rating": "4"}, "completed"),
    ("options' words, several at once, without accents",
     [("đồng ý", "bao nhiêu tuổi"), ("60", "Giới tính"), ("Nam", "trực tuyến"), ("co", "kênh nào"),
      ("cổng dịch vụ công, vneid", "hài lòng với"), ("rat hai long", "Góp ý"), ("Tốt", "Ngày"),
      ("01/11/2026", "hoàn thành")],
     {"age": 60, "sex": "nam", "online": "co", "ways": ("web", "app"), "rating": "5", "comment": "Tốt",
      "visit": dt.date(2026, 11, 1)}, "completed"),
    ("back by word on every question type; 0 is an answer",
     [("1", "bao nhiêu tuổi"), ("30", "Giới tính"), ("quay lại", "hiện tại: 30"), ("31", "Giới tính"),
      ("2", "trực tuyến"), ("không", "Góp ý"), ("0", "Ngày"), ("<", "hiện tại: 0"), ("Góp ý tốt", "Ngày"),
      ("bỏ qua", "hoàn thành")],
     {"age": 31, "sex": "nu", "online": "khong", "comment": "Góp ý tốt"}, "completed"),
    ("declined at consent", [("2", "không hỏi thêm")], {}, "refused"),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s[0] for s in SCENARIOS])
async def test_the_same_replies_store_the_same_on_both_channels(tmp_path, database, scenario):
    _, replies, answers, disposition = scenario
    async with emulators(tmp_path, database) as bots, running(bots) as storage:
        outcomes = []
        for index, channel in enumerate(("telegram", "zalo")):
            respondent_id, user = await arrive(bots, storage, channel, f"P-{channel}", 7000 + index)
            for reply, expected in replies:
                await user.send_text(reply)
                await user.wait_for(has(expected))
            await settle(storage)
            outcomes.append(await stored(storage, respondent_id))
            texts = [m.text or "" for m in user.received]
            thanks = [text for text in texts if "hoàn thành khảo sát" in text]
            assert len(thanks) == (disposition == "completed"), (channel, thanks)  # one thank-you, not two
            for text in texts:  # the date question says what to type, beside the question
                if "Ngày quý vị đến cơ quan" in text:
                    assert "Ngày quý vị đến cơ quan (ngày/tháng/năm, ví dụ " in text, (channel, text)
        assert outcomes[0] == outcomes[1]
        assert ({name: outcomes[0][0][name] for name in answers}, outcomes[0][1]) == (answers, disposition)


# -- chat rules ------------------------------------------------------------------------------------


async def test_an_old_stop_confirmation_is_stale_once_the_person_answered_on(tmp_path, database):
    async with emulators(tmp_path, database) as bots, running(bots) as storage:
        respondent_id, user = await arrive(bots, storage, "telegram", "P-1", 7101)
        await user.send_text("1")
        await user.wait_for(has("bao nhiêu tuổi"))
        await user.send_text("/stop")
        confirm = await user.wait_for(has("dừng hẳn"))
        await user.send_text("45")  # went on answering instead
        await user.wait_for(has("Giới tính"))
        await user.press("Dừng hẳn", confirm)
        await asyncio.sleep(0.3)
        await settle(storage)
        assert user.callback_answers[-1].get("text") == "Câu hỏi đó đã qua; xin quý vị trả lời câu hỏi hiện tại."
        assert (await stored(storage, respondent_id))[1] == "started"


async def test_a_prompt_lost_in_a_crash_is_shown_again_at_start_up_and_on_the_next_reply(tmp_path, database):
    async with emulators(tmp_path, database) as bots:
        async with running(bots) as storage:
            tg_id, tg = await arrive(bots, storage, "telegram", "P-2", 7201)
            zl_id, zl = await arrive(bots, storage, "zalo", "P-3", 7202)
            for user in (tg, zl):
                await user.send_text("1")
                await user.wait_for(has("bao nhiêu tuổi"))
        # The process died while sending each person's next question: the outbox row stays "sending".
        storage = await open_storage(bots.config.database)
        for channel, bot, chat, respondent_id in (("telegram", "tg", "7201", tg_id), ("zalo", "zl", zl.id, zl_id)):
            await storage.enqueue([OutgoingMessage(channel, bot, chat, "sendMessage",
                                                   f'{{"chat_id": "{chat}", "text": "lost"}}', priority=REPLY,
                                                   dedupe_key=f"lost-{chat}", respondent_id=respondent_id)],
                                  now().isoformat())
            message = (await storage.due_messages(channel, bot, now().isoformat(), 10))[0]
            await storage.mark_sending(message.id, now().isoformat())
        await storage.close()
        async with running(bots) as storage:
            for user in (tg, zl):
                await user.wait_for(has("bao nhiêu tuổi"))  # shown again at start-up, unasked
            assert (await storage.outbox_counts())["unknown"] == 2
            # A reply that fails for good leaves the person without a question too: the next
            # message they send, even an invalid one, gets the question again in full.
            await settle(storage)
            await storage.enqueue([OutgoingMessage("telegram", "tg", "7201", "sendMessage",
                                                   '{"chat_id": 7201, "text": "failed"}', priority=REPLY,
                                                   dedupe_key="failed-7201", respondent_id=tg_id)],
                                  now().isoformat())
            message = (await storage.due_messages("telegram", "tg", now().isoformat(), 10))[0]
            await storage.mark_sending(message.id, now().isoformat())
            await storage.mark_failed(message.id, now().isoformat(), "test: a permanent failure")
            received = len(tg.received)
            await tg.send_text("ba")
            again = await tg.wait_for(has("bao nhiêu tuổi"))
            assert again.message_id > tg.received[received - 1].message_id and again.inline_keyboard is not None


async def set_dates(storage: Storage, opens: dt.date, closes: dt.date, grace: int = 0) -> None:
    source = survey_toml("tour-2026", "Khảo sát thử", "tour", opens=opens.isoformat(), closes=closes.isoformat(),
                         survey_keys=f"grace_days = {grace}")
    await store_survey(storage, parse_survey(source), source, "survey.toml", now().isoformat())


async def test_before_opening_the_bot_says_when_and_starts_nothing(tmp_path, database):
    today = now().date()
    async with emulators(tmp_path, database) as bots:
        storage = await open_storage(bots.config.database)
        await set_dates(storage, today + dt.timedelta(days=5), today + dt.timedelta(days=30))
        await storage.close()
        async with running(bots) as storage:
            for index, channel in enumerate(("telegram", "zalo")):
                respondent_id, typed, link = await invite(storage, f"P-{channel}")
                user = bots.telegram.user(7300) if channel == "telegram" else bots.zalo.user("zl-7301")
                await (user.start(link) if channel == "telegram" else user.send_text(typed))
                opens = (today + dt.timedelta(days=5)).strftime("%d/%m/%Y")
                await user.wait_for(has(f"Quý vị có thể trả lời từ ngày {opens}"))
                await settle(storage)
                assert not any("đồng ý tham gia" in (m.text or "") for m in user.received)
                assert (await storage.get_respondent(respondent_id)).disposition == "contacted"


async def test_after_closing_only_people_already_answering_finish_within_the_grace_period(tmp_path, database):
    today = now().date()
    async with emulators(tmp_path, database) as bots:
        storage = await open_storage(bots.config.database)
        await set_dates(storage, today - dt.timedelta(days=30), today + dt.timedelta(days=1))
        await storage.close()
        async with running(bots) as storage:
            answering_id, answering = await arrive(bots, storage, "zalo", "P-4", 7401)
            await answering.send_text("1")
            await answering.wait_for(has("bao nhiêu tuổi"))
            late_id, late_typed, _ = await invite(storage, "P-5")
            await set_dates(storage, today - dt.timedelta(days=30), today - dt.timedelta(days=1), grace=3)
        async with running(bots) as storage:
            await answering.send_text("45")
            await answering.wait_for(has("Giới tính"))  # within the grace period: goes on
            late = bots.zalo.user("zl-7402")
            await late.send_text(late_typed)
            closed = (today - dt.timedelta(days=1)).strftime("%d/%m/%Y")
            await late.wait_for(has(f"đã kết thúc ngày {closed}"))
            await settle(storage)
            assert await storage.latest_session(late_id, "tour") is None or \
                (await storage.latest_session(late_id, "tour")).status in ("new",)
            await set_dates(storage, today - dt.timedelta(days=30), today - dt.timedelta(days=5), grace=3)
        async with running(bots) as storage:
            await answering.send_text("2")
            await answering.wait_for(has("đã kết thúc"))
            await settle(storage)
            answers, disposition = await stored(storage, answering_id)
            assert (answers["age"], "sex" in answers, disposition) == (45, False, "started")


async def test_zalo_texts_never_mention_buttons_and_help_explains_typing(tmp_path, database):
    async with emulators(tmp_path, database) as bots, running(bots) as storage:
        _, user = await arrive(bots, storage, "zalo", "P-6", 7501)
        consent = user.received[-1]
        assert "gõ 1" in consent.text.lower()  # the consent screen says what to type
        await user.send_text("/help")
        help_text = (await user.wait_for(has("/resume"))).text
        await user.send_sticker()
        sticker = (await user.wait_for(has("Xin trả lời bằng chữ"))).text
        for text in (help_text, sticker):
            assert "bấm" not in text and "nút" not in text
        assert "quay lại" in help_text
        # An unclear consent reply: whatever words the explanation asks for are on the screen.
        await user.send_text("để tôi xem")
        unclear = await user.wait_for(lambda m: "đồng ý tham gia" not in (m.text or ""))
        again = await user.wait_for(has("đồng ý tham gia"))
        asked = re.findall(r"[«“]([^»”]+)[»”]", unclear.text)
        assert asked and all(f"“{word}”" in again.text or f"«{word}»" in again.text for word in asked), \
            (unclear.text, again.text)


async def test_lang_lists_the_forms_languages_and_answers_in_the_new_one(tmp_path, database):
    async with emulators(tmp_path, database) as bots, running(bots) as storage:
        for index, channel in enumerate(("telegram", "zalo")):
            _, user = await arrive(bots, storage, channel, f"P-{channel}", 7600 + index)
            await user.send_text("/lang")
            listed = await user.wait_for(has("ngôn ngữ"))
            assert "vi (Tiếng Việt)" in listed.text and "en (English)" in listed.text
            await user.send_text("/lang en")
            await user.wait_for(has("Switched to English"))
            await user.wait_for(has("Do you agree"))
    assert ui_language("km") == "en" and ui_language("vi") == "vi"


async def test_progress_and_export_for_coordinators_on_both_channels(tmp_path, database):
    async with emulators(tmp_path, database) as bots, running(bots) as storage:
        await invite(storage, "P-7")
        tg, zl = bots.telegram.user(COORDINATOR), bots.zalo.user("zalo-coordinator")
        for user in (tg, zl):
            await user.send_text("/progress")
            assert "tour / xa-a: 0/1" in (await user.wait_for(has("Tiến độ"))).text
        await zl.send_text("/export")
        await zl.wait_for(has("không gửi được tệp"))
        await tg.send_text("/export")
        assert (await tg.wait_for(lambda m: m.document is not None, timeout=120)).document["file_name"].endswith(".csv")


async def test_coordinators_are_told_when_fieldwork_opens_and_closes(tmp_path, database):
    today = now().date()
    async with emulators(tmp_path, database) as bots:
        coordinator = bots.telegram.user(COORDINATOR)
        async with running(bots) as storage:
            await coordinator.send_text("/progress")  # a chat the bot may write to
            await coordinator.wait_for()
            await set_dates(storage, today - dt.timedelta(days=1), today + dt.timedelta(days=9))
        for _ in range(2):  # a restart tells nothing twice
            async with running(bots):
                pass
        opened = [m.text for m in coordinator.received if "Khảo sát “Khảo sát thử” đã mở" in (m.text or "")]
        assert len(opened) == 1
        storage = await open_storage(bots.config.database)
        await set_dates(storage, today - dt.timedelta(days=20), today - dt.timedelta(days=1), grace=2)
        await storage.close()
        async with running(bots):
            await coordinator.wait_for(has("đã kết thúc ngày"))
