"""The web channel's pages: aiohttp, server-rendered, a few KB each, usable without JavaScript.

Routes (all under ``/s/``):

- ``GET /s/<code>``: the invitation link or QR code (or an open-mode keyword on a public QR
  code). Links this browser through the core, then redirects to ``/s/`` so the code does not
  stay in the address bar or the history.
- ``GET /s/``: the page of this browser: the question on screen (one at a time, with progress
  and back), what the core last said, or the code form for a browser nobody is linked to.
- ``POST /s/``: an answer or a button (back, skip, stop, language, data rights…), then a
  redirect to ``GET /s/`` (post-redirect-get: a reload never answers twice). htmx, where it
  loads, only boosts these forms into in-page requests. The data rights button on every page
  sends the core's ``/privacy``; the buttons under its texts send its withdrawal command (the
  core marks which text is which step: ``Notice.rights``). A language chosen before the browser
  is linked is a ``vi``/``en`` cookie, handed to the core as ``/lang`` once linked.

Every POST carries a CSRF token derived from the browser's token (under a secret derived from
the data key, so it outlives a restart); wrong codes are limited per address and in all
(``GuessLimit``), beside the core's per-chat limit; the headers are the console's (no framing,
no sniffing, same-origin everything).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from bot.chat.events import ConfirmStop, Command, Notice
from bot.form_media import FormMedia, MediaKey, media_path, media_type
from bot.text import plain_text
from surveys.markup import render_html
from bot.web.channel import Screen, WebChannel, parse_form, screen_of
from bot.web.uploads import FILE_FIELD, Refused as UploadRefused, getall_of, media_event, read_upload
from surveys.engine import Ask, PromptKind, Say, Tone
from surveys.expected import typed_date
from storage.errors import StorageError
from surveys.messages import UI_LANGUAGES, say, ui_language

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
#: The console's vendored htmx, served here too when it is installed beside us ("where present").
HTMX = HERE.parent.parent / "console" / "static" / "htmx.min.js"
COOKIE = "khaosat_web"
#: The language chosen before the browser is linked (only "vi" or "en": no personal data), handed
#: to the core as its language command once the browser is linked.
LANG_COOKIE = "khaosat_lang"
CSRF_FIELD = "csrf_token"
_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_COOKIE_DAYS = 180


@dataclass(frozen=True)
class WebSettings:
    secure_cookies: bool | str = "auto"
    behind_proxy: bool = False


WEB = web.AppKey("web_channel", WebChannel)
SETTINGS = web.AppKey("web_settings", WebSettings)
SECRET = web.AppKey("web_secret", bytes)
#: The stylesheet's and htmx's addresses, worked out once (a versioned URL hashes the file).
ASSETS = web.AppKey("web_assets", dict)
MEDIA = web.AppKey("web_form_media", FormMedia)

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True)


# -- helpers -----------------------------------------------------------------------------------------


def _token(request: web.Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return token if token and re.fullmatch(r"[A-Za-z0-9_-]{20,64}", token) else None


def _csrf(request: web.Request, token: str) -> str:
    return hmac.new(request.app[SECRET], token.encode(), hashlib.sha256).hexdigest()[:32]


def _address(request: web.Request) -> str:
    if request.app[SETTINGS].behind_proxy:
        forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
        if forwarded:
            return forwarded[-1]
    return request.remote or "?"


def _set_cookie(request: web.Request, response: web.StreamResponse, token: str, name: str = COOKIE) -> None:
    setting = request.app[SETTINGS].secure_cookies
    secure = (request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https") \
        if setting == "auto" else bool(setting)
    response.set_cookie(name, token, max_age=_COOKIE_DAYS * 86400, path="/s", httponly=True, samesite="Lax",
                        secure=secure)


def _chosen_language(request: web.Request) -> str | None:
    chosen = request.cookies.get(LANG_COOKIE)
    return chosen if chosen in UI_LANGUAGES else None


def _page_language(request: web.Request) -> str:
    """What the core speaks to this browser while nobody is linked to it."""
    return _chosen_language(request) or "vi"


async def _carry_language(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """The browser was just linked: the language chosen before becomes the survey's (through the
    core's language command), and the cookie has done its job."""
    chosen = _chosen_language(request)
    if chosen is None:
        return
    channel = request.app[WEB]
    if await channel.linked(token):
        if chosen != "vi":
            await channel.handle(token, [Command("lang", chosen)])
        response.del_cookie(LANG_COOKIE, path="/s")


def _see_page() -> web.HTTPSeeOther:
    return web.HTTPSeeOther("/s/", headers={"Cache-Control": "no-store"})


