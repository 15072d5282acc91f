"""One hop per storage call: every public SQLiteStorage method runs as one function on
the storage's worker thread (``storage.sqlite_hops.SQLiteThread``), with no asyncio.Lock. These tests pin down what that must keep:
transactions of concurrent coroutines never interleave, a failing write leaves nothing and
the connection usable, apply_step returns the session after the step, current_session picks
the right session in one call, and the ``synchronous`` setting."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import threading

import pytest

from storage import (
    AnswerChange,
    NotFound,
    OutgoingMessage,
    SQLiteStorage,
    StaleRevision,
    StorageError,
    open_storage,
)

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


async def respondent_with_form(s, external_id: str = "tg:1", form_id: str = "par"):
    await s.save_questionnaire(form_id, "1", f"{form_id}.xlsx", b"form bytes", T0)
    return await s.ensure_respondent(external_id, T0)


async def current(s, respondent_id: int, form_id: str = "par", at: str = T0):
    return await s.current_session(respondent_id, form_id, "1", "telegram", "new", '{"new": true}', at)


async def step(s, session_id, key, revision, changes=(), status="active", outgoing=(), at=T1):
    return await s.apply_step(
        session_id,
        event_key=key,
        event=json.dumps({"key": key}),
        expected_revision=revision,
        status=status,
        state=json.dumps({"rev": revision + 1}),
        changes=list(changes),
        at=at,
        outgoing=list(outgoing),
    )


class Hops:
    """Counts the callables handed to the storage's worker thread (one per hop)."""

    def __init__(self, monkeypatch):
        from storage.sqlite_hops import SQLiteThread
        self.n = 0
        original = SQLiteThread.run

        async def counting(thread, fn, *args):
            self.n += 1
            return await original(thread, fn, *args)

        monkeypatch.setattr(SQLiteThread, "run", counting)


# One hop per call ---------------------------------------------------------------------------


async def test_each_call_is_one_hop(store, monkeypatch):
    respondent = await respondent_with_form(store)
    hops = Hops(monkeypatch)
    session, created = await current(store, respondent.id)
    assert created and hops.n == 2  # look (a read), then create (a write): only the first time
    hops.n = 0
    again, created = await current(store, respondent.id)
    assert again.id == session.id and not created and hops.n == 1
    hops.n = 0
    reply = OutgoingMessage("telegram", "b", "1", "sendMessage", '{"text": "hi"}', dedupe_key="k#0")
    result = await step(store, session.id, "e1", 0,
                        [AnswerChange("q1", "1", "answered"), AnswerChange("q2", "2", "answered")], outgoing=[reply])
    assert result.applied and hops.n == 1
    hops.n = 0
    await store.set_disposition(respondent.id, "started", T1, key="e1:disposition")
    await store.linked_respondent("telegram", "b", "1")
    await store.personal(respondent.id)
    assert hops.n == 3


async def test_calls_waiting_for_the_worker_share_one_hop(store, monkeypatch):
    """Group commit: what arrives while a hop is out goes together in the next one."""
    respondents = [await respondent_with_form(store, f"tg:{n}") for n in range(30)]
    hops = Hops(monkeypatch)
    await asyncio.gather(*(store.set_disposition(r.id, "started", T1, key=f"k{r.id}") for r in respondents),
                         *(store.get_respondent(r.id) for r in respondents))
    assert hops.n <= 3  # the first call's hop, then everything that queued behind it
    for r in respondents:
        assert (await store.get_respondent(r.id)).disposition == "started"


@pytest.mark.sqlite_only("looks through a second sqlite3 connection")
async def test_a_write_is_committed_before_its_caller_hears_of_it(store, db_path):
    """Another connection sees the write as soon as the call returns: it is on disk, not pending."""
    import sqlite3
    respondents = [await respondent_with_form(store, f"tg:{n}") for n in range(10)]

    async def write_then_look(r):
        await store.set_disposition(r.id, "refused", T1, key=f"k{r.id}")
        with sqlite3.connect(db_path) as other:
            return other.execute("SELECT disposition FROM respondents WHERE id = ?", (r.id,)).fetchone()[0]

    assert await asyncio.gather(*(write_then_look(r) for r in respondents)) == ["refused"] * 10


