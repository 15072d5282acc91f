"""`khaosat demo`: the real Telegram and Zalo bots against local emulators, with simulated people.

Everything is local: a SQLite file, the bundled questionnaires, the two emulators on 127.0.0.1.
The demo does what a coordinator does, with the same library calls as the CLI:

1. loads a demo survey project (``surveys/templates/demo_survey.toml``: citizens answer the
   SIPAS example, commune officials the PAR INDEX example; four communes; strata = group ×
   commune; a hard quota on one stratum), imports a generated frame of a few thousand people
   and draws a stratified sample (``survey load``, ``frame import``, ``sample draw --seed``);
2. issues everyone a personal invitation, a link and a typed code (``invite``);
3. runs both bots and the web pages (``khaosat run`` with ``[web]``, with its quota gate) on a
   simulated clock; a few hundred simulated people answer — most on Telegram (buttons) or Zalo
   (typed numbers), one in six on the web pages over HTTP (plain form posts, as a phone without
   JavaScript); some decline, walk away half-way, go back or press old buttons; late arrivals
   in the quota stratum are thanked and not asked;
4. moves the clock four days on (a weekday morning, outside quiet hours) and makes one
   reminder pass (``khaosat remind --run-once``); the bots send the reminders, and most of
   the people who walked away send /resume and finish;
5. prints the first person's chat on each channel, ``khaosat status`` and an export.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import dataclasses
import datetime as dt
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bot import clock as clocks
from bot.config import BotConfig, Config
from bot.outbox import Pace
from bot.reminders import reminder_pass
from bot.run import RunningBot, tune_garbage_collector, reminder_bots, reminders_queued, run
from bot.simulate import TelegramPerson, Transcript, WebPerson, ZaloPerson
from bot.telegram.emulator import BotApiEmulator, Limits
from bot.web.settings import WebConfig
from bot.zalo.emulator import ZaloBotApiEmulator, ZaloLimits
from exporters.letters import Channels, Letter, issue_letters
from exporters.progress import format_status_text, progress, survey_status
from fieldwork.conversations import Conversations
from fieldwork.data import ExportOptions, export as export_answers
from storage import Storage, StorageError, open_storage, redacted
from storage.personal_crypto import take_plaintext_warning
from surveys.project import SurveyProject, load_survey, store_survey
from surveys.sampling import DrawResult, allocate, draw_sample, import_frame_file
from surveys.templates import FOLDER as TEMPLATES, bundled_templates
from surveys.xlsform import load_questionnaire

TOKEN = "700000:DEMO-local-emulator-token"
ZALO_TOKEN = "710000:DEMO-local-zalo-token"
TELEGRAM_USERNAME = "khaosat_demo_bot"
ZALO_NAME = "Bot Khảo sát CCHC"
DEMO_SURVEY = TEMPLATES / "demo_survey.toml"
#: The demo runs a few hundred conversations in seconds, so it lifts the emulator's limits;
#: the real limits are enforced in the tests and measured in bench/outbox_rate.py.
DEMO_LIMITS = Limits(per_bot_per_second=5000, per_chat_per_second=100, per_chat_burst=100)
DEMO_ZALO_LIMITS = ZaloLimits(per_bot_per_second=5000, per_chat_per_second=100, per_chat_burst=100)
DEMO_PACE = Pace(per_second=4000, per_chat_per_second=90, per_chat_burst=90, max_in_flight=64)

#: Share of each group's frame living in each commune of the demo survey.
COMMUNES = {"phuong-dong-ha": 0.40, "xa-an-binh": 0.25, "xa-hoa-loc": 0.20, "xa-cam-lo": 0.15}
QUOTA_STRATUM = ("citizen", "phuong-dong-ha")  # the stratum with a hard quota below its sample size
OFFICIALS_SHARE = 0.25  # of the sample; the rest are citizens
FRAME_SIZE = {"citizen": 3000, "official": 400}  # at least; at least 4 × the group's sample
START_AT = dt.time(8, 0)  # the simulated fieldwork starts at 08:00 local time
JUMP = dt.timedelta(days=4, hours=1)  # then walks on to 09:00 four days later: reminders are due (after 3 days)
COME_BACK = 0.75  # chance that a reminded person sends /resume
WEB_SHARE = 6  # every sixth person answers on the web pages

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
           "Ngô", "Dương", "Lý")
_MIDDLE = {"male": ("Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Công"),
           "female": ("Thị", "Ngọc", "Thu", "Thanh", "Minh", "Kim", "Thùy")}
_GIVEN = {"male": ("An", "Bình", "Cường", "Dũng", "Hải", "Hiếu", "Hùng", "Khánh", "Long", "Nam", "Phúc", "Quang",
                   "Sơn", "Tâm", "Thắng", "Tuấn", "Việt"),
          "female": ("Anh", "Chi", "Dung", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai", "Nga", "Nhung",
                     "Phương", "Thảo", "Trang", "Vy", "Yến")}
_MOBILE = ("32", "33", "34", "35", "36", "37", "38", "39", "56", "58", "70", "76", "77", "78", "79", "81", "83",
           "84", "85", "86", "88", "89", "90", "91", "93", "94", "96", "97", "98")


class SimulatedClock:
    """Local time that starts at a chosen moment, runs at the real pace, and can jump forward."""

    def __init__(self, start: dt.datetime):
        self.start, self.jumped, self._began = start, dt.timedelta(0), time.monotonic()

    def __call__(self) -> dt.datetime:
        return self.start + self.jumped + dt.timedelta(seconds=time.monotonic() - self._began)

    def jump(self, by: dt.timedelta) -> None:
        self.jumped += by


@dataclass
class DemoSurvey:
    project: SurveyProject
    survey_file: Path
    frame_file: Path
    frame_size: int
    sample: DrawResult
    quota_target: int
    letters: list[Letter]


@dataclass
class Fieldwork:
    """What the simulated people did, for the summary."""

    outcomes: collections.Counter = field(default_factory=collections.Counter)
    clock_from: dt.datetime | None = None
    clock_to: dt.datetime | None = None
    reminders_queued: int = 0
    reminders_received: int = 0
    came_back: collections.Counter = field(default_factory=collections.Counter)


async def run_demo(out_dir: Path, respondents: int, seed: int, console: Console,
                   database: str | None = None) -> dict:
    """The demo in ``out_dir`` (its database a fresh ``demo.sqlite`` there, or ``database``, a
    PostgreSQL URL of an empty database: the demo's survey must be the only one)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if database is None:
        db_path: Path | str = out_dir / "demo.sqlite"
        for leftover in out_dir.glob("demo.sqlite*"):
            leftover.unlink()
    else:
        db_path = database
        async with await open_storage(db_path) as storage:
            if await storage.list_surveys() or await storage.list_respondents():
                raise StorageError(f"{redacted(database)} holds a survey already: give the demo an empty database")
    rng = random.Random(seed)
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    clock = SimulatedClock(dt.datetime.combine(clocks.now(zone).date(), START_AT, zone))
    forms = {form.form_id: form for form in map(load_questionnaire, bundled_templates())}
    plaintext = take_plaintext_warning()  # said once, here, rather than by the logger at some point
    if plaintext:
        console.print(f"Invented people only: {plaintext}.", markup=False, highlight=False)
    web = WebConfig(public_url=f"http://127.0.0.1:{_free_port()}")
    web = dataclasses.replace(web, port=int(web.public_url.rsplit(":", 1)[1]))
    survey = await prepare_survey(db_path, out_dir, respondents, seed, clock, web.public_url)
    emulator = BotApiEmulator(limits=DEMO_LIMITS)
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, TELEGRAM_USERNAME)
    # Zalo delivers some messages twice; the demo lets it, as the real platform does.
    zalo_emulator = ZaloBotApiEmulator(limits=DEMO_ZALO_LIMITS, duplicate_probability=0.02, seed=seed)
    zalo_base = await zalo_emulator.start()
    zalo = zalo_emulator.add_bot(ZALO_TOKEN, ZALO_NAME)
    config = dataclasses.replace(_config(db_path, out_dir, base, zalo_base), web=web)
    stop, ready = asyncio.Event(), asyncio.Event()
    running: list[RunningBot] = []
    # bot.run.run switches the quota gate on (Conversations(storage, quotas=QuotaGate(storage))).
    bots_task = asyncio.create_task(run(config, stop, clock=clock,
                                        started=lambda bots: (running.extend(bots), ready.set(),
                                                              tune_garbage_collector())))
    await _until_ready(ready, bots_task, (emulator, zalo_emulator))
    _print_intro(console, survey, respondents, base, zalo_base, db_path, clock)
    transcripts = {"Telegram": Transcript(), "Zalo": Transcript(), "the web": Transcript()}
    browsers = aiohttp.TCPConnector(limit=100)
    people: list[Someone] = []
    try:
        people = _people(survey.letters, forms, telegram, zalo, transcripts, rng, clock().date(), browsers)
        work = Fieldwork()
        await _answer(people, work, console)
        await _settle(running)
        await _remind_and_come_back(running, people, work, clock, rng, console)
        _print_web(console, people)
        for channel, transcript in transcripts.items():
            console.rule(f"The first person's chat on {channel}")
            console.print(transcript.text(), markup=False, highlight=False)
        await _settle(running)
    finally:
        for someone in people:
            if isinstance(someone.person, WebPerson):
                await someone.person.session.close()
        await browsers.close()
        stop.set()
        await bots_task
        await emulator.stop()
        await zalo_emulator.stop()
    return await _summarise(db_path, out_dir, console, survey, work, clock(), telegram.stats, zalo.stats,
                            emulator.violations + zalo_emulator.violations)


