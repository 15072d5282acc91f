"""Benchmark `khaosat status` on a large survey database.

Builds (once; reused if present) a SQLite database with 100,000 sample members in 100
strata, their disposition histories, 75,000 sessions and 3,000,000 answers — written with
bulk SQL inserts, not through the engine — then times:

* ``exporters.progress.survey_status`` (the function behind the command), warm, several runs;
* ``khaosat status`` end to end in a fresh process (Python start-up and imports included),
  for the table, json and text formats.

Goal: under 1 second. Run:

    python bench/status.py                 # builds /tmp/khaosat-bench-status.sqlite on first run
    python bench/status.py --db PATH --rebuild
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporters.progress import survey_status  # noqa: E402
from storage import open_storage  # noqa: E402
from surveys.project import parse_survey, store_survey  # noqa: E402

SURVEY = "bench-2026"
RESPONDENTS = 100_000
COMMUNES = 100
SESSIONS = 75_000
ANSWERS_PER_SESSION = 40  # 75,000 × 40 = 3,000,000 answers
ZONE = dt.timezone(dt.timedelta(hours=7))
NOW = dt.datetime(2026, 9, 10, 12, 0, tzinfo=ZONE)


def project_toml() -> str:
    units = ['[[units]]\nid = "tinh"\nname = "Tỉnh Benchmark"\nlevel = "province"\n']
    units += [f'[[units]]\nid = "xa-{i:03d}"\nname = "Xã {i}"\nlevel = "commune"\nparent = "tinh"\n'
              for i in range(COMMUNES)]
    quotas = "\n".join(f'"citizen/xa-{i:03d}" = 700' for i in range(0, COMMUNES, 2))
    return f"""
[survey]
id = "{SURVEY}"
title = "Benchmark 2026"
index_year = 2026
opens = 2026-08-01
closes = 2026-09-30
levels = ["province", "commune"]
strata = ["commune"]

{''.join(units)}

[groups.citizen]
label = {{ vi = "Người dân" }}
form_id = "bench_form"
allocation = {{ method = "proportional", n = {RESPONDENTS}, expected_response_rate = 0.8 }}

