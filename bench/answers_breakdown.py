"""Where an answer's time goes in khaosat's Telegram path (a diagnostic for BENCHMARKS.md).

    python bench/answers_breakdown.py [--respondents 100]

Runs the in-process variant of bench/telegram_answers.py once with instruments attached from
the outside (no project file is changed):
  - engine only: `surveys.engine.step` plus the state/event codecs over the whole stream, no I/O;
  - aiosqlite round trips per update (every call aiosqlite hands to its worker thread), and
    how many of them were COMMITs (each an fsync with synchronous=FULL);
  - how long SQLiteStorage's one asyncio.Lock was held, as a share of the wall time: the lock
    serialises every read and write, so when it is held ~100% of the time it is the ceiling;
  - cProfile of the event-loop thread (the SQLite work itself runs in aiosqlite's thread and is
    seen there only as waiting).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import aiosqlite  # noqa: E402
from aiogram import Bot  # noqa: E402

import telegram_answers as ta  # noqa: E402
from surveys import codec, engine  # noqa: E402


class TimedLock(asyncio.Lock):
    def __init__(self) -> None:
        super().__init__()
        self.held = 0.0
        self.acquisitions = 0
        self._since = 0.0

    async def acquire(self) -> bool:
        await super().acquire()
        self._since = time.perf_counter()
        self.acquisitions += 1
        return True

    def release(self) -> None:
        self.held += time.perf_counter() - self._since
        super().release()


def engine_only(stream: h.Stream) -> float:
    """Seconds to run every event of the stream through the engine and the codecs, as handle() does."""
    form, at = stream.form, h.now()
    started = time.perf_counter()
    for person in stream.respondents:
        state = engine.step(form, engine.new_session(form), engine.Start(at=at)).state
        encoded = codec.encode_state(state)
        for action in person.actions:
            op, _, rest = action.value.partition(":") if action.kind == "press" else ("", "", "")
            seq, _, key = rest.partition(":")
            event = {"c": lambda: engine.Choose(key, int(seq), at), "t": lambda: engine.Toggle(key, int(seq), at),
                     "d": lambda: engine.Done(int(seq), at)}.get(op, lambda: engine.Reply(action.value, at))()
            state = codec.decode_state(encoded)
            result = engine.step(form, state, event)
            for value in result.changes.values():
                codec.encode_value(value)
            codec.encode_event(event)
            encoded = codec.encode_state(result.state)
    return time.perf_counter() - started


async def main(args) -> None:
    form = h.load_sipas()
    stream = h.generate(form, args.respondents)
    seconds = engine_only(stream)
    print(f"engine + codecs only: {stream.updates} updates in {seconds:.2f}s = "
          f"{1e6 * seconds / stream.updates:.0f} µs/update ({stream.updates / seconds:.0f} updates/s ceiling)")

    calls: Counter = Counter()
    original = aiosqlite.Connection._execute

    async def counting(self, fn, *a, **k):
        calls["round trips"] += 1
        if a and isinstance(a[0], str):
            calls[a[0].split()[0].upper()] += 1
        return await original(self, fn, *a, **k)

    args.db_dir.mkdir(parents=True, exist_ok=True)
    bench = ta.KhaosatBench(args.db_dir, stream, synchronous=args.synchronous)
    bot = Bot("123:BREAKDOWN", session=h.InProcessSession())
    await bench.setup(bot)
    lock = TimedLock()
    bench.storage._lock = lock
    aiosqlite.Connection._execute = counting
    profiler = cProfile.Profile()
    profiler.enable()
    started = time.perf_counter()
    result = await h.feed_stream(bench.dispatcher, bot, stream, bench.next_update, None, args.concurrency)
    wall = time.perf_counter() - started
    profiler.disable()
    aiosqlite.Connection._execute = original
    check = await bench.verify()
    await bench.close()
    n = stream.updates
    print(f"khaosat in-process (synchronous={args.synchronous or 'FULL'}): {n / wall:.0f} updates/s, "
          f"{stream.answers / wall:.0f} answers/s under instruments (ok={check['ok']}, errors={len(result.errors)})")
    print(f"aiosqlite round trips: {calls['round trips'] / n:.1f} per update; "
          f"statements per update: " + ", ".join(f"{k} {v / n:.2f}" for k, v in calls.most_common()
                                                 if k != "round trips"))
    print(f"storage lock: held {100 * lock.held / wall:.0f}% of the wall time, {lock.acquisitions / n:.1f} "
          f"acquisitions per update, {1e6 * lock.held / n:.0f} µs held per update")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(18)
    stats.sort_stats("cumulative").print_stats(30)
    text = out.getvalue()
    (args.db_dir / "breakdown.prof.txt").write_text(text)
    print(text if args.verbose else f"cProfile (event-loop thread) written to {args.db_dir / 'breakdown.prof.txt'}")


def parse(argv=None):
    parser = argparse.ArgumentParser(description="where khaosat's per-answer time goes")
    parser.add_argument("--respondents", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default=None)
    parser.add_argument("--db-dir", type=Path, default=Path(tempfile.gettempdir()) / "khaosat-bench")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
