"""The outbox against the emulator: priorities, per-chat order, retries after network failures, and
the feed a sender asks for bulk messages (reminders) as it drains."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.outbox import BULK, REPLY, OutboxSender, Pace, SlidingWindow, TokenBucket, feed_room
from bot.telegram.emulator import BotApiEmulator, Limits
from bot.telegram.transport import TelegramTransport
from emulator_helpers import FakeClock
from storage import OutgoingMessage, open_storage

TOKEN = "424242:OUTBOX"
AT = "2026-11-02T08:00:00+00:00"


def message(chat: int, text: str, priority: int, key: str) -> OutgoingMessage:
    return OutgoingMessage("telegram", "t", str(chat), "sendMessage", json.dumps({"chat_id": chat, "text": text}),
                           priority=priority, dedupe_key=key)


async def run_until(sender: OutboxSender, done, timeout: float = 20) -> None:
    """Run the sender until ``await done()`` is true (or ``timeout`` seconds), then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and not await done():
        await asyncio.sleep(0.02)
    stop.set()
    await task


async def drain(sender: OutboxSender, storage, timeout: float = 20) -> None:
    async def drained() -> bool:
        counts = await storage.outbox_counts()
        return counts["pending"] == 0 and counts["sending"] == 0

    await run_until(sender, drained, timeout)


async def test_replies_go_before_bulk_and_each_chat_keeps_its_order(database, tmp_path):
    emulator = BotApiEmulator(limits=Limits(per_bot_per_second=5, per_chat_per_second=100, per_chat_burst=100))
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, "outbox_bot")
    users = [telegram.user(100 + n) for n in range(6)]
    for user in users:
        await user.start()  # a bot cannot write first
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    async with await open_storage(database) as storage:
        bulk = [message(100 + n, f"reminder {n}", BULK, f"bulk-{n}") for n in range(5)]
        ordered = [message(105, f"step {n}", REPLY, f"reply-{n}") for n in range(3)]
        await storage.enqueue(bulk + ordered, AT)
        sender = OutboxSender(storage, "telegram", "t", TelegramTransport(bot),
                              Pace(per_second=5, per_chat_per_second=50, per_chat_burst=50))
        await drain(sender, storage)
        sent = delivered_texts(emulator)
        assert sent[:3] == ["step 0", "step 1", "step 2"], sent  # replies first, in order
        assert sorted(sent[3:]) == [f"reminder {n}" for n in range(5)]
        assert telegram.stats.too_many_requests == 0
        assert (await storage.outbox_counts())["sent"] == 8
    await bot.session.close()
    await emulator.stop()


async def test_a_network_failure_is_retried_and_delivered_once(database, tmp_path):
    emulator = BotApiEmulator()
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, "outbox_bot")
    user = telegram.user(200)
    await user.start()
    await emulator.stop()  # the API is unreachable for a while
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    async with await open_storage(database) as storage:
        await storage.enqueue([message(200, "xin chào", REPLY, "m1")], AT)
        sender = OutboxSender(storage, "telegram", "t", TelegramTransport(bot))
        await sender.pump()
        await sender.drain()
        [queued] = await storage.due_messages("telegram", "t", "9999", 10)
        assert (queued.state, queued.attempts) == ("pending", 1) and queued.not_before > AT
        port = int(base.rsplit(":", 1)[1])
        await emulator.start(port=port)
        # Retry as soon as it is due (the test moves the sender's wall clock past not_before).
        sender.wall = lambda: dt.datetime.fromisoformat(queued.not_before) + dt.timedelta(seconds=1)
        await sender.pump()
        await sender.drain()
        assert [m.text for m in user.received] == ["xin chào"]
        assert (await storage.outbox_counts())["sent"] == 1
    await bot.session.close()
    await emulator.stop()


