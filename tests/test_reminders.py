"""Reminders: due from the database by offsets and max count, never in quiet hours, never after
completion/refusal/unreachable/quota-full/close, exactly once across restarts; queued by the
pass and handed over to the outbox as the sender has room, with the person's progress then;
and the list of people no bot can reach."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.outbox import REPLY, OutboxSender, Pace, TokenBucket
from bot.reminders import ReminderBot, ReminderFeed, render_reminder, reminder_pass
from bot.telegram.emulator import BotApiEmulator, Limits
from bot.telegram.transport import TelegramTransport
from fieldwork.conversations import Conversations
from storage import OUTBOX_STATES, OutgoingMessage, ReminderTexts, StorageError, open_storage
from surveys import engine
from surveys.messages import say
from surveys.project import ReminderPolicy, parse_survey, store_survey
from surveys.reminders import QuietHours, decide, sendable_before_quiet
from surveys.sampling import draw_sample, import_frame_file
from surveys.xlsform import load_questionnaire
from survey_toml import survey_toml

ROOT = Path(__file__).resolve().parents[1]
VN = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = dt.datetime(2026, 8, 2, 9, 0, tzinfo=VN)
BOT = ReminderBot("telegram", "t", 30.0)
TOKEN = "424242:REMIND"

FORM = """\
| survey |
|        | type      | name | label::Tiếng Việt (vi) | label::English (en) | required | calculation |
|        | integer   | q1   | Câu 1                  | Question 1          | yes      |             |
|        | integer   | q2   | Câu 2                  | Question 2          | yes      |             |
|        | integer   | q3   | Câu 3                  | Question 3          | yes      |             |
|        | calculate | c    |                        |                     |          | ${q1} + 1   |
| settings |
|          | form_id               | version | form_title | default_language |
|          | sipas_citizen_example | t1      | Thử        | Tiếng Việt (vi)  |
"""

SURVEY = survey_toml("remind-test", "Thử nhắc nhở", "sipas_citizen_example", extra="""\
[reminders]
after_days = [1, 3, 7]
max_count = 2
quiet_hours = { start = "21:00", end = "07:00" }
[reminders.text]
vi = "Bạn đã trả lời {answered}/{total} câu."
en = "You answered {answered} of {total} questions."
""")

POLICY = ReminderPolicy((1, 3, 7), 2, "21:00", "07:00", {"vi": "x"})


EXAMPLE_SURVEY = Path(__file__).resolve().parents[1] / "surveys" / "templates" / "survey.example.toml"


def test_the_reviewed_reminder_texts_say_how_many_were_answered_with_no_total():
    """The chat shows progress as a share of the form; a reminder "12/30" would contradict it."""
    example = parse_survey(EXAMPLE_SURVEY.read_text(encoding="utf-8"), EXAMPLE_SURVEY.name, base=EXAMPLE_SURVEY.parent)
    text = render_reminder(example, {"sipas_citizen_example": 30})
    assert text("vi", "sipas_citizen_example", 12) == (
        "Phiếu khảo sát của quý vị chưa hoàn thành (quý vị đã trả lời 12 câu). Mời quý vị tiếp tục trả lời.\n"
        + say("reminder_resume_hint", "vi"))
    assert text("en", "sipas_citizen_example", 12).startswith("Your survey is not finished yet (you have answered 12 ")
    assert "30" not in text("vi", "sipas_citizen_example", 12)


# -- the pure policy ------------------------------------------------------------------------------


def test_policy_offsets_max_count_and_quiet_hours():
    activity = T0
    assert decide(POLICY, activity, [], 0, T0 + dt.timedelta(hours=23), VN).due is False
    d = decide(POLICY, activity, [], 0, T0 + dt.timedelta(days=1), VN)
    assert d.due and d.number == 0 and d.due_at == T0 + dt.timedelta(days=1)
    sent = [T0 + dt.timedelta(days=1)]
    assert decide(POLICY, activity, sent, 1, T0 + dt.timedelta(days=2), VN).due is False
    assert decide(POLICY, activity, sent, 1, T0 + dt.timedelta(days=3), VN).due
    # max_count 2 in all: no third reminder although after_days has 7.
    d = decide(POLICY, activity, sent + [T0 + dt.timedelta(days=3)], 2, T0 + dt.timedelta(days=9), VN)
    assert (d.due, d.number) == (False, None)
    # After a long outage: the next reminder waits the gap after the previous one.
    late = [T0 + dt.timedelta(days=5)]
    assert decide(POLICY, activity, late, 1, T0 + dt.timedelta(days=6), VN).due is False
    assert decide(POLICY, activity, late, 1, T0 + dt.timedelta(days=7), VN).due
    # Due at 21:30 (quiet): waits for 07:00; nothing at 22:00, sent at 07:01.
    evening = dt.datetime(2026, 8, 2, 21, 30, tzinfo=VN)
    d = decide(POLICY, evening, [], 0, evening + dt.timedelta(days=1, minutes=30), VN)
    assert d.due is False and d.due_at == dt.datetime(2026, 8, 4, 7, 0, tzinfo=VN)
    assert decide(POLICY, evening, [], 0, dt.datetime(2026, 8, 4, 7, 1, tzinfo=VN), VN).due


def test_quiet_hours_window_and_budget():
    quiet = QuietHours.of(POLICY)
    assert quiet.contains(dt.datetime(2026, 8, 2, 23, 0, tzinfo=VN))
    assert quiet.contains(dt.datetime(2026, 8, 2, 6, 59, tzinfo=VN))
    assert not quiet.contains(dt.datetime(2026, 8, 2, 7, 0, tzinfo=VN))
    day = QuietHours(dt.time(12), dt.time(13))
    assert day.contains(dt.datetime(2026, 8, 2, 12, 30, tzinfo=VN)) and not day.contains(
        dt.datetime(2026, 8, 2, 13, 0, tzinfo=VN))
    # One hour before 21:00 at 30/s, half the rate for reminders: 54,000.
    assert sendable_before_quiet(POLICY, dt.datetime(2026, 8, 2, 20, 0, tzinfo=VN), VN, 30) == 54_000
    assert sendable_before_quiet(POLICY, dt.datetime(2026, 8, 2, 22, 0, tzinfo=VN), VN, 30) == 0
    # In UTC the same instant gives the same answer.
    assert sendable_before_quiet(POLICY, dt.datetime(2026, 8, 2, 13, 0, tzinfo=dt.timezone.utc), VN, 30) == 54_000


# -- against the database ---------------------------------------------------------------------------


async def setup(db, tmp_path: Path, size: int = 6, linked_at: dt.datetime = T0, link: int | None = None):
    """A census of ``size`` people, the first ``link`` (default all) linked to a Telegram chat at ``linked_at``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    form_path = tmp_path / "form.md"
    form_path.write_text(FORM, encoding="utf-8")
    frame = tmp_path / "frame.csv"
    frame.write_text("id,group,unit,name,phone\n" + "".join(
        f"a{i:03d},citizen,xa-a,Người {i},+8490000{i:04d}\n" for i in range(size)), encoding="utf-8")
    project = parse_survey(SURVEY)
    start = T0 - dt.timedelta(days=1)
    async with await open_storage(db) as storage:
        await store_survey(storage, project, SURVEY, "survey.toml", start.isoformat())
        await import_frame_file(storage, project, frame, start.isoformat())
        await draw_sample(storage, project, 1, start.isoformat())
        await Conversations(storage).register(load_questionnaire(form_path), form_path.read_bytes(), "form.md", start)
        ids = sorted(m.respondent_id for m in await storage.sample_members(project.id, "main"))
        for n, rid in enumerate(ids):
            await storage.issue_invitation(rid, "link", f"hash-{rid}", start.isoformat())
            await storage.set_disposition(rid, "invited", start.isoformat())
            if link is None or n < link:
                await storage.link_chat("telegram", "t", str(1000 + n), rid, linked_at.isoformat())
                await storage.set_disposition(rid, "contacted", linked_at.isoformat())
    return db, form_path, project, ids


