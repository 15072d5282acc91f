"""Survey projects: check a project file and its questionnaires, store them, find them again."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from fieldwork import Refused
from surveys.model import Questionnaire
from surveys.project import SurveyError, SurveyProject, load_survey, replacement_problems, store_survey


@dataclass(frozen=True)
class CheckedSurvey:
    """A project file and questionnaires that passed every check, not yet stored."""

    path: Path
    project: SurveyProject
    source: str
    forms: tuple[tuple[Path, Questionnaire], ...] = ()


@dataclass(frozen=True)
class LoadedSurvey:
    project: SurveyProject
    version: int
    new: bool  # False: the same content was stored before, nothing written
    forms: tuple[Questionnaire, ...]


def check_survey(path: Path, form_paths: tuple[Path, ...] = (), *, name: str | None = None) -> CheckedSurvey:
    """Read and validate the project file and every questionnaire; all problems at once.

    ``name`` is how the file is called in messages (an upload's original name). Problems of a
    questionnaire carry its file name and sheet/row/column.
    """
    from surveys.xlsform import FormError, load_questionnaire

    shown = name or str(path)
    try:
        project = load_survey(path)
    except SurveyError as error:
        raise Refused(f"{shown}: {len(error.problems)} problem(s)", error.problems) from None
    forms, problems = [], []
    for form_path in form_paths:
        try:
            forms.append((form_path, load_questionnaire(form_path)))
        except FormError as error:
            problems += [f"{form_path.name}: {problem}" for problem in error.problems]
    if problems:
        raise Refused(f"{shown}: a questionnaire cannot run in a chat; nothing stored, {len(problems)} problem(s)",
                      problems)
    used = {group.form_id for group in project.groups.values()}
    unused = [f"{p.name}: form_id '{q.form_id}' is not the questionnaire of any group "
              f"(groups answer: {', '.join(sorted(used))})" for p, q in forms if q.form_id not in used]
    if unused:
        raise Refused(f"{shown}: nothing stored", unused)
    return CheckedSurvey(path, project, path.read_text(encoding="utf-8-sig"), tuple(forms))


async def store_checked(storage, checked: CheckedSurvey, at: dt.datetime, *, name: str | None = None) -> LoadedSurvey:
    """Store the questionnaires and the project, after checking that none conflicts with what is
    stored (a questionnaire version with other content, a project that would strand the frame)."""
    from fieldwork.conversations import Conversations
    from storage import NotFound

    shown = name or checked.path.name
    problems = []
    for form_path, form in checked.forms:
        try:
            stored = await storage.get_questionnaire(form.form_id, form.version)
        except NotFound:
            continue
        if stored.source != form_path.read_bytes():
            problems.append(f"{form_path.name}: the database already holds form '{form.form_id}' version "
                            f"'{form.version}' with other content; change the version in the settings sheet")
    problems += await replacement_problems(storage, checked.project)
    if problems:
        raise Refused(f"{shown}: cannot replace the stored survey '{checked.project.id}'", problems)
    conversations = Conversations(storage)
    for form_path, form in checked.forms:
        await conversations.register(form, form_path.read_bytes(), form_path.name, at)
    try:
        stored, new = await store_survey(storage, checked.project, checked.source, shown, at.isoformat())
    except SurveyError as error:  # changed between the check and the write
        raise Refused(f"{shown}: cannot replace the stored survey '{checked.project.id}'", error.problems) from None
    return LoadedSurvey(checked.project, stored.version, new, tuple(form for _, form in checked.forms))


async def find_project(storage, survey_id: str | None) -> SurveyProject:
    """The stored project named ``survey_id``, or the only one stored."""
    from storage import NotFound
    from surveys.project import stored_project

    if survey_id is None:
        surveys = await storage.list_surveys()
        if len(surveys) != 1:
            raise Refused("say which survey with --survey ID" + (
                f" (stored: {', '.join(s.id for s in surveys)})" if surveys
                else ": none is loaded yet (khaosat survey load FILE)"))
        survey_id = surveys[0].id
    try:
        return await stored_project(storage, survey_id)
    except NotFound:
        raise Refused(f"no survey '{survey_id}' in the database; load it with: khaosat survey load FILE") from None


async def surveys_with_samples(storage) -> list:
    """Every stored survey's current version with how its sample was made (None: no sample)."""
    return [(s, await storage.sample_info(s.id)) for s in await storage.list_surveys()]
