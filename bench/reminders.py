"""Time to select and queue 100,000 due reminders in one pass (goal: under 1 second), and to hand
them over to the outbox in the batches a sender asks for.

    python bench/reminders.py [--n 100000] [--runs 3] [--sessions 0.5] [--phases]

Builds a database with bulk SQL: one survey project with a reminder policy, N fielded sample
members in disposition "contacted", each linked to a Telegram chat 2 days ago (so the first
reminder, after 1 day, is due), no sessions (``--sessions F``: a share F of them started the
questionnaire 2 days ago, in Vietnamese or English, and answered 0–30 of its 31 questions, so
the texts differ by progress and language). Then times ``reminder_pass`` — the one
transaction that selects who is due (SQL over members, chat links, sessions and reminders) and
records the reminders, queued (no outbox rows). A second pass right after must queue nothing
(dedupe), and is timed too. ``--phases`` prints, for the last run, the time of each SQL
statement of the first pass (COMMIT included).

In the last run, the N queued reminders are then handed over to the outbox by the bot's
``ReminderFeed`` in batches of ``feed_room`` (what an ``OutboxSender`` at 30 messages/s asks for:
60), each one write transaction that checks the person, renders the text with their progress
and language and inserts the message: reported per batch (median, 99th percentile, max; the
first batch also reads the survey and its questionnaire), against the 2 s it takes the bot to
send a batch.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sqlite3
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.outbox import Pace, feed_room
from bot.reminders import ReminderBot, ReminderFeed, reminder_pass
from storage import open_storage
from surveys.project import parse_survey, store_survey
from surveys.xlsform import load_questionnaire

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = dt.datetime(2026, 8, 10, 9, 0, tzinfo=VN)
SURVEY = """\
[survey]
id = "bench"
title = "Bench"
index_year = 2026
opens = 2026-08-01
closes = 2026-08-31
levels = ["province"]
strata = []
[[units]]
id = "p"
name = "P"
level = "province"
[groups.citizen]
label = "Người dân"
form_id = "sipas_citizen_example"
allocation = { method = "census" }
[reminders]
after_days = [1, 3, 7]
max_count = 3
[reminders.text]
vi = "Bạn đã trả lời {answered}/{total} câu. Mời bạn hoàn thành phiếu."
"""


async def build(db: Path, n: int, sessions: float = 0.0) -> None:
    project = parse_survey(SURVEY)
    form = Path(__file__).resolve().parents[1] / "surveys" / "templates" / "sipas_citizen.md"
    async with await open_storage(db, synchronous="normal") as storage:
        await store_survey(storage, project, SURVEY, "bench.toml", NOW.isoformat())
        await storage.save_questionnaire("sipas_citizen_example", "2026.1", form.name, form.read_bytes(),
                                         NOW.isoformat())
    linked = (NOW - dt.timedelta(days=2)).isoformat()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO samples (survey_id, source, params, created_at) VALUES ('bench', 'imported', '{}', ?)",
                 (linked,))
    conn.executemany(
        "INSERT INTO respondents (id, external_id, pseudonym, created_at, form_id, stratum, disposition,"
        " disposition_at) VALUES (?, ?, ?, ?, 'sipas_citizen_example', 'citizen', 'contacted', ?)",
        ((i, f"bench:{i}", f"R{i:010d}", linked, linked) for i in range(1, n + 1)))
    conn.executemany(
        "INSERT INTO sample_members (survey_id, frame_id, grp, form_id, stratum, pi, weight, role, respondent_id,"
        " disposition, stage) VALUES ('bench', ?, 'citizen', 'sipas_citizen_example', 'citizen', 0.5, 2, 'main', ?,"
        " 'contacted', 2)", ((f"f{i}", i) for i in range(1, n + 1)))
    conn.executemany(
        "INSERT INTO chat_links (channel, bot, chat_id, respondent_id, linked_at) VALUES ('telegram', 'b', ?, ?, ?)",
        ((str(10_000_000 + i), i, linked) for i in range(1, n + 1)))
    started = [i for i in range(1, n + 1) if (i * 7919) % 1000 < sessions * 1000]
    asked = [q.name for q in load_questionnaire(form).asked]
    conn.executemany(
        "INSERT INTO sessions (id, respondent_id, form_id, form_version, channel, status, state, revision,"
        " created_at, updated_at) VALUES (?, ?, 'sipas_citizen_example', '2026.1', 'telegram', 'active', ?, 1, ?, ?)",
        ((i, i, '{"language": "%s"}' % ("en" if i % 5 == 0 else "vi"), linked, linked) for i in started))
    conn.executemany(  # the step that gave the answers (their history rows, by trigger, point at it)
        "INSERT INTO events (session_id, event_key, event, revision, at) VALUES (?, 'bench', '{}', 1, ?)",
        ((i, linked) for i in started))
    conn.executemany(
        "INSERT INTO answers (session_id, question, value, status, updated_at) VALUES (?, ?, '1', 'answered', ?)",
        ((i, name, linked) for i in started for name in asked[:i % len(asked)]))
    conn.execute("COMMIT")
    conn.close()


async def hand_over_all(storage, bot: ReminderBot, n: int) -> list[float]:
    """Hand every queued reminder over the way the bot's sender would; the time of each batch."""
    feed = ReminderFeed(storage, bot, lambda: NOW)
    room = feed_room(Pace(per_second=bot.per_second))
    batches = []
    while True:
        start = time.perf_counter()
        handed = await feed(room)
        if not handed:
            break
        batches.append(time.perf_counter() - start)
    counts = await storage.outbox_counts()
    assert counts["pending"] == n and await storage.queued_reminders() == 0, counts
    return batches