async def test_a_call_cancelled_while_waiting_for_its_hop_is_not_run(store):
    import threading
    respondent = await respondent_with_form(store)
    release = threading.Event()

    def slow(conn):  # holds the worker thread so the next calls must wait
        release.wait(5)
        return "slow done"

    first = asyncio.create_task(store._hops.write(slow))
    await asyncio.sleep(0.05)
    # The hop that waits in the worker's queue behind it: the calls below wait for a later one.
    queued = asyncio.create_task(store.get_respondent(respondent.id))
    await asyncio.sleep(0.05)
    cancelled = asyncio.create_task(store.set_disposition(respondent.id, "refused", T1, key="gone"))
    kept = asyncio.create_task(store.set_disposition(respondent.id, "started", T1, key="kept"))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    release.set()
    assert await first == "slow done"
    assert (await queued).id == respondent.id
    assert await kept is True
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    history = await store.disposition_history(respondent.id)
    assert [h["status"] for h in history] == ["started"]


async def test_close_waits_for_calls_still_waiting(db_path):
    s = await open_storage(db_path)
    respondent = await respondent_with_form(s)
    writes = [asyncio.create_task(s.set_disposition(respondent.id, status, T1, key=status))
              for status in ("contacted", "started", "refused")]
    await asyncio.sleep(0)
    await s.close()
    assert [await w for w in writes] == [True, True, True]
    async with await open_storage(db_path) as again:
        assert (await again.get_respondent(respondent.id)).disposition == "refused"


async def test_no_asyncio_lock_left(store):
    assert not any(isinstance(value, asyncio.Lock) for value in vars(store).values())


# Concurrency on one connection --------------------------------------------------------------


async def test_concurrent_steps_on_one_connection_do_not_interleave(store):
    sessions = []
    for n in range(20):
        respondent = await respondent_with_form(store, f"tg:{n}")
        sessions.append((await current(store, respondent.id))[0])

    async def answer(session, n):
        revision = 0
        for k in range(5):
            reply = OutgoingMessage("telegram", "b", str(n), "sendMessage", json.dumps({"k": k}),
                                    dedupe_key=f"{n}:{k}#0")
            result = await step(store, session.id, f"{n}:{k}", revision,
                                [AnswerChange(f"q{k}", str(k), "answered")], outgoing=[reply])
            assert result.applied and result.revision == revision + 1
            revision = result.revision

    await asyncio.gather(*(answer(session, n) for n, session in enumerate(sessions)))
    for session in sessions:
        assert (await store.get_session(session.id)).revision == 5
        assert len(await store.answers(session.id)) == 5
        assert [e["revision"] for e in await store.events(session.id)] == [1, 2, 3, 4, 5]
    assert (await store.outbox_counts())["pending"] == 100


async def test_failed_write_among_concurrent_ones_rolls_back_only_itself(store):
    respondent = await respondent_with_form(store)
    session, _ = await current(store, respondent.id)
    others = []
    for n in range(10):
        other = await respondent_with_form(store, f"tg:other:{n}")
        others.append((await current(store, other.id))[0])
    bad = [AnswerChange("q1", "1", "answered"), AnswerChange("q2", "1", "bogus status")]
    results = await asyncio.gather(
        step(store, session.id, "bad", 0, bad),
        *(step(store, other.id, "good", 0, [AnswerChange("q1", "1", "answered")]) for other in others),
        return_exceptions=True,
    )
    assert isinstance(results[0], StorageError)
    assert all(r.applied for r in results[1:])
    # Nothing of the failed step is kept, and the connection is not left inside a transaction.
    assert await store.answers(session.id) == {}
    assert await store.events(session.id) == []
    assert (await store.get_session(session.id)).revision == 0
    assert not store._db.in_transaction  # noqa: SLF001
    assert (await step(store, session.id, "bad", 0, [AnswerChange("q1", "1", "answered")])).applied


