"""Quotas and reminders: view and edit targets, hard/soft, reminder offsets and quiet hours.
Every change is checked by the survey file's own parser, shown for confirmation, stored as a new
survey version and audited."""

from __future__ import annotations

import re

from aiohttp import web

from console.app import audit, current_account, console_of, fieldwork_storage, language, NavEntry, render, request_scope
from console.auth import requires
from console.fieldwork_kit import survey_wide
from console.i18n import t
from fieldwork import Refused
from fieldwork.settings import check_edit, quota_table, reminder_table, save_edit

routes = web.RouteTableDef()
NAV = [NavEntry("nav_settings", "/surveys/{survey}/settings", ("coordinator",), order=30)]


def form_values(project) -> dict[str, str]:
    """The stored settings as the form's fields."""
    q, r = quota_table(project), reminder_table(project)
    return {"targets": "\n".join(f"{k} = {v}" for k, v in sorted(q["targets"].items())),
            "hard": "1" if q["hard"] else "", "count_at": q["count_at"],
            "release_after_hours": str(q["release_after_hours"]),
            "after_days": ", ".join(map(str, r["after_days"])), "max_count": str(r["max_count"]),
            "quiet_start": r["quiet_hours"]["start"], "quiet_end": r["quiet_hours"]["end"],
            "text_vi": r.get("text", {}).get("vi", ""), "text_en": r.get("text", {}).get("en", "")}


_FIELDS = ("targets", "hard", "count_at", "release_after_hours", "after_days", "max_count", "quiet_start", "quiet_end",
           "text_vi", "text_en")


def tables_of(values: dict[str, str], lang: str) -> tuple[dict, dict, list[str]]:
    """The [quotas] and [reminders] tables a form describes, and what could not be read at all
    (the rest is checked by the survey parser, with the file's key names)."""
    problems: list[str] = []

    def whole(text: str, key: str) -> int | None:
        if re.fullmatch(r"\s*-?\d+\s*", text):
            return int(text)
        problems.append(t("bad_number", lang, field=key))
        return None

    targets = {}
    for line in values["targets"].splitlines():
        if not line.strip():
            continue
        key, sep, number = line.partition("=")
        key = key.strip().strip('"')
        if not sep or not key:
            problems.append(t("bad_number", lang, field=f"quotas.targets: '{line.strip()}'"))
            continue
        value = whole(number, f'quotas.targets."{key}"')
        if value is not None:
            targets[key] = value
    days = [d.strip() for d in values["after_days"].split(",") if d.strip()]
    if not all(re.fullmatch(r"\d+", d) for d in days):
        problems.append(t("bad_number_list", lang, field="reminders.after_days"))
        days = []
    quotas = {"count_at": values["count_at"], "hard": values["hard"] == "1", "targets": targets}
    release = whole(values["release_after_hours"], "quotas.release_after_hours")
    if release is not None:
        quotas["release_after_hours"] = release
    reminders = {"after_days": [int(d) for d in days],
                 "quiet_hours": {"start": values["quiet_start"].strip(), "end": values["quiet_end"].strip()}}
    max_count = whole(values["max_count"], "reminders.max_count") if values["max_count"].strip() else len(days)
    if max_count is not None:
        reminders["max_count"] = max_count
    texts = {lang_: values[f"text_{lang_}"].strip() for lang_ in ("vi", "en") if values[f"text_{lang_}"].strip()}
    if texts:
        reminders["text"] = texts
    return quotas, reminders, problems


def _posted(form) -> dict[str, str]:
    return {field: str(form.get(field, "")) for field in _FIELDS}


def _page(request: web.Request, values: dict, *, status: int = 200, message=None, problems=(), changes=None,
          project=None):
    return render(request, "fieldwork/settings.html", status=status, project=project or request_scope(request).project,
                  values=values, message=message, problems=list(problems), changes=changes)


@routes.get("/surveys/{survey}/settings")
@requires("coordinator")
async def settings_page(request: web.Request) -> web.Response:
    survey_wide(request)
    return _page(request, form_values(request_scope(request).project))


async def _checked(request: web.Request, values: dict):
    quotas, reminders, problems = tables_of(values, language(request))
    if problems:
        raise Refused(t("no_changes", language(request)), problems)
    return await check_edit(fieldwork_storage(request), request_scope(request).project.id, quotas, reminders)


@routes.post("/surveys/{survey}/settings/check")
@requires("coordinator")
async def check(request: web.Request) -> web.Response:
    survey_wide(request)
    values = _posted(await request.post())
    try:
        edit = await _checked(request, values)
    except Refused as refused:
        return _page(request, values, status=400, problems=[refused.message, *refused.problems])
    if not edit.changes:
        return _page(request, values, message=("ok", t("no_changes", language(request))))
    return _page(request, values, changes=edit.changes)


@routes.post("/surveys/{survey}/settings/save")
@requires("coordinator")
async def save(request: web.Request) -> web.Response:
    survey_wide(request)
    values = _posted(await request.post())
    try:
        edit = await _checked(request, values)
        if not edit.changes:
            return _page(request, values, message=("ok", t("no_changes", language(request))))
        stored, _ = await save_edit(fieldwork_storage(request), edit, console_of(request).clock(),
                                    f"console: quotas and reminders by {current_account(request).username}")
    except Refused as refused:
        return _page(request, values, status=400, problems=[refused.message, *refused.problems])
    await audit(request, "settings_edit", f"version {stored.version}: " + "; ".join(edit.changes))
    return _page(request, form_values(edit.project), project=edit.project,
                 message=("ok", t("settings_saved", language(request), version=stored.version)))
