"""Response rates by mode: how many of a survey's sample answered on Telegram, Zalo, the web or paper.

A member's mode is the mode of their latest session: the channel of its latest answer (the export's
``mode`` column, ``storage.answers_read.EVENT_KEY_CHANNELS``), so a person who started on Telegram
and whose paper form was typed in counts for paper. Each member is in one AAPOR class
(``exporters.progress``); per mode the rate is RR1's share: completes in that mode over every
eligible member of the sample (the denominator of RR1), so the modes' rates add up to RR1 — the
way mixed-mode surveys report each mode's contribution. Members without a session have no mode.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from surveys.messages import say

#: Modes in the order they are shown (others follow, by name).
ORDER = ("telegram", "zalo", "web", "paper", "console")


@dataclass(frozen=True)
class ModeCount:
    stratum: str
    mode: str
    aapor: str  # I, P, R, NC, O, UH, NE
    n: int


@dataclass(frozen=True)
class ModeRow:
    mode: str
    completed: int  # AAPOR I
    partial: int  # P
    refused: int  # R
    rr1: float | None  # completed / eligible members of the whole sample shown


async def mode_counts(storage, survey_id: str, *, closed: bool) -> tuple[ModeCount, ...]:
    """Per stratum, mode and AAPOR class, the fielded members (``storage.paper.mode_counts``)."""
    from exporters.progress import aapor_class
    from storage.answers_read import EVENT_KEY_CHANNELS

    counts: Counter = Counter()
    for row in await storage.paper.mode_counts(survey_id, EVENT_KEY_CHANNELS):
        counts[(row["stratum"], row["mode"], aapor_class(row["disposition"], closed=closed))] += row["n"]
    return tuple(ModeCount(stratum, mode, aapor, n) for (stratum, mode, aapor), n in sorted(counts.items()))


def mode_rates(counts: tuple[ModeCount, ...], strata: set[str] | None = None) -> list[ModeRow]:
    """One row per mode that has a session, over the strata given (None: all)."""
    kept = [c for c in counts if strata is None or c.stratum in strata]
    eligible = sum(c.n for c in kept if c.aapor != "NE")
    by_mode: dict[str, Counter] = {}
    for c in kept:
        if c.mode:
            by_mode.setdefault(c.mode, Counter())[c.aapor] += c.n
    order = {mode: i for i, mode in enumerate(ORDER)}
    return [ModeRow(mode, k["I"], k["P"], k["R"], k["I"] / eligible if eligible else None)
            for mode, k in sorted(by_mode.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))]


def mode_name(mode: str, language: str) -> str:
    try:
        return say(f"mode_{mode}", language)
    except KeyError:  # a channel with no name of its own yet
        return mode


def modes_line(rows: list[ModeRow], language: str) -> str:
    """"By mode: Telegram 5 (8%) · Paper 1 (2%)", for the status text; "" without any session."""
    if not rows:
        return ""
    parts = [f"{mode_name(r.mode, language)}: {r.completed} ({'–' if r.rr1 is None else f'{r.rr1:.0%}'})"
             for r in rows]
    return say("status_modes", language, modes=" · ".join(parts))
