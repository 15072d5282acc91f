"""Invitations: issue codes and letters (printable HTML, PDF, a QR image per person) for the
survey or one unit, re-issue or revoke one person's codes, and open-mode QR posters for service
counters. Letters are made by a background job and downloaded as a zip."""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from console.app import audit, console_of, current_account, fieldwork_storage, language, NavEntry, render, request_scope
from console.auth import requires
from console.fieldwork_kit import int_field, recent_jobs, runner
from console.i18n import t
from console.labels import level_label
from fieldwork import Refused, invitations

routes = web.RouteTableDef()
NAV = [NavEntry("nav_invitations", "/surveys/{survey}/invitations", ("coordinator",), order=25)]


def units_under(project, unit_id: str) -> set[str]:
    """The unit and every unit below it."""
    below = {unit_id}
    changed = True
    while changed:
        more = {u.id for u in project.units.values() if u.parent in below} - below
        below |= more
        changed = bool(more)
    return below


def _scope_units(request: web.Request, unit: str | None) -> list[str] | None:
    """The units letters are for: the chosen one and below, or the account's, or None (all)."""
    scope = request_scope(request)
    if unit:
        wanted = units_under(scope.project, unit)
        return sorted(wanted if scope.units is None else wanted & scope.units)
    return None if scope.units is None else sorted(scope.units)


async def _page(request: web.Request, *, status: int = 200, message=None, problems=(), values=None):
    scope = request_scope(request)
    project = scope.project
    people = await invitations.survey_respondents(fieldwork_storage(request), project.id, _scope_units(request, None))
    counts = Counter(p.disposition for p in people)
    units = [u for u in project.units.values() if scope.units is None or u.id in scope.units]
    lang = language(request)
    return render(request, "fieldwork/invitations.html", status=status, project=project, units=units,
                  level_names={level: level_label(project, level, lang) for level in project.levels},
                  counts={"sampled": counts["sampled"], "invited": counts["invited"],
                          "other": sum(counts.values()) - counts["sampled"] - counts["invited"]},
                  jobs=await recent_jobs(request, project.id, ("letters",)), message=message,
                  problems=list(problems), values=values or {})


@routes.get("/surveys/{survey}/invitations")
@requires("coordinator")
async def invitations_page(request: web.Request) -> web.Response:
    return await _page(request)


def _ways(form) -> dict:
    return {"telegram": str(form.get("telegram", "")).strip(), "zalo": str(form.get("zalo", "")).strip(),
            "web": str(form.get("web", "")).strip(),
            "title": str(form.get("title", "")).strip()}


def _checked_unit(request: web.Request, form) -> str | None:
    unit = str(form.get("unit", "")).strip() or None
    scope = request_scope(request)
    if unit is not None:
        if unit not in scope.project.units:
            raise web.HTTPNotFound()
        if scope.units is not None and unit not in scope.units:
            raise web.HTTPForbidden(reason="unit")
    return unit


@routes.post("/surveys/{survey}/invitations/letters")
@requires("coordinator")
async def issue_letters(request: web.Request) -> web.Response:
    form = await request.post()
    project = request_scope(request).project
    ways = _ways(form)
    try:
        invitations.channels(ways["telegram"], ways["zalo"], ways["web"])
    except Refused as refused:
        return await _page(request, status=400, problems=[refused.message], values=ways)
    unit = _checked_unit(request, form)
    params = {**ways, "reissue": form.get("reissue") == "1", "unit": unit, "units": _scope_units(request, unit)}
    job = await runner(request).submit("letters", params, survey_id=project.id, account_id=current_account(request).id)
    await audit(request, "letters_issue", f"unit {unit or 'all'}{', reissue' if params['reissue'] else ''} (job {job.id})")
    raise web.HTTPSeeOther(f"/surveys/{project.id}/invitations")


async def _respondent(request: web.Request, form) -> int | None:
    """The respondent id of the form, if it is a fielded member of this survey in the account's units."""
    problems: list[str] = []
    rid = int_field(form, "respondent", t("bad_respondent", language(request)), problems, minimum=1)
    if rid is None:
        return None
    people = await invitations.survey_respondents(fieldwork_storage(request), request_scope(request).project.id,
                                                  _scope_units(request, None))
    return rid if any(p.id == rid for p in people) else None


@routes.post("/surveys/{survey}/invitations/revoke")
@requires("coordinator")
async def revoke(request: web.Request) -> web.Response:
    form = await request.post()
    rid = await _respondent(request, form)
    if rid is None:
        return await _page(request, status=400, problems=[t("bad_respondent", language(request))])
    count = await invitations.revoke(fieldwork_storage(request), rid, console_of(request).clock())
    await audit(request, "invitation_revoke", f"respondent {rid}: {count} code(s)")
    return await _page(request, message=("ok", t("revoked", language(request), n=count, id=rid)))


@routes.post("/surveys/{survey}/invitations/reissue")
@requires("coordinator")
async def reissue_one(request: web.Request) -> web.Response:
    form = await request.post()
    project = request_scope(request).project
    ways = _ways(form)
    rid = await _respondent(request, form)
    problems = [] if rid is not None else [t("bad_respondent", language(request))]
    try:
        invitations.channels(ways["telegram"], ways["zalo"], ways["web"])
    except Refused as refused:
        problems.append(refused.message)
    if problems:
        return await _page(request, status=400, problems=problems, values=ways)
    params = {**ways, "reissue": True, "respondent": rid, "unit": None, "units": _scope_units(request, None)}
    job = await runner(request).submit("letters", params, survey_id=project.id, account_id=current_account(request).id)
    await audit(request, "letters_reissue", f"respondent {rid} (job {job.id})")
    raise web.HTTPSeeOther(f"/surveys/{project.id}/invitations")


@routes.post("/surveys/{survey}/invitations/posters")
@requires("coordinator")
async def posters(request: web.Request) -> web.Response:
    form = await request.post()
    lang = language(request)
    ways = _ways(form)
    problems, codes = [], {}
    for number, line in enumerate(str(form.get("open_codes", "")).splitlines(), start=1):
        if not line.strip():
            continue
        code, sep, counter = line.partition("=")
        if not sep or not code.strip():
            problems.append(t("bad_open_line", lang, n=number))
            continue
        codes[code.strip()] = counter.strip()
    try:
        made = invitations.posters_for(codes, invitations.channels(ways["telegram"], ways["zalo"], ways["web"])) if codes else []
    except Refused as refused:
        problems.append(refused.message)
    if problems or not codes:
        return await _page(request, status=400, problems=problems or [t("bad_open_line", lang, n=1)],
                           values={**ways, "open_codes": str(form.get("open_codes", ""))})
    await audit(request, "posters", ", ".join(codes))
    page = invitations.posters_html(made, ways["title"] or request_scope(request).project.title)
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="posters-{request_scope(request).project.id}.html"'})