async def _until_ready(ready: asyncio.Event, bots_task: asyncio.Task, emulators: tuple) -> None:
    """Wait for the bots to be up; if `run` ends first (a bad port, a database it refuses), stop the
    emulators and raise what ended it, instead of waiting for a readiness that will never come."""
    waiting = asyncio.ensure_future(ready.wait())
    await asyncio.wait({waiting, bots_task}, return_when=asyncio.FIRST_COMPLETED)
    if ready.is_set():
        return
    waiting.cancel()
    for emulator in emulators:
        await emulator.stop()
    bots_task.result()  # raises run's own error
    raise click.ClickException("the bots stopped before they were ready")


# -- the survey project, frame, sample and invitations ---------------------------------------------


async def prepare_survey(db_path: Path, out_dir: Path, respondents: int, seed: int,
                         clock: SimulatedClock, web_url: str | None = None) -> DemoSurvey:
    """What a coordinator does before fieldwork: survey load, frame import, sample draw, invite."""
    sizes = _sample_sizes(respondents)
    frame_sizes = {group: max(FRAME_SIZE[group], 4 * n) for group, n in sizes.items()}
    frame_file = out_dir / "demo_frame.csv"
    frame_counts = write_frame(frame_file, frame_sizes, random.Random(seed))
    group, commune = QUOTA_STRATUM
    allocation = dataclasses.replace(load_survey(DEMO_SURVEY).groups[group].allocation, n=sizes[group])
    quota_n = allocate(frame_counts[group], allocation)[commune]  # the stratum's n_h, as the draw will give it
    quota_target = max(1, quota_n - max(3, quota_n // 6))
    survey_file = out_dir / "demo_survey.toml"
    survey_file.write_text(render_survey(DEMO_SURVEY.read_text(encoding="utf-8"), clock().date(), sizes,
                                         quota_target), encoding="utf-8")
    project = load_survey(survey_file)
    at = clock()
    async with await open_storage(db_path) as storage:
        conversations = Conversations(storage)
        for path in bundled_templates():
            await conversations.register(load_questionnaire(path), path.read_bytes(), path.name, at)
        await store_survey(storage, project, survey_file.read_text(encoding="utf-8"), survey_file.name,
                           at.isoformat())
        await import_frame_file(storage, project, frame_file, at.isoformat())
        sample = await draw_sample(storage, project, seed, at.isoformat())
        letters = await issue_letters(storage, Channels(TELEGRAM_USERNAME, ZALO_NAME, web_url), at)
    return DemoSurvey(project, survey_file, frame_file, sum(frame_sizes.values()), sample, quota_target, letters)


def _sample_sizes(respondents: int) -> dict[str, int]:
    """The sample size of each group: about a quarter officials, at least one per commune."""
    if respondents < 2 * len(COMMUNES):
        raise click.UsageError(f"the demo samples both groups in {len(COMMUNES)} communes: "
                               f"give --respondents {2 * len(COMMUNES)} or more")
    officials = max(len(COMMUNES), round(respondents * OFFICIALS_SHARE))
    return {"citizen": respondents - officials, "official": officials}


def render_survey(template: str, today: dt.date, sizes: dict[str, int], quota_target: int) -> str:
    """The demo TOML with the lines marked «demo sets» filled in (dates, sample sizes, quota)."""
    values = {("survey", "opens"): today.isoformat(),
              ("survey", "closes"): (today + dt.timedelta(days=30)).isoformat(),
              ("groups.citizen.allocation", "n"): str(sizes["citizen"]),
              ("groups.official.allocation", "n"): str(sizes["official"]),
              ("quotas.targets", f'"{"/".join(QUOTA_STRATUM)}"'): str(quota_target)}
    table, lines = "", []
    for line in template.splitlines():
        header = re.match(r"^\[+([^\]]+)\]+", line)
        if header:
            table = header.group(1).strip()
        assignment = re.match(r'^("[^"]+"|[\w.]+)(\s*=\s*)([^#]*?)(\s*#.*)?$', line)
        if assignment and (table, assignment.group(1)) in values:
            key, equals, _, comment = assignment.groups()
            line = f"{key}{equals}{values[(table, key)]}{comment or ''}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_frame(path: Path, sizes: dict[str, int], rng: random.Random) -> dict[str, dict[str, int]]:
    """A frame CSV (id, group, unit, name, phone) of invented people; returns counts per group and commune."""
    counts: dict[str, dict[str, int]] = {}
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "group", "unit", "name", "phone"])
        for group, size in sizes.items():
            communes = rng.choices(list(COMMUNES), weights=list(COMMUNES.values()), k=size)
            counts[group] = dict(collections.Counter(communes))
            for number, commune in enumerate(communes, start=1):
                writer.writerow([f"{group[0].upper()}{number:05d}", group, commune, _name(rng), _phone(rng)])
    return counts


