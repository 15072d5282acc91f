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
from exporters.writers import STATA_VERSIONS
from fieldwork.data import EXPORT_FORMATS, EXPORT_LANGUAGES, EXPORT_LAYOUTS, ExportOptions

routes = web.RouteTableDef()
NAV = [NavEntry("nav_data", "/surveys/{survey}/data", ("analyst",), order=40)]
JOB_KINDS = ("export", "weight", "estimate", "score", "report")
ACTIONS = ("weight", "estimate", "score")
#: The CSV delimiters the export form offers, by the name it sends (a tab is no form value).
DELIMITERS = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}
#: The formats that can carry choice labels instead of codes and label headers.
LABEL_FORMATS = ("csv", "xlsx")
EXPORT_DEFAULTS = {"format": "csv", "layout": "wide", "form": "", "language": "vi", "delimiter": "comma",
                   "stata_version": str(ExportOptions.stata_version)}
EXPORT_FLAGS = ("labels", "label_headers", "personal")


def _whole_survey(request: web.Request) -> None:
    if request_scope(request).units is not None:
        raise web.HTTPForbidden(reason="units")


async def _page(request: web.Request, *, status: int = 200, problems=(), values=None,
                export_values=None) -> web.Response:
    project = request_scope(request).project
    forms = sorted({g.form_id for g in project.groups.values()})
    stored = {q.form_id for q in await fieldwork_storage(request).list_questionnaires()}
    return render(request, "fieldwork/data.html", status=status, project=project,
                  forms=[f for f in forms if f in stored] or forms, stored_forms=[f for f in forms if f in stored],
                  formats=EXPORT_FORMATS, layouts=EXPORT_LAYOUTS,
                  languages=EXPORT_LANGUAGES, actions=ACTIONS, values=values or {},
                  delimiters=DELIMITERS, stata_versions=STATA_VERSIONS,
                  export_values=export_values or {**EXPORT_DEFAULTS, **dict.fromkeys(EXPORT_FLAGS, False)},
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
    lang = language(request)
    values = {key: str(form.get(key, default)) for key, default in EXPORT_DEFAULTS.items()}
    values.update({flag: form.get(flag) == "1" for flag in EXPORT_FLAGS})
    if values["personal"] and not has_personal(current_account(request)):
        raise web.HTTPForbidden(reason="personal")
    problems = []
    if values["delimiter"] not in DELIMITERS:
        problems.append(t("bad_choice", lang, field=t("csv_delimiter", lang), value=values["delimiter"],
                          allowed=", ".join(DELIMITERS)))
    if values["stata_version"] not in map(str, STATA_VERSIONS):
        problems.append(t("bad_choice", lang, field=t("stata_version", lang), value=values["stata_version"],
                          allowed=", ".join(map(str, STATA_VERSIONS))))
    if (values["labels"] or values["label_headers"]) and values["format"] not in LABEL_FORMATS:
        problems.append(t("labels_csv_xlsx", lang, format=values["format"]))
    options = ExportOptions(values["format"], values["layout"], values["form"] or None, values["language"],
                            values["personal"], delimiter=DELIMITERS.get(values["delimiter"], ","),
                            stata_version=int(values["stata_version"]) if not problems else 118,
                            labels=values["labels"], label_headers=values["label_headers"])
    try:
        options.check()
    except Refused as refused:
        problems.append(refused.message)
    if problems:
        return await _page(request, status=400, problems=problems, export_values=values)
    params = {"file_format": options.file_format, "layout": options.layout, "form_id": options.form_id,
              "language": options.language, "personal": options.personal, "delimiter": options.delimiter,
              "stata_version": options.stata_version, "labels": options.labels,
              "label_headers": options.label_headers}
    await _submit(request, "export", params, f"{options.file_format} {options.layout} form {options.form_id or 'all'}"
                  f" {options.language} delimiter {values['delimiter']} stata {options.stata_version}"
                  + (" labels" if options.labels else "") + (" label-headers" if options.label_headers else "")
                  + (" WITH PERSONAL DATA" if options.personal else ""))


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