def _said(outputs, language: str) -> list[dict[str, Any]]:
    items = []
    for output in outputs:
        if isinstance(output, ConfirmStop):
            items.append({"kind": "confirm", "text": output.text, "seq": output.seq, "yes": output.yes,
                          "no": output.no})
        elif isinstance(output, Say):
            items.append({"kind": output.tone.value, "text": Markup(render_html(output.text)),
                          "media": _media(output.media)})
        elif isinstance(output, Notice):
            # ``rights``: the data rights step this text is, which says the buttons under it
            # The page confirms with a button under the text, not by typing "/xoa có" as a chat does.
            text = say("rights_confirm_button", ui_language(language)) if output.rights == "confirm" else output.text
            items.append({"kind": "info", "text": text, "rights": output.rights})
    return items


def _media(media) -> list[dict[str, str]]:
    """A label's image, audio or video as the page shows them (`<img>`, `<audio>`, `<video>`), from
    the server's own media route."""
    return [{"kind": m.kind, "url": media_path(m), "type": media_type(m.name)} for m in media]


def _field(ask: Ask) -> tuple[str, str]:
    """The input's attributes by the question's type, and its value (the answer given before)."""
    value = plain_text(ask.current_answer) if ask.current_answer else ""
    if ask.kind is PromptKind.INTEGER:
        return 'type="text" inputmode="numeric" pattern="-?[0-9]*" autocomplete="off"', value
    if ask.kind is PromptKind.DECIMAL:
        return 'type="text" inputmode="decimal" autocomplete="off"', value
    if ask.kind is PromptKind.DATE:
        parts = typed_date(value) if value else None
        return 'type="date"', (f"{parts[2]:04d}-{parts[1]:02d}-{parts[0]:02d}" if parts else "")
    return 'type="text" autocomplete="off"', value


def _percent(progress: str) -> int | None:
    found = re.search(r"(\d{1,3})\s*%", progress)
    return min(100, int(found.group(1))) if found else None


_SINGLE = {"choice": "choice", "ticked": "ticked", "text": "text", "multi": "multi", "was": "was", "marker": False}


#: A media question's file input by kind: what it accepts and whether a phone opens its camera or
#: recorder at once (`capture`); a file question takes any file (the core checks its `accept`).
_UPLOADS = {PromptKind.IMAGE: 'accept="image/*" capture="environment"',
            PromptKind.AUDIO: 'accept="audio/*" capture', PromptKind.VIDEO: 'accept="video/*" capture',
            PromptKind.FILE: ""}


def _question(ask: Ask, index: int, in_group: bool, ui: str) -> dict[str, Any]:
    """What the template needs to draw one question; on a group's page, field names carry the
    question's name (``text.age``) so one post answers several."""
    names = ({key: f"{key}.{ask.question}" for key in _SINGLE} | {"marker": True}) if in_group else _SINGLE
    # A rank is picked one choice per page, among those left (the engine asks them in turn).
    options = ask.kind in (PromptKind.SELECT_ONE, PromptKind.SELECT_MULTIPLE, PromptKind.CONSENT, PromptKind.RANK)
    multi = ask.kind is PromptKind.SELECT_MULTIPLE
    field, value = _field(ask)
    upload = _UPLOADS.get(ask.kind)
    # The page has a file input where a messenger has its 📎 button: say so instead.
    expected = say(f"web_{ask.kind.value}_expected", ui) if upload is not None else ask.expected
    return {"ask": ask, "first": index == 0, "names": names, "options": options, "multi": multi,
            # A media question: a file input (`bot/web/uploads.py`), its accept and capture by kind.
            "upload": upload, "file_field": FILE_FIELD,
            "field": field, "value": value, "id": f"answer-{index}" if in_group else "answer",
            # The label's markup (**bold**, *italic*, <br>) as escaped HTML, as Telegram shows it.
            "text": Markup(render_html(ask.text)) + (f" ({expected})" if expected else ""),
            "was": " ".join(o.key for o in ask.options if o.selected) if multi else "",
            "media": _media(ask.media),
            # A browser refuses to send a form with an empty required field; on a group's page a
            # question may turn out not to apply, so the engine alone decides there.
            "required": ask.required and not multi and (options or upload is not None) and not in_group}