async def test_domain_errors_roll_back_and_keep_the_connection_usable(store):
    respondent = await respondent_with_form(store)
    session, _ = await current(store, respondent.id)
    await step(store, session.id, "e1", 0)
    with pytest.raises(StaleRevision):
        await step(store, session.id, "e2", 0)
    with pytest.raises(NotFound):
        await step(store, 999, "e2", 0)
    assert not store._db.in_transaction  # noqa: SLF001
    assert (await step(store, session.id, "e2", 1)).revision == 2


async def test_a_step_is_told_apart_from_a_race_whatever_else_conflicts(store):
    respondent = await respondent_with_form(store)
    session, _ = await current(store, respondent.id)
    await step(store, session.id, "e1", 0)
    # The same event again, decided on a stale read: still "already applied", not a race.
    again = await step(store, session.id, "e1", 0)
    assert not again.applied and again.revision == 1
    # An event that is not JSON is a storage error, not a race to retry.
    with pytest.raises(StorageError) as caught:
        await store.apply_step(session.id, event_key="e2", event="not json", expected_revision=1, status="active",
                               state="{}", changes=[], at="2026-08-01T00:00:00+00:00")
    assert not isinstance(caught.value, StaleRevision) and "CHECK" in str(caught.value)
    assert (await store.get_session(session.id)).revision == 1


async def test_cancelled_call_is_all_or_nothing_and_storage_stays_usable(store):
    respondent = await respondent_with_form(store)
    session, _ = await current(store, respondent.id)
    task = asyncio.create_task(step(store, session.id, "e1", 0, [AnswerChange("q1", "1", "answered")]))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await store.get_session(session.id)
    answers = await store.answers(session.id)
    assert (after.revision, list(answers)) in ((0, []), (1, ["q1"]))
    result = await step(store, session.id, "e1", 0, [AnswerChange("q1", "1", "answered")])
    assert result.revision == 1 and result.session.revision == 1


async def test_close_waits_for_calls_in_flight(db_path):
    s = await open_storage(db_path)
    respondent = await respondent_with_form(s)
    pending = [asyncio.create_task(s.ensure_respondent(f"tg:pending:{n}", T0)) for n in range(10)]
    await asyncio.sleep(0)
    await s.close()
    await asyncio.gather(*pending)
    async with await open_storage(db_path) as again:
        assert len(await again.list_respondents()) == 11
        assert (await again.get_respondent(respondent.id)).external_id == "tg:1"


# apply_step returns the session ---------------------------------------------------------------


async def test_apply_step_returns_the_session_after_the_step(store):
    respondent = await respondent_with_form(store)
    session, _ = await current(store, respondent.id)
    result = await step(store, session.id, "e1", 0, status="active", at=T1)
    assert result.session == await store.get_session(session.id)
    assert (result.session.revision, result.session.status, result.session.updated_at) == (1, "active", T1)
    assert json.loads(result.session.state) == {"rev": 1}
    # Re-delivered: nothing written, and the session as it is now.
    await step(store, session.id, "e2", 1, status="completed", at=T2)
    again = await step(store, session.id, "e1", 0, at=T2)
    assert not again.applied
    assert again.session == await store.get_session(session.id)
    assert (again.revision, again.session.status) == (2, "completed")


# current_session ----------------------------------------------------------------------------


async def test_current_session_creates_then_returns_the_open_one(store):
    respondent = await respondent_with_form(store)
    first, created = await current(store, respondent.id)
    assert created and (first.revision, first.status, first.state) == (0, "new", '{"new": true}')
    again, created = await current(store, respondent.id, at=T1)
    assert not created and again == first
    await step(store, first.id, "e1", 0, status="active")
    moved, created = await current(store, respondent.id, at=T2)
    assert not created and (moved.id, moved.revision, moved.status) == (first.id, 1, "active")


@pytest.mark.parametrize("finished", ["completed", "refused"])
async def test_current_session_returns_a_finished_latest_session(store, finished):
    respondent = await respondent_with_form(store)
    first, _ = await current(store, respondent.id)
    await step(store, first.id, "e1", 0, status=finished)
    latest, created = await current(store, respondent.id, at=T2)
    assert not created and (latest.id, latest.status) == (first.id, finished)
    assert len(await store.list_sessions()) == 1


