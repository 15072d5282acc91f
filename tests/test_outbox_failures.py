"""Every answer the platform can give a send ends the message in sent, failed (with the reason) or a
bounded retry with backoff — on both transports, against the real emulators answering what a real
API, a proxy or a flaky network does: 401, 404, 409, 500, a body that is not JSON. (An answer cut
half-way may mean the message was delivered: ``test_outbox_lost_answers.py``.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import logging

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from emulator_helpers import FakeClock

from bot.outbox import REPLY, OutboxSender, Pace
from bot.telegram.emulator import BotApiEmulator
from bot.telegram.transport import TelegramTransport
from bot.zalo.client import ZaloClient
from bot.zalo.emulator import ZaloBotApiEmulator
from bot.zalo.transport import ZaloTransport
from storage import OutgoingMessage, open_storage

AT = "2026-11-02T08:00:00+00:00"
TELEGRAM_TOKEN = "424242:FAILURES"
ZALO_TOKEN = "3185630915094462771:FaIlUrEsZaLoToKeN"

#: (what the emulator answers, what the stored reason must mention)
FAULTS = {
    "401": (dict(status=401, description="Unauthorized"), "401"),
    "404": (dict(status=404, description="Not Found"), "404"),
    "409": (dict(status=409, description="Conflict: terminated by other getUpdates request"), "409"),
    "500": (dict(status=500, description="Internal Server Error"), "internal server error"),
    "garbage": (dict(status=200, body="<html><body>502 Bad Gateway</body></html>"), "could not be read"),
    "garbage-502": (dict(status=502, body="<html>Bad Gateway</html>"), "could not be read"),
}


class Platform:
    """One platform's emulator, a person who opened the chat, and the real client and transport."""

    def __init__(self, channel: str, timeout: float | None = None):
        self.channel = channel
        self.timeout = timeout  # the clients' whole-request timeout (None: their own default)

    async def __aenter__(self) -> Platform:
        if self.channel == "telegram":
            self.emulator = BotApiEmulator()
            base = await self.emulator.start()
            user = self.emulator.add_bot(TELEGRAM_TOKEN, "failures_bot").user(501)
            await user.start()
            self.chat_id: int | str = 501
            self.client = Bot(TELEGRAM_TOKEN, session=AiohttpSession(
                api=TelegramAPIServer.from_base(base), **({"timeout": self.timeout} if self.timeout else {})))
            self.transport = TelegramTransport(self.client)
        else:
            self.emulator = ZaloBotApiEmulator()
            base = await self.emulator.start()
            user = self.emulator.add_bot(ZALO_TOKEN, "Bot khảo sát").user()
            await user.send_text("xin chào")  # a Zalo bot cannot write first
            self.chat_id = user.id
            self.client = ZaloClient(ZALO_TOKEN, base, **({"timeout": self.timeout} if self.timeout else {}))
            self.transport = ZaloTransport(self.client)
        self.user = user
        return self

    async def __aexit__(self, *exc) -> None:
        if self.channel == "telegram":
            await self.client.session.close()
        else:
            await self.client.close()
        await self.emulator.stop()

    def message(self, text: str, key: str | None = None) -> OutgoingMessage:
        return OutgoingMessage(self.channel, "b", str(self.chat_id), "sendMessage",
                               json.dumps({"chat_id": self.chat_id, "text": text}), priority=REPLY,
                               dedupe_key=key or text)

    def received(self, text: str) -> int:
        return sum(1 for message in self.user.received if message.text == text)

    def send_requests(self) -> int:
        return sum(1 for request in self.emulator.requests if request.method == "sendMessage")


async def outbox_rows(storage) -> list[tuple[str, int, str | None]]:
    return [tuple(row) for row in await storage._fetchall(  # noqa: SLF001 - the stored outcome is the point
        "SELECT state, attempts, error FROM outbox ORDER BY id")]


async def one_round(sender: OutboxSender) -> None:
    """Start what is due and wait for those sends to end, without retrieving their exceptions as
    ``drain`` would (the running bot never does until shutdown)."""
    await sender.pump()
    started = set(sender._tasks)  # noqa: SLF001
    if started:
        await asyncio.wait(started)


@pytest.fixture
def unretrieved(caplog):
    """The asyncio log's "Task exception was never retrieved", after a collection lets it speak."""
    def lines() -> list[str]:
        gc.collect()
        return [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]
    caplog.set_level(logging.ERROR, logger="asyncio")
    return lines