def _name(rng: random.Random) -> str:
    sex = rng.choice(("male", "female"))
    return f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE[sex])} {rng.choice(_GIVEN[sex])}"


def _phone(rng: random.Random) -> str:
    return f"+84{rng.choice(_MOBILE)}{rng.randrange(10**7):07d}"


def _config(db_path: Path, out_dir: Path, base: str, zalo_base: str) -> Config:
    forms = tuple(bundled_templates())
    return Config(database=db_path, source=out_dir / "demo.toml", bots=(
        BotConfig(channel="telegram", name="demo", token=TOKEN, api_base=base, forms=forms,
                  coordinators=(1,), pace=DEMO_PACE),
        BotConfig(channel="zalo", name="demo-zalo", token=ZALO_TOKEN, api_base=zalo_base, forms=forms,
                  pace=DEMO_PACE)))


def _print_intro(console: Console, survey: DemoSurvey, respondents: int, base: str, zalo_base: str,
                 db_path: Path, clock: SimulatedClock) -> None:
    sample = survey.sample
    console.print(f"[bold]khaosat demo[/]: survey [bold]{survey.project.id}[/] ({survey.survey_file}); frame of "
                  f"{survey.frame_size} invented people ({survey.frame_file}); stratified sample of {sample.main} "
                  f"(+ {sample.reserve} reserves) drawn with its inclusion probabilities:")
    view = Table("group", "stratum", "N_h", "n_h", "π_h", box=None, padding=(0, 2, 0, 0))
    for s in sample.strata.itertuples(index=False):
        view.add_row(s.group, s.stratum, str(s.population), str(s.n), f"{s.pi:.4f}")
    console.print(view)
    console.print(f"{respondents} simulated people answer on Telegram ({base}) and Zalo ({zalo_base}), both local "
                  f"emulators; bundled example questionnaires; database {redacted(str(db_path))}; simulated clock starts "
                  f"{clock():%Y-%m-%d %H:%M} (Asia/Ho_Chi_Minh)")


