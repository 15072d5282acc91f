"""The periodic pass: reminders, stale quota slots and the coordinators' daily summary; and the
feed that hands each bot's queued reminders over to its outbox as the bot has room.

**Queued by the pass.** Nothing is held in memory between passes. Who is due is decided from the
database (dispositions, session and chat-link timestamps, the ``reminders`` table) by
``Storage.enqueue_due_reminders``, which records each reminder in ``reminders`` and nothing else:
that row is the durable queue entry ("queued": no outbox message yet, ``outbox_id`` NULL). A
reminder goes to the person's most recently linked chat among the running bots (the row keeps
its channel and bot) and is unique per respondent, activity and step
(``reminder:{respondent}:{activity_at}:{k}``).

**Handed over by the feed.** A bot sends about 30 messages a second, so 100,000 reminders take an
hour to leave, and a text rendered at pass time would show progress an hour old. Each bot's
``OutboxSender`` calls its ``ReminderFeed`` when fewer than two seconds' worth of bulk messages
are pending; the feed calls ``Storage.hand_over_reminders``, which in one transaction gives up to
that many of the bot's queued reminders, oldest first, an outbox message (priority BULK, after
the replies to people answering) with the text rendered then: the project's ``[reminders.text]``
in the person's current language with their current progress (answered asked questions / asked
questions of the form, ``render_reminder``) and a /resume hint.

**Once, whatever stops when.** A reminder recorded once is never selected by a pass again and
handed over at most once, so a restart loses nothing and doubles nothing: between pass and
hand-over the reminder waits queued in the database, between hand-over and send its message
waits pending in the outbox, and a message caught mid-send at a crash is marked "unknown" by the
outbox, not resent.

**Quiet hours and stops.** Per bot, a pass queues only as many as the bot can send before quiet
hours begin at half its configured rate (``surveys.reminders.sendable_before_quiet``): the rest
stay due and are taken by the next pass after the quiet hours. The feed applies the same rule
when it hands over: nothing during quiet hours, just before them only what can leave before they
start; what is still queued then waits for their end. Reminders stop at completion, refusal,
unreachable, quota-full (dispositions other than contacted/started): ``Storage.set_disposition``
withdraws the person's reminders not sent yet (queued, or pending in the outbox: that message
ends "failed" with the error "withdrawn: <disposition>"), and the hand-over checks again. They
also stop when the survey is closed (a pass queues none; the feed withdraws the queued ones,
"survey closed") or has no reminder policy any more ("no reminder policy").

One ``AsyncIOScheduler`` per ``khaosat run`` process (``schedule``): an ``IntervalTrigger``
pass every ``[reminders] interval_minutes`` (default 15) and a daily ``CronTrigger`` at
``[coordinators] daily_summary`` local time (default 08:00), both ``coalesce=True,
max_instances=1``. ``khaosat remind --run-once`` runs one pass for cron users; the running bots'
feeds find what it queued within ``FEED_RECHECK_SECONDS``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from bot.outbox import BULK
from exporters.progress import fieldwork_messages
from fieldwork.quotas import release_stale
from storage import OutgoingMessage, ReminderTexts, Storage
from storage.atomic_files import atomic_open, make_folder
from surveys.messages import say, ui_language
from surveys.project import SurveyProject
from surveys.reminders import sendable_before_quiet
from surveys.xlsform import load_questionnaire_bytes

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_MINUTES = 15
DEFAULT_DAILY_SUMMARY = "08:00"
#: Share of a bot's rate given to reminders when sizing a pass or a hand-over (replies go first).
REMINDER_SHARE = 0.5
#: A feed that found nothing to hand over looks again after this long. A pass in the same process
#: tells it at once (``ReminderFeed.queued``); one made by ``khaosat remind --run-once`` cannot.
FEED_RECHECK_SECONDS = 30.0
#: How long a feed goes by what it read of the survey projects and questionnaires.
FEED_REFRESH_SECONDS = 60.0


@dataclass(frozen=True)
class ReminderBot:
    """A running bot reminders may go through, and its configured rate (messages/second)."""

    channel: str
    bot: str
    per_second: float = 30.0
    coordinators: tuple[str, ...] = ()


@dataclass
class PassResult:
    """What a pass did. Who was reminded, and with which step and number, is in the database
    (``Storage.reminders_of``, the ``reminders`` table): a pass may queue 100,000 reminders, and
    building a Python object for each would cost more than selecting them."""

    queued: dict[str, int] = field(default_factory=dict)  # survey → reminders queued
    released: dict[str, list[int]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # survey → why no reminders

    @property
    def count(self) -> int:
        return sum(self.queued.values())


class _Forms:
    """Asked-question names per form id (latest stored version), each stored version parsed once."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self._parsed: dict[str, tuple[str, ...] | None] = {}  # sha256 → asked names; None: not a form

    async def asked(self) -> dict[str, tuple[str, ...]]:
        asked: dict[str, tuple[str, ...]] = {}
        for stored in await self.storage.list_questionnaires():  # ordered by loaded_at: latest wins
            if stored.sha256 not in self._parsed:
                try:
                    form = load_questionnaire_bytes(stored.source, stored.source_name, stored.attachments)
                except Exception:  # noqa: BLE001 — a stored test blob that is not a form
                    self._parsed[stored.sha256] = None
                else:
                    self._parsed[stored.sha256] = tuple(q.name for q in form.asked)
            names = self._parsed[stored.sha256]
            if names is not None:
                asked[stored.form_id] = names
        return asked