@pytest.mark.sqlite_only("watches the WAL file's size")
async def test_current_session_writes_nothing_when_a_session_exists(store, db_path):
    respondent = await respondent_with_form(store)
    await current(store, respondent.id)
    before = db_path.with_name(db_path.name + "-wal").stat().st_size
    for n in range(20):
        await current(store, respondent.id, at=T1)
    assert db_path.with_name(db_path.name + "-wal").stat().st_size == before


async def test_current_session_needs_known_respondent_and_questionnaire(store):
    respondent = await respondent_with_form(store)
    with pytest.raises(NotFound):
        await store.current_session(respondent.id, "par", "9", "telegram", "new", "{}", T0)
    with pytest.raises(NotFound):
        await current(store, 999)
    assert await store.list_sessions() == []


async def test_concurrent_current_session_creates_one(db_path):
    async with await open_storage(db_path) as a, await open_storage(db_path) as b:
        respondent = await respondent_with_form(a)
        results = await asyncio.gather(*(current(s, respondent.id) for s in (a, b) * 5))
        assert len({r.id for r, _ in results}) == 1
        assert sum(created for _, created in results) == 1
        assert len(await a.list_sessions()) == 1


# synchronous --------------------------------------------------------------------------------


@pytest.mark.sqlite_only("SQLite's PRAGMA synchronous")
@pytest.mark.parametrize(("setting", "pragma"), [("full", 2), ("normal", 1), ("NORMAL", 1)])
async def test_synchronous_setting(db_path, setting, pragma):
    async with await open_storage(db_path, synchronous=setting) as s:
        assert (await s._fetchall("PRAGMA synchronous"))[0][0] == pragma  # noqa: SLF001
        assert (await s._fetchall("PRAGMA journal_mode"))[0][0] == "wal"  # noqa: SLF001
    async with await SQLiteStorage.open(db_path) as s:
        assert (await s._fetchall("PRAGMA synchronous"))[0][0] == 2  # noqa: SLF001 - FULL by default


@pytest.mark.sqlite_only("checks that no file was made")
async def test_unknown_synchronous_setting_is_refused(db_path):
    with pytest.raises(StorageError, match="synchronous"):
        await open_storage(db_path, synchronous="off")
    assert not db_path.exists()


@pytest.mark.sqlite_only("a file that is no SQLite database")
async def test_a_file_that_is_no_database_is_refused_and_leaves_no_thread(db_path):
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db_path.write_bytes(b"this is not an SQLite database, just text" * 100)
    before = {t.ident for t in threading.enumerate()}
    with pytest.raises(StorageError, match="sqlite: file is not a database"):
        await open_storage(db_path)
    assert [t.name for t in threading.enumerate() if t.ident not in before and t.name == "khaosat-sqlite"] == []
    assert db_path.read_bytes().startswith(b"this is not an SQLite database")


# The callers: one update = current_session + apply_step ------------------------------------------


async def test_drive_uses_two_storage_calls_per_update(store, monkeypatch):
    import datetime as dt

    from bot.chat.surveys import Chat, ChatSurveys
    from fieldwork.conversations import Conversations
    from surveys import engine
    from surveys.xlsform import load_questionnaire_bytes

    source = (Path(__file__).parent / "forms" / "tour.md").read_bytes()
    form = load_questionnaire_bytes(source, "tour.md")
    at = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    conversations = Conversations(store)
    await conversations.register(form, source, "tour.md", at)
    surveys = ChatSurveys(store, conversations, [form])
    respondent = await store.add_respondent("S-1", form_id=form.form_id, at=at.isoformat())
    chat = Chat("telegram", "b", "1", "1")

    calls: list[str] = []
    for name in ("current_session", "apply_step", "get_session", "latest_session", "open_session",
                 "set_disposition"):
        method = getattr(store, name)

        async def counted(*args, _name=name, _method=method, **kwargs):
            calls.append(_name)
            return await _method(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)

    handled = await surveys.drive(chat, respondent, engine.Start(at=at), "u1", lambda step: [])
    assert handled.applied and handled.session.revision == 1
    assert calls[:2] == ["current_session", "apply_step"] and "get_session" not in calls
    calls.clear()
    handled = await surveys.drive(chat, respondent, engine.Reply("40", at=at), "u2", lambda step: [])
    assert calls == ["current_session", "apply_step"]
    assert handled.applied and handled.session == await store.get_session(handled.session.id)
    calls.clear()
    again = await surveys.drive(chat, respondent, engine.Reply("40", at=at), "u2", lambda step: [])
    assert not again.applied and again.session == handled.session
    assert calls == ["current_session", "apply_step", "set_disposition"]


