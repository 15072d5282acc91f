"""The console's aiohttp application: sessions, CSRF, language, error pages, rendering, audit.

``make_app(...)`` builds it over an open fieldwork ``Storage`` and the console's own stores;
every module in ``console/pages/`` adds its ``routes`` and ``NAV`` (see console/README.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import hmac
import io
import importlib
import logging
import pkgutil
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from bot.config import ConsoleConfig
from bot.reminders import ReminderBot
from storage import Storage
from storage.accounts import Account
from storage.console_db import ConsoleStores

from . import i18n
from .auth import Scope, has_personal, token_hash
from .jobs import job_message

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "khaosat_session"
LOGIN_CSRF_COOKIE = "khaosat_login_csrf"
LANGUAGE_COOKIE = "khaosat_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class NavEntry:
    """A link in the menu. ``path`` may contain ``{survey}`` (shown on a survey's pages only)."""

    text: str  # an i18n key
    path: str
    roles: tuple[str, ...]
    order: int = 50


@dataclass
class Console:
    """What the handlers share (``request.app[CONSOLE]``)."""

    storage: Storage
    stores: ConsoleStores
    config: ConsoleConfig
    database: Path
    clock: Callable[[], dt.datetime]
    #: The bots reminders go through (``[[telegram]]``/``[[zalo]]`` of the configuration).
    bots: Sequence[ReminderBot] = ()
    #: Called after reminders were queued (``khaosat run``: wakes the bots' feeds at once).
    on_reminders_queued: Callable[[], None] = lambda: None
    nav: list[NavEntry] = field(default_factory=list)
    #: Free room for page modules (e.g. the job runner): key → object.
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> str:
        return self.clock().astimezone(dt.timezone.utc).isoformat(timespec="seconds")


CONSOLE = web.AppKey("console", Console)
# Per-request values set by the middlewares and ``@requires``: read them with current_account(),
# csrf_token() and request_scope(). (aiohttp >= 3.12 has typed request keys.)
_RequestKey = getattr(web, "RequestKey", None)
ACCOUNT: Any = _RequestKey("account", object) if _RequestKey else "account"
CSRF: Any = _RequestKey("csrf", str) if _RequestKey else "csrf"
SCOPE: Any = _RequestKey("scope", object) if _RequestKey else "scope"


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE]


def fieldwork_storage(request: web.Request) -> Storage:
    return request.app[CONSOLE].storage


def stores(request: web.Request) -> ConsoleStores:
    return request.app[CONSOLE].stores


def current_account(request: web.Request) -> Account | None:
    return request.get(ACCOUNT)


def request_scope(request: web.Request) -> Scope:
    """The survey, visible units and asked-for unit that ``@requires`` checked for this request."""
    return request[SCOPE]


def csrf_token(request: web.Request) -> str:
    return request.get(CSRF, "")


def language(request: web.Request) -> str:
    lang = request.cookies.get(LANGUAGE_COOKIE)
    return lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE


def client_address(request: web.Request) -> str:
    """The client's address; behind a proxy (``[console] behind_proxy``) the one the proxy saw,
    i.e. the last X-Forwarded-For entry (earlier ones are whatever the client claimed)."""
    if console_of(request).config.behind_proxy:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return request.remote or "?"


async def audit(request: web.Request, action: str, detail: str = "", *, survey_id: str | None = None,
                username: str | None = None) -> None:
    """One line in the audit log: the signed-in account (or ``username``), their address, now."""
    account = current_account(request)
    if survey_id is None and "survey" in request.match_info:
        survey_id = request.match_info["survey"]
    await stores(request).audit.record(
        action, at=console_of(request).now(), account_id=account.id if account else None,
        username=account.username if account else username, address=client_address(request), survey_id=survey_id,
        detail=detail)


# -- rendering -------------------------------------------------------------------------------------

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html", "svg"], default_for_string=True, default=True),
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_environment.filters["local_time"] = i18n.local_time


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


_environment.filters["pct"] = _pct
# A job's stored progress or summary in the reader's language: {{ job.message|job_text(lang) }}.
_environment.filters["job_text"] = job_message


