"""Tests for migration 2: sample members, personal data, dispositions,
invitations, chat links and the outbox. Real SQLite files, no mocks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from storage import (
    DISPOSITIONS,
    OUTBOX_STATES,
    AmbiguousPhone,
    AnswerChange,
    InvitationRevoked,
    InvitationUsed,
    LinkConflict,
    NotFound,
    OutgoingMessage,
    Personal,
    Respondent,
    StaleRevision,
    StepResult,
    StorageError,
    open_storage,
)
from storage import migrations

T0 = "2024-05-01T08:00:00+07:00"
T1 = "2024-05-01T08:01:00+07:00"
T2 = "2024-05-01T08:02:00+07:00"
T3 = "2024-05-01T08:03:00+07:00"


@pytest.fixture
def db_path(database):
    """An SQLite file, then a PostgreSQL database (tests/conftest.py)."""
    return database


@pytest.fixture
async def store(db_path: Path):
    async with await open_storage(db_path) as s:
        yield s


async def new_session(s, external_id: str = "tg:1", form_id: str = "par"):
    await s.save_questionnaire(form_id, "1", f"{form_id}.xlsx", b"form bytes", T0)
    respondent = await s.ensure_respondent(external_id, T0)
    session, _ = await s.open_session(respondent.id, form_id, "1", "telegram", "active", "{}", T0)
    return session


def msg(text: str = "hi", *, chat: str = "100", **kw) -> OutgoingMessage:
    return OutgoingMessage(
        "telegram", "bot1", chat, "sendMessage", json.dumps({"text": text}), **kw
    )


# Migration from version 1 ---------------------------------------------


@pytest.mark.sqlite_only("SQLite's upgrade path from schema 1")
async def test_version_1_database_is_upgraded_with_data_intact(db_path, monkeypatch):
    all_migrations = migrations.MIGRATIONS
    monkeypatch.setattr(migrations, "MIGRATIONS", all_migrations[:1])
    # Only migration 1 exists: write through raw SQL, since the current code
    # reads columns that a version-1 schema does not have.
    async with await open_storage(db_path):
        pass
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
        conn.execute(
            "INSERT INTO questionnaires VALUES ('par', '1', 'par.xlsx', x'00', 'abc', ?)", (T0,)
        )
        conn.execute("INSERT INTO respondents VALUES (1, 'tg:1', 'RABCDEFGHJK', ?)", (T0,))
        conn.execute(
            "INSERT INTO sessions (respondent_id, form_id, form_version, channel, status,"
            " state, revision, created_at, updated_at)"
            " VALUES (1, 'par', '1', 'telegram', 'active', '{\"x\": 1}', 0, ?, ?)",
            (T0, T0),
        )
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "outbox" not in tables

    monkeypatch.setattr(migrations, "MIGRATIONS", all_migrations)
    async with await open_storage(db_path) as s:
        assert await s.get_respondent(1) == Respondent(
            1, "tg:1", "RABCDEFGHJK", T0, None, None, "sampled", None
        )
        (session,) = await s.list_sessions()
        assert (session.respondent_id, session.state) == (1, '{"x": 1}')
        assert await s.personal(1) == Personal(None, None)
        assert await s.outbox_counts() == dict.fromkeys(OUTBOX_STATES, 0)
        # The old session carries on, now with replies queued alongside.
        result = await s.apply_step(
            session.id, event_key="e1", event="{}", expected_revision=0, status="active",
            state="{}", changes=[], at=T1, outgoing=[msg()],
        )
        assert result == StepResult(True, 1)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (len(all_migrations),)
    conn.close()


# Respondents and personal data -------------------------------------------


async def test_add_respondent_with_personal_data(store):
    r = await store.add_respondent(
        "sample:001", form_id="sipas", stratum="HN-urban", name="Nguyễn Văn A",
        phone="+84912345678", at=T0,
    )
    assert (r.external_id, r.form_id, r.stratum, r.disposition) == (
        "sample:001", "sipas", "HN-urban", "sampled",
    )
    assert r.pseudonym.startswith("R")
    assert await store.get_respondent(r.id) == r
    assert await store.personal(r.id) == Personal("Nguyễn Văn A", "+84912345678")
    assert await store.respondent_by_phone("+84912345678") == r
    assert await store.respondent_by_phone("+84900000000") is None


async def test_add_respondent_is_idempotent_and_does_not_overwrite(store, db_path):
    first = await store.add_respondent("sample:001", form_id="sipas", phone="+84911111111", at=T0)
    again = await store.add_respondent(
        "sample:001", form_id="par", stratum="x", name="B", phone="+84922222222", at=T1
    )
    assert again == first
    assert await store.personal(first.id) == Personal(None, "+84911111111")
    assert len(await store.list_respondents()) == 1


@pytest.mark.sqlite_only("looks through a second sqlite3 connection")
async def test_personal_row_only_when_given(store, db_path):
    r = await store.add_respondent("sample:002", at=T0)
    assert await store.personal(r.id) == Personal(None, None)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM respondent_personal").fetchone() == (0,)
    conn.close()
    with pytest.raises(NotFound):
        await store.personal(999)


async def test_ensure_respondent_sees_added_respondent(store):
    added = await store.add_respondent("tg:5", form_id="par", at=T0)
    assert await store.ensure_respondent("tg:5", T1) == added
    created = await store.ensure_respondent("tg:6", T1)
    assert (created.form_id, created.stratum, created.disposition) == (None, None, "sampled")


async def test_shared_phone_is_ambiguous(store):
    await store.add_respondent("a", phone="+84912345678", at=T0)
    await store.add_respondent("b", phone="+84912345678", at=T0)
    with pytest.raises(AmbiguousPhone):
        await store.respondent_by_phone("+84912345678")
    assert issubclass(AmbiguousPhone, StorageError)


async def test_list_respondents_and_set_form(store):
    a = await store.add_respondent("a", form_id="par", at=T0)
    b = await store.add_respondent("b", at=T0)
    c = await store.add_respondent("c", form_id="par", at=T0)
    assert [r.id for r in await store.list_respondents()] == [a.id, b.id, c.id]
    assert [r.id for r in await store.list_respondents("par")] == [a.id, c.id]
    updated = await store.set_respondent_form(b.id, "par", "rural", T1)
    assert (updated.form_id, updated.stratum) == ("par", "rural")
    assert await store.get_respondent(b.id) == updated
    assert [r.id for r in await store.list_respondents("par")] == [a.id, b.id, c.id]
    assert await store.list_respondents("sipas") == []
    with pytest.raises(NotFound):
        await store.set_respondent_form(999, "par", None, T1)


# Dispositions ------------------------------------------------------------


async def test_set_disposition_updates_and_logs(store):
    r = await store.add_respondent("a", at=T0)
    assert await store.set_disposition(r.id, "invited", T1, reason="batch 1", key="k1")
    assert await store.set_disposition(r.id, "started", T2)
    now = await store.get_respondent(r.id)
    assert (now.disposition, now.disposition_at) == ("started", T2)
    assert await store.disposition_history(r.id) == [
        {"status": "invited", "reason": "batch 1", "at": T1, "key": "k1"},
        {"status": "started", "reason": None, "at": T2, "key": None},
    ]


async def test_set_disposition_dedupes_key_and_unchanged_status(store):
    r = await store.add_respondent("a", at=T0)
    other = await store.add_respondent("b", at=T0)
    assert await store.set_disposition(r.id, "invited", T1, key="k1")
    # Re-delivered: same key, even with another status, writes nothing.
    assert not await store.set_disposition(r.id, "refused", T2, key="k1")
    # Keys are unique across respondents.
    assert not await store.set_disposition(other.id, "invited", T2, key="k1")
    # Unchanged status writes nothing, not even the new key.
    assert not await store.set_disposition(r.id, "invited", T2, key="k2")
    assert await store.set_disposition(r.id, "refused", T3, key="k2")
    assert [h["status"] for h in await store.disposition_history(r.id)] == [
        "invited", "refused",
    ]
    assert await store.disposition_history(other.id) == []
    assert (await store.get_respondent(other.id)).disposition == "sampled"


async def test_every_disposition_is_accepted_and_others_rejected(store):
    r = await store.add_respondent("a", at=T0)
    for status in DISPOSITIONS[1:]:
        assert await store.set_disposition(r.id, status, T1)
    with pytest.raises(StorageError):
        await store.set_disposition(r.id, "bogus", T2)
    assert (await store.get_respondent(r.id)).disposition == "replaced"
    assert len(await store.disposition_history(r.id)) == len(DISPOSITIONS) - 1
    with pytest.raises(NotFound):
        await store.set_disposition(999, "invited", T1)


# Invitations -------------------------------------------------------------


async def test_issue_revokes_previous_code_of_same_kind(store):
    r = await store.add_respondent("a", at=T0)
    link1 = await store.issue_invitation(r.id, "link", "h1", T0)
    typed = await store.issue_invitation(r.id, "typed", "h2", T0)
    link2 = await store.issue_invitation(r.id, "link", "h3", T1)
    assert (await store.find_invitation("h1")).revoked_at == T1
    assert (await store.find_invitation("h2")).revoked_at is None
    assert await store.active_invitation(r.id, "link") == link2
    assert await store.active_invitation(r.id, "typed") == typed
    assert link2.created_at == T1 and link2.revoked_at is None and link2.used_at is None
    assert link1.id != link2.id
    assert await store.find_invitation("nope") is None


async def test_invitation_errors(store):
    r = await store.add_respondent("a", at=T0)
    await store.issue_invitation(r.id, "link", "h1", T0)
    with pytest.raises(StorageError):  # hash collision
        await store.issue_invitation(r.id, "typed", "h1", T0)
    with pytest.raises(StorageError):  # unknown kind
        await store.issue_invitation(r.id, "sms", "h9", T0)
    with pytest.raises(NotFound):
        await store.issue_invitation(999, "link", "h8", T0)
    # The failed issue did not revoke the active code.
    assert (await store.active_invitation(r.id, "link")).code_hash == "h1"


async def test_revoke_invitations(store):
    r = await store.add_respondent("a", at=T0)
    await store.issue_invitation(r.id, "link", "h1", T0)
    await store.issue_invitation(r.id, "typed", "h2", T0)
    await store.issue_invitation(r.id, "typed", "h3", T1)  # revokes h2
    assert await store.revoke_invitations(r.id, T2) == 2
    assert await store.revoke_invitations(r.id, T3) == 0
    assert (await store.find_invitation("h2")).revoked_at == T1
    assert (await store.find_invitation("h3")).revoked_at == T2
    assert await store.active_invitation(r.id, "link") is None


async def test_use_invitation(store):
    r = await store.add_respondent("a", at=T0)
    inv = await store.issue_invitation(r.id, "link", "h1", T0)
    used = await store.use_invitation(inv.id, "telegram", "bot1", "100", T1)
    assert (used.used_at, used.used_channel, used.used_bot, used.used_chat) == (
        T1, "telegram", "bot1", "100",
    )
    assert await store.find_invitation("h1") == used
    # Same chat again (re-delivered update): no-op, first use kept.
    assert await store.use_invitation(inv.id, "telegram", "bot1", "100", T2) == used
    for other in (("telegram", "bot1", "101"), ("telegram", "bot2", "100"),
                  ("zalo", "bot1", "100")):
        with pytest.raises(InvitationUsed):
            await store.use_invitation(inv.id, *other, T2)
    assert await store.find_invitation("h1") == used
    # Revoked after use: the same chat's repeat is still a no-op.
    await store.revoke_invitations(r.id, T2)
    assert (await store.use_invitation(inv.id, "telegram", "bot1", "100", T3)).used_at == T1
    with pytest.raises(NotFound):
        await store.use_invitation(999, "telegram", "bot1", "100", T3)


async def test_revoked_unused_invitation_cannot_be_used(store):
    r = await store.add_respondent("a", at=T0)
    old = await store.issue_invitation(r.id, "typed", "h1", T0)
    await store.issue_invitation(r.id, "typed", "h2", T1)
    with pytest.raises(InvitationRevoked):
        await store.use_invitation(old.id, "telegram", "bot1", "100", T2)
    assert (await store.find_invitation("h1")).used_at is None


# Chat links --------------------------------------------------------------


async def test_link_chat_and_lookups(store):
    a = await store.add_respondent("a", at=T0)
    await store.link_chat("telegram", "bot1", "100", a.id, T1)
    await store.link_chat("telegram", "bot1", "100", a.id, T2)  # idempotent
    await store.link_chat("telegram", "bot2", "100", a.id, T2)  # another bot is fine
    await store.link_chat("zalo", "oa1", "z-9", a.id, T3)
    assert await store.linked_respondent("telegram", "bot1", "100") == a
    assert await store.linked_respondent("telegram", "bot1", "101") is None
    assert await store.chats_of(a.id) == [
        ("telegram", "bot1", "100"), ("telegram", "bot2", "100"), ("zalo", "oa1", "z-9"),
    ]
    assert await store.chats_of(999) == []


async def test_linked_session_reads_the_chat_and_its_latest_session_together(store):
    assert await store.linked_session("telegram", "bot1", "100", "par") == (None, None)
    a = await store.add_respondent("a", at=T0)
    b = await store.add_respondent("b", form_id="cit", at=T0)
    await store.link_chat("telegram", "bot1", "100", a.id, T1)
    await store.link_chat("telegram", "bot1", "200", b.id, T1)
    assert await store.linked_session("telegram", "bot1", "100", "par") == (a, None)
    assert await store.linked_session("telegram", "bot1", "100", None) == (a, None)  # no questionnaire at all
    for form_id in ("par", "cit"):
        await store.save_questionnaire(form_id, "1", f"{form_id}.xlsx", b"form bytes", T0)
    first, _ = await store.open_session(a.id, "par", "1", "telegram", "completed", "{}", T1)
    assert await store.linked_session("telegram", "bot1", "100", "par") == (a, first)
    assert await store.linked_session("telegram", "bot1", "100", "cit") == (a, None)  # default form: another one
    again, _ = await store.open_session(a.id, "par", "1", "telegram", "active", "{}", T2)
    assert (await store.linked_session("telegram", "bot1", "100", "par"))[1] == again
    own, _ = await store.open_session(b.id, "cit", "1", "telegram", "active", "{}", T2)
    assert await store.linked_session("telegram", "bot1", "200", "par") == (b, own)  # the respondent's own form wins
    assert await store.linked_session("telegram", "bot1", "999", "par") == (None, None)


async def test_link_conflicts(store):
    a = await store.add_respondent("a", at=T0)
    b = await store.add_respondent("b", at=T0)
    await store.link_chat("telegram", "bot1", "100", a.id, T1)
    with pytest.raises(LinkConflict):  # chat taken by another respondent
        await store.link_chat("telegram", "bot1", "100", b.id, T2)
    with pytest.raises(LinkConflict):  # respondent already has a chat on this bot
        await store.link_chat("telegram", "bot1", "200", a.id, T2)
    with pytest.raises(NotFound):
        await store.link_chat("telegram", "bot1", "300", 999, T2)
    assert await store.chats_of(a.id) == [("telegram", "bot1", "100")]
    assert await store.chats_of(b.id) == []


async def test_link_attempts_count_once_per_key(store):
    assert await store.log_link_attempt("telegram", "bot1", "100", "bad_code", T0, key="u1")
    assert not await store.log_link_attempt(
        "telegram", "bot1", "100", "bad_code", T0, key="u1"
    )
    assert await store.log_link_attempt(
        "telegram", "bot1", "100", "bad_code", T2, key="u2", detail="ABC"
    )
    assert await store.log_link_attempt("telegram", "bot1", "100", "ok", T2, key="u3")
    assert await store.log_link_attempt("telegram", "bot1", "101", "bad_code", T2, key="u4")
    assert await store.count_link_attempts("telegram", "bot1", "100", "bad_code", T0) == 2
    assert await store.count_link_attempts("telegram", "bot1", "100", "bad_code", T1) == 1
    assert await store.count_link_attempts("telegram", "bot1", "100", "ok", T0) == 1
    assert await store.count_link_attempts("telegram", "bot2", "100", "bad_code", T0) == 0


# Outbox ------------------------------------------------------------------


async def test_enqueue_dedupes_and_orders_by_priority(store):
    n = await store.enqueue(
        [
            msg("bulk", priority=10, dedupe_key="invite:1"),
            msg("reply1"),
            msg("urgent", priority=-1),
            msg("reply2"),
            msg("dup in batch", dedupe_key="invite:1"),
            OutgoingMessage("telegram", "bot2", "100", "sendMessage", "{}"),
        ],
        T0,
    )
    assert n == 5
    assert await store.enqueue([msg("again", dedupe_key="invite:1")], T1) == 0
    due = await store.due_messages("telegram", "bot1", T0, 10)
    assert [json.loads(m.payload)["text"] for m in due] == ["urgent", "reply1", "reply2", "bulk"]
    assert all(m.state == "pending" and m.attempts == 0 for m in due)
    assert (due[0].created_at, due[0].updated_at, due[0].chat_id) == (T0, T0, "100")
    assert [m.payload for m in await store.due_messages("telegram", "bot2", T0, 10)] == ["{}"]
    assert len(await store.due_messages("telegram", "bot1", T0, 2)) == 2
    assert await store.outbox_counts() == {**dict.fromkeys(OUTBOX_STATES, 0), "pending": 5}
    assert (await store.outbox_counts(bot="bot2"))["pending"] == 1
    assert (await store.outbox_counts("zalo"))["pending"] == 0


async def test_enqueue_is_all_or_nothing(store):
    with pytest.raises(StorageError):
        await store.enqueue(
            [msg("ok"), OutgoingMessage("telegram", "bot1", "1", "sendMessage", "{not json")],
            T0,
        )
    with pytest.raises(StorageError):  # unknown respondent
        await store.enqueue([msg("ok", respondent_id=999)], T0)
    assert (await store.outbox_counts())["pending"] == 0
    assert await store.enqueue([], T0) == 0


async def test_not_before_delays_sending(store):
    await store.enqueue([msg("later", not_before=T2), msg("now")], T0)
    assert [json.loads(m.payload)["text"] for m in await store.due_messages(
        "telegram", "bot1", T1, 10)] == ["now"]
    due = await store.due_messages("telegram", "bot1", T2, 10)
    assert [json.loads(m.payload)["text"] for m in due] == ["later", "now"]
    assert due[0].not_before == T2


async def test_state_transitions(store):
    r = await store.add_respondent("a", at=T0)
    await store.enqueue([msg("a", respondent_id=r.id), msg("b"), msg("c")], T0)
    a, b, c = await store.due_messages("telegram", "bot1", T0, 10)
    assert a.respondent_id == r.id

    assert not await store.mark_sent(a.id, T1, "{}")  # not sending yet
    assert await store.mark_sending(a.id, T1)
    assert not await store.mark_sending(a.id, T1)  # already claimed
    assert [m.id for m in await store.due_messages("telegram", "bot1", T1, 10)] == [b.id, c.id]
    assert await store.mark_sent(a.id, T2, '{"message_id": 7}')
    assert not await store.mark_sent(a.id, T2, None)
    assert not await store.mark_retry(a.id, T2, T3, "late")
    assert not await store.mark_failed(a.id, T2, "late")

    assert await store.mark_sending(b.id, T1)
    assert await store.mark_retry(b.id, T1, T3, "429 Too Many Requests")
    assert [m.id for m in await store.due_messages("telegram", "bot1", T2, 10)] == [c.id]
    (b2,) = [m for m in await store.due_messages("telegram", "bot1", T3, 10) if m.id == b.id]
    assert (b2.state, b2.attempts, b2.not_before, b2.error, b2.updated_at) == (
        "pending", 1, T3, "429 Too Many Requests", T1,
    )

    assert await store.mark_sending(c.id, T1)
    assert await store.mark_failed(c.id, T2, "403 bot was blocked")
    assert not await store.mark_sending(c.id, T3)
    assert not await store.mark_sending(999, T3)

    assert await store.outbox_counts() == {
        "pending": 1, "sending": 0, "sent": 1, "failed": 1, "unknown": 0,
    }


async def test_recover_outbox_marks_interrupted_sends_unknown(db_path):
    async with await open_storage(db_path) as s:
        await s.enqueue([msg("a"), msg("b"), msg("c")], T0)
        await s.enqueue([OutgoingMessage("telegram", "bot2", "1", "sendMessage", "{}")], T0)
        a, b, c = await s.due_messages("telegram", "bot1", T0, 10)
        (other,) = await s.due_messages("telegram", "bot2", T0, 10)
        for m in (a, b, other):
            await s.mark_sending(m.id, T1)
        await s.mark_sent(a.id, T1, None)
    # "Crash" with b in sending; restart.
    async with await open_storage(db_path) as s:
        assert await s.recover_outbox("telegram", "bot1", T2) == 1
        assert await s.recover_outbox("telegram", "bot1", T2) == 0
        counts = await s.outbox_counts("telegram", "bot1")
        assert counts == {"pending": 1, "sending": 0, "sent": 1, "failed": 0, "unknown": 1}
        assert (await s.outbox_counts(bot="bot2"))["sending"] == 1  # other bot untouched
        # Not resent, and cannot be moved by a late mark_sent.
        assert [m.id for m in await s.due_messages("telegram", "bot1", T3, 10)] == [c.id]
        assert not await s.mark_sent(b.id, T3, None)


# apply_step with outgoing ---------------------------------------------------


async def test_apply_step_enqueues_replies_once(store):
    session = await new_session(store)
    replies = [msg("Câu 1?"), msg("typing", priority=-1, dedupe_key="s1:e1:typing")]
    result = await store.apply_step(
        session.id, event_key="e1", event="{}", expected_revision=0, status="active",
        state='{"q": 1}', changes=[AnswerChange("q0", '"x"', "answered")], at=T1,
        outgoing=replies,
    )
    assert result == StepResult(True, 1)
    assert len(await store.due_messages("telegram", "bot1", T1, 10)) == 2
    # Re-delivered event: nothing applied, nothing enqueued.
    again = await store.apply_step(
        session.id, event_key="e1", event="{}", expected_revision=0, status="active",
        state='{"q": 1}', changes=[], at=T2, outgoing=[msg("Câu 1?")],
    )
    assert again == StepResult(False, 1)
    assert (await store.outbox_counts())["pending"] == 2
    # A stale writer enqueues nothing either.
    with pytest.raises(StaleRevision):
        await store.apply_step(
            session.id, event_key="e2", event="{}", expected_revision=0, status="active",
            state="{}", changes=[], at=T2, outgoing=[msg("stale")],
        )
    assert (await store.outbox_counts())["pending"] == 2


async def test_apply_step_without_outgoing_still_works(store):
    session = await new_session(store)
    result = await store.apply_step(
        session.id, event_key="e1", event="{}", expected_revision=0, status="active",
        state="{}", changes=[], at=T1,
    )
    assert result == StepResult(True, 1)
    assert (await store.outbox_counts())["pending"] == 0


async def test_bad_outgoing_fails_whole_step(store):
    session = await new_session(store)
    with pytest.raises(StorageError):
        await store.apply_step(
            session.id, event_key="e1", event="{}", expected_revision=0, status="active",
            state='{"q": 1}', changes=[AnswerChange("q0", '"x"', "answered")], at=T1,
            outgoing=[msg("fine"), OutgoingMessage("telegram", "bot1", "100", "sendMessage",
                                                   "not json")],
        )
    after = await store.get_session(session.id)
    assert (after.revision, after.state) == (0, "{}")
    assert await store.events(session.id) == []
    assert await store.answers(session.id) == {}
    assert (await store.outbox_counts())["pending"] == 0
    # The same event can then be applied properly.
    result = await store.apply_step(
        session.id, event_key="e1", event="{}", expected_revision=0, status="active",
        state='{"q": 1}', changes=[], at=T1, outgoing=[msg("fine")],
    )
    assert result == StepResult(True, 1)