# -- simulated people ------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Someone:
    respondent_id: int
    person: TelegramPerson | ZaloPerson | WebPerson
    outcome: str = ""


def _people(letters: list[Letter], forms: dict, telegram, zalo, transcripts: dict[str, Transcript],
            rng: random.Random, today: dt.date, browsers: aiohttp.TCPConnector) -> list[Someone]:
    """One in six open the web link of their letter (each with a browser of their own: its
    cookies), the others alternate: Telegram link, Zalo code; the first of each keeps a transcript."""
    people = []
    for number, letter in enumerate(letters):
        form, person_rng = forms[letter.respondent.form_id], random.Random(rng.random())
        if number % WEB_SHARE == WEB_SHARE - 1 and letter.web_link:
            browser = aiohttp.ClientSession(connector=browsers, connector_owner=False,
                                            cookie_jar=aiohttp.CookieJar(unsafe=True))
            base, code = letter.web_link.split("/s/", 1)
            person = WebPerson(browser, base, form, code, person_rng,
                               transcripts["the web"] if number == WEB_SHARE - 1 else None, today=today)
        elif number % 2 == 0:
            link_code = letter.link.rsplit("start=", 1)[1]
            user = telegram.user(10_000 + number, first_name=letter.name.split()[-1])
            person = TelegramPerson(user, form, link_code, person_rng,
                                    transcripts["Telegram"] if number == 0 else None, today=today)
        else:
            person = ZaloPerson(zalo.user(display_name=letter.name), form, letter.typed_code, person_rng,
                                transcripts["Zalo"] if number == 1 else None, today=today)
        people.append(Someone(letter.respondent.id, person))
    return people


