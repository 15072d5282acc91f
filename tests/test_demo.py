"""`khaosat demo` is the first thing a newcomer runs: it must work end to end on a fresh install."""

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_simulated_respondents_and_exports_them(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--out", str(tmp_path), "--respondents", "12"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "The first respondent's conversation" in result.stdout
    rows = list(csv.DictReader((tmp_path / "answers.csv").open(encoding="utf-8-sig")))
    assert len(rows) == 12  # one session per simulated respondent
    assert {row["form_id"] for row in rows} == {"sipas_citizen_example", "par_index_officials_example"}
    completed = [row for row in rows if row["status"] == "completed"]
    assert completed, "with the default seed most simulated respondents finish"
    assert all(row["end"] for row in completed)
