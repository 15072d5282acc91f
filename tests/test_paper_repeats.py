"""Paper forms with repeat groups (tests/forms/roster.md: members counted by an answer, their
visits nested and counted, crops without a count): printed as a block per instance; typed in
through the console's routes (a real console on 127.0.0.1, a real HTTP client, real SQLite) with
three members; a wrong number of blocks refused naming the block, nothing stored; the written
session keyed as a chat session keys it and exported the same as a chat interview."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import aiohttp
import pytest

from fieldwork.paper_entry import check, differences
from fieldwork.paper_form import Copy, FormPrinter
from fieldwork.paper_repeats import Blocks, entry_layout, Field, printed_blocks
from storage import open_storage
from surveys import codec
from surveys.xlsform import load_questionnaire
from tests.survey_toml import survey_toml

ROOT = Path(__file__).resolve().parents[1]
ROSTER = ROOT / "tests" / "forms" / "roster.md"
ZONE = dt.timezone(dt.timedelta(hours=7))
NOW = dt.datetime(2026, 8, 21, 12, 0, tzinfo=ZONE)
T0 = "2026-08-02T08:00:00+07:00"
SURVEY = "ho-2026"
PASSWORD = "mat-khau-thu-2026"

#: A household of three as typed from paper: An (two visits), Bình (none), Chi (one); two crops.
TYPED = {
    "hh_size": "3",
    "member[1]/name": "An", "member[1]/sex": "1", "member[1]/age": "40", "member[1]/visits": "2",
    "member[1]/visit[1]/cost": "150", "member[1]/visit[2]/cost": "200,5",
    "member[2]/name": "Bình", "member[2]/sex": "2", "member[2]/age": "8", "member[2]/visits": "0",
    "member[3]/name": "Chi", "member[3]/sex": "2", "member[3]/age": "70", "member[3]/visits": "1",
    "member[3]/visit[1]/cost": "80",
    "crop[1]/crop_name": "Lúa", "crop[2]/crop_name": "Ngô",
}
#: The same household answered in chat: the replies after consent, in the order the engine asks.
CHAT_REPLIES = ["3", "An", "1", "40", "2", "150", "200,5", "Bình", "2", "8", "0", "Chi", "2", "70", "1", "80",
                "Lúa", "có", "Ngô", "không"]


@pytest.fixture(scope="module")
def roster():
    return load_questionnaire(ROSTER)


# -- printing ------------------------------------------------------------------------------------

def blocks_of(page: str, prefix: str) -> list[str]:
    return re.findall(rf'<div class="instance" data-block="({re.escape(prefix)}\[\d+\])"', page)


def test_a_roster_prints_a_block_per_instance_nested_in_its_parent(roster):
    page = FormPrinter(roster).copy(Copy("AAAA BBBB", "Hộ gia đình"))
    # hh_size's constraint says at most 8 people: 8 member blocks; visits at most 3: 3 per member.
    assert blocks_of(page, "member") == [f"member[{n}]" for n in range(1, 9)]
    for n in range(1, 9):
        assert blocks_of(page, f"member[{n}]/visit") == [f"member[{n}]/visit[{v}]" for v in (1, 2, 3)]
    # The crops have no count: the default number of blank blocks at the top level.
    assert blocks_of(page, "crop") == [f"crop[{n}]" for n in range(1, 6)]
    # Headings name the instance; a visit block is inside its member's block, before the next member.
    assert '<span class="vi">Thành viên 1</span><span class="en">Member 1</span>' in page
    assert page.index('data-block="member[2]/visit[3]"') < page.index('data-block="member[3]"')
    assert page.index('data-block="member[1]"') < page.index("Lần khám 1") < page.index('data-block="member[2]"')
    # The instruction, and the count it must agree with, in both languages.
    assert "Mỗi thành viên một khối; điền số khối bằng câu 1; để trống các khối không dùng." in page
    assert "One block per member; fill as many blocks as Q1; leave unused blocks empty." in page
    assert "Mỗi cây trồng một khối, điền theo thứ tự; để trống các khối không dùng" in page
    # ${pos} (position(..)) is the block's number; ${name} points to its question.
    assert "Tên người thứ 3?" in page and "Name of person 3?" in page and "Giới tính của (câu 2)?" in page
    assert "${" not in page
    # Every question of a block is printed once per block, numbered as in every other block.
    assert page.count('<b class="num">2.</b>') == 8 and page.count('<b class="num">6.</b>') == 24
    # What the entry screen offers is what was printed, field for field.
    fields = [item for item in entry_layout(roster) if isinstance(item, Field)]
    assert page.count('class="q"') == len(fields) == 1 + 8 * 4 + 8 * 3 + 5


def test_block_numbers_follow_a_literal_count_or_the_settings(markdown_form):
    form = markdown_form(
        "| survey |\n| | type | name | label | repeat_count |\n"
        "| | begin repeat | child | Con | 2 |\n| | text | cname | Tên con? | |\n"
        "| | begin repeat | job | Việc làm | |\n| | text | jname | Việc? | |\n| | end repeat | | | |\n"
        "| | end repeat | | | |\n"
        "| | integer | n | Mấy xe? | |\n| | begin repeat | bike | Xe | ${n} |\n| | text | brand | Hiệu? | |\n"
        "| | end repeat | | | |\n")
    assert printed_blocks(form, "child") == 2  # a number: exactly that many
    assert printed_blocks(form, "job") == 3 and printed_blocks(form, "job", Blocks(top=6, nested=2)) == 2
    assert printed_blocks(form, "bike") == 5 and printed_blocks(form, "bike", Blocks(top=7)) == 7  # no bound
    page = FormPrinter(form, blocks=Blocks(top=4, nested=2)).copy(Copy("AAAA BBBB", "t"))
    assert blocks_of(page, "child") == ["child[1]", "child[2]"] and len(blocks_of(page, "bike")) == 4
    assert blocks_of(page, "child[2]/job") == ["child[2]/job[1]", "child[2]/job[2]"]
    assert "Mỗi con một khối (2 khối)." in page


async def test_print_forms_writes_the_roster_blocks_and_a_pdf(tmp_path):
    from fieldwork.paper import print_forms

    project, db = await build(tmp_path)
    async with await open_storage(db) as storage:
        printed = await print_forms(storage, project, tmp_path / "out", NOW, blocks=Blocks(top=4),
                                    pdf=bool(shutil.which("chromium")))
    page = printed.files["html"].read_text(encoding="utf-8")
    assert page.count('<section class="paper">') == printed.count == 3
    assert page.count('data-block="crop[4]"') == 3 * 2  # the block and its question, on each copy
    assert 'data-block="crop[5]"' not in page
    if shutil.which("chromium"):
        assert printed.files["pdf"].read_bytes().startswith(b"%PDF")


# -- checking what is typed ------------------------------------------------------------------------

def test_blocks_typed_are_the_instances_and_must_agree_with_the_count(roster):
    checked = check(roster, TYPED, NOW, "vi")
    assert checked.ok and checked.instances == {"member": 3, "member[1]/visit": 2, "member[2]/visit": 0,
                                                "member[3]/visit": 1, "crop": 2}
    assert checked.status["member[2]/age"] == "ok" and checked.status["member[4]/name"] == "unused"
    # The count says four people, three blocks are typed: the empty block is named.
    four = check(roster, {**TYPED, "hh_size": "4"}, NOW, "vi")
    assert not four.ok and four.errors == {"member[4]": "Khối “Thành viên 4” để trống, nhưng theo câu 1 có 4 khối "
                                                        "“Thành viên”: xin nhập khối này, hoặc sửa câu 1."}
    # Two people, three blocks typed: the block beyond the count is named.
    two = check(roster, {**TYPED, "hh_size": "2"}, NOW, "en")
    assert two.errors == {"member[3]": "Block “Member 3” is filled, but Q1 gives only 2 block(s) of “Member”: clear "
                                       "this block, or correct Q1."}
    # A nested count: An's visits say 1, two visit blocks are typed.
    nested = check(roster, {**TYPED, "member[1]/visits": "1"}, NOW, "vi")
    assert list(nested.errors) == ["member[1]/visit[2]"] and "Thành viên 1 › Lần khám 2" in nested.errors[
        "member[1]/visit[2]"]
    # An open repeat: a block typed after an empty one.
    gap = check(roster, {**TYPED, "crop[4]/crop_name": "Sắn"}, NOW, "vi")
    assert gap.errors == {"crop[4]": "Khối “Cây trồng 4” có nhập nhưng khối “Cây trồng 3” trước nó để trống: xin "
                                     "nhập các khối theo thứ tự."}
    # Inside a block, the engine's own rules: a constraint, and `required`.
    old = check(roster, {**TYPED, "member[2]/age": "130"}, NOW, "vi")
    assert list(old.errors) == ["member[2]/age"] and old.status["member[2]/name"] == "ok"
    nameless = check(roster, {k: v for k, v in TYPED.items() if k != "member[3]/name"}, NOW, "vi")
    assert list(nameless.errors) == ["member[3]/name"]
    # Two entries compare block by block.
    assert differences(roster, TYPED, {**TYPED, "member[3]/age": "71", "crop[3]/crop_name": "Sắn"}) == \
        ["member[3]/age", "crop[3]/crop_name"]


# -- typing through the console --------------------------------------------------------------------

async def build(tmp_path: Path):
    """A survey of three households (one commune) with the roster form, sample drawn."""
    from fieldwork.surveys import check_survey, store_checked
    from surveys.sampling import draw_sample, import_frame_file

    db = tmp_path / "roster.sqlite"
    toml = tmp_path / "survey.toml"
    toml.write_text(survey_toml(SURVEY, "Khảo sát hộ gia đình", "roster"), encoding="utf-8")
    frame = tmp_path / "frame.csv"
    frame.write_text("id,group,unit,name,phone\n" + "".join(f"h{i},citizen,xa-a,Hộ {i},090000000{i}\n"
                                                            for i in range(3)), encoding="utf-8")
    async with await open_storage(db) as storage:
        loaded = await store_checked(storage, check_survey(toml, (ROSTER,)), dt.datetime.fromisoformat(T0))
        await import_frame_file(storage, loaded.project, frame, T0)
        await draw_sample(storage, loaded.project, 1, T0)
    return loaded.project, db


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies of 127.0.0.1 too


def token(page: str) -> str:
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


async def log_in(client: aiohttp.ClientSession, url: str, username: str) -> None:
    async with client.get(f"{url}/login") as response:
        page = await response.text()
    async with client.post(f"{url}/login", data={"csrf_token": token(page), "username": username,
                                                 "password": PASSWORD}) as response:
        assert response.status == 200 and "/login" not in str(response.url)


async def post_entry(client, url: str, paper_id: int, pass_number: int, typed: dict[str, str], **extra):
    async with client.get(f"{url}/surveys/{SURVEY}/paper/{paper_id}") as response:
        page = await response.text()
    data = {"csrf_token": token(page), "pass": str(pass_number), "language": "vi",
            **{f"a_{key}": value for key, value in typed.items()}, **extra}
    async with client.post(f"{url}/surveys/{SURVEY}/paper/{paper_id}", data=data) as response:
        return response.status, await response.text(), str(response.url)


async def chat_interview(storage, form) -> int:
    """The same household answered in chat, through the chat's step path; its session id."""
    from fieldwork.conversations import Conversations
    from surveys import engine as E

    conversations = Conversations(storage)
    session, _ = await conversations.open("tg:77", form, "telegram", "vi", NOW)
    await conversations.handle(session.id, E.Start(NOW), "tg:77:start")
    for n, reply in enumerate(["consent", *CHAT_REPLIES]):
        _, state = await conversations.state(session.id)
        event = E.Choose("yes", state.seq, NOW) if reply == "consent" else E.Reply(reply, NOW, state.seq)
        assert (await conversations.handle(session.id, event, f"tg:77:{n}")).step.accepted, (reply, state.current)
    assert (await conversations.state(session.id))[1].status is E.Status.COMPLETED
    return session.id


