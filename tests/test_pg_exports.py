"""Exports of a PostgreSQL database: the chat's /export child and the readers get the URL itself
(never taken for a file path, never on a command line where ps shows its password), and read
what the bots stored."""

from __future__ import annotations

import csv

from bot.chat.coordination import write_export
from fieldwork.data import ExportOptions, export
from storage import open_storage
from tests.browser.conftest import NOW, answer_in_chat, build_fieldwork


async def test_the_chat_export_child_reads_postgresql(tmp_path, postgresql_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fieldwork = await build_fieldwork(tmp_path, postgresql_url)
    async with await open_storage(postgresql_url) as storage:
        assert await answer_in_chat(storage, [fieldwork.members["citizen/xa-a"][12]], lambda: NOW) == ["completed"]
        sessions = len(await storage.list_sessions())
        in_process = await export(storage, tmp_path / "here.csv", ExportOptions())
    out = tmp_path / "answers.csv"
    exported, handed = write_export(postgresql_url, out)
    assert handed.path == out and not handed.bundled  # no repeats: the CSV itself is sent
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert exported.rows == len(rows) == sessions == in_process.rows >= 1
    assert any(row["status"] == "completed" for row in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.csv", "frame.csv", "here.csv"]  # no "postgresql:" folder
