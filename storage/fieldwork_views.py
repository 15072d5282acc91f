"""Read-only views of fieldwork for the coordinator console: completes per day and the people
who have not finished, with why (never opened a chat, stopped at question n, unreachable,
refused). Aggregates the fieldwork tables; writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .console_db import Transactions
from .personal_crypto import opened

#: Why a sample member has not finished (``NonRespondent.reason``).
REASONS = ("not_invited", "never_opened", "opened", "stopped", "refused", "unreachable")


@dataclass(frozen=True)
class NonRespondent:
    respondent_id: int
    pseudonym: str
    group: str
    form_id: str
    stratum: str
    unit: str | None
    disposition: str
    reason: str
    answered: int  # answers in their latest session of their form (calculations included)
    last_question: str | None
    has_chat: bool
    reminders: int
    last_activity: str | None
    name: str | None = None  # personal data: only when asked for
    phone: str | None = None


class FieldworkViews(Protocol):
    async def completes_by_day(self, survey_id: str, utc_offset_minutes: int) -> list[tuple[str, str, int]]: ...

    async def nonrespondents(self, survey_id: str, *, personal: bool = False) -> list[NonRespondent]: ...


_NONRESPONDENTS = r"""
WITH m AS (
    SELECT sm.respondent_id AS rid, sm.grp, sm.stratum, sm.form_id, fu.unit, r.pseudonym, r.disposition,
           sm.stage >= 1 OR EXISTS (SELECT 1 FROM invitations i WHERE i.respondent_id = r.id) AS invited,
           EXISTS (SELECT 1 FROM chat_links l WHERE l.respondent_id = r.id) AS has_chat,
           (SELECT max(s.id) FROM sessions s WHERE s.respondent_id = r.id AND s.form_id = sm.form_id) AS sid
    FROM sample_members sm
    JOIN respondents r ON r.id = sm.respondent_id
    LEFT JOIN frame_units fu ON fu.survey_id = sm.survey_id AND fu.frame_id = sm.frame_id
    WHERE sm.survey_id = :survey AND sm.replaced_by IS NULL
      AND r.disposition NOT IN ('completed', 'ineligible', 'quota_full', 'replaced')
)
SELECT m.*,
       -- the engine's own entries (__consent__) are not questions of the form
       (SELECT count(*) FROM answers a WHERE a.session_id = m.sid AND a.status = 'answered'
        AND a.question NOT LIKE '\_\_%' ESCAPE '\') AS answered,
       (SELECT a.question FROM answers a WHERE a.session_id = m.sid AND a.status = 'answered'
        ORDER BY a.updated_at DESC, a.rowid DESC LIMIT 1) AS last_question,
       (SELECT s.updated_at FROM sessions s WHERE s.id = m.sid) AS last_activity,
       (SELECT count(*) FROM reminders rm WHERE rm.respondent_id = m.rid AND rm.withdrawn_at IS NULL) AS reminders
       {personal}
FROM m {personal_join}
ORDER BY m.grp, m.stratum, m.rid
"""


def _reason(disposition: str, invited: bool, has_chat: bool, answered: int) -> str:
    if disposition in ("refused", "unreachable"):
        return disposition
    if answered:
        return "stopped"
    if has_chat or disposition in ("contacted", "started", "partial"):
        return "opened"
    return "never_opened" if invited else "not_invited"


class SQLiteFieldworkViews:
    def __init__(self, tx: Transactions):
        self.tx = tx

    async def completes_by_day(self, survey_id: str, utc_offset_minutes: int) -> list[tuple[str, str, int]]:
        """(stratum, local date, members who first completed that day), by date."""
        rows = await self.tx.fetchall(
            "SELECT sm.stratum, date(h.at, :offset) AS day, count(*) FROM ("
            "  SELECT h.respondent_id, min(h.at) AS at FROM disposition_history h"
            "  JOIN sample_members sm ON sm.respondent_id = h.respondent_id"
            "  WHERE h.status = 'completed' AND sm.survey_id = :survey GROUP BY h.respondent_id) h"
            " JOIN sample_members sm ON sm.respondent_id = h.respondent_id"
            " GROUP BY sm.stratum, date(h.at, :offset) ORDER BY day",
            {"survey": survey_id, "offset": f"{int(utc_offset_minutes):+d} minutes"})
        return [(row[0], row[1], row[2]) for row in rows]

    async def nonrespondents(self, survey_id: str, *, personal: bool = False) -> list[NonRespondent]:
        """Fielded members (not replaced) who have not completed and are not out of scope
        (ineligible, quota full), with why; ``personal`` adds names and phones."""
        sql = _NONRESPONDENTS.format(
            personal=", p.name, p.phone" if personal else "",
            personal_join="LEFT JOIN respondent_personal p ON p.respondent_id = m.rid" if personal else "")
        out = []
        for row in await self.tx.fetchall(sql, {"survey": survey_id}):
            name, phone = opened(row["name"], row["phone"]) if personal else (None, None)  # encrypted at rest
            out.append(NonRespondent(
                respondent_id=row["rid"], pseudonym=row["pseudonym"], group=row["grp"], form_id=row["form_id"],
                stratum=row["stratum"],
                unit=row["unit"], disposition=row["disposition"],
                reason=_reason(row["disposition"], bool(row["invited"]), bool(row["has_chat"]), row["answered"]),
                answered=row["answered"], last_question=row["last_question"], has_chat=bool(row["has_chat"]),
                reminders=row["reminders"], last_activity=row["last_activity"],
                name=name, phone=phone))
        return out
