"""The Telegram bot end to end: the real aiogram client and dispatcher against the local
Bot API emulator over HTTP on 127.0.0.1, with the real SQLite storage."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.config import BotConfig, Config
from bot.invitations import code_hash
from bot.outbox import Pace
from bot.run import RunningBot, run
from bot.telegram.emulator import BotApiEmulator, EmulatedBot, Limits, SimulatedUser
from storage import Storage, open_storage
from surveys import codec
from surveys.model import QuestionType, Questionnaire
from surveys.templates import FOLDER as TEMPLATES
from surveys.xlsform import load_questionnaire

SIPAS = TEMPLATES / "sipas_citizen.md"
TOUR = Path(__file__).parent / "forms" / "tour.md"
TOKEN = "123456:TEST-token"
COORDINATOR = 900001
FAST = Limits(per_bot_per_second=1000, per_chat_per_second=1000, per_chat_burst=1000)
FAST_PACE = Pace(per_second=900, per_chat_per_second=900, per_chat_burst=900)
LINK_CODE = "A" * 11 + "b" * 11  # 22 characters of the deep-link alphabet, like a real code


@dataclass
class Harness:
    emulator: BotApiEmulator
    telegram: EmulatedBot
    storage: Storage
    running: list[RunningBot]

    async def invite(self, external_id: str, form_id: str, *, code: str = LINK_CODE, phone: str | None = None) -> int:
        respondent = await self.storage.add_respondent(external_id, form_id=form_id, stratum="xa-a", phone=phone,
                                                       at=now().isoformat())
        await self.storage.issue_invitation(respondent.id, "link", code_hash(code), now().isoformat())
        return respondent.id

    async def invited_user(self, external_id: str, form_id: str, chat_id: int) -> tuple[int, SimulatedUser]:
        """A sampled person, invited, who opens the bot with their personal link."""
        respondent_id = await self.invite(external_id, form_id)
        user = self.telegram.user(chat_id)
        await user.start(LINK_CODE)
        return respondent_id, user

    async def settle(self) -> None:
        """Let the outbox drain: the bot's replies are queued, then sent."""
        for _ in range(200):
            counts = await self.storage.outbox_counts()
            if counts["pending"] == 0 and counts["sending"] == 0:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"outbox did not drain: {counts}")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=7)))


@contextlib.asynccontextmanager
async def harness(tmp_path: Path, database: Path | str | None = None, *, limits: Limits = FAST, pace: Pace = FAST_PACE,
                  clock=None, forms: tuple[Path, ...] = (SIPAS, TOUR), **bot_options):
    """The bot under ``khaosat run`` against the emulator; ``database``: an SQLite path (default: one
    in ``tmp_path``) or a PostgreSQL URL; ``forms``: the questionnaires it asks."""
    database = database or tmp_path / "survey.sqlite"
    emulator = BotApiEmulator(limits=limits)
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, "khaosat_test_bot")
    bot = BotConfig(channel="telegram", name="test", token=TOKEN, api_base=base, forms=forms,
                    coordinators=(COORDINATOR,), pace=pace, **bot_options)
    config = Config(database=database, bots=(bot,), source=tmp_path / "config.toml")
    stop, ready = asyncio.Event(), asyncio.Event()
    running: list[RunningBot] = []

    def started(bots):
        running.extend(bots)
        ready.set()

    task = asyncio.create_task(run(config, stop, started=started, clock=clock))
    await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    storage = await open_storage(config.database)
    try:
        yield Harness(emulator, telegram, storage, running)
    finally:
        stop.set()
        await task
        await storage.close()
        await emulator.stop()
    assert emulator.violations == [], "every request must match the Bot API spec"


def question_by_text(form: Questionnaire, text: str):
    for question in form.asked:
        label = question.label.get("vi")
        if label and label.split("${")[0].strip() and label.split("${")[0].strip() in text:
            return question
    return None


