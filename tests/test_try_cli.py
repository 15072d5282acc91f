"""`khaosat try` from a script, and killed mid-session: the console channel end to end."""

from __future__ import annotations

import asyncio
import csv
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from storage import open_storage
from surveys import codec
from surveys.expressions import NOT_APPLICABLE

TOUR = Path(__file__).parent / "forms" / "tour.md"
ROOT = Path(__file__).resolve().parents[1]


def khaosat(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


async def stored(db: Path) -> tuple[list, dict, dict]:
    async with await open_storage(db) as storage:
        sessions = await storage.list_sessions()
        answers = {name: (codec.decode_value(a.value), a.status)
                   for name, a in (await storage.answers(sessions[0].id)).items()}
        history: dict[str, int] = {}
        for row in await storage.answer_history(sessions[0].id):
            history[row["question"]] = history.get(row["question"], 0) + 1
        return sessions, answers, history


SCRIPT = [
    "yes",          # consent
    "17",           # age: refused by the constraint
    "30",
    "nu",           # sex
    "co",           # online: yes, so the services group is relevant
    "web zalo",     # ways: select_multiple by names
    "<",            # back from rating to ways
    "<",            # back to online
    "khong",        # online: no → ways and rating become not applicable
    "/lang en",     # the rest in English
    "",             # comment: optional, skipped
    "25/12/2025",   # visit
]


def test_scripted_session_stores_exactly_the_expected_answers(tmp_path):
    db = tmp_path / "tour.sqlite"
    result = khaosat("try", str(TOUR), "--db", str(db), stdin="\n".join(SCRIPT) + "\n")
    assert result.returncode == 0, result.stderr
    transcript = result.stdout
    assert "Traceback" not in transcript + result.stderr
    # The transcript reads like the chat: prompts, the typed lines, errors and languages.
    assert "[Tiến độ ░░░░░░░░░░ 0%] Quý vị bao nhiêu tuổi?" in transcript
    assert "› 17\nTuổi phải từ 18 đến 100." in transcript
    assert "Câu trả lời hiện tại: Cổng dịch vụ công, Zalo" in transcript  # the back step shows the answer
    assert "Quý vị hài lòng với Cổng dịch vụ công, Zalo ở mức nào?" in transcript  # piping with labels
    assert "[Progress ▓▓▓▓▓▓▓▓░░ 85%] The day you visited the office (day/month/year, e.g. " in transcript
    assert transcript.rstrip().endswith("You have completed the survey. Thank you very much!")

    sessions, answers, history = asyncio.run(stored(db))
    assert [s.status for s in sessions] == ["completed"]
    values = {name: value for name, (value, _) in answers.items()}
    assert values["age"] == 30
    assert values["sex"] == "nu"
    assert values["online"] == "khong"
    assert values["ways"] is NOT_APPLICABLE and values["rating"] is NOT_APPLICABLE
    assert answers["comment"] == (None, "skipped")
    assert str(values["visit"]) == "2025-12-25"
    assert values["n_ways"] == 0
    assert values["start"] is not None and values["end"] is not None
    # History keeps every change: online was answered twice, ways set then made not applicable.
    assert history["online"] == 2 and history["ways"] == 2 and history["age"] == 1
    state = codec.decode_state(sessions[0].state)
    assert state.language == "en"

    out = tmp_path / "answers.csv"
    exported = khaosat("export", "--db", str(db), "--format", "csv", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert len(rows) == 1
    row = rows[0]
    assert (row["form_id"], row["form_version"], row["status"]) == ("tour", "1", "completed")
    assert (row["age"], row["sex"], row["online"], row["ways"], row["visit"]) == ("30", "nu", "khong", "", "2025-12-25")
    assert row["respondent"].startswith("R") and "console:console" not in out.read_text(encoding="utf-8-sig")
    assert "intro" not in rows[0]  # notes have no column


def test_select_multiple_and_piping_in_a_completed_path(tmp_path):
    db = tmp_path / "tour.sqlite"
    lines = ["yes", "45", "nam", "co", "1 3", "4", "Nhanh hơn nữa", "2025-01-02"]
    result = khaosat("try", str(TOUR), "--db", str(db), stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    assert "Quý vị hài lòng với Cổng dịch vụ công, Ứng dụng VNeID ở mức nào?" in result.stdout
    _, answers, _ = asyncio.run(stored(db))
    assert answers["ways"] == (("web", "app"), "answered")
    assert answers["rating"] == ("4", "answered")
    assert answers["n_ways"] == (2, "answered")


def test_end_of_input_pauses_and_the_next_run_resumes(tmp_path):
    db = tmp_path / "tour.sqlite"
    first = khaosat("try", str(TOUR), "--db", str(db), stdin="yes\n30\n")
    assert first.returncode == 0 and "Đã lưu các câu trả lời" in first.stdout
    second = khaosat("try", str(TOUR), "--db", str(db), stdin="nam\n")
    assert "Tiếp tục từ câu quý vị đang trả lời." in second.stdout
    assert second.stdout.index("Giới tính") < second.stdout.index("› nam")
    assert "bao nhiêu tuổi" not in second.stdout  # nothing asked twice


def test_a_form_with_errors_is_refused_before_anything_is_asked(tmp_path):
    broken = tmp_path / "broken.md"
    broken.write_text(TOUR.read_text(encoding="utf-8").replace("count-selected(${ways})", "count-selected(${ways}"),
                      encoding="utf-8")
    result = khaosat("try", str(broken), stdin="yes\n")
    assert result.returncode == 1
    assert "sheet 'survey', row 15, column 'calculation'" in result.stderr
    assert "Traceback" not in result.stderr


# -- killed mid-session --------------------------------------------------------------------------

ANSWERS = {  # a distinctive part of each prompt → what the respondent types
    "đồng ý tham gia": "yes",
    "bao nhiêu tuổi": "30",
    "Giới tính": "nu",
    "dịch vụ công trực tuyến?": "co",
    "kênh nào": "web zalo",
    "hài lòng với": "4",
    "Góp ý": "Cần nhanh hơn",
    "Ngày quý vị": "2025-12-25",
}
EXPECTED = {"age": 30, "sex": "nu", "online": "co", "ways": ("web", "zalo"), "rating": "4",
            "comment": "Cần nhanh hơn", "n_ways": 2}
ASKED = ("age", "sex", "online", "ways", "rating", "comment", "visit")


class Respondent:
    """Drives a real `khaosat try` process: answers each prompt as it appears on stdout."""

    def __init__(self, db: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "try", str(TOUR), "--db", str(db)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.transcript: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_prompt(self) -> str | None:
        """Wait for the next line that is one of the known prompts; None when the process ends."""
        while True:
            try:
                line = self.lines.get(timeout=120)
            except queue.Empty:
                raise AssertionError(f"no prompt within 120 s (process exit code {self.process.poll()}); "
                                     f"transcript so far: {self.transcript[-5:]}") from None
            if line is None:
                return None
            self.transcript.append(line)
            for key in ANSWERS:
                if key in line and not line.startswith("›"):
                    return key

    def answer(self, key: str) -> None:
        self.process.stdin.write(ANSWERS[key] + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def finish(self) -> None:
        while (key := self.next_prompt()) is not None:
            self.answer(key)
        assert self.process.wait(timeout=60) == 0, self.process.stderr.read()


def check_complete_and_single(db: Path) -> None:
    sessions, answers, history = asyncio.run(stored(db))
    assert [s.status for s in sessions] == ["completed"], "one session, never a second one"
    for name, value in EXPECTED.items():
        assert answers[name][0] == value, name
    assert str(answers["visit"][0]) == "2025-12-25"
    # Nothing lost, nothing applied twice: every asked question changed exactly once.
    assert {name: history[name] for name in ASKED} == {name: 1 for name in ASKED}


@pytest.mark.parametrize("answered_before_kill", [0, 2, 4, 6])
def test_killed_while_waiting_resumes_at_the_right_question(tmp_path, answered_before_kill):
    db = tmp_path / "tour.sqlite"
    first = Respondent(db)
    keys = list(ANSWERS)
    for _ in range(answered_before_kill + 1):  # +1: consent
        key = first.next_prompt()
        first.answer(key)
    waiting_for = first.next_prompt()  # printed only after the previous answer was committed
    first.kill()

    second = Respondent(db)
    resumed_at = second.next_prompt()
    assert resumed_at == waiting_for == keys[answered_before_kill + 1]
    assert any("Tiếp tục" in line for line in second.transcript)
    second.answer(resumed_at)
    second.finish()
    check_complete_and_single(db)


@pytest.mark.parametrize("answered_before_kill", [1, 3, 5])
def test_killed_right_after_an_answer_loses_and_doubles_nothing(tmp_path, answered_before_kill):
    """The kill lands before, during or after the write: either way one answer per question."""
    db = tmp_path / "tour.sqlite"
    first = Respondent(db)
    keys = list(ANSWERS)
    for _ in range(answered_before_kill + 1):
        first.answer(first.next_prompt())
    first.kill()

    second = Respondent(db)
    resumed_at = second.next_prompt()
    last_sent = keys[answered_before_kill]
    assert resumed_at in (last_sent, keys[answered_before_kill + 1])
    second.answer(resumed_at)
    second.finish()
    check_complete_and_single(db)
