"""Two checkouts of khaosat on the same answer stream, run after one another, in turns.

    git worktree add /tmp/khaosat-before COMMIT
    python bench/answers_ab.py /tmp/khaosat-before . [--rounds 3] [--runs 3]

This machine's speed moves by ±15% from one minute to the next (other tenants of the host), so
two figures taken a few minutes apart say little about a change of 10%. Here each round runs
checkout A, then checkout B, each in a fresh process doing `--runs` in-process runs of
bench/telegram_answers.py's khaosat measurement (the same 300 SIPAS respondents, 64 updates in
flight, every stored answer checked), and the comparison is made round by round. Each child
imports the checkout it is given (its own storage, bot and surveys packages and its own bench
harness), so the older code is measured with its own bench.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import asyncio, json, sys
from pathlib import Path
root, runs = sys.argv[1], int(sys.argv[2])
sys.path[:0] = [root + "/bench", root]
import _harness as h
import telegram_answers as ta
import storage
from aiogram import Bot
assert Path(storage.__file__).resolve().is_relative_to(Path(root).resolve()), storage.__file__

async def main():
    stream = h.generate(h.load_sipas(), 300)
    rates = []
    for _ in range(runs):
        bench = ta.KhaosatBench(Path(sys.argv[3]), stream)
        bot = Bot("123:AB", session=h.InProcessSession())
        await bench.setup(bot)
        result = await h.feed_stream(bench.dispatcher, bot, stream, bench.next_update, None, 64)
        check = await bench.verify()
        await bench.close()
        assert check["ok"] and not result.errors, (check, result.errors[:3])
        rates.append(stream.answers / result.seconds)
    print(json.dumps(rates))

asyncio.run(main())
"""


def measure(root: Path, runs: int, db_dir: Path) -> list[float]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(root.resolve()), str(runs), str(db_dir)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"answers_ab: the run of {root} failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db-dir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    for root in (args.before, args.after):
        if not (root / "storage" / "sqlite.py").is_file() or not (root / "bench" / "telegram_answers.py").is_file():
            parser.error(f"{root} is not a khaosat checkout (no storage/sqlite.py or bench/telegram_answers.py)")
    ratios = []
    for round_ in range(1, args.rounds + 1):
        before = statistics.median(measure(args.before, args.runs, args.db_dir))
        after = statistics.median(measure(args.after, args.runs, args.db_dir))
        ratios.append(after / before)
        print(f"round {round_}: before {before:,.0f} answers/s, after {after:,.0f} ({after / before:.2f}x)", flush=True)
    print(f"median ratio after/before over {args.rounds} rounds: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
