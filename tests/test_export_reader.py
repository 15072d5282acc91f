"""The column-wise reader (`exporters.table.read_export`) gives exactly the tables the former
session-by-session export gave (kept as `tests/legacy_export.py`), on the export tests' database
(tour and SIPAS forms, a drawn sample, skipped, not applicable and unreached answers)."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import legacy_export
from exporters.table import ExportTable, export_frame, read_export
from storage import open_storage
from test_exports import build


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("reader")
    path = folder / "k.sqlite"
    asyncio.run(build(path, folder))
    return path


def reference(db: Path, **kwargs) -> ExportTable:
    async def run():
        async with await open_storage(db) as storage:
            return await legacy_export.export_frame(storage, **kwargs)

    return asyncio.run(run())


def without_last_channel(table: ExportTable) -> ExportTable:
    """The table as the former export made it: it had no last_channel column (defect 9), nor the
    mode column (paper mode) that follows it."""
    added = ("last_channel", "mode")
    if "last_channel" not in table.df.columns:
        return table
    assert list(table.df.columns).index("last_channel") == list(table.df.columns).index("channel") + 1
    return ExportTable(table.df.drop(columns=[c for c in added if c in table.df.columns]),
                       {k: v for k, v in table.variable_labels.items() if k not in added},
                       table.value_labels, [r for r in table.codebook if r["variable"] not in added],
                       {k: v for k, v in table.kinds.items() if k not in added}, table.skipped,
                       table.questions, table.layout, table.language, table.personal, table.forms)


def assert_same(new: ExportTable, old: ExportTable) -> None:
    new = without_last_channel(new)
    pd.testing.assert_frame_equal(new.df, old.df, check_exact=True)
    assert [str(t) for t in new.df.dtypes] == [str(t) for t in old.df.dtypes]
    assert new.variable_labels == old.variable_labels
    assert new.value_labels == old.value_labels
    assert new.kinds == old.kinds
    assert new.questions == old.questions
    assert new.codebook == old.codebook
    assert new.forms == old.forms and new.layout == old.layout and new.personal == old.personal
    assert set(new.skipped) == set(old.skipped)
    for column, mask in old.skipped.items():
        assert np.array_equal(new.skipped[column], mask), column


@pytest.mark.parametrize("layout", ["wide", "long"])
@pytest.mark.parametrize("form_id", [None, "tour", "sipas_citizen_example"])
@pytest.mark.parametrize("personal, language", [(False, "vi"), (True, "en")])
def test_reader_equals_the_former_export(db, layout, form_id, personal, language):
    kwargs = dict(form_id=form_id, layout=layout, personal=personal, language=language)
    old = reference(db, **kwargs)
    assert len(old.df) > 0
    assert_same(read_export(db, **kwargs), old)


def test_export_frame_reads_off_the_event_loop(db):
    """The async entry point reads in a worker thread on its own connection, beside an open storage."""
    threads = []

    async def run():
        async with await open_storage(db) as storage:
            return await export_frame(storage, progress=lambda done, total: threads.append(threading.get_ident()))

    table = asyncio.run(run())
    assert len(table.df) == len(read_export(db).df)
    assert threads and threading.get_ident() not in threads


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """The benchmark's generated database, small: random answers of every kind, paused sessions,
    not applicable and skipped answers, sample attributes and reminders."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from analysts_data import build as build_generated

    path = tmp_path_factory.mktemp("generated") / "g.sqlite"
    build_generated(path, sessions=300, communes=7, seed=5)
    return path


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_reader_equals_the_former_export_on_generated_data(generated, layout):
    old = reference(generated, layout=layout)
    assert len(old.df) == 300 if layout == "wide" else len(old.df) > 300 * 20
    new = read_export(generated, layout=layout)
    assert_same(new, old)
    if layout == "wide":
        assert old.skipped and new.df["ty_le_hai_long"].dtype == "float64"


async def _cross_channel_db(path: Path) -> None:
    """Three sessions: Telegram then Zalo, Telegram only, and one whose event keys name no channel."""
    from fieldwork.conversations import Conversations
    from surveys import engine as E
    from surveys.xlsform import load_questionnaire
    from test_exports import TOUR, Clock

    clock = Clock()
    async with await open_storage(path) as storage:
        conversations = Conversations(storage)
        tour = load_questionnaire(TOUR)
        await conversations.register(tour, TOUR.read_bytes(), TOUR.name, clock())
        for person, keys in (("p1", ["tg:bot:1", "tg:bot:2", "zalo:bot:3"]), ("p2", ["tg:bot:4", "tg:bot:5"]),
                             ("p3", ["replay:1", "replay:2"])):
            session, _ = await conversations.open(person, tour, "telegram", "vi", clock())
            _, state = await conversations.state(session.id)
            await conversations.handle(session.id, E.Start(clock()), keys[0])
            _, state = await conversations.state(session.id)
            await conversations.handle(session.id, E.Choose("yes", state.seq, clock()), keys[1])
            if len(keys) > 2:
                _, state = await conversations.state(session.id)
                await conversations.handle(session.id, E.Reply("30", clock(), state.seq), keys[2])


def test_first_and_last_channel(tmp_path):
    """Defect 9: a session that started on Telegram and went on on Zalo says so in two columns."""
    path = tmp_path / "channels.sqlite"
    asyncio.run(_cross_channel_db(path))
    df = read_export(path).df
    assert list(df["channel"]) == ["telegram", "telegram", "telegram"]
    assert list(df["last_channel"]) == ["zalo", "telegram", "telegram"]
    table = read_export(path, language="en")
    assert table.variable_labels["last_channel"] == "Last channel"
    assert any(r["variable"] == "last_channel" for r in table.codebook)


def test_long_layout_in_small_chunks_streams_the_same_csv(generated, tmp_path, monkeypatch):
    """The long layout read a few sessions at a time (as a national export is) equals the former
    export, and the CSV written chunk by chunk is byte for byte the one written from the whole table."""
    import storage.answers_read as answers_read
    from exporters.long_layout import read_long_chunks
    from exporters.writers import write, write_csv_chunks

    monkeypatch.setattr(answers_read, "SESSIONS_PER_CHUNK", 7)
    assert_same(read_export(generated, layout="long"), reference(generated, layout="long"))
    chunks = list(read_long_chunks(generated))
    assert len(chunks) == -(-300 // 7)
    whole, streamed = tmp_path / "whole.csv", tmp_path / "streamed.csv"
    write(read_export(generated, layout="long"), whole, "csv", )
    rows = write_csv_chunks(iter(chunks), streamed)
    assert rows == sum(len(c.df) for c in chunks) and streamed.read_bytes() == whole.read_bytes()
