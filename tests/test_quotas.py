"""Completion quotas: hard quotas never overshoot, even with hundreds of people racing in
several processes; soft quotas only count; idle slots are released and let the next person in."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from fieldwork.conversations import Conversations
from exporters.progress import survey_status
from fieldwork.quotas import QuotaGate, release_stale
from storage import open_storage
from surveys import engine
from surveys.project import parse_survey, store_survey
from surveys.sampling import draw_sample, import_frame_file
from surveys.xlsform import load_questionnaire
from survey_toml import survey_toml

HERE = Path(__file__).parent
ZONE = dt.timezone(dt.timedelta(hours=7))
T0 = dt.datetime(2026, 8, 2, 9, 0, tzinfo=ZONE)

FORM = """\
| survey |
|        | type    | name | label::Tiếng Việt (vi) | label::English (en) | required |
|        | integer | q1   | Câu 1                  | Question 1          | yes      |
|        | integer | q2   | Câu 2                  | Question 2          | yes      |
| settings |
|          | form_id               | version | form_title | default_language |
|          | sipas_citizen_example | t1      | Thử        | Tiếng Việt (vi)  |
"""


def survey(hard: bool, target: int) -> str:
    return survey_toml("quota-test", "Thử hạn ngạch", "sipas_citizen_example", communes=("a", "b"), extra=f"""\