async def run_pass(db: Path, now: dt.datetime, bots=(BOT,)):
    async with await open_storage(db) as storage:
        return await reminder_pass(storage, list(bots), now)


async def hand_over(storage, now: dt.datetime, bot: ReminderBot = BOT, room: int = 100) -> int:
    """Hand the bot's queued reminders over as its sender's feed would at ``now``; how many got a message."""
    return await ReminderFeed(storage, bot, lambda: now)(room)


async def messages(storage) -> list[dict]:
    """The outbox, oldest first."""
    return [dict(row) for row in await storage._fetchall(  # noqa: SLF001
        "SELECT id, channel, bot, chat_id, respondent_id, payload, priority, state, error, dedupe_key FROM outbox"
        " ORDER BY id")]


async def answer(conversations, record, replies: list[str], at: dt.datetime, key: str):
    for n, reply in enumerate(replies):
        handled = await conversations.handle(record.id, engine.Start(at=at) if reply == "/start" else
                                             engine.Reply(reply, at=at), f"{key}:{n}")
    return handled


async def reminder_rows(db: Path, enqueued_at: dt.datetime | None = None) -> list[dict]:
    """The reminders recorded (by the pass at ``enqueued_at``, or by every pass)."""
    async with await open_storage(db) as storage:
        rows = await storage._fetchall(  # noqa: SLF001
            "SELECT respondent_id, number, step, dedupe_key, activity_at FROM reminders"
            " WHERE ? IS NULL OR enqueued_at = ? ORDER BY id",
            (None if enqueued_at is None else enqueued_at.isoformat(),) * 2)
        return [dict(r) for r in rows]


