"""A household roster typed on the paper entry screen in a real headless Chromium: the blocks of the
printed form, a count that disagrees with the blocks typed flagged on the block as one types
(htmx), corrected, saved; the entry stored keyed per instance; on a phone the blocks fit."""

from __future__ import annotations

import json

import pytest

from tests.browser.conftest import run_async
from tests.test_paper_repeats import NOW, SURVEY, TYPED, build

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect


def dom(key: str) -> str:
    from console.pages.paper_entry import dom_id

    return dom_id(key)


def test_a_roster_is_typed_block_by_block(page, tmp_path, console_server, log_in):
    from fieldwork.paper import print_forms
    from storage import open_storage

    async def printed():
        project, db = await build(tmp_path)
        async with await open_storage(db) as storage:
            done = await print_forms(storage, project, tmp_path / "printed", NOW, pdf=False)
        return db, done.files["csv"].read_text(encoding="utf-8-sig").splitlines()[1].split(",")[-1]

    db, code = run_async(printed)
    server = console_server(db, now=NOW)
    server.add_account("nhap-mot", role="coordinator", surveys=[SURVEY])
    log_in(page, server, "nhap-mot")
    page.goto(f"{server.url}/surveys/{SURVEY}/paper")
    page.fill("#paper-code", code)
    page.keyboard.press("Enter")
    page.wait_for_selector("#entry-form")
    expect(page.locator("fieldset.block[data-depth='0'][data-block^='member']")).to_have_count(8)
    expect(page.locator("#b-member-2 legend").first).to_have_text("Thành viên 2")
    expect(page.locator("#b-member-2 #b-member-2--visit-3")).to_have_count(1)  # nested in its member

    page.fill("#f-hh_size", "2")  # the household says two, three member blocks are typed
    for key, value in TYPED.items():
        if key != "hh_size":
            page.fill(f"#f-{dom(key)}", value)
    expect(page.locator("#v-member-3")).to_have_attribute("data-status", "error")
    expect(page.locator("#v-member-3")).to_contain_text("Khối “Thành viên 3” có nhập, nhưng theo câu 1 chỉ có 2")
    page.fill("#f-hh_size", "3")
    expect(page.locator("#v-member-3")).not_to_have_attribute("data-status", "error")
    expect(page.locator(f"#v-{dom('member[3]/age')}")).to_have_attribute("data-status", "ok")
    page.locator("#f-hh_size").press("Enter")
    expect(page.locator(".msg.ok")).to_contain_text("Đã lưu lần nhập 1")

    async def entry(storage, stores):
        from fieldwork.paper import find_form

        paper = await find_form(storage, code)
        return json.loads((await storage.paper.paper_entries(paper.id))[0].answers)

    assert server.call(entry) == TYPED  # keyed per instance, as a chat session keys its answers

    # On a phone the nested blocks fit the screen: nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.url}/surveys/{SURVEY}/paper")
    page.fill("#paper-code", code)
    page.keyboard.press("Enter")
    page.wait_for_selector("#b-member-8--visit-3")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
