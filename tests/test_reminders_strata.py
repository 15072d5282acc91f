"""``enqueue_due_reminders(strata=...)``: the reminder pass limited to some strata (a unit-scoped
coordinator's "send a reminder now"), on a real SQLite database."""

from __future__ import annotations

from pathlib import Path

from storage import open_storage
from surveys.project import load_survey, store_survey
from surveys.sampling import draw_sample, import_frame_file

ROOT = Path(__file__).resolve().parents[1]
SURVEY_FILE = ROOT / "tests" / "forms" / "survey" / "survey.toml"
T0 = "2026-08-02T09:00:00+07:00"
NOW = "2026-08-05T09:00:00+07:00"
BOT = ("telegram", "t")


async def two_communes(tmp_path: Path, db):
    """The test survey's sample over communes xa-a and xa-b, every main member contacted with a chat."""
    project = load_survey(SURVEY_FILE)
    frame = tmp_path / "frame.csv"
    rows = ["id,group,unit,name,phone"]
    for unit, size in {"xa-a": 120, "xa-b": 80, "xa-c": 40}.items():
        rows += [f"{unit}-{i:03d},citizen,{unit},Người {unit} {i},09{i:08d}" for i in range(size)]
    frame.write_text("\n".join(rows) + "\n", encoding="utf-8")
    async with await open_storage(db) as storage:
        await store_survey(storage, project, "", "survey.toml", T0)
        await import_frame_file(storage, project, frame, T0)
        await draw_sample(storage, project, 1, T0)
        members: dict[str, list[int]] = {}
        for member in await storage.sample_members(project.id, "main"):
            members.setdefault(member.stratum, []).append(member.respondent_id)
        for n, rid in enumerate(members["citizen/xa-a"] + members["citizen/xa-b"]):
            await storage.set_disposition(rid, "invited", T0)
            await storage.link_chat(*BOT, str(1000 + n), rid, T0)
            await storage.set_disposition(rid, "contacted", T0)
    return db, project, members


async def queue(db: Path, survey_id: str, **kwargs) -> int:
    async with await open_storage(db) as storage:
        return await storage.enqueue_due_reminders(survey_id, after_days=(0,), max_count=3, now=NOW,
                                                   limits={BOT: None}, at=NOW, **kwargs)


async def reminded(db: Path) -> set[int]:
    async with await open_storage(db) as storage:
        return {row[0] for row in await storage._fetchall("SELECT respondent_id FROM reminders")}  # noqa: SLF001


async def test_only_the_given_strata_are_queued_once(tmp_path, database):
    db, project, members = await two_communes(tmp_path, database)
    a, b = set(members["citizen/xa-a"]), set(members["citizen/xa-b"])
    assert a and b
    assert await queue(db, project.id, strata=["citizen/xa-b"]) == len(b)
    assert await reminded(db) == b
    assert await queue(db, project.id, strata=("citizen/xa-b",)) == 0  # idempotent: nobody twice
    assert await reminded(db) == b
    # No strata at all queues nobody; without the filter, the rest of the survey is queued.
    assert await queue(db, project.id, strata=[]) == 0
    assert await queue(db, project.id) == len(a)
    assert await reminded(db) == a | b


async def test_a_stratum_of_no_member_queues_nobody(tmp_path, database):
    db, project, _ = await two_communes(tmp_path, database)
    assert await queue(db, project.id, strata=["citizen/xa-zz", "citizen/xa-c"]) == 0
    assert await reminded(db) == set()