async def test_due_by_offsets_and_max_count(tmp_path, database):
    db, _, _, ids = await setup(database, tmp_path)
    assert (await run_pass(db, T0 + dt.timedelta(hours=23))).count == 0
    at = T0 + dt.timedelta(days=1, minutes=1)
    first = await run_pass(db, at)
    assert first.count == len(ids) and first.queued == {"remind-test": len(ids)}
    rows = await reminder_rows(db, at)
    assert sorted(r["respondent_id"] for r in rows) == ids
    assert all(r["step"] == 0 and r["number"] == 1 for r in rows)
    assert all(r["dedupe_key"] == f"reminder:{r['respondent_id']}:{r['activity_at']}:0" for r in rows)
    assert (await run_pass(db, T0 + dt.timedelta(days=1, minutes=16))).count == 0  # the next pass: nothing new
    assert (await run_pass(db, T0 + dt.timedelta(days=2, hours=12))).count == 0
    at = T0 + dt.timedelta(days=3, minutes=1)
    assert (await run_pass(db, at)).count == len(ids)
    rows = await reminder_rows(db, at)
    assert len(rows) == len(ids) and all(r["step"] == 1 and r["number"] == 2 for r in rows)
    assert (await run_pass(db, T0 + dt.timedelta(days=8))).count == 0  # max_count 2
    async with await open_storage(db) as storage:
        assert await storage.queued_reminders() == 2 * len(ids)
        assert await hand_over(storage, T0 + dt.timedelta(days=8)) == 2 * len(ids)
        assert {m["priority"] for m in await messages(storage)} == {10}  # BULK


async def test_the_pass_queues_reminders_and_the_feed_hands_them_over_oldest_first(tmp_path, database):
    db, _, _, ids = await setup(database, tmp_path, size=6)
    at = T0 + dt.timedelta(days=1, minutes=1)
    async with await open_storage(db) as storage:
        assert (await reminder_pass(storage, [BOT], at)).count == 6
        assert sum((await storage.outbox_counts()).values()) == 0  # the pass writes no message
        assert await storage.queued_reminders() == 6 and await storage.queued_reminders("telegram", "t") == 6
        assert await storage.queued_reminders(bot="other") == 0
        assert [r["outbox_id"] for rid in ids for r in await storage.reminders_of(rid)] == [None] * 6
        assert await hand_over(storage, at, room=4) == 4
        assert await storage.queued_reminders() == 2
        assert await hand_over(storage, at, room=4) == 2
        assert await hand_over(storage, at, room=4) == 0  # each once
        outbox = await messages(storage)
        assert [m["respondent_id"] for m in outbox] == ids  # oldest first (here: same activity, by person)
        assert [(await storage.reminders_of(rid))[0]["outbox_id"] for rid in ids] == [m["id"] for m in outbox]
        assert {(m["state"], m["priority"], m["dedupe_key"]) for m in outbox} == {("pending", 10, None)}
        assert await storage.reminder_counts() == dict.fromkeys(ids, 1)


async def test_new_activity_starts_the_count_again(tmp_path, database):
    db, form_path, _, ids = await setup(database, tmp_path, size=1)
    form = load_questionnaire(form_path)
    assert (await run_pass(db, T0 + dt.timedelta(days=1, minutes=1))).count == 1
    later = T0 + dt.timedelta(days=2)
    async with await open_storage(db) as storage:
        conversations = Conversations(storage)
        record, _ = await conversations.open_for(ids[0], form, "telegram", None, later)
        await conversations.handle(record.id, engine.Start(at=later), "s")
    assert (await run_pass(db, later + dt.timedelta(hours=23))).count == 0
    at = later + dt.timedelta(days=1, minutes=1)
    assert (await run_pass(db, at)).count == 1
    assert [(r["step"], r["number"]) for r in await reminder_rows(db, at)] == [(0, 2)]
    assert (await run_pass(db, later + dt.timedelta(days=9))).count == 0  # 2 in all


async def test_none_in_quiet_hours(tmp_path, database):
    evening = dt.datetime(2026, 8, 2, 21, 30, tzinfo=VN)
    db, _, _, ids = await setup(database, tmp_path, linked_at=evening)
    assert (await run_pass(db, dt.datetime(2026, 8, 3, 22, 0, tzinfo=VN))).count == 0
    assert (await run_pass(db, dt.datetime(2026, 8, 4, 6, 59, tzinfo=VN))).count == 0
    assert (await run_pass(db, dt.datetime(2026, 8, 4, 7, 1, tzinfo=VN))).count == len(ids)


async def test_only_as_many_as_can_leave_before_quiet_hours(tmp_path, database):
    db, _, _, ids = await setup(database, tmp_path, size=6)
    slow = ReminderBot("telegram", "t", per_second=1 / 600)  # 1 message per 10 minutes
    now = dt.datetime(2026, 8, 3, 20, 0, tzinfo=VN)  # an hour before quiet hours: 6 × 0.5 = 3
    assert (await run_pass(db, now, [slow])).count == 3
    assert (await run_pass(db, dt.datetime(2026, 8, 4, 7, 0, tzinfo=VN), [slow])).count == 3  # the rest, next day


