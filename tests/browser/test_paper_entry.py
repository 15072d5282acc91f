"""The paper data-entry screen in a real headless Chromium: find a form by its code with the
keyboard, type every answer as printed codes, see a constraint error and a skip applied as one
types (htmx), save; a second person types it again with one difference; a third action resolves
it and the form becomes a session with mode paper. Without JavaScript the page works by full-page
posts; on a phone nothing scrolls sideways; a coordinator of another commune gets 403; the print
action runs as a background job."""

from __future__ import annotations

import csv
import re
import zipfile

import pytest

from tests.browser.conftest import run_async
from tests.test_paper import ANSWERS, NOW, build_survey

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

SURVEY = "test-2026"


@pytest.fixture
def printed(tmp_path):
    """The test survey with its questionnaires, and paper forms printed for commune xa-a."""
    from fieldwork.paper import print_forms
    from storage import open_storage

    async def build():
        project, db = await build_survey(tmp_path)
        async with await open_storage(db) as storage:
            done = await print_forms(storage, project, tmp_path / "printed", NOW, units=["xa-a"], pdf=False)
        with done.files["csv"].open(encoding="utf-8-sig") as handle:
            codes = [row["form_code"] for row in csv.DictReader(handle)]
        return db, codes

    return run_async(build)


def order() -> list[str]:
    from surveys.xlsform import load_questionnaire
    from tests.test_paper import TEMPLATES

    return [q.name for q in load_questionnaire(TEMPLATES / "sipas_citizen.md").asked]


def open_form(page, server, code: str) -> None:
    page.goto(f"{server.url}/surveys/{SURVEY}/paper")
    expect(page.locator("#paper-code")).to_be_focused()  # the code box has the focus: type, then Enter
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.wait_for_selector("#entry-form")


def type_answers(page, answers: dict[str, str]) -> None:
    """Keyboard only: the first field has the focus; a value (or nothing), then Tab, question by question."""
    for name in order():
        expect(page.locator(f"#f-{name}")).to_be_focused()
        if answers.get(name):
            page.keyboard.type(answers[name])
        page.keyboard.press("Tab")


def test_double_entry_with_a_constraint_error_a_skip_and_a_resolution(page, browser, printed, console_server,
                                                                      log_in):
    db, codes = printed
    server = console_server(db, now=NOW)
    for name in ("nhap-mot", "nhap-hai"):
        server.add_account(name, role="coordinator", surveys=[SURVEY], units=["xa-a"])
    log_in(page, server, "nhap-mot")
    open_form(page, server, codes[0].lower().replace(" ", ""))
    assert page.locator("h1").inner_text().startswith("Nhập lần 1")
    type_answers(page, {**ANSWERS, "nam_sinh": "1890", "co_gop_y": "2", "gy_hinh_thuc": "1"})
    # The engine's verdicts, applied as one types: a constraint error and a skip.
    expect(page.locator("#v-nam_sinh")).to_have_attribute("data-status", "error")
    expect(page.locator("#v-nam_sinh")).to_contain_text("Năm sinh phải từ 1920 đến 2008")
    expect(page.locator("#v-gy_hinh_thuc")).to_have_attribute("data-status", "skip")
    expect(page.locator("#v-gy_hinh_thuc")).to_contain_text("không được lưu")
    expect(page.locator("#v-gy_de_dang")).to_have_attribute("data-status", "skip")
    # Saving with the error is refused in the page, with the same verdict.
    page.locator("#f-nam_sinh").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".msg.error")).to_contain_text("Chưa lưu")
    expect(page.locator("#v-nam_sinh")).to_contain_text("1920")
    page.fill("#f-nam_sinh", "1980")
    page.fill("#f-gy_hinh_thuc", "")
    expect(page.locator("#v-nam_sinh")).to_have_attribute("data-status", "ok")
    page.locator("#f-nam_sinh").press("Enter")
    expect(page.locator(".msg.ok")).to_contain_text("Đã lưu lần nhập 1")

    # The same person cannot type the second entry; someone else does, with one difference.
    open_form(page, server, codes[0])
    assert page.locator("h1").inner_text().startswith("Nhập lần 2")
    assert page.locator("#f-doi_tuong").input_value() == ""  # blind: the first entry is not shown
    type_answers(page, {**ANSWERS, "co_gop_y": "2"})
    page.keyboard.press("Enter")
    expect(page.locator(".msg.error")).to_contain_text("another person")

    other = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    second = other.new_page()
    try:
        log_in(second, server, "nhap-hai")
        open_form(second, server, codes[0])
        type_answers(second, {**ANSWERS, "co_gop_y": "2", "hai_long_chung": "5"})
        second.keyboard.press("Enter")
        expect(second.locator(".msg.warn")).to_contain_text("khác nhau ở 1 câu")

        # The third action: the differences side by side, one picked.
        open_form(second, server, codes[0])
        assert second.locator("h1").inner_text().startswith("Đối chiếu")
        rows = second.locator("#differences tbody tr")
        expect(rows).to_have_count(1)
        assert rows.first.locator(".value").all_inner_texts() == ["4", "5"]
        second.click("text=Lưu kết quả đối chiếu")  # nothing picked yet: refused, nothing written
        expect(second.locator(".msg.error")).to_contain_text("Xin chọn một giá trị")
        second.locator("input[name=pick_hai_long_chung][value='2']").check()
        expect(second.locator("#v-hai_long_chung")).to_have_attribute("data-status", "ok")
        second.click("text=Lưu kết quả đối chiếu")
        expect(second.locator(".msg.ok")).to_contain_text("đã được ghi thành phiên trả lời")
    finally:
        other.close()

    async def stored(storage, stores):
        paper = await storage.paper.paper_form(1)
        session = await storage.get_session(paper.session_id)
        answers = await storage.answers(session.id)
        actions = [e.action for e in await stores.audit.entries(limit=0)]
        return session.channel, session.status, answers["hai_long_chung"].value, actions

    channel, status, overall, actions = server.call(stored)
    assert (channel, status, overall) == ("paper", "completed", '"5"')
    assert actions.count("paper_entry") == 3 and "paper_written" in actions


