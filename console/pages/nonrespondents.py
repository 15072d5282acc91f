"""Non-respondents: per stratum, who has not finished and why; "send a reminder now" through the
reminder rules of bot/reminders.py (same outbox, quiet hours and limits); a CSV of the people
to reach by letter or phone (names and phones only for accounts with personal access; audited).
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.reminders import REMINDER_SHARE, _Forms, has_reminders  # _Forms: parsed once per version
from console.app import (NavEntry, audit, console_of, csv_download, current_account, fieldwork_storage, language, render,
                         request_scope, stores)
from console.auth import Scope, has_personal, requires, stratum_visible
from console.i18n import t
from console.labels import group_label, stratum_label, unit_units
from storage.fieldwork_views import REASONS, NonRespondent
from surveys.reminders import sendable_before_quiet

routes = web.RouteTableDef()
NAV = [NavEntry("nav_nonrespondents", "/surveys/{survey}/nonrespondents", ("coordinator",), order=20)]

#: Shown in the page per stratum; the CSV has everyone.
PAGE_ROWS = 500
#: Reasons to reach by letter or phone: no chat the bots could write to (and anyone ``web_only``).
OFFLINE_REASONS = ("not_invited", "never_opened", "unreachable")


def reason_text(person: NonRespondent, lang: str, asked: dict[str, tuple[str, ...]]) -> str:
    """Why, in words; "stopped at question n": n is the asked question after their last answer,
    numbered as the chat numbers it ([Câu n/N])."""
    if person.reason == "stopped":
        names = asked.get(person.form_id, ())
        n = names.index(person.last_question) + 2 if person.last_question in names else person.answered + 1
        why = t("reason_stopped", lang, n=min(n, len(names)) if names else n)
    else:
        why = t(f"reason_{person.reason}", lang)
    return f"{why} — {t('web_only_no_chat', lang)}" if person.web_only else why


async def asked_questions(request: web.Request) -> dict[str, tuple[str, ...]]:
    """form id → its asked questions in order (latest stored version), as the reminders count them."""
    return await _Forms(fieldwork_storage(request)).asked()


async def _people(request: web.Request, *, personal: bool) -> list[NonRespondent]:
    """The survey's non-respondents within the account's units and ?unit=."""
    scope: Scope = request_scope(request)
    people = await stores(request).fieldwork.nonrespondents(scope.project.id, personal=personal)
    wanted = unit_units(scope.project, scope.unit) if scope.unit else None

    def inside(units, person: NonRespondent) -> bool:
        if units is None:
            return True
        return person.unit in units if person.unit else stratum_visible(person.stratum, units)

    return [p for p in people if inside(scope.units, p) and inside(wanted, p)]


def reminded_strata(scope: Scope, people: list[NonRespondent]) -> frozenset[str] | None:
    """The strata "send a reminder now" is limited to: None (the whole survey) for an unscoped
    account on the whole survey; else the strata of ``people`` (``_people``) that the account's
    units and ?unit= show (``stratum_visible``), as the progress page counts them. Everyone a
    reminder can go to (contacted or started) is a non-respondent, so no stratum is missed."""
    if scope.units is None and scope.unit is None:
        return None
    wanted = unit_units(scope.project, scope.unit) if scope.unit else None
    return frozenset(p.stratum for p in people
                     if stratum_visible(p.stratum, scope.units) and stratum_visible(p.stratum, wanted))


@routes.get("/surveys/{survey}/nonrespondents")
@requires("coordinator")
async def nonrespondents_page(request: web.Request) -> web.Response:
    scope: Scope = request_scope(request)
    project = scope.project
    lang = language(request)
    personal = has_personal(current_account(request))
    chosen = request.query.get("stratum") or None
    people = await _people(request, personal=personal and chosen is not None)
    summary: dict[str, Counter] = {}
    for person in people:
        summary.setdefault(person.stratum, Counter())[person.reason] += 1
    if chosen is not None and not stratum_visible(chosen, scope.units):
        raise web.HTTPForbidden(reason="stratum")
    listed = [p for p in people if p.stratum == chosen][:PAGE_ROWS] if chosen else []
    if listed and personal:
        await audit(request, "personal_viewed", f"non-respondents of {chosen}: {len(listed)} name(s) and phone(s)")
    asked = await asked_questions(request) if listed else {}
    strata = [(stratum, group_label(project, stratum.split("/", 1)[0], lang), stratum_label(project, stratum, lang),
               counts, sum(counts.values())) for stratum, counts in sorted(summary.items())]
    message = request.query.get("queued")
    remindable = reminded_strata(scope, people)
    return render(request, "nonrespondents.html", project=project, strata=strata, reasons=REASONS, chosen=chosen,
                  chosen_label=stratum_label(project, chosen, lang) if chosen else "",
                  listed=[(p, reason_text(p, lang, asked)) for p in listed], personal=personal, unit=scope.unit or "",
                  queued=message, skipped=request.query.get("skipped"),
                  with_chat=sum(1 for p in people if p.has_chat and p.reason in ("opened", "stopped")
                                and (remindable is None or p.stratum in remindable)))


@routes.post("/surveys/{survey}/nonrespondents/remind")
@requires("coordinator")
async def remind_now(request: web.Request) -> web.Response:
    """Queue a reminder now for everyone of the survey with a chat who is contacted or started and
    has not been reminded since their last activity: ``Storage.enqueue_due_reminders`` with the
    survey's own reminder count and quiet hours (``sendable_before_quiet``), due at once; the
    bots' feeds hand them over to the outbox as for a periodic pass. An account limited to some
    units, or a ?unit= (checked by ``@requires``: another unit is 403), reminds only the strata it
    sees (``reminded_strata``), filtered in the same statement."""
    scope: Scope = request_scope(request)
    strata = reminded_strata(scope, await _people(request, personal=False))
    where = f", strata {' '.join(sorted(strata)) or '(none)'}" if strata is not None else ""
    project = scope.project
    console = console_of(request)
    now = console.clock()
    zone = ZoneInfo(project.settings.timezone)
    today = now.astimezone(zone).date()
    why = None
    if not has_reminders(project):
        why = "no reminder policy"
    elif not project.opens <= today <= project.closes:
        why = "survey not open"
    else:
        limits = {(bot.channel, bot.bot): sendable_before_quiet(project.reminders, now, zone, bot.per_second,
                                                                REMINDER_SHARE) for bot in console.bots}
        if not limits:
            why = "no bot"
        elif all(limit == 0 for limit in limits.values()):
            why = "quiet hours"
    if why is not None:
        await audit(request, "remind_now", f"none: {why}{where}")
        raise web.HTTPSeeOther(page_url(project.id, scope.unit, skipped=why))
    queued = await fieldwork_storage(request).enqueue_due_reminders(
        project.id, after_days=(0,), max_count=project.reminders.max_count, now=now.isoformat(), limits=limits,
        at=now.isoformat(), strata=strata)
    if queued:
        console.on_reminders_queued()
    await audit(request, "remind_now", f"{queued} reminder(s) queued{where}")
    raise web.HTTPSeeOther(page_url(project.id, scope.unit, queued=queued))


def page_url(survey_id: str, unit: str | None, **query) -> str:
    """The non-respondents page to come back to, on the same ?unit=."""
    return f"/surveys/{survey_id}/nonrespondents?{urlencode({**({'unit': unit} if unit else {}), **query})}"


@routes.get("/surveys/{survey}/nonrespondents.csv")
@requires("coordinator")
async def nonrespondents_csv(request: web.Request) -> web.Response:
    """The people to reach by letter or phone (no chat the bots can write to), UTF-8 with BOM."""
    scope: Scope = request_scope(request)
    personal = has_personal(current_account(request))
    people = [p for p in await _people(request, personal=personal) if p.reason in OFFLINE_REASONS or p.web_only]
    lang = language(request)
    asked: dict[str, tuple[str, ...]] = {}  # no "stopped" among these reasons: no form to read
    header = ["survey_id", "respondent_id", "pseudonym", "group", "stratum", "unit", "reason", "disposition",
              *(["name", "phone"] if personal else [])]
    rows = [[scope.project.id, p.respondent_id, p.pseudonym, p.group, p.stratum, p.unit or "",
             reason_text(p, lang, asked), p.disposition, *([p.name or "", p.phone or ""] if personal else [])]
            for p in people]
    await audit(request, "download", f"non-respondents to reach: {len(people)} row(s)"
                f"{', with names and phones' if personal else ''}{f', unit {scope.unit}' if scope.unit else ''}")
    return csv_download(header, rows, f"{scope.project.id}-to-reach{('-' + scope.unit) if scope.unit else ''}.csv")
