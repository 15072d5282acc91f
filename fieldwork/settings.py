"""Quotas and reminders edited after loading: a new version of the survey project.

An edit takes the stored project as a survey file's tables, replaces ``[quotas]`` and ``[reminders]`` and
checks the result with the same parser as ``khaosat survey load`` — so the messages name the same
keys (``quotas.targets."citizen/xa-a"``) — then stores it as the next version. The stored source
is the edited TOML, so every version can be read and loaded again as a file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from fieldwork import Refused
from surveys.project import SurveyError, SurveyProject, parse_survey_table, store_survey


@dataclass(frozen=True)
class SettingsEdit:
    """What is about to change (to confirm) and the checked project and its TOML text."""

    project: SurveyProject
    source: str
    changes: list[str]


def quota_table(project: SurveyProject) -> dict[str, Any]:
    q = project.quotas
    return {"count_at": q.count_at, "hard": q.hard, "release_after_hours": q.release_after_hours,
            "targets": dict(q.targets)}


def reminder_table(project: SurveyProject) -> dict[str, Any]:
    r = project.reminders
    table: dict[str, Any] = {"after_days": list(r.after_days), "max_count": r.max_count,
                             "quiet_hours": {"start": r.quiet_start, "end": r.quiet_end}}
    if r.texts:
        table["text"] = dict(r.texts)
    return table


def project_table(project: SurveyProject) -> dict[str, Any]:
    """The project as the tables of a survey file (what ``parse_survey_table`` reads back to an
    equal project), built from the stored project so that units read from a CSV are kept."""
    def allocation(a) -> dict[str, Any]:
        table: dict[str, Any] = {"method": a.method, "reserve": a.reserve,
                                 "expected_response_rate": a.expected_response_rate}
        if a.fixed:
            table["n"] = dict(a.fixed)
        elif a.n is not None:
            table["n"] = a.n
        return table

    table: dict[str, Any] = {
        "survey": {"id": project.id, "title": project.title, "index_year": project.index_year,
                   "opens": project.opens, "closes": project.closes, "levels": list(project.levels),
                   "strata": list(project.strata)},
        "settings": dataclasses.asdict(project.settings),
        "units": [{k: v for k, v in dataclasses.asdict(u).items() if v is not None} for u in project.units.values()],
        "groups": {g.id: {"label": dict(g.label), "form_id": g.form_id, "strata": list(g.strata),
                          "allocation": allocation(g.allocation)} for g in project.groups.values()},
        "quotas": quota_table(project),
    }
    if project.reminders.after_days or project.reminders.texts:
        table["reminders"] = reminder_table(project)
    return table


async def check_edit(storage, survey_id: str, quotas: dict[str, Any], reminders: dict[str, Any]) -> SettingsEdit:
    """Validate new ``[quotas]`` and ``[reminders]`` tables for the stored survey (nothing written)."""
    import tomli_w

    from storage import NotFound
    from surveys.project import stored_project

    try:
        stored = await storage.get_survey(survey_id)
        old = await stored_project(storage, survey_id)
    except NotFound:
        raise Refused(f"no survey '{survey_id}' in the database") from None
    raw = project_table(old)
    raw["quotas"], raw["reminders"] = quotas, reminders
    if not reminders.get("after_days") and not reminders.get("text"):
        raw.pop("reminders")
    try:
        project = parse_survey_table(raw, stored.source_name)
    except SurveyError as error:
        raise Refused(f"{survey_id}: nothing changed, {len(error.problems)} problem(s)", error.problems) from None
    return SettingsEdit(project, tomli_w.dumps(raw), describe_changes(old, project))


def describe_changes(old: SurveyProject, new: SurveyProject) -> list[str]:
    """Each changed setting as 'key: old → new', in the file's key names."""
    before = {**_flat("quotas", quota_table(old)), **_flat("reminders", reminder_table(old))}
    after = {**_flat("quotas", quota_table(new)), **_flat("reminders", reminder_table(new))}
    return [f"{key}: {before.get(key, '—')} → {after.get(key, '—')}"
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


def _flat(prefix: str, table: dict[str, Any]) -> dict[str, Any]:
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flat(f'{prefix}.{key}', {f'"{k}"' if "/" in k else k: v for k, v in value.items()}))
        else:
            flat[f"{prefix}.{key}"] = value
    return flat


async def save_edit(storage, edit: SettingsEdit, at: dt.datetime, source_name: str):
    """Store a checked edit as the survey's next version: (stored version, whether new)."""
    try:
        return await store_survey(storage, edit.project, edit.source, source_name, at.isoformat())
    except SurveyError as error:
        raise Refused(f"{edit.project.id}: nothing changed", error.problems) from None