async def test_handle_rereads_the_session_after_a_stale_revision(store):
    import datetime as dt

    from fieldwork.conversations import Conversations
    from surveys import engine
    from surveys.xlsform import load_questionnaire_bytes

    source = (Path(__file__).parent / "forms" / "tour.md").read_bytes()
    form = load_questionnaire_bytes(source, "tour.md")
    at = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    conversations = Conversations(store)
    await conversations.register(form, source, "tour.md", at)
    record, _ = await conversations.open("tg:1", form, "telegram", None, at)
    await conversations.handle(record.id, engine.Start(at=at), "u1")
    # `record` is now one revision behind: handle decides again on the stored state.
    handled = await conversations.handle(record, engine.Reply("40", at=at), "u2")
    assert handled.applied and handled.session.revision == 2
    assert [e["event_key"] for e in await store.events(record.id)] == ["u1", "u2"]


# Calls of one kind in one group run as one batch ---------------------------------------------


async def _in_one_group(store, *calls):
    """Run the coroutines while the worker thread is held, so they all queue for the same hop."""
    import threading
    release = threading.Event()

    def hold(conn):
        release.wait(5)

    held = asyncio.create_task(store._hops.write(hold))
    await asyncio.sleep(0.05)
    tasks = [asyncio.create_task(call) for call in calls]
    await asyncio.sleep(0.05)
    release.set()
    await held
    return await asyncio.gather(*tasks, return_exceptions=True)


async def _sessions(store, n):
    sessions = []
    for k in range(n):
        respondent = await respondent_with_form(store, f"tg:{k}")
        sessions.append((await current(store, respondent.id))[0])
    return sessions


def _replies(n, chat):
    return [OutgoingMessage("telegram", "b", chat, "sendMessage", json.dumps({"n": n, "part": part}))
            for part in range(2)]


async def test_steps_of_one_group_are_decided_as_they_are_one_by_one(store, monkeypatch):
    """Eight plain steps, a re-delivered event, a stale revision, a missing session and a second
    step of one session, all in one hop: the batch (the only step write) decides every one, so
    every caller hears what it would have heard alone."""
    import storage.sessions as sessions_store
    import storage.sqlite_hops as hops
    sessions = await _sessions(store, 12)
    for session in sessions[8:11]:
        assert (await step(store, session.id, f"warm:{session.id}", 0, [AnswerChange("q0", "1", "answered")])).applied
    batches = []
    real = sessions_store._apply_steps

    def counted(conn, calls):
        results = real(conn, calls)
        batches.append([r is not hops.ALONE for r in results])
        return results

    monkeypatch.setitem(hops._BATCHES, sessions_store._apply_step, counted)
    plain = [step(store, s.id, f"e:{s.id}", 0, [AnswerChange("q1", str(k), "answered"),
                                              AnswerChange("q2", '"x"', "answered")], outgoing=_replies(k, str(k)))
             for k, s in enumerate(sessions[:8])]
    results = await _in_one_group(
        store, *plain,
        step(store, sessions[8].id, f"warm:{sessions[8].id}", 0),           # re-delivered
        step(store, sessions[9].id, "late", 0),                             # stale revision
        step(store, 999, "nobody", 0),                                      # no such session
        step(store, sessions[11].id, "first", 0, [AnswerChange("q1", "7", "answered")]),
        step(store, sessions[11].id, "second", 0),                          # same revision again
    )
    assert batches == [[True] * 13]  # one batch decided them all: nothing was run again alone
    for k, (result, session) in enumerate(zip(results[:8], sessions)):
        assert result.applied and result.revision == 1 and result.session == await store.get_session(session.id)
        assert {q: a.value for q, a in (await store.answers(session.id)).items()} == {"q1": str(k), "q2": '"x"'}
        assert [e["event_key"] for e in await store.events(session.id)] == [f"e:{session.id}"]
    assert not results[8].applied and results[8].revision == 1
    assert isinstance(results[9], StaleRevision) and isinstance(results[10], NotFound)
    assert results[11].applied and isinstance(results[12], StaleRevision)
    # History rows point at their own step's event; each step's replies keep their order.
    for session in sessions[:8]:
        [event] = await store.events(session.id)
        assert [(h["question"], h["event_id"]) for h in await store.answer_history(session.id)] == \
            [("q1", event["id"]), ("q2", event["id"])]
    due = await store.due_messages("telegram", "b", "2099-01-01T00:00:00+00:00", 100)
    for k in range(8):
        assert [json.loads(m.payload)["part"] for m in due if m.chat_id == str(k)] == [0, 1]
    assert len(due) == 16
    assert not store._db.in_transaction  # noqa: SLF001


