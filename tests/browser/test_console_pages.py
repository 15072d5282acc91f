"""The console's own pages in a real Chromium: progress (same numbers as `khaosat status`, live),
non-respondents (remind now, the CSV to reach), users, audit; scope and roles on every page."""

from __future__ import annotations

import csv
import io

import pytest

from bot.reminders import ReminderBot
from exporters.progress import survey_status
from storage import open_storage
from tests.browser.conftest import NOW, OTHER_SURVEY, answer_in_chat, run_async

SURVEY = "test-2026"


def cells(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(selector, "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")


def status_of(db):
    async def compute():
        async with await open_storage(db) as storage:
            from surveys.project import stored_project

            project = await stored_project(storage, SURVEY)
            return await survey_status(storage, project, NOW)
    return run_async(compute)


def test_progress_shows_the_numbers_of_khaosat_status(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("admin", role="admin")
    log_in(page, server, "admin")
    page.goto(f"{server.url}/surveys/{SURVEY}/progress")
    report = status_of(fieldwork.db)
    shown = {page.locator(f"#strata tr[data-stratum='{r.group}|{r.stratum}']").get_attribute("data-stratum"):
             cells(page, f"#strata tr[data-stratum='{r.group}|{r.stratum}']")[0] for r in report.rows}
    assert len(shown) == len(report.rows)
    share = 21 / 31  # 21 August of 1–31 August
    for row in report.rows:
        values = shown[f"{row.group}|{row.stratum}"]
        assert [int(v) for v in values[2:7]] == [row.sampled, row.invited, row.contacted, row.started,
                                                 row.completed]
        assert int(values[7]) == row.target
        assert int(values[10]) == round(row.target * share)
        assert int(values[11]) == round(row.projection)
        lagging = "lagging" in page.locator(f"#strata tr[data-stratum='{row.group}|{row.stratum}']").get_attribute(
            "class")
        assert lagging == row.lagging
    # xa-a: quota 20, 4 completed by 15 August, pace 4/7 a day → projected 10: lagging and marked.
    assert page.locator("#strata tr[data-stratum='citizen|citizen/xa-a'] .badge").inner_text() == "chậm"
    assert page.locator("table.level[data-level=commune] tr").count() == 1 + 3
    assert page.locator("svg.chart polyline.done").count() == 1


def test_a_scoped_coordinator_sees_only_their_units_and_403_elsewhere(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("officer-a", role="coordinator", surveys=[SURVEY], units=["xa-a"])
    log_in(page, server, "officer-a")
    page.goto(f"{server.url}/")
    assert page.locator("h2 a").evaluate_all("links => links.map(a => a.getAttribute('href'))") == [
        f"/surveys/{SURVEY}/progress"]  # not the other survey
    page.goto(f"{server.url}/surveys/{SURVEY}/progress")
    strata = page.eval_on_selector_all("#strata tbody tr", "rows => rows.map(r => r.dataset.stratum)")
    assert strata == ["citizen|citizen/xa-a", "citizen|*", "*|*"]
    assert "Xã Bình" not in page.content() and "Phường Cẩm" not in page.content()
    # Totals are over their commune only: 4 completed of 30.
    total = cells(page, "#strata tr[data-stratum='*|*']")[0]
    assert total[6] == "4" and total[2] == "30"
    page.goto(f"{server.url}/surveys/{SURVEY}/nonrespondents")
    assert page.eval_on_selector_all("#reasons tbody tr", "rows => rows.map(r => r.dataset.stratum)") == [
        "citizen/xa-a"]
    refused = [
        f"/surveys/{SURVEY}/progress?unit=xa-b",
        f"/surveys/{SURVEY}/progress/live?unit=xa-b",
        f"/surveys/{SURVEY}/progress?unit=tinh-t",  # the province above their commune
        f"/surveys/{SURVEY}/nonrespondents?unit=xa-b",
        f"/surveys/{SURVEY}/nonrespondents?stratum=citizen/xa-c",
        f"/surveys/{SURVEY}/nonrespondents.csv?unit=xa-b",
        f"/surveys/{OTHER_SURVEY}/progress",
        f"/surveys/{OTHER_SURVEY}/progress/live",
        f"/surveys/{OTHER_SURVEY}/nonrespondents",
        f"/surveys/{OTHER_SURVEY}/nonrespondents.csv",
        "/admin/users",
        "/admin/audit",
        "/admin/audit.csv",
    ]
    for path in refused:
        response = page.goto(f"{server.url}{path}")
        assert response.status == 403, path
        assert page.locator("h1").inner_text() == "Không được phép"
    for path in (f"/surveys/{SURVEY}/nonrespondents/remind?unit=xa-b", "/admin/users", "/admin/users/1/disable"):
        token = page.locator("form[action='/logout'] input[name=csrf_token]").get_attribute("value")
        assert page.request.post(f"{server.url}{path}", form={"csrf_token": token}).status == 403, path
    forbidden = server.call(lambda storage, stores: stores.audit.entries(action="forbidden", limit=0))
    assert len(forbidden) == len(refused) + 3
    # Their own unit is fine, and a unit that does not exist is 404.
    assert page.goto(f"{server.url}/surveys/{SURVEY}/progress?unit=xa-a").status == 200
    assert page.goto(f"{server.url}/surveys/{SURVEY}/progress?unit=xa-zz").status == 404


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_viewers_and_analysts_see_progress_but_not_people(page, fieldwork, console_server, log_in, role):
    server = console_server(fieldwork.db)
    server.add_account("someone", role=role, personal=True)
    log_in(page, server, "someone")
    assert page.goto(f"{server.url}/surveys/{SURVEY}/progress").status == 200
    for path in ("nonrespondents", "nonrespondents.csv", "nonrespondents?stratum=citizen/xa-a"):
        assert page.goto(f"{server.url}/surveys/{SURVEY}/{path}").status == 403, path


def test_progress_updates_live_while_people_answer(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db, refresh_seconds=1)
    server.add_account("officer-a", role="coordinator", surveys=[SURVEY], units=["xa-a"])
    log_in(page, server, "officer-a")
    page.goto(f"{server.url}/surveys/{SURVEY}/progress")
    completed = "#strata tr[data-stratum='citizen|citizen/xa-a'] td[data-col=completed]"
    assert page.inner_text(completed) == "4"
    page.evaluate("window.notReloaded = true")
    people = fieldwork.members["citizen/xa-a"][12:15]
    statuses = server.call(lambda storage, stores: answer_in_chat(storage, people, lambda: server.now))
    assert statuses == ["completed"] * 3
    page.wait_for_function(f"() => document.querySelector(\"{completed}\").innerText === '7'")
    assert page.evaluate("window.notReloaded") is True  # the live part changed, not the page
    assert page.inner_text("#strata tr[data-stratum='*|*'] td[data-col=completed]") == "7"
    # Someone who walks away shows up among the non-respondents, stopped at their question.
    walker = fieldwork.members["citizen/xa-a"][15]
    server.call(lambda storage, stores: answer_in_chat(storage, [walker], lambda: server.now, stop_after=4))
    page.goto(f"{server.url}/surveys/{SURVEY}/nonrespondents?stratum=citizen/xa-a")
    assert page.locator("#people-table td[data-reason=stopped]").first.inner_text().startswith("dừng ở câu 4")


def test_send_reminders_now(page, fieldwork, console_server, log_in):
    bot = ReminderBot("telegram", "test-bot", 30.0)
    server = console_server(fieldwork.db, bots=[bot])
    server.add_account("coordinator", role="coordinator", surveys=[SURVEY])
    started = fieldwork.members["citizen/xa-a"][4:6]  # started on 16 August

    async def link(storage, stores):
        for i, rid in enumerate(started):
            await storage.link_chat("telegram", "test-bot", str(1000 + i), rid, "2026-08-16T09:00:00+07:00")
    server.call(link)
    log_in(page, server, "coordinator")
    page.goto(f"{server.url}/surveys/{SURVEY}/nonrespondents")
    page.click("#remind-now")
    page.wait_for_selector(".msg.ok")
    assert page.inner_text(".msg.ok") == "Đã xếp 2 nhắc nhở vào hàng đợi."
    queued = server.call(lambda storage, stores: storage.queued_reminders("telegram", "test-bot"))
    assert queued == 2
    # Once per activity: pressing again queues nobody twice.
    page.click("#remind-now")
    page.wait_for_selector(".msg.ok")
    assert page.inner_text(".msg.ok") == "Đã xếp 0 nhắc nhở vào hàng đợi."
    details = [e.detail for e in server.call(lambda s, stores: stores.audit.entries(action="remind_now"))]
    assert details == ["0 reminder(s) queued", "2 reminder(s) queued"]
    # In quiet hours (21:00–07:00) nothing is queued.
    server.now = NOW.replace(hour=22)
    page.click("#remind-now")
    page.wait_for_selector(".msg.warn >> text=quiet hours")


def test_a_commune_coordinator_reminds_their_commune_only(page, fieldwork, console_server, log_in):
    bot = ReminderBot("telegram", "test-bot", 30.0)
    server = console_server(fieldwork.db, bots=[bot])
    server.add_account("officer-a", role="coordinator", surveys=[SURVEY], units=["xa-a"])
    started_a = fieldwork.members["citizen/xa-a"][4:6]  # started on 16 August
    contacted_b = fieldwork.members["citizen/xa-b"][2:5]

    async def link(storage, stores):
        for rid in contacted_b:
            await storage.set_disposition(rid, "invited", "2026-08-16T09:00:00+07:00")
        for i, rid in enumerate(started_a + contacted_b):
            await storage.link_chat("telegram", "test-bot", str(1000 + i), rid, "2026-08-16T09:00:00+07:00")
            if rid in contacted_b:
                await storage.set_disposition(rid, "contacted", "2026-08-16T09:00:00+07:00")
    server.call(link)

    async def reminded(storage, stores):
        return {rid for rid in started_a + contacted_b if await storage.reminders_of(rid)}
    log_in(page, server, "officer-a")
    page.goto(f"{server.url}/surveys/{SURVEY}/nonrespondents")
    assert page.inner_text("#remind-now").endswith("(2)")
    page.click("#remind-now")
    page.wait_for_selector(".msg.ok")
    assert page.inner_text(".msg.ok") == "Đã xếp 2 nhắc nhở vào hàng đợi."
    assert server.call(reminded) == set(started_a)  # xa-b's contacted people are not theirs
    page.click("#remind-now")  # once per activity
    page.wait_for_selector(".msg.ok")
    assert page.inner_text(".msg.ok") == "Đã xếp 0 nhắc nhở vào hàng đợi."
    # Naming another commune is refused and queues nothing; their own is fine.
    token = page.locator("form[action='/logout'] input[name=csrf_token]").get_attribute("value")
    post = page.request.post(f"{server.url}/surveys/{SURVEY}/nonrespondents/remind?unit=xa-b",
                             form={"csrf_token": token})
    assert post.status == 403
    page.goto(f"{server.url}/surveys/{SURVEY}/nonrespondents?unit=xa-a")
    page.click("#remind-now")
    page.wait_for_selector(".msg.ok")
    assert page.url.endswith("?unit=xa-a&queued=0")
    assert server.call(reminded) == set(started_a)
    details = [e.detail for e in server.call(lambda s, stores: stores.audit.entries(action="remind_now"))]
    assert details == ["0 reminder(s) queued, strata citizen/xa-a"] * 2 + ["2 reminder(s) queued, strata citizen/xa-a"]
    # The whole survey's coordinator then reminds xa-b's people.
    server.add_account("coordinator", role="coordinator", surveys=[SURVEY])
    page.context.clear_cookies()
    log_in(page, server, "coordinator")
    page.goto(f"{server.url}/surveys/{SURVEY}/nonrespondents")
    page.click("#remind-now")
    page.wait_for_selector(".msg.ok")
    assert page.inner_text(".msg.ok") == "Đã xếp 3 nhắc nhở vào hàng đợi."
    assert server.call(reminded) == set(started_a + contacted_b)


@pytest.mark.parametrize("personal", [True, False])
def test_the_list_to_reach_by_letter_or_phone(page, fieldwork, console_server, log_in, personal):
    server = console_server(fieldwork.db)
    server.add_account("coordinator", role="coordinator", surveys=[SURVEY], units=["xa-a"], personal=personal)
    log_in(page, server, "coordinator")
    page.goto(f"{server.url}/surveys/{SURVEY}/nonrespondents")
    with page.expect_download() as download:
        page.click("#download-to-reach")
    text = open(download.value.path(), encoding="utf-8-sig").read()
    rows = list(csv.DictReader(io.StringIO(text)))
    a = fieldwork.members["citizen/xa-a"]
    # Invited or sampled, never in a chat, or unreachable: xa-a's 30 minus 4 completed, 2 started, 2 refused.
    assert sorted(int(r["respondent_id"]) for r in rows) == sorted(a[8:])
    assert {r["stratum"] for r in rows} == {"citizen/xa-a"}
    assert ("name" in rows[0]) == personal and ("phone" in rows[0]) == personal
    if personal:
        assert all(r["name"].startswith("Người xa-a") for r in rows)
    entry = server.call(lambda s, stores: stores.audit.entries(action="download"))[0]
    assert entry.username == "coordinator" and entry.survey_id == SURVEY
    assert entry.detail.startswith(f"non-respondents to reach: {len(rows)} row(s)")
    # Viewing the people of a stratum with their names is audited as a view of personal data.
    page.goto(f"{server.url}/surveys/{SURVEY}/nonrespondents?stratum=citizen/xa-a")
    views = server.call(lambda s, stores: stores.audit.entries(action="personal_viewed"))
    assert len(views) == (1 if personal else 0)
    assert (page.locator("#people-table th", has_text="Điện thoại").count() == 1) == personal


def test_users_page_adds_changes_disables_and_resets(page, browser, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("admin", role="admin")
    log_in(page, server, "admin")
    page.goto(f"{server.url}/admin/users")
    page.click("summary")
    form = page.locator("#add-user")
    form.locator("input[name=username]").fill("officer-b")
    form.locator("input[name=password]").fill("mot-mat-khau-dai")
    form.locator("select[name=role]").select_option("coordinator")
    form.locator("input[name=surveys]").fill(SURVEY)
    form.locator("input[name=units]").fill("xa-b, xa-khong-co")
    form.locator("button").click()
    assert page.inner_text(".msg.error") == "Không có đơn vị trong các khảo sát đã chọn: xa-khong-co."
    assert page.locator("#accounts li[data-username=officer-b]").count() == 0  # nothing written
    form.locator("input[name=password]").fill("mot-mat-khau-dai")
    form.locator("input[name=units]").fill("xa-b")
    form.locator("button").click()
    page.wait_for_selector("#accounts li[data-username=officer-b]")
    # Personal access left "by role": a coordinator gets it, as `khaosat user add` gives it.
    accounts = {a.username: a for a in server.call(lambda s, stores: stores.accounts.list_accounts())}
    assert accounts["officer-b"].personal
    page.click("summary")
    form.locator("input[name=username]").fill("analyst-c")
    form.locator("input[name=password]").fill("mot-mat-khau-dai")
    form.locator("select[name=role]").select_option("coordinator")
    form.locator("input[name=surveys]").fill(SURVEY)
    form.locator("input[name=units]").fill("")
    form.locator("select[name=personal]").select_option("no")
    form.locator("button").click()
    page.wait_for_selector("#accounts li[data-username=analyst-c]")
    accounts = {a.username: a for a in server.call(lambda s, stores: stores.accounts.list_accounts())}
    assert not accounts["analyst-c"].personal
    # The new account logs in elsewhere and sees only xa-b.
    other = browser.new_context().new_page()
    log_in(other, server, "officer-b", "mot-mat-khau-dai")
    other.goto(f"{server.url}/surveys/{SURVEY}/progress")
    assert other.eval_on_selector_all("#strata tbody tr", "rows => rows.map(r => r.dataset.stratum)")[0] == \
        "citizen|citizen/xa-b"
    # Disabling ends their session at once.
    card = page.locator("#accounts li[data-username=officer-b]")
    card.locator("form[action$='/disable'] button").click()
    page.wait_for_selector("#accounts li[data-username=officer-b] .badge")
    other.goto(f"{server.url}/surveys/{SURVEY}/progress")
    assert "/login" in other.url
    # Enabled again with a new password: the old one no longer works.
    page.locator("#accounts li[data-username=officer-b] form[action$='/disable'] button").click()
    card = page.locator("#accounts li[data-username=officer-b]")
    card.locator("form[action$='/password'] input[name=password]").fill("short")
    card.locator("form[action$='/password'] button").click()
    assert page.inner_text(".msg.error") == "Mật khẩu cần ít nhất 10 ký tự."
    card = page.locator("#accounts li[data-username=officer-b]")
    card.locator("form[action$='/password'] input[name=password]").fill("mat-khau-moi-2026")
    card.locator("form[action$='/password'] button").click()
    page.wait_for_selector(".msg.ok")
    log_in(other, server, "officer-b", "mot-mat-khau-dai", expect_home=False)
    assert other.locator(".msg.error").count() == 1
    log_in(other, server, "officer-b", "mat-khau-moi-2026")
    actions = [e.action for e in server.call(lambda s, stores: stores.audit.entries(limit=0))]
    for action in ("user_added", "user_disabled", "user_enabled", "password_reset"):
        assert action in actions


def test_the_audit_page_and_its_csv(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("admin", role="admin")
    log_in(page, server, "admin", "wrong-password", expect_home=False)
    log_in(page, server, "admin")
    page.goto(f"{server.url}/admin/audit")
    assert page.eval_on_selector_all("#audit td[data-action]", "cells => cells.map(c => c.dataset.action)") == [
        "login", "login_failed"]
    # named in the user's language, not by the English ids
    assert page.eval_on_selector_all("#audit td[data-action]", "cells => cells.map(c => c.innerText)") == [
        "đăng nhập", "đăng nhập sai"]
    with page.expect_download() as download:
        page.click("#audit-csv")
    rows = list(csv.DictReader(open(download.value.path(), encoding="utf-8-sig")))
    assert [r["action"] for r in rows] == ["login_failed", "login"]
    assert rows[1]["username"] == "admin" and rows[1]["local_time"] == "21/08/2026 12:00"
    assert server.call(lambda s, stores: stores.audit.entries(limit=1))[0].action == "download"


def test_every_audited_action_has_a_name_for_the_audit_page():
    """A literal action passed to audit() in the console's code is named in both languages."""
    import re
    from pathlib import Path

    from console.i18n import TEXTS
    from console.pages import audit_log  # noqa: F401 — adds the names

    source = "\n".join(p.read_text(encoding="utf-8") for p in Path(audit_log.__file__).parents[1].rglob("*.py"))
    actions = set(re.findall(r'audit\(request, "(\w+)"', source)) | set(re.findall(r'audit\(request, "\w+" if [^,]* else "(\w+)"', source))
    actions |= set(re.findall(r'_upload_job\(request, "\w+", "(\w+)"\)', source))
    assert {"login", "download", "user_enabled", "view", "frame_upload"} <= actions
    unnamed = sorted(a for a in actions if not {"vi", "en"} <= set(TEXTS.get(f"audit_{a}", {})))
    assert unnamed == []


@pytest.mark.parametrize("path", [f"/surveys/{SURVEY}/progress", f"/surveys/{SURVEY}/nonrespondents",
                                  "/admin/users", "/admin/audit", "/"])
def test_no_horizontal_scrolling_on_a_390_pixel_screen(browser, fieldwork, console_server, log_in, path):
    server = console_server(fieldwork.db)
    server.add_account("admin", role="admin")
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    try:
        log_in(page, server, "admin")
        page.goto(f"{server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        if path.endswith("/progress"):
            # the key numbers of a stratum are read without swiping: inside the viewport, not
            # scrolled away inside the table's box
            for column in ("completed", "target", "fill", "expected"):
                box = page.locator(f"#strata tbody tr >> nth=0").locator(f"td[data-col='{column}']").bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (column, box)
    finally:
        context.close()
