"""The outbox's achieved send rate against the configured limit, over real HTTP to the emulator.

    python bench/outbox_rate.py [--messages 3000] [--chats 500] [--heavy-chats 5] [--heavy-messages 300]

khaosat's Bot API emulator (served from a child process) enforces Telegram's limits:
Limits(per_bot_per_second=30, per_chat_per_second=1, per_chat_burst=3). A real OutboxSender with
Pace(per_second=30, per_chat_per_second=1, per_chat_burst=3) drains a real SQLite outbox through
the real TelegramTransport (aiogram Bot -> HTTP -> emulator).

  broad   --messages to --chats simulated users, a priority mix (replies 0 / bulk 10), all
          queued before the sender starts: measures the per-bot rate and priority order;
  heavy   --heavy-messages to --heavy-chats users: per-chat pacing sets the pace.

Reported: messages/s over the steady part (the 5th to 95th percentile of send completions) as a
share of the limit, 429s counted by the emulator, exactly-once delivery, and whether replies
went before bulk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
from aiogram import Bot  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402

from bot.outbox import BULK, REPLY, OutboxSender, Pace, Sent  # noqa: E402
from bot.telegram.transport import TelegramTransport  # noqa: E402
from storage import OutgoingMessage, open_storage  # noqa: E402

LIMITS = dict(per_bot_per_second=30, per_chat_per_second=1, per_chat_burst=3)
PACE = Pace(per_second=30, per_chat_per_second=1, per_chat_burst=3)


class TimedTransport:
    """The real TelegramTransport, with the completion time of each successful send noted."""

    def __init__(self, inner: TelegramTransport):
        self.inner = inner
        self.sent_at: list[float] = []
        self.started_at: list[float] = []

    async def send(self, method, payload):
        self.started_at.append(time.perf_counter())
        outcome = await self.inner.send(method, payload)
        if isinstance(outcome, Sent):
            self.sent_at.append(time.perf_counter())
        return outcome


def steady_rate(times: list[float]) -> float:
    times = sorted(times)
    lo, hi = int(len(times) * 0.05), int(len(times) * 0.95) - 1
    return (hi - lo) / (times[hi] - times[lo]) if hi > lo and times[hi] > times[lo] else float("nan")


async def scenario(name: str, emulator: h.EmulatorProcess, db_dir: Path, chats: int, messages: int,
                   reply_share: float, seed: int = 7) -> dict:
    rng = random.Random(seed)
    token = f"{900000 + seed}:OUTBOX-{name}"
    chat_ids = [h.FIRST_CHAT + i for i in range(chats)]
    emulator.call("add_bot", token, f"outbox_{name}_bot")
    emulator.call("users", token, chat_ids)
    storage = await open_storage(Path(tempfile.mkdtemp(prefix="outbox-bench-", dir=db_dir)) / "outbox.sqlite")
    plan = []
    for i in range(messages):
        chat = chat_ids[i % chats]
        priority = REPLY if rng.random() < reply_share else BULK
        plan.append((i, chat, priority))
    rng.shuffle(plan)
    at = h.now().isoformat()
    await storage.enqueue([OutgoingMessage("telegram", name, str(chat), "sendMessage",
                                           json.dumps({"chat_id": chat, "text": f"m{i} p{priority}"}),
                                           priority=priority, dedupe_key=f"bench:{i}") for i, chat, priority in plan],
                          at)
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(emulator.base_url)))
    transport = TimedTransport(TelegramTransport(bot))
    sender = OutboxSender(storage, "telegram", name, transport, PACE)
    # Diagnostic only: when the sender's on-the-wire window counts each send (take), to compare
    # with when the HTTP request actually leaves (TimedTransport.started_at).
    taken: list[float] = []
    window = sender._on_wire
    window_take = window.take

    def take() -> None:
        taken.append(time.perf_counter())
        window_take()

    window.take = take
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(sender.run(stop))
    while True:
        await asyncio.sleep(0.25)
        counts = await storage.outbox_counts()
        if counts["pending"] == 0 and counts["sending"] == 0:
            break
        if task.done():
            task.result()
    stop.set()
    await task
    total = time.perf_counter() - started
    stats = emulator.call("stats", token, True)
    await bot.session.close()
    await storage.close()

    order = stats["order"]
    delivered = Counter(order)
    expected = {f"m{i} p{priority}" for i, _, priority in plan}
    duplicates = sum(1 for _, n in delivered.items() if n > 1)
    missing = len(expected - set(delivered))
    replies = [k for k, (text) in enumerate(order) if text.endswith(f"p{REPLY}")]
    last_reply = replies[-1] if replies else -1
    bulk_before_last_reply = sum(1 for text in order[:last_reply + 1] if text.endswith(f"p{BULK}"))
    per_chat = Counter(chat for _, chat, _ in plan)
    rate = steady_rate(transport.sent_at)
    lags = sorted((b - a) * 1000 for a, b in zip(sorted(taken), sorted(transport.started_at)))
    # Most sends a 1-second window at the emulator could see, using the HTTP start times.
    starts = sorted(transport.started_at)
    peak, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] <= t - 1.0:
            j += 1
        peak = max(peak, i - j + 1)
    limit = LIMITS["per_bot_per_second"]
    per_chat_inversions = 0  # a bulk message sent to a chat while a reply to that chat still waited
    chat_of = {f"m{i} p{priority}": chat for i, chat, priority in plan}
    replies_left = Counter(chat for _, chat, priority in plan if priority == REPLY)
    for text in order:
        chat = chat_of[text]
        if text.endswith(f"p{REPLY}"):
            replies_left[chat] -= 1
        elif replies_left[chat] > 0:
            per_chat_inversions += 1
    result = {
        "scenario": name, "per_chat_priority_inversions": per_chat_inversions, "messages": messages, "chats": chats, "replies": sum(p == REPLY for *_, p in plan),
        "seconds": round(total, 1), "steady_rate": round(rate, 2),
        "share_of_per_bot_limit": round(100 * rate / limit, 1),
        "too_many_requests": stats["stats"]["too_many_requests"], "sender_retry_after": sender.stats.retry_after,
        "delivered": len(order), "duplicates": duplicates, "missing": missing,
        "bulk_sent_before_last_reply": bulk_before_last_reply, "violations": stats["violations"],
        "take_to_http_ms": {"p50": round(lags[len(lags) // 2], 1), "p99": round(lags[int(len(lags) * .99)], 1),
                            "max": round(lags[-1], 1)} if lags else None,
        "max_http_starts_in_1s": peak,
    }
    if chats <= 20:
        # Per chat: messages per second between its first and last delivery (after the burst of 3).
        received = stats["received"]
        rates = []
        for chat in chat_ids:
            dates = [d for _, _, d in received[chat] if True]
            if len(dates) > 4:
                rates.append((len(dates) - 3) / max(1, dates[-1] - dates[0]))
        result["per_chat_rate"] = round(sum(rates) / len(rates), 3) if rates else None
        result["share_of_per_chat_limit"] = round(100 * result["per_chat_rate"] / LIMITS["per_chat_per_second"], 1) \
            if rates else None
        result["messages_per_chat"] = max(per_chat.values())
    return result


async def main(args) -> int:
    args.db_dir.mkdir(parents=True, exist_ok=True)
    emulator = h.EmulatorProcess(**LIMITS)
    rows = []
    try:
        if args.messages:
            rows.append(await scenario("broad", emulator, args.db_dir, args.chats, args.messages, args.reply_share))
            print(json.dumps(rows[-1]), flush=True)
        if args.heavy_messages:
            rows.append(await scenario("heavy", emulator, args.db_dir, args.heavy_chats, args.heavy_messages,
                                       args.reply_share, seed=8))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        emulator.stop()
    ok = True
    for row in rows:
        met = (row["too_many_requests"] == 0 and row["duplicates"] == 0 and row["missing"] == 0
               and row["per_chat_priority_inversions"] == 0)
        if row["scenario"].startswith("broad"):
            met = met and row["share_of_per_bot_limit"] >= 95
        ok = ok and met
        print(f"{row['scenario']}: {row['steady_rate']} msg/s steady = {row['share_of_per_bot_limit']}% of 30/s; "
              f"429s {row['too_many_requests']}; delivered {row['delivered']}/{row['messages']} "
              f"(dupes {row['duplicates']}, missing {row['missing']}); bulk before last reply "
              f"{row['bulk_sent_before_last_reply']} (in the same chat: {row['per_chat_priority_inversions']})"
              + (f"; per chat {row['per_chat_rate']}/s = {row['share_of_per_chat_limit']}% of 1/s"
                 if row.get("per_chat_rate") else "") + f" -> {'met' if met else 'NOT met'}")
    return 0 if ok else 1


def parse(argv=None):
    parser = argparse.ArgumentParser(description="outbox send rate against the configured limit")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--chats", type=int, default=500)
    parser.add_argument("--reply-share", type=float, default=0.3, help="share of priority-0 replies")
    parser.add_argument("--heavy-chats", type=int, default=5)
    parser.add_argument("--heavy-messages", type=int, default=300)
    parser.add_argument("--db-dir", type=Path, default=Path(tempfile.gettempdir()) / "khaosat-bench")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