async def test_a_batch_that_breaks_a_check_leaves_the_others_stored(store):
    sessions = await _sessions(store, 5)
    bad = [AnswerChange("q1", "not json", "answered")]
    results = await _in_one_group(
        store, *(step(store, s.id, f"e{s.id}", 0, bad if k == 2 else [AnswerChange("q1", "1", "answered")])
                 for k, s in enumerate(sessions)))
    assert isinstance(results[2], StorageError) and "CHECK" in str(results[2])
    assert all(r.applied for k, r in enumerate(results) if k != 2)
    assert await store.answers(sessions[2].id) == {} and (await store.get_session(sessions[2].id)).revision == 0
    assert [(await store.get_session(s.id)).revision for s in sessions] == [1, 1, 0, 1, 1]


async def test_linked_sessions_of_one_group_are_read_together(store, monkeypatch):
    import storage.sessions as sessions_store
    import storage.sqlite_hops as hops
    sessions = await _sessions(store, 4)  # respondents 1-4 answer "par"
    for k, session in enumerate(sessions):
        await store.link_chat("telegram", "b", str(k), session.respondent_id, T1)
    loose = await store.ensure_respondent("tg:no-form", T0)  # no form of their own: the default applies
    await store.link_chat("telegram", "b", "loose", loose.id, T1)
    alone = [await store.linked_session("telegram", "b", chat, "par") for chat in ("0", "3", "loose", "nobody")]
    calls = []
    real = sessions_store._linked_sessions
    monkeypatch.setitem(hops._BATCHES, sessions_store._linked_session,
                        lambda conn, batch: calls.append(len(batch)) or real(conn, batch))
    together = await _in_one_group(store, *(store.linked_session("telegram", "b", chat, "par")
                                            for chat in ("0", "3", "loose", "nobody")))
    assert calls == [4] and together == alone
    assert together[0][1] == sessions[0] and together[2][0] == loose and together[2][1] is None
    assert together[3] == (None, None)


async def test_handle_reuses_the_state_it_stored_and_decodes_anyone_elses(store, monkeypatch):
    """The state a step leaves is used for the next step only while the stored text is still
    the one it wrote; a step stored by another process (another Conversations) is decoded."""
    import datetime as dt

    from fieldwork.conversations import Conversations
    from surveys import codec, engine
    from surveys.xlsform import load_questionnaire_bytes

    source = (Path(__file__).parent / "forms" / "tour.md").read_bytes()
    form = load_questionnaire_bytes(source, "tour.md")
    at = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    here, elsewhere = Conversations(store), Conversations(store)
    await here.register(form, source, "tour.md", at)
    record, _ = await here.open("tg:1", form, "telegram", None, at)
    decoded = []
    real = codec.decode_state
    monkeypatch.setattr(codec, "decode_state", lambda text: decoded.append(text) or real(text))

    first = await here.handle(record.id, engine.Start(at=at), "u1")
    assert len(decoded) == 1  # the new session's state, read from storage
    consent = first.step.say[-1]
    second = await here.handle(first.session, engine.Choose("yes", consent.seq, at), "u2")
    assert second.applied and len(decoded) == 1  # its own last state: nothing decoded
    assert codec.decode_state(second.session.state) == second.step.state
    decoded.clear()
    # Another process answers the next question: this process must see that, not its own state.
    prompt = second.step.say[-1]
    moved = await elsewhere.handle(second.session.id, engine.Reply("40", at=at, seq=prompt.seq), "u3")
    assert moved.applied and len(decoded) == 1
    decoded.clear()
    third = await here.handle(await store.get_session(record.id), engine.Back(at, moved.step.say[-1].seq), "u4")
    assert third.applied and len(decoded) == 1 and decoded[0] == moved.session.state


