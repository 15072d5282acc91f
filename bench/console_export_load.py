"""Answers per second through the Telegram bot while the console exports 100,000 sessions.

    python bench/console_export_load.py [--sessions 100000] [--rounds 5] [--respondents 200]

The export is what the console's Data page starts: a job recorded in ``console_jobs`` and run by
``console.jobs.JobRunner`` in its own process (``python -m console.jobs``, niced), reading a
database of 100,000 completed SIPAS sessions and writing an SPSS file. Meanwhile the bot is
measured as bench/telegram_answers.py measures it in process (the real dispatcher, Conversations,
ChatSurveys and SQLite storage; 200 respondents, 64 updates in flight, every stored answer
checked). Rounds alternate, in one run: a bot run while the export process works, and a bot run
while it is paused (SIGSTOP; SIGCONT to resume), so both figures share the machine's minute
(its speed drifts ±15%). When an export ends, the next "with" run starts another.

The export reads its own database file, built once (and kept: ``--export-db``) by cloning the
sessions that real bot runs completed; the bot writes a fresh file per run on the same disk.
Sharing one file would add only SQLite's WAL read marks, which never block the writer.

Goal (issue 13): with the export running, ≥ 90% of the answers per second without it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

import _harness as h  # noqa: E402
import telegram_answers as ta  # noqa: E402
from aiogram import Bot  # noqa: E402

from console.jobs import JobRunner  # noqa: E402
from storage.console_db import ConsoleStores  # noqa: E402


async def seed_sessions(db_dir: Path, respondents: int) -> Path:
    """A database in which the real bot completed ``respondents`` SIPAS sessions."""
    stream = h.generate(h.load_sipas(), respondents, seed=7)
    bench = ta.KhaosatBench(db_dir, stream)
    bot = Bot("123:SEED", session=h.InProcessSession())
    try:
        await bench.setup(bot)
        await h.feed_stream(bench.dispatcher, bot, stream, bench.next_update, None, 64)
        check = await bench.verify()
        assert check["ok"], check["problems"]
    finally:
        await bench.close()
        await bot.session.close()
    return bench.path


def build_export_db(target: Path, sessions: int, db_dir: Path) -> None:
    """Clone the seed's completed sessions (respondents, sessions, answers) up to ``sessions``.

    Bulk SQL for the set-up only (as bench/status.py builds its database): the history trigger
    is dropped in this copy, since a wide export does not read answer_history."""
    seed = asyncio.run(seed_sessions(db_dir, 50))
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    con = sqlite3.connect(seed)
    con.execute("VACUUM INTO ?", (str(target),))
    con.close()
    con = sqlite3.connect(target)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("DROP TRIGGER IF EXISTS answers_history_on_insert")
    template = con.execute("SELECT id, respondent_id, form_id, form_version, channel, status, state, revision,"
                           " created_at, updated_at FROM sessions WHERE status = 'completed'").fetchall()
    answers = {sid: con.execute("SELECT question, value, status, updated_at FROM answers WHERE session_id = ?",
                                (sid,)).fetchall() for sid, *_ in template}
    first_rid = con.execute("SELECT max(id) FROM respondents").fetchone()[0] + 1
    first_sid = con.execute("SELECT max(id) FROM sessions").fetchone()[0] + 1
    have = len(con.execute("SELECT id FROM sessions").fetchall())
    started = time.perf_counter()
    with con:
        for n in range(sessions - have):
            sid, rid, *rest = template[n % len(template)]
            new_rid, new_sid = first_rid + n, first_sid + n
            con.execute("INSERT INTO respondents (id, external_id, pseudonym, created_at, form_id, stratum,"
                        " disposition, disposition_at) SELECT ?, ?, ?, created_at, form_id, stratum, disposition,"
                        " disposition_at FROM respondents WHERE id = ?",
                        (new_rid, f"bench-export:{n}", f"X{n:011d}", rid))
            con.execute("INSERT INTO sessions (id, respondent_id, form_id, form_version, channel, status, state,"
                        " revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (new_sid, new_rid, *rest))
            con.executemany("INSERT INTO answers (session_id, question, value, status, updated_at)"
                            " VALUES (?, ?, ?, ?, ?)", [(new_sid, *a) for a in answers[sid]])
    count = con.execute("SELECT count(*) FROM sessions").fetchone()[0]
    con.close()
    print(f"built {target}: {count:,} sessions in {time.perf_counter() - started:.0f} s", flush=True)


async def bot_run(stream: h.Stream, db_dir: Path, run: int) -> float:
    bench = ta.KhaosatBench(db_dir, stream)
    bot = Bot(f"{900000 + run}:LOAD", session=h.InProcessSession())
    try:
        await bench.setup(bot)
        result = await h.feed_stream(bench.dispatcher, bot, stream, bench.next_update, None, 64)
        check = await bench.verify()
        assert check["ok"] and not result.errors, (check["problems"], result.errors[:3])
        return result.answers_per_second
    finally:
        await bench.close()
        await bot.session.close()
        for path in bench.path.parent.glob("*"):
            path.unlink()
        bench.path.parent.rmdir()


class Export:
    """The console's export job over the big database, paused and resumed between runs."""

    def __init__(self, runner: JobRunner, stores: ConsoleStores, file_format: str):
        self.runner, self.stores, self.file_format = runner, stores, file_format
        self.job_id: str | None = None
        self.started = 0
        self.finished: list[float] = []

    async def ensure_running(self) -> None:
        """Resume the export, or start the next one if it ended (its job must have ended done)."""
        while True:
            pid = self.runner.process_id(self.job_id) if self.job_id else None
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGCONT)
                    return
                except ProcessLookupError:
                    await asyncio.sleep(0.1)
                    continue
            if self.job_id is not None:
                await self.runner.wait()
                job = await self.stores.jobs.get_job(self.job_id)
                assert job.status == "done", (job.status, job.message)
                self.finished.append(time.perf_counter() - self.started)
            job = await self.runner.submit("export", {"file_format": self.file_format, "layout": "wide"},
                                           survey_id=None, account_id=None)
            self.job_id, self.started = job.id, time.perf_counter()
            while self.runner.process_id(self.job_id) is None:
                await asyncio.sleep(0.05)
            await asyncio.sleep(3)  # past Python's start-up and imports: reading sessions

    def pause(self) -> None:
        pid = self.runner.process_id(self.job_id) if self.job_id else None
        if pid is not None:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass

    async def progress(self) -> str:
        job = await self.stores.jobs.get_job(self.job_id)
        return f"{job.status} {job.progress:.0%} {job.message}"

    async def stop(self) -> None:
        pid = self.runner.process_id(self.job_id) if self.job_id else None
        if pid is not None:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        await self.runner.close()