async def test_a_roster_typed_twice_in_the_console_is_stored_and_exported_as_a_chat_interview(tmp_path, roster):
    from console.accounts import create_account
    from console.server import start_console
    from bot.config import ConsoleConfig
    from exporters.table import export_frame
    from fieldwork.paper import print_forms
    from storage.console_db import ConsoleStores

    project, db = await build(tmp_path)
    async with await ConsoleStores.open(db) as stores:
        for name in ("nhap-mot", "nhap-hai"):
            await create_account(stores, name, PASSWORD, role="coordinator", at=T0, surveys=(SURVEY,))
    async with await open_storage(db) as storage:
        printed = await print_forms(storage, project, tmp_path / "out", NOW, pdf=False)
        code = printed.files["csv"].read_text(encoding="utf-8-sig").splitlines()[1].split(",")[-1]
        running = await start_console(ConsoleConfig(host="127.0.0.1", port=0), storage, db, clock=lambda: NOW)
        url = running.url.rstrip("/")
        try:
            async with client() as first, client() as second:
                await log_in(first, url, "nhap-mot")
                async with first.get(f"{url}/surveys/{SURVEY}/paper") as response:
                    page = await response.text()
                async with first.post(f"{url}/surveys/{SURVEY}/paper/find",
                                      data={"csrf_token": token(page), "code": code}) as response:
                    paper_id = int(str(response.url).rsplit("/", 1)[-1])
                    page = await response.text()
                # The entry screen: a block per printed member, its visits inside, fields keyed per instance.
                assert re.findall(r'data-block="(member\[\d+\])"', page) == [f"member[{n}]" for n in range(1, 9)]
                assert 'name="a_member[2]/visit[3]/cost"' in page and 'id="f-member-2--visit-3--cost"' in page
                assert "<legend>Thành viên 3</legend>" in page and "Tên người thứ 3?" in page

                # A fourth member block typed while the household has three: refused, the block named.
                extra = {"member[4]/name": "Dũng", "member[4]/sex": "1", "member[4]/age": "5",
                         "member[4]/visits": "0"}
                status, page, _ = await post_entry(first, url, paper_id, 1, {**TYPED, **extra})
                assert status == 400 and "Chưa lưu" in page
                assert "Khối “Thành viên 4” có nhập, nhưng theo câu 1 chỉ có 3 khối “Thành viên”" in page
                assert '>Dũng</textarea>' in page  # what was typed is kept on the page
                # A household of four with three blocks typed: the empty block named.
                status, page, _ = await post_entry(first, url, paper_id, 1, {**TYPED, "hh_size": "4"})
                assert status == 400 and "Khối “Thành viên 4” để trống" in page
                assert await storage.paper.paper_entries(paper_id) == []  # nothing stored

                # “Add a block” shows one more crop block, stores nothing.
                status, page, _ = await post_entry(first, url, paper_id, 1, TYPED, n_crop="5", more="1",
                                                   more_path="crop")
                assert status == 200 and 'data-block="crop[6]"' in page and '>Ngô</textarea>' in page
                assert await storage.paper.paper_entries(paper_id) == []

                status, _, landed = await post_entry(first, url, paper_id, 1, TYPED)
                assert status == 200 and "saved=1" in landed
                await log_in(second, url, "nhap-hai")
                retyped = {**TYPED, "member[2]/name": " Bình ", "member[1]/visit[2]/cost": "200,5"}
                status, _, landed = await post_entry(second, url, paper_id, 2, retyped)
                assert status == 200 and "written=" in landed
                paper = await storage.paper.paper_form(paper_id)
                stored = await storage.answers(paper.session_id)
                # Idempotent: the same entry again changes nothing (the form is a session already).
                status, _, landed = await post_entry(second, url, paper_id, 2, retyped)
                assert status == 200 and f"written={paper.session_id}" in landed
                assert await storage.answers(paper.session_id) == stored
                assert len(await storage.paper.paper_entries(paper_id)) == 2
        finally:
            await running.stop()

        session = await storage.get_session(paper.session_id)
        assert (session.channel, session.status) == ("paper", "completed")
        answers = {k: codec.decode_value(a.value) for k, a in (await storage.answers(session.id)).items()}
        state = codec.decode_state(session.state)
        assert dict(state.instances) == {"member": 3, "member[1]/visit": 2, "member[2]/visit": 0,
                                         "member[3]/visit": 1, "crop": 2}
        chat_id = await chat_interview(storage, roster)
        chat = {k: codec.decode_value(a.value) for k, a in (await storage.answers(chat_id)).items()}
        chat_state = codec.decode_state((await storage.get_session(chat_id)).state)
        assert dict(chat_state.instances) == dict(state.instances)
        stamps = {"start", "end", "today"}
        assert {k: v for k, v in answers.items() if k not in stamps} == {k: v for k, v in chat.items()
                                                                        if k not in stamps}
        assert answers["member[1]/visit[2]/cost"] == 200.5 and answers["member[3]/name"] == "Chi"
        assert answers["names"] == "An, Bình, Chi" and answers["total_cost"] == 430.5

        table = await export_frame(storage, "roster")
    main = table.df.set_index("session")
    assert list(main.loc[session.id, ["members", "names", "oldest", "total_cost", "first_name"]]) == \
        list(main.loc[chat_id, ["members", "names", "oldest", "total_cost", "first_name"]]) == \
        [3, "An, Bình, Chi", 70, 430.5, "An"]
    assert main.loc[session.id, "mode"] == "paper"
    ids = ["_index", "_parent_index", "respondent", "session"]
    for repeat in ("member", "visit", "crop"):
        rows = table.repeats[repeat].df
        on_paper = rows[rows["session"] == session.id].drop(columns=ids).reset_index(drop=True)
        in_chat = rows[rows["session"] == chat_id].drop(columns=ids).reset_index(drop=True)
        assert on_paper.equals(in_chat), repeat
    members = table.repeats["member"].df
    assert list(members[members["session"] == session.id]["name"]) == ["An", "Bình", "Chi"]
    visits = table.repeats["visit"].df
    assert list(visits[visits["session"] == session.id]["cost"]) == [150.0, 200.5, 80.0]


