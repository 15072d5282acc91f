"""A survey project: one survey round, described in a TOML file and checked strictly.

One project is one round, e.g. "PAR INDEX 2026, Tỉnh Quảng Trị": its respondent groups
and the questionnaire each group answers, its administrative units (any number of levels;
since July 2025 usually province → commune), how each group is stratified and how its
sample is allocated, its open/close dates, quota targets and reminder policy. Nothing about
the index is hard-coded: groups, units, levels and strata are all data from the file (see
the ``[survey]`` section of ``config.example.toml`` and
``surveys/templates/survey.example.toml``).

Strata. A sample is always drawn separately within each respondent group; the group's
strata variables subdivide it. A variable is ``unit`` (the frame row's unit), the name of a
level (the unit's ancestor at that level, e.g. ``commune``), or the name of an extra column
of the frame (e.g. ``gender``). A stratum's key is the group id followed by the values,
joined by ``/``: ``citizen/xa-hai-lang``, or just ``hdnd`` for a group with no variables.
Quota targets and fixed allocations are keyed by these strings.

Errors are collected, not stopped at the first: ``SurveyError.problems`` names the key
(``groups.citizen.form_id``) or the unit line (``units.csv line 4, column parent``).

These modules parse and validate the reminder and quota parts only; their behaviour lives
elsewhere.

The project is split by responsibility: the data model is ``surveys/project_model.py``,
reading and checking the TOML is ``surveys/project_toml.py``; this module keeps the storage
helpers and re-exports the public names of both, so ``from surveys.project import …`` works.
"""

from __future__ import annotations

from surveys.project_model import (
    ALLOCATION_METHODS,
    QUOTA_COUNT_AT,
    REMINDER_PLACEHOLDERS,
    UI_LANGUAGES,
    Allocation,
    Group,
    Organiser,
    QuotaPolicy,
    ReminderPolicy,
    Settings,
    SurveyError,
    SurveyProject,
    Unit,
)
from surveys.project_toml import load_survey, parse_survey, parse_survey_table

__all__ = [
    "ALLOCATION_METHODS", "QUOTA_COUNT_AT", "REMINDER_PLACEHOLDERS", "UI_LANGUAGES",
    "Allocation", "Group", "Organiser", "QuotaPolicy", "ReminderPolicy", "Settings", "SurveyError",
    "SurveyProject", "Unit", "load_survey", "parse_survey", "parse_survey_table",
    "replacement_problems", "store_survey", "stored_project",
]

# -- with storage ----------------------------------------------------------------------------


async def store_survey(storage, project: SurveyProject, source: str, source_name: str, at: str):
    """Save ``project`` (``Storage.save_survey``); returns (stored version, whether new).

    Re-loading the same id: identical content is a no-op; changed content becomes a new
    version and the old ones are kept. A change is refused (``SurveyError``) when it would
    strand data already collected: a group or unit that the stored frame or sample uses
    disappears, or a group that has a sample changes its questionnaire.
    """
    problems = await replacement_problems(storage, project)
    if problems:
        raise SurveyError(source_name, problems)
    return await storage.save_survey(
        project.id, title=project.title, index_year=project.index_year, opens=project.opens.isoformat(),
        closes=project.closes.isoformat(), source_name=source_name, source=source,
        project=project.to_json(), at=at)


async def replacement_problems(storage, project: SurveyProject) -> list[str]:
    """Why ``project`` cannot replace the stored version of its survey (empty: it can; see
    ``store_survey``), checked apart so that callers storing more than the survey can check first."""
    from storage import NotFound

    try:
        old = SurveyProject.from_json((await storage.get_survey(project.id)).project)
    except NotFound:
        return []
    if old.sha256 == project.sha256:
        return []
    groups, units = await storage.frame_references(project.id)
    problems = [f"groups.{g}: the stored frame or sample uses this group; it cannot be removed"
                for g in sorted(groups - set(project.groups))]
    problems += [f"units: unit '{u}' is used by the stored frame; it cannot be removed"
                 for u in sorted(units - set(project.units))]
    if await storage.sample_info(project.id) is not None:
        problems += [f"groups.{g}.form_id: the sample was drawn with questionnaire "
                     f"'{old.groups[g].form_id}'; it cannot change to '{project.groups[g].form_id}'"
                     for g in sorted(groups & set(project.groups) & set(old.groups))
                     if old.groups[g].form_id != project.groups[g].form_id]
    return problems


async def stored_project(storage, survey_id: str, version: int | None = None) -> SurveyProject:
    """The stored project (current version unless ``version``); raises storage's ``NotFound``."""
    return SurveyProject.from_json((await storage.get_survey(survey_id, version)).project)