#: What the platform answers a send in flight while a pump waits on its feed: (the answer, the
#: emulator's record of sendMessage after that pump, the rows then (key, state, attempts, not_before),
#: counted from the second pump's wall clock).
REFUSALS = {
    # The whole bot pauses for retry_after: nothing else leaves, and the row not before 5 s.
    "429": (dict(status=429, body=json.dumps({"ok": False, "error_code": 429, "parameters": {"retry_after": 5},
                                              "description": "Too Many Requests: retry after 5"})),
            [("một", 429)], [("m1", "pending", 1, 5), ("m2", "pending", 0, 0)]),
    # A server error: the row is retried after its backoff (1 s), other chats go on.
    "500": (dict(status=500, description="Internal Server Error"),
            [("một", 500), ("hai", 200)], [("m1", "pending", 1, 1), ("m2", "sent", 0, 0)]),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
async def test_a_refusal_while_a_pump_waits_on_its_feed_holds_what_that_pump_had_read(database, tmp_path, refusal):
    """A pump reads the queue, then asks its feed (a wait on the database). A send already in
    flight may meanwhile be refused: its row put back for later (the backoff, or a 429's
    retry_after, which also pauses the whole bot). What the pump read before must keep to that:
    neither the refused row again at once (a claim from the stale read), nor, after a 429,
    another chat's message into the pause."""
    answer, requests_then, rows_then = REFUSALS[refusal]
    emulator = BotApiEmulator()
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, "outbox_bot")
    users = [telegram.user(chat) for chat in (200, 201)]
    for user in users:
        await user.start()
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    at = dt.datetime.fromisoformat(AT)
    second = at + dt.timedelta(seconds=1)
    in_flight: list[asyncio.Task] = []

    async def feed(room: int) -> int:
        if in_flight:  # the second pump asks; the first pump's send ends meanwhile
            await asyncio.wait(in_flight)
        return 0

    def sent_requests() -> list[tuple[str, int]]:
        return [(r.params["text"], r.status) for r in emulator.requests if r.method == "sendMessage"]

    async with await open_storage(database) as storage:
        await storage.enqueue([message(200, "một", REPLY, "m1"),  # "hai" is not due at the first pump
                               dataclasses.replace(message(201, "hai", REPLY, "m2"), not_before=second.isoformat())],
                              AT)
        emulator.answer_next("sendMessage", **answer)
        clock = FakeClock()
        sender = OutboxSender(storage, "telegram", "t", TelegramTransport(bot), clock=clock, feed=feed)
        sender.wall = lambda: at
        await sender.pump()  # starts "một"
        in_flight[:] = sender._tasks  # noqa: SLF001
        sender.wall = lambda: second
        # At once, before "một" is claimed: this pump reads both rows pending, then its feed waits
        # while "một" is refused.
        await sender.pump()
        await sender.drain()
        assert sent_requests() == requests_then
        rows = await storage._fetchall("SELECT dedupe_key, state, attempts, not_before FROM outbox"  # noqa: SLF001
                                       " ORDER BY id")
        assert [tuple(row) for row in rows] == [
            (key, state, attempts, (second + dt.timedelta(seconds=after)).isoformat())
            for key, state, attempts, after in rows_then]
        clock.advance(5)  # any pause is over, and "một"'s retry is due
        sender.wall = lambda: second + dt.timedelta(seconds=5)
        await sender.pump()
        await sender.drain()
        # Two chats' sends at once may arrive in either order.
        still_to_send = {("một", 200), ("hai", 200)} - set(requests_then)
        assert sorted(sent_requests()[len(requests_then):]) == sorted(still_to_send)
        assert [m.text for m in users[0].received] == ["một"] and [m.text for m in users[1].received] == ["hai"]
        assert (await storage.outbox_counts())["sent"] == 2
    await bot.session.close()
    await emulator.stop()


def delivered_texts(emulator) -> list[str]:
    """The texts the emulator delivered, in the order it did. Not every request: one it refused
    (a 429) reached nobody and is sent again after its retry_after, so counting requests would
    show it twice (as it did on a loaded machine, where the emulator, served by this event loop,
    reads its clock late for one request and on time for the next)."""
    return [r.params["text"] for r in emulator.requests if r.method == "sendMessage" and r.status == 200]


async def run_until_sent(sender: OutboxSender, storage, count: int, timeout: float = 20) -> None:
    """Run the sender until ``count`` messages are sent (an empty outbox may be refilled by the feed)."""
    async def sent() -> bool:
        return (await storage.outbox_counts())["sent"] >= count

    await run_until(sender, sent, timeout)