def test_a_kept_state_is_what_decoding_its_text_gives():
    """Same answers in the same order, times with the same offsets, same kinds: a step cannot
    tell a kept state from a decoded one (the engine walks answers in order for its changes)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from fieldwork.conversations import DecodedStates
    from surveys import codec, engine
    from surveys.expressions import NOT_APPLICABLE

    hanoi = ZoneInfo("Asia/Ho_Chi_Minh")
    at = dt.datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=hanoi)
    state = engine.SessionState(
        "f", "1", "vi", engine.Status.COMPLETED, current="z", seq=4, draft=("b",), furthest=3, started_at=at,
        completed_at=at.astimezone(dt.timezone.utc),
        answers={"z": "3", "a": 6, "when": at, "day": dt.date(2024, 5, 1), "many": ("x", "y"),
                 "ratio": 0.25, "minus": -0.0, "gone": NOT_APPLICABLE, "empty": None, "big": 2 ** 70})
    text = codec.encode_state(state)
    states = DecodedStates()
    states.keep(7, text, state)
    kept, decoded = states.decode(7, text), codec.decode_state(text)
    assert kept is not state and kept == decoded
    assert list(kept.answers) == list(decoded.answers)
    for name, value in decoded.answers.items():
        assert type(kept.answers[name]) is type(value) and repr(kept.answers[name]) == repr(value), name
    assert (repr(kept.started_at), repr(kept.completed_at)) == (repr(decoded.started_at), repr(decoded.completed_at))


def test_decoded_states_keep_only_what_decodes_back_and_only_the_newest():
    import datetime as dt

    from fieldwork.conversations import DecodedStates
    from surveys import codec, engine

    def state(**answers):
        return engine.SessionState("f", "1", "vi", engine.Status.ACTIVE, answers=answers,
                                   started_at=dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc))

    states = DecodedStates(size=2)
    plain = state(q="a", n=3, when=dt.date(2024, 5, 1), many=("x", "y"))
    odd, dates = state(ratio=float("nan")), state(picked=(dt.date(2024, 5, 1),))
    for session_id, kept in ((1, plain), (2, odd), (5, dates)):
        states.keep(session_id, codec.encode_state(kept), kept)
    assert states.decode(1, codec.encode_state(plain)) == plain
    again = states.decode(2, codec.encode_state(odd))  # NaN is stored as empty: decoded, not kept
    assert again.answers["ratio"] is None
    assert states.decode(5, codec.encode_state(dates)).answers["picked"] == ("2024-05-01",)  # decoded
    other = state(q="b")
    assert states.decode(1, codec.encode_state(other)) == other  # a different text is decoded
    kept_before = states.decode(1, codec.encode_state(plain))
    for session_id in (3, 4):
        states.keep(session_id, codec.encode_state(other), other)
    assert states.decode(1, codec.encode_state(plain)) is not kept_before  # the oldest went first


async def test_a_body_raising_what_a_future_cannot_carry_leaves_no_caller_waiting(store):
    import threading
    release = threading.Event()

    def stop(conn):
        raise StopIteration

    held = asyncio.create_task(store._hops.write(lambda conn: release.wait(5)))
    await asyncio.sleep(0.05)
    failing = asyncio.create_task(store._hops.write(stop))
    other = asyncio.create_task(store._hops.write(lambda conn: "committed"))
    await asyncio.sleep(0.05)
    release.set()
    await held
    assert await asyncio.wait_for(other, 2) == "committed"
    with pytest.raises(StorageError, match="StopIteration"):
        await asyncio.wait_for(failing, 2)
