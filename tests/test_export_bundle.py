"""One download for an export with companions (`exporters.bundle.handover`): the export itself
when nothing is beside it, else one ZIP of the main file, a table per repeat and the media folder,
under plain relative names. Through the console's export job (downloaded over HTTP from the
console's own route) and the chat's `/export`, on real SQLite with a roster form."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import zipfile
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.chat.coordination import CoordinatorDesk, export_caption
from bot.chat.events import Capabilities, Document
from bot.config import ConsoleConfig
from bot.telegram.render import TelegramRenderer
from fieldwork.conversations import Conversations
from console import fieldwork_texts  # noqa: F401 — the jobs' texts
from console.accounts import create_account
from console.app import make_app
from console.jobs import JobRunner, job_message, result_files
from exporters.bundle import Handover, handover
from fieldwork.data import Exported
from storage import open_storage
from storage.atomic_files import OutputError
from storage.console_db import ConsoleStores
from surveys import engine as E
from surveys.xlsform import load_questionnaire
from tests.test_console_jobs import finished
from tests.test_repeats_export import ICT, build

TOUR = Path(__file__).parent / "forms" / "tour.md"
PASSWORD = "mat-khau-thu-2026"
TELEGRAM = Capabilities(buttons=True, documents=True, text_limit=4096)


def names(archive: Path | bytes) -> list[str]:
    with zipfile.ZipFile(archive if isinstance(archive, Path) else io.BytesIO(archive)) as bundle:
        return bundle.namelist()


# -- the bundling function -----------------------------------------------------------------------


def test_an_export_alone_is_handed_over_as_it_is(tmp_path):
    main = tmp_path / "answers.csv"
    main.write_text("a\n1\n", encoding="utf-8")
    (tmp_path / "answers.xlsx").write_text("another format of the same name")  # not a companion
    (tmp_path / "answers2-member.csv").write_text("another export's")
    handed = handover(main)
    assert handed.path == main and handed.tables == ("answers.csv",) and handed.media == 0 and not handed.bundled
    assert not (tmp_path / "answers.zip").exists()


def test_repeat_tables_and_the_media_folder_go_into_one_zip_under_relative_names(tmp_path):
    main = tmp_path / "answers.csv"
    main.write_text("session\n1\n", encoding="utf-8")
    (tmp_path / "answers-member.csv").write_text("session,name\n1,An\n", encoding="utf-8")
    (tmp_path / "answers-visit.csv").write_text("session,cost\n1,150\n", encoding="utf-8")
    (tmp_path / "other-member.csv").write_text("another export's table")
    media = tmp_path / "answers-media"
    (media / "12" / "photo").mkdir(parents=True)
    (media / "12" / "photo" / "ảnh 1.jpg").write_bytes(b"\xff\xd8 a photo")
    (media / "13").mkdir()
    (media / "13" / "voice.ogg").write_bytes(b"OggS a recording")
    outside = tmp_path.parent / f"{tmp_path.name}-secret.txt"
    outside.write_text("not part of the export")
    os.symlink(outside, media / "13" / "link.txt")  # a link leads outside: left out
    os.symlink(tmp_path.parent, media / "up")

    handed = handover(main)

    assert handed.path == tmp_path / "answers.zip" and handed.bundled
    assert handed.tables == ("answers.csv", "answers-member.csv", "answers-visit.csv") and handed.media == 2
    members = names(handed.path)
    assert members == ["answers.csv", "answers-member.csv", "answers-visit.csv",
                       "answers-media/12/photo/ảnh 1.jpg", "answers-media/13/voice.ogg"]
    assert all(not m.startswith("/") and ".." not in m.split("/") for m in members)
    with zipfile.ZipFile(handed.path) as bundle:
        assert bundle.read("answers-member.csv") == b"session,name\n1,An\n"
        assert bundle.read("answers-media/13/voice.ogg") == b"OggS a recording"
        assert bundle.testzip() is None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left

    (tmp_path / "answers-visit.csv").unlink()  # exported again: the ZIP is replaced whole
    assert names(handover(main).path)[:2] == ["answers.csv", "answers-member.csv"]
    assert "answers-visit.csv" not in names(handover(main).path)


def test_a_zip_that_cannot_be_written_is_one_line_naming_it_and_leaves_nothing(tmp_path):
    main = tmp_path / "answers.csv"
    main.write_text("a\n1\n")
    (tmp_path / "answers-member.csv").write_text("a\n1\n")
    (tmp_path / "answers.zip").mkdir()  # where the ZIP should go
    with pytest.raises(OutputError, match=r"cannot write .*answers\.zip: it is a folder"):
        handover(main)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers-member.csv", "answers.csv", "answers.zip"]


# -- the console's export job and the chat's /export, on a roster form ----------------------------


async def add_tour_session(db: Path) -> None:
    """A form without repeats beside the roster, with one session."""
    async with await open_storage(db) as storage:
        conversations = Conversations(storage)
        form = load_questionnaire(TOUR)
        at = dt.datetime(2026, 8, 2, 9, 0, tzinfo=ICT)
        await conversations.register(form, TOUR.read_bytes(), TOUR.name, at)
        session, _ = await conversations.open("tg:1", form, "tg", "vi", at)
        await conversations.handle(session.id, E.Start(at), "1")


@pytest.fixture(scope="module")
def roster_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "k.sqlite"
    asyncio.run(build(path))
    asyncio.run(add_tour_session(path))
    return path


def rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


async def test_the_console_job_of_a_roster_export_downloads_one_zip_of_its_tables(roster_db):
    db = roster_db
    async with await open_storage(db) as storage, await ConsoleStores.open(db) as stores:
        await create_account(stores, "admin", PASSWORD, role="admin", at="2026-08-02T09:00:00+07:00")
        runner = JobRunner(db, stores.jobs)
        submitted = [await runner.submit("export", params, survey_id="roster-2026", account_id=None)
                     for params in ({"file_format": "csv", "form_id": "roster"},
                                    {"file_format": "xlsx", "form_id": "roster"},
                                    {"file_format": "csv", "form_id": "tour"})]
        roster, workbook, plain = [await finished(stores, job.id) for job in submitted]
        assert [job.status for job in (roster, workbook, plain)] == ["done"] * 3, [roster.message, plain.message]
        # A form with repeats: one ZIP to download, and the page says what is in it.
        assert [p.name for p in result_files(roster)] == ["roster-2026-wide.zip"]
        summary = job_message(roster.message, "en")
        assert summary.startswith("2 rows × ") and summary.endswith(
            " columns (wide, csv); the ZIP holds 4 tables: roster-2026-wide.csv, "
            "roster-2026-wide-crop.csv, roster-2026-wide-member.csv, roster-2026-wide-visit.csv")
        assert "tệp ZIP gồm 4 bảng" in job_message(roster.message, "vi")
        # XLSX holds the repeats as sheets, and a form without repeats has one table: the file itself.
        assert [p.name for p in result_files(workbook)] == ["roster-2026-wide.xlsx"]
        assert [p.name for p in result_files(plain)] == ["roster-2026-wide.csv"]
        assert job_message(plain.message, "en").startswith("1 rows × ") and "ZIP" not in plain.message

        app = make_app(storage, stores, ConsoleConfig(), db, clock=lambda: dt.datetime.now(dt.timezone.utc))
        async with TestServer(app, host="127.0.0.1") as server, \
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            url = str(server.make_url(""))
            page = await (await browser.get(f"{url}/login")).text()
            token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            await browser.post(f"{url}/login", data={"csrf_token": token, "username": "admin", "password": PASSWORD})
            page = await (await browser.get(f"{url}/jobs/{roster.id}")).text()
            assert "4 bảng: roster-2026-wide.csv, roster-2026-wide-crop.csv" in page
            assert f'href="/jobs/{roster.id}/files/roster-2026-wide.zip"' in page
            async with browser.get(f"{url}/jobs/{roster.id}/files/roster-2026-wide.zip") as response:
                assert response.status == 200 and response.content_type == "application/zip"
                assert 'filename="roster-2026-wide.zip"' in response.headers["Content-Disposition"]
                archive = await response.read()
            async with browser.get(f"{url}/jobs/{roster.id}/files/roster-2026-wide.csv") as response:
                assert response.status == 404  # only what the job offers
    assert names(archive) == ["roster-2026-wide.csv", "roster-2026-wide-crop.csv", "roster-2026-wide-member.csv",
                              "roster-2026-wide-visit.csv"]
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        households = rows(bundle.read("roster-2026-wide.csv"))
        members = rows(bundle.read("roster-2026-wide-member.csv"))
        visits = rows(bundle.read("roster-2026-wide-visit.csv"))
        crops = rows(bundle.read("roster-2026-wide-crop.csv"))
    assert [(h["_index"], h["members"], h["names"]) for h in households] == [("1", "2", "An, Bình"), ("2", "1", "Chi")]
    assert [(m["_parent_index"], m["name"], m["age"]) for m in members] == [("1", "An", "40"), ("1", "Bình", "8"),
                                                                            ("2", "Chi", "70")]
    assert [(v["_parent_table_name"], v["_parent_index"], v["cost"]) for v in visits] == [
        ("member", "1", "150"), ("member", "1", "200.5"), ("member", "3", "80")]
    assert [c["crop_name"] for c in crops] == ["Lúa", "Ngô", "Sắn"]


async def test_the_chats_export_of_a_roster_sends_one_zip_and_says_how_many_tables(roster_db, tmp_path):
    async with await open_storage(roster_db) as storage:
        desk = CoordinatorDesk(Conversations(storage), tmp_path / "exports", lambda: dt.datetime(2026, 8, 20, 9, 30))
        [document] = await desk.run("export", "telegram:test:902", TELEGRAM)
    assert isinstance(document, Document) and document.filename.endswith("-902.zip")
    assert Path(document.path).name == document.filename and Path(document.path).is_file()
    assert "3 phiên" in document.caption and "Tệp ZIP gồm 4 bảng" in document.caption
    [call], _ = TelegramRenderer().render([document], "5", "vi")
    assert call.method == "sendDocument" and call.payload["document"] == {"path": document.path,
                                                                         "filename": document.filename}
    stem = document.filename.removesuffix(".zip")
    assert sorted(names(Path(document.path))) == sorted(f"{stem}{tail}.csv" for tail in ("", "-crop", "-member",
                                                                                         "-visit"))


def test_the_chats_caption_counts_the_tables_and_media_files_of_a_zip():
    exported = Exported(Path("a.csv"), 12, 30)
    alone = export_caption(exported, Handover(Path("a.csv"), ("a.csv",), 0))
    assert alone == "Dữ liệu trả lời (mã ẩn danh), 12 phiên."
    assert export_caption(exported, Handover(Path("a.zip"), ("a.csv", "a-member.csv"), 0)) == (
        alone + " Tệp ZIP gồm 2 bảng: bảng chính và một bảng cho mỗi nhóm lặp lại.")
    assert "2 bảng" in (media := export_caption(exported, Handover(Path("a.zip"), ("a.csv", "a-member.csv"), 5)))
    assert "5 tệp đa phương tiện" in media