async def test_nothing_is_handed_over_in_quiet_hours(tmp_path, database):
    """Queued before quiet hours, a reminder waits for their end: the feed sizes itself like the pass."""
    db, _, _, ids = await setup(database, tmp_path, size=6)
    async with await open_storage(db) as storage:
        assert (await reminder_pass(storage, [BOT], dt.datetime(2026, 8, 3, 20, 0, tzinfo=VN))).count == 6
        for quiet in (dt.datetime(2026, 8, 3, 21, 0, tzinfo=VN), dt.datetime(2026, 8, 3, 23, 30, tzinfo=VN),
                      dt.datetime(2026, 8, 4, 6, 59, tzinfo=VN)):
            assert await hand_over(storage, quiet) == 0
        assert sum((await storage.outbox_counts()).values()) == 0 and await storage.queued_reminders() == 6
        # Just before them, only what can leave in time at half the rate: 1 a minute → 2 in the last 4 minutes.
        slow = ReminderBot("telegram", "t", per_second=1 / 60)
        assert await hand_over(storage, dt.datetime(2026, 8, 3, 20, 59, 30, tzinfo=VN), slow) == 0
        assert await hand_over(storage, dt.datetime(2026, 8, 3, 20, 56, tzinfo=VN), slow) == 2
        assert await hand_over(storage, dt.datetime(2026, 8, 4, 7, 0, tzinfo=VN)) == 4
        assert (await storage.outbox_counts())["pending"] == 6


async def test_two_bots_most_recent_chat_and_a_limit_per_bot(tmp_path, database):
    db, _, _, ids = await setup(database, tmp_path, size=3, link=0)
    a, b, c = ids
    async with await open_storage(db) as storage:
        for rid, channel, bot, chat, at in [(a, "telegram", "t", "-1001", T0), (a, "zalo", "z", "za", T0 + dt.timedelta(hours=1)),
                                            (b, "telegram", "t", "1002", T0), (c, "zalo", "z", "zc", T0 + dt.timedelta(hours=2))]:
            await storage.link_chat(channel, bot, chat, rid, at.isoformat())
            await storage.set_disposition(rid, "contacted", at.isoformat())
    # An hour before quiet hours the Zalo bot (one message per half hour, half of it for reminders) may
    # take one: a's (linked to Zalo after Telegram, so reminded there), the older activity of a and c.
    zalo = ReminderBot("zalo", "z", per_second=1 / 1800)
    evening = dt.datetime(2026, 8, 3, 20, 0, tzinfo=VN)
    morning = dt.datetime(2026, 8, 4, 7, 0, tzinfo=VN)
    async with await open_storage(db) as storage:
        assert (await reminder_pass(storage, [BOT, zalo], evening)).count == 2
        assert [(r["channel"], r["bot"]) for r in await storage.reminders_of(a)] == [("zalo", "z")]
        assert await hand_over(storage, evening, BOT) == 1 and await hand_over(storage, evening, zalo) == 1
        rows = await messages(storage)
        reminded = {rid: await storage.reminders_of(rid) for rid in (a, b)}
        # The next morning the rest: c, on Zalo.
        assert (await reminder_pass(storage, [BOT, zalo], morning)).count == 1
    assert [(r["channel"], r["respondent_id"]) for r in rows] == [("telegram", b), ("zalo", a)]
    assert [json.loads(r["payload"])["chat_id"] for r in rows] == [1002, "za"]  # Zalo ids stay strings
    # Each reminder points at its message; the message needs no key of its own (the reminder is unique).
    assert [(r["dedupe_key"], r["outbox_id"]) for r in reminded[a]] == [
        (f"reminder:{a}:{(T0 + dt.timedelta(hours=1)).isoformat()}:0", rows[1]["id"])]
    assert [r["outbox_id"] for r in reminded[b]] == [rows[0]["id"]]
    assert [r["dedupe_key"] for r in rows] == [None, None]
    assert [(r["respondent_id"], r["step"], r["number"]) for r in await reminder_rows(db, morning)] == [(c, 0, 1)]


