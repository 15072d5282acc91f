"""Logging in and out of the console, the login limit, CSRF, the language switch."""

from __future__ import annotations

from console.auth import LOGIN_LIMIT
from tests.browser.conftest import PASSWORD


def audit_actions(server) -> list[str]:
    entries = server.call(lambda storage, stores: stores.audit.entries(limit=0))
    return [entry.action for entry in reversed(entries)]


def test_log_in_see_the_surveys_and_log_out(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("admin", role="admin")
    page.goto(f"{server.url}/surveys/test-2026/progress")
    assert page.url.startswith(f"{server.url}/login")  # signed out: sent to the login page
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation(url=f"{server.url}/surveys/test-2026/progress"):  # back where they were going
        page.click("form[action='/login'] button[type=submit]")
    page.goto(f"{server.url}/")
    assert page.locator("h2 a").evaluate_all("links => links.map(a => a.getAttribute('href'))") == [
        "/surveys/khac-2026/progress", "/surveys/test-2026/progress"]  # an admin sees every survey
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["khaosat_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and not session["secure"]  # http on 127.0.0.1
    page.click("form[action='/logout'] button")
    page.wait_for_url(f"{server.url}/login?bye=1")
    page.goto(f"{server.url}/")
    assert "/login" in page.url
    assert audit_actions(server) == ["login", "logout"]


def test_wrong_password_is_refused(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("admin", role="admin")
    log_in(page, server, "admin", "not-the-password", expect_home=False)
    assert page.locator(".msg.error").inner_text() == "Sai tên đăng nhập hoặc mật khẩu."
    assert page.locator("form[action='/logout']").count() == 0
    log_in(page, server, "nobody", PASSWORD, expect_home=False)  # an unknown name says the same
    assert page.locator(".msg.error").inner_text() == "Sai tên đăng nhập hoặc mật khẩu."
    assert audit_actions(server) == ["login_failed", "login_failed"]


def test_logins_past_the_limit_are_refused_even_with_the_right_password(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("officer", role="coordinator", surveys=["test-2026"])
    for _ in range(LOGIN_LIMIT):
        log_in(page, server, "officer", "guess-guess", expect_home=False)
    log_in(page, server, "officer", PASSWORD, expect_home=False)
    assert "Quá nhiều lần đăng nhập sai" in page.locator(".msg.error").inner_text()
    assert page.locator("form[action='/logout']").count() == 0
    response = page.request.get(f"{server.url}/")
    assert "/login" in response.url
    assert audit_actions(server)[-1] == "login_limited"
    # The limit is per address too: another account from the same address is refused as well.
    server.add_account("other", role="viewer")
    log_in(page, server, "other", PASSWORD, expect_home=False)
    assert "Quá nhiều lần đăng nhập sai" in page.locator(".msg.error").inner_text()


def test_a_post_without_its_csrf_token_is_refused(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("admin", role="admin")
    log_in(page, server, "admin")
    # The logout form with its token removed, submitted by the browser.
    page.evaluate("document.querySelector(\"form[action='/logout'] input[name=csrf_token]\").remove()")
    page.evaluate("document.querySelector('body').removeAttribute('hx-headers')")
    with page.expect_navigation():
        page.click("form[action='/logout'] button")
    assert page.locator("h1").inner_text() == "Biểu mẫu không hợp lệ"
    assert "CSRF" in page.locator(".msg.error").inner_text()
    # Still signed in: the refused logout did nothing.
    page.goto(f"{server.url}/")
    assert page.locator("form[action='/logout']").count() == 1
    # A wrong token is refused too, and so is a login form posted without one.
    response = page.request.post(f"{server.url}/logout", form={"csrf_token": "forged"})
    assert response.status == 403
    response = page.request.post(f"{server.url}/login", form={"username": "admin", "password": PASSWORD})
    assert response.status == 403
    assert audit_actions(server).count("csrf_refused") == 3


def test_the_language_switch_keeps_the_page(page, fieldwork, console_server, log_in):
    server = console_server(fieldwork.db)
    server.add_account("admin", role="admin")
    log_in(page, server, "admin")
    page.goto(f"{server.url}/")
    assert page.locator("h1").inner_text() == "Khảo sát"
    page.click("a[lang=en]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Surveys"
    assert page.locator("html").get_attribute("lang") == "en"


def test_cookies_are_secure_when_configured_and_an_ended_session_redirects_the_live_part(fieldwork, console_server):
    import aiohttp

    from tests.browser.conftest import run_async

    server = console_server(fieldwork.db, secure_cookies=True)
    server.add_account("admin", role="admin")

    async def visit():
        # A Secure cookie never travels over plain http, so this client carries them itself.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as client:
            first = await client.get(f"{server.url}/login")
            page = await first.text()
            token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            login = await client.post(f"{server.url}/login", allow_redirects=False,
                                      headers={"Cookie": f"khaosat_login_csrf={token}"},
                                      data={"csrf_token": token, "username": "admin", "password": PASSWORD})
            live = await client.get(f"{server.url}/surveys/test-2026/progress/live", headers={"HX-Request": "true"})
            return [*first.headers.getall("Set-Cookie"), *login.headers.getall("Set-Cookie")], live.status, \
                live.headers.get("HX-Redirect")

    cookies, status, redirect = run_async(visit)
    for name in ("khaosat_login_csrf=", "khaosat_session="):
        cookie = next(c for c in cookies if c.startswith(name))
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # Without its session, the live part is told to send the whole page to the login page.
    assert (status, redirect) == (401, "/login?next=%2Fsurveys%2Ftest-2026%2Fprogress%2Flive")
