"""Background jobs of the console (migration 10): long exports, frame imports, reports.

The row is the job's state as the pages show it: queued → running (progress 0..1, a
message) → done (``result_path``, the file to download) or failed (the message says why).
The runner that does the work lives in the console; this module only records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from .console_db import Transactions
from .errors import NotFound

JOB_STATES = ("queued", "running", "done", "failed")


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    survey_id: str | None
    account_id: int | None
    status: str
    progress: float
    message: str
    params: dict[str, Any]
    result_path: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


_COLUMNS = ("id, kind, survey_id, account_id, status, progress, message, params, result_path, created_at,"
            " started_at, finished_at")


class Jobs(Protocol):
    async def create_job(self, job_id: str, kind: str, *, at: str, survey_id: str | None = None,
                         account_id: int | None = None, params: dict[str, Any] | None = None) -> Job: ...

    async def start_job(self, job_id: str, at: str) -> bool: ...

    async def set_progress(self, job_id: str, progress: float, message: str = "") -> None: ...

    async def finish_job(self, job_id: str, at: str, *, result_path: str | None, message: str = "") -> None: ...

    async def fail_job(self, job_id: str, at: str, message: str) -> None: ...

    async def get_job(self, job_id: str) -> Job: ...

    async def list_jobs(self, *, survey_id: str | None = None, account_id: int | None = None,
                        limit: int = 50) -> list[Job]: ...

    async def fail_unfinished(self, at: str, message: str) -> int: ...

    async def ended_before(self, at: str) -> list[Job]: ...

    async def forget_files(self, job_id: str, message: str) -> None: ...


def _job(row) -> Job:
    values = dict(row)
    values["params"] = json.loads(values["params"])
    return Job(**values)


class SQLiteJobs:
    def __init__(self, tx: Transactions):
        self.tx = tx

    async def create_job(self, job_id: str, kind: str, *, at: str, survey_id: str | None = None,
                         account_id: int | None = None, params: dict[str, Any] | None = None) -> Job:
        await self.tx.execute(
            "INSERT INTO console_jobs (id, kind, survey_id, account_id, status, params, created_at)"
            " VALUES (?, ?, ?, ?, 'queued', ?, ?) ON CONFLICT (id) DO NOTHING",
            (job_id, kind, survey_id, account_id, json.dumps(params or {}, ensure_ascii=False), at))
        return await self.get_job(job_id)

    async def start_job(self, job_id: str, at: str) -> bool:
        """queued → running; False if it was not queued (taken already, or unknown)."""
        count, _ = await self.tx.execute(
            "UPDATE console_jobs SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'",
            (at, job_id))
        return count == 1

    async def set_progress(self, job_id: str, progress: float, message: str = "") -> None:
        await self.tx.execute("UPDATE console_jobs SET progress = ?, message = ? WHERE id = ? AND status = 'running'",
                              (min(1.0, max(0.0, float(progress))), message, job_id))

    async def finish_job(self, job_id: str, at: str, *, result_path: str | None, message: str = "") -> None:
        await self.tx.execute(
            "UPDATE console_jobs SET status = 'done', progress = 1, result_path = ?, message = ?, finished_at = ?"
            " WHERE id = ? AND status IN ('queued', 'running')", (result_path, message, at, job_id))

    async def fail_job(self, job_id: str, at: str, message: str) -> None:
        await self.tx.execute(
            "UPDATE console_jobs SET status = 'failed', message = ?, finished_at = ?"
            " WHERE id = ? AND status IN ('queued', 'running')", (message, at, job_id))

    async def get_job(self, job_id: str) -> Job:
        row = await self.tx.fetchone(f"SELECT {_COLUMNS} FROM console_jobs WHERE id = ?", (job_id,))
        if row is None:
            raise NotFound(f"no job {job_id}")
        return _job(row)

    async def list_jobs(self, *, survey_id: str | None = None, account_id: int | None = None,
                        limit: int = 50) -> list[Job]:
        rows = await self.tx.fetchall(
            # The comparison first: PostgreSQL types a parameter where it first meets it.
            f"SELECT {_COLUMNS} FROM console_jobs WHERE (survey_id = :survey OR :survey IS NULL)"
            " AND (account_id = :account OR :account IS NULL) ORDER BY created_at DESC, id LIMIT :limit",
            {"survey": survey_id, "account": account_id, "limit": limit})
        return [_job(row) for row in rows]

    async def fail_unfinished(self, at: str, message: str) -> int:
        """At start-up: jobs left queued or running by a stopped process end failed (nothing runs them)."""
        count, _ = await self.tx.execute(
            "UPDATE console_jobs SET status = 'failed', message = ?, finished_at = ?"
            " WHERE status IN ('queued', 'running')", (message, at))
        return count

    async def ended_before(self, at: str) -> list[Job]:
        """Jobs that ended (done or failed) before ``at``, oldest first: their files may go."""
        rows = await self.tx.fetchall(
            f"SELECT {_COLUMNS} FROM console_jobs WHERE status IN ('done', 'failed') AND finished_at < ?"
            " ORDER BY finished_at, id", (at,))
        return [_job(row) for row in rows]

    async def forget_files(self, job_id: str, message: str) -> None:
        """A job's files were removed: it offers nothing to download and says why."""
        await self.tx.execute("UPDATE console_jobs SET result_path = NULL, message = ? WHERE id = ?",
                              (message, job_id))