@pytest.mark.sqlite_only("SQLite's upgrade path from schema 4")
async def test_upgrade_from_schema_4_keeps_reminders_and_outbox(tmp_path, database, monkeypatch):
    """Migration 5 rebuilds ``reminders`` (dedupe key computed) and ``outbox`` (same columns); 6 links them;
    9 leaves a reminder with a message as it was and one whose message is missing withdrawn, not queued."""
    from storage import migrations

    all_migrations = list(migrations.MIGRATIONS)
    monkeypatch.setattr(migrations, "MIGRATIONS", all_migrations[:4])
    db, _, _, ids = await setup(database, tmp_path, size=3)
    at = (T0 + dt.timedelta(days=1, minutes=1)).isoformat()
    with sqlite3.connect(db) as conn:  # what the schema-4 code wrote: a reminder and its message
        key = f"reminder:{ids[0]}:{T0.isoformat()}:0"
        conn.execute("INSERT INTO reminders (respondent_id, survey_id, number, step, activity_at, due_at, enqueued_at,"
                     " channel, bot, dedupe_key) VALUES (?, 'remind-test', 1, 0, ?, ?, ?, 'telegram', 't', ?)",
                     (ids[0], T0.isoformat(), at, at, key))
        conn.execute("INSERT INTO outbox (channel, bot, chat_id, method, payload, priority, dedupe_key,"
                     " respondent_id, state, created_at, updated_at) VALUES ('telegram', 't', '1000', 'sendMessage',"
                     " '{\"chat_id\": 1000, \"text\": \"x\"}', 10, ?, ?, 'sent', ?, ?)", (key, ids[0], at, at))
        # ...and a reminder whose message was removed by hand since.
        conn.execute("INSERT INTO reminders (respondent_id, survey_id, number, step, activity_at, due_at, enqueued_at,"
                     " channel, bot, dedupe_key) VALUES (?, 'remind-test', 1, 0, ?, ?, ?, 'telegram', 't', ?)",
                     (ids[2], T0.isoformat(), at, at, f"reminder:{ids[2]}:{T0.isoformat()}:0"))
    conn.close()
    monkeypatch.setattr(migrations, "MIGRATIONS", all_migrations)
    now = T0 + dt.timedelta(days=1, minutes=5)
    assert (await run_pass(db, now)).count == 1  # ids[1] only: ids[0] and ids[2] had their first
    async with await open_storage(db) as storage:
        (old,) = await storage.reminders_of(ids[0])
        assert old["dedupe_key"] == key and old["number"] == 1 and old["enqueued_at"] == at
        assert old["outbox_id"] == 1  # migration 6 links it to its message through the shared key
        assert [r["dedupe_key"] for r in await storage.reminders_of(ids[1])] == [f"reminder:{ids[1]}:{T0.isoformat()}:0"]
        (orphan,) = await storage.reminders_of(ids[2])
        assert (orphan["outbox_id"], orphan["withdrawn_at"], orphan["withdrawn_because"]) == (
            None, at, "no outbox message at migration 9")
        assert await storage.queued_reminders() == 1
        assert await hand_over(storage, now) == 1  # ids[1]'s; the old ones are not sent again
        assert [m["respondent_id"] for m in await messages(storage)] == [ids[0], ids[1]]
        assert await storage.outbox_counts() == {**dict.fromkeys(OUTBOX_STATES, 0), "sent": 1, "pending": 1}
        assert not await storage.mark_sending(1, at)  # states are still checked: 'sent' is not 'pending'
    with sqlite3.connect(db) as conn:
        with pytest.raises(sqlite3.IntegrityError):  # once per (respondent, survey, activity, step)
            conn.execute("INSERT INTO reminders (respondent_id, survey_id, number, step, activity_at, due_at,"
                         " enqueued_at, channel, bot) VALUES (?, 'remind-test', 2, 0, ?, ?, ?, 'telegram', 't')",
                         (ids[0], T0.isoformat(), at, at))
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("UPDATE outbox SET state = 'lost' WHERE id = 1")
    conn.close()


async def test_none_after_completion_refusal_unreachable_quota_full_or_close(tmp_path, database, second_database):
    db, form_path, _, ids = await setup(database, tmp_path, size=6)
    form = load_questionnaire(form_path)
    async with await open_storage(db) as storage:
        conversations = Conversations(storage)
        record, _ = await conversations.open_for(ids[0], form, "telegram", None, T0)
        for n, event in enumerate([engine.Start(at=T0), engine.Reply("yes", at=T0), engine.Reply("1", at=T0),
                                   engine.Reply("2", at=T0), engine.Reply("3", at=T0)]):
            handled = await conversations.handle(record.id, event, f"c{n}")
        assert handled.session.status == "completed"
        record, _ = await conversations.open_for(ids[1], form, "telegram", None, T0)
        await conversations.handle(record.id, engine.Start(at=T0), "r0")
        await conversations.handle(record.id, engine.Reply("no", at=T0), "r1")
        await storage.set_disposition(ids[2], "unreachable", T0.isoformat())
        await storage.set_disposition(ids[3], "quota_full", T0.isoformat())
    at = T0 + dt.timedelta(days=1, minutes=1)
    assert (await run_pass(db, at)).count == 2
    assert sorted(r["respondent_id"] for r in await reminder_rows(db, at)) == ids[4:]
    # After the survey closes: nothing.
    db2, _, _, _ = await setup(second_database, tmp_path / "closed", size=2)
    result = await run_pass(db2, dt.datetime(2026, 9, 1, 9, 0, tzinfo=VN))
    assert result.count == 0 and result.skipped == {"remind-test": "survey not open"}


COMPLETE = ["/start", "yes", "1", "2", "3"]  # consent, then the three questions