def render_reminder(project: SurveyProject, totals: dict[str, int]) -> Callable[[str | None, str | None, int], str]:
    """The text of a reminder for (language, form id, answered): the storage builds the outbox
    payload ``{"chat_id": …, "text": …}`` itself and calls this once per reminder it hands over,
    on the storage thread: it must be pure and quick."""
    texts = project.reminders.texts
    default = project.settings.language
    hints = {lang: say("reminder_resume_hint", lang) for lang in ("vi", "en")}

    def text(language: str | None, form_id: str | None, answered: int) -> str:
        lang = ui_language(language or default)
        template = texts.get(lang) or texts.get(default) or texts.get("vi") or say("reminder_default", lang)
        total = totals.get(form_id or "", 0)
        body = template.format(answered=min(answered, total) if total else answered, total=total)
        return f"{body}\n{hints[lang]}"

    return text


def reminder_texts(project: SurveyProject, asked: dict[str, tuple[str, ...]]) -> ReminderTexts:
    """How the survey's reminders are worded: progress counts the asked questions of its groups' forms."""
    group_forms = {g.form_id for g in project.groups.values()}
    asked = {form_id: names for form_id, names in asked.items() if form_id in group_forms}
    return ReminderTexts(asked, render_reminder(project, {form_id: len(names) for form_id, names in asked.items()}))


def reminder_payload(channel: str) -> Callable[[str, str], str]:
    """(chat id as stored, text) → a reminder's payload on ``channel``: a Telegram chat id that
    is an integer written canonically goes as a JSON number (the Bot API's type), any other as
    the text it is stored as (Zalo's ids are strings)."""

    def payload(chat_id: str, text: str) -> str:
        carried: int | str = chat_id
        if channel == "telegram":
            try:
                number = int(chat_id)
            except ValueError:
                number = None
            if number is not None and str(number) == chat_id:
                carried = number
        return json.dumps({"chat_id": carried, "text": text}, ensure_ascii=False, separators=(",", ":"))

    return payload


def has_reminders(project: SurveyProject) -> bool:
    return bool(project.reminders.after_days) and project.reminders.max_count > 0


async def reminder_pass(storage: Storage, bots: Sequence[ReminderBot], now: dt.datetime, *,
                        share: float = REMINDER_SHARE) -> PassResult:
    """One pass over every stored survey: release stale quota slots, queue due reminders."""
    result = PassResult()
    for stored in await storage.list_surveys():
        project = SurveyProject.from_json(stored.project)
        zone = ZoneInfo(project.settings.timezone)
        released = await release_stale(storage, project, now)
        if released:
            result.released[project.id] = released
        policy = project.reminders
        if not has_reminders(project):
            result.skipped[project.id] = "no reminder policy"
            continue
        today = now.astimezone(zone).date()
        if not project.opens <= today <= project.closes:
            result.skipped[project.id] = "survey not open"
            continue
        limits: dict[tuple[str, str], int | None] = {}
        for bot in bots:
            limits[(bot.channel, bot.bot)] = sendable_before_quiet(policy, now, zone, bot.per_second, share)
        if not limits or all(limit == 0 for limit in limits.values()):
            result.skipped[project.id] = "quiet hours" if limits else "no bot"
            continue
        queued = await storage.enqueue_due_reminders(
            project.id, after_days=policy.after_days, max_count=policy.max_count, now=now.isoformat(),
            limits=limits, at=now.isoformat())
        result.queued[project.id] = queued
        if queued:
            log.info("survey %s: %d reminder(s) queued", project.id, queued)
    return result


# -- handing queued reminders over to a bot's outbox -----------------------------------------------


