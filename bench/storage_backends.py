"""Answers per second through the real step path, one process, on PostgreSQL against SQLite.

    python bench/storage_backends.py [--respondents 300] [--rounds 3] [--concurrency 64]

The bot is bench/telegram_answers.py's (`KhaosatBench`: Conversations + ChatSurveys +
TelegramSurveyBot's router in an aiogram Dispatcher over `open_storage`, callback answers in
process, every reply queued and every stored answer checked), once over a fresh SQLite file
(synchronous=FULL, the default) and once over a fresh PostgreSQL database, in turns, the order
swapped each round, so the machine's drift (±15% a minute here) falls on both alike. The
PostgreSQL server is started here (Debian's binaries, as the tests do) with its own durable
defaults (fsync and synchronous_commit on); the bot connects over its Unix socket (``--tcp``:
over TCP on 127.0.0.1 instead).
Reported: each run's answers/s and each round's ratio PostgreSQL / SQLite (the goal: ≥ 0.7).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

import _harness as h  # noqa: E402
import telegram_answers as ta  # noqa: E402
from aiogram import Bot  # noqa: E402

from tests.postgres_server import PostgresServer, server_binaries  # noqa: E402


def connect_url(server: PostgresServer, url: str, tcp: bool) -> str:
    """``url`` over the server's Unix socket (as a bot on the database's host connects), or over
    TCP on 127.0.0.1 with ``--tcp``."""
    if tcp:
        return url
    return f"{url}?host={server._folder}"  # noqa: SLF001 - the socket's folder (tests/postgres_server.py)


async def one_run(stream: h.Stream, db_dir: Path, database: str | None, concurrency: int) -> float:
    bench = ta.KhaosatBench(db_dir, stream, database=database)
    bot = Bot("123:AB", session=h.InProcessSession())
    await bench.setup(bot)
    try:
        result = await h.feed_stream(bench.dispatcher, bot, stream, bench.next_update, None, concurrency)
        check = await bench.verify()
    finally:
        await bench.close()
        await bot.session.close()
    if not check["ok"] or result.errors:
        raise SystemExit(f"a run stored something else than the engine's answers: {check['problems'] or result.errors[:3]}")
    return stream.answers / result.seconds


async def main(args: argparse.Namespace) -> None:
    binaries = server_binaries()
    if binaries is None:
        raise SystemExit("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    server = PostgresServer.start(binaries, durable=True)
    try:
        stream = h.generate(h.load_sipas(), args.respondents)
        rates: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        ratios = []
        with tempfile.TemporaryDirectory(prefix="khaosat-backends-") as folder:
            for round_ in range(args.rounds):
                order = ("sqlite", "postgresql") if round_ % 2 == 0 else ("postgresql", "sqlite")
                this: dict[str, float] = {}
                for backend in order:
                    url = await server.create_database(migrated=True) if backend == "postgresql" else None
                    try:
                        this[backend] = await one_run(stream, Path(folder), url and connect_url(server, url, args.tcp),
                                                      args.concurrency)
                    finally:
                        if url:
                            await server.drop_database(url)
                    rates[backend].append(this[backend])
                ratios.append(this["postgresql"] / this["sqlite"])
                print(f"round {round_ + 1}: SQLite {this['sqlite']:.0f} answers/s, PostgreSQL "
                      f"{this['postgresql']:.0f} answers/s, ratio {ratios[-1]:.2f}", flush=True)
        print(json.dumps({"respondents": args.respondents, "answers_per_run": stream.answers, "tcp": args.tcp,
                          "concurrency": args.concurrency,
                          "sqlite": [round(r) for r in rates["sqlite"]],
                          "postgresql": [round(r) for r in rates["postgresql"]],
                          "ratios": [round(r, 3) for r in ratios],
                          "median_ratio": round(statistics.median(ratios), 3)}))
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--tcp", action="store_true", help="connect over TCP on 127.0.0.1, not the Unix socket")
    asyncio.run(main(parser.parse_args()))