async def test_a_reminder_not_sent_when_its_person_completes_or_refuses_is_withdrawn(tmp_path, database):
    """A large pass drains for hours: what has not left when the person finishes never will,
    whether it is still queued or already handed over and waiting in the outbox."""
    db, form_path, _, ids = await setup(database, tmp_path, size=4)
    at = T0 + dt.timedelta(days=1, minutes=1)
    form = load_questionnaire(form_path)
    async with await open_storage(db) as storage:
        assert (await reminder_pass(storage, [BOT], at)).count == 4
        assert await hand_over(storage, at, room=2) == 2  # ids[0] and ids[1]'s; ids[2] and ids[3]'s stay queued
        (sent,) = await storage.reminders_of(ids[0])
        assert await storage.mark_sending(sent["outbox_id"], at.isoformat())
        assert await storage.mark_sent(sent["outbox_id"], at.isoformat(), None)
        conversations = Conversations(storage)
        later = at + dt.timedelta(minutes=5)
        for rid in (ids[0], ids[1], ids[2]):  # they finish the questionnaire
            record, _ = await conversations.open_for(rid, form, "telegram", None, later)
            assert (await answer(conversations, record, COMPLETE, later, str(rid))).session.status == "completed"
        await storage.set_disposition(ids[3], "refused", later.isoformat())
        assert await storage.queued_reminders() == 0
        withdrawn = [(await storage.reminders_of(rid))[0] for rid in ids]
        assert [(r["withdrawn_because"], r["withdrawn_at"]) for r in withdrawn] == [
            (None, None),  # the one already sent stays as it was
            ("completed", later.isoformat()), ("completed", later.isoformat()), ("refused", later.isoformat())]
        assert [r["outbox_id"] is None for r in withdrawn] == [False, False, True, True]  # never handed over
        assert await hand_over(storage, later) == 0
        assert [(m["respondent_id"], m["state"], m["error"]) for m in await messages(storage)] == [
            (ids[0], "sent", None), (ids[1], "failed", "withdrawn: completed")]
        assert await storage.reminder_counts() == {ids[0]: 1}  # exports count what may have reached them
    assert (await run_pass(db, at + dt.timedelta(days=3))).count == 0


async def test_the_hand_over_checks_the_person_and_the_survey_again(tmp_path, database):
    """A disposition written without ``set_disposition`` (by hand, or by an older khaosat), or a
    survey that closed while its reminders were queued: the hand-over withdraws, it does not send."""
    db, _, _, ids = await setup(database, tmp_path, size=4)
    at = T0 + dt.timedelta(days=1, minutes=1)
    async with await open_storage(db) as storage:
        assert (await reminder_pass(storage, [BOT], at)).count == 4
    async with await open_storage(db) as storage:  # by hand: around set_disposition
        await storage._run(lambda conn: conn.execute(  # noqa: SLF001
            "UPDATE respondents SET disposition = 'ineligible' WHERE id = ?", (ids[0],)))
    async with await open_storage(db) as storage:
        assert await hand_over(storage, at, room=1) == 1  # ids[0]'s withdrawn, so the feed went on to ids[1]'s
        after_close = dt.datetime(2026, 9, 1, 9, 0, tzinfo=VN)
        assert await hand_over(storage, after_close, room=1) == 0  # a closed survey's all at once
        assert [(await storage.reminders_of(rid))[0]["withdrawn_because"] for rid in ids] == [
            "ineligible", None, "survey closed", "survey closed"]
        assert [m["respondent_id"] for m in await messages(storage)] == [ids[1]]
        assert await storage.queued_reminders() == 0


async def test_the_sender_skips_a_message_withdrawn_after_it_was_read(tmp_path, database):
    emulator = BotApiEmulator(limits=Limits(per_bot_per_second=30, per_chat_per_second=100, per_chat_burst=100))
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, "remind_bot")
    db, _, _, ids = await setup(database, tmp_path, size=2)
    for n in range(2):
        await telegram.user(1000 + n).start()
    at = T0 + dt.timedelta(days=1, minutes=1)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    try:
        async with await open_storage(db) as storage:
            assert (await reminder_pass(storage, [BOT], at)).count == 2
            assert await hand_over(storage, at) == 2
            sender = OutboxSender(storage, "telegram", "t", TelegramTransport(bot), Pace(per_second=30))
            due = await storage.due_messages("telegram", "t", at.isoformat(), 10)
            await storage.set_disposition(ids[1], "completed", at.isoformat())  # between the read and the send
            for message in due:
                await sender._send(message, TokenBucket(100, 100, sender.clock))  # noqa: SLF001
            assert await storage.outbox_counts() == {**dict.fromkeys(OUTBOX_STATES, 0), "sent": 1, "failed": 1}
            # The withdrawn message's id is not given to the next one (a sender may still hold it).
            await storage.enqueue([OutgoingMessage("telegram", "t", "1000", "sendMessage", '{"chat_id": 1000, "text": "x"}')],
                                  at.isoformat())
            withdrawn = max(message.id for message in due)  # ids[1]'s, the highest: deleted, it would be reused
            assert not await storage.mark_sending(withdrawn, at.isoformat())
    finally:
        await bot.session.close()
        await emulator.stop()
    assert [str(r.params["chat_id"]) for r in emulator.requests if r.method == "sendMessage"] == ["1000"]