async def answer_everything(user: SimulatedUser, form: Questionnaire, limit: int = 80) -> list[str]:
    """Answer each prompt as it comes: first option, first toggle + done, a valid typed value."""
    answered = []
    for _ in range(limit):
        message = await user.wait_for(lambda m: m.edits == 0 and bool(m.text))
        text = message.text or ""
        if "hoàn thành khảo sát" in text:
            return answered
        buttons = user.inline_buttons(message) if message.inline_keyboard else []
        toggles = [data for _, data in buttons if data.startswith("+:")]
        choices = [data for _, data in buttons if data.startswith("c:")]
        question = question_by_text(form, text)
        if toggles:
            await user.press(toggles[0], message)
            await user.wait_for(lambda m: m.message_id == message.message_id and m.edits > 0)
            await user.press(next(d for _, d in buttons if d.startswith("d:")), message)
        elif choices:
            await user.press(choices[0], message)
        elif question is not None:
            typed = {QuestionType.INTEGER: "1980", QuestionType.DATE: "01/11/2026",
                     QuestionType.TEXT: "Cán bộ rất nhiệt tình", QuestionType.DECIMAL: "2,5"}[question.type]
            await user.send_text(typed)
        else:
            continue  # a note or a section heading: nothing to answer
        answered.append(question.name if question else text[:30])
    raise AssertionError(f"did not finish in {limit} prompts")


async def session_of(storage: Storage, respondent_id: int, form_id: str):
    return await storage.latest_session(respondent_id, form_id)


# -- the main path ---------------------------------------------------------------------------------


async def test_an_invited_respondent_completes_the_sipas_template(tmp_path, database):
    form = load_questionnaire(SIPAS)
    async with harness(tmp_path, database) as h:
        respondent_id, user = await h.invited_user("S-0001", form.form_id, 5001)
        linked = await user.wait_for(lambda m: "Đã xác nhận" in (m.text or ""))
        consent = await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        assert linked.message_id < consent.message_id
        await user.press("Đồng ý", consent)
        answered = await answer_everything(user, form)
        assert "nam_sinh" in answered and "kenh" in answered
        await h.settle()
        session = await session_of(h.storage, respondent_id, form.form_id)
        assert session.status == "completed"
        answers = await h.storage.answers(session.id)
        assert codec.decode_value(answers["nam_sinh"].value) == 1980
        assert (await h.storage.get_respondent(respondent_id)).disposition == "completed"
        history = [row["status"] for row in await h.storage.disposition_history(respondent_id)]
        assert history == ["contacted", "started", "completed"]
        stats = h.telegram.stats
        assert (stats.too_many_requests, stats.forbidden, stats.bad_requests) == (0, 0, 0)
        assert stats.edits >= 1  # the multi-select marks were edited in place


async def test_a_stale_button_and_a_double_tap_change_nothing(tmp_path, database):
    form = load_questionnaire(SIPAS)
    async with harness(tmp_path, database) as h:
        respondent_id, user = await h.invited_user("S-0002", form.form_id, 5002)
        consent = await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        await user.press("Đồng ý", consent)
        first = await user.wait_for(lambda m: bool(m.inline_keyboard) and m.text.startswith(("📋", "Tiến độ")))
        first_buttons = user.inline_buttons(first)
        choices = [d for _, d in first_buttons if d.startswith("c:")]
        first_choice = choices[0]
        await user.press(first_choice, first)
        second = await user.wait_for(lambda m: m.edits == 0 and "thuộc lĩnh vực nào?" in (m.text or ""))
        # The answered question keeps only the chosen option, ticked.
        assert [(label, d) for label, d in user.inline_buttons(first)] == [
            (f"✓ {next(t for t, d in first_buttons if d == first_choice)}", first_choice)]
        await h.settle()
        session = await session_of(h.storage, respondent_id, form.form_id)
        before = (session.revision, await h.storage.answers(session.id), len(user.received))
        # The old prompt's remaining (chosen) button, pressed twice now: a notice on the button,
        # nothing stored. Its other options are gone, so they cannot be pressed by mistake.
        await user.press(first_choice, first)
        await user.press(first_choice, first)
        await asyncio.sleep(0.3)
        await h.settle()
        session_after = await session_of(h.storage, respondent_id, form.form_id)
        assert await h.storage.answers(session.id) == before[1]
        assert len(user.received) == before[2], "no new message for a stale press"
        notices = [a.get("text") for a in user.callback_answers[-2:]]
        assert notices == ["Câu hỏi đó đã qua; xin quý vị trả lời câu hỏi hiện tại."] * 2
        assert session_after.revision == before[0] + 2  # both presses are logged as events
        assert "thuộc lĩnh vực nào?" in second.text


