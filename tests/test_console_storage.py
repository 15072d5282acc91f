"""The console's storage modules on real SQLite and a real PostgreSQL server (the ``stores``
tests run on both): accounts and web sessions, login attempts, the audit log, jobs, and the
fieldwork views (non-respondents and why, completes per day)."""

from __future__ import annotations


import pytest

from storage import NotFound, StorageError, open_storage
from storage.accounts import AccountExists
from storage.console_db import ConsoleStores
from tests.browser.conftest import NOW, answer_in_chat, build_fieldwork

AT = "2026-08-21T05:00:00+00:00"


@pytest.fixture(params=["sqlite", "postgresql"])
async def stores(request, tmp_path):
    location = tmp_path / "k.sqlite" if request.param == "sqlite" else request.getfixturevalue("postgresql_url")
    async with await ConsoleStores.open(location) as opened:
        yield opened


async def test_accounts_are_unique_and_keep_their_scope(stores):
    account = await stores.accounts.add_account("officer", role="coordinator", password_hash="h", at=AT,
                                                surveys=("s1",), units=("xa-a", "xa-b"), personal=True)
    assert (account.role, account.surveys, account.units, account.personal) == ("coordinator", ("s1",),
                                                                               ("xa-a", "xa-b"), True)
    with pytest.raises(AccountExists):
        await stores.accounts.add_account("officer", role="viewer", password_hash="h", at=AT)
    with pytest.raises(StorageError):
        await stores.accounts.add_account("x", role="superuser", password_hash="h", at=AT)
    changed = await stores.accounts.update_account(account.id, at=AT, units=(), role="analyst")
    assert (changed.role, changed.units, changed.surveys) == ("analyst", (), ("s1",))
    assert [a.username for a in await stores.accounts.list_accounts()] == ["officer"]
    with pytest.raises(NotFound):
        await stores.accounts.update_account(999, at=AT, role="viewer")
    assert await stores.accounts.account_by_username("nobody") is None


async def test_sessions_expire_and_end_with_a_new_password_or_a_disabled_account(stores):
    account = await stores.accounts.add_account("a", role="admin", password_hash="h", at=AT)
    await stores.accounts.create_session("t1", account.id, "c1", at=AT, expires_at="2026-08-21T06:00:00+00:00",
                                         address="127.0.0.1")
    session = await stores.accounts.web_session("t1", AT)
    assert session.account.username == "a" and session.csrf == "c1"
    assert await stores.accounts.web_session("t1", "2026-08-21T13:00:01+07:00") is None  # 06:00:01 UTC: expired
    await stores.accounts.set_password(account.id, "h2", AT)
    assert await stores.accounts.web_session("t1", AT) is None
    await stores.accounts.create_session("t2", account.id, "c2", at=AT, expires_at="2026-08-22T00:00:00+00:00",
                                         address=None)
    await stores.accounts.update_account(account.id, at=AT, disabled=True)
    assert await stores.accounts.web_session("t2", AT) is None
    await stores.accounts.update_account(account.id, at=AT, disabled=False)
    assert await stores.accounts.web_session("t2", AT) is None  # stays signed out
    await stores.accounts.create_session("t3", account.id, "c3", at=AT, expires_at="2026-08-22T00:00:00+00:00",
                                         address=None)
    await stores.accounts.delete_session("t3")
    assert await stores.accounts.web_session("t3", AT) is None


async def test_failed_logins_are_counted_per_account_and_per_address_within_the_window(stores):
    for minute in (0, 10, 20):
        await stores.accounts.record_login_attempt("a", "10.0.0.1", False, f"2026-08-21T05:{minute:02d}:00+00:00")
    await stores.accounts.record_login_attempt("b", "10.0.0.1", False, "2026-08-21T05:21:00+00:00")
    await stores.accounts.record_login_attempt("a", "10.0.0.2", True, "2026-08-21T05:22:00+00:00")
    assert await stores.accounts.failed_logins_since("a", "10.0.0.1", "2026-08-21T05:05:00+00:00") == (2, 3)
    assert await stores.accounts.failed_logins_since("a", "10.0.0.2", "2026-08-21T12:05:00+07:00") == (2, 0)


