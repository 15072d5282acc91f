"""Answers per second with 1, 2 and 4 `khaosat run` processes on one database, as ratios in one run.

    python bench/processes.py [--people 240] [--bots 4] [--rounds 2] [--postgresql] [--mode polling]

Real `khaosat run` processes (``python -m bot.cli run``), started by the harness of
tests/test_multiprocess_run.py (``Cluster``): the Telegram emulator and the simulated people in
this process, ``--bots`` bots split between the processes (``polling``: each process polls its
own bots, the deployment for one bot per province) or every process running every bot behind a
round-robin load balancer (``webhook``). Each person opens the survey with a public code,
agrees, and answers 5 integer questions, each as soon as the previous reply arrives. Timed: from
the first /start to the last person finishing; answers/s = 6 × people / seconds (consent + 5).
The platform's limits are lifted (emulator and pace): the bots' own work is measured, not Telegram's
1 message per second per chat.

Rounds alternate the process counts (1, 2, 4, then 4, 2, 1, ...) on a fresh database each, so a
drift of the machine's load weighs on every count alike; the ratios are of the medians.
``--postgresql`` starts a throw-away server (tests/postgres_server.py: durability off, as for the
tests) instead of an SQLite file (synchronous FULL, the project's default).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from test_multiprocess_run import QUESTIONS, Cluster, take_part  # noqa: E402


async def one_round(workdir: Path, database: Path | str, size: int, args) -> float:
    async with Cluster(workdir, database, size, per_second=10_000, per_chat=1_000, bots=args.bots,
                       mode=args.mode) as cluster:
        started = time.perf_counter()
        await asyncio.gather(*(take_part(cluster, person, 120, pause=False) for person in range(args.people)))
        elapsed = time.perf_counter() - started
    return args.people * (QUESTIONS + 1) / elapsed


async def main(args) -> int:
    server = None
    if args.postgresql:
        from postgres_server import PostgresServer, server_binaries

        server = PostgresServer.start(server_binaries())
    counts = [1, 2, 4]
    results: dict[int, list[float]] = {n: [] for n in counts}
    try:
        for round_number in range(args.rounds):
            for size in counts if round_number % 2 == 0 else counts[::-1]:
                workdir = Path(tempfile.mkdtemp(prefix=f"khaosat-procs-{size}-"))
                if server is not None:
                    database: Path | str = await server.create_database(migrated=True)
                else:
                    database = workdir / "survey.sqlite"
                rate = await one_round(workdir, database, size, args)
                results[size].append(rate)
                print(f"round {round_number + 1}: {size} process(es): {rate:,.0f} answers/s", flush=True)
    finally:
        if server is not None:
            server.stop()
    medians = {n: statistics.median(rates) for n, rates in results.items()}
    print(f"\n{platform.python_implementation()} {platform.python_version()}, {args.people} people, "
          f"{args.bots} bots ({args.mode}), {'PostgreSQL' if args.postgresql else 'SQLite'}")
    for n in counts:
        print(f"{n} process(es): median {medians[n]:,.0f} answers/s, {medians[n] / medians[1]:.2f}× one")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=240)
    parser.add_argument("--bots", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mode", choices=("polling", "webhook"), default="polling")
    parser.add_argument("--postgresql", action="store_true")
    sys.exit(asyncio.run(main(parser.parse_args())))
