"""A chat turn that fails inside khaosat (here: the database refuses the step's write, for real,
by a trigger) gets a polite line in the person's language, never a traceback, stores nothing for
that update, and the next message after the fault is gone works. On Telegram, Zalo and the web,
each through ``khaosat run`` against its emulator or over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from bot.chat.failures import tried_twice_if_transient
from storage.errors import StorageError, is_transient
from storage.sqlite_hops import _driver_error
from surveys.messages import say
from surveys.xlsform import load_questionnaire
from tests.test_telegram_bot import SIPAS, harness as telegram_harness
from tests.test_web_channel import browser, person
from tests.test_zalo_bot import harness as zalo_harness, has
from tests.web_helpers import web_harness

SORRY_VI = say("system_busy", "vi")


@contextlib.contextmanager
def refused_events(database: Path, session_id: int):
    """While inside: the database refuses every event of ``session_id`` (so its steps), as a
    broken disk or a bug would, through its own connection; gone again on leaving."""
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        conn.execute(f"CREATE TRIGGER test_fault BEFORE INSERT ON events WHEN NEW.session_id = {int(session_id)}"
                     " BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
        conn.commit()
        try:
            yield
        finally:
            conn.execute("DROP TRIGGER test_fault")
            conn.commit()


async def failures_logged(caplog, count: int) -> list[logging.LogRecord]:
    """The records of failed turns, once ``count`` of them were logged."""
    for _ in range(500):
        records = [r for r in caplog.records if r.name == "bot.chat.failures" and r.levelno == logging.ERROR
                   and "failed; the person is asked" in r.getMessage()]
        if len(records) >= count:
            return records
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} failed turns were not logged")


async def test_telegram_a_refused_step_gets_one_polite_reply_and_stores_nothing(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    form = load_questionnaire(SIPAS)
    async with telegram_harness(tmp_path) as h:
        respondent_id, user = await h.invited_user("F-1", form.form_id, 7001)
        consent = await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        await h.settle()
        before = await h.storage.latest_session(respondent_id, form.form_id)
        events = len(await h.storage.events(before.id))
        with refused_events(tmp_path / "survey.sqlite", before.id):
            await user.press("Đồng ý", consent)
            sorry = await user.wait_for(lambda m: SORRY_VI in (m.text or ""))
            assert sorry.text == SORRY_VI
            await user.press("Đồng ý", consent)  # again within the minute: logged, not answered again
            [first, second] = await failures_logged(caplog, 2)
            await h.settle()
        assert first.exc_info is not None and "injected fault" in caplog.text  # the traceback is in the log
        assert "telegram/test: chat 7001" in first.getMessage()
        assert [m.text for m in user.received].count(SORRY_VI) == 1
        assert not any("Traceback" in (m.text or "") or "injected" in (m.text or "") for m in user.received)
        after = await h.storage.latest_session(respondent_id, form.form_id)
        assert (after.revision, after.status) == (before.revision, before.status)
        assert len(await h.storage.events(before.id)) == events
        assert await h.storage.answers(before.id) == {}
        # The fault gone, the same button goes on.
        await user.press("Đồng ý", consent)
        await user.wait_for(lambda m: "Tiến độ ░░░░░░░░░░ 0%" in (m.text or ""))
        assert (await h.storage.latest_session(respondent_id, form.form_id)).revision == before.revision + 1


async def test_zalo_a_refused_step_gets_a_polite_reply_and_the_next_message_works(tmp_path):
    async with zalo_harness(tmp_path, forms=(SIPAS,)) as h:
        form = load_questionnaire(SIPAS)
        respondent_id, typed, _ = await h.invite("F-2", form.form_id)
        user = h.zalo.user()
        await user.send_text(typed)
        await user.wait_for(has("đồng ý tham gia"))
        await h.settle()
        before = await h.storage.latest_session(respondent_id, form.form_id)
        with refused_events(tmp_path / "survey.sqlite", before.id):
            await user.send_text("1")
            await user.wait_for(has(SORRY_VI))
            await h.settle()
        assert not any("Traceback" in m.text for m in user.received)
        assert (await h.storage.latest_session(respondent_id, form.form_id)).revision == before.revision
        assert await h.storage.answers(before.id) == {}
        await user.send_text("1")
        await user.wait_for(has("Tiến độ"))


async def test_web_a_refused_step_gets_a_polite_page_and_the_next_post_works(tmp_path):
    async with web_harness(tmp_path) as h:
        rid, _, link = await h.invite("F-3", "tour")
        async with browser() as session:
            p = await person(session, h, link)
            await p.get(f"/s/{link}")
            fields = dict(p.page.form("ask").hidden, action="answer", choice="yes")
            before = await h.storage.latest_session(rid, "tour")
            with refused_events(tmp_path / "survey.sqlite", before.id):
                page = await p.post(fields)
            assert page.status == 200 and SORRY_VI in page.text
            assert "Traceback" not in page.text and "injected" not in page.text
            assert (await h.storage.latest_session(rid, "tour")).status == "consent"
            page = await p.post(dict(p.page.form("ask").hidden, action="answer", choice="yes"))
            assert page.status == 200 and "bao nhiêu tuổi" in page.text


# -- which failures are tried again ------------------------------------------------------------------


def locked_error(tmp_path: Path) -> StorageError:
    """The error storage raises for a database another connection holds the write lock of."""
    database = tmp_path / "locked.sqlite"
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as holder, \
            contextlib.closing(sqlite3.connect(database, timeout=0, isolation_level=None)) as other:
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN IMMEDIATE")
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            wrapped = _driver_error(error)
            assert isinstance(wrapped, StorageError)
            return wrapped
        finally:
            holder.execute("ROLLBACK")
    raise AssertionError("the database was not locked")


def refused_error(tmp_path: Path) -> StorageError:
    with contextlib.closing(sqlite3.connect(tmp_path / "refused.sqlite")) as conn:
        conn.execute("CREATE TABLE t (x CHECK (x > 0))")
        try:
            conn.execute("INSERT INTO t VALUES (0)")
        except sqlite3.Error as error:
            return _driver_error(error)
    raise AssertionError("the row was taken")


def test_a_locked_database_is_transient_a_refused_write_is_not(tmp_path):
    assert is_transient(locked_error(tmp_path))
    assert not is_transient(refused_error(tmp_path))
    assert not is_transient(ValueError("a bug"))


class _Turn:
    class chat:
        channel, bot, chat_id = "telegram", "test", "1"
    key = "telegram:test:1"
    renderer = None  # a messenger's: it keeps nothing to forget


async def test_a_transient_failure_is_tried_once_more_and_no_more(tmp_path):
    locked, refused = locked_error(tmp_path), refused_error(tmp_path)
    tries = []

    async def once_locked():
        tries.append(1)
        if len(tries) == 1:
            raise locked
        return "done"
    assert await tried_twice_if_transient(_Turn, once_locked) == "done" and len(tries) == 2

    async def always(error):
        tries.append(1)
        raise error
    tries.clear()
    with pytest.raises(StorageError):
        await tried_twice_if_transient(_Turn, lambda: always(locked))
    assert len(tries) == 2
    tries.clear()
    with pytest.raises(StorageError):
        await tried_twice_if_transient(_Turn, lambda: always(refused))
    assert len(tries) == 1  # a refused write would be refused again: answered at once


async def test_zalo_webhook_answers_200_to_a_refused_step_and_the_person_hears_why(tmp_path):
    from tests.web_helpers import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/zalo/zl"
    async with zalo_harness(tmp_path, forms=(SIPAS,), mode="webhook", webhook_url=url,
                            webhook_listen=f"127.0.0.1:{port}", webhook_secret="zalo-hook-secret") as h:
        form = load_questionnaire(SIPAS)
        respondent_id, typed, _ = await h.invite("F-4", form.form_id)
        user = h.zalo.user()
        await user.send_text(typed)
        await user.wait_for(has("đồng ý tham gia"))
        await h.settle()
        before = await h.storage.latest_session(respondent_id, form.form_id)
        update = {"ok": True, "result": {"event_name": "message.text.received", "message": {
            "message_id": "hook-1", "from": user.as_from, "chat": user.as_chat, "date": 0, "text": "1"}}}
        with refused_events(tmp_path / "survey.sqlite", before.id):
            async with aiohttp.ClientSession() as client:
                async with client.post(url, json=update,
                                       headers={"X-Bot-Api-Secret-Token": "zalo-hook-secret"}) as response:
                    assert response.status == 200
            await user.wait_for(has(SORRY_VI))
        assert (await h.storage.latest_session(respondent_id, form.form_id)).revision == before.revision


async def test_web_a_database_failing_outside_a_turn_answers_a_polite_503(tmp_path):
    async with web_harness(tmp_path) as h:
        rid, _, link = await h.invite("F-5", "tour")
        async with browser() as session:
            p = await person(session, h, link)
            await p.get(f"/s/{link}")
            with contextlib.closing(sqlite3.connect(tmp_path / "survey.sqlite", timeout=30)) as conn:
                conn.execute("ALTER TABLE sessions RENAME TO sessions_away")  # every read of a session fails
                conn.commit()
                try:
                    page = await p.get("/s/")
                finally:
                    conn.execute("ALTER TABLE sessions_away RENAME TO sessions")
                    conn.commit()
            assert page.status == 503 and page.text == SORRY_VI
            page = await p.get("/s/")
            assert page.status == 200 and "đồng ý tham gia" in page.text
