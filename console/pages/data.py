"""Data: exports in every format and option of ``khaosat export``; weights, estimates and index
scores from an uploaded design file; the report, viewed in the page. All run as background jobs.
Names and phones only for accounts with personal-data access."""

from __future__ import annotations

import asyncio

from aiohttp import web

from console.app import audit, current_account, fieldwork_storage, language, NavEntry, render, request_scope
from console.auth import has_personal, requires
from console.fieldwork_kit import recent_jobs, runner, save_upload, upload_of
from console.i18n import t
from fieldwork import Refused
from fieldwork.data import EXPORT_FORMATS, EXPORT_LANGUAGES, EXPORT_LAYOUTS, ExportOptions

routes = web.RouteTableDef()
NAV = [NavEntry("nav_data", "/surveys/{survey}/data", ("analyst",), order=40)]
JOB_KINDS = ("export", "weight", "estimate", "score", "report")
ACTIONS = ("weight", "estimate", "score")


def _whole_survey(request: web.Request) -> None:
    if request_scope(request).units is not None:
        raise web.HTTPForbidden(reason="units")


async def _page(request: web.Request, *, status: int = 200, problems=(), values=None) -> web.Response:
    project = request_scope(request).project
    forms = sorted({g.form_id for g in project.groups.values()})
    stored = {q.form_id for q in await fieldwork_storage(request).list_questionnaires()}
    return render(request, "fieldwork/data.html", status=status, project=project,
                  forms=[f for f in forms if f in stored] or forms, formats=EXPORT_FORMATS, layouts=EXPORT_LAYOUTS,
                  languages=EXPORT_LANGUAGES, actions=ACTIONS, values=values or {},
                  jobs=await recent_jobs(request, project.id, JOB_KINDS), problems=list(problems))


@routes.get("/surveys/{survey}/data")
@requires("analyst")
async def data_page(request: web.Request) -> web.Response:
    _whole_survey(request)
    return await _page(request)


async def _submit(request: web.Request, kind: str, params: dict, detail: str, job_id: str | None = None):
    project = request_scope(request).project
    job = await runner(request).submit(kind, params, survey_id=project.id, account_id=current_account(request).id,
                                       job_id=job_id)
    await audit(request, kind, f"{detail} (job {job.id})")
    raise web.HTTPSeeOther(f"/surveys/{project.id}/data")


@routes.post("/surveys/{survey}/data/export")
@requires("analyst")
async def export(request: web.Request) -> web.Response:
    _whole_survey(request)
    form = await request.post()
    options = ExportOptions(str(form.get("format", "csv")), str(form.get("layout", "wide")),
                            str(form.get("form", "")) or None, str(form.get("language", "vi")),
                            form.get("personal") == "1")
    if options.personal and not has_personal(current_account(request)):
        raise web.HTTPForbidden(reason="personal")
    try:
        options.check()
    except Refused as refused:
        return await _page(request, status=400, problems=[refused.message])
    params = {"file_format": options.file_format, "layout": options.layout, "form_id": options.form_id,
              "language": options.language, "personal": options.personal}
    await _submit(request, "export", params, f"{options.file_format} {options.layout} form {options.form_id or 'all'}"
                  f" {options.language}" + (" WITH PERSONAL DATA" if options.personal else ""))


@routes.post("/surveys/{survey}/data/statistics")
@requires("analyst")
async def statistics(request: web.Request) -> web.Response:
    _whole_survey(request)
    lang = language(request)
    form = await request.post()
    action = str(form.get("action", ""))
    values = {k: str(form.get(k, "")) for k in ("action", "means", "totals", "by", "unit", "group", "form")}
    problems = []
    if action not in ACTIONS:
        problems.append(f"action: {action or '—'} ({', '.join(ACTIONS)})")
    design, data, rules = upload_of(form, "design"), upload_of(form, "data"), upload_of(form, "rules")
    if action == "weight" and design is None:
        problems.append(t("no_file", lang, what=t("design_file", lang)))
    if action == "score" and rules is None:
        problems.append(t("no_file", lang, what=t("rules_file", lang)))
    if action == "score" and not values["unit"].strip():
        problems.append(f"{t('unit_column', lang)}: ?")
    columns = {k: [c.strip() for c in values[k].split(",") if c.strip()] for k in ("means", "totals")}
    if action == "estimate" and not columns["means"] and not columns["totals"]:
        problems.append("ask for at least one mean or total")
    if problems:
        return await _page(request, status=400, problems=problems, values=values)
    job_id, folder = runner(request).new_job_dir()
    params = {"form_id": values["form"] or None, **columns, "by": values["by"].strip() or None,
              "unit": values["unit"].strip(), "group": values["group"].strip() or None}
    names = []
    for field, upload in (("design", design), ("data", data), ("rules", rules)):
        if upload is not None:
            path, name = await asyncio.to_thread(save_upload, upload, folder / "upload" / field)
            params[field] = str(path)
            names.append(name)
    await _submit(request, action, params, f"{action} with {', '.join(names) or 'the database'}", job_id)


@routes.post("/surveys/{survey}/data/report")
@requires("analyst")
async def report(request: web.Request) -> web.Response:
    _whole_survey(request)
    form = await request.post()
    job_id, folder = runner(request).new_job_dir()
    params = {"language": str(form.get("language", "vi")) if form.get("language") in EXPORT_LANGUAGES else "vi",
              "weight_column": str(form.get("weight_column", "")).strip() or None}
    names = []
    for field in ("scores", "weights"):
        upload = upload_of(form, field)
        if upload is not None:
            path, name = await asyncio.to_thread(save_upload, upload, folder / "upload" / field)
            params[field] = str(path)
            names.append(name)
    if params["weight_column"] and "weights" not in params:
        return await _page(request, status=400, problems=["--weight-column needs --weights FILE"])
    await _submit(request, "report", params, f"report with {', '.join(names) or 'fieldwork only'}", job_id)