async def test_the_sender_asks_its_feed_for_bulk_messages_as_it_drains(database, tmp_path):
    """Two seconds' worth at a time, asked for when fewer than that are pending, replies first."""
    emulator = BotApiEmulator(limits=Limits(per_bot_per_second=10, per_chat_per_second=100, per_chat_burst=100))
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, "outbox_bot")
    for chat in range(299, 330):
        await telegram.user(chat).start()
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    pace = Pace(per_second=10, per_chat_per_second=50, per_chat_burst=50)
    assert feed_room(pace) == 20
    async with await open_storage(database) as storage:
        await storage.enqueue([message(299, f"step {n}", REPLY, f"reply-{n}") for n in range(3)], AT)
        waiting = [message(300 + n, f"reminder {n}", BULK, f"bulk-{n}") for n in range(30)]
        asked: list[tuple[int, int]] = []  # (room asked for, bulk messages pending then)

        async def feed(room: int) -> int:
            # What is due now, as the sender counts: not a refused message waiting out its retry_after.
            due = await storage.due_messages("telegram", "t", sender.wall().isoformat(), 200)
            asked.append((room, sum(1 for m in due if m.priority == BULK)))
            batch = waiting[:room]
            del waiting[:room]
            return await storage.enqueue(batch, AT)

        sender = OutboxSender(storage, "telegram", "t", TelegramTransport(bot), pace, feed=feed)
        await run_until_sent(sender, storage, 33)
        sent = delivered_texts(emulator)
        assert sent[:3] == ["step 0", "step 1", "step 2"], sent
        assert sorted(sent[3:]) == sorted(f"reminder {n}" for n in range(30))  # each delivered once
        assert telegram.stats.sent == 33 and (await storage.outbox_counts())["sent"] == 33
        assert {room for room, _ in asked} == {20} and all(pending < 20 for _, pending in asked), asked
        assert len(asked) >= 3  # 20, then 10 as the first batch drained, then none left
        # No assertion that the emulator refused nothing: the sender paces what it puts on the wire,
        # the emulator counts what it reads, and on a loaded machine the two differ by more than the
        # sender's margin (a refusal is then waited out and sent again: see delivered_texts).
    await bot.session.close()
    await emulator.stop()


async def test_a_failing_feed_does_not_stop_the_replies(database, tmp_path):
    emulator = BotApiEmulator()
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, "outbox_bot")
    user = telegram.user(200)
    await user.start()
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))

    async def feed(room: int) -> int:
        raise OSError("disk I/O error")

    async with await open_storage(database) as storage:
        await storage.enqueue([message(200, "xin chào", REPLY, "m1")], AT)
        await run_until_sent(OutboxSender(storage, "telegram", "t", TelegramTransport(bot), feed=feed), storage, 1)
        assert [m.text for m in user.received] == ["xin chào"]
    await bot.session.close()
    await emulator.stop()


async def test_a_feed_that_keeps_failing_is_logged_once_a_minute_and_its_recovery_once(database, tmp_path, caplog):
    """Pumps come every half second or faster; a traceback each time would bury the log."""
    now = [0.0]
    failing = [True]

    async def feed(room: int) -> int:
        if failing[0]:
            raise OSError("disk I/O error")
        return 0

    async with await open_storage(database) as storage:
        sender = OutboxSender(storage, "telegram", "t", transport=None, feed=feed, clock=lambda: now[0])
        caplog.set_level(logging.INFO, logger="bot.outbox")

        def records() -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.name == "bot.outbox"]

        def levels() -> list[tuple[int, bool]]:
            return [(r.levelno, r.exc_info is not None) for r in records()]

        for _ in range(50):  # 25 s of pumps
            await sender.pump()
            now[0] += 0.5
        assert levels() == [(logging.ERROR, True)]  # the first failure, with its traceback
        now[0] = 61.0
        await sender.pump()
        await sender.pump()
        assert levels() == [(logging.ERROR, True), (logging.ERROR, False)]
        assert "still fails (51 times so far): disk I/O error" in records()[-1].getMessage()
        failing[0] = False
        await sender.pump()
        await sender.pump()
        assert levels()[2:] == [(logging.WARNING, False)]
        assert "works again after 52 failure(s)" in records()[-1].getMessage()


def test_the_limiters_hold_the_documented_rates():
    now = [0.0]
    window = SlidingWindow(3, 1.0, lambda: now[0])
    for _ in range(3):
        assert window.delay() == 0
        window.take()
    assert window.delay() == 1.0
    now[0] = 1.0
    assert window.delay() == 0
    bucket = TokenBucket(1.0, 2, lambda: now[0])
    bucket.take(), bucket.take()
    assert bucket.delay() == 1.0
    now[0] = 1.5
    assert bucket.delay() == 0.5