@dataclass(frozen=True)
class _Survey:
    project: SurveyProject
    zone: ZoneInfo
    texts: ReminderTexts


class ReminderFeed:
    """One bot's queued reminders, handed over to its outbox as its sender asks
    (``OutboxSender(feed=…)``: ``await feed(room)`` returns how many messages it added).

    Per call, each stored survey is either handed over from (open, outside quiet hours: at most
    what can leave before they begin, at ``share`` of the bot's rate, as a pass sizes itself),
    held (quiet hours, or not open yet) or stopped (closed, or no reminder policy any more: its
    queued reminders are withdrawn). Finding nothing, the feed rests for
    ``FEED_RECHECK_SECONDS`` (``queued`` wakes it), so an idle sender costs no write.
    """

    def __init__(self, storage: Storage, bot: ReminderBot, clock: Callable[[], dt.datetime], *,
                 share: float = REMINDER_SHARE, monotonic: Callable[[], float] = time.monotonic):
        self.storage = storage
        self.bot = bot
        self.clock = clock
        self.share = share
        self.monotonic = monotonic
        self._payload = reminder_payload(bot.channel)
        self._forms = _Forms(storage)
        self._surveys: list[_Survey] = []
        self._read_at: float | None = None
        self._resting_until = 0.0

    def queued(self) -> None:
        """A pass queued reminders: look at once rather than after the rest."""
        self._resting_until = 0.0

    async def __call__(self, room: int) -> int:
        if room <= 0 or self.monotonic() < self._resting_until:
            return 0
        now = self.clock()
        texts: dict[str, ReminderTexts] = {}
        stopped: dict[str, str] = {}
        limit = room
        for survey in await self._current_surveys():
            today = now.astimezone(survey.zone).date()
            if not has_reminders(survey.project):
                stopped[survey.project.id] = "no reminder policy"
            elif today > survey.project.closes:
                stopped[survey.project.id] = "survey closed"
            elif today >= survey.project.opens:
                sendable = sendable_before_quiet(survey.project.reminders, now, survey.zone, self.bot.per_second,
                                                 self.share)
                if sendable != 0:  # 0: quiet hours, or about to begin
                    texts[survey.project.id] = survey.texts
                    limit = min(limit, room if sendable is None else sendable)
        handed_over = 0
        while texts or stopped:
            result = await self.storage.hand_over_reminders(
                self.bot.channel, self.bot.bot, limit, texts=texts, stopped=stopped, at=now.isoformat(),
                method="sendMessage", priority=BULK, payload=self._payload)
            if result.withdrawn:
                log.info("%s/%s: %d queued reminder(s) withdrawn: their person or survey is done", self.bot.channel,
                         self.bot.bot, result.withdrawn)
            if not result.more:  # the queue is empty, for now
                handed_over = result.handed_over
                break
            if result.handed_over:
                return result.handed_over
            stopped = {}  # all withdrawn by the first call; a whole batch of people done: look at the next
        self._resting_until = self.monotonic() + FEED_RECHECK_SECONDS
        return handed_over

    async def _current_surveys(self) -> list[_Survey]:
        if self._read_at is None or self.monotonic() - self._read_at >= FEED_REFRESH_SECONDS:
            asked = await self._forms.asked()
            surveys = []
            for stored in await self.storage.list_surveys():
                project = SurveyProject.from_json(stored.project)
                surveys.append(_Survey(project, ZoneInfo(project.settings.timezone), reminder_texts(project, asked)))
            self._surveys, self._read_at = surveys, self.monotonic()
        return self._surveys


# -- the coordinators' daily summary ---------------------------------------------------------------


async def daily_summary(storage: Storage, bots: Sequence[ReminderBot], now: dt.datetime,
                        language: str = "vi") -> int:
    """Queue the summary to each bot's coordinators who have opened a chat with it; returns how many
    messages were queued. The summary is what /progress shows (``fieldwork_messages``), in as many
    messages as the platform's limit needs.

    A coordinator has "opened the chat" when the bot has already delivered something to that
    chat (e.g. the reply to their /start or /progress): a bot cannot write first. Others are
    skipped (and logged). Keyed by the local date, so a restart the same day sends nothing twice.
    """
    texts: dict[int, list[str]] = {}
    queued = 0
    for bot in bots:
        for chat in bot.coordinators:
            if not await storage.chat_reached(bot.channel, bot.bot, str(chat)):
                log.info("%s/%s: coordinator %s has not opened the chat; no daily summary", bot.channel, bot.bot,
                         chat)
                continue
            chat_id: int | str = int(chat) if bot.channel == "telegram" else str(chat)
            limit = 4096 if bot.channel == "telegram" else 2000
            if limit not in texts:
                texts[limit] = await fieldwork_messages(storage, now, language, limit)
            key = f"summary:{bot.channel}:{bot.bot}:{chat}:{now.date().isoformat()}"
            messages = [OutgoingMessage(
                channel=bot.channel, bot=bot.bot, chat_id=str(chat), method="sendMessage",
                payload=json.dumps({"chat_id": chat_id, "text": text}, ensure_ascii=False), priority=BULK,
                dedupe_key=key if number == 1 else f"{key}:{number}")
                for number, text in enumerate(texts[limit], start=1)]
            queued += await storage.enqueue(messages, now.isoformat())
    return queued


