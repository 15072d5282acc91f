"""`khaosat demo` is the first thing a newcomer runs: it must work end to end on a fresh install."""

import csv
import re
import subprocess
import sys
from pathlib import Path

from surveys.engine import Status

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_both_bots_against_the_emulators_with_simulated_people(tmp_path, database):
    # On PostgreSQL the URL carries a password (the test server trusts local connections and
    # ignores it): the demo must never print it.
    db = [] if isinstance(database, Path) else ["--db", database.replace("postgres@", "postgres:s3cret@", 1)]
    result = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--out", str(tmp_path), "--respondents", "24",
                             "--no-serve", *db],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output and "s3cret" not in output
    assert "The first person's chat on Telegram" in output and "The first person's chat on Zalo" in output
    assert "The first person's chat on the web" in output and re.search(r"Web pages: [1-9]\d* people", output)
    assert "🤖" in output and "👤" in output
    assert "Bot API request violations: 0" in output and "'failed': 0" in output
    assert output.count(" 0 × 429") == 2
    assert "stuck" not in re.search(r"Simulated people: (.*)", output).group(1)
    # a stratified sample drawn with its inclusion probabilities
    assert re.search(r"Sample drawn: 24 members with inclusion probabilities", output)
    assert "π_h" in output and re.search(r"phuong-dong-ha\s+\d+\s+\d+\s+0\.\d{4}", output)
    # the hard quota turned late people away
    assert int(re.search(r"quota full for (\d+) late people", output).group(1)) > 0
    # the reminder pass on the accelerated clock, delivered through the outbox
    queued, delivered = map(int, re.search(r"Reminders after the clock jump: (\d+) queued, (\d+) delivered",
                                           output).groups())
    assert queued > 0 and delivered == queued
    # khaosat status's text for the demo survey
    assert "khaosat status --survey demo-cchc" in output and "RR1" in output
    rows = list(csv.DictReader((tmp_path / "answers.csv").open(encoding="utf-8-sig")))
    assert len(rows) == 24  # everyone opened the link, so everyone has a session
    assert {row["form_id"] for row in rows} == {"sipas_citizen_example", "par_index_officials_example"}
    assert {row["channel"] for row in rows} == {"telegram", "zalo", "web"}
    assert {row["status"] for row in rows} <= {status.value for status in Status}
    completed = [row for row in rows if row["status"] == "completed"]
    assert completed and all(row["end"] for row in completed)
    assert "khaosat try" in output.splitlines()[-1]


def test_the_demo_stops_with_runs_error_when_the_bots_end_before_they_are_ready():
    """A `run` that fails while starting (a port taken, a database refused) must end the demo
    with its error and stop the emulators, not leave it waiting for a readiness that never comes."""
    import asyncio

    import pytest

    from bot.demo import _until_ready
    from bot.telegram.emulator import BotApiEmulator
    from storage import StorageError

    async def scenario():
        emulator = BotApiEmulator()
        base = await emulator.start()

        async def failing_run():
            await asyncio.sleep(0)
            raise StorageError("the database is locked by another program")

        ready = asyncio.Event()
        task = asyncio.create_task(failing_run())
        with pytest.raises(StorageError, match="locked"):
            await asyncio.wait_for(_until_ready(ready, task, (emulator,)), timeout=30)
        host, port = base.removeprefix("http://").split(":")
        with pytest.raises(OSError):  # the emulator was stopped: nothing listens any more
            await asyncio.open_connection(host, int(port))

    asyncio.run(scenario())
