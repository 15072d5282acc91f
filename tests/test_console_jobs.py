"""Console jobs run in their own process: done with a file, failed with the operation's message
(no traceback), failed as "stopped" when the process dies; the state is in the database."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
from pathlib import Path

from console import fieldwork_texts  # noqa: F401 — the jobs' texts
from console.jobs import STOPPED, JobRunner, job_message, result_files
from fieldwork.surveys import check_survey, store_checked
from storage import open_storage
from storage.console_db import ConsoleStores

SURVEY = Path(__file__).parent / "forms" / "survey"
AT = dt.datetime(2026, 8, 10, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))


async def finished(stores, job_id: str):
    for _ in range(600):
        job = await stores.jobs.get_job(job_id)
        if job.status in ("done", "failed"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end")


async def test_jobs_end_done_failed_or_stopped(tmp_path, database, monkeypatch):
    db = database
    monkeypatch.chdir(tmp_path)  # a PostgreSQL database's job files go in the working folder
    async with await open_storage(db) as storage:
        await store_checked(storage, check_survey(SURVEY / "survey.toml"), AT)
    async with await ConsoleStores.open(db) as stores:
        runner = JobRunner(db, stores.jobs)
        report = await runner.submit("report", {"language": "en"}, survey_id="test-2026", account_id=None)
        refused = await runner.submit("export", {"file_format": "csv", "form_id": "no_such_form"},
                                      survey_id="test-2026", account_id=None)
        done, failed = await finished(stores, report.id), await finished(stores, refused.id)
        assert done.status == "done", done.message
        assert {p.name for p in result_files(done)} == {"report.html", "report.xlsx"}
        assert failed.status == "failed" and failed.message.startswith("no sessions of form 'no_such_form'")
        assert "Traceback" not in failed.message and result_files(failed) == []

        frame = tmp_path / "big.csv"  # long enough to be caught running
        frame.write_text("id,group,unit,name,phone,gender\n" + "".join(
            f"c{i},citizen,xa-a,Người {i},,\n" for i in range(200_000)), encoding="utf-8")
        killed = await runner.submit("frame_import", {"upload": str(frame), "name": "big.csv"},
                                     survey_id="test-2026", account_id=None)
        while (pid := runner.process_id(killed.id)) is None:
            await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        await runner.wait()
        job = await stores.jobs.get_job(killed.id)
        assert job.status == "failed" and job.message.startswith(STOPPED)
    async with await open_storage(db) as storage:
        assert await storage.frame_rows("test-2026") == []  # nothing half-imported


async def test_weight_and_estimate_jobs_use_the_uploaded_design(tmp_path):
    import pandas as pd

    db = tmp_path / "survey.sqlite"
    async with await open_storage(db) as storage:
        await store_checked(storage, check_survey(SURVEY / "survey.toml"), AT)
    data = tmp_path / "data.csv"
    pd.DataFrame({"stratum": ["a"] * 6 + ["b"] * 4, "score": [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]}).to_csv(data, index=False)
    design = tmp_path / "design.toml"
    design.write_text('[design]\nstrata = "stratum"\n\n[[calibrate]]\nvariable = "stratum"\n'
                      'totals = { a = 600, b = 400 }\n', encoding="utf-8")
    async with await ConsoleStores.open(db) as stores:
        runner = JobRunner(db, stores.jobs)
        weighted = await runner.submit("weight", {"data": str(data), "design": str(design)}, survey_id="test-2026",
                                       account_id=None)
        estimated = await runner.submit("estimate", {"data": str(data), "design": str(design), "means": ["score"],
                                                     "by": "stratum"}, survey_id="test-2026", account_id=None)
        broken = design.with_name("broken.toml")
        broken.write_text('[design]\nstrata = "vung"\n', encoding="utf-8")
        refused = await runner.submit("estimate", {"data": str(data), "design": str(broken), "means": ["score"]},
                                      survey_id="test-2026", account_id=None)
        jobs = [await finished(stores, job.id) for job in (weighted, estimated, refused)]
    assert [job.status for job in jobs] == ["done", "done", "failed"], [job.message for job in jobs]
    table = pd.read_csv(result_files(jobs[0])[0])
    weight = next(c for c in table.columns if c not in ("stratum", "score"))
    assert table.groupby("stratum")[weight].sum().round(6).to_dict() == {"a": 600, "b": 400}
    assert "mean" in set(pd.read_csv(result_files(jobs[1])[0], keep_default_na=False).statistic)
    assert "vung" in jobs[2].message and "Traceback" not in jobs[2].message


async def test_an_imported_sample_job_records_the_sample(tmp_path, database, monkeypatch):
    db = database
    monkeypatch.chdir(tmp_path)  # a PostgreSQL database's job files go in the working folder
    async with await open_storage(db) as storage:
        await store_checked(storage, check_survey(SURVEY / "survey.toml"), AT)
    sample = tmp_path / "mau.csv"
    sample.write_text("id,group,unit,name,phone,gender,probability\n" + "".join(
        f"c{i},citizen,xa-a,Người {i},,,0.25\n" for i in range(8)), encoding="utf-8")
    async with await ConsoleStores.open(db) as stores:
        runner = JobRunner(db, stores.jobs)
        job = await runner.submit("sample_import", {"upload": str(sample), "name": "mẫu.csv"}, survey_id="test-2026",
                                  account_id=None)
        done = await finished(stores, job.id)
    assert done.status == "done", done.message
    # Stored by key: each reader sees the summary in their own language.
    assert job_message(done.message, "en") == "imported 8 sample member(s) from mẫu.csv"
    assert job_message(done.message, "vi") == "đã nhập 8 người trong mẫu từ mẫu.csv"
    async with await open_storage(db) as storage:
        assert (await storage.sample_info("test-2026")).source == "imported"
        assert len(await storage.sample_members("test-2026", "main")) == 8


async def test_a_jobs_files_are_removed_a_week_after_it_ended(tmp_path):
    """Letters and personal exports are downloads, not an archive: old job folders go."""
    from console.jobs import KEEP_FILES_DAYS

    db = tmp_path / "survey.sqlite"
    async with await ConsoleStores.open(db) as stores:
        runner = JobRunner(db, stores.jobs)
        ended = {}
        for name, days_ago in (("old", KEEP_FILES_DAYS + 1), ("recent", KEEP_FILES_DAYS - 1)):
            job_id, folder = runner.new_job_dir()
            (folder / "letters.html").write_text("Nguyễn Văn A, 0901234567", encoding="utf-8")
            at = (AT - dt.timedelta(days=days_ago)).astimezone(dt.timezone.utc).isoformat(timespec="seconds")
            await stores.jobs.create_job(job_id, "letters", at=at, survey_id="test-2026")
            await stores.jobs.finish_job(job_id, at, result_path=str(folder))
            ended[name] = job_id
        assert await runner.remove_old_files(AT) == 1
        old, recent = await stores.jobs.get_job(ended["old"]), await stores.jobs.get_job(ended["recent"])
        assert not runner.job_dir(old.id).exists() and result_files(old) == []
        assert old.result_path is None
        assert job_message(old.message, "vi") == f"tệp đã được xóa {KEEP_FILES_DAYS} ngày sau khi xong việc"
        assert [p.name for p in result_files(recent)] == ["letters.html"]
        assert await runner.remove_old_files(AT) == 0  # idempotent


async def test_the_configured_files_dir_holds_the_jobs_files(tmp_path, database, monkeypatch):
    """`[console] files_dir` (relative to the configuration file) is where uploads and results go,
    on either database; without it, a PostgreSQL database's files would land in the folder the
    console was started from."""
    from bot.config import load_config

    (tmp_path / "etc").mkdir()
    config_file = tmp_path / "etc" / "khaosat.toml"
    config_file.write_text('[console]\nfiles_dir = "../console-files"\n', encoding="utf-8")
    root = load_config(config_file).console.files_dir
    assert root.resolve() == (tmp_path / "console-files").resolve()
    elsewhere = tmp_path / "started-here"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    async with await open_storage(database) as storage:
        await store_checked(storage, check_survey(SURVEY / "survey.toml"), AT)
    async with await ConsoleStores.open(database) as stores:
        runner = JobRunner(database, stores.jobs, root=root)
        job = await finished(stores, (await runner.submit("report", {"language": "en"}, survey_id="test-2026",
                                                          account_id=None)).id)
        assert job.status == "done", job.message
        assert all(path.resolve().is_relative_to(root.resolve()) for path in result_files(job))
        assert {p.name for p in result_files(job)} == {"report.html", "report.xlsx"}
    assert list(elsewhere.iterdir()) == []
