"""Answers per second through the Telegram bot while a coordinator's `/export` of 100,000 sessions runs.

    python bench/chat_export_load.py [--rounds 2] [--respondents 200] [--db /tmp/khaosat-bench-analysts.sqlite]

The export is the chat's own `/export`: `bot.chat.coordination.CoordinatorDesk.run("export", ...)`
awaited as a task on the same event loop as the bot, as the chat core awaits it for a
coordinator (it runs `write_export`: the shared `fieldwork.data.export` in an idle-priority child). Its
storage is opened on the analysts' generated database (`bench/analysts_data.py`: 100,000 sessions
× ~37 answers, built once and reused); in production it is the bot's own file, here a separate
one on the same disk, as bench/console_export_load.py argues (WAL read marks never block the writer).
The bot is measured as there (bench/console_export_load.bot_run: the real dispatcher, Conversations,
ChatSurveys and SQLite storage, 64 updates in flight, every stored answer checked).

A thread cannot be paused, so a round is: one `/export` started, bot runs back to back until it
has ended (only runs that finished while it was still running count); then as many bot runs
without it. Within a phase the rate is the harmonic mean of the runs (same stream: total answers ÷
total time). The order inside a round alternates.

Goal (issue 16): with `/export` running, ≥ 90% of the answers per second without it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

import _harness as h  # noqa: E402
from console_export_load import bot_run  # noqa: E402

from bot.chat.coordination import CoordinatorDesk  # noqa: E402
from bot.chat.events import Capabilities, Document  # noqa: E402
from fieldwork.conversations import Conversations  # noqa: E402
from storage import open_storage  # noqa: E402

TELEGRAM = Capabilities(buttons=True, documents=True, text_limit=4096)


async def with_export(desk: CoordinatorDesk, stream: h.Stream, db_dir: Path, first_run: int) -> tuple[list[float], float]:
    """Bot runs while one `/export` works: the rates of the runs that ended before it, and its time."""
    started = time.perf_counter()
    export = asyncio.create_task(desk.run("export", "telegram:bench:900", TELEGRAM))
    rates, run = [], first_run
    while not export.done():
        rate = await bot_run(stream, db_dir, run)
        run += 1
        if not export.done():
            rates.append(rate)
    [reply] = await export
    assert isinstance(reply, Document), reply
    Path(reply.path).unlink()
    return rates, time.perf_counter() - started


async def measure(args) -> int:
    stream = h.generate(h.load_sipas(), args.respondents)
    export_dir = Path(tempfile.mkdtemp(prefix="khaosat-bench-chat-export-"))
    rates: dict[str, list[float]] = {"with /export": [], "without": []}
    exports: list[float] = []
    run, pair = 0, args.runs_without
    async with await open_storage(args.db) as storage:
        desk = CoordinatorDesk(Conversations(storage), export_dir, lambda: dt.datetime.now(dt.timezone.utc))
        try:
            for round_ in range(args.rounds):
                order = ("with /export", "without") if round_ % 2 == 0 else ("without", "with /export")
                for phase in order:
                    if phase == "with /export":
                        runs_with, seconds = await with_export(desk, stream, args.db_dir, run)
                        run += len(runs_with) + 1
                        exports.append(seconds)
                        assert runs_with, f"the export ({seconds:.1f} s) ended before any bot run did"
                        measured, pair = runs_with, len(runs_with)
                    else:
                        measured = []
                        for _ in range(pair):  # as many as the last /export covered
                            run += 1
                            measured.append(await bot_run(stream, args.db_dir, run))
                    rate = statistics.harmonic_mean(measured)
                    rates[phase].append(rate)
                    print(f"round {round_ + 1} {phase:>12}: {rate:7.0f} answers/s  (runs: "
                          f"{', '.join(f'{r:.0f}' for r in measured)})"
                          + (f"  /export took {exports[-1]:.1f} s" if phase == "with /export" else ""), flush=True)
        finally:
            shutil.rmtree(export_dir, ignore_errors=True)
    with_, without = statistics.median(rates["with /export"]), statistics.median(rates["without"])
    per_round = [w / o for w, o in zip(rates["with /export"], rates["without"])]
    print()
    print(f"machine: {os.cpu_count()} cores; {args.respondents} respondents ({stream.answers} answers) per bot run; "
          f"/export of {args.db.name} (wide CSV) in the bot's event loop")
    print(f"median answers/s: without /export {without:.0f}, with /export {with_:.0f} "
          f"(ratio of medians {with_ / without:.1%})")
    print(f"with / without, round by round: {', '.join(f'{r:.1%}' for r in per_round)}; "
          f"median {statistics.median(per_round):.1%} (goal ≥ 90%)")
    print(f"/export wall times: {', '.join(f'{s:.1f} s' for s in exports)}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/khaosat-bench-analysts.sqlite"),
                        help="the 100,000-session database (built by bench/analysts_data.py if missing)")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--respondents", type=int, default=200)
    parser.add_argument("--runs-without", type=int, default=2,
                        help="bot runs without /export in a round that starts without it (later: as many as with)")
    parser.add_argument("--db-dir", type=Path, default=Path(tempfile.gettempdir()) / "khaosat-bench")
    args = parser.parse_args()
    args.db_dir.mkdir(parents=True, exist_ok=True)
    if not args.db.is_file():
        from analysts_data import build

        started = time.perf_counter()
        build(args.db, args.sessions)
        print(f"built {args.db} ({args.sessions:,} sessions) in {time.perf_counter() - started:.0f} s", flush=True)
    return asyncio.run(measure(args))


if __name__ == "__main__":
    sys.exit(main())
