"""Where an answer's time goes in khaosat's Telegram path (a diagnostic for BENCHMARKS.md).

    python bench/answers_breakdown.py [--respondents 300]

Runs the in-process variant of bench/telegram_answers.py once with instruments attached from
the outside (no project file is changed):
  - engine only: `surveys.engine.step` plus the state/event codecs over the whole stream, no I/O;
  - CPU time of the event-loop thread per update (`time.thread_time`, so time spent waiting for
    the GIL or for the storage thread is not counted);
  - the storage thread's hops (`storage.sqlite_hops._in_group`): how many, how many reads and writes
    each carried (group commit), and its CPU and wall time per update.
With two threads on one GIL the two CPU figures together bound the throughput. For a profile
of the loop thread use a sampling profiler (e.g. `py-spy record -f raw`): cProfile charges
the GIL hand-offs to whatever function happens to be running.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
from aiogram import Bot  # noqa: E402

import storage.sqlite_hops as sqlite_storage  # noqa: E402
import telegram_answers as ta  # noqa: E402
from surveys import codec, engine  # noqa: E402


class Hops:
    """Counts and times the storage thread's hops by wrapping ``storage.sqlite_hops._in_group``."""

    def __init__(self) -> None:
        self.hops = self.reads = self.writes = 0
        self.cpu = self.wall = 0.0
        self._original = sqlite_storage._in_group

    def __enter__(self) -> "Hops":
        def timed(conn, reads, writes):
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return self._original(conn, reads, writes)
            finally:
                self.cpu += time.thread_time() - cpu
                self.wall += time.perf_counter() - wall
                self.hops += 1
                self.reads += len(reads)
                self.writes += len(writes)

        sqlite_storage._in_group = timed
        return self

    def __exit__(self, *exc) -> None:
        sqlite_storage._in_group = self._original


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

    args.db_dir.mkdir(parents=True, exist_ok=True)
    bench = ta.KhaosatBench(args.db_dir, stream, synchronous=args.synchronous)
    bot = Bot("123:BREAKDOWN", session=h.InProcessSession())
    await bench.setup(bot)
    with Hops() as hops:
        loop_cpu = time.thread_time()
        result = await h.feed_stream(bench.dispatcher, bot, stream, bench.next_update, None, args.concurrency)
        loop_cpu = time.thread_time() - loop_cpu
    check = await bench.verify()
    await bench.close()
    n = stream.updates
    print(f"khaosat in-process (synchronous={args.synchronous or 'FULL'}): {n / result.seconds:.0f} updates/s, "
          f"{stream.answers / result.seconds:.0f} answers/s (ok={check['ok']}, errors={len(result.errors)})")
    print(f"per update: wall {1e6 * result.seconds / n:.0f} µs; event-loop thread CPU {1e6 * loop_cpu / n:.0f} µs; "
          f"storage thread CPU {1e6 * hops.cpu / n:.0f} µs, busy {1e6 * hops.wall / n:.0f} µs "
          f"({100 * hops.wall / result.seconds:.0f}% of the wall time)")
    print(f"storage hops: {hops.hops} for {n} updates ({hops.hops / n:.2f} per update); "
          f"per hop {hops.reads / max(hops.hops, 1):.1f} reads and {hops.writes / max(hops.hops, 1):.1f} writes "
          f"({(hops.reads + hops.writes) / n:.2f} storage calls per update)")


def parse(argv=None):
    parser = argparse.ArgumentParser(description="where khaosat's per-answer time goes")
    parser.add_argument("--respondents", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--synchronous", choices=("NORMAL", "FULL"), default=None)
    parser.add_argument("--db-dir", type=Path, default=Path(tempfile.gettempdir()) / "khaosat-bench")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