async def test_restart_loses_none_and_doubles_none(tmp_path, database):
    db, _, _, ids = await setup(database, tmp_path, size=5)
    now = T0 + dt.timedelta(days=1, minutes=1)
    # Pass, then "kill" before anything is handed over: the reminders wait queued in the database.
    assert (await run_pass(db, now)).count == 5
    # Reopen: a second pass (the same time, and 15 minutes later) queues nothing again.
    assert (await run_pass(db, now)).count == 0
    assert (await run_pass(db, now + dt.timedelta(minutes=15))).count == 0
    # Part of them handed over, one caught mid-send, and "kill" again.
    async with await open_storage(db) as storage:
        assert await hand_over(storage, now, room=3) == 3
        first = (await messages(storage))[0]["id"]
        assert await storage.mark_sending(first, now.isoformat())
    async with await open_storage(db) as storage:
        assert await storage.recover_outbox("telegram", "t", now.isoformat()) == 1  # not resent: unknown
        assert (await reminder_pass(storage, [BOT], now + dt.timedelta(minutes=30))).count == 0
        assert await hand_over(storage, now + dt.timedelta(minutes=30)) == 2  # the rest, none of the three again
        assert await hand_over(storage, now + dt.timedelta(minutes=30)) == 0
        counts = await storage.outbox_counts()
        assert counts["pending"] == 4 and counts["unknown"] == 1 and sum(counts.values()) == 5
        outbox = await messages(storage)
        assert sorted(m["respondent_id"] for m in outbox) == ids
        reminders = [r for rid in ids for r in await storage.reminders_of(rid)]
        assert sorted(r["outbox_id"] for r in reminders) == [m["id"] for m in outbox]
    rows = await reminder_rows(db)
    assert sorted(r["respondent_id"] for r in rows) == ids
    assert len({r["dedupe_key"] for r in rows}) == 5


async def test_a_hand_over_is_all_or_nothing_and_two_senders_share_the_queue(tmp_path, database):
    db, _, _, ids = await setup(database, tmp_path, size=5)
    now = T0 + dt.timedelta(days=1, minutes=1)
    assert (await run_pass(db, now)).count == 5
    calls = []

    def fails_on_the_third(language, form_id, answered):
        calls.append(answered)
        if len(calls) == 3:
            raise RuntimeError("the process dies half-way")
        return "x"

    async with await open_storage(db) as storage:
        with pytest.raises((RuntimeError, StorageError)):
            await storage.hand_over_reminders("telegram", "t", 5, texts={"remind-test": ReminderTexts(
                {}, fails_on_the_third)}, stopped={}, at=now.isoformat())
        assert sum((await storage.outbox_counts()).values()) == 0 and await storage.queued_reminders() == 5
    # Two processes' senders of the same bot at once: each reminder goes to one of them.
    async with await open_storage(db) as one, await open_storage(db) as other:
        handed = await asyncio.gather(*(hand_over(storage, now, room=3) for storage in (one, other)))
        assert sorted(handed) == [2, 3]
        outbox = await messages(one)
    assert sorted(m["respondent_id"] for m in outbox) == ids


async def test_progress_numbers_and_language(tmp_path, database):
    db, form_path, _, ids = await setup(database, tmp_path, size=2)
    form = load_questionnaire(form_path)
    async with await open_storage(db) as storage:
        conversations = Conversations(storage)
        record, _ = await conversations.open_for(ids[0], form, "telegram", None, T0)
        await answer(conversations, record, ["/start", "yes", "4"], T0, "a")
        record, _ = await conversations.open_for(ids[1], form, "telegram", "en", T0)
        await answer(conversations, record, ["/start", "yes", "4", "5"], T0, "b")
    at = T0 + dt.timedelta(days=1, minutes=1)
    async with await open_storage(db) as storage:
        await reminder_pass(storage, [BOT], at)
        await hand_over(storage, at)
        payloads = {m["respondent_id"]: json.loads(m["payload"]) for m in await messages(storage)}
    # The calculate field is answered too but is not a question: 1 of 3, then 2 of 3.
    assert payloads[ids[0]]["text"].startswith("Bạn đã trả lời 1/3 câu.") and "/resume" in payloads[ids[0]]["text"]
    assert payloads[ids[1]]["text"].startswith("You answered 2 of 3 questions.")
    assert payloads[ids[0]]["chat_id"] == 1000


async def test_the_text_has_the_progress_of_when_it_is_handed_over(tmp_path, database):
    """Queued at the pass, rendered at the hand-over: what the person answered meanwhile counts."""
    db, form_path, _, ids = await setup(database, tmp_path, size=1)
    form = load_questionnaire(form_path)
    async with await open_storage(db) as storage:
        conversations = Conversations(storage)
        record, _ = await conversations.open_for(ids[0], form, "telegram", None, T0)
        await answer(conversations, record, ["/start", "yes", "4"], T0, "a")
        at = T0 + dt.timedelta(days=1, minutes=1)
        assert (await reminder_pass(storage, [BOT], at)).count == 1
        await answer(conversations, record, ["5"], at, "b")  # 2 of 3 now, still started
        assert await hand_over(storage, at + dt.timedelta(minutes=1)) == 1
        (message,) = await messages(storage)
    assert json.loads(message["payload"])["text"].startswith("Bạn đã trả lời 2/3 câu.")


