"""When fieldwork is open, from the survey projects' dates (``[survey] opens``, ``closes`` and
``grace_days``), read from storage and kept for a minute.

A questionnaire belongs to the surveys whose groups use it; a questionnaire that no stored survey
uses (a test, a demo, open mode without a project) is always open.
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from storage import Storage
from surveys.project import SurveyProject

#: How long the stored projects are trusted before they are read again.
_TTL_SECONDS = 60.0


class Phase(enum.StrEnum):
    NOT_YET = "not_yet"
    OPEN = "open"
    #: Closed, but people already answering may finish (``grace_days``).
    GRACE = "grace"
    CLOSED = "closed"


@dataclass(frozen=True)
class Window:
    survey_id: str
    title: str
    opens: dt.date
    closes: dt.date
    grace_days: int
    zone: ZoneInfo

    def phase(self, at: dt.datetime) -> Phase:
        today = at.astimezone(self.zone).date()
        if today < self.opens:
            return Phase.NOT_YET
        if today <= self.closes:
            return Phase.OPEN
        if today <= self.closes + dt.timedelta(days=self.grace_days):
            return Phase.GRACE
        return Phase.CLOSED


def window_of(project: SurveyProject) -> Window:
    return Window(project.id, project.title, project.opens, project.closes, project.grace_days,
                  ZoneInfo(project.settings.timezone))


class Fieldwork:
    def __init__(self, storage: Storage, monotonic=time.monotonic):
        self.storage = storage
        self.monotonic = monotonic
        self._windows: dict[str, Window] = {}
        self._read_at: float | None = None

    async def window(self, form_id: str | None) -> Window | None:
        """The fieldwork window of the survey that uses `form_id` (the latest-closing one if several)."""
        return (await self._read()).get(form_id or "")

    async def windows(self, form_ids) -> list[Window]:
        """The windows of the surveys that use any of `form_ids`, each once."""
        read = await self._read()
        return list({w.survey_id: w for f in form_ids if (w := read.get(f)) is not None}.values())

    async def _read(self) -> dict[str, Window]:
        if self._read_at is None or self.monotonic() - self._read_at > _TTL_SECONDS:
            windows: dict[str, Window] = {}
            for stored in await self.storage.list_surveys():
                project = SurveyProject.from_json(stored.project)
                for group in project.groups.values():
                    known = windows.get(group.form_id)
                    if known is None or known.closes < project.closes:
                        windows[group.form_id] = window_of(project)
            self._windows, self._read_at = windows, self.monotonic()
        return self._windows
