"""A background job's progress (polled by htmx), its files (downloads checked and audited) and
the report viewed in the page."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aiohttp import web

from console.app import audit, current_account, render, stores
from console.auth import can_see_survey, requires
from console.fieldwork_kit import install_runner, job_view
from console.jobs import result_files
from storage import NotFound

routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    install_runner(app)


async def _job(request: web.Request):
    """The job of the URL, if this account may see it: its own (an admin any), in its scope."""
    account = current_account(request)
    try:
        job = await stores(request).jobs.get_job(request.match_info["job"])
    except NotFound:
        raise web.HTTPNotFound() from None
    if account.role != "admin" and job.account_id != account.id:
        raise web.HTTPForbidden(reason="job")
    if job.survey_id is not None and not can_see_survey(account, job.survey_id):
        raise web.HTTPForbidden(reason="survey")
    return job


@routes.get("/jobs/{job}")
@requires("coordinator", "analyst")
async def job_status(request: web.Request) -> web.Response:
    job = await _job(request)
    template = "fieldwork/job.html" if request.headers.get("HX-Request") else "fieldwork/job_page.html"
    return render(request, template, **job_view(job))


@routes.get("/jobs/{job}/files/{name:.+}")
@requires("coordinator", "analyst")
async def job_file(request: web.Request) -> web.StreamResponse:
    job = await _job(request)
    wanted = request.match_info["name"]
    root = Path(job.result_path) if job.result_path else None
    for path in result_files(job):
        relative = str(path.relative_to(root)) if root and root.is_dir() else path.name
        if relative == wanted:
            break
    else:
        raise web.HTTPNotFound()
    inline = request.query.get("view") == "1" and path.suffix == ".html"
    personal = bool(job.params.get("personal")) or job.kind == "letters"
    await audit(request, "view" if inline else "download",
                f"{job.kind} job {job.id}: {wanted}" + (" (personal data)" if personal else ""),
                survey_id=job.survey_id)
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"Cache-Control": "no-store", "Content-Type": kind + ("; charset=utf-8" if kind == "text/html" else "")}
    if not inline:
        headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
    return web.FileResponse(path, headers=headers)
