"""A rank exported for analysts in every format: ODK's text (the choice names in rank order) plus
one column per choice with the rank given to it, labelled in SPSS and Stata like select_multiple's
0/1 columns; sessions answered through the real engine into a real SQLite database."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from fieldwork.conversations import Conversations
from exporters.table import export_frame
from exporters.writers import FORMATS, legal_names, write
from storage import open_storage
from surveys import engine as E
from surveys.xlsform import load_questionnaire

RANKING = Path(__file__).parent / "forms" / "ranking.md"
ICT = dt.timezone(dt.timedelta(hours=7))

#: Replies per person after consent: priorities, channel, channels_rank (picks, then "" stops), age.
PEOPLE = {
    "tg:1": ["3 1 4", "1", "", "40"],           # priorities c a d b; channels_rank skipped
    "tg:2": ["2 4 1", "2", "1", "2", "", "25"],  # b d a c; two channels ranked, then stopped
    "tg:3": ["1 2 3", "3", "4 3 2", "61"],        # a b c d; every channel ranked
}


async def build(db: Path) -> dict[str, tuple]:
    clock = [dt.datetime(2026, 8, 2, 9, tzinfo=ICT)]

    def now() -> dt.datetime:
        clock[0] += dt.timedelta(seconds=5)
        return clock[0]

    shown: dict[str, tuple] = {}
    async with await open_storage(db) as storage:
        conversations = Conversations(storage)
        form = load_questionnaire(RANKING)
        await conversations.register(form, RANKING.read_bytes(), RANKING.name, now())
        for n, (person, replies) in enumerate(PEOPLE.items()):
            session, _ = await conversations.open(person, form, "telegram", "vi", now())
            events = [E.Start(now(), seed=f"export-{n}"), E.Choose("yes", 1, now())]
            events += [E.Reply(reply, now()) for reply in replies]
            for i, event in enumerate(events):
                handled = await conversations.handle(session.id, event, f"{person}:{i}")
                assert handled.step.accepted, (person, event, handled.step.say)
            _, state = await conversations.state(session.id)
            assert state.status is E.Status.COMPLETED, person
            shown[person] = state.answers["channels_rank"]
    return shown


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    db = tmp_path_factory.mktemp("rank") / "k.sqlite"
    shown = asyncio.run(build(db))

    async def read():
        async with await open_storage(db) as storage:
            return await export_frame(storage, form_id="ranking")

    return asyncio.run(read()), shown


def test_the_rank_text_and_one_rank_column_per_choice(exported):
    table, shown = exported
    df = table.df
    assert df["priorities"].tolist() == ["thai_do thu_tuc chi_phi thoi_gian", "thoi_gian chi_phi thu_tuc thai_do",
                                         "thu_tuc thoi_gian thai_do chi_phi"]
    assert df["priorities/thu_tuc"].tolist() == [2, 3, 1] and df["priorities/chi_phi"].tolist() == [3, 2, 4]
    assert str(df["priorities/thai_do"].dtype) == "Int64"
    assert table.kinds["priorities"] == "rank" and table.kinds["priorities/thu_tuc"] == "rank_position"
    assert table.variable_labels["priorities/thu_tuc"] == "Quý vị muốn cải thiện điều gì trước?: Thủ tục (hạng)"
    # an optional rank stopped early: the choices not ranked are empty; skipped: every column empty
    ranked_two = shown["tg:2"]
    assert len(ranked_two) == 2
    row = df.iloc[1]
    for name in ("web", "app", "zalo", "mot_cua"):
        expected = ranked_two.index(name) + 1 if name in ranked_two else None
        assert (pd.isna(row[f"channels_rank/{name}"]) if expected is None
                else row[f"channels_rank/{name}"] == expected), name
    assert all(pd.isna(df.iloc[0][f"channels_rank/{name}"]) for name in ("web", "app", "zalo", "mot_cua"))
    assert table.skipped["channels_rank/web"].tolist() == [True, False, False]
    assert sorted(df.iloc[2][[f"channels_rank/{n}" for n in ("web", "app", "zalo", "mot_cua")]].tolist()) == [1, 2, 3, 4]
    codebook = {row["variable"]: row for row in table.codebook}
    assert codebook["priorities/thu_tuc"]["type"] == "rank (1 = first)"
    assert codebook["priorities/thu_tuc"]["question"] == "priorities"


@pytest.mark.parametrize("file_format", FORMATS)
def test_every_format_is_written(exported, tmp_path, file_format):
    path = tmp_path / f"r.{file_format}"
    write(exported[0], path, file_format)
    assert path.stat().st_size > 0


def test_spss_and_stata_carry_the_rank_columns_labelled(exported, tmp_path):
    table, _ = exported
    names = legal_names(list(table.df.columns))
    write(table, tmp_path / "r.sav", "sav")
    df, meta = pyreadstat.read_sav(str(tmp_path / "r.sav"))
    legal = names["priorities/thu_tuc"]
    assert df[legal].tolist() == [2.0, 3.0, 1.0]
    assert dict(zip(meta.column_names, meta.column_labels))[legal].endswith("Thủ tục (hạng)")
    assert meta.variable_measure[legal] == "ordinal"
    assert df[names["priorities"]].tolist()[0] == "thai_do thu_tuc chi_phi thoi_gian"
    write(table, tmp_path / "r.dta", "dta")
    dta, dmeta = pyreadstat.read_dta(str(tmp_path / "r.dta"))
    assert dta[legal].tolist() == [2.0, 3.0, 1.0]
    assert "Thủ tục" in dict(zip(dmeta.column_names, dmeta.column_labels))[legal]