def render_text(request: web.Request, template: str, **context: Any) -> str:
    lang = language(request)
    account = current_account(request)
    survey_id = request.match_info.get("survey")
    allowed = [entry for entry in console_of(request).nav
               if account is not None and (account.role == "admin" or account.role in entry.roles)]
    nav = [entry for entry in allowed if "{survey}" not in entry.path or survey_id is not None]
    csrf = csrf_token(request)
    values = {
        "request": request, "account": account, "lang": lang, "csrf_token": csrf,
        "t": lambda key, **fields: i18n.t(key, lang, **fields),
        "csrf_field": Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf)}">'),
        "nav": [(entry.text, entry.path.replace("{survey}", survey_id or "")) for entry in nav],
        "survey_links": [(entry.text, entry.path) for entry in allowed if "{survey}" in entry.path],
        "survey_id": survey_id, "has_personal": bool(account and has_personal(account)),
        "now": console_of(request).clock(),
    }
    values.update(context)
    return _environment.get_template(template).render(values)


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """The page ``template`` (in console/templates) with the common context (see README)."""
    response = web.Response(text=render_text(request, template, **context), status=status,
                            content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def csv_download(header: Sequence[str], rows, filename: str) -> web.Response:
    """A CSV file to download (UTF-8 with BOM, as Excel opens Vietnamese correctly), never cached.
    Audit it (``audit(request, "download", ...)``) in the handler."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return web.Response(body=("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                 "Cache-Control": "no-store"})


# -- middlewares -----------------------------------------------------------------------------------

_ERROR_PAGES = {403: ("forbidden_title", "forbidden"), 404: ("not_found_title", "not_found")}


@web.middleware
async def error_pages(request: web.Request, handler):
    """403 and 404 as pages in the user's language; anything unexpected is a plain 500 page
    (the traceback goes to the log, never to the browser)."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status == 403 and error.reason == "csrf":
            return render(request, "error.html", status=403, title="csrf_title", message="csrf")
        if error.status in _ERROR_PAGES:
            if error.status == 403:
                await audit(request, "forbidden", f"{request.method} {request.rel_url} ({error.reason})")
            title, message = _ERROR_PAGES[error.status]
            return render(request, "error.html", status=error.status, title=title, message=message)
        raise
    except Exception:  # noqa: BLE001 — the page says something went wrong; the log says what
        log.exception("console: %s %s failed", request.method, request.rel_url)
        return web.Response(status=500, text="500: internal error (see the server log)")


@web.middleware
async def sessions(request: web.Request, handler):
    token = request.cookies.get(SESSION_COOKIE)
    request[ACCOUNT] = None
    request[CSRF] = ""
    if token:
        session = await stores(request).accounts.web_session(token_hash(token), console_of(request).now())
        if session is not None:
            request[ACCOUNT] = session.account
            request[CSRF] = session.csrf
    if request[ACCOUNT] is None:
        # Before login: a double-submit token in its own cookie protects the login form.
        request[CSRF] = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = await handler(request)
    if request[ACCOUNT] is None and not request.cookies.get(LOGIN_CSRF_COOKIE) and isinstance(
            response, web.Response):
        set_cookie(request, response, LOGIN_CSRF_COOKIE, request[CSRF], max_age=None)
    return response


_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@web.middleware
async def csrf(request: web.Request, handler):
    """Every state-changing request carries the session's token, as a form field or a header."""
    if request.method in _UNSAFE:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sent = (await request.post()).get(CSRF_FIELD)
        expected = csrf_token(request)
        if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
            await audit(request, "csrf_refused", f"{request.method} {request.rel_url}")
            raise web.HTTPForbidden(reason="csrf")
    return await handler(request)


def secure_cookies(request: web.Request) -> bool:
    setting = console_of(request).config.secure_cookies
    if setting == "auto":
        return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    return bool(setting)


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, *,
               max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Lax",
                        secure=secure_cookies(request))


@web.middleware
async def security_headers(request: web.Request, handler):
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
    return response


# -- the application -------------------------------------------------------------------------------


def page_modules() -> list[Any]:
    """Every module of console/pages, imported (each has ``routes`` and may have ``NAV``)."""
    from . import pages

    return [importlib.import_module(f"{pages.__name__}.{info.name}")
            for info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda i: i.name)]


def make_app(storage: Storage, stores_: ConsoleStores, config: ConsoleConfig, database: Path, *,
             clock: Callable[[], dt.datetime], bots: Sequence[ReminderBot] = (),
             on_reminders_queued: Callable[[], None] = lambda: None) -> web.Application:
    app = web.Application(middlewares=[security_headers, error_pages, sessions, csrf],
                          client_max_size=config.max_upload_mb * 1024 * 1024)
    console = Console(storage, stores_, config, Path(database), clock, tuple(bots), on_reminders_queued)
    app[CONSOLE] = console
    for module in page_modules():
        app.router.add_routes(module.routes)
        console.nav.extend(getattr(module, "NAV", ()))
        setup = getattr(module, "setup", None)
        if setup is not None:  # a page module's start-up/clean-up (e.g. a job runner)
            setup(app)
    console.nav.sort(key=lambda entry: entry.order)
    app.router.add_static("/static", HERE / "static", append_version=True)
    return app