async def test_a_double_tap_on_a_multi_select_option_ticks_it_once(tmp_path, database):
    form = load_questionnaire(SIPAS)
    async with harness(tmp_path, database) as h:
        respondent_id, user = await h.invited_user("S-0003", form.form_id, 5003)
        for _ in range(60):  # answer until the first multi-select prompt
            message = await user.wait_for(lambda m: m.edits == 0 and bool(m.text) and bool(m.inline_keyboard))
            buttons = user.inline_buttons(message)
            if any(d.startswith("+:") for _, d in buttons):
                break
            if not any(d.startswith("c:") for _, d in buttons):  # a typed question: its buttons are skip/back
                question = question_by_text(form, message.text or "")
                await user.send_text({QuestionType.INTEGER: "1980", QuestionType.DATE: "01/11/2026",
                                      QuestionType.DECIMAL: "2,5"}.get(question.type, "Tốt"))
                continue
            await user.press(next(d for _, d in buttons if d.startswith("c:")), message)
        else:
            raise AssertionError("no multi-select prompt reached")
        tick = next(d for _, d in buttons if d.startswith("+:"))
        await user.press(tick, message)
        await user.press(tick, message)  # before the edited keyboard arrives: the same button again
        await user.wait_for(lambda m: m.message_id == message.message_id and m.edits > 0)
        await asyncio.sleep(0.3)
        await h.settle()
        assert message.edits == 1, "one tick, one edit"
        assert user.callback_answers[-1].get("text") == "Đã chọn rồi."
        marked = [d for _, d in user.inline_buttons(message) if d.startswith("-:")]
        assert marked == ["-" + tick[1:]], "the ticked option's button now unticks it"
        await user.press(next(d for _, d in buttons if d.startswith("d:")), message)
        await user.wait_for(lambda m: m.edits == 0 and m.message_id > message.message_id)
        await h.settle()
        session = await session_of(h.storage, respondent_id, form.form_id)
        question = question_by_text(form, message.text or "")
        stored = (await h.storage.answers(session.id))[question.name]
        choice = next(c.name for c in question.choices if c.key == tick.split(":", 2)[2])
        assert codec.decode_value(stored.value) == (choice,)


async def test_a_duplicate_update_is_processed_once(tmp_path, database):
    form = load_questionnaire(SIPAS)
    async with harness(tmp_path, database) as h:
        respondent_id, user = await h.invited_user("S-0003", form.form_id, 5003)
        consent = await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        update_id = await user.press("Đồng ý", consent)
        await user.wait_for(lambda m: "Tiến độ ░░░░░░░░░░ 0%" in (m.text or ""))
        await h.settle()
        session = await session_of(h.storage, respondent_id, form.form_id)
        received = len(user.received)
        await h.telegram.redeliver(update_id)
        await asyncio.sleep(0.3)
        await h.settle()
        again = await session_of(h.storage, respondent_id, form.form_id)
        assert again.revision == session.revision
        assert len(user.received) == received
        assert len(await h.storage.events(session.id)) == session.revision


# -- linking ---------------------------------------------------------------------------------------