[quotas]
hard = {"true" if hard else "false"}
release_after_hours = 72
[quotas.targets]
"citizen/xa-a" = {target}
""")


async def setup_survey(tmp_path: Path, db, *, size: int = 20, target: int = 10, hard: bool = True):
    """A census of ``size`` people in citizen/xa-a (and 5 in xa-b), the tiny form registered."""
    form_path = tmp_path / "form.md"
    form_path.write_text(FORM, encoding="utf-8")
    frame = tmp_path / "frame.csv"
    frame.write_text("id,group,unit\n" + "".join(f"a{i:04d},citizen,xa-a\n" for i in range(size))
                     + "".join(f"b{i:04d},citizen,xa-b\n" for i in range(5)), encoding="utf-8")
    text = survey(hard, target)
    project = parse_survey(text)
    async with await open_storage(db) as storage:
        await store_survey(storage, project, text, "survey.toml", T0.isoformat())
        await import_frame_file(storage, project, frame, T0.isoformat())
        await draw_sample(storage, project, 1, T0.isoformat())
        await Conversations(storage).register(load_questionnaire(form_path), form_path.read_bytes(), "form.md", T0)
        members = await storage.sample_members(project.id, "main")
    ids = sorted(m.respondent_id for m in members if m.stratum == "citizen/xa-a")
    return db, form_path, project, ids


async def take_part(conversations: Conversations, form, rid: int, at: dt.datetime, *, finish: bool = True) -> str:
    """Start, consent and (if ``finish``) answer both questions; returns the session status."""
    record, _ = await conversations.open_for(rid, form, "telegram", None, at)
    handled = await conversations.handle(record.id, engine.Start(at=at), f"p{rid}:start")
    handled = await conversations.handle(record.id, engine.Reply("yes", at=at), f"p{rid}:consent")
    if handled.session.status != engine.Status.ACTIVE.value or not finish:
        return handled.session.status
    for n, question in enumerate(("q1", "q2")):
        await asyncio.sleep(0)
        handled = await conversations.handle(record.id, engine.Reply(str(n + 1), at=at), f"p{rid}:{question}")
    return handled.session.status


async def worker(db: str, form_path: str, ids: list[int]) -> None:
    """One OS process of the race: every respondent of ``ids`` at once, as asyncio tasks."""
    form = load_questionnaire(Path(form_path))
    async with await open_storage(db) as storage:
        conversations = Conversations(storage, quotas=QuotaGate(storage))
        await asyncio.gather(*(take_part(conversations, form, rid, T0) for rid in ids))


async def counts(db: Path, project) -> dict:
    async with await open_storage(db) as storage:
        dispositions = {}
        for rid in [m.respondent_id for m in await storage.sample_members(project.id, "main")]:
            d = (await storage.get_respondent(rid)).disposition
            dispositions[d] = dispositions.get(d, 0) + 1
        slots = await storage.quota_counts(project.id)
        report = await survey_status(storage, project, T0)
    return {"dispositions": dispositions, "slots": slots, "report": report}


async def test_hundreds_racing_in_four_processes_never_overshoot_a_hard_quota(tmp_path, database):
    db, form_path, project, ids = await setup_survey(tmp_path, database, size=400, target=10)
    chunks = [ids[i::4] for i in range(4)]
    code = ("import sys, asyncio; sys.path.insert(0, {here!r}); import test_quotas as t; "
            "asyncio.run(t.worker({db!r}, {form!r}, {ids!r}))")
    procs = [subprocess.Popen([sys.executable, "-c", code.format(here=str(HERE), db=str(db), form=str(form_path),
                                                                 ids=chunk)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for chunk in chunks]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    result = await counts(db, project)
    # 400 people raced for 10 slots: exactly 10 completed, everyone else was told politely.
    assert result["slots"]["citizen/xa-a"] == {"reserved": 0, "completed": 10, "released": 0}
    assert result["dispositions"].get("completed") == 10
    assert result["dispositions"].get("quota_full") == 390
    row = next(r for r in result["report"].rows if r.stratum == "citizen/xa-a")
    assert row.completed == 10 and row.quota == 10 and row.quota_fill == 1.0  # overshoot 0


async def test_the_person_who_finds_the_stratum_full_is_thanked_and_nothing_is_stored(tmp_path, database):
    db, form_path, project, ids = await setup_survey(tmp_path, database, size=5, target=1)
    form = load_questionnaire(form_path)
    async with await open_storage(db) as storage:
        conversations = Conversations(storage, quotas=QuotaGate(storage))
        assert await take_part(conversations, form, ids[0], T0) == "completed"
        assert await take_part(conversations, form, ids[1], T0) == "consent"  # the acceptance is not stored
        assert (await storage.get_respondent(ids[1])).disposition == "quota_full"
        messages = await storage._fetchall("SELECT payload FROM outbox")  # noqa: SLF001
        assert messages == []  # no replies rendered in this test (no channel), but no step either
        session = await storage.latest_session(ids[1], "sipas_citizen_example")
        assert engine.Status(session.status) is engine.Status.CONSENT
        # The same update delivered again changes nothing.
        handled = await conversations.handle(session.id, engine.Reply("yes", at=T0), f"p{ids[1]}:consent")
        assert handled.applied is False
        assert (await storage.get_respondent(ids[1])).disposition == "quota_full"
        # Another stratum without a target is not gated.
        others = [m.respondent_id for m in await storage.sample_members(project.id, "main")
                  if m.stratum == "citizen/xa-b"]
        assert await take_part(conversations, form, others[0], T0) == "completed"


async def test_quota_full_reply_is_queued_with_the_event(tmp_path, database):
    db, form_path, project, ids = await setup_survey(tmp_path, database, size=3, target=1)
    form = load_questionnaire(form_path)
    async with await open_storage(db) as storage:
        conversations = Conversations(storage, quotas=QuotaGate(storage))
        await take_part(conversations, form, ids[0], T0)
        record, _ = await conversations.open_for(ids[1], form, "telegram", None, T0)
        await conversations.handle(record.id, engine.Start(at=T0), "x:start")
        said = []

        def replies(step, _record):
            said.extend(out.text for out in step.say)
            return []

        await conversations.handle(record.id, engine.Reply("yes", at=T0), "x:yes", replies)
        assert said and "đủ số phiếu" in said[0]


async def test_soft_quota_counts_and_reports_the_overshoot(tmp_path, database):
    db, form_path, project, ids = await setup_survey(tmp_path, database, size=30, target=5, hard=False)
    form = load_questionnaire(form_path)
    async with await open_storage(db) as storage:
        conversations = Conversations(storage, quotas=QuotaGate(storage))
        statuses = await asyncio.gather(*(take_part(conversations, form, rid, T0) for rid in ids[:12]))
    assert statuses.count("completed") == 12
    result = await counts(db, project)
    assert result["slots"]["citizen/xa-a"]["completed"] == 12
    row = next(r for r in result["report"].rows if r.stratum == "citizen/xa-a")
    assert row.completed == 12 and row.quota == 5
    assert row.quota_fill == pytest.approx(12 / 5)  # overshoot of 7, reported


async def test_refusal_releases_the_slot_for_the_next_person(tmp_path, database):
    db, form_path, project, ids = await setup_survey(tmp_path, database, size=5, target=1)
    form = load_questionnaire(form_path)
    async with await open_storage(db) as storage:
        conversations = Conversations(storage, quotas=QuotaGate(storage))
        assert await take_part(conversations, form, ids[0], T0, finish=False) == "active"
        assert await take_part(conversations, form, ids[1], T0, finish=False) == "consent"  # full
        session = await storage.latest_session(ids[0], "sipas_citizen_example")
        await conversations.handle(session.id, engine.Stop(at=T0, refuse=True), "refuse")
        assert (await storage.quota_counts(project.id))["citizen/xa-a"]["released"] == 1
        assert await take_part(conversations, form, ids[2], T0) == "completed"


async def test_idle_slots_are_released_after_the_timeout_and_let_the_next_person_in(tmp_path, database):
    db, form_path, project, ids = await setup_survey(tmp_path, database, size=5, target=1)
    form = load_questionnaire(form_path)
    async with await open_storage(db) as storage:
        conversations = Conversations(storage, quotas=QuotaGate(storage))
        assert await take_part(conversations, form, ids[0], T0, finish=False) == "active"
        later = T0 + dt.timedelta(hours=71)
        assert await release_stale(storage, project, later) == []  # not yet
        assert await take_part(conversations, form, ids[1], later, finish=False) == "consent"
        after = T0 + dt.timedelta(hours=73)
        assert await release_stale(storage, project, after) == [ids[0]]
        assert (await storage.get_respondent(ids[0])).disposition == "partial"
        assert await release_stale(storage, project, after) == []  # once
        # The slot is free: the next person gets in and completes.
        assert await take_part(conversations, form, ids[2], after) == "completed"
        # The one who walked away comes back: the stratum is full now, so they cannot complete past it.
        session = await storage.latest_session(ids[0], "sipas_citizen_example")
        back = after + dt.timedelta(hours=2)
        handled = await conversations.handle(session.id, engine.Reply("1", at=back), "back:q1")
        assert handled.session.status == "active" and handled.session.revision == session.revision + 1
        assert (await storage.get_respondent(ids[0])).disposition == "quota_full"
    result = await counts(db, project)
    assert result["slots"]["citizen/xa-a"]["completed"] == 1
