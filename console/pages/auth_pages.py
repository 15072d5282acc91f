"""Log in (rate-limited per account and per address, audited), log out, switch language."""

from __future__ import annotations

import datetime as dt
import secrets

from aiohttp import web

from console import i18n
from console.app import (ACCOUNT, LANGUAGE_COOKIE, current_account, SESSION_COOKIE, audit, client_address, console_of, render, set_cookie,
                         stores)
from console.auth import LOGIN_LIMIT, LOGIN_WINDOW, new_token, safe_next, token_hash, verify_password

routes = web.RouteTableDef()


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    if current_account(request) is not None:
        raise web.HTTPFound(safe_next(request.query.get("next")))
    return render(request, "login.html", next=safe_next(request.query.get("next")), error=None, username="")


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    console = console_of(request)
    address = client_address(request)
    since = (console.clock() - LOGIN_WINDOW).astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    by_account, by_address = await stores(request).accounts.failed_logins_since(username, address, since)
    if by_account >= LOGIN_LIMIT or by_address >= LOGIN_LIMIT:
        await audit(request, "login_limited", f"{by_account} failure(s) for the account, {by_address} from the address",
                    username=username)
        minutes = int(LOGIN_WINDOW.total_seconds() // 60)
        return render(request, "login.html", status=429, next=target, username=username,
                      error=("login_limited", {"minutes": minutes}))
    account = await stores(request).accounts.account_by_username(username)
    ok = await verify_password(account, password) and account is not None and not account.disabled
    await stores(request).accounts.record_login_attempt(username, address, ok, console.now())
    if not ok:
        await audit(request, "login_failed", "disabled account" if account and account.disabled else "",
                    username=username)
        return render(request, "login.html", status=401, next=target, username=username, error=("login_failed", {}))
    token, hashed = new_token()
    hours = console.config.session_hours
    expires = console.clock() + dt.timedelta(hours=hours)
    await stores(request).accounts.create_session(
        hashed, account.id, secrets.token_urlsafe(32), at=console.now(),
        expires_at=expires.astimezone(dt.timezone.utc).isoformat(timespec="seconds"), address=address)
    request[ACCOUNT] = account
    await audit(request, "login")
    response = web.HTTPFound(target)
    set_cookie(request, response, SESSION_COOKIE, token, max_age=hours * 3600)
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        if current_account(request) is not None:
            await audit(request, "logout")
        await stores(request).accounts.delete_session(token_hash(token))
    response = web.HTTPFound("/login?bye=1")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


@routes.get("/lang/{lang}")
async def switch_language(request: web.Request) -> web.Response:
    lang = request.match_info["lang"]
    if lang not in i18n.LANGUAGES:
        raise web.HTTPNotFound()
    response = web.HTTPFound(safe_next(request.query.get("next")))
    set_cookie(request, response, LANGUAGE_COOKIE, lang, max_age=365 * 24 * 3600)
    raise response
