"""Background jobs of the console: long work runs in its own process, never on the event loop.

A frame of a million rows, an export of 100,000 sessions, letters for a whole province or a
report take seconds to minutes of CPU. The console records the job (``console_jobs``, through
``storage.jobs``) and starts ``python -m console.jobs`` for it: a child process with its own
database connections, at idle priority (``lower_priority``), so neither the console's requests
nor the bots' answers (which share the machine and, in ``khaosat run``, the event loop) wait for
it or for the GIL. The child marks the job running, writes its progress about twice a second,
and finishes it with the file to download, or fails it with the operation's own message (never
a traceback; that goes to the job's log file). The state lives in the database, so a page
reload, or another coordinator, sees the same job; the page polls it with htmx.

At most ``MAX_RUNNING`` jobs run at once; the others wait queued, in order.

A job's folder (its uploads and results: letters with names and phones, personal exports) is
removed ``KEEP_FILES_DAYS`` after the job ended (``JobRunner.remove_old_files``, at start and
hourly): a download is meant to be taken, not to keep personal data on the server.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import shutil
import sys
import time
import traceback
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from typing import Any, Callable

from fieldwork.background import lower_priority
from storage import is_postgresql_url


MAX_RUNNING = 2
#: How often the child writes its progress (seconds).
PROGRESS_EVERY = 0.5
#: What a job that its process left unfinished says (crash, kill, console stopped).
STOPPED = "the job stopped before it finished"


#: Days a finished job's files stay downloadable.
KEEP_FILES_DAYS = 7
#: What a job whose files were removed says instead of offering them.
FILES_REMOVED = "job_files_removed"
#: Where a job's child finds a PostgreSQL URL (its --db is then "-"): not on its command line,
#: where ps would show the password.
URL_VARIABLE = "KHAOSAT_JOB_DATABASE"


def files_dir(database: Path | str) -> Path:
    """Where jobs keep their uploads and results: beside the database, one folder per job (for a
    PostgreSQL URL, in the folder the console runs in, named after the database), unless the
    configuration's ``[console] files_dir`` says where."""
    if isinstance(database, str):
        return Path.cwd() / f"{urlsplit(database).path.strip('/')}-console-files"
    return database.parent / f"{database.stem}-console-files"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class JobRunner:
    """Starts the child process of each submitted job and reaps it (one per console)."""

    def __init__(self, database: Path | str, jobs, *, max_running: int = MAX_RUNNING, root: Path | None = None):
        self.database = database if is_postgresql_url(database) else Path(database)
        self.jobs = jobs  # storage.jobs.Jobs
        self.root = root or files_dir(self.database)  # [console] files_dir, else files_dir()
        self._slots = asyncio.Semaphore(max_running)
        self._tasks: set[asyncio.Task] = set()
        self._processes: dict[str, asyncio.subprocess.Process] = {}

    def job_dir(self, job_id: str) -> Path:
        return self.root / job_id

    def new_job_dir(self) -> tuple[str, Path]:
        """A fresh job id and its folder (for the uploads the job will read)."""
        job_id = uuid.uuid4().hex
        folder = self.job_dir(job_id)
        folder.mkdir(parents=True, exist_ok=False)
        return job_id, folder

    async def submit(self, kind: str, params: dict[str, Any], *, survey_id: str | None, account_id: int | None,
                     job_id: str | None = None):
        """Record the job (queued) and start its process as soon as a slot is free."""
        if job_id is None:
            job_id, _ = self.new_job_dir()
        job = await self.jobs.create_job(job_id, kind, at=_now(), survey_id=survey_id, account_id=account_id,
                                         params=params)
        task = asyncio.create_task(self._run(job_id), name=f"console job {job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job_id: str) -> None:
        async with self._slots:
            folder = self.job_dir(job_id)
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / "job.log").open("ab") as log_file:
                env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_source_root(),
                                                                                 os.environ.get("PYTHONPATH")]))}
                database = str(self.database)
                if isinstance(self.database, str):
                    env[URL_VARIABLE], database = self.database, "-"
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "console.jobs", "--db", database, "--job", job_id,
                    "--dir", str(folder), stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                    env=env)
                self._processes[job_id] = process
                try:
                    code = await process.wait()
                finally:
                    self._processes.pop(job_id, None)
            if code != 0:  # the child fails its job itself; this covers a crash or a kill
                await self.jobs.fail_job(job_id, _now(), f"{STOPPED} (exit {code})")

    async def remove_old_files(self, now: dt.datetime, *, keep_days: int = KEEP_FILES_DAYS) -> int:
        """Remove the folders of jobs that ended more than ``keep_days`` ago; how many went.

        The folder goes first, then the row forgets it: a stop in between leaves a row whose
        files are already gone, which offers nothing (``result_files`` checks) and is redone."""
        cutoff = (now - dt.timedelta(days=keep_days)).astimezone(dt.timezone.utc).isoformat(timespec="seconds")
        removed = 0
        for job in await self.jobs.ended_before(cutoff):
            folder = self.job_dir(job.id)
            if not folder.exists() and job.result_path is None:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            await self.jobs.forget_files(job.id, keyed(FILES_REMOVED, days=keep_days))
            removed += 1
        return removed

    def process_id(self, job_id: str) -> int | None:
        """The pid of a job's running process (benchmarks pause and resume it), or None."""
        process = self._processes.get(job_id)
        return process.pid if process is not None and process.returncode is None else None

    async def wait(self) -> None:
        """Until every submitted job has ended (tests, benchmarks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop running children (the console is stopping); their jobs end failed."""
        for process in list(self._processes.values()):
            if process.returncode is None:
                process.terminate()
        await self.wait()


