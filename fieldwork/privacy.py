"""A respondent's rights and the retention of contact data, as the console, the command line
and ``khaosat run`` share them (Law 91/2025/QH15 on personal data, Decree 356/2025/NĐ-CP).

- ``fulfil_request``: a withdraw-and-delete request is fulfilled by erasing the person's answers
  and personal fields everywhere in the database (so no later export holds them); the bot that
  holds their chat tells them, then forgets the chat (``bot/chat/privacy.py``).
- ``retention_pass``: ``retention_days`` after a survey's close date, its names, phones, chat ids
  and invitation codes are purged; answers stay under their pseudonyms. Idempotent.
- ``unreferenced_media_pass``: files sent for media questions that no answer and no answer
  history refers to (refused by the engine) are deleted ``UNREFERENCED_MEDIA_GRACE`` after they
  came (``storage/media.py`` says which files are kept and why).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fieldwork import Refused
from storage import Storage
from storage.privacy import RightsRequest
from surveys.privacy import notice_of, purge_date
from surveys.project import SurveyProject


#: Channels that cannot write to a person first (the web pages answer only a request): a
#: fulfilled request forgets their chats at once; the person finds themselves unlinked.
SILENT_CHANNELS = ("web",)


class PrivacyError(Refused):
    """A request that cannot be fulfilled (unknown, or not open): one clear sentence."""


async def fulfil_request(storage: Storage, request_id: int, actor: str, at: dt.datetime) -> dict[str, int]:
    """Erase the person of an open request; returns what was deleted (``Storage.erase_respondent``)."""
    found = await storage.rights_requests(request_id=request_id)
    if not found:
        raise PrivacyError(f"rights request {request_id}: no such request")
    if found[0].status != "open":
        raise PrivacyError(f"rights request {request_id}: already {found[0].status} "
                           f"({found[0].fulfilled_at or found[0].opened_at})")
    counts = await storage.erase_respondent(request_id, actor, at.isoformat(), silent_channels=SILENT_CHANNELS)
    if counts is None:  # fulfilled meanwhile by someone else
        raise PrivacyError(f"rights request {request_id}: already fulfilled")
    return counts


@dataclass(frozen=True)
class RequestRow:
    """A request as coordinators see it: its deadlines and whether they have passed."""

    request: RightsRequest
    pseudonym: str
    acknowledge_by: dt.date
    handle_by: dt.date
    overdue: bool


async def survey_requests(storage: Storage, project: SurveyProject, today: dt.date) -> list[RequestRow]:
    form_ids = sorted({group.form_id for group in project.groups.values()})
    rows = []
    for request in await storage.rights_requests(survey_id=project.id, form_ids=form_ids):
        respondent = await storage.get_respondent(request.respondent_id)
        handle_by = dt.date.fromisoformat(request.handle_by)
        rows.append(RequestRow(request, respondent.pseudonym, dt.date.fromisoformat(request.acknowledge_by), handle_by,
                               request.status == "open" and today > handle_by))
    return rows


async def survey_people(storage: Storage, project: SurveyProject, projects: list[SurveyProject]) -> list[int]:
    """The respondents whose contact data the survey holds: its fielded sample members, and the
    people who answered one of its questionnaires in open mode when no other survey uses it."""
    members = [m.respondent_id for m in await storage.sample_members(project.id) if m.respondent_id is not None]
    in_samples: set[int] = set()
    for other in projects:
        in_samples.update(m.respondent_id for m in await storage.sample_members(other.id) if m.respondent_id)
    shared = {group.form_id for other in projects if other.id != project.id for group in other.groups.values()}
    people = set(members)
    for form_id in {group.form_id for group in project.groups.values()} - shared:
        people.update(r.id for r in await storage.list_respondents(form_id) if r.id not in in_samples)
    return sorted(people)


#: How long a file no answer refers to is kept: longer than a platform keeps re-delivering an
#: update (Telegram: 24 hours), whose re-delivery reuses the stored file, and than a turn takes
#: between storing a file and recording the answer that names it.
UNREFERENCED_MEDIA_GRACE = dt.timedelta(days=2)


async def unreferenced_media_pass(storage: Storage, now: dt.datetime, *, dry_run: bool) -> int:
    """Delete (``dry_run``: count) the media files no answer or answer history refers to, received
    more than ``UNREFERENCED_MEDIA_GRACE`` before ``now``. Idempotent."""
    return await storage.media.purge_unreferenced_media((now - UNREFERENCED_MEDIA_GRACE).isoformat(),
                                                        dry_run=dry_run)


@dataclass(frozen=True)
class PurgeOutcome:
    survey_id: str
    title: str
    purge_from: dt.date
    due: bool
    counts: dict[str, int]


async def retention_pass(storage: Storage, now: dt.datetime, *, dry_run: bool,
                         survey_id: str | None = None) -> list[PurgeOutcome]:
    """Purge the contact data of every survey whose retention has run out (``dry_run``: count
    only). Surveys not due yet are listed with their date and nothing counted."""
    projects = [SurveyProject.from_json(stored.project) for stored in await storage.list_surveys()]
    outcomes = []
    for project in projects:
        if survey_id is not None and project.id != survey_id:
            continue
        when = purge_date(project.closes, notice_of(project, project.title).retention_days)
        due = now.astimezone(ZoneInfo(project.settings.timezone)).date() >= when
        counts: dict[str, int] = {}
        if due:
            people = await survey_people(storage, project, projects)
            counts = await storage.purge_contact_data(project.id, people, now.isoformat(), dry_run=dry_run)
        outcomes.append(PurgeOutcome(project.id, project.title, when, due, counts))
    return outcomes
