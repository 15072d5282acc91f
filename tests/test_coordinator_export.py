"""The coordinators' `/export` (`bot.chat.coordination.CoordinatorDesk`) on real SQLite: the shared
export (`fieldwork.data.export`) read and written off the bots' event loop, and a failure told
as a message. (The chat-level `/export` tests are in test_chat_scenarios and test_telegram_bot.)"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import sys
import threading
from pathlib import Path

import pytest

from bot.chat.coordination import CoordinatorDesk
from bot.chat.events import Capabilities, Document, Notice
from exporters import writers
from exporters.table import read_export
from fieldwork.conversations import Conversations
from storage import open_storage

SESSIONS = 300

TELEGRAM = Capabilities(buttons=True, documents=True, text_limit=4096)


def now() -> dt.datetime:
    return dt.datetime(2026, 8, 20, 9, 30, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """The analysts' benchmark database, small: answers of every kind, skipped and not applicable."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from analysts_data import build

    path = tmp_path_factory.mktemp("coordinator-export") / "g.sqlite"
    build(path, sessions=SESSIONS, communes=7, seed=11)
    return path


def test_export_runs_off_the_event_loop_while_it_keeps_serving(generated, tmp_path):
    """While /export reads and writes a few hundred sessions, the loop runs other work (a ticking
    task), and neither the read nor the CSV writer ever runs in the bots' process (not even in a
    worker thread, which would share their GIL): a child process writes the file."""
    heavy = {read_export.__code__: "read", writers.write_csv.__code__: "write"}
    ran_in: dict[str, set[int]] = {"read": set(), "write": set()}

    def watch(frame, event, arg):
        if event == "call" and frame.f_code in heavy:
            ran_in[heavy[frame.f_code]].add(threading.get_ident())

    async def scenario():
        async with await open_storage(generated) as storage:
            desk = CoordinatorDesk(Conversations(storage), tmp_path / "exports", now)
            export = asyncio.create_task(desk.run("export", "telegram:test:900", TELEGRAM))
            ticks = 0
            while not export.done():
                ticks += 1
                await asyncio.sleep(0)
            return ticks, await export

    threading.setprofile(watch)  # threads started from here on (a worker thread, its loop's threads)
    sys.setprofile(watch)  # and this thread, the event loop's
    try:
        ticks, replies = asyncio.run(scenario())
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    assert ticks >= 50, ticks
    assert ran_in == {"read": set(), "write": set()}, ran_in
    [document] = replies
    assert isinstance(document, Document) and document.filename.endswith("-900.csv")
    assert f"{SESSIONS} phiên" in document.caption
    with open(document.path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == SESSIONS
    # the shared wide, pseudonymous export: the same sessions as the reader gives, no personal data
    assert [row["session"] for row in rows] == [str(s) for s in read_export(generated).df["session"]]
    assert "phone" not in rows[0] and "name" not in rows[0]


def test_a_failed_export_is_a_message_not_a_traceback(generated, tmp_path):
    blocked = tmp_path / "exports"
    blocked.write_text("a file where the export folder should be")

    async def scenario():
        async with await open_storage(generated) as storage:
            return await CoordinatorDesk(Conversations(storage), blocked, now).run("export", "telegram:test:901",
                                                                                    TELEGRAM)

    [reply] = asyncio.run(scenario())
    assert isinstance(reply, Notice)
    assert reply.text.startswith("Không xuất được dữ liệu: cannot write ") and "exports" in reply.text
    assert "Traceback" not in reply.text
    assert blocked.read_text() == "a file where the export folder should be"