async def test_the_audit_log_pages_newest_first(stores):
    for i in range(5):
        await stores.audit.record("login" if i % 2 else "download", at=AT, username=f"u{i}", survey_id="s", detail=str(i))
    entries = await stores.audit.entries(limit=2)
    assert [e.detail for e in entries] == ["4", "3"]
    assert [e.detail for e in await stores.audit.entries(limit=2, before_id=entries[-1].id)] == ["2", "1"]
    assert [e.detail for e in await stores.audit.entries(limit=0, action="login")] == ["3", "1"]


async def test_a_job_goes_queued_running_done_or_failed_once(stores):
    job = await stores.jobs.create_job("j1", "export", at=AT, survey_id="s", account_id=1, params={"format": "sav"})
    assert (job.status, job.progress, job.params) == ("queued", 0.0, {"format": "sav"})
    assert await stores.jobs.create_job("j1", "export", at=AT) == job  # twice is once
    assert await stores.jobs.start_job("j1", AT) and not await stores.jobs.start_job("j1", AT)
    await stores.jobs.set_progress("j1", 1.7, "rows 100/100")
    assert (await stores.jobs.get_job("j1")).progress == 1.0
    await stores.jobs.finish_job("j1", AT, result_path="/x.sav", message="done")
    await stores.jobs.fail_job("j1", AT, "too late")  # a finished job stays finished
    done = await stores.jobs.get_job("j1")
    assert (done.status, done.result_path, done.message) == ("done", "/x.sav", "done")
    await stores.jobs.create_job("j2", "report", at=AT)
    assert await stores.jobs.fail_unfinished(AT, "the server stopped") == 1
    assert (await stores.jobs.get_job("j2")).status == "failed"
    assert [j.id for j in await stores.jobs.list_jobs(survey_id="s")] == ["j1"]
    with pytest.raises(NotFound):
        await stores.jobs.get_job("nope")
    with pytest.raises(stores.accounts.tx.integrity_errors):  # the schema refuses a status it does not know
        await stores.db.execute("UPDATE console_jobs SET status = 'lost'")


async def test_nonrespondents_say_why_and_completes_are_counted_per_local_day(tmp_path, database):
    fieldwork = await build_fieldwork(tmp_path, database)
    a = fieldwork.members["citizen/xa-a"]
    async with await open_storage(fieldwork.db) as storage:
        await storage.link_chat("telegram", "bot", "501", a[8], AT)  # invited, then opened the chat
        assert await answer_in_chat(storage, [a[12]], lambda: NOW) == ["completed"]
        assert await answer_in_chat(storage, [a[13]], lambda: NOW, stop_after=4) == ["paused"]
    async with await ConsoleStores.open(fieldwork.db) as stores:
        people = {p.respondent_id: p for p in await stores.fieldwork.nonrespondents("test-2026", personal=True)}
        days = await stores.fieldwork.completes_by_day("test-2026", 7 * 60)
    assert a[12] not in people and all(rid not in people for rid in a[:4])  # completed
    assert [people[rid].reason for rid in (a[4], a[6], a[8], a[9], a[11], a[13], a[20])] == [
        "opened", "refused", "opened", "never_opened", "unreachable", "stopped", "not_invited"]
    assert people[a[13]].last_question == "co_quan" and people[a[13]].form_id == "sipas_citizen_example"
    assert people[a[9]].name.startswith("Người xa-a") and people[a[9]].unit == "xa-a"
    assert sorted(days) == [("citizen/xa-a", "2026-08-15", 4), ("citizen/xa-a", "2026-08-21", 1),
                            ("citizen/xa-b", "2026-08-20", 2)]
    async with await ConsoleStores.open(fieldwork.db) as stores:
        anonymous = await stores.fieldwork.nonrespondents("test-2026")
    assert all(p.name is None and p.phone is None for p in anonymous)
