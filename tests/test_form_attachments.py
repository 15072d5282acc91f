"""A stored questionnaire keeps the CSV files it reads: after a restart (a new process that has only
the database) pulldata(), instance() lookups and select_one_from_file work as on the first day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from exporters.table import export_frame
from fieldwork.conversations import Conversations
from storage import QuestionnaireConflict, open_storage
from surveys import engine as E
from surveys.xlsform import load_questionnaire

FORM = """
| survey |
| | type | name | label | calculation |
| | select_one_from_file items.csv | item | Quý vị mua gì? | |
| | calculate | price | | pulldata('prices', 'price', 'item', ${item}) |
| | calculate | unit | | instance('prices')/root/item[item = ${item}]/unit |
| | integer | amount | Giá ${price} đồng/${unit}: quý vị mua bao nhiêu ${unit}? | |

| settings |
| | form_id | version |
| | market | 1 |
"""
AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))


@pytest.fixture
def form_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "form"
    folder.mkdir()
    (folder / "market.md").write_text(FORM, encoding="utf-8")
    (folder / "items.csv").write_text("name,label\ngao,Gạo\nmuoi,Muối\n", encoding="utf-8")
    (folder / "prices.csv").write_text("item,price,unit\ngao,18000,kg\nmuoi,9000,gói\n", encoding="utf-8")
    return folder


def test_a_loaded_form_lists_the_files_it_read(form_dir: Path) -> None:
    form = load_questionnaire(form_dir / "market.md")
    assert sorted(form.attachments) == ["items.csv", "prices.csv"]
    assert form.attachments["prices.csv"] == (form_dir / "prices.csv").read_bytes()


async def test_a_restarted_bot_still_answers_a_pulldata_form_and_exports_its_choices(form_dir: Path, tmp_path: Path):
    db = tmp_path / "k.sqlite"
    path = form_dir / "market.md"
    async with await open_storage(db) as storage:
        await Conversations(storage).register(load_questionnaire(path), path.read_bytes(), path.name, AT)
    for csv in form_dir.glob("*.csv"):  # the files are gone: only the database is left
        csv.unlink()
    async with await open_storage(db) as storage:  # a new process: nothing loaded yet
        stored = await storage.get_questionnaire("market", "1")
        assert sorted(stored.attachments) == ["items.csv", "prices.csv"]
        conversations = Conversations(storage)
        form = await conversations.questionnaire("market", "1")
        assert form.warnings == () and [o.name for o in form.question("item").choices] == ["gao", "muoi"]
        session, _ = await conversations.open("tg:1", form, "telegram", "vi", AT)
        await conversations.handle(session.id, E.Start(AT), "k1")
        await conversations.handle(session.id, E.Choose("yes", 1, AT), "k2")
        handled = await conversations.handle(session.id, E.Reply("2", AT), "k3")  # Muối
        assert handled.step.say[-1].text == "Giá 9000 đồng/gói: quý vị mua bao nhiêu gói?"
        await conversations.handle(session.id, E.Reply("3", AT), "k4")
        table = await export_frame(storage, "market")
    assert list(table.df["price"]) == ["9000"] and list(table.df["unit"]) == ["gói"]
    assert list(table.df["item"]) == ["muoi"] and table.value_labels["item"] == {"gao": "Gạo", "muoi": "Muối"}


async def test_saving_again_is_idempotent_adds_missing_files_and_refuses_other_content(tmp_path: Path):
    async with await open_storage(tmp_path / "k.sqlite") as storage:
        source = FORM.encode()
        await storage.save_questionnaire("market", "1", "market.md", source, "t0")  # before files were kept
        again = await storage.save_questionnaire("market", "1", "market.md", source, "t1", {"prices.csv": b"a,b\n"})
        assert again.attachments == {"prices.csv": b"a,b\n"} and again.loaded_at == "t0"
        same = await storage.save_questionnaire("market", "1", "market.md", source, "t2", {"prices.csv": b"a,b\n"})
        assert same == again
        with pytest.raises(QuestionnaireConflict, match="another 'prices.csv'.*bump the form version"):
            await storage.save_questionnaire("market", "1", "market.md", source, "t3", {"prices.csv": b"a,c\n"})
        assert (await storage.get_questionnaire("market", "1")).attachments == {"prices.csv": b"a,b\n"}
