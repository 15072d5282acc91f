"""`khaosat report`: the HTML page and the workbook, on a survey database built by the real CLI."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from storage import open_storage
from test_scores import RULES

ROOT = Path(__file__).resolve().parents[1]
SURVEY = Path(__file__).parent / "forms" / "survey" / "survey.toml"
AT = "2026-08-21T12:00:00+07:00"  # 10 days before the survey closes

# The rules of test_scores, rating the test survey's communes (names come from the project).
ANSWERS = pd.DataFrame({
    "unit": ["xa-a", "xa-a", "xa-a", "xa-b", "xa-b"],
    "group": ["g1", "g1", "g2", "g1", "g2"],
    "q1": ["3", "1", "3", "2", "3"],
    "q2": ["2", "kb", "3", "2", "2"],
    "q3": ["3", "2", None, "1", "3"],
})


def khaosat(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


async def _fieldwork(db: Path) -> None:
    """xa-a: 12 completes and 3 refusals; xa-b: 2 completes and 4 invited; xa-c: 5 completes."""
    async with await open_storage(db) as storage:
        members = await storage.sample_members("test-2026", "main")
        by = {}
        for m in members:
            by.setdefault(m.stratum, []).append(m.respondent_id)
        a, b, c = (sorted(by[f"citizen/{x}"]) for x in ("xa-a", "xa-b", "xa-c"))
        done = ["invited", "contacted", "started", "completed"]
        plan = [(a[:12], done, "2026-08-15"), (a[12:15], ["invited", "contacted", "refused"], "2026-08-16"),
                (b[:2], done, "2026-08-20"), (b[2:6], ["invited"], "2026-08-20"), (c[:5], done, "2026-08-20")]
        for ids, steps, day in plan:
            for rid in ids:
                for step in steps:
                    await storage.set_disposition(rid, step, f"{day}T09:00:00+07:00")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    db = folder / "k.sqlite"
    frame = folder / "frame.csv"
    frame.write_text("id,group,unit\n" + "".join(f"{u}-{i:03d},citizen,{u}\n" for u, n in
                                                 (("xa-a", 120), ("xa-b", 80), ("xa-c", 40)) for i in range(n)),
                     encoding="utf-8")
    ok(khaosat("survey", "load", SURVEY, "--db", db))
    ok(khaosat("frame", "import", frame, "--db", db))
    ok(khaosat("sample", "draw", "--seed", "1", "--db", db))
    asyncio.run(_fieldwork(db))
    rules = folder / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    answers = folder / "answers.csv"
    ANSWERS.to_csv(answers, index=False)
    scores = folder / "scores.csv"
    ok(khaosat("score", "--data", answers, "--rules", rules, "--unit", "unit", "--group", "group", "--out", scores))
    weights = folder / "weighted.csv"
    # 40 respondents with weights 1, 1.5, … 4 and two nonrespondents with weight 0.
    pd.DataFrame({"id": range(42), "w": [1 + (i % 7) / 2 for i in range(40)] + [0.0, 0.0]}).to_csv(weights,
                                                                                                   index=False)
    return {"folder": folder, "db": db, "scores": scores, "weights": weights}


def test_the_full_report(inputs):
    out = inputs["folder"] / "full"
    result = ok(khaosat("report", "--out", out, "--db", inputs["db"], "--scores", inputs["scores"],
                        "--weights", inputs["weights"], "--weight-column", "w", "--at", AT))
    assert "report.html" in result.stdout and "skipped" not in result.stdout

    page = (out / "report.html").read_text(encoding="utf-8")
    # self-contained: no external resource, every image a PNG data URI
    assert 'src="http' not in page and "<link" not in page and "<script" not in page and "url(" not in page
    images = re.findall(r'<img src="([^"]*)"', page)
    assert len(images) == 6 and all(src.startswith("data:image/png;base64,") for src in images)
    png = base64.b64decode(images[0].removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # Vietnamese by default: title, date in Vietnam time, privacy note, unit names and stratum keys
    for text in ("Khảo sát thử 2026", "Tiến độ thực địa", "21/08/2026 12:00", "mã định danh giả danh",
                 "Xã Á", "Xã Bình", "Phường Cẩm", "citizen/xa-a", "citizen/xa-b", "citizen/xa-c",
                 "Điểm theo lĩnh vực", "Mức độ hài lòng theo khía cạnh"):
        assert text in page, text
    assert '<tr class="lag"><td>Người dân</td><td>citizen/xa-b</td>' in page  # lagging stratum marked

    book = openpyxl.load_workbook(out / "report.xlsx")
    assert book.sheetnames == ["info", "fieldwork", "weights", "scores", "domains", "satisfaction", "charts"]
    for name in ("fieldwork", "weights", "scores", "domains", "satisfaction"):
        sheet = book[name]
        assert sheet.freeze_panes == "A2" and all(cell.font.bold for cell in sheet[1]), name

    fieldwork = _records(book["fieldwork"])
    xa_a = next(r for r in fieldwork if r["Mã tầng"] == "citizen/xa-a")
    assert (xa_a["Đã chọn"], xa_a["Đã mời"], xa_a["Hoàn thành"], xa_a["Chỉ tiêu"]) == (30, 15, 12, 20)
    assert xa_a["RR1"] == pytest.approx(12 / 30) and xa_a["Đạt chỉ tiêu"] == pytest.approx(0.6)
    assert book["fieldwork"].cell(2, 10).number_format == "0.0%"
    xa_b = next(r for r in fieldwork if r["Mã tầng"] == "citizen/xa-b")
    assert xa_b["Chậm"] == "⚠" and xa_a["Chậm"] in (None, "")

    weights = {row[0]: row[1] for row in book["weights"].iter_rows(min_row=2, values_only=True)}
    assert weights["Số dòng"] == 40 and weights["Nhỏ nhất"] == 1.0 and weights["Lớn nhất"] == 4.0
    assert "2 dòng có trọng số 0" in page

    expected = pd.read_csv(inputs["scores"])
    totals = expected[expected.level == "total"].set_index("unit")
    scores = _records(book["scores"])
    assert [r["Mã đơn vị"] for r in scores] == ["xa-a", "xa-b"]  # by rank
    for row in scores:
        assert row["Điểm"] == pytest.approx(totals.at[row["Mã đơn vị"], "value"])
        assert row["KTC 95% — cận trên"] == pytest.approx(totals.at[row["Mã đơn vị"], "ci_high"])
        assert row["Hạng"] == totals.at[row["Mã đơn vị"], "rank"]
    assert scores[0]["Tên đơn vị"] == "Xã Á" and scores[0]["Điểm"] == pytest.approx(2.0)
    domains = _records(book["domains"])
    assert domains[0]["D1 · Domain one (tối đa 2)"] == pytest.approx(1.25)
    assert domains[1]["D2 · Domain two (tối đa 1)"] == pytest.approx(0.4)
    satisfaction = _records(book["satisfaction"])
    assert satisfaction[0]["A1"] == pytest.approx(7 / 12) and satisfaction[0]["Chung"] == pytest.approx(13 / 24)
    assert len(book["charts"]._images) == 6


def _records(sheet) -> list[dict]:
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def test_english_and_missing_parts_are_skipped(inputs):
    out = inputs["folder"] / "en"
    result = ok(khaosat("report", "--out", out, "--scores", inputs["scores"], "--lang", "en", "--at", AT))
    assert "skipped Fieldwork: no database" in result.stdout and "skipped Weights: no weights file" in result.stdout
    page = (out / "report.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in page and "Total points by unit" in page and "pseudonymous ids" in page
    assert "Tiến độ" not in page and "Parts skipped" in page
    assert page.count('<img src="data:image/png;base64,') == 3
    book = openpyxl.load_workbook(out / "report.xlsx")
    assert book.sheetnames == ["info", "scores", "domains", "satisfaction", "charts"]
    assert _records(book["scores"])[0]["Points"] == pytest.approx(2.0)


@pytest.mark.parametrize("args, message", [
    ((), "nothing to report"),
    (("--db", "{db}", "--survey", "nope"), "no survey 'nope'"),
    (("--db", "{folder}/missing.sqlite"), "does not exist"),
    (("--weights", "{weights}"), "no weight column 'weight'"),
    (("--scores", "{weights}"), "not a scores table"),
])
def test_errors_are_clear_and_exit_1(inputs, args, message):
    result = _in_process("report", "--out", inputs["folder"] / "bad", *(a.format(**inputs) for a in args))
    assert result.exit_code == 1 and message in result.stderr, result.output
    assert not (inputs["folder"] / "bad" / "report.html").exists()


def test_an_empty_database_is_refused(tmp_path):
    async def create():
        async with await open_storage(tmp_path / "empty.sqlite"):
            pass

    asyncio.run(create())
    result = _in_process("report", "--out", tmp_path / "out", "--db", tmp_path / "empty.sqlite")
    assert result.exit_code == 1 and "none is loaded yet" in result.stderr


def _in_process(*args):
    """The error cases in-process (faster than a new interpreter each)."""
    from click.testing import CliRunner

    from bot.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])
