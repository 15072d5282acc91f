"""What the Telegram bot could reach if storage cost nothing: a ceiling, not a configuration.

    python bench/answers_ceiling.py [--respondents 300] [--runs 3]

Runs bench/telegram_answers.py's in-process khaosat measurement twice per run on the same
stream: as it is, and with storage taken out of the answer path after each session's first
step. In the second case ``linked_session`` is answered from memory (the respondent and the
session as the last step left them) and ``apply_step`` returns the step's result without
writing anything, so nothing is stored and the correctness check after the run is expected to
fail; everything else (aiogram, the handlers, the engine, rendering, building the outbox rows)
runs as usual. The difference between the two is what durable storage costs per answer, and
the second number is the most any storage could give on this machine with this dispatcher.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
import telegram_answers as bench  # noqa: E402

from storage import StepResult  # noqa: E402
from storage.sqlite import SQLiteStorage  # noqa: E402


@contextmanager
def storage_out_of_the_answer_path():
    real_read, real_step = SQLiteStorage.linked_session, SQLiteStorage.apply_step
    linked: dict[str, tuple] = {}
    latest: dict[int, object] = {}

    async def linked_session(self, channel, bot, chat_id, default_form):
        if chat_id not in linked:
            linked[chat_id] = await real_read(self, channel, bot, chat_id, default_form)
        respondent, session = linked[chat_id]
        return respondent, latest.get(session.id, session) if session is not None else None

    async def apply_step(self, session_id, *, expected_revision, state, status, at, **kwargs):
        if session_id not in latest:  # the first step of each session is stored as usual
            done = await real_step(self, session_id, expected_revision=expected_revision, state=state,
                                   status=status, at=at, **kwargs)
            latest[session_id] = done.session
            return done
        after = dataclasses.replace(latest[session_id], state=state, status=status,
                                    revision=expected_revision + 1, updated_at=at)
        latest[session_id] = after
        return StepResult(applied=True, revision=after.revision, session=after)

    SQLiteStorage.linked_session, SQLiteStorage.apply_step = linked_session, apply_step
    try:
        yield
    finally:
        SQLiteStorage.linked_session, SQLiteStorage.apply_step = real_read, real_step


async def main(args) -> None:
    stream = h.generate(h.load_sipas(), args.respondents)
    stored, ceiling = [], []
    for run in range(args.runs):
        row = await bench.run_khaosat(stream, "in-process", args, None, 500 + run)
        assert row["ok"], row
        stored.append(row["answers_per_s"])
        with storage_out_of_the_answer_path():
            ceiling.append((await bench.run_khaosat(stream, "in-process", args, None, 600 + run))["answers_per_s"])
        print(f"run {run + 1}: stored {stored[-1]:,.0f} answers/s; storage taken out {ceiling[-1]:,.0f}", flush=True)
    with_storage, without = statistics.median(stored), statistics.median(ceiling)
    print(f"median of {args.runs}: {with_storage:,.0f} answers/s stored (synchronous=FULL), "
          f"{without:,.0f} with storage out of the answer path; durable storage costs "
          f"{1e6 / with_storage - 1e6 / without:,.0f} µs per answer")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--db-dir", type=Path, default=Path("/tmp"))
    asyncio.run(main(parser.parse_args()))
