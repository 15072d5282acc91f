"""Storage tests against real SQLite files: no mocks, because durability,
transactions and locking are exactly what a fake would get wrong."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from storage import (
    AnswerChange,
    NotFound,
    QuestionnaireConflict,
    StaleRevision,
    StepResult,
    StorageError,
    open_storage,
)
from storage import migrations

PROJECT_ROOT = Path(__file__).resolve().parents[1]
T0 = "2024-05-01T08:00:00+07:00"
T1 = "2024-05-01T08:01:00+07:00"
T2 = "2024-05-01T08:02:00+07:00"


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


async def step(s, session_id, key, revision, changes=(), status="active", at=T1):
    return await s.apply_step(
        session_id,
        event_key=key,
        event=json.dumps({"key": key}),
        expected_revision=revision,
        status=status,
        state=json.dumps({"rev": revision + 1}),
        changes=list(changes),
        at=at,
    )


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


# Migrations -------------------------------------------------------------


@pytest.mark.sqlite_only("reads PRAGMA user_version (tests/test_pg_migrations.py covers PostgreSQL's)")
async def test_new_database_is_migrated_and_reopening_is_a_no_op(db_path):
    async with await open_storage(db_path) as s:
        await s.ensure_respondent("tg:1", T0)
    assert user_version(db_path) == len(migrations.MIGRATIONS)
    async with await open_storage(db_path) as s:
        assert (await s.get_respondent(1)).external_id == "tg:1"
    assert user_version(db_path) == len(migrations.MIGRATIONS)


@pytest.mark.sqlite_only("SQLite's upgrade path (tests/test_pg_migrations.py covers PostgreSQL's)")
async def test_older_database_gets_missing_migrations(db_path, monkeypatch):
    async with await open_storage(db_path) as s:
        await s.ensure_respondent("tg:1", T0)
    current = len(migrations.MIGRATIONS)
    extra = ("CREATE TABLE extra (x TEXT)",)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, extra])

    async with await open_storage(db_path) as s:
        assert (await s.get_respondent(1)).external_id == "tg:1"
    assert user_version(db_path) == current + 1
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM extra").fetchone() == (0,)


@pytest.mark.sqlite_only("SQLite's upgrade path (tests/test_pg_migrations.py covers PostgreSQL's)")
async def test_failed_upgrade_leaves_old_schema_intact(db_path, monkeypatch):
    async with await open_storage(db_path):
        pass
    current = len(migrations.MIGRATIONS)
    broken = ("CREATE TABLE extra (x TEXT)", "THIS IS NOT SQL")
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])

    with pytest.raises(StorageError):
        await open_storage(db_path)
    assert user_version(db_path) == current
    with sqlite3.connect(db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "extra" not in tables


@pytest.mark.sqlite_only("writes PRAGMA user_version (tests/test_pg_migrations.py covers PostgreSQL's)")
async def test_newer_database_is_refused(db_path):
    async with await open_storage(db_path):
        pass
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {len(migrations.MIGRATIONS) + 1}")
    with pytest.raises(StorageError, match="newer"):
        await open_storage(db_path)


@pytest.mark.sqlite_only("SQLite's PRAGMAs")
async def test_durability_pragmas(store, db_path):
    assert db_path.exists()  # parent directory was created
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# Questionnaires ---------------------------------------------------------


async def test_save_questionnaire_is_idempotent(store):
    first = await store.save_questionnaire("par", "1", "par.xlsx", b"abc", T0)
    again = await store.save_questionnaire("par", "1", "copy.xlsx", b"abc", T1)
    assert again == first
    assert first.loaded_at == T0
    assert first.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert await store.get_questionnaire("par", "1") == first


async def test_same_version_with_other_content_conflicts(store):
    await store.save_questionnaire("par", "1", "par.xlsx", b"abc", T0)
    with pytest.raises(QuestionnaireConflict):
        await store.save_questionnaire("par", "1", "par.xlsx", b"abd", T1)
    assert (await store.get_questionnaire("par", "1")).source == b"abc"


async def test_list_and_get_questionnaires(store):
    await store.save_questionnaire("sipas", "1", "s.xlsx", b"s", T0)
    await store.save_questionnaire("par", "2", "p2.xlsx", b"p2", T1)
    await store.save_questionnaire("par", "1", "p1.xlsx", b"p1", T0)
    listed = [(q.form_id, q.version) for q in await store.list_questionnaires()]
    assert listed == [("par", "1"), ("par", "2"), ("sipas", "1")]
    with pytest.raises(NotFound):
        await store.get_questionnaire("par", "3")


# Respondents ------------------------------------------------------------


async def test_ensure_respondent_is_idempotent_with_stable_pseudonym(db_path):
    async with await open_storage(db_path) as s:
        first = await s.ensure_respondent("tg:123456", T0)
        assert await s.ensure_respondent("tg:123456", T1) == first
        other = await s.ensure_respondent("zalo:123456", T0)
    assert re.fullmatch(r"R[0-9A-Z]{10}", first.pseudonym)
    assert "123456" not in first.pseudonym
    assert other.pseudonym != first.pseudonym and other.id != first.id
    async with await open_storage(db_path) as s:
        assert await s.ensure_respondent("tg:123456", T2) == first
        assert await s.get_respondent(first.id) == first
        with pytest.raises(NotFound):
            await s.get_respondent(999)


# Sessions ---------------------------------------------------------------


async def test_open_session_resumes_until_completed(store):
    session = await new_session(store)
    assert session.revision == 0 and session.state == "{}"

    again, created = await store.open_session(
        session.respondent_id, "par", "1", "zalo", "active", "{}", T1
    )
    assert (again, created) == (session, False)

    await step(store, session.id, "done", 0, status="completed")
    fresh, created = await store.open_session(
        session.respondent_id, "par", "1", "telegram", "active", "{}", T2
    )
    assert created and fresh.id != session.id
    assert await store.latest_session(session.respondent_id, "par") == fresh
    assert await store.latest_session(session.respondent_id, "sipas") is None
    assert [s.id for s in await store.list_sessions("par")] == [session.id, fresh.id]
    assert (await store.get_session(session.id)).status == "completed"


async def test_open_session_needs_known_respondent_and_questionnaire(store):
    session = await new_session(store)
    with pytest.raises(NotFound):
        await store.open_session(session.respondent_id, "par", "9", "console", "a", "{}", T0)
    with pytest.raises(NotFound):
        await store.open_session(999, "par", "1", "console", "a", "{}", T0)
    with pytest.raises(NotFound):
        await store.get_session(999)


async def test_concurrent_open_session_creates_one(db_path):
    async with await open_storage(db_path) as a, await open_storage(db_path) as b:
        session = await new_session(a)
        results = await asyncio.gather(
            *(
                s.open_session(session.respondent_id, "par", "1", "console", "a", "{}", T1)
                for s in (a, b) * 5
            )
        )
        assert {r.id for r, _ in results} == {session.id}
        assert not any(created for _, created in results)
        assert len(await a.list_sessions()) == 1


# Steps ------------------------------------------------------------------


async def test_redelivered_event_is_stored_once(store):
    session = await new_session(store)
    change = [AnswerChange("q1", '"yes"', "answered")]
    assert await step(store, session.id, "tg:update:1", 0, change) == StepResult(True, 1)
    assert await step(store, session.id, "tg:update:1", 0, change) == StepResult(False, 1)

    assert list(await store.answers(session.id)) == ["q1"]
    assert len(await store.answer_history(session.id)) == 1
    events = await store.events(session.id)
    assert [(e["event_key"], e["revision"]) for e in events] == [("tg:update:1", 1)]
    assert json.loads(events[0]["event"]) == {"key": "tg:update:1"}
    assert (await store.get_session(session.id)).revision == 1


async def test_stale_revision_is_rejected(store):
    session = await new_session(store)
    await step(store, session.id, "e1", 0, [AnswerChange("q1", "1", "answered")])
    with pytest.raises(StaleRevision):
        await step(store, session.id, "e2", 0, [AnswerChange("q1", "2", "answered")])
    assert (await store.answers(session.id))["q1"].value == "1"
    assert len(await store.events(session.id)) == 1
    with pytest.raises(NotFound):
        await step(store, 999, "e3", 0)


async def test_history_records_only_real_changes(store):
    session = await new_session(store)
    sid = session.id
    await step(store, sid, "e1", 0, [AnswerChange("q1", "1", "answered")], at=T0)
    await step(
        store, sid, "e2", 1,
        [AnswerChange("q1", "1", "answered"), AnswerChange("q2", "null", "not_applicable")],
        at=T1,
    )
    await step(store, sid, "e3", 2, [AnswerChange("q1", "null", "skipped")], at=T2)

    answers = await store.answers(sid)
    assert (answers["q1"].value, answers["q1"].status, answers["q1"].updated_at) == (
        "null", "skipped", T2,
    )
    assert (answers["q2"].status, answers["q2"].updated_at) == ("not_applicable", T1)

    q1 = await store.answer_history(sid, "q1")
    assert [(h["old_value"], h["old_status"], h["new_value"], h["new_status"]) for h in q1] == [
        (None, None, "1", "answered"),
        ("1", "answered", "null", "skipped"),
    ]
    keys = {e["id"]: e["event_key"] for e in await store.events(sid)}
    assert [(keys[h["event_id"]], h["at"]) for h in q1] == [("e1", T0), ("e3", T2)]
    assert len(await store.answer_history(sid)) == 3


async def test_failing_change_leaves_nothing_written(store):
    session = await new_session(store)
    await step(store, session.id, "e1", 0, [AnswerChange("q1", "1", "answered")], at=T0)
    bad = [
        AnswerChange("q1", "2", "answered"),
        AnswerChange("q2", "3", "answered"),
        AnswerChange("q3", "4", "maybe"),  # violates the CHECK on answer status
    ]
    with pytest.raises(StorageError):
        await step(store, session.id, "e2", 1, bad, status="completed", at=T1)

    after = await store.get_session(session.id)
    assert (after.revision, after.status, after.updated_at) == (1, "active", T0)
    assert {q: a.value for q, a in (await store.answers(session.id)).items()} == {"q1": "1"}
    assert len(await store.answer_history(session.id)) == 1
    assert [e["event_key"] for e in await store.events(session.id)] == ["e1"]
    # The failed event was not recorded, so its redelivery is applied normally.
    good = [AnswerChange("q2", "3", "answered")]
    assert await step(store, session.id, "e2", 1, good) == StepResult(True, 2)


async def test_concurrent_steps_on_many_sessions_all_land(db_path):
    async with await open_storage(db_path) as a, await open_storage(db_path) as b:
        sessions = [await new_session(a, f"tg:{i}") for i in range(12)]

        async def drive(s, session_id):
            for rev in range(15):
                change = AnswerChange(f"q{rev}", str(rev), "answered")
                assert (await step(s, session_id, f"k{rev}", rev, [change])).applied

        await asyncio.gather(*(drive((a, b)[i % 2], x.id) for i, x in enumerate(sessions)))

    async with await open_storage(db_path) as s:
        for x in sessions:
            assert (await s.get_session(x.id)).revision == 15
            assert len(await s.events(x.id)) == 15
            assert len(await s.answers(x.id)) == 15


async def test_everything_persists_across_reopen(db_path):
    async with await open_storage(db_path) as s:
        session = await new_session(s)
        await step(s, session.id, "e1", 0, [AnswerChange("q1", '{"a": 1}', "answered")])
        before = (
            await s.get_session(session.id),
            await s.answers(session.id),
            await s.answer_history(session.id),
            await s.events(session.id),
            await s.list_questionnaires(),
        )
    async with await open_storage(db_path) as s:
        after = (
            await s.get_session(session.id),
            await s.answers(session.id),
            await s.answer_history(session.id),
            await s.events(session.id),
            await s.list_questionnaires(),
        )
    assert after == before
    assert before[0].state == json.dumps({"rev": 1})


# Crash safety -----------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import asyncio, json, sys
    from storage import AnswerChange, open_storage

    async def main(path):
        s = await open_storage(path)
        await s.save_questionnaire("par", "1", "par.xlsx", b"form", "t")
        r = await s.ensure_respondent("tg:1", "t")
        session, _ = await s.open_session(r.id, "par", "1", "console", "active", "{}", "t")
        rev = session.revision
        while True:
            changes = [
                AnswerChange("last", json.dumps(rev), "answered"),
                AnswerChange(f"q{rev % 7}", json.dumps(rev), "answered"),
            ]
            result = await s.apply_step(
                session.id, event_key=f"e{rev}", event=json.dumps({"n": rev}),
                expected_revision=rev, status="active", state=json.dumps({"n": rev}),
                changes=changes, at=f"t{rev}",
            )
            rev = result.revision
            print(rev, flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.sqlite_only("reads the file with sqlite3 after the kill")
async def test_sigkill_mid_write_leaves_a_consistent_database(db_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(db_path),
        cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE,
    )
    reported = 0
    try:
        while reported < 40:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
            assert line, "writer exited early"
            reported = int(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for line in (await proc.stdout.read()).split():  # progress printed before the kill
        reported = int(line)

    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    async with await open_storage(db_path) as s:
        (session,) = await s.list_sessions()
        events = await s.events(session.id)
        n = session.revision
        # Every step reported as done survived; at most one more committed unreported.
        assert reported <= n <= reported + 1
        assert [e["revision"] for e in events] == list(range(1, n + 1))
        assert json.loads(session.state) == {"n": n - 1}
        assert (await s.answers(session.id))["last"].value == json.dumps(n - 1)
        assert len(await s.answer_history(session.id, "last")) == n
        # The writer's next step can still be applied exactly once.
        assert await step(s, session.id, f"e{n}", n) == StepResult(True, n + 1)


@pytest.mark.sqlite_only("SQLite's upgrade path from schema 6")
async def test_answers_stored_before_schema_7_get_their_history_from_the_triggers(db_path, monkeypatch):
    """Migration 7 moves history writing into triggers; answers written by the old code carry on."""
    every_migration = list(migrations.MIGRATIONS)
    monkeypatch.setattr(migrations, "MIGRATIONS", every_migration[:6])
    async with await open_storage(db_path) as s:
        session = await new_session(s)
    with sqlite3.connect(db_path) as conn:  # what the schema-6 code wrote for one answered step
        conn.execute("INSERT INTO events (id, session_id, event_key, event, revision, at) VALUES (1, ?, 'e1', '{}', 1, ?)",
                     (session.id, T0))
        conn.execute("UPDATE sessions SET revision = 1 WHERE id = ?", (session.id,))
        conn.execute("INSERT INTO answers VALUES (?, 'q1', '\"a\"', 'answered', ?)", (session.id, T0))
        conn.execute("INSERT INTO answer_history (session_id, question, old_value, old_status, new_value, new_status,"
                     " event_id, at) VALUES (?, 'q1', NULL, NULL, '\"a\"', 'answered', 1, ?)", (session.id, T0))
    conn.close()
    monkeypatch.setattr(migrations, "MIGRATIONS", every_migration)
    async with await open_storage(db_path) as s:
        await step(s, session.id, "e2", 1, [AnswerChange("q1", '"b"', "answered"), AnswerChange("q2", "1", "answered")],
                   at=T1)
        await step(s, session.id, "e3", 2, [AnswerChange("q1", '"b"', "answered")], at=T2)  # unchanged: no history
        keys = {e["id"]: e["event_key"] for e in await s.events(session.id)}
        history = [(h["question"], h["old_value"], h["new_value"], keys[h["event_id"]], h["at"])
                   for h in await s.answer_history(session.id)]
    assert sorted(history, key=lambda h: (h[0], h[4])) == [("q1", None, '"a"', "e1", T0), ("q1", '"a"', '"b"', "e2", T1),
                                                              ("q2", None, "1", "e2", T1)]