def test_without_javascript_on_a_phone_and_other_communes_get_403(browser, printed, console_server, log_in):
    db, codes = printed
    server = console_server(db, now=NOW)
    server.add_account("nhap-mot", role="coordinator", surveys=[SURVEY], units=["xa-a"])
    server.add_account("xa-b", role="coordinator", surveys=[SURVEY], units=["xa-b"])
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN", java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, server, "nhap-mot")
        open_form(page, server, codes[1])
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the entry screen fits a phone
        for name in order():
            if ANSWERS.get(name):
                page.fill(f"#f-{name}", ANSWERS[name])
        page.fill("#f-tt_so_lan_di_lai", "7")  # not a code of the question
        with page.expect_response(re.compile(r"/paper/\d+$")) as answer:
            page.click("#entry-form button[type=submit]")
        assert answer.value.status == 400
        assert "“7”" in page.locator("#v-tt_so_lan_di_lai").inner_text()
        assert page.locator("#f-nam_sinh").input_value() == "1980"  # what was typed is kept
        page.fill("#f-tt_so_lan_di_lai", "1")
        page.click("#entry-form button[type=submit]")
        assert "Đã lưu lần nhập 1" in page.locator(".msg.ok").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()

    paper_id = server.call(lambda storage, stores: storage.paper.paper_forms(SURVEY))[1].id
    outsider = browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")
    page = outsider.new_page()
    try:
        log_in(page, server, "xa-b")
        assert page.goto(f"{server.url}/surveys/{SURVEY}/paper/{paper_id}").status == 403
        page.goto(f"{server.url}/surveys/{SURVEY}/paper")
        page.fill("#paper-code", codes[1])
        with page.expect_response(re.compile(r"/paper/find$")) as answer:
            page.keyboard.press("Enter")
        assert answer.value.status == 403
        # Every form needs its CSRF token; the engine check of another commune's form is refused too.
        find = f"{server.url}/surveys/{SURVEY}/paper/find"
        token = page.locator("input[name=csrf_token]").first.get_attribute("value")
        assert page.request.post(find, form={"code": "ZZZZ ZZZZ"}).status == 403  # no token
        assert page.request.post(find, form={"code": "ZZZZ ZZZZ", "csrf_token": token}).status == 404
        check = page.request.post(f"{server.url}/surveys/{SURVEY}/paper/{paper_id}/check",
                                  form={"csrf_token": token, "a_doi_tuong": "1"})
        assert check.status == 403
    finally:
        outsider.close()


def test_printing_from_the_console_gives_a_zip(page, printed, console_server, log_in):
    from fieldwork.invitations import pdf_browser

    db, codes = printed
    server = console_server(db, now=NOW)
    server.add_account("xa-c", role="coordinator", surveys=[SURVEY], units=["xa-c"])
    log_in(page, server, "xa-c")
    page.goto(f"{server.url}/surveys/{SURVEY}/paper")
    page.click("#paper-print-form button[type=submit]")
    job = page.locator(".job").first
    expect(job).to_have_attribute("data-status", re.compile("done|failed"), timeout=120_000)
    assert job.get_attribute("data-status") == "done", job.inner_text()
    with page.expect_download() as info:
        job.locator("a[download]").first.click()
    archive = zipfile.ZipFile(info.value.path())
    assert "paper-forms.html" in archive.namelist() and "paper-forms.csv" in archive.namelist()
    if pdf_browser() is not None:
        assert archive.read("paper-forms.pdf").startswith(b"%PDF")
    rows = archive.read("paper-forms.csv").decode("utf-8-sig").splitlines()[1:]
    assert rows and all(",Phường Cẩm," in row for row in rows)  # only the account's commune


def test_progress_shows_rates_by_mode(page, printed, console_server, log_in):
    """The Progress page has completes and RR1's share per mode, over the account's strata."""
    from fieldwork.paper import find_form, save_entry

    db, codes = printed
    server = console_server(db, now=NOW)

    async def type_twice(storage, stores):
        paper = await find_form(storage, codes[2])
        await save_entry(storage, paper.id, 1, ANSWERS, "vi", account_id=None, username="an", at=NOW)
        await save_entry(storage, paper.id, 2, ANSWERS, "vi", account_id=None, username="binh", at=NOW)

    server.call(type_twice)
    server.add_account("nhap-mot", role="coordinator", surveys=[SURVEY], units=["xa-a"])
    server.add_account("xa-b", role="coordinator", surveys=[SURVEY], units=["xa-b"])
    log_in(page, server, "nhap-mot")
    page.goto(f"{server.url}/surveys/{SURVEY}/progress")
    paper_row = page.locator("#modes tr[data-mode=paper]")
    assert paper_row.locator("td").first.inner_text() == "Giấy"
    assert paper_row.locator("[data-col=completed]").inner_text() == "1"
    sampled = int(page.locator("#strata tbody tr").first.locator("td").nth(2).inner_text())
    assert paper_row.locator("[data-col=rate]").inner_text() == f"{1 / sampled:.0%}"
    page.context.clear_cookies()
    log_in(page, server, "xa-b")  # another commune: none of its people answered on paper
    page.goto(f"{server.url}/surveys/{SURVEY}/progress")
    assert page.locator("#modes tr[data-mode=paper]").count() == 0