async def _answer(people: list[Someone], work: Fieldwork, console: Console) -> None:
    slots = asyncio.Semaphore(60)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("People answering", total=len(people))

        async def one(someone: Someone) -> None:
            async with slots:
                someone.outcome = await someone.person.take_part()
            work.outcomes[someone.outcome] += 1
            bar.advance(task)

        await asyncio.gather(*(one(someone) for someone in people))


async def _remind_and_come_back(running: list[RunningBot], people: list[Someone], work: Fieldwork,
                                clock: SimulatedClock, rng: random.Random, console: Console) -> None:
    """Jump the clock past the first reminder day; one reminder pass; the reminded may come back.

    ``bot.run.run`` has no hook to trigger its scheduler's pass, so the demo calls the pass
    itself (``bot.reminders.reminder_pass``, as ``khaosat remind --run-once`` does) with the
    running bots, and tells their reminder feeds and outbox senders, which hand the queued
    reminders over and send them. Should the scheduler's own pass run at the same moment, the
    reminders table keeps each reminder once; the demo counts from that table.
    """
    storage = running[0].surveys.storage
    work.clock_from = clock()
    clock.jump(JUMP)
    work.clock_to = clock()
    await reminder_pass(storage, reminder_bots(running), clock())
    reminders_queued(running)
    reminded = [s for s in people if await storage.reminders_of(s.respondent_id)
                and not isinstance(s.person, WebPerson)]
    work.reminders_queued = len(reminded)
    console.print(f"Simulated clock: {work.clock_from:%Y-%m-%d %H:%M} → {work.clock_to:%Y-%m-%d %H:%M}; "
                  f"reminder pass queued {len(reminded)} reminder(s)")

    async def one(someone: Someone) -> None:
        if isinstance(someone.person, WebPerson):
            return  # reminders go to people's chats; a web page cannot be written to
        try:
            await someone.person.wait_for_reminder(timeout=15)
        except TimeoutError:
            return
        work.reminders_received += 1
        if rng.random() < COME_BACK:
            outcome = await someone.person.come_back()
            work.came_back[outcome] += 1

    await asyncio.gather(*(one(someone) for someone in reminded))


