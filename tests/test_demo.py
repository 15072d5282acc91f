"""`khaosat demo` is the first thing a newcomer runs: it must work end to end on a fresh install."""

import csv
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_both_bots_against_the_emulators_with_simulated_people(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--out", str(tmp_path), "--respondents", "24"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert "The first person's chat on Telegram" in output and "The first person's chat on Zalo" in output
    assert "🤖" in output and "👤" in output
    assert "Bot API request violations: 0" in output and "'failed': 0" in output
    assert output.count(" 0 × 429") == 2
    assert "stuck" not in re.search(r"Simulated people: (.*)", output).group(1)
    rows = list(csv.DictReader((tmp_path / "answers.csv").open(encoding="utf-8-sig")))
    assert len(rows) == 24  # everyone opened the link, so everyone has a session
    assert {row["form_id"] for row in rows} == {"sipas_citizen_example", "par_index_officials_example"}
    assert {row["channel"] for row in rows} == {"telegram", "zalo"}
    completed = [row for row in rows if row["status"] == "completed"]
    assert completed and all(row["end"] for row in completed)
