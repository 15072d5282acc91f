"""The periodic pass: reminders, stale quota slots and the coordinators' daily summary.

Nothing is held in memory between passes. Who is due is decided from the database
(dispositions, session and chat-link timestamps, the ``reminders`` table) by
``Storage.enqueue_due_reminders``, which records each reminder and queues its outbox message
(priority BULK) in the same transaction; a reminder is unique per respondent, activity
and step (``reminder:{respondent}:{activity_at}:{k}``).
So a restart loses nothing (the next pass finds whoever is still due) and doubles nothing
(a reminder recorded once is never selected again, and a message caught mid-send at a crash
is marked "unknown" by the outbox, not resent).

One ``AsyncIOScheduler`` per ``khaosat run`` process (``schedule``): an ``IntervalTrigger``
pass every ``[reminders] interval_minutes`` (default 15) and a daily ``CronTrigger`` at
``[coordinators] daily_summary`` local time (default 08:00), both ``coalesce=True,
max_instances=1``. ``khaosat remind --run-once`` runs one pass for cron users.

Reminders go to the person's most recently linked chat among the running bots; the text is
the project's ``[reminders.text]`` in the person's language with their progress (answered
asked questions / asked questions of the form) and a /resume hint. Per bot, a pass enqueues
only as many as the bot can send before quiet hours begin at half its configured rate
(``surveys.reminders.sendable_before_quiet``): the rest stay due and are taken by the next
pass after the quiet hours. Reminders stop at completion, refusal, unreachable, quota-full
(dispositions other than contacted/started) and when the survey is closed; one still waiting in
the outbox when its person moves on is withdrawn unsent (its message ends "failed" with the
error "withdrawn: <disposition>"; ``Storage.set_disposition``), since a large pass takes hours
to drain at the bot's rate.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from bot.outbox import BULK
from bot.quotas import release_stale
from exporters.progress import format_progress, format_status_text, progress, survey_status
from storage import OutgoingMessage, Storage
from surveys.messages import say, ui_language
from surveys.project import SurveyProject
from surveys.reminders import sendable_before_quiet
from surveys.xlsform import load_questionnaire_bytes

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_MINUTES = 15
DEFAULT_DAILY_SUMMARY = "08:00"
#: Share of a bot's rate given to reminders when sizing a pass (replies go first).
REMINDER_SHARE = 0.5


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
    """Asked-question names and totals per form id (latest stored version), read once."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self._asked: dict[str, tuple[str, ...]] | None = None

    async def asked(self) -> dict[str, tuple[str, ...]]:
        if self._asked is None:
            asked: dict[str, tuple[str, ...]] = {}
            for stored in await self.storage.list_questionnaires():  # ordered by loaded_at: latest wins
                try:
                    form = load_questionnaire_bytes(stored.source, stored.source_name)
                except Exception:  # noqa: BLE001 — a stored test blob that is not a form
                    continue
                asked[stored.form_id] = tuple(q.name for q in form.asked)
            self._asked = asked
        return self._asked


def render_reminder(project: SurveyProject, totals: dict[str, int]) -> Callable[[str | None, str | None, int], str]:
    """The text of a reminder for (language, form id, answered): the storage builds the outbox
    payload ``{"chat_id": …, "text": …}`` itself and calls this once per distinct triple
    (a handful per pass), on the storage thread: it must be pure and quick."""
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


async def reminder_pass(storage: Storage, bots: Sequence[ReminderBot], now: dt.datetime, *,
                        share: float = REMINDER_SHARE) -> PassResult:
    """One pass over every stored survey: release stale quota slots, enqueue due reminders."""
    result = PassResult()
    forms = _Forms(storage)
    for stored in await storage.list_surveys():
        project = SurveyProject.from_json(stored.project)
        zone = ZoneInfo(project.settings.timezone)
        released = await release_stale(storage, project, now)
        if released:
            result.released[project.id] = released
        policy = project.reminders
        if not policy.after_days or policy.max_count <= 0:
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
        asked = await forms.asked()
        group_forms = {g.form_id for g in project.groups.values()}
        asked = {form_id: names for form_id, names in asked.items() if form_id in group_forms}
        totals = {form_id: len(names) for form_id, names in asked.items()}
        queued = await storage.enqueue_due_reminders(
            project.id, after_days=policy.after_days, max_count=policy.max_count, now=now.isoformat(),
            limits=limits, asked=asked, render=render_reminder(project, totals), at=now.isoformat(),
            method="sendMessage", priority=BULK)
        result.queued[project.id] = queued
        if queued:
            log.info("survey %s: %d reminder(s) queued", project.id, queued)
    return result