async def main(n: int, runs: int, sessions: float = 0.0, phases: bool = False) -> None:
    bots = [ReminderBot("telegram", "b", per_second=30.0)]
    first, second = [], []
    statements: list[tuple[float, str]] = []
    batches: list[float] = []
    for run in range(runs):
        last = run == runs - 1
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.sqlite"
            await build(db, n, sessions)
            async with await open_storage(db) as storage:
                if phases and last:  # the storage's worker thread reports each statement it starts
                    await storage._run(lambda conn: conn.set_trace_callback(  # noqa: SLF001
                        lambda sql: statements.append((time.perf_counter(), " ".join(sql.split())))))
                start = time.perf_counter()
                result = await reminder_pass(storage, bots, NOW)
                first.append(time.perf_counter() - start)
                if statements:
                    await storage._run(lambda conn: conn.set_trace_callback(None))  # noqa: SLF001
                    statements.append((start + first[-1], "(end of the pass)"))
                assert result.count == n, result.count
                start = time.perf_counter()
                again = await reminder_pass(storage, bots, NOW + dt.timedelta(minutes=15))
                second.append(time.perf_counter() - start)
                assert again.count == 0
                assert sum((await storage.outbox_counts()).values()) == 0  # the pass writes no outbox row
                assert await storage.queued_reminders() == n
                if last:
                    batches = await hand_over_all(storage, bots[0], n)
    print(f"{n:,} due reminders: select + queue {min(first):.3f} s best, {sorted(first)[len(first) // 2]:.3f} s "
          f"median of {runs}; the next pass (nothing due) {min(second):.3f} s")
    for (at, sql), (until, _) in zip(statements, statements[1:]):
        if until - at >= 0.005:
            print(f"  {until - at:6.3f} s  {sql[:100]}")
    rest = sorted(batches[1:])
    room = feed_room(Pace(per_second=bots[0].per_second))
    print(f"hand-over of {n:,} in {len(batches):,} batches of {room}: {sum(batches):.2f} s in all; per batch "
          f"median {rest[len(rest) // 2] * 1000:.2f} ms, 99th percentile {rest[int(len(rest) * 0.99)] * 1000:.2f} ms, "
          f"max {rest[-1] * 1000:.2f} ms, first (reads the survey and forms) {batches[0] * 1000:.2f} ms; "
          f"a batch takes the bot {room / bots[0].per_second:.1f} s to send")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions", type=float, default=0.0,
                        help="share of the people who started the questionnaire (default 0)")
    parser.add_argument("--phases", action="store_true", help="time each SQL statement of the last run's pass")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.runs, args.sessions, args.phases))