async def test_a_wrong_code_is_refused_politely_and_logged(tmp_path, database):
    async with harness(tmp_path, database) as h:
        await h.invite("S-0004", "sipas_citizen_example")
        user = h.telegram.user(5004)
        await user.start("Z" * 22)
        refused = await user.wait_for(lambda m: "Mã mời không đúng" in (m.text or ""))
        assert refused is not None
        assert await h.storage.count_link_attempts("telegram", "test", "5004", "wrong_code",
                                                   (now() - dt.timedelta(hours=1)).isoformat()) == 1
        assert await h.storage.linked_respondent("telegram", "test", "5004") is None


async def test_a_code_reused_from_a_second_chat_is_refused(tmp_path, database):
    async with harness(tmp_path, database) as h:
        respondent_id = await h.invite("S-0005", "sipas_citizen_example")
        first, second = h.telegram.user(5005), h.telegram.user(5006)
        await first.start(LINK_CODE)
        await first.wait_for(lambda m: "Đã xác nhận" in (m.text or ""))
        await second.start(LINK_CODE)
        await second.wait_for(lambda m: "đã được dùng trên một tài khoản khác" in (m.text or ""))
        assert (await h.storage.linked_respondent("telegram", "test", "5005")).id == respondent_id
        assert await h.storage.linked_respondent("telegram", "test", "5006") is None
        assert await h.storage.count_link_attempts("telegram", "test", "5006", "code_reused",
                                                   (now() - dt.timedelta(hours=1)).isoformat()) == 1


async def test_sharing_a_phone_number_links_the_sampled_person(tmp_path, database):
    async with harness(tmp_path, database) as h:
        respondent_id = await h.invite("S-0007", "sipas_citizen_example", phone="+84912345678")
        user = h.telegram.user(5007)
        await user.start()
        welcome = await user.wait_for(lambda m: "chia sẻ số điện thoại" in (m.text or ""))
        assert welcome.reply_markup["keyboard"][0][0]["request_contact"] is True
        await user.share_contact("0912 345 678")  # typed the national way: normalised to +84
        await user.wait_for(lambda m: "Đã xác nhận" in (m.text or ""))
        await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        assert (await h.storage.linked_respondent("telegram", "test", "5007")).id == respondent_id


# -- failures on the way out -----------------------------------------------------------------------


async def test_a_blocked_bot_marks_the_respondent_unreachable(tmp_path, database):
    async with harness(tmp_path, database) as h:
        respondent_id, user = await h.invited_user("S-0008", "sipas_citizen_example", 5008)
        consent = await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        await h.settle()
        await h.storage.set_disposition(respondent_id, "started", now().isoformat(), key="test:started")
        user.block()  # Telegram tells the bot at once (my_chat_member)...
        for _ in range(100):
            if (await h.storage.get_respondent(respondent_id)).disposition == "unreachable":
                break
            await asyncio.sleep(0.02)
        assert (await h.storage.get_respondent(respondent_id)).disposition == "unreachable"
        await h.storage.set_disposition(respondent_id, "started", now().isoformat(), key="test:again")
        # ...and a message sent afterwards (a reminder-like message queued directly) gets a 403.
        from storage import OutgoingMessage
        await h.storage.enqueue([OutgoingMessage("telegram", "test", "5008", "sendMessage",
                                                 '{"chat_id": 5008, "text": "Nhắc nhở"}', priority=10,
                                                 dedupe_key="reminder-1", respondent_id=respondent_id)],
                                now().isoformat())
        h.running[0].sender.wake()
        await h.settle()
        assert (await h.storage.get_respondent(respondent_id)).disposition == "unreachable"
        assert (await h.storage.outbox_counts())["failed"] == 1
        assert consent.text


async def test_a_429_waits_retry_after_and_sends_once(tmp_path, database):
    tight = Limits(per_bot_per_second=1000, per_chat_per_second=1, per_chat_burst=1)
    async with harness(tmp_path, database, limits=tight, pace=FAST_PACE) as h:  # a bot configured too fast
        await h.invite("S-0009", "sipas_citizen_example")
        user = h.telegram.user(5009)
        await user.start(LINK_CODE)
        # "linked" and the consent prompt leave together: the second gets a 429 and waits.
        await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""), timeout=15)
        await h.settle()
        texts = [m.text for m in user.received]
        assert sum("đồng ý tham gia" in t for t in texts) == 1, "sent once, after waiting"
        assert h.running[0].sender.stats.retry_after >= 1


