"""Sample: upload a frame (errors by line and field, nothing imported on error), preview the
allocation per stratum (N_h, n_h, π_h), draw with a seed, replace nonrespondents from the
reserves, import an already drawn sample. Frames and draws run as background jobs."""

from __future__ import annotations

import asyncio

from aiohttp import web

from console.app import audit, console_of, current_account, fieldwork_storage, language, NavEntry, render, request_scope
from console.auth import requires
from console.fieldwork_kit import int_field, recent_jobs, runner, save_upload, survey_wide, upload_of
from console.i18n import t
from console.labels import strata_names
from fieldwork import Refused
from fieldwork.sample import allocation_preview, replace

routes = web.RouteTableDef()
NAV = [NavEntry("nav_sample", "/surveys/{survey}/sample", ("coordinator",), order=20)]
JOB_KINDS = ("frame_import", "draw", "sample_import")


async def _page(request: web.Request, *, status: int = 200, message=None, problems=()) -> web.Response:
    project = request_scope(request).project
    storage = fieldwork_storage(request)
    strata = await storage.sample_strata(project.id)
    return render(request, "fieldwork/sample.html", status=status, project=project,
                  info=await storage.sample_info(project.id), strata=strata,
                  names=strata_names(project, strata, language(request)),
                  jobs=await recent_jobs(request, project.id, JOB_KINDS), message=message, problems=list(problems))


@routes.get("/surveys/{survey}/sample")
@requires("coordinator")
async def sample_page(request: web.Request) -> web.Response:
    survey_wide(request)
    return await _page(request)


@routes.get("/surveys/{survey}/sample/allocation")
@requires("coordinator")
async def allocation(request: web.Request) -> web.Response:
    survey_wide(request)
    try:
        strata = await allocation_preview(fieldwork_storage(request), request_scope(request).project)
    except Refused as refused:
        return render(request, "fieldwork/allocation.html", strata=[], problems=[refused.message, *refused.problems])
    return render(request, "fieldwork/allocation.html", strata=strata, problems=[],
                  names=strata_names(request_scope(request).project, strata, language(request)),
                  total=sum(s.population for s in strata))


async def _upload_job(request: web.Request, kind: str, action: str) -> web.Response:
    survey_wide(request)
    project = request_scope(request).project
    upload = upload_of(await request.post(), "file")
    if upload is None:
        return await _page(request, status=400, problems=[t("no_file", language(request), what="CSV/XLSX")])
    jobs = runner(request)
    job_id, folder = jobs.new_job_dir()
    path, name = await asyncio.to_thread(save_upload, upload, folder / "upload")
    await jobs.submit(kind, {"upload": str(path), "name": name}, survey_id=project.id,
                      account_id=current_account(request).id, job_id=job_id)
    await audit(request, action, f"{name} (job {job_id})")
    raise web.HTTPSeeOther(f"/surveys/{project.id}/sample")


@routes.post("/surveys/{survey}/sample/frame")
@requires("coordinator")
async def upload_frame(request: web.Request) -> web.Response:
    return await _upload_job(request, "frame_import", "frame_upload")


@routes.post("/surveys/{survey}/sample/import")
@requires("coordinator")
async def upload_sample(request: web.Request) -> web.Response:
    return await _upload_job(request, "sample_import", "sample_upload")


@routes.post("/surveys/{survey}/sample/draw")
@requires("coordinator")
async def draw(request: web.Request) -> web.Response:
    survey_wide(request)
    project = request_scope(request).project
    problems: list[str] = []
    seed = int_field(await request.post(), "seed", t("bad_seed", language(request)), problems)
    if problems:
        return await _page(request, status=400, problems=problems)
    job = await runner(request).submit("draw", {"seed": seed}, survey_id=project.id, account_id=current_account(request).id)
    await audit(request, "sample_draw", f"seed {seed} (job {job.id})")
    raise web.HTTPSeeOther(f"/surveys/{project.id}/sample")


@routes.post("/surveys/{survey}/sample/replace")
@requires("coordinator")
async def replace_nonrespondents(request: web.Request) -> web.Response:
    """One respondent (the form's id; a reason is kept in their history), or every refused,
    unreachable or ineligible member, replaced by the next reserve of their stratum."""
    survey_wide(request)
    project = request_scope(request).project
    form = await request.post()
    problems: list[str] = []
    respondent = None
    if str(form.get("respondent", "")).strip():
        respondent = int_field(form, "respondent", t("bad_respondent", language(request)), problems, minimum=1)
    if problems:
        return await _page(request, status=400, problems=problems)
    try:
        result = await replace(fieldwork_storage(request), project, console_of(request).now(), respondent=respondent,
                               reason=str(form.get("reason", "")).strip() or None)
    except Refused as refused:
        return await _page(request, status=400, problems=[refused.message, *refused.problems])
    await audit(request, "sample_replace", "; ".join(f"{old} → {m.respondent_id}" for old, m in result.replaced)
                + (f"; no reserve for {', '.join(map(str, result.exhausted))}" if result.exhausted else ""))
    return await _page(request, message=("ok", t("replaced", language(request), n=len(result.replaced),
                                                   m=len(result.exhausted))))
