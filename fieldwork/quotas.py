"""Completion quotas: who may start when a stratum is (nearly) full.

Decisions (see also ``QuotaPolicy``):

* **Where.** ``Conversations.handle`` computes each engine step and, before storing it,
  asks ``QuotaGate.admit(record, step)``. A step that lets a person into the questions
  (consent accepted, a resume after a pause or a refusal) or finishes the questionnaire
  needs a slot. ``admit`` then reserves one with ``Storage.reserve_quota_slot`` — one
  ``BEGIN IMMEDIATE`` transaction that counts reserved + completed slots of the stratum and
  inserts only below the target, so concurrent starts, in any number of processes, can
  never take more slots than the target. A person already holding a slot is admitted
  without counting. When the stratum is full the step is *not* stored: the person is
  thanked (``quota_full`` message) and gets the disposition ``quota_full``.
* **Who.** Fielded members of a survey sample (``sample_members``) with a quota target for
  their stratum key. Open-mode respondents are not members of a sample and are not gated;
  soft quotas (``hard = false``) never block, but slots are still recorded so status can
  show the fill and the overshoot.
* **Release.** Completion marks the slot completed, refusal releases it
  (``settle``), and the periodic pass releases slots whose session has been idle for
  ``release_after_hours`` (those people become break-offs, disposition ``partial``). A
  person whose slot was released and who comes back is checked again at their next step
  after a pause of an hour or more (and always at completion), so they cannot complete past
  a full stratum. Once told the stratum is full (disposition ``quota_full``), the chat core
  asks them nothing more: ``/start``, an answer or a press gets a short "your part has ended"
  and never the question again (``ChatCore._quota_ended``). With ``count_at = "start"`` slots
  are never released.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from storage import SessionRecord, Storage
from surveys import engine
from surveys.project import SurveyProject

#: A step after this long without activity re-checks the person's slot (it may have been released).
RECHECK_AFTER = dt.timedelta(hours=1)
_ENTERING = (engine.Status.NEW, engine.Status.CONSENT, engine.Status.PAUSED, engine.Status.REFUSED)
_PROJECT_TTL = 60.0


@dataclass(frozen=True)
class QuotaCell:
    survey_id: str
    stratum: str
    target: int | None  # None: no target for this stratum (soft counting only)
    hard: bool
    count_at: str


class QuotaGate:
    def __init__(self, storage: Storage):
        self.storage = storage
        self._projects: dict[str, tuple[float, SurveyProject]] = {}

    async def project(self, survey_id: str) -> SurveyProject:
        from surveys.project import stored_project

        cached = self._projects.get(survey_id)
        if cached is None or time.monotonic() - cached[0] > _PROJECT_TTL:
            cached = (time.monotonic(), await stored_project(self.storage, survey_id))
            self._projects[survey_id] = cached
        return cached[1]

    async def cell(self, respondent_id: int) -> QuotaCell | None:
        member = await self.storage.quota_member(respondent_id)
        if member is None:
            return None
        survey_id, stratum = member
        project = await self.project(survey_id)
        quotas = project.quotas
        target = quotas.targets.get(stratum)
        if target is None and not quotas.targets:
            return None
        return QuotaCell(survey_id, stratum, target, quotas.hard, quotas.count_at)

    @staticmethod
    def needs_slot(record: SessionRecord, step: engine.Step, at: dt.datetime) -> bool:
        """Whether this step lets the person in (or finishes), so their slot must be checked."""
        before, after = engine.Status(record.status), step.state.status
        if after is engine.Status.COMPLETED and before is not engine.Status.COMPLETED:
            return True
        if after is not engine.Status.ACTIVE:
            return False
        if before in _ENTERING:
            return True
        try:
            idle = at - dt.datetime.fromisoformat(record.updated_at)
        except (TypeError, ValueError):
            return True
        return idle >= RECHECK_AFTER

    async def admit(self, record: SessionRecord, step: engine.Step, at: dt.datetime) -> bool:
        """True to store the step; False when the person's stratum is full (hard quota)."""
        if not self.needs_slot(record, step, at):
            return True
        cell = await self.cell(record.respondent_id)
        if cell is None:
            return True
        target = cell.target if cell.hard else None
        return await self.storage.reserve_quota_slot(cell.survey_id, cell.stratum, record.respondent_id, target,
                                                     at.isoformat())

    async def settle(self, session: SessionRecord, at: dt.datetime) -> None:
        """After a stored step: completion marks the slot completed, refusal releases it."""
        status = engine.Status(session.status)
        if status is engine.Status.COMPLETED:
            await self.storage.complete_quota_slot(session.respondent_id, at.isoformat())
        elif status is engine.Status.REFUSED:
            cell = await self.cell(session.respondent_id)
            if cell is not None and cell.count_at != "start":
                await self.storage.release_quota_slot(session.respondent_id, at.isoformat())


async def release_stale(storage: Storage, project: SurveyProject, now: dt.datetime) -> list[int]:
    """Release the project's reserved slots idle for ``release_after_hours`` (the periodic pass)."""
    quotas = project.quotas
    if not quotas.targets or quotas.count_at == "start":
        return []
    older_than = now - dt.timedelta(hours=quotas.release_after_hours)
    return await storage.release_stale_quota_slots(project.id, older_than.isoformat(), now.isoformat())