# -- other modes -----------------------------------------------------------------------------------


async def test_open_mode_one_response_per_account(tmp_path, database):
    async with harness(tmp_path, database, open_codes={"quay-mot-cua": {"form": "tour", "stratum": "xa-b"}}) as h:
        user = h.telegram.user(5010)
        await user.start("quay-mot-cua")
        consent = await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        await user.press("Đồng ý", consent)
        # age typed; sex and "online?" pressed by label; comment and visit skipped with the button
        for kind, value in [("type", "40"), ("press", "Nam"), ("press", "Không"), ("skip", ""), ("skip", "")]:
            await user.wait_for(lambda m: m.edits == 0 and (m.text or "").startswith(("📋", "Tiến độ")))
            if kind == "type":
                await user.send_text(value)
            elif kind == "press":
                await user.press(value)
            else:
                await user.press(next(d for _, d in user.inline_buttons() if d.startswith("k:")))
        await user.wait_for(lambda m: "hoàn thành" in (m.text or ""))
        respondent = await h.storage.linked_respondent("telegram", "test", "5010")
        assert (respondent.form_id, respondent.stratum, respondent.disposition) == ("tour", "xa-b", "completed")
        await user.start("quay-mot-cua")
        await user.wait_for(lambda m: "đã trả lời khảo sát này rồi" in (m.text or ""))


async def test_coordinators_get_progress_and_others_do_not(tmp_path, database):
    async with harness(tmp_path, database) as h:
        await h.invite("S-0011", "sipas_citizen_example")
        coordinator, someone = h.telegram.user(COORDINATOR), h.telegram.user(5011)
        await coordinator.send_text("/progress")
        report = await coordinator.wait_for(lambda m: "Tiến độ" in (m.text or ""))
        assert "sipas_citizen_example / xa-a: 0/1" in report.text
        await someone.send_text("/progress")
        reply = await someone.wait_for()
        assert "Tiến độ" not in reply.text
        await coordinator.send_text("/export")
        document = await coordinator.wait_for(lambda m: m.document is not None, timeout=120)
        assert document.document["file_name"].endswith(".csv")


async def test_stop_asks_first_then_records_a_refusal(tmp_path, database):
    async with harness(tmp_path, database) as h:
        respondent_id, user = await h.invited_user("S-0012", "sipas_citizen_example", 5012)
        consent = await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        await user.press("Đồng ý", consent)
        await user.wait_for(lambda m: "Tiến độ ░░░░░░░░░░ 0%" in (m.text or ""))
        await user.send_text("/stop")
        confirm = await user.wait_for(lambda m: "dừng hẳn" in (m.text or ""))
        assert (await h.storage.get_respondent(respondent_id)).disposition == "started"
        await user.press("Dừng hẳn", confirm)
        await user.wait_for(lambda m: "không hỏi thêm" in (m.text or ""))
        await h.settle()
        assert (await h.storage.get_respondent(respondent_id)).disposition == "refused"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_webhook_mode_checks_the_secret_token(tmp_path, database):
    port = free_port()
    url = f"http://127.0.0.1:{port}/tg/test"
    async with harness(tmp_path, database, mode="webhook", webhook_url=url, webhook_listen=f"127.0.0.1:{port}",
                       webhook_secret="s3cret-token") as h:
        await h.invite("S-0013", "sipas_citizen_example")
        user = h.telegram.user(5013)
        await user.start(LINK_CODE)  # delivered by the emulator's webhook POST, with the header
        await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/start",
                                              "chat": {"id": 5099, "type": "private"}}}
        async with aiohttp.ClientSession() as client:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with client.post(url, json=update, headers=headers) as response:
                    assert response.status == 401
        await asyncio.sleep(0.2)
        assert not h.telegram.user(5099).received, "a forged update is never processed"