async def test_reminders_reach_the_people_in_the_emulator_after_the_replies(tmp_path, database):
    emulator = BotApiEmulator(limits=Limits(per_bot_per_second=30, per_chat_per_second=100, per_chat_burst=100))
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, "remind_bot")
    db, _, _, ids = await setup(database, tmp_path, size=3)
    users = [telegram.user(1000 + n) for n in range(3)]
    for user in users:
        await user.start()  # they opened the chat (a bot cannot write first)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))
    at = T0 + dt.timedelta(days=1, minutes=1)
    try:
        async with await open_storage(db) as storage:
            assert (await reminder_pass(storage, [BOT], at)).count == 3
            await storage.enqueue([OutgoingMessage("telegram", "t", "1002", "sendMessage",
                                                   '{"chat_id": 1002, "text": "a reply"}', priority=REPLY)],
                                  at.isoformat())
            sender = OutboxSender(storage, "telegram", "t", TelegramTransport(bot), Pace(per_second=30),
                                  feed=ReminderFeed(storage, BOT, lambda: at))
            stop = asyncio.Event()
            task = asyncio.create_task(sender.run(stop))
            for _ in range(250):
                if (await storage.outbox_counts())["sent"] == 4:
                    break
                await asyncio.sleep(0.02)
            stop.set()
            await task
            assert (await storage.outbox_counts())["sent"] == 4 and await storage.queued_reminders() == 0
    finally:
        await bot.session.close()
        await emulator.stop()
    texts = [r.params["text"] for r in emulator.requests if r.method == "sendMessage"]
    assert texts[0] == "a reply"
    assert len(texts) == 4 and all(t.startswith("Bạn đã trả lời 0/3 câu.") for t in texts[1:])
    assert not emulator.violations


async def test_a_resting_feed_looks_again_when_told_or_after_a_while(tmp_path, database):
    db, _, _, ids = await setup(database, tmp_path, size=2, link=1)
    at = T0 + dt.timedelta(days=1, minutes=1)
    elapsed = [0.0]
    async with await open_storage(db) as storage:
        feed = ReminderFeed(storage, BOT, lambda: at, monotonic=lambda: elapsed[0])
        assert await feed(10) == 0  # nothing queued: it rests
        assert (await reminder_pass(storage, [BOT], at)).count == 1
        assert await feed(10) == 0  # still resting: no write per pump of an idle sender
        feed.queued()  # what khaosat run's scheduler says after a pass
        assert await feed(10) == 1
        await storage.link_chat("telegram", "t", "1001", ids[1], at.isoformat())
        await storage.set_disposition(ids[1], "contacted", at.isoformat())
        later = at + dt.timedelta(days=1, minutes=1)
        assert (await run_pass(db, later)).count == 1  # a pass in another process (khaosat remind --run-once)
        assert await feed(10) == 0
        elapsed[0] += 30
        assert await feed(10) == 1


def test_list_unreached_writes_a_csv_for_the_coordinator(tmp_path, database):
    db, _, _, ids = asyncio.run(setup(database, tmp_path, size=4, link=1))
    out = tmp_path / "unreached.csv"
    result = subprocess.run([sys.executable, "-m", "bot.cli", "remind", "--list-unreached", "--out", str(out),
                             "--db", str(db)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "personal data" in result.stdout
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert [int(r["respondent_id"]) for r in rows] == ids[1:]
    assert rows[0]["name"] == "Người 1" and rows[0]["phone"] == "+84900000001"
    assert rows[0]["stratum"] == "citizen/xa-a" and rows[0]["disposition"] == "invited"


def test_list_unreached_names_the_people_who_answer_only_on_the_web(tmp_path, database):
    """A web page cannot write first: someone linked only there is listed (to reach by letter or
    phone), marked so, rather than dropped because they have "a chat"."""
    db, _, _, ids = asyncio.run(setup(database, tmp_path, size=4, link=1))

    async def on_the_web():
        async with await open_storage(db) as storage:
            await storage.link_chat("web", "browser-1", "browser-1", ids[1], T0.isoformat())
            await storage.set_disposition(ids[1], "started", T0.isoformat())
    asyncio.run(on_the_web())
    out = tmp_path / "unreached.csv"
    result = subprocess.run([sys.executable, "-m", "bot.cli", "remind", "--list-unreached", "--out", str(out),
                             "--db", str(db)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 of them web only: no chat to remind" in result.stdout
    rows = list(csv.DictReader(out.read_bytes().decode("utf-8-sig").splitlines()))
    assert [int(r["respondent_id"]) for r in rows] == ids[1:]
    assert [r["reach"] for r in rows] == ["web only: no chat to remind", "no chat", "no chat"]
    assert rows[0]["disposition"] == "started"


def test_remind_run_once_from_the_command_line(tmp_path, database):
    db, _, _, ids = asyncio.run(setup(database, tmp_path, size=2))
    config = tmp_path / "c.toml"
    config.write_text(f'[storage]\npath = "{db}"\n\n[[telegram]]\nname = "t"\ntoken = "1:x"\n', encoding="utf-8")
    at = (T0 + dt.timedelta(days=1, minutes=1)).isoformat()
    result = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(config), "remind", "--run-once",
                             "--at", at], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Queued 2 reminder(s)." in result.stdout
    again = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(config), "remind", "--run-once",
                            "--at", at], capture_output=True, text=True, cwd=ROOT)
    assert "Queued 0 reminder(s)." in again.stdout
