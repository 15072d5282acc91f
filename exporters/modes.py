"""Response rates by mode: how many of a survey's sample answered on Telegram, Zalo, the web or paper.

A session's mode is the channel it started on (telegram, zalo, web, console), or ``paper`` when it
was typed from a returned paper form (the export's ``mode`` column says the same); a member's mode is
that of their latest session. Each member is in one AAPOR class (``exporters.progress``); per mode we
count completes (I), partials (P) and refusals (R), and the rate is RR1's share: completes in that
mode over every eligible member of the sample (RR1's denominator), so the modes' rates add up to RR1
— the way mixed-mode surveys report each mode's contribution.

Cost: one probe per member who answered (their latest session), so at national scale (100,000
members) it reads apart from the bots — on a connection of its own in a worker thread — and is kept
``CACHE_SECONDS`` per survey: the Progress page refreshes itself, the modes move slowly.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from surveys.messages import say

#: Modes in the order they are shown (others follow, by name).
ORDER = ("telegram", "zalo", "web", "paper", "console")
#: How long a survey's counts are reused (seconds).
CACHE_SECONDS = 30.0

_cache: dict[tuple[str, str], tuple[float, list[dict]]] = {}


@dataclass(frozen=True)
class ModeCount:
    stratum: str
    mode: str
    aapor: str  # I, P or R
    n: int


@dataclass(frozen=True)
class ModeRow:
    mode: str
    completed: int  # AAPOR I
    partial: int  # P
    refused: int  # R
    rr1: float | None  # completed / eligible members of the strata shown


async def _rows(storage, survey_id: str) -> list[dict]:
    from storage.paper_entries import read_mode_counts

    from storage import is_postgresql_url

    path = await storage.database_file()
    # An in-memory database has only the storage's own connection; PostgreSQL serves concurrent
    # readers itself, so its storage reads it (the thread below is for SQLite's file).
    if not path or is_postgresql_url(str(path)):
        return await storage.paper.mode_counts(survey_id)
    key = (path, survey_id)
    kept = _cache.get(key)
    if kept is not None and time.monotonic() - kept[0] < CACHE_SECONDS:
        return kept[1]
    rows = await asyncio.to_thread(read_mode_counts, path, survey_id)
    _cache[key] = (time.monotonic(), rows)
    return rows


async def mode_counts(storage, survey_id: str, *, closed: bool) -> tuple[ModeCount, ...]:
    """Per stratum, mode and AAPOR class (I, P, R), the fielded members who answered."""
    from exporters.progress import aapor_class

    counts: Counter = Counter()
    for row in await _rows(storage, survey_id):
        counts[(row["stratum"], row["mode"], aapor_class(row["disposition"], closed=closed))] += row["n"]
    return tuple(ModeCount(stratum, mode, aapor, n) for (stratum, mode, aapor), n in sorted(counts.items()))


def mode_rates(counts: tuple[ModeCount, ...], strata: set[str], eligible: int) -> list[ModeRow]:
    """One row per mode over ``strata``; ``eligible``: RR1's denominator over the same strata."""
    by_mode: dict[str, Counter] = {}
    for c in counts:
        if c.stratum in strata:
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