@pytest.mark.parametrize("channel", ["telegram", "zalo"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_an_unclassified_answer_is_retried_with_its_reason_then_delivered(database, tmp_path, channel, fault,
                                                                                  unretrieved):
    answer, reason = FAULTS[fault]
    async with Platform(channel) as platform, await open_storage(database) as storage:
        platform.emulator.answer_next("sendMessage", **answer)
        await storage.enqueue([platform.message("Câu 1/10", "m1")], AT)
        clock = FakeClock()
        sender = OutboxSender(storage, channel, "b", platform.transport, Pace(max_attempts=3), clock=clock)
        sender.wall = lambda: dt.datetime.fromisoformat(AT)
        await one_round(sender)
        [(state, attempts, error)] = await outbox_rows(storage)
        assert (state, attempts) == ("pending", 1), (state, error)
        assert reason in error.lower(), error
        [queued] = await storage.due_messages(channel, "b", "9999", 10)
        assert queued.not_before > AT  # backoff: not before a while
        sender.wall = lambda: dt.datetime.fromisoformat(queued.not_before) + dt.timedelta(seconds=1)
        clock.advance(600)  # past any pause of the whole sender too
        await one_round(sender)
        assert [state for state, _, _ in await outbox_rows(storage)] == ["sent"]
    assert unretrieved() == []


@pytest.mark.parametrize("channel", ["telegram", "zalo"])
async def test_retries_are_bounded_and_end_failed_with_the_reason(database, tmp_path, channel, unretrieved):
    async with Platform(channel) as platform, await open_storage(database) as storage:
        await storage.enqueue([platform.message("Câu 1/10", "m1")], AT)
        sender = OutboxSender(storage, channel, "b", platform.transport, Pace(max_attempts=2))
        wall = dt.datetime.fromisoformat(AT)
        for _ in range(2):
            platform.emulator.answer_next("sendMessage", status=409, description="Conflict")
            sender.wall = lambda: wall
            await one_round(sender)
            wall += dt.timedelta(hours=1)
        [(state, _, error)] = await outbox_rows(storage)
        assert state == "failed" and "409" in error and "conflict" in error.lower(), (state, error)
    assert unretrieved() == []


async def test_a_queued_call_the_transport_cannot_even_build_fails_with_the_reason(database, tmp_path, unretrieved):
    """A malformed row (a document without its path) must not leave the message in *sending*."""
    async with Platform("telegram") as platform, await open_storage(database) as storage:
        await storage.enqueue([OutgoingMessage("telegram", "b", "501", "sendDocument",
                                               json.dumps({"chat_id": 501, "document": {"filename": "x.csv"}}),
                                               priority=REPLY, dedupe_key="doc")], AT)
        sender = OutboxSender(storage, "telegram", "b", platform.transport)
        await one_round(sender)
        [(state, _, error)] = await outbox_rows(storage)
        assert state == "failed" and "path" in error, error  # at once: it can never be sent
    assert unretrieved() == []


class RaisingTransport:
    """A transport with a bug: it raises instead of reporting an outcome."""

    async def send(self, method, payload):
        raise RuntimeError("a bug in the transport")


async def test_a_transport_that_raises_gets_a_bounded_retry_not_a_message_stuck_in_sending(database, tmp_path, unretrieved):
    async with await open_storage(database) as storage:
        await storage.enqueue([OutgoingMessage("zalo", "b", "c1", "sendMessage", json.dumps({"chat_id": "c1",
                                               "text": "x"}), priority=REPLY, dedupe_key="m")], AT)
        sender = OutboxSender(storage, "zalo", "b", RaisingTransport(), Pace(max_attempts=2))
        wall = dt.datetime.fromisoformat(AT)
        states = []
        for _ in range(2):
            sender.wall = lambda: wall
            await one_round(sender)
            states += [(state, error) for state, _, error in await outbox_rows(storage)]
            wall += dt.timedelta(hours=1)
        assert states == [("pending", "RuntimeError: a bug in the transport"),
                          ("failed", "RuntimeError: a bug in the transport")]
    assert unretrieved() == []


async def test_a_sender_whose_token_is_refused_pauses_the_whole_bot(database, tmp_path):
    """A 401 is about the bot, not the message: the other chats' messages wait too, instead of each
    spending an attempt on the same refusal."""
    async with Platform("telegram") as platform, await open_storage(database) as storage:
        platform.emulator.answer_next("sendMessage", status=401, description="Unauthorized")
        await storage.enqueue([platform.message("một", "m1")], AT)
        sender = OutboxSender(storage, "telegram", "b", platform.transport, Pace(max_attempts=3))
        sender.wall = lambda: dt.datetime.fromisoformat(AT)
        await one_round(sender)
        await storage.enqueue([platform.message("hai", "m2")], AT)
        assert await sender.pump() > 0  # paused: nothing started
        await sender.drain()
        assert [(state, attempts) for state, attempts, _ in await outbox_rows(storage)] == [("pending", 1),
                                                                                            ("pending", 0)]


# -- receiving: a long poll cut off mid-answer is polled again ----------------------------------


@pytest.mark.parametrize("channel", ["telegram", "zalo"])
async def test_polling_goes_on_after_an_answer_cut_off_mid_way(tmp_path, channel):
    from bot.config import BotConfig, Config
    from bot.run import run
    from surveys.templates import FOLDER as TEMPLATES

    emulator = BotApiEmulator() if channel == "telegram" else ZaloBotApiEmulator()
    base = await emulator.start()
    token = TELEGRAM_TOKEN if channel == "telegram" else ZALO_TOKEN
    account = emulator.add_bot(token, "failures_bot" if channel == "telegram" else "Bot khảo sát")
    for _ in range(2):  # the first polls break off half-way, as a flaky mobile network does
        emulator.answer_next("getUpdates", status=200, body=json.dumps({"ok": True, "result": []}), reset=True)
    config = Config(database=tmp_path / "db.sqlite", source=tmp_path / "c.toml", bots=(
        BotConfig(channel=channel, name="b", token=token, api_base=base, forms=(TEMPLATES / "sipas_citizen.md",)),))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run(config, stop, started=lambda bots: ready.set()))
    try:
        await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        user = account.user(601) if channel == "telegram" else account.user()
        await (user.start() if channel == "telegram" else user.send_text("xin chào"))
        reply = await user.wait_for(lambda m: bool(m.text), timeout=30)
        assert reply.text
        assert [r.status for r in emulator.requests if r.method == "getUpdates"][:2] == [200, 200]
    finally:
        stop.set()
        await task
        await emulator.stop()