# -- people the bots cannot reach ------------------------------------------------------------------


#: Someone who answers only on the web pages: no chat a reminder could go to.
WEB_ONLY = "web only: no chat to remind"


async def write_unreached(storage: Storage, path: Path, survey_id: str | None = None) -> tuple[int, int]:
    """CSV (UTF-8 with BOM, for Excel) of sample members invited whom no bot can remind: never
    linked to any chat, or linked only to the web pages (which cannot write first; their ``reach``
    says so). Returns (people listed, of them web only).

    PERSONAL DATA (names, phones): for the coordinator, to remind by letter, SMS or phone.
    """
    rows = await storage.unreached_members(survey_id)
    make_folder(path.parent)
    with atomic_open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["survey_id", "respondent_id", "pseudonym", "group", "stratum", "disposition", "invited_at",
                         "name", "phone", "reach"])
        for row in rows:
            writer.writerow([row["survey_id"], row["respondent_id"], row["pseudonym"], row["grp"], row["stratum"],
                             row["disposition"], row["invited_at"] or "", row["name"] or "", row["phone"] or "",
                             WEB_ONLY if row["web_only"] else "no chat"])
    return len(rows), sum(row["web_only"] for row in rows)


# -- the scheduler ---------------------------------------------------------------------------------


def schedule(storage: Storage, bots: Sequence[ReminderBot], clock: Callable[[], dt.datetime], *,
             zone: ZoneInfo, interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
             daily_summary_at: str | None = DEFAULT_DAILY_SUMMARY, language: str = "vi",
             on_enqueued: Callable[[], None] = lambda: None, holder: str | None = None):
    """Start the process's one ``AsyncIOScheduler``: the reminder pass and the daily summary.

    The jobs read everything from the database on each run, so the scheduler needs no job
    store: a restart just schedules them again. Returns the started scheduler (call
    ``shutdown(wait=False)`` to stop it).

    Among several ``khaosat run`` processes (``holder``: this one's id) each job runs where its
    lease is taken (``Storage.take_lease``): the pass holds "reminder-pass" for the interval, so
    one process passes per interval whichever scheduler fires first, and a killed one's turn
    lapses by the next; the summary holds "daily-summary" for the day. Both are idempotent all
    the same (keys), so a lease only saves the work, never guards a duplicate.
    """
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    async def my_turn(job: str, seconds: float) -> bool:
        if holder is None:
            return True
        at = dt.datetime.now(dt.timezone.utc)
        if await storage.take_lease(job, holder, at.isoformat(), (at + dt.timedelta(seconds=seconds)).isoformat()):
            return True
        log.info("%s: another process has this turn", job)
        return False

    async def pass_job() -> None:
        try:
            if not await my_turn("reminder-pass", interval_minutes * 60 * 0.9):
                return
            result = await reminder_pass(storage, bots, clock())
            if result.count:
                on_enqueued()
        except Exception:  # noqa: BLE001 — the next pass tries again
            log.exception("reminder pass failed")

    async def summary_job() -> None:
        try:
            if not await my_turn("daily-summary", 12 * 3600):
                return
            if await daily_summary(storage, bots, clock(), language):
                on_enqueued()
        except Exception:  # noqa: BLE001
            log.exception("daily summary failed")

    scheduler = AsyncIOScheduler(timezone=zone)
    scheduler.add_job(pass_job, IntervalTrigger(minutes=interval_minutes, timezone=zone), id="reminders",
                      coalesce=True, max_instances=1, next_run_time=dt.datetime.now(zone) + dt.timedelta(seconds=5))
    if daily_summary_at:
        hour, minute = (int(part) for part in daily_summary_at.split(":"))
        scheduler.add_job(summary_job, CronTrigger(hour=hour, minute=minute, timezone=zone), id="daily-summary",
                          coalesce=True, max_instances=1, misfire_grace_time=3600)
    scheduler.start()
    return scheduler