# -- the coordinators' daily summary ---------------------------------------------------------------


async def summary_text(storage: Storage, now: dt.datetime, language: str = "vi") -> str:
    """Every stored survey's status text; the per-form progress when no survey is stored."""
    parts = []
    for stored in await storage.list_surveys():
        project = SurveyProject.from_json(stored.project)
        parts.append(format_status_text(await survey_status(storage, project, now), project, language))
    if not parts:
        parts.append(format_progress(await progress(storage), language))
    return "\n\n".join(parts)


async def daily_summary(storage: Storage, bots: Sequence[ReminderBot], now: dt.datetime,
                        language: str = "vi") -> int:
    """Queue the summary to each bot's coordinators who have opened a chat with it; returns how many.

    A coordinator has "opened the chat" when the bot has already delivered something to that
    chat (e.g. the reply to their /start or /progress): a bot cannot write first. Others are
    skipped (and logged). Keyed by the local date, so a restart the same day sends nothing twice.
    """
    text: str | None = None
    queued = 0
    for bot in bots:
        for chat in bot.coordinators:
            if not await storage.chat_reached(bot.channel, bot.bot, str(chat)):
                log.info("%s/%s: coordinator %s has not opened the chat; no daily summary", bot.channel, bot.bot,
                         chat)
                continue
            if text is None:
                text = await summary_text(storage, now, language)
            chat_id: int | str = int(chat) if bot.channel == "telegram" else str(chat)
            limit = 4096 if bot.channel == "telegram" else 2000
            message = OutgoingMessage(
                channel=bot.channel, bot=bot.bot, chat_id=str(chat), method="sendMessage",
                payload=json.dumps({"chat_id": chat_id, "text": text[:limit]}, ensure_ascii=False), priority=BULK,
                dedupe_key=f"summary:{bot.channel}:{bot.bot}:{chat}:{now.date().isoformat()}")
            queued += await storage.enqueue([message], now.isoformat())
    return queued


# -- people the bots cannot reach ------------------------------------------------------------------


async def write_unreached(storage: Storage, path: Path, survey_id: str | None = None) -> int:
    """CSV (UTF-8 with BOM, for Excel) of sample members invited but never linked to any chat.

    PERSONAL DATA (names, phones): for the coordinator, to remind by letter, SMS or phone.
    """
    rows = await storage.unreached_members(survey_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["survey_id", "respondent_id", "pseudonym", "group", "stratum", "disposition", "invited_at",
                         "name", "phone"])
        for row in rows:
            writer.writerow([row["survey_id"], row["respondent_id"], row["pseudonym"], row["grp"], row["stratum"],
                             row["disposition"], row["invited_at"] or "", row["name"] or "", row["phone"] or ""])
    return len(rows)


# -- the scheduler ---------------------------------------------------------------------------------


def schedule(storage: Storage, bots: Sequence[ReminderBot], clock: Callable[[], dt.datetime], *,
             zone: ZoneInfo, interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
             daily_summary_at: str | None = DEFAULT_DAILY_SUMMARY, language: str = "vi",
             on_enqueued: Callable[[], None] = lambda: None):
    """Start the process's one ``AsyncIOScheduler``: the reminder pass and the daily summary.

    The jobs read everything from the database on each run, so the scheduler needs no job
    store: a restart just schedules them again. Returns the started scheduler (call
    ``shutdown(wait=False)`` to stop it).
    """
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    async def pass_job() -> None:
        try:
            result = await reminder_pass(storage, bots, clock())
            if result.count:
                on_enqueued()
        except Exception:  # noqa: BLE001 — the next pass tries again
            log.exception("reminder pass failed")

    async def summary_job() -> None:
        try:
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
