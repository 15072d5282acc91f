"""The privacy repository on real SQLite: a withdrawal stops every message in one transaction, each
step happens once (idempotent), and erasure reaches every table that held the person."""

from __future__ import annotations

import datetime as dt

from storage import OutgoingMessage, open_storage
from tests.test_privacy_retention import OPENED, fielded


async def open_for(storage, respondent_id: int, at: str):
    return await storage.open_rights_request(respondent_id, kind="withdraw_delete", channel="telegram", bot="t",
                                             language="vi", at=at, acknowledge_by="2026-08-04", handle_by="2026-08-17")


async def test_withdrawal_stops_messages_and_reminders_and_each_step_happens_once(tmp_path):
    db, ids = await fielded(tmp_path)
    person, other = ids[1], ids[2]
    at = (OPENED + dt.timedelta(hours=1)).isoformat()
    async with await open_storage(db) as storage:
        for rid in (person, other):
            await storage.set_disposition(rid, "contacted", at)
            await storage.enqueue([OutgoingMessage("telegram", "t", "x", "sendMessage", "{}", dedupe_key=f"later-{rid}",
                                                   respondent_id=rid)], at)
        later = (OPENED + dt.timedelta(days=2)).isoformat()
        queued = await storage.enqueue_due_reminders("ret-2026", after_days=(1,), max_count=1, now=later,
                                                     limits={("telegram", "t"): None}, at=later)
        assert queued == 3  # the three people with a chat
        pending = await storage._fetchall(  # noqa: SLF001
            "SELECT count(*) FROM outbox WHERE respondent_id = ? AND state = 'pending'", (person,))
        assert pending[0][0] == 1
        request, new = await open_for(storage, person, at)
        assert new and request.status == "open"
        again, new = await open_for(storage, person, at)
        assert not new and again.id == request.id  # one active request per person
        rows = await storage._fetchall(  # noqa: SLF001
            "SELECT state, error FROM outbox WHERE respondent_id = ? AND state <> 'sent'", (person,))
        assert [tuple(r) for r in rows] == [("failed", "withdrawn: rights request")]
        reminders = await storage._fetchall(  # noqa: SLF001
            "SELECT respondent_id, withdrawn_because FROM reminders ORDER BY respondent_id")
        assert [tuple(r) for r in reminders] == [(ids[0], None), (person, "rights request"), (other, None)]
        other_rows = await storage._fetchall(  # noqa: SLF001
            "SELECT state FROM outbox WHERE respondent_id = ? AND state <> 'sent'", (other,))
        assert [r[0] for r in other_rows] == ["pending"]  # nobody else is touched
        assert (await storage.get_respondent(person)).disposition == "refused"
        assert (await storage.active_rights_request(person)).id == request.id
        assert await storage.close_rights_request(request.id, at) is False  # not fulfilled yet

        counts = await storage.erase_respondent(request.id, "cli", at)
        assert counts["names"] == counts["phones"] == counts["codes"] == counts["frame_people"] == 1
        assert await storage.erase_respondent(request.id, "cli", at) is None  # twice is once
        assert await storage.requests_to_notify("zalo", "t") == []
        ((told, chat_id),) = await storage.requests_to_notify("telegram", "t")
        assert told.id == request.id and chat_id == "1001"
        assert await storage.close_rights_request(request.id, at) is True
        assert await storage.close_rights_request(request.id, at) is False
        assert await storage.active_rights_request(person) is None
        assert await storage.chats_of(person) == [] and len(await storage.chats_of(other)) == 1
        assert await storage._fetchall(  # noqa: SLF001
            "SELECT 1 FROM link_attempts WHERE chat_id = '1001'") == []
        assert [e["action"] for e in await storage.privacy_log(request_id=request.id)] == \
            ["opened", "fulfilled", "closed"]


async def test_erasure_reaches_answers_history_events_and_quota(tmp_path):
    db, ids = await fielded(tmp_path)
    person = ids[0]  # the one who answered
    at = (OPENED + dt.timedelta(hours=1)).isoformat()
    async with await open_storage(db) as storage:
        session = await storage.latest_session(person, "ret_form")
        assert await storage.answers(session.id) and await storage.events(session.id)
        request, _ = await open_for(storage, person, at)
        counts = await storage.erase_respondent(request.id, "console:coord", at)
        assert counts["sessions"] == 1 and counts["answers"] >= 1
        for table in ("sessions", "quota_slots"):
            assert await storage._fetchall(  # noqa: SLF001
                f"SELECT 1 FROM {table} WHERE respondent_id = ?", (person,)) == []
        for table in ("answers", "answer_history", "events"):
            assert await storage._fetchall(  # noqa: SLF001
                f"SELECT 1 FROM {table} WHERE session_id = ?", (session.id,)) == []
        sent = await storage._fetchall(  # noqa: SLF001
            "SELECT payload FROM outbox WHERE respondent_id = ? AND state = 'sent'", (person,))
        assert sent and all(row[0] == "{}" for row in sent)  # what was said to them is gone too
        assert (await storage.get_respondent(person)).pseudonym  # the pseudonymous row stays, as evidence
