"""Two senders of one bot and their bulk feeds at once: no message is sent twice.

Two `khaosat run` processes' senders are two connections to one database (SQLite file or
PostgreSQL, ``database``), each with the real reminder feed, against the Telegram emulator. The
interleaving is forced rather than hoped for: both senders read the queue and start their sends
before either claims a row (a gate on each one's ``claim_message``), so every message is wanted by
both, and the claim alone decides who sends it. The rounds take turns between the two ways that
can go wrong: both claims at once, and one sender's claims only after the other's sends have
ended (a claim from a stale read of the queue, for a row that is no longer in flight but sent).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.outbox import REPLY, OutboxSender, Pace
from bot.reminders import ReminderFeed, reminder_pass
from bot.telegram.emulator import BotApiEmulator, Limits
from bot.telegram.transport import TelegramTransport
from storage import OutgoingMessage, open_storage
from test_reminders import BOT, T0, setup

TOKEN = "424242:TWO-SENDERS"


class GatedClaims:
    """A sender's storage, whose claims wait for the gate and are noted (won or lost) by row id.

    Everything else is the storage itself: the claim too, once the gate is open."""

    def __init__(self, storage, gate: asyncio.Event):
        self._storage = storage
        self.gate = gate
        self.won: list[int] = []
        self.lost: list[int] = []

    def __getattr__(self, name):
        return getattr(self._storage, name)

    async def claim_message(self, message, holder, at, lease_until):
        await self.gate.wait()
        claimed = await self._storage.claim_message(message, holder, at, lease_until)
        (self.won if claimed else self.lost).append(message.id)
        return claimed


async def test_two_senders_with_their_feeds_claiming_the_same_rows_send_each_message_once(database, tmp_path):
    chats, replies_per_chat = 8, 3
    db, _, _, _ = await setup(database, tmp_path / "survey", size=chats)  # chats 1000.., linked
    at = T0 + dt.timedelta(days=1, minutes=1)  # each person is due one reminder, outside quiet hours
    emulator = BotApiEmulator(limits=Limits(per_bot_per_second=1000, per_chat_per_second=1000, per_chat_burst=1000))
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, "two_senders_bot")
    for n in range(chats):
        await telegram.user(1000 + n).start()
    client = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    # Fast enough that no limit holds a send back: only the claim decides.
    pace = Pace(per_second=1000, per_chat_per_second=1000, per_chat_burst=1000)
    try:
        async with await open_storage(db) as one, await open_storage(db) as other:
            assert (await reminder_pass(one, [BOT], at)).count == chats
            await one.enqueue([OutgoingMessage("telegram", "t", str(1000 + n), "sendMessage",
                                               json.dumps({"chat_id": 1000 + n, "text": f"reply {k}"}),
                                               priority=REPLY, dedupe_key=f"reply-{n}-{k}")
                               for k in range(replies_per_chat) for n in range(chats)], at.isoformat())
            claims = [GatedClaims(storage, asyncio.Event()) for storage in (one, other)]
            # No share: each sender takes every chat for its own, as two processes would whose
            # peers have not seen each other yet.
            senders = [OutboxSender(claim, "telegram", "t", TelegramTransport(client), pace, holder=holder,
                                    feed=ReminderFeed(storage, BOT, lambda: at))
                       for claim, storage, holder in zip(claims, (one, other), ("a", "b"))]
            total = chats * (replies_per_chat + 1)
            for round_ in range(4 * total):  # a round sends one message per chat: a few are enough
                for claim in claims:
                    claim.gate.clear()
                await asyncio.gather(*(sender.pump() for sender in senders))  # both read, both start
                if round_ % 3 == 0:  # both claim at once
                    for claim in claims:
                        claim.gate.set()
                    await asyncio.gather(*(sender.drain() for sender in senders))
                else:  # one sends; then the other claims what it read before
                    order = (0, 1) if round_ % 3 == 1 else (1, 0)
                    for index in order:
                        claims[index].gate.set()
                        await senders[index].drain()
                if (await one.outbox_counts())["sent"] == total:
                    break
            counts = await one.outbox_counts()
            claimed_by = collections.Counter(row[0] for row in await one._fetchall(  # noqa: SLF001
                "SELECT claimed_by FROM outbox"))
    finally:
        await client.session.close()
        await emulator.stop()

    # What people received: each message once, a chat's in order (its replies, then its reminder).
    delivered = collections.Counter((r.params["chat_id"], r.params["text"]) for r in emulator.requests
                                    if r.method == "sendMessage" and r.status == 200)
    assert max(delivered.values()) == 1, [sent for sent, times in delivered.items() if times > 1]
    assert len(delivered) == total == telegram.stats.sent
    for n in range(chats):
        received = [m.text for m in telegram.users[1000 + n].received]
        *replies, reminder = received
        assert replies == [f"reply {k}" for k in range(replies_per_chat)], received
        assert reminder.startswith("Bạn đã trả lời 0/3 câu."), received
    assert not emulator.violations
    assert counts["sent"] == total and counts["unknown"] == counts["failed"] == 0, counts
    a, b = claims
    assert not set(a.won) & set(b.won)  # no row claimed by both
    # The race was run: rows one sender lost because the other had just won them (not only
    # because they were gone before it looked), and both senders sent.
    assert set(a.lost) & set(b.won) and set(b.lost) & set(a.won)
    assert set(claimed_by) == {"a", "b"}, claimed_by
