"""The proof of consent (Law 91/2025/QH15, Decree 356/2025/NĐ-CP) is written in the transaction of
the step that accepts the consent screen, through `khaosat run` against the Telegram emulator on
both databases: the exact text shown is recorded once, a re-delivered update records nothing
more, and a consent that cannot be stored (a fault put into the test's own database) leaves the
person on the consent screen with nothing half-written, until the platform delivers the update
again."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from storage import ConsentRecord, StaleRevision, StepResult, Storage, StorageError, open_storage
from surveys.privacy import notice_of
from surveys.xlsform import load_questionnaire_bytes
from tests.test_chat_scenarios import TOUR, arrive, emulators, has, running
from tests.test_storage_channels import T1, T2, new_session

#: The fault: every insert into ``consents`` fails, as a full disk or a broken constraint would.
_SQLITE_FAULT = "CREATE TRIGGER consent_fault BEFORE INSERT ON consents BEGIN SELECT RAISE(ABORT, 'consent fault'); END"
_POSTGRES_FAULT = (
    "CREATE FUNCTION consent_fault() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN RAISE EXCEPTION 'consent fault'; END $$;"
    " CREATE TRIGGER consent_fault BEFORE INSERT ON consents FOR EACH ROW EXECUTE FUNCTION consent_fault()")
_POSTGRES_REPAIR = "DROP TRIGGER consent_fault ON consents; DROP FUNCTION consent_fault()"


async def _in_database(database: Path | str, sqlite_sql: str, postgres_sql: str) -> None:
    """Change the test's database beside the running bot, as an administrator would."""
    if isinstance(database, str):
        connection = await asyncpg.connect(database)
        try:
            await connection.execute(postgres_sql)
        finally:
            await connection.close()
    else:
        with sqlite3.connect(database) as connection:
            connection.execute(sqlite_sql)
        connection.close()


async def _session(storage: Storage, respondent_id: int):
    session = await storage.latest_session(respondent_id, "tour")
    return session, [event["event_key"] for event in await storage.events(session.id)]


def _shown(channel: str):
    # No survey project in these runs: the default consent text, which names the form.
    form = load_questionnaire_bytes(TOUR.read_bytes(), TOUR.name)
    return notice_of(None, form.title).consent("vi", channel)


async def test_the_consent_accepted_in_the_chat_is_recorded_with_its_step_once(tmp_path, database):
    async with emulators(tmp_path, database) as bots, running(bots) as storage:
        respondent_id, user = await arrive(bots, storage, "telegram", "C-1", 8801)
        screen = user.received[-1]
        accepting = await user.send_text("1")
        await user.wait_for(has("bao nhiêu tuổi"))
        (consent,) = await storage.consents_of(respondent_id)
        shown = _shown("telegram")
        assert (consent.version, consent.sha256, consent.language, consent.channel, consent.text) == \
            (shown.version, shown.sha256, "vi", "telegram", shown.text)
        assert shown.text.split("\n")[0] in screen.text  # what is stored is what was on screen
        session, events = await _session(storage, respondent_id)
        assert session.status == "active" and f"tg:tg:{accepting}" in events
        # Telegram delivers at least once: the same update again is a duplicate step, and its
        # consent is not recorded a second time.
        await bots.telegram.redeliver(accepting)
        await user.send_text("45")  # handled after the re-delivered update (one chat, in order)
        await user.wait_for(has("Giới tính"))
        assert await storage.consents_of(respondent_id) == [consent]
        assert (await _session(storage, respondent_id))[1].count(f"tg:tg:{accepting}") == 1


