"""Exports of a form with repeats: a main table plus one long table per repeat, linked by
``_parent_index`` to the parent row's ``_index`` (as KoBoToolbox does), in every format, read back.

Sessions are answered through the real engine and stored in a real SQLite database.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest
from openpyxl import load_workbook

from exporters.table import ExportTable, export_frame
from exporters.writers import WriteOptions, read_parquet_metadata, repeat_path, write
from fieldwork.conversations import Conversations
from storage import open_storage
from surveys import engine as E
from surveys.xlsform import load_questionnaire

ROSTER = Path(__file__).parent / "forms" / "roster.md"
ICT = dt.timezone(dt.timedelta(hours=7))

#: Replies in order after consent. Household 1: two people (An with two visits, Bình with none),
#: two crops. Household 2: one person with one visit, one crop.
HOUSEHOLDS = [
    ("tg:201", ["2", "An", "1", "40", "2", "150", "200.5", "Bình", "2", "8", "0",
                "Lúa", "có", "Ngô", "không"]),
    ("zalo:202", ["1", "Chi", "2", "70", "1", "80", "Sắn", "2"]),
]


async def build(db: Path) -> None:
    clock = [dt.datetime(2026, 8, 2, 9, 0, tzinfo=ICT)]

    def now() -> dt.datetime:
        clock[0] += dt.timedelta(seconds=7)
        return clock[0]

    async with await open_storage(db) as storage:
        conversations = Conversations(storage)
        form = load_questionnaire(ROSTER)
        await conversations.register(form, ROSTER.read_bytes(), ROSTER.name, now())
        for external_id, replies in HOUSEHOLDS:
            session, _ = await conversations.open(external_id, form, external_id.split(":")[0], "vi", now())
            events = [E.Start(now())]
            for n in range(len(replies) + 2):
                if n < len(events):
                    event = events[n]
                else:
                    _, state = await conversations.state(session.id)
                    event = E.Choose("yes", state.seq, now()) if state.status is E.Status.CONSENT \
                        else E.Reply(replies[n - 2], now(), state.seq)
                handled = await conversations.handle(session.id, event, f"{external_id}:{n}")
                assert handled.applied
            _, state = await conversations.state(session.id)
            assert state.status is E.Status.COMPLETED, state


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("repeat-exports") / "k.sqlite"
    asyncio.run(build(path))
    return path


@pytest.fixture(scope="module")
def table(db) -> ExportTable:
    async def run():
        async with await open_storage(db) as storage:
            return await export_frame(storage, "roster")

    return asyncio.run(run())


def test_the_main_table_has_one_row_per_household_and_no_repeat_columns(table):
    df = table.df
    assert list(df["_index"]) == [1, 2]
    assert list(df["members"]) == [2, 1]
    assert list(df["names"]) == ["An, Bình", "Chi"]
    assert list(df["oldest"]) == [40, 70]
    assert list(df["total_cost"]) == [350.5, 80]
    assert list(df["first_name"]) == ["An", "Chi"]
    for inner in ("name", "age", "sex", "cost", "crop_name", "pos"):
        assert inner not in df.columns
    assert list(table.repeats) == ["member", "crop", "visit"]


def test_each_repeat_is_a_long_table_linked_to_its_parent_row(table):
    member = table.repeats["member"].df
    assert list(member.columns[:6]) == ["_index", "_parent_table_name", "_parent_index", "respondent", "session",
                                        "_position"]
    assert list(member["_index"]) == [1, 2, 3]
    assert list(member["_parent_table_name"]) == ["data"] * 3
    assert list(member["_parent_index"]) == [1, 1, 2]
    assert list(member["_position"]) == [1, 2, 1]
    assert list(member["name"]) == ["An", "Bình", "Chi"]
    assert list(member["age"]) == [40, 8, 70]
    assert str(member["sex"].dtype) == "Int64" and table.repeats["member"].value_labels["sex"] == {1: "Nam", 2: "Nữ"}
    assert list(member["session"]) == list(table.df["session"].iloc[[0, 0, 1]])
    visit = table.repeats["visit"].df
    assert list(visit["_parent_table_name"]) == ["member"] * 3
    assert list(visit["_parent_index"]) == [1, 1, 3]  # An's two visits, Chi's one
    assert list(visit["cost"]) == [150.0, 200.5, 80.0]
    crop = table.repeats["crop"].df
    assert list(crop["crop_name"]) == ["Lúa", "Ngô", "Sắn"] and list(crop["_parent_index"]) == [1, 1, 2]


def test_csv_writes_one_file_per_table(table, tmp_path):
    out = tmp_path / "roster.csv"
    write(table, out, "csv")
    assert pd.read_csv(out, encoding="utf-8-sig")["_index"].tolist() == [1, 2]
    member = repeat_path(out, "member")
    assert member.name == "roster-member.csv"
    with open(member, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["_parent_index"], r["name"], r["age"]) for r in rows] == [("1", "An", "40"), ("1", "Bình", "8"),
                                                                         ("2", "Chi", "70")]
    visits = pd.read_csv(repeat_path(out, "visit"), encoding="utf-8-sig")
    assert visits["cost"].tolist() == [150.0, 200.5, 80.0]
    labelled = tmp_path / "labelled.csv"
    write(table, labelled, "csv", WriteOptions(labels=True))
    assert pd.read_csv(repeat_path(labelled, "member"), encoding="utf-8-sig")["sex"].tolist() == ["Nam", "Nữ", "Nữ"]


def test_xlsx_has_a_sheet_per_repeat(table, tmp_path):
    out = tmp_path / "roster.xlsx"
    write(table, out, "xlsx")
    book = load_workbook(out, read_only=True)
    assert book.sheetnames == ["data", "member", "crop", "visit", "codebook"]
    rows = list(book["member"].iter_rows(values_only=True))
    header = list(rows[0])
    assert [(row[header.index("_parent_index")], row[header.index("name")]) for row in rows[1:]] == \
        [(1, "An"), (1, "Bình"), (2, "Chi")]
    variables = [row[0] for row in book["codebook"].iter_rows(values_only=True)]
    assert "crop_name" in variables and "cost" in variables


def test_sav_and_dta_write_a_file_per_table(table, tmp_path):
    out = tmp_path / "roster.sav"
    write(table, out, "sav")
    member, meta = pyreadstat.read_sav(str(repeat_path(out, "member")))
    # SPSS names start with a letter: `_parent_index` is `v_parent_index`, its label keeps the name
    assert member["v_parent_index"].tolist() == [1, 1, 2] and member["name"].tolist() == ["An", "Bình", "Chi"]
    assert meta.column_names_to_labels["v_parent_index"].startswith("_parent_index")
    assert meta.variable_value_labels["sex"] == {1.0: "Nam", 2.0: "Nữ"}
    main, _ = pyreadstat.read_sav(str(out))
    assert main["v_index"].tolist() == [1, 2]
    dta = tmp_path / "roster.dta"
    write(table, dta, "dta")
    visit, _ = pyreadstat.read_dta(str(repeat_path(dta, "visit")))
    assert visit["cost"].tolist() == [150.0, 200.5, 80.0] and visit["v_parent_index"].tolist() == [1, 1, 3]


def test_parquet_writes_a_file_per_table_with_its_labels(table, tmp_path):
    out = tmp_path / "roster.parquet"
    write(table, out, "parquet")
    crop = pq.read_table(repeat_path(out, "crop")).to_pandas()
    assert crop["crop_name"].tolist() == ["Lúa", "Ngô", "Sắn"] and crop["_parent_index"].tolist() == [1, 1, 2]
    metadata = read_parquet_metadata(repeat_path(out, "member"))
    assert metadata["layout"] == "repeat member" and metadata["variable_labels"]["age"] == "Tuổi của ${name}?"


def test_a_form_without_repeats_keeps_its_single_table(tmp_path):
    # The tour form has no repeats: no _index column, no repeat tables, one file.
    async def run():
        db = tmp_path / "plain.sqlite"
        tour = Path(__file__).parent / "forms" / "tour.md"
        async with await open_storage(db) as storage:
            conversations = Conversations(storage)
            form = load_questionnaire(tour)
            at = dt.datetime(2026, 8, 2, 9, 0, tzinfo=ICT)
            await conversations.register(form, tour.read_bytes(), tour.name, at)
            session, _ = await conversations.open("tg:1", form, "tg", "vi", at)
            await conversations.handle(session.id, E.Start(at), "1")
            return await export_frame(storage, form.form_id)

    table = asyncio.run(run())
    assert "_index" not in table.df.columns and table.repeats == {}
    write(table, tmp_path / "plain.csv", "csv")
    assert sorted(p.name for p in tmp_path.glob("plain*.csv")) == ["plain.csv"]


def test_the_long_layout_lists_repeat_answers_under_their_instance_keys_with_types_and_labels(db):
    async def run():
        async with await open_storage(db) as storage:
            return await export_frame(storage, "roster", layout="long")

    long = asyncio.run(run()).df
    rows = {(r["session"], r["question"]): r for r in long.to_dict("records")}
    first = long["session"].min()
    assert rows[(first, "member[2]/age")]["value"] == "8" and rows[(first, "member[2]/age")]["type"] == "integer"
    sex = rows[(first, "member[2]/sex")]
    assert (sex["value"], sex["value_label"], sex["type"]) == ("2", "Nữ", "select_one")
    assert rows[(first, "member[1]/visit[2]/cost")]["value"] == "200.5"
