"""The analysts' commands at national scale, against the pandas floor, in one run.

On a generated database (`bench/analysts_data.py`: 100,000 sessions × ~37 answers of the SIPAS
example form, 300 communes; built once under /tmp and reused), each measurement runs in a fresh
process that reports its wall time and peak memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``):

* **floor**: what an analyst would write with pandas alone: ``read_sql`` of the answers and of
  the sessions with their sample columns, ``pivot`` to one row per session, ``join``,
  ``to_parquet`` — no decoding of the stored JSON, no labels, no types;
* ``khaosat export --format parquet`` (goals: ≤ 1.3× the floor's time, ≤ 1.2× its memory);
* ``khaosat weight --db`` (post-stratification on a frame attribute) and ``khaosat estimate --db``
  (a mean and a categorical proportion, strata = communes) (goals: ≤ 1.5× the floor's time);
* ``khaosat estimate --db --by unit`` (300 domains; goal: ≤ 2× the same estimate without --by).

Runs alternate (floor, export, weight, estimate, estimate --by, then again) and the median is
reported; every process starts Python and imports what it needs, as a user's command does.

    python bench/analysts.py                       # builds /tmp/khaosat-bench-analysts.sqlite once
    python bench/analysts.py --runs 3 --rebuild
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB = Path("/tmp/khaosat-bench-analysts.sqlite")

DESIGN = """
[design]
strata = "stratum"
weights = "weight"

[[calibrate]]
variable = "sample_khu_vuc"
totals = { thanh_thi = 900000, nong_thon = 1100000 }

[output]
weight = "final_weight"
"""

FLOOR = """
import sqlite3, sys
import pandas as pd
con = sqlite3.connect(sys.argv[1])
answers = pd.read_sql("SELECT session_id, question, value FROM answers", con)
wide = answers.pivot(index="session_id", columns="question", values="value")
del answers
sessions = pd.read_sql(
    "SELECT s.id AS session_id, r.pseudonym AS respondent, s.form_id, s.form_version, s.channel, s.status,"
    " s.updated_at, r.disposition, r.disposition_at, r.stratum, m.survey_id AS survey, m.grp AS \\"group\\","
    " f.unit, m.pi, m.weight, m.role AS sample_role"
    " FROM sessions s JOIN respondents r ON r.id = s.respondent_id"
    " LEFT JOIN sample_members m ON m.respondent_id = s.respondent_id"
    " LEFT JOIN frame_units f ON f.survey_id = m.survey_id AND f.frame_id = m.frame_id", con,
    index_col="session_id")
sessions.join(wide).to_parquet(sys.argv[2])
"""


def child(argv: list[str]) -> None:
    """Run one measurement in this process and print {"seconds", "peak_mb"} as the last line."""
    started = time.perf_counter()
    try:
        if argv[0] == "floor":
            sys.argv = ["floor", *argv[1:]]
            exec(compile(FLOOR, "floor", "exec"), {"__name__": "floor"})
        else:
            sys.path.insert(0, str(ROOT))
            from bot.cli import main as cli

            try:
                cli.main(argv, standalone_mode=False)
            except SystemExit as stop:
                if stop.code:
                    raise
    finally:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": time.perf_counter() - started, "peak_mb": peak}))


def measure(args: list[str]) -> dict[str, float]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{result.stderr[-2000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["wall"] = time.perf_counter() - started  # with Python's start-up
    return figures


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=DB)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="measure only these (floor export weight ...)")
    args = parser.parse_args()
    if args.rebuild or not args.db.exists():
        sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
        from analysts_data import build

        started = time.perf_counter()
        build(args.db, args.sessions)
        print(f"built {args.db} ({args.sessions:,} sessions) in {time.perf_counter() - started:.0f} s")
    folder = Path(tempfile.mkdtemp(prefix="khaosat-bench-analysts-"))
    design = folder / "design.toml"
    design.write_text(DESIGN, encoding="utf-8")
    db = str(args.db)
    jobs = {
        "floor": ["floor", db, str(folder / "floor.parquet")],
        "export": ["export", "--db", db, "--format", "parquet", "--out", str(folder / "export.parquet")],
        "weight": ["weight", "--db", db, "--design", str(design), "--out", str(folder / "weighted.parquet")],
        "estimate": ["estimate", "--db", db, "--design", str(design), "--mean", "hai_long_chung", "--mean",
                     "kq_dung_hen", "--out", str(folder / "estimate.csv")],
        "estimate --by": ["estimate", "--db", db, "--design", str(design), "--mean", "hai_long_chung", "--mean",
                          "kq_dung_hen", "--by", "unit", "--out", str(folder / "estimate-by.csv")],
    }
    if args.only:
        jobs = {k: v for k, v in jobs.items() if k.split()[0] in args.only or k in args.only}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in jobs}
    order = list(jobs)
    for run in range(args.runs):
        for name in (order if run % 2 == 0 else order[::-1]):
            results[name].append(measure(jobs[name]))
            last = results[name][-1]
            print(f"  run {run + 1} {name:14s} {last['seconds']:6.1f} s  {last['peak_mb']:6.0f} MB", flush=True)
    median = {name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in results.items()}
    print(f"\n{'':16s}{'time (s)':>10s}{'peak (MB)':>11s}{'× floor time':>14s}{'× floor memory':>16s}")
    floor = median.get("floor")
    for name, m in median.items():
        ratio = (f"{m['seconds'] / floor['seconds']:14.2f}{m['peak_mb'] / floor['peak_mb']:16.2f}"
                 if floor else "")
        print(f"{name:16s}{m['seconds']:10.1f}{m['peak_mb']:11.0f}{ratio}")
    if "estimate" in median and "estimate --by" in median:
        print(f"\nestimate --by unit (300 domains) / estimate: "
              f"{median['estimate --by']['seconds'] / median['estimate']['seconds']:.2f}×")


if __name__ == "__main__":
    main()
