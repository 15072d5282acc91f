"""The aggregates' repositories: each keeps its Protocol, works on its own over the shared
connection, and writes only the tables ``storage/README.md`` gives it."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

import storage
from storage import AnswerChange, NotFound, OutgoingMessage, ReminderTexts, StaleRevision, StorageError, open_storage
from storage.base import Storage
from storage.fieldwork import Fieldwork, SQLiteFieldwork
from storage.links import Links, SQLiteLinks
from storage.outbox import Outbox, SQLiteOutbox
from storage.privacy import Privacy, SQLitePrivacy
from storage.questionnaires import Questionnaires, SQLiteQuestionnaires
from storage.quotas import Quotas, SQLiteQuotas
from storage.reminders_store import Reminders, SQLiteReminders
from storage.sessions import Sessions, SQLiteSessions
from storage.sqlite import SQLiteStorage
from storage.sqlite_hops import Hops, open_connection
from storage.surveys import SQLiteSurveys, Surveys

T0 = "2024-05-01T08:00:00+07:00"
T1 = "2024-05-01T08:01:00+07:00"
STORAGE_DIR = Path(storage.__file__).parent

PAIRS = [
    (Questionnaires, SQLiteQuestionnaires, "questionnaires"),
    (Links, SQLiteLinks, "links"),
    (Outbox, SQLiteOutbox, "outbox"),
    (Sessions, SQLiteSessions, "sessions"),
    (Surveys, SQLiteSurveys, "surveys"),
    (Fieldwork, SQLiteFieldwork, "fieldwork"),
    (Quotas, SQLiteQuotas, "quotas"),
    (Reminders, SQLiteReminders, "reminders"),
    (Privacy, SQLitePrivacy, "privacy"),
]


def _methods(protocol: type) -> list[str]:
    return sorted(name for name, value in vars(protocol).items()
                  if inspect.iscoroutinefunction(value) and not name.startswith("_"))


@pytest.mark.parametrize(("protocol", "implementation", "attribute"), PAIRS, ids=[p[2] for p in PAIRS])
def test_each_repository_keeps_its_protocol_and_storage_delegates_to_it(protocol, implementation, attribute):
    names = _methods(protocol)
    assert names, protocol
    for name in names:
        assert inspect.signature(getattr(implementation, name)) == inspect.signature(getattr(protocol, name)), name
        delegate = vars(SQLiteStorage)[name]
        assert delegate.repository == attribute, name


def test_storage_is_exactly_the_union_of_the_protocols():
    union = {name for protocol, _, _ in PAIRS for name in _methods(protocol)}
    assert sum(len(_methods(protocol)) for protocol, _, _ in PAIRS) == len(union)  # no method in two aggregates
    assert {name for name in Storage.__abstractmethods__} == union | {"close"}
    assert not SQLiteStorage.__abstractmethods__


def _written_tables(source: str) -> set[str]:
    schema = "".join((STORAGE_DIR / name).read_text(encoding="utf-8") for name in ("schema_first.py", "migrations.py"))
    tables = set(re.findall(r"CREATE TABLE (\w+)", schema))
    return set(re.findall(r"(?:INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", source)) & tables


def test_every_table_is_written_only_where_the_readme_says():
    """storage/README.md is how a newcomer finds where a table is written: it must stay true."""
    readme = (STORAGE_DIR / "README.md").read_text(encoding="utf-8")
    documented: dict[str, set[str]] = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        modules = set(re.findall(r"`(\w+\.py)`", cells[1] + " " + cells[2]))
        for table in re.findall(r"`(\w+)(?:\.\w+)?`", cells[0]):
            documented.setdefault(table, set()).update(modules)
    for path in sorted(STORAGE_DIR.glob("*.py")):
        if path.name in ("migrations.py", "schema_first.py"):
            continue
        for table in _written_tables(path.read_text(encoding="utf-8")):
            assert table in documented, f"{path.name} writes {table}, which storage/README.md does not map"
            assert path.name in documented[table], f"{path.name} writes {table}; storage/README.md says {documented[table]}"


def test_no_private_api_of_the_driver():
    for path in STORAGE_DIR.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\._execute\(|\._conn\b(?!ect)", text.replace("self._conn", "")), path.name


async def test_a_repository_works_on_its_own_over_the_shared_connection(tmp_path):
    """What a caller migrating off ``Storage`` will do: take only the repositories it needs."""
    db = await open_connection(tmp_path / "x.sqlite")
    hops = Hops(db)
    try:
        questionnaires, links, sessions = SQLiteQuestionnaires(hops), SQLiteLinks(hops), SQLiteSessions(hops)
        await questionnaires.save_questionnaire("par", "1", "par.xlsx", b"form", T0)
        respondent = await links.ensure_respondent("tg:1", T0)
        session, created = await sessions.current_session(respondent.id, "par", "1", "telegram", "new", "{}", T0)
        assert created and (await questionnaires.get_questionnaire("par", "1")).source == b"form"
    finally:
        await hops.close()
    async with await open_storage(tmp_path / "x.sqlite") as again:  # the same file through Storage
        assert (await again.get_session(session.id)).respondent_id == respondent.id
    with pytest.raises(StorageError, match="closed"):
        await db.run(lambda conn: None)
    await db.close()  # twice is safe


async def _session(s):
    await s.save_questionnaire("par", "1", "par.xlsx", b"form", T0)
    respondent = await s.ensure_respondent("tg:1", T0)
    session, _ = await s.current_session(respondent.id, "par", "1", "telegram", "new", "{}", T0)
    return session


def _step(s, session_id, key, revision, outgoing=()):
    return s.apply_step(session_id, event_key=key, event=json.dumps({"k": key}), expected_revision=revision,
                        status="active", state=json.dumps({"rev": revision + 1}),
                        changes=[AnswerChange("q1", json.dumps(key), "answered")], at=T1, outgoing=list(outgoing))


async def test_a_lone_step_takes_the_batched_write(database, monkeypatch):
    """One path for the step write: a lone apply_step is the batch of one, with its refusals."""
    import storage.sessions as sessions_store
    batches = []
    real = sessions_store._apply_steps
    monkeypatch.setattr(sessions_store, "_apply_steps", lambda conn, calls: batches.append(len(calls)) or real(conn, calls))
    async with await open_storage(database) as s:
        session = await _session(s)
        reply = OutgoingMessage("telegram", "b", "1", "sendMessage", '{"text": "hi"}', dedupe_key="k#0")
        applied = await _step(s, session.id, "e1", 0, [reply])
        again = await _step(s, session.id, "e1", 0, [reply])  # re-delivered
        with pytest.raises(StaleRevision):
            await _step(s, session.id, "e2", 0)
        with pytest.raises(NotFound):
            await _step(s, 999, "e3", 0)
        assert batches == [1, 1, 1, 1]
        assert applied.applied and applied.revision == 1 and not again.applied and again.revision == 1
        assert [e["event_key"] for e in await s.events(session.id)] == ["e1"]
        assert (await s.outbox_counts())["pending"] == 1


async def _queued_reminder(s, chat_id: str) -> int:
    respondent = await s.ensure_respondent(f"tg:{chat_id}", T0)
    await s.set_disposition(respondent.id, "contacted", T0)
    await s.link_chat("telegram", "t", chat_id, respondent.id, T0)
    await s._run(lambda conn: conn.execute(  # noqa: SLF001 - a queued reminder, as a pass leaves it
        "INSERT INTO reminders (respondent_id, survey_id, number, step, activity_at, due_at, enqueued_at,"
        " channel, bot) VALUES (?, 'svy', 1, 0, ?, ?, ?, 'telegram', 't')", (respondent.id, T0, T0, T0)))
    return respondent.id


async def test_handing_reminders_over_uses_the_callers_payload_and_text(database):
    texts = {"svy": ReminderTexts({}, lambda language, form_id, answered: f"nhắc {answered}")}
    async with await open_storage(database) as s:
        await _queued_reminder(s, "1001")
        built = []

        def payload(chat_id: str, text: str) -> str:
            built.append((chat_id, text))
            return json.dumps({"to": chat_id, "say": text}, ensure_ascii=False)

        result = await s.hand_over_reminders("telegram", "t", 10, texts=texts, stopped={}, at=T1, payload=payload)
        assert result.handed_over == 1 and built == [("1001", "nhắc 0")]
        await _queued_reminder(s, "1002")  # the old call, no builder: a channel-neutral payload
        assert (await s.hand_over_reminders("telegram", "t", 10, texts=texts, stopped={}, at=T1)).handed_over == 1
        payloads = [json.loads(row[0]) for row in await s._fetchall("SELECT payload FROM outbox ORDER BY id")]  # noqa: SLF001
    assert payloads == [{"to": "1001", "say": "nhắc 0"}, {"chat_id": "1002", "text": "nhắc 0"}]
