"""Fieldwork progress per questionnaire and stratum: what coordinators check every day.

Response rate is AAPOR's RR1 restricted to what the sample file tells us: completes over
every sampled person except those found ineligible (everyone else is counted as eligible,
which makes the rate conservative).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from storage import Storage
from surveys.messages import say

#: Dispositions that mean the person was reached in chat (or got further).
_REACHED = {"contacted", "started", "partial", "completed", "refused", "quota_full"}


@dataclass(frozen=True)
class StratumProgress:
    form_id: str
    stratum: str
    sampled: int
    reached: int
    started: int
    completed: int
    refused: int
    unreachable: int
    ineligible: int

    @property
    def response_rate(self) -> float:
        eligible = self.sampled - self.ineligible
        return self.completed / eligible if eligible else 0.0


async def progress(storage: Storage) -> list[StratumProgress]:
    counts: dict[tuple[str, str], Counter] = {}
    for respondent in await storage.list_respondents():
        key = (respondent.form_id or "—", respondent.stratum or "—")
        counts.setdefault(key, Counter())[respondent.disposition] += 1
    rows = []
    for (form_id, stratum), c in sorted(counts.items()):
        rows.append(StratumProgress(
            form_id=form_id, stratum=stratum, sampled=sum(c.values()),
            reached=sum(c[d] for d in _REACHED), started=c["started"] + c["partial"] + c["completed"],
            completed=c["completed"], refused=c["refused"], unreachable=c["unreachable"],
            ineligible=c["ineligible"]))
    return rows


def format_progress(rows: list[StratumProgress], language: str = "vi") -> str:
    """A short text table for a chat message (a phone screen is narrow)."""
    if not rows:
        return say("progress_empty", language)
    lines = [say("progress_title", language)]
    for row in rows:
        lines.append(f"• {row.form_id} / {row.stratum}: {row.completed}/{row.sampled} "
                     f"({row.response_rate:.0%}) · {say('progress_reached', language)} {row.reached} · "
                     f"{say('progress_refused', language)} {row.refused} · "
                     f"{say('progress_unreachable', language)} {row.unreachable}")
    return "\n".join(lines)