def page(request: web.Request, screen: Screen, token: str, *, status: int = 200) -> web.Response:
    if not screen.linked:  # the code form: in the language chosen on it (Vietnamese by default)
        screen = Screen(_page_language(request), screen.said, screen.ask, False, screen.group)
    ask = screen.ask
    ui = ui_language(screen.language)
    asks = ((ask,) + screen.group) if ask is not None else ()
    csrf = _csrf(request, token)
    finished = any(isinstance(o, Say) and o.tone is Tone.THANKS for o in screen.said)
    values = {
        "ui": ui, "screen": screen, "ask": ask, "said": _said(screen.said, ui),
        "t": lambda key, **fields: say(key, ui, **fields), "plain": plain_text,
        "questions": [_question(one, index, bool(screen.group), ui) for index, one in enumerate(asks)],
        "group": bool(screen.group),
        "skip": ask is not None and not screen.group and not ask.required and ask.kind in (
            PromptKind.TEXT, PromptKind.INTEGER, PromptKind.DECIMAL, PromptKind.DATE, PromptKind.TIME,
            PromptKind.DATETIME, PromptKind.GEOPOINT, PromptKind.SELECT_ONE, PromptKind.RANK, *_UPLOADS),
        "multipart": any(one.kind in _UPLOADS for one in asks),
        "percent": _percent(ask.progress) if ask is not None and ask.progress else None,
        "render_id": secrets.token_hex(4),  # tells a test that the page was drawn anew (in place, by htmx)
        "finished": finished, "languages": "en" if ui == "vi" else "vi",
        # A withdrawal is open: the page shows its state and nothing else (the core says so).
        "rights_open": any(isinstance(o, Notice) and o.rights == "state" for o in screen.said),
        "csrf_field": Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf)}">'),
        **request.app[ASSETS],
    }
    response = web.Response(text=_environment.get_template("page.html").render(values), status=status,
                            content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def _notice(request: web.Request, key: str) -> Screen:
    language = _page_language(request)
    return Screen(language, (Notice(say(key, language)),), None, linked=False)


# -- handlers ----------------------------------------------------------------------------------------


async def open_link(request: web.Request) -> web.StreamResponse:
    """The invitation link (or a public QR code's keyword): link this browser, then show the page."""
    channel = request.app[WEB]
    code = request.match_info["code"]
    token = _token(request) or channel.new_token()
    if not _CODE.fullmatch(code):
        return page(request, _notice(request, "code_invalid"), token, status=404)
    if await channel.linked(token):
        # Already linked: the same code (or another person's, which the core refuses politely).
        await channel.handle(token, [Command("start", code)])
    elif await channel.link(token, _address(request), Command("start", code), _page_language(request)) is None:
        response = page(request, _notice(request, "web_too_many_codes"), token, status=429)
        _set_cookie(request, response, token)
        return response
    response = _see_page()
    _set_cookie(request, response, token)
    await _carry_language(request, response, token)
    raise response


async def show(request: web.Request) -> web.StreamResponse:
    channel = request.app[WEB]
    token = _token(request)
    if token is None:
        token = channel.new_token()
        response = page(request, _notice(request, "zalo_welcome"), token)
        _set_cookie(request, response, token)
        return response
    return page(request, await channel.current(token), token)


def _expired(request: web.Request, token: str | None) -> web.Response:
    fresh = token or request.app[WEB].new_token()
    response = page(request, _notice(request, "web_page_expired"), fresh, status=403)
    _set_cookie(request, response, fresh)
    return response


async def post(request: web.Request) -> web.StreamResponse:
    channel = request.app[WEB]
    token = _token(request)
    if request.content_type == "multipart/form-data":  # a media question's page, with its file
        return await post_upload(request, token)
    form = await request.post()
    sent = form.get(CSRF_FIELD)
    if token is None or not isinstance(sent, str) or not hmac.compare_digest(sent, _csrf(request, token)):
        return _expired(request, token)
    getall = lambda name: [str(v) for v in form.getall(name, [])]  # noqa: E731
    if form.get("action") == "lang" and not await channel.linked(token):
        # Before linking the core holds no language for this browser: the page keeps the choice.
        response = _see_page()
        if str(form.get("lang", "")) in UI_LANGUAGES:
            _set_cookie(request, response, str(form.get("lang")), LANG_COOKIE)
        raise response
    if form.get("group") == "1" and form.get("action", "answer") == "answer":
        await channel.handle_group(token, form, getall)
        raise _see_page()
    events = parse_form(form, getall)
    if not events:
        return page(request, _with_notice(await channel.current(token), "web_not_understood"), token, status=400)
    if form.get("action") == "code":
        if await channel.linked(token):
            # A code form from an older page: the code as an invitation link, never as an answer.
            await channel.handle(token, [Command("start", str(form.get("code", "")).strip()[:64])])
        elif await channel.link(token, _address(request), events[0], _page_language(request)) is None:
            return page(request, _notice(request, "web_too_many_codes"), token, status=429)
        else:
            response = _see_page()
            await _carry_language(request, response, token)
            raise response
    else:
        await channel.handle(token, events, _page_language(request))
    raise _see_page()


async def post_upload(request: web.Request, token: str | None) -> web.StreamResponse:
    """A media question's page posted (`bot/web/uploads.py`): the CSRF token and the prompt's seq
    are checked before the file is read; the file goes to the core as a `Media` event."""
    channel = request.app[WEB]
    limit = channel.core.media_limit

    def csrf_ok(fields) -> bool:
        return token is not None and hmac.compare_digest(fields.get(CSRF_FIELD, ""), _csrf(request, token))

    try:
        upload = await read_upload(request, limit, csrf_ok)
    except UploadRefused:
        return _expired(request, token)
    if not csrf_ok(upload.fields) or token is None:
        return _expired(request, token)
    fields = upload.fields
    language = _page_language(request)
    if fields.get("action", "answer") != "answer":  # back, skip, stop… pressed on the media question's page
        events = parse_form(fields, getall_of(fields))
        if events:
            await channel.handle(token, events, language)
        raise _see_page()
    if fields.get("group") == "1":  # a field-list page: the other questions' answers first
        await channel.handle_group(token, fields, getall_of(fields))
    now = await channel.core.screen(channel.chat(token))
    ask = screen_of(now[1], now[0]).ask if now is not None else None
    if ask is None or ask.kind not in _UPLOADS or (fields.get("group") != "1" and str(ask.seq) != fields.get("seq")):
        # The page was for a prompt no longer on screen (an old tab, a second submit): nothing is kept.
        return page(request, _with_notice(await channel.current(token), "stale"), token)
    await channel.handle(token, [media_event(upload, limit, ask.seq)], language)
    raise _see_page()


def _with_notice(screen: Screen, key: str) -> Screen:
    return Screen(screen.language, (Notice(say(key, ui_language(screen.language))),) + screen.said, screen.ask,
                  screen.linked)


# -- middlewares and the application -----------------------------------------------------------------


@web.middleware
async def security_headers(request: web.Request, handler):
    try:
        response = await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            error.headers.update(_HEADERS)
            raise
        if error.status >= 500:
            raise
        # 404, 405, 413 (a body over 64 KB)...: one polite line, whatever was asked
        response = web.Response(status=error.status, text=say("web_not_understood", "vi"), content_type="text/plain")
    except StorageError:  # the database locked or out of reach outside a chat turn (bot/chat/failures.py)
        log.exception("web: %s %s failed", request.method, request.path)
        response = web.Response(status=503, text=say("system_busy", _page_language(request)),
                                content_type="text/plain")
    except Exception:  # noqa: BLE001 — the person sees a polite line; the log has the traceback
        log.exception("web: %s %s failed", request.method, request.path)
        response = web.Response(status=500, text=say("web_not_understood", "vi"), content_type="text/plain")
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    return response


#: The console's headers: no framing, no sniffing, nothing from elsewhere, no referrer (the
#: invitation code must not leave in one).
_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                       "form-action 'self'"}


