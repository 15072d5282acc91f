"""`khaosat status`: AAPOR rates, pace, projection and lagging strata on a hand-built database."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from exporters.progress import (
    aapor_class,
    aapor_rates,
    format_progress,
    format_status_text,
    progress,
    status_csv,
    survey_status,
)
from storage import open_storage
from surveys.project import load_survey, store_survey
from surveys.sampling import draw_sample, import_frame_file

FORMS = Path(__file__).parent / "forms" / "survey"
ZONE = dt.timezone(dt.timedelta(hours=7))
T0 = "2026-07-01T08:00:00+07:00"
NOW = dt.datetime(2026, 8, 21, 12, 0, tzinfo=ZONE)  # 10 days left; pace window from 08-14 12:00


def test_aapor_rates_on_a_hand_worked_example():
    # 10 complete, 2 partial, 3 refusals, 4 non-contacts, 1 other, 5 unknown, 2 not eligible
    classes = Counter({"I": 10, "P": 2, "R": 3, "NC": 4, "O": 1, "UH": 5, "NE": 2})
    rates = aapor_rates(classes)
    assert rates.rr1 == pytest.approx(10 / 25)
    assert rates.rr2 == pytest.approx(12 / 25)
    assert rates.coop1 == pytest.approx(10 / 16)
    assert aapor_rates(Counter()).rr1 is None


def test_the_disposition_mapping():
    assert [aapor_class(d, closed=False) for d in ("completed", "partial", "started", "refused", "contacted",
                                                   "invited", "unreachable", "sampled", "ineligible", "quota_full")] \
        == ["I", "P", "O", "R", "O", "NC", "NC", "UH", "NE", "NE"]
    assert aapor_class("started", closed=True) == "P"
    assert aapor_class("replaced", closed=False, replaced_disposition="refused") == "R"
    assert aapor_class("replaced", closed=False, replaced_disposition="ineligible") == "NE"


def frame_file(path: Path, sizes: dict[str, int]) -> Path:
    lines = ["id,group,unit"] + [f"{unit}-{i:03d},citizen,{unit}" for unit, size in sizes.items()
                                 for i in range(size)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def move(storage, rid: int, steps: list[str], at: str) -> None:
    for status in steps:
        await storage.set_disposition(rid, status, at)


@pytest.fixture
async def fieldwork(tmp_path):
    """citizen/xa-a: n 30 (quota 20), citizen/xa-b: n 20, citizen/xa-c: n 10, worked by hand."""
    project = load_survey(FORMS / "survey.toml")
    db = tmp_path / "k.sqlite"
    async with await open_storage(db) as storage:
        await store_survey(storage, project, "", "survey.toml", T0)
        await import_frame_file(storage, project, frame_file(tmp_path / "f.csv", {"xa-a": 120, "xa-b": 80,
                                                                                   "xa-c": 40}), T0)
        await draw_sample(storage, project, 1, T0)
        members = await storage.sample_members(project.id, "main")
        a = sorted(m.respondent_id for m in members if m.stratum == "citizen/xa-a")
        b = sorted(m.respondent_id for m in members if m.stratum == "citizen/xa-b")
        done = ["invited", "contacted", "started", "completed"]
        for rid in a[:3]:
            await move(storage, rid, done, "2026-08-05T09:00:00+07:00")  # before the pace window
        for rid in a[3:10]:
            await move(storage, rid, done, "2026-08-15T09:00:00+07:00")  # inside it
        for rid in a[10:12]:
            await move(storage, rid, ["invited", "contacted", "started"], "2026-08-16T09:00:00+07:00")
        for rid in a[12:15]:
            await move(storage, rid, ["invited", "contacted", "refused"], "2026-08-16T09:00:00+07:00")
        for rid in a[15:17]:
            await move(storage, rid, ["invited"], "2026-08-16T09:00:00+07:00")
        await move(storage, a[17], ["invited", "unreachable"], "2026-08-16T09:00:00+07:00")
        await move(storage, a[18], ["ineligible"], "2026-08-16T09:00:00+07:00")
        for rid in b[:2]:
            await move(storage, rid, done, "2026-08-20T09:00:00+07:00")
    return project, db, a


async def test_status_numbers_projection_and_lagging(fieldwork):
    project, db, a = fieldwork
    async with await open_storage(db) as storage:
        report = await survey_status(storage, project, NOW)
    assert (report.days_left, report.pace_days, report.closed) == (10, 7, False)
    rows = {r.stratum: r for r in report.rows if r.group == "citizen"}
    xa_a = rows["citizen/xa-a"]
    assert (xa_a.allocated, xa_a.sampled, xa_a.invited, xa_a.contacted, xa_a.started, xa_a.completed) == \
        (30, 30, 18, 15, 12, 10)
    assert (xa_a.refused, xa_a.unreachable, xa_a.ineligible, xa_a.partial) == (3, 1, 1, 0)
    # I 10, R 3, NC 3 (2 invited + 1 unreachable), O 2 (started, still open), UH 11, NE 1
    assert xa_a.rr1 == pytest.approx(10 / 29) and xa_a.rr2 == pytest.approx(10 / 29)
    assert xa_a.coop1 == pytest.approx(10 / 15)
    assert (xa_a.quota, xa_a.target, xa_a.quota_fill) == (20, 20, 0.5)
    assert xa_a.pace == pytest.approx(1.0) and xa_a.projection == pytest.approx(20.0)
    assert not xa_a.lagging  # 20 is not below 20
    xa_b = rows["citizen/xa-b"]
    assert (xa_b.quota, xa_b.target, xa_b.completed) == (None, 20, 2)  # no quota: n_h × rate 1.0
    assert xa_b.projection == pytest.approx(2 + 2 / 7 * 10) and xa_b.lagging
    assert rows["citizen/xa-c"].lagging and rows["citizen/xa-c"].projection == 0
    total = next(r for r in report.rows if r.group == "*")
    assert (total.sampled, total.completed, total.target) == (60, 12, 50) and total.lagging
    text = format_status_text(report, project, "vi")
    assert "• Người dân / Xã Á: 10/20 phiếu (50%)" in text and "⚠ Người dân / Xã Bình: 2/20" in text
    assert len(text) < 4096
    assert status_csv(report).splitlines()[0].startswith("group,stratum,allocated,sampled")


async def test_after_closing_started_counts_as_partial_and_replaced_keep_their_code(fieldwork):
    project, db, a = fieldwork
    async with await open_storage(db) as storage:
        await storage.replace_member(project.id, a[12], "2026-08-17T09:00:00+07:00")
        report = await survey_status(storage, project, dt.datetime(2026, 9, 2, 9, 0, tzinfo=ZONE))
    xa_a = next(r for r in report.rows if r.stratum == "citizen/xa-a")
    assert report.closed and report.days_left == 0
    assert (xa_a.sampled, xa_a.replaced, xa_a.refused, xa_a.partial) == (31, 1, 3, 2)
    # I 10, P 2, R 3, NC 3, UH 12 (one more: the replacement), NE 1
    assert xa_a.rr1 == pytest.approx(10 / 30) and xa_a.rr2 == pytest.approx(12 / 30)
    assert xa_a.coop1 == pytest.approx(10 / 15)
    assert xa_a.pace == 0 and xa_a.projection == 10 and xa_a.lagging


async def test_the_old_progress_view_still_works(fieldwork):
    project, db, a = fieldwork
    async with await open_storage(db) as storage:
        rows = await progress(storage)
    row = next(r for r in rows if r.stratum == "citizen/xa-a")
    assert (row.sampled, row.completed, row.refused) == (30, 10, 3)
    assert "citizen/xa-a: 10/30" in format_progress(rows)


def test_cli_status_formats(fieldwork):
    project, db, a = fieldwork
    run = lambda *a: subprocess.run([sys.executable, "-m", "bot.cli", "status", "--db", str(db),
                                     "--at", NOW.isoformat(), *a], capture_output=True, text=True)
    data = json.loads(run("--format", "json").stdout)
    xa_a = next(r for r in data["rows"] if r["stratum"] == "citizen/xa-a")
    assert xa_a["completed"] == 10 and xa_a["quota_fill"] == 0.5 and xa_a["days_left"] == 10
    table = run()
    assert table.returncode == 0 and "xa-a" in table.stdout and "lagging" in table.stdout
    assert "⚠" in run("--format", "text", "--lang", "en").stdout
    assert run("--format", "csv").stdout.count("\n") == 1 + 3 + 1 + 1