[quotas.targets]
{quotas}
"""


async def store_project(db: Path) -> None:
    text = project_toml()
    async with await open_storage(db) as storage:
        await store_survey(storage, parse_survey(text), text, "bench.toml", "2026-07-01T08:00:00+07:00")


def build(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    asyncio.run(store_project(db))  # schema (migrations) and the project, through storage
    rng = random.Random(2026)
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous = OFF")
    per = RESPONDENTS // COMMUNES
    started = time.perf_counter()
    with con:
        con.execute("INSERT INTO questionnaires VALUES ('bench_form', '1', 'bench.md', x'00', 'x', '2026-07-01')")
        con.execute("INSERT INTO samples VALUES (?, 'drawn', 1, 'x', '{}', '2026-07-01T08:00:00+07:00')", (SURVEY,))
        con.executemany("INSERT INTO sample_strata VALUES (?, 'citizen', ?, ?, ?, 0)",
                        [(SURVEY, f"citizen/xa-{i:03d}", per * 4, per) for i in range(COMMUNES)])
        con.executemany(
            "INSERT INTO respondents (id, external_id, pseudonym, created_at, form_id, stratum, disposition,"
            " disposition_at) VALUES (?, ?, ?, '2026-07-01T08:00:00+07:00', 'bench_form', ?, 'sampled', NULL)",
            ((i, f"{SURVEY}:{i}", f"R{i:010d}", f"citizen/xa-{(i - 1) // per:03d}")
             for i in range(1, RESPONDENTS + 1)))
        con.executemany(
            "INSERT INTO sample_members (survey_id, frame_id, grp, form_id, stratum, pi, weight, role,"
            " respondent_id) VALUES (?, ?, 'citizen', 'bench_form', ?, 0.25, 4.0, 'main', ?)",
            ((SURVEY, str(i), f"citizen/xa-{(i - 1) // per:03d}", i) for i in range(1, RESPONDENTS + 1)))
        paths = [["invited"], ["invited", "contacted"], ["invited", "contacted", "refused"],
                 ["invited", "contacted", "started"], ["invited", "contacted", "started", "completed"],
                 ["invited", "unreachable"], ["ineligible"]]
        weights = [10, 5, 5, 10, 55, 5, 2]
        history, final = [], []
        for i in range(1, RESPONDENTS + 1):
            path = rng.choices(paths, weights)[0]
            day = NOW - dt.timedelta(days=rng.uniform(0, 40))
            for k, status in enumerate(path):
                history.append((i, status, (day + dt.timedelta(hours=k)).isoformat()))
            final.append((path[-1], history[-1][2], i))
        con.executemany("INSERT INTO disposition_history (respondent_id, status, at) VALUES (?, ?, ?)", history)
        con.executemany("UPDATE respondents SET disposition = ?, disposition_at = ? WHERE id = ?", final)
        con.executemany(
            "INSERT INTO sessions (id, respondent_id, form_id, form_version, channel, status, state, revision,"
            " created_at, updated_at) VALUES (?, ?, 'bench_form', '1', 'telegram', 'active', '{}', 1,"
            " '2026-08-01', '2026-08-01')",
            ((s, s) for s in range(1, SESSIONS + 1)))
        # The step that gave each session its answers (answer_history rows, written by the
        # schema's triggers, point at it).
        con.executemany(
            "INSERT INTO events (session_id, event_key, event, revision, at)"
            " VALUES (?, 'bench', '{}', 1, '2026-08-01')", ((s,) for s in range(1, SESSIONS + 1)))
        con.executemany(
            "INSERT INTO answers (session_id, question, value, status, updated_at)"
            " VALUES (?, ?, '1', 'answered', '2026-08-01')",
            ((s, f"q{q:02d}") for s in range(1, SESSIONS + 1) for q in range(ANSWERS_PER_SESSION)))
    con.execute("ANALYZE")
    con.close()
    print(f"built {db} in {time.perf_counter() - started:.1f} s: {len(history):,} disposition changes")


async def time_function(db: Path, runs: int) -> list[float]:
    from surveys.project import stored_project

    times = []
    async with await open_storage(db) as storage:
        project = await stored_project(storage, SURVEY)
        for _ in range(runs):
            start = time.perf_counter()
            report = await survey_status(storage, project, NOW)
            times.append(time.perf_counter() - start)
    total = next(r for r in report.rows if r.group == "*")
    print(f"  report: {len(report.rows)} rows; total sampled {total.sampled:,}, completed {total.completed:,}, "
          f"RR1 {total.rr1:.1%}")
    return times


def time_cli(db: Path, fmt: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "bot.cli", "status", "--db", str(db), "--survey", SURVEY,
                                 "--at", NOW.isoformat(), "--format", fmt], capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        assert result.returncode == 0, result.stderr.decode()
    return times


def time_imports(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bot.cli", "--help"], capture_output=True, cwd=ROOT, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/khaosat-bench-status.sqlite"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if args.rebuild or not args.db.is_file():
        build(args.db)
    con = sqlite3.connect(args.db)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("respondents", "sample_members", "disposition_history", "sessions", "answers")}
    con.close()
    print("database:", json.dumps(counts), f"{args.db.stat().st_size / 1e6:.0f} MB")
    results = {"survey_status()": asyncio.run(time_function(args.db, args.runs))}
    for fmt in ("table", "json", "text"):
        results[f"khaosat status --format {fmt} (new process)"] = time_cli(args.db, fmt, max(3, args.runs // 2))
    results["khaosat --help (start-up only)"] = time_imports(3)
    for name, times in results.items():
        print(f"{name:50s} median {statistics.median(times) * 1000:7.1f} ms   "
              f"min {min(times) * 1000:7.1f}   max {max(times) * 1000:7.1f}")


if __name__ == "__main__":
    main()