async def measure(args) -> int:
    stream = h.generate(h.load_sipas(), args.respondents)
    stores = await ConsoleStores.open(args.export_db)
    export = Export(JobRunner(args.export_db, stores.jobs), stores, args.format)
    rates: dict[str, list[float]] = {"with export": [], "without": []}
    run = 0
    try:
        for round_ in range(args.rounds):
            order = ("with export", "without") if round_ % 2 == 0 else ("without", "with export")
            for phase in order:
                if phase == "with export":
                    await export.ensure_running()
                else:
                    export.pause()
                run += 1
                rate = await bot_run(stream, args.db_dir, run)
                rates[phase].append(rate)
                if phase == "with export":
                    export.pause()
                print(f"round {round_ + 1} {phase:>11}: {rate:7.0f} answers/s   export: {await export.progress()}",
                      flush=True)
    finally:
        await export.stop()
        await stores.close()
    with_, without = statistics.median(rates["with export"]), statistics.median(rates["without"])
    per_round = [w / o for w, o in zip(rates["with export"], rates["without"])]
    print()
    print(f"machine: {os.cpu_count()} cores; {args.respondents} respondents ({stream.answers} answers) per bot run; "
          f"export of {args.sessions:,} sessions to {args.format} as a console job")
    print(f"median answers/s: without export {without:.0f}, with export {with_:.0f} (ratio of medians "
          f"{with_ / without:.1%})")
    print(f"with / without, round by round: {', '.join(f'{r:.0%}' for r in per_round)}; "
          f"median {statistics.median(per_round):.1%} (goal ≥ 90%)")
    print(f"load average during the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if export.finished:
        print(f"exports finished: {len(export.finished)} (wall time incl. pauses {export.finished[0]:.0f} s)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--respondents", type=int, default=200)
    parser.add_argument("--format", default="sav", choices=["csv", "xlsx", "sav", "dta", "parquet"])
    parser.add_argument("--db-dir", type=Path, default=Path(tempfile.gettempdir()) / "khaosat-bench")
    parser.add_argument("--export-db", type=Path, default=None,
                        help="the 100,000-session database (built on first use; default: in --db-dir)")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    args.db_dir.mkdir(parents=True, exist_ok=True)
    args.export_db = args.export_db or args.db_dir / f"console-export-{args.sessions}.sqlite"
    if args.rebuild or not args.export_db.is_file():
        build_export_db(args.export_db, args.sessions, args.db_dir)
    return asyncio.run(measure(args))


if __name__ == "__main__":
    sys.exit(main())
