"""Browser tests of the coordinator console: the real app on 127.0.0.1 in a background thread,
over a fresh SQLite database built by the real storage and sampling functions, driven by a real
headless Chromium (Playwright with Debian's /usr/bin/chromium).

Fixtures (see console/README.md):

* ``browser`` — Chromium, one per test module; the tests skip (with the reason) if Playwright or
  Chromium is missing.
* ``page`` — a fresh browser context and page per test (no cookies carried over).
* ``fieldwork`` — a database with the test survey (tests/forms/survey: communes xa-a, xa-b,
  xa-c), its sample drawn, some people moved along; returns a ``Fieldwork``.
* ``console_server`` — ``console_server(db, now=...)`` starts the console on a free port and
  returns a ``ConsoleServer`` (``.url``, ``.add_account(...)``, ``.call(coro_fn)`` to run
  ``await coro_fn(storage, stores)`` on the server's loop, ``.now`` to move its clock); stopped
  after the test.
* ``log_in(page, server, username, password)`` — fills the login form and waits for the home page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from bot.config import ConsoleConfig
from storage import open_storage

ROOT = Path(__file__).resolve().parents[2]
FORMS = ROOT / "tests" / "forms" / "survey"
CHROMIUM = Path("/usr/bin/chromium")
ZONE = dt.timezone(dt.timedelta(hours=7))
#: The test survey opens 2026-08-01 and closes 2026-08-31.
NOW = dt.datetime(2026, 8, 21, 12, 0, tzinfo=ZONE)
T0 = "2026-07-01T08:00:00+07:00"
PASSWORD = "mat-khau-thu-2026"
OTHER_SURVEY = "khac-2026"


class ConsoleServer:
    """The real console (console.server.start_console) on its own event loop in a thread."""

    def __init__(self, db: Path, *, now: dt.datetime = NOW, bots=(), **settings):
        self.db = db
        self.now = now
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-server", daemon=True)
        self.thread.start()
        self.storage = self._run(open_storage(db))
        from console.server import start_console

        self.running = self._run(start_console(ConsoleConfig(host="127.0.0.1", port=0, **settings), self.storage, db,
                                               clock=lambda: self.now, bots=bots))
        self.url = self.running.url.rstrip("/")

    def _run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def call(self, fn: Callable[..., Awaitable[Any]]) -> Any:
        """``await fn(storage, stores)`` on the server's loop (the fieldwork storage and the console stores)."""
        return self._run(fn(self.storage, self.running.stores))

    def add_account(self, username: str, *, role: str, surveys=(), units=(), personal: bool | None = None,
                    password: str = PASSWORD):
        from console.accounts import create_account

        return self.call(lambda storage, stores: create_account(
            stores, username, password, role=role, at=self.now.isoformat(), surveys=tuple(surveys),
            units=tuple(units), personal=role in ("admin", "coordinator") if personal is None else personal))

    def stop(self) -> None:
        self._run(self.running.stop())
        self._run(self.storage.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def console_server():
    started: list[ConsoleServer] = []

    def start(db: Path, **kwargs) -> ConsoleServer:
        server = ConsoleServer(db, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# Module-scoped, not session-scoped: Playwright's sync API keeps an event loop running in the main
# thread while it is open, and the suite's async tests (pytest-asyncio) that run after the browser
# modules could not start theirs.
@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _log_in(page, server: ConsoleServer, username: str, password: str = PASSWORD, *, expect_home: bool = True):
    page.goto(f"{server.url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    if expect_home:
        page.wait_for_selector("form[action='/logout']")


@pytest.fixture
def log_in():
    return _log_in


@dataclass
class Fieldwork:
    db: Path
    project: Any
    members: dict[str, list[int]]  # stratum → respondent ids of the main sample, by id


async def _move(storage, rid: int, steps: list[str], at: str) -> None:
    for status in steps:
        await storage.set_disposition(rid, status, at)


async def build_fieldwork(tmp_path: Path, db: Path | str | None = None) -> Fieldwork:
    """The test survey with a drawn sample: in xa-a 4 completed, 2 started, 2 refused, 3 invited
    (one of them with a chat), 1 unreachable; in xa-b 2 completed; invitations for all. In ``db``
    (a file or a PostgreSQL URL) if given, else in a file of ``tmp_path``."""
    from surveys.project import load_survey, parse_survey, store_survey
    from surveys.sampling import draw_sample, import_frame_file

    project = load_survey(FORMS / "survey.toml")
    db = tmp_path / "console.sqlite" if db is None else db
    frame = tmp_path / "frame.csv"
    rows = ["id,group,unit,name,phone"]
    for unit, size in {"xa-a": 120, "xa-b": 80, "xa-c": 40}.items():
        rows += [f"{unit}-{i:03d},citizen,{unit},Người {unit} {i},09{i:08d}" for i in range(size)]
    frame.write_text("\n".join(rows) + "\n", encoding="utf-8")
    async with await open_storage(db) as storage:
        await store_survey(storage, project, "", "survey.toml", T0)
        await import_frame_file(storage, project, frame, T0)
        await draw_sample(storage, project, 1, T0)
        members: dict[str, list[int]] = {}
        for member in await storage.sample_members(project.id, "main"):
            members.setdefault(member.stratum, []).append(member.respondent_id)
        for ids in members.values():
            ids.sort()
        a, b = members["citizen/xa-a"], members["citizen/xa-b"]
        done = ["invited", "contacted", "started", "completed"]
        for rid in a[:4]:
            await _move(storage, rid, done, "2026-08-15T09:00:00+07:00")
        for rid in a[4:6]:
            await _move(storage, rid, ["invited", "contacted", "started"], "2026-08-16T09:00:00+07:00")
        for rid in a[6:8]:
            await _move(storage, rid, ["invited", "contacted", "refused"], "2026-08-16T09:00:00+07:00")
        for rid in a[8:11]:
            await _move(storage, rid, ["invited"], "2026-08-16T09:00:00+07:00")
        await _move(storage, a[11], ["invited", "unreachable"], "2026-08-16T09:00:00+07:00")
        for rid in b[:2]:
            await _move(storage, rid, done, "2026-08-20T09:00:00+07:00")
        # A second survey, for "another survey's pages".
        other = parse_survey((FORMS / "survey.toml").read_text(encoding="utf-8").replace(
            'id = "test-2026"', f'id = "{OTHER_SURVEY}"'), base=FORMS)
        await store_survey(storage, other, "", "survey.toml", T0)
    return Fieldwork(db, project, members)


def run_async(make: Callable[[], Awaitable[Any]]) -> Any:
    """``asyncio.run(make())`` in a thread of its own: Playwright's sync API keeps an event loop
    running in the test's thread."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as error:  # noqa: BLE001 — re-raised in the test's thread
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


@pytest.fixture
def fieldwork(tmp_path) -> Fieldwork:
    return run_async(lambda: build_fieldwork(tmp_path))


SIPAS_FORM = ROOT / "surveys" / "templates" / "sipas_citizen.md"


async def answer_in_chat(storage, respondent_ids: list[int], clock: Callable[[], dt.datetime], *,
                         stop_after: int | None = None, seed: int = 7) -> list[str]:
    """Simulated people answer the citizen questionnaire through the real chat core (the console
    channel over ``Conversations``): each takes the first option of a choice, skips what may be
    skipped and types a valid value otherwise; ``stop_after`` answers, they walk away. Returns each one's final status."""
    import io
    import random

    from rich.console import Console

    from bot.console import ConsoleChannel
    from bot.simulate import TypedAnswers
    from fieldwork.conversations import Conversations
    from surveys.xlsform import load_questionnaire_bytes

    source = SIPAS_FORM.read_bytes()
    form = load_questionnaire_bytes(source, SIPAS_FORM.name)
    conversations = Conversations(storage)
    await conversations.register(form, source, SIPAS_FORM.name, clock())
    typed = TypedAnswers(form, random.Random(seed), clock().date())
    statuses = []
    for rid in respondent_ids:
        respondent = await storage.get_respondent(rid)
        lines = [0]
        tries: dict[str, int] = {}

        def read_line(ask):
            # A safety cap: a person who has typed 300 lines has stopped.
            if ask is None or lines[0] >= (300 if stop_after is None else stop_after):
                return None
            lines[0] += 1
            if ask.options:
                return "1"
            if not ask.required:
                return ""  # skipped, as the prompt offers
            question = next(q for q in form.asked if q.name == ask.question)
            tries[question.name] = tries.get(question.name, -1) + 1
            return typed.value(question, tries[question.name])

        channel = ConsoleChannel(conversations, Console(file=io.StringIO()), read_line, clock)
        statuses.append((await channel.take(form, respondent.external_id, "vi")).value)
    return statuses


# -- the respondents' web pages (bot/web) ---------------------------------------------------------------


class WebServer:
    """``khaosat run`` with a Telegram bot (emulated) and the web pages (tests/web_helpers.py), on
    its own event loop in a thread. ``.url``; ``.call(coro_fn)`` runs ``await coro_fn(harness)``
    on the server's loop (invitations, the Telegram user, reading storage)."""

    def __init__(self, tmp_path: Path, **options):
        from tests.web_helpers import web_harness

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="web-server", daemon=True)
        self.thread.start()
        self._context = web_harness(tmp_path, **options)
        self.harness = self._run(self._context.__aenter__())
        self.url = self.harness.url

    def _run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def call(self, fn: Callable[..., Awaitable[Any]]) -> Any:
        return self._run(fn(self.harness))

    def stop(self) -> None:
        self._run(self._context.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def web_server(tmp_path):
    started: list[WebServer] = []

    def start(**options) -> WebServer:
        server = WebServer(tmp_path / f"web{len(started)}", **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


#: A mid-range phone's screen (CSS pixels).
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "locale": "vi-VN"}


@pytest.fixture
def phone(browser):
    """``phone(javascript=True)``: a new browser context (a device of its own: no shared cookies)
    with a phone's screen, and its page."""
    contexts = []

    def open_page(javascript: bool = True):
        context = browser.new_context(java_script_enabled=javascript, **PHONE)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield open_page
    for context in contexts:
        context.close()
