"""The rights-requests page in Chromium: requests with their legal deadlines (Decree 356/2025/NĐ-CP),
overdue marked, scoped to the account's units, fulfilled with a required confirmation, at phone
width; every view and fulfilment audited."""

from __future__ import annotations

import datetime as dt

from surveys.privacy import deadlines
from tests.browser.conftest import NOW

SURVEY = "test-2026"


def open_request(server, respondent_id: int, at: dt.datetime):
    due = deadlines(at.date())

    async def make(storage, stores):
        request, _ = await storage.open_rights_request(
            respondent_id, kind="withdraw_delete", channel="zalo", bot="zl", language="vi", at=at.isoformat(),
            acknowledge_by=due.acknowledge_by.isoformat(), handle_by=due.handle_by.isoformat())
        return request
    return server.call(make)


def test_requests_show_their_deadlines_and_are_fulfilled_in_the_console(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    old = open_request(server, fieldwork.members["citizen/xa-a"][4], NOW - dt.timedelta(days=20))  # overdue
    new = open_request(server, fieldwork.members["citizen/xa-b"][5], NOW)
    server.add_account("xa_b", role="coordinator", surveys=(SURVEY,), units=("xa-b",))
    server.add_account("coord", role="coordinator", surveys=(SURVEY,))

    # A coordinator of commune xa-b sees only that commune's request.
    log_in(page, server, "xa_b")
    page.goto(f"{server.url}/surveys/{SURVEY}/privacy")
    assert page.locator("tr[data-request]").count() == 1
    assert page.locator(f"tr[data-request='{new.id}'] .deadline-handle").inner_text() == \
        f"{NOW.date() + dt.timedelta(days=15):%d/%m/%Y}"
    assert page.locator(f"tr[data-request='{new.id}'] .deadline-ack").inner_text() == "25/08/2026"  # Fri → Tue
    page.context.clear_cookies()  # a fresh sign-in as another account

    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, server, "coord")
    page.goto(f"{server.url}/surveys/{SURVEY}/privacy")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("tr[data-request]").count() == 2
    assert "quá hạn" in page.locator(f"tr[data-request='{old.id}']").inner_text()
    assert "quá hạn" not in page.locator(f"tr[data-request='{new.id}']").inner_text()
    row = page.locator(f"tr[data-request='{old.id}']")
    row.locator("button.fulfil").click()  # the confirmation box is required: nothing happens
    assert page.locator(f"tr[data-request='{old.id}']").get_attribute("data-status") == "open"
    row.locator("input[name=confirm]").check()
    row.locator("button.fulfil").click()
    page.wait_for_selector(".msg.ok")
    assert f"Đã xóa dữ liệu của yêu cầu số {old.id}" in page.content()
    # Nobody holds a chat with that person: the request is closed at once.
    assert page.locator(f"tr[data-request='{old.id}']").get_attribute("data-status") == "closed"
    assert page.locator(f"tr[data-request='{old.id}'] button.fulfil").count() == 0

    async def trail(storage, stores):
        personal = await storage.personal(fieldwork.members["citizen/xa-a"][4])
        log = await storage.privacy_log(request_id=old.id)
        audit = await stores.audit.entries()
        return personal, log, audit
    personal, log, audit = server.call(trail)
    assert personal.name is None and personal.phone is None
    assert [entry["action"] for entry in log] == ["opened", "fulfilled", "closed"]
    assert log[1]["actor"] == "console:coord"
    actions = [entry.action for entry in audit]
    assert "rights_request_fulfilled" in actions and "privacy_requests_viewed" in actions