async def test_two_entries_that_differ_in_a_block_are_resolved_in_the_console(tmp_path):
    """Entry 1 and entry 2 differ in one member's age: the resolution lists that field under its
    block, and the picked value is written to that instance."""
    from console.accounts import create_account
    from console.server import start_console
    from bot.config import ConsoleConfig
    from fieldwork.paper import find_form, print_forms, save_entry
    from storage.console_db import ConsoleStores

    project, db = await build(tmp_path)
    async with await ConsoleStores.open(db) as stores:
        await create_account(stores, "doi-chieu", PASSWORD, role="coordinator", at=T0, surveys=(SURVEY,))
    async with await open_storage(db) as storage:
        printed = await print_forms(storage, project, tmp_path / "out", NOW, pdf=False)
        paper = await find_form(storage, printed.files["csv"].read_text(encoding="utf-8-sig").splitlines()[1]
                                .split(",")[-1])
        await save_entry(storage, paper.id, 1, TYPED, "vi", account_id=None, username="an", at=NOW)
        saved = await save_entry(storage, paper.id, 2, {**TYPED, "member[3]/age": "71"}, "vi", account_id=None,
                                 username="binh", at=NOW)
        assert saved.differing == ("member[3]/age",) and not saved.written
        running = await start_console(ConsoleConfig(host="127.0.0.1", port=0), storage, db, clock=lambda: NOW)
        url = running.url.rstrip("/")
        try:
            async with client() as browser:
                await log_in(browser, url, "doi-chieu")
                async with browser.get(f"{url}/surveys/{SURVEY}/paper/{paper.id}") as response:
                    page = await response.text()
                assert response.status == 200 and "Đối chiếu" in page
                assert "Thành viên 3</span><br><b>4.</b> Tuổi của (câu 2)?" in page
                assert 'name="pick_member[3]/age"' in page and 'id="v-member-3--age"' in page
                async with browser.post(f"{url}/surveys/{SURVEY}/paper/{paper.id}",
                                        data={"csrf_token": token(page), "pass": "3", "language": "vi",
                                              "pick_member[3]/age": "2"}) as response:
                    assert response.status == 200 and "written=" in str(response.url)
        finally:
            await running.stop()
        session_id = (await storage.paper.paper_form(paper.id)).session_id
        answers = await storage.answers(session_id)
        assert codec.decode_value(answers["member[3]/age"].value) == 71
        assert codec.decode_value(answers["oldest"].value) == 71