def _print_web(console: Console, people: list[Someone]) -> None:
    on_web = [s.person for s in people if isinstance(s.person, WebPerson)]
    sizes = sorted(size for person in on_web for size in person.pages)
    if sizes:
        console.print(f"Web pages: {len(on_web)} people answered over HTTP, {len(sizes)} pages, median "
                      f"{sizes[len(sizes) // 2]} bytes of HTML (largest {sizes[-1]})")


async def _settle(running: list[RunningBot]) -> None:
    """Wait until the outbox, and the reminders queue behind it, have been empty for a quarter
    of a second (at most ~10 s).

    Empty once is not enough: an update still on its way from an emulator queues its reply
    just after, and the bots would stop with it unsent."""
    storage = running[0].surveys.storage
    quiet = 0
    for _ in range(500):
        counts = await storage.outbox_counts()
        idle = counts["pending"] == 0 and counts["sending"] == 0 and not await storage.queued_reminders()
        quiet = quiet + 1 if idle else 0
        if quiet == 12:
            return
        await asyncio.sleep(0.02)


# -- the summary -----------------------------------------------------------------------------------


async def _summarise(db_path: Path, out_dir: Path, console: Console, survey: DemoSurvey, work: Fieldwork,
                     now: dt.datetime, stats, zalo_stats, violations) -> dict:
    async with await open_storage(db_path) as storage:
        report = await survey_status(storage, survey.project, now)
        rows = await progress(storage)
        exported = await export_answers(storage, out_dir / "answers.csv", ExportOptions())
        outbox = await storage.outbox_counts()
        quota_full = await _count_disposition(storage, "quota_full")
    console.rule(f"khaosat status --survey {survey.project.id} --format text  (as of {now:%Y-%m-%d %H:%M})")
    console.print(format_status_text(report, survey.project, "en"), markup=False, highlight=False)
    console.rule("Summary")
    behaviour = _counts(work.outcomes)
    console.print(f"Simulated people: {behaviour}")
    console.print(f"Sample drawn: {survey.sample.main} members with inclusion probabilities, "
                  f"{survey.sample.reserve} reserves, from a frame of {survey.frame_size} (same --seed, same sample)")
    console.print(f"Quota {'/'.join(QUOTA_STRATUM)} = {survey.quota_target} completes (hard): "
                  f"quota full for {quota_full} late people, thanked and not asked")
    came_back = sum(work.came_back.values())
    console.print(f"Reminders after the clock jump: {work.reminders_queued} queued, {work.reminders_received} "
                  f"delivered; {came_back} people came back with /resume, {work.came_back['completed']} completed ({_counts(work.came_back)})")
    console.print(f"Bot → Telegram: {stats.sent} messages, {stats.edits} edits, {stats.callback_answers} button "
                  f"answers, {stats.too_many_requests} × 429")
    console.print(f"Bot → Zalo: {zalo_stats.sent} messages, {zalo_stats.duplicates} messages delivered twice by the "
                  f"platform (each handled once), {zalo_stats.too_many_requests} × 429")
    console.print(f"Outbox {dict(outbox)}; Bot API request violations: {len(violations)}")
    console.print(f"Export: {exported.path} ({exported.rows} sessions × {exported.columns} columns)")
    shown = redacted(str(db_path))  # a URL's password is never printed
    console.print(f"Status yourself: khaosat status --db {shown}")
    console.print(f"Database: {shown}  — take a questionnaire yourself: "
                  f"khaosat try {bundled_templates()[-1]} --db {shown}")
    return {"progress": rows, "status": report, "outcomes": dict(work.outcomes), "quota_full": quota_full,
            "reminders": (work.reminders_queued, work.reminders_received), "came_back": dict(work.came_back),
            "violations": list(violations), "outbox": outbox, "now": now, "database": db_path,
            "survey": survey.project.id}


async def _count_disposition(storage: Storage, disposition: str) -> int:
    return sum(1 for r in await storage.list_respondents() if r.disposition == disposition)


def _counts(counter: collections.Counter) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items())) or "none"
