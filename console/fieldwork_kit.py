"""What the fieldwork and data pages share: the job runner, uploads, scope checks, job lists."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from pathlib import Path

from aiohttp import web

from console import fieldwork_texts  # noqa: F401 — registers the pages' texts
from console.app import CONSOLE, console_of, current_account, request_scope, stores
from console.jobs import JobRunner, failure_lines, result_files
from storage.atomic_files import atomic_open

RUNNER = "jobs"
CLEANER = "job files cleaner"
#: How often old job files are looked for (seconds).
CLEAN_EVERY = 3600


def runner(request: web.Request) -> JobRunner:
    return console_of(request).extras[RUNNER]


def install_runner(app: web.Application) -> None:
    """One job runner per console: jobs left unfinished by an earlier process end failed at
    start, and running children are stopped with the console."""
    from console.jobs import STOPPED, _now

    async def start(app: web.Application) -> None:
        console = app[CONSOLE]
        if RUNNER not in console.extras:
            console.extras[RUNNER] = job_runner = JobRunner(console.database, console.stores.jobs,
                                                                   root=console.config.files_dir)
            await console.stores.jobs.fail_unfinished(_now(), f"{STOPPED} (the console was restarted)")
            console.extras[CLEANER] = asyncio.create_task(_remove_old_files(console, job_runner),
                                                          name="console job files")

    async def stop(app: web.Application) -> None:
        cleaner = app[CONSOLE].extras.pop(CLEANER, None)
        if cleaner is not None:
            cleaner.cancel()
        job_runner = app[CONSOLE].extras.pop(RUNNER, None)
        if job_runner is not None:
            await job_runner.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


async def _remove_old_files(console, job_runner: JobRunner) -> None:
    """At start, then hourly: old jobs' files go (``JobRunner.remove_old_files``)."""
    while True:
        try:
            await job_runner.remove_old_files(console.clock())
        except Exception:  # a locked file or a busy database: try again next time
            logging.getLogger(__name__).exception("removing old job files failed")
        await asyncio.sleep(CLEAN_EVERY)


_SAFE_NAME = re.compile(r"[^\w.\-]+")


def upload_of(form, field: str) -> web.FileField | None:
    """The uploaded file of ``field``, or None when nothing was chosen."""
    value = form.get(field)
    if isinstance(value, web.FileField) and value.filename:
        return value
    return None


def uploads_of(form, field: str) -> list[web.FileField]:
    return [v for v in form.getall(field, []) if isinstance(v, web.FileField) and v.filename]


def save_upload(upload: web.FileField, folder: Path) -> tuple[Path, str]:
    """Copy an upload into ``folder`` under a safe version of its name: (path, name as given)."""
    name = Path(upload.filename.replace("\\", "/")).name or "upload"
    safe = _SAFE_NAME.sub("_", name).lstrip(".") or "upload"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    upload.file.seek(0)
    with atomic_open(path, "wb") as handle:  # a full disk leaves no truncated upload for a job to read
        shutil.copyfileobj(upload.file, handle)
    return path, name


def survey_wide(request: web.Request) -> None:
    """Actions that change the whole survey (load, frame, draw, quotas): not for an account
    limited to some units (a commune officer sees their communes, not the province's sample)."""
    if request_scope(request).units is not None:
        raise web.HTTPForbidden(reason="units")


async def recent_jobs(request: web.Request, survey_id: str, kinds: tuple[str, ...]) -> list:
    """This survey's jobs of ``kinds`` that this account may see (its own; an admin all)."""
    account = current_account(request)
    jobs = await stores(request).jobs.list_jobs(survey_id=survey_id,
                                                account_id=None if account.role == "admin" else account.id, limit=20)
    return [job_view(job) for job in jobs if job.kind in kinds]


def int_field(form, field: str, label: str, problems: list[str], *, minimum: int = 0) -> int | None:
    text = str(form.get(field, "")).strip()
    if not re.fullmatch(r"\d+", text) or int(text) < minimum:
        problems.append(label)
        return None
    return int(text)


def job_view(job) -> dict:
    """What the job fragment shows (also used by the pages that list jobs)."""
    files = result_files(job)
    root = Path(job.result_path) if job.result_path else None
    names = [str(f.relative_to(root)) if root and root.is_dir() else f.name for f in files]
    return {"job": job, "files": names if len(names) <= 12 else [n for n in names if "/" not in n],
            "report": "report.html" in names, "problems": failure_lines(job) if job.status == "failed" else [],
            "active": job.status in ("queued", "running")}