def _source_root() -> str:
    """The checkout this console runs from, so the child imports the same code."""
    return str(Path(__file__).resolve().parents[1])


def result_files(job) -> list[Path]:
    """The files a finished job offers for download (a file, or every file of a folder)."""
    if job.status != "done" or not job.result_path:
        return []
    path = Path(job.result_path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path] if path.is_file() else []


def failure_lines(job) -> list[str]:
    """A failed job's message as the page shows it: the message, then its problems."""
    return [line for line in job.message.split("\n") if line.strip()]


# A job's progress and summary are stored as a text key of the console's catalogue with its
# fields, so each reader sees them in their own language; a refusal's message stays the
# operation's own text (the same as the command line's).
_KEYED = "@"


def keyed(key: str, **fields: Any) -> str:
    """A message stored as ``key`` of console/fieldwork_texts.py with ``fields``."""
    return _KEYED + json.dumps([key, fields], ensure_ascii=False)


def job_message(message: str, language: str) -> str:
    """A stored job message in ``language``: a keyed one translated, any other as it is."""
    from console.i18n import t

    if message.startswith(_KEYED):
        try:
            key, fields = json.loads(message[len(_KEYED):])
        except (ValueError, TypeError):
            return message
        return t(key, language, **fields)
    return message


# -- the child process -------------------------------------------------------------------------

class Progress:
    """The latest progress of a job, written to the database by a background task."""

    def __init__(self) -> None:
        self.value = 0.0
        self.message = ""
        self.changed = False

    def __call__(self, value: float, message: str = "") -> None:
        self.value, self.message, self.changed = max(0.0, min(1.0, value)), message, True

    def counter(self, what: str, start: float = 0.0, end: float = 0.9) -> Callable[[int, int | None], None]:
        """A (done, total) callback for operations that count rows, mapped to ``start``..``end``."""
        last = [0.0]

        def update(done: int, total: int | None) -> None:
            moment = time.monotonic()
            if moment - last[0] < 0.1 and (total is None or done < total):
                return
            last[0] = moment
            share = done / total if total else 0.0
            self(start + (end - start) * share, keyed(f"job_counted_{what}", done=f"{done:,}", total=f"{total:,}")
                 if total else keyed(f"job_counting_{what}", done=f"{done:,}"))

        return update


async def _flush(jobs, job_id: str, progress: Progress) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        if progress.changed:
            progress.changed = False
            await jobs.set_progress(job_id, progress.value, progress.message)


async def run_job(database: Path | str, job_id: str, folder: Path) -> int:
    """Run one job in this process; 0 when it ended (done or failed with its message)."""
    from fieldwork import Refused
    from storage import open_storage
    from storage.console_db import ConsoleStores

    from console.job_kinds import KINDS

    async with await ConsoleStores.open(database) as stores:
        if not await stores.jobs.start_job(job_id, _now()):
            return 0  # taken or ended already (e.g. failed when the console restarted)
        job = await stores.jobs.get_job(job_id)
        progress = Progress()
        flusher = asyncio.create_task(_flush(stores.jobs, job_id, progress))
        try:
            work = KINDS.get(job.kind)
            if work is None:
                raise Refused(f"unknown job kind '{job.kind}'")
            async with await open_storage(database) as storage:
                result, message = await work(storage, job, dict(job.params), folder, progress)
        except Refused as refused:
            flusher.cancel()
            await stores.jobs.fail_job(job_id, _now(), "\n".join([refused.message, *refused.problems]))
            return 0
        except Exception as error:  # noqa: BLE001 — the page gets one line, the log the traceback
            flusher.cancel()
            traceback.print_exc()
            await stores.jobs.fail_job(job_id, _now(), f"the job failed: {type(error).__name__}: {error}")
            return 0
        flusher.cancel()
        await stores.jobs.finish_job(job_id, _now(), result_path=result, message=message)
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one console job (started by the console).")
    parser.add_argument("--db", required=True, help="the database file, or - for the URL in $" + URL_VARIABLE)
    parser.add_argument("--job", required=True)
    parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    lower_priority()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    database = os.environ[URL_VARIABLE] if args.db == "-" else Path(args.db)
    return asyncio.run(run_job(database, args.job, args.dir))


if __name__ == "__main__":
    sys.exit(main())