def make_web_app(channel: WebChannel, settings: WebSettings = WebSettings(), *,
                 secret: bytes | None = None) -> web.Application:
    """The web channel as an aiohttp application (its own server, or a sub-application)."""
    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    app[WEB] = channel
    app[SETTINGS] = settings
    app[SECRET] = secret or secrets.token_bytes(32)
    app.router.add_get("/s/", show)
    app.router.add_post("/s/", post)
    app.router.add_get("/s", _redirect_slash)
    static = HERE / "static"
    app.router.add_get("/s/static/htmx.min.js", _htmx)
    app.router.add_static("/s/static", static, name="web_static", append_version=True)
    app.router.add_get("/s/{code}", open_link)
    app[MEDIA] = FormMedia(channel.core.surveys.conversations.questionnaire)
    app.router.add_get("/media/{form_id}/{version}/{name}", serve_media)
    assets = app.router["web_static"]
    app[ASSETS] = {"css": str(assets.url_for(filename="web.css")),
                   "htmx": "/s/static/htmx.min.js" if HTMX.is_file() else ""}
    return app


async def serve_media(request: web.Request) -> web.StreamResponse:
    """A file a form's label shows (the pages' `<img>`, Zalo's sendPhoto URL). Public, like the
    labels themselves; only files a label names are served, never a form's other attachments. A
    form version's files never change (the storage refuses other content), so they are cached."""
    info = request.match_info
    key = MediaKey(info["form_id"], info["version"], info["name"])
    data = await request.app[MEDIA].read(key)
    if data is None:
        raise web.HTTPNotFound()
    # Opened on its own (an SVG, say), the file runs nothing and reaches nothing: a sandboxed document.
    return web.Response(body=data, content_type=media_type(key.name),
                        headers={"Cache-Control": "public, max-age=31536000, immutable",
                                 "Content-Security-Policy": "default-src 'none'; sandbox"})


async def _redirect_slash(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/s/")


async def _htmx(request: web.Request) -> web.StreamResponse:
    if not HTMX.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(HTMX, headers={"Cache-Control": "public, max-age=86400"})
