"""Files no answer refers to, on real SQLite and PostgreSQL: a file the questionnaire refused is
deleted by the retention pass once two days old; a photo the person replaced by another, and one
whose question became not relevant, stay (the answer history names them), as does the current
answer's file and a file too recent to judge."""

from __future__ import annotations

import datetime as dt
import hashlib

from fieldwork.privacy import UNREFERENCED_MEDIA_GRACE, unreferenced_media_pass
from storage import AnswerChange, open_storage
from surveys.codec import answer_status, encode_value
from surveys.expressions import NOT_APPLICABLE
from tests.test_storage import new_session, step

T0 = dt.datetime(2026, 8, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def change(question: str, value) -> AnswerChange:
    return AnswerChange(question, encode_value(value), answer_status(value))


async def keep(storage, session_id: int, question: str, content: bytes, at: dt.datetime) -> str:
    digest = hashlib.sha256(content).hexdigest()
    kept = await storage.media.store_media(session_id, question, f"{question.replace('/', '-')}-{digest[:12]}.jpg",
                                           "image/jpeg", content, digest, f"tg:{digest[:6]}", at.isoformat())
    return kept.name


async def test_only_files_no_answer_or_history_names_go_after_the_grace(database) -> None:
    async with await open_storage(database) as storage:
        session = await new_session(storage)
        refused = await keep(storage, session.id, "front", b"too dark", T0)  # the engine refused it
        first = await keep(storage, session.id, "front", b"first photo", T0)
        second = await keep(storage, session.id, "front", b"second photo", T0)
        in_repeat = await keep(storage, session.id, "items[1]/item_photo", b"an item", T0)
        set_aside = await keep(storage, session.id, "receipt", b"a receipt", T0)
        await step(storage, session.id, "e1", 0, [change("front", first), change("items[1]/item_photo", in_repeat),
                                                  change("receipt", set_aside)])
        # The person sends another photo, then goes back and the receipt is no longer relevant.
        await step(storage, session.id, "e2", 1, [change("front", second), change("receipt", NOT_APPLICABLE)])
        recent = await keep(storage, session.id, "front", b"sent a minute ago, refused", T0 + dt.timedelta(days=3))

        now = T0 + dt.timedelta(days=3, minutes=1)
        assert await unreferenced_media_pass(storage, now, dry_run=True) == 1
        assert len(await storage.media.media_files([session.id], content=False)) == 6  # a dry run deletes nothing
        assert await unreferenced_media_pass(storage, now, dry_run=False) == 1
        assert await unreferenced_media_pass(storage, now, dry_run=False) == 0  # idempotent
        left = {f.name: f.content for f in await storage.media.media_files([session.id])}
        assert set(left) == {first, second, in_repeat, set_aside, recent} and refused not in left
        assert left[second] == b"second photo"
        later = T0 + dt.timedelta(days=3) + UNREFERENCED_MEDIA_GRACE + dt.timedelta(seconds=1)
        assert await unreferenced_media_pass(storage, later, dry_run=False) == 1  # the recent one, once old
        assert {f.name for f in await storage.media.media_files([session.id], content=False)} \
            == {first, second, in_repeat, set_aside}


async def test_the_grace_is_compared_as_instants_whatever_the_offset(database) -> None:
    """`received_at` is written in Asia/Ho_Chi_Minh; a pass run with a UTC clock compares instants."""
    async with await open_storage(database) as storage:
        session = await new_session(storage)
        await keep(storage, session.id, "front", b"refused", T0)
        just_inside = (T0 + UNREFERENCED_MEDIA_GRACE - dt.timedelta(minutes=1)).astimezone(dt.timezone.utc)
        assert await unreferenced_media_pass(storage, just_inside, dry_run=False) == 0
        assert await unreferenced_media_pass(storage, just_inside + dt.timedelta(minutes=2), dry_run=False) == 1


async def test_khaosat_purge_says_how_many_unreferenced_files_it_deletes(tmp_path) -> None:
    from tests.test_privacy_retention import purge

    db = tmp_path / "k.sqlite"
    async with await open_storage(db) as storage:
        session = await new_session(storage)
        await keep(storage, session.id, "front", b"refused", T0)
        answered = await keep(storage, session.id, "front", b"kept", T0)
        await step(storage, session.id, "e1", 0, [change("front", answered)])
    dry = await purge(db, "--dry-run", "--at", "2026-08-05T09:00:00+07:00")
    assert dry.exit_code == 0, dry.output
    assert "Media files no answer refers to (refused by the questionnaire), older than 2 days: would delete 1" \
        in dry.output
    done = await purge(db, "--at", "2026-08-05T09:00:00+07:00")
    assert done.exit_code == 0 and "older than 2 days: deleted 1" in done.output
    only_survey = await purge(db, "--survey", "none", "--at", "2026-08-05T09:00:00+07:00")
    assert "Media files" not in only_survey.output  # a survey's retention only
    async with await open_storage(db) as storage:
        assert [f.name for f in await storage.media.media_files([session.id], content=False)] == [answered]


def test_the_chat_path_keeps_replaced_and_set_aside_photos_and_the_pass_deletes_the_refused_one(tmp_path) -> None:
    """End to end in `khaosat try` (the chat core's media path): a photo replaced after going back,
    a receipt whose question stops being relevant, and a meter photo the form's constraint refuses;
    then `khaosat purge` two days later deletes the refused photo only, and the export still
    writes the current answer's file."""
    import asyncio
    import os
    import subprocess
    import sys
    from pathlib import Path
    from zoneinfo import ZoneInfo

    import pandas as pd

    from fieldwork.data import ExportOptions, export
    from tests.test_privacy_retention import purge

    root = Path(__file__).resolve().parents[1]
    photos = {name: b"\xff\xd8\xff\xe0 photo " + name.encode() * 50 for name in ("first", "second", "receipt", "meter")}
    for name, content in photos.items():
        (tmp_path / f"{name}.jpg").write_bytes(content)
    lines = ["yes", tmp_path / "first.jpg", "<", tmp_path / "second.jpg", "1", tmp_path / "receipt.jpg",
             tmp_path / "meter.jpg", "", "<", "<", "<", "2", ""]
    db = tmp_path / "try.sqlite"
    result = subprocess.run([sys.executable, "-m", "bot.cli", "try", str(root / "tests" / "forms" / "media_lifecycle.md"),
                             "--db", str(db)], input="\n".join(map(str, lines)) + "\n", capture_output=True, text=True,
                            cwd=root, timeout=300, env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Ảnh này không dùng được." in result.stdout and "hoàn thành khảo sát" in result.stdout, result.stdout[-2000:]

    async def kept() -> dict[str, bytes]:
        async with await open_storage(db) as storage:
            (session,) = await storage.list_sessions()
            return {f.question + ":" + f.content.split(b" ")[2][:5].decode(): f.content
                    for f in await storage.media.media_files([session.id])}

    assert len(asyncio.run(kept())) == 4
    soon = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")) + dt.timedelta(days=1)
    early = asyncio.run(purge(db, "--at", soon.isoformat()))
    assert early.exit_code == 0 and "older than 2 days: deleted 0" in early.output
    later = asyncio.run(purge(db, "--at", (soon + dt.timedelta(days=2)).isoformat()))
    assert later.exit_code == 0 and "older than 2 days: deleted 1" in later.output, later.output
    assert set(asyncio.run(kept())) == {"front:first", "front:secon", "receipt:recei"}

    async def exported() -> pd.DataFrame:
        async with await open_storage(db) as storage:
            await export(storage, tmp_path / "out" / "a.csv", ExportOptions())
        return pd.read_csv(tmp_path / "out" / "a.csv", encoding="utf-8-sig", dtype=str)

    row = asyncio.run(exported()).iloc[0]
    assert (tmp_path / "out" / row["front"]).read_bytes() == photos["second"]
    assert [p.name for p in (tmp_path / "out" / "a-media").iterdir()] == [Path(row["front"]).name]
