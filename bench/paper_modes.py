"""Benchmark the response rates by mode (``exporters.modes``) against the status they are part of.

On the database of ``bench/status.py`` (100,000 sample members, 75,000 sessions; built there on
first use), copied so that migrating it does not touch the shared file, alternates in one process:

* ``survey_status()`` with the mode counts cached (what every refresh costs within 30 s);
* the mode read itself (``storage.paper_entries.read_mode_counts``, a connection of its own);
* the first design's read (each session's latest channel-keyed event), for comparison.

Prints medians and the ratios to ``survey_status()`` (BENCHMARKS.md keeps the ratios). Run:

    python bench/paper_modes.py [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.status import NOW, SURVEY, build  # noqa: E402
from exporters.progress import survey_status  # noqa: E402
from storage import open_storage  # noqa: E402
from storage.answers_read import EVENT_KEY_CHANNELS  # noqa: E402
from storage.paper_entries import read_mode_counts  # noqa: E402
from surveys.project import stored_project  # noqa: E402


def per_event_sql() -> str:
    """The first design: the mode of a member is the channel of their latest session's latest event."""
    cases = " ".join(f"WHEN e.event_key LIKE '{p}:%' THEN '{c}'" for p, c in EVENT_KEY_CHANNELS.items())
    likes = " OR ".join(f"e.event_key LIKE '{p}:%'" for p in EVENT_KEY_CHANNELS)
    mode = (f"coalesce((SELECT CASE {cases} END FROM events e WHERE e.session_id = s.id AND ({likes})"
            " ORDER BY e.revision DESC LIMIT 1), s.channel)")
    return ("SELECT m.stratum, m.disposition, coalesce(" + mode + ", '') AS mode, count(*) FROM sample_members m"
            " LEFT JOIN sessions s ON s.id = (SELECT max(x.id) FROM sessions x WHERE x.respondent_id = m.respondent_id)"
            " WHERE m.survey_id = ? AND m.respondent_id IS NOT NULL GROUP BY 1, 2, 3")


async def measure(db: Path, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"survey_status() (modes cached)": [], "mode read": [], "per-event read": []}
    old = sqlite3.connect(db)
    async with await open_storage(db) as storage:
        project = await stored_project(storage, SURVEY)
        await survey_status(storage, project, NOW)  # warm, and fills the cache
        for _ in range(runs):
            started = time.perf_counter()
            await survey_status(storage, project, NOW)
            times["survey_status() (modes cached)"].append(time.perf_counter() - started)
            started = time.perf_counter()
            read_mode_counts(str(db), SURVEY)
            times["mode read"].append(time.perf_counter() - started)
            started = time.perf_counter()
            old.execute(per_event_sql(), (SURVEY,)).fetchall()
            times["per-event read"].append(time.perf_counter() - started)
    old.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=Path("/tmp/khaosat-bench-status.sqlite"))
    parser.add_argument("--db", type=Path, default=Path("/tmp/khaosat-bench-modes.sqlite"))
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not args.source.is_file():
        build(args.source)
    if not args.db.is_file():
        shutil.copyfile(args.source, args.db)
    times = asyncio.run(measure(args.db, args.runs))
    base = statistics.median(times["survey_status() (modes cached)"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:35s} median {median * 1000:7.1f} ms   {median / base:5.2f}× survey_status()")


if __name__ == "__main__":
    main()