async def test_cli_prints_the_blank_blocks_asked_for(tmp_path):
    import subprocess
    import sys

    _, db = await build(tmp_path)
    out = tmp_path / "forms"
    run = subprocess.run([sys.executable, "-m", "bot.cli", "paper", "print", "--db", str(db), "--out", str(out),
                          "--no-pdf", "--blocks", "2", "--nested-blocks", "1"], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 0, run.stderr
    page = (out / "paper-forms.html").read_text(encoding="utf-8")
    copy = page.split('<section class="paper">')[1]
    assert blocks_of(copy, "crop") == ["crop[1]", "crop[2]"]  # no count: --blocks
    assert len(blocks_of(copy, "member")) == 8  # bounded by hh_size's constraint, whatever --blocks says
    bad = subprocess.run([sys.executable, "-m", "bot.cli", "paper", "print", "--db", str(db), "--out", str(out),
                          "--blocks", "0"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--blocks" in bad.stderr


def test_keys_that_name_no_field_are_not_typed_values(roster):
    from fieldwork.paper_repeats import question_at, typed_fields

    for key in ("member[0]/age", "member[2]/nothing", "member[2]/visit[1]", "hh_size[2]/x", "member[2]/__more__",
                "crop[1]/name"):
        assert question_at(roster, key) is None, key
    far = check(roster, {**TYPED, "member[999]/age": "3"}, NOW, "vi")
    assert list(far.errors) == ["member[999]"]  # a block far beyond the count: named, not a crash
    keys = [key for key, _ in typed_fields(roster, {"member[2]/nothing": "x"})]
    assert "member[2]/nothing" not in keys and keys[0] == "hh_size"
