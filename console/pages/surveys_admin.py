"""Surveys: the stored projects and their versions; load a project file and its questionnaires
by upload (every problem shown in place, with sheet, row and column; nothing stored unless all
is valid)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import web

from console.app import audit, console_of, current_account, fieldwork_storage, language, NavEntry, render
from console.auth import can_see_survey, requires
from console.fieldwork_kit import save_upload, upload_of, uploads_of
from console.i18n import t
from fieldwork import Refused
from fieldwork.form_summary import summarize
from fieldwork.sample import sample_summary
from fieldwork.surveys import check_survey, store_checked
from storage import NotFound
from surveys.project import SurveyProject

routes = web.RouteTableDef()
NAV = [NavEntry("nav_manage_surveys", "/surveys", ("coordinator",), order=5)]


async def _surveys(request: web.Request) -> list[dict]:
    storage = fieldwork_storage(request)
    account = current_account(request)
    rows = []
    loaded_forms = {q.form_id for q in await storage.list_questionnaires()}
    for stored in await storage.list_surveys():
        if can_see_survey(account, stored.id):
            forms = sorted({group.form_id for group in SurveyProject.from_json(stored.project).groups.values()})
            rows.append({"survey": stored, "versions": await storage.survey_versions(stored.id),
                         "sample": sample_summary(await storage.sample_info(stored.id)),
                         "forms": [(form_id, form_id in loaded_forms) for form_id in forms]})
    return rows


async def _page(request: web.Request, *, status: int = 200, message=None, problems=(), loaded=None) -> web.Response:
    """``loaded``: the survey just loaded, whose questionnaires' summaries are shown (what the chat
    will do with each, before fieldwork)."""
    summaries = [summarize(form) for form in loaded.forms] if loaded is not None else []
    return render(request, "fieldwork/surveys.html", status=status, surveys=await _surveys(request),
                  message=message, problems=list(problems), summaries=summaries,
                  loaded_id=loaded.project.id if loaded is not None else None)


@routes.get("/surveys")
@requires("coordinator")
async def surveys_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/surveys/load")
@requires("coordinator")
async def load(request: web.Request) -> web.Response:
    account = current_account(request)
    lang = language(request)
    form = await request.post()
    project_upload = upload_of(form, "project")
    if project_upload is None:
        return await _page(request, status=400, problems=[t("no_file", lang, what=".toml")])
    if account.role != "admin" and account.units:
        return await _page(request, status=403, problems=[t("survey_wide_only", lang)])
    with tempfile.TemporaryDirectory(prefix="khaosat-upload-") as scratch:
        folder = Path(scratch)
        project_path, project_name = save_upload(project_upload, folder)
        units = upload_of(form, "units")
        if units is not None:
            save_upload(units, folder)
        form_paths = tuple(save_upload(upload, folder / "forms")[0] for upload in uploads_of(form, "forms"))
        try:  # pyxform takes a while per form: not on the event loop
            checked = await asyncio.to_thread(check_survey, project_path, form_paths, name=project_name)
            if not can_see_survey(account, checked.project.id) or (account.role != "admin" and not account.surveys):
                raise Refused(t("not_your_survey", lang, id=checked.project.id))
            loaded = await store_checked(fieldwork_storage(request), checked, console_of(request).clock(),
                                         name=project_name)
        except Refused as refused:
            await audit(request, "survey_load_refused", f"{project_name}: {refused.message}")
            return await _page(request, status=400, message=("error", refused.message), problems=refused.problems)
    project = loaded.project
    await audit(request, "survey_load", f"{project_name}: version {loaded.version}"
                + ("" if loaded.new else " (unchanged)")
                + "".join(f"; form {q.form_id} {q.version}" for q in loaded.forms), survey_id=project.id)
    text = t("survey_loaded" if loaded.new else "survey_unchanged", lang, title=project.title, id=project.id,
             version=loaded.version)
    return await _page(request, message=("ok", text), loaded=loaded)


@routes.get("/surveys/{survey}/versions/{version:\\d+}")
@requires("coordinator", "analyst")
async def version_source(request: web.Request) -> web.Response:
    try:
        stored = await fieldwork_storage(request).get_survey(request.match_info["survey"],
                                                            int(request.match_info["version"]))
    except NotFound:
        raise web.HTTPNotFound() from None
    return web.Response(text=stored.source, content_type="text/plain", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{stored.id}-v{stored.version}.toml"'})