async def test_a_consent_that_cannot_be_stored_leaves_the_step_unwritten_until_redelivered(tmp_path, database):
    async with emulators(tmp_path, database) as bots, running(bots) as storage:
        respondent_id, user = await arrive(bots, storage, "telegram", "C-2", 8802)
        await _in_database(database, _SQLITE_FAULT, _POSTGRES_FAULT)
        accepting = await user.send_text("1")
        # The next message of the chat is handled after the failed one: the person is still on
        # the consent screen, so an unclear reply there is asked to choose.
        await user.send_text("để tôi xem")
        await user.wait_for(has("Xin chọn “Đồng ý” để bắt đầu"))
        session, events = await _session(storage, respondent_id)
        assert session.status == "consent" and f"tg:tg:{accepting}" not in events
        assert await storage.consents_of(respondent_id) == []
        assert (await storage.get_respondent(respondent_id)).disposition == "contacted"
        # The database is mended and the platform delivers the update again: step and consent both.
        await _in_database(database, "DROP TRIGGER consent_fault", _POSTGRES_REPAIR)
        await bots.telegram.redeliver(accepting)
        await user.wait_for(has("bao nhiêu tuổi"))
        session, events = await _session(storage, respondent_id)
        (consent,) = await storage.consents_of(respondent_id)
        assert session.status == "active" and f"tg:tg:{accepting}" in events
        assert consent.text == _shown("telegram").text and (await storage.get_respondent(respondent_id)).disposition \
            == "started"


# -- the step write itself -------------------------------------------------------------------------


def _consent(respondent_id: int, key: str, text: str = "Quý vị có đồng ý tham gia không?") -> ConsentRecord:
    return ConsentRecord(respondent_id, version="thu-1", sha256=f"sha-{text}", language="vi", channel="telegram",
                         text=text, at=T1, key=key)


async def _accept(storage: Storage, session, key: str, consents, revision: int = 0, at: str = T1) -> StepResult:
    return await storage.apply_step(session.id, event_key=key, event="{}", expected_revision=revision,
                                    status="active", state='{"accepted": 1}', changes=[], at=at, consents=consents)


async def test_a_step_stores_its_consent_and_a_redelivered_or_stale_step_stores_none(database):
    async with await open_storage(database) as storage:
        session = await new_session(storage)
        who = session.respondent_id
        assert await _accept(storage, session, "e1", [_consent(who, "consent:e1")]) == StepResult(True, 1)
        (consent,) = await storage.consents_of(who)
        assert (consent.version, consent.channel, consent.text) == \
            ("thu-1", "telegram", "Quý vị có đồng ý tham gia không?")
        # The same update again (another text on hand, even): the step is a duplicate, nothing is added.
        again = await _accept(storage, session, "e1", [_consent(who, "consent:e1", "khác")], at=T2)
        assert again == StepResult(False, 1)
        with pytest.raises(StaleRevision):
            await _accept(storage, session, "e2", [_consent(who, "consent:e2")], at=T2)
        assert await storage.consents_of(who) == [consent]


async def test_a_consent_that_fails_fails_its_step_alone_in_a_group_of_steps(database):
    async with await open_storage(database) as storage:
        sessions = [await new_session(storage, f"tg:{n}") for n in range(6)]
        # Sessions 0-2 accept a consent, session 1's for a person who does not exist (the
        # foreign key refuses it); 3-5 carry none. Sent together, as answers arriving at once are.
        consents = {0: [_consent(sessions[0].respondent_id, "consent:a")], 1: [_consent(987654, "consent:b")],
                    2: [_consent(sessions[2].respondent_id, "consent:c")]}
        results = await asyncio.gather(*(_accept(storage, s, f"e{n}", consents.get(n, ()))
                                         for n, s in enumerate(sessions)), return_exceptions=True)
        assert isinstance(results[1], StorageError)
        assert [r for n, r in enumerate(results) if n != 1] == [StepResult(True, 1)] * 5
        failed = await storage.get_session(sessions[1].id)
        assert (failed.revision, failed.state, await storage.events(failed.id)) == (0, "{}", [])
        assert [len(await storage.consents_of(s.respondent_id)) for s in sessions] == [1, 0, 1, 0, 0, 0]
