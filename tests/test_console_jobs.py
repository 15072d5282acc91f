"""Console jobs run in their own process: done with a file, failed with the operation's message
(no traceback), failed as "stopped" when the process dies; the state is in the database."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
from pathlib import Path

from console.jobs import STOPPED, JobRunner, result_files
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


async def test_jobs_end_done_failed_or_stopped(tmp_path):
    db = tmp_path / "survey.sqlite"
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
