"""The export as it was read before the column-wise reader: one session at a time through the
storage's calls, a Python object per cell. Kept only as the reference that
tests/test_export_reader.py compares `exporters.table.read_export` with; not used by khaosat.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from exporters.table import (ANSWER_STATUSES, LAYOUTS, LONG_COLUMNS, PERSONAL_COLUMNS, SAMPLE_COLUMNS,
                             SESSION_COLUMNS, ExportTable, _INTEGER_NAME, codebook_rows, text)
from fieldwork.conversations import Conversations
from surveys import codec
from surveys.expressions import NOT_APPLICABLE, to_string
from surveys.model import Question, QuestionType, Questionnaire


async def export_frame(source: Any, form_id: str | None = None, layout: str = "wide", personal: bool = False,
                       language: str = "vi", progress: Any = None) -> ExportTable:
    """Read sessions from storage (a Storage or a Conversations) into an ExportTable.

    ``progress(done, total)`` is called after each session.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    conversations = source if isinstance(source, Conversations) else Conversations(source)
    storage = conversations.storage
    sessions = await storage.list_sessions(form_id)
    respondents = {r.id: r for r in await storage.list_respondents()}
    members, units, attributes = await _sample(storage)
    reminders = await storage.reminder_counts()

    forms: dict[tuple[str, str], Questionnaire] = {}
    for session in sessions:
        key = (session.form_id, session.form_version)
        if key not in forms:
            forms[key] = await conversations.questionnaire(*key)
    columns = _columns(forms.values(), language)

    rows: list[dict[str, Any]] = []
    statuses: list[dict[str, str]] = []
    personal_cache: dict[int, Any] = {}
    for done, session in enumerate(sessions, 1):
        respondent = respondents.get(session.respondent_id) or await storage.get_respondent(session.respondent_id)
        state = codec.decode_state(session.state)
        base: dict[str, Any] = {"respondent": respondent.pseudonym}
        if personal:
            if respondent.id not in personal_cache:
                personal_cache[respondent.id] = await storage.personal(respondent.id)
            base["name"] = personal_cache[respondent.id].name
            base["phone"] = personal_cache[respondent.id].phone
        base.update(session=session.id, form_id=session.form_id, form_version=session.form_version)
        answers = await storage.answers(session.id)
        if layout == "long":
            form = forms[(session.form_id, session.form_version)]
            changed = {h["question"]: h["at"] for h in await storage.answer_history(session.id)}
            for name, answer in answers.items():
                question = form.question(name) if form.has(name) else None
                if question is not None and question.type is QuestionType.NOTE:
                    continue
                value = codec.decode_value(answer.value)
                rows.append({**base, "question": name,
                             "type": question.type.value if question else "",
                             "value": _long_value(value),
                             "value_label": _long_label(question, value, language, form.default_language),
                             "status": answer.status,
                             "changed_at": changed.get(name, answer.updated_at)})
        else:
            duration = None
            if state.started_at and state.completed_at:
                duration = (state.completed_at - state.started_at).total_seconds()
            member = members.get(respondent.id)
            row = {**base, "channel": session.channel, "status": session.status, "language": state.language,
                   "started_at": _iso(state.started_at), "completed_at": _iso(state.completed_at),
                   "updated_at": session.updated_at, "duration_seconds": duration,
                   "disposition": respondent.disposition, "disposition_at": respondent.disposition_at,
                   "stratum": respondent.stratum,
                   "survey": member[0] if member else None,
                   "group": member[1].group if member else None,
                   "unit": units.get((member[0], member[1].frame_id)) if member else None,
                   "pi": member[1].pi if member else None,
                   "weight": member[1].weight if member else None,
                   "sample_role": member[1].role if member else None,
                   "number_of_reminders": reminders.get(respondent.id, 0)}
            if member:
                for key, value in attributes.get((member[0], member[1].frame_id), {}).items():
                    row[f"sample_{key}"] = value
            status = {}
            for name, answer in answers.items():
                row[name] = codec.decode_value(answer.value)
                status[name] = answer.status
            rows.append(row)
            statuses.append(status)
        if progress:
            progress(done, len(sessions))

    forms_key = tuple(sorted(forms))
    if layout == "long":
        return _long_table(rows, personal, language, forms_key)
    return _wide_table(rows, statuses, columns, personal, language, forms_key)


async def _sample(storage: Any) -> tuple[dict[int, tuple[str, Any]], dict, dict]:
    """respondent id → (survey id, SampleMember); (survey, frame_id) → unit and → attributes."""
    members: dict[int, tuple[str, Any]] = {}
    units: dict[tuple[str, str], str] = {}
    attributes: dict[tuple[str, str], dict[str, Any]] = {}
    for survey in await storage.list_surveys():
        fielded = [m for m in await storage.sample_members(survey.id) if m.respondent_id is not None]
        if not fielded:
            continue
        for member in fielded:
            members.setdefault(member.respondent_id, (survey.id, member))
        for row in await storage.frame_rows(survey.id):  # personal=False: no names or phones
            units[(survey.id, row.frame_id)] = row.unit
            try:
                attributes[(survey.id, row.frame_id)] = dict(json.loads(row.attributes or "{}"))
            except (ValueError, TypeError):
                pass
    return members, units, attributes


# -- wide ------------------------------------------------------------------------------------


@dataclass
class _Column:
    question: Question
    default_language: str
    choices: dict[str, str] = field(default_factory=dict)  # name -> label, union over versions

    @property
    def integer_coded(self) -> bool:
        return bool(self.choices) and all(_INTEGER_NAME.match(n) for n in self.choices)


def _columns(forms: Iterable[Questionnaire], language: str) -> dict[str, _Column]:
    columns: dict[str, _Column] = {}
    for form in forms:
        for question in form.questions:
            if question.type is QuestionType.NOTE:
                continue
            column = columns.setdefault(question.name, _Column(question, form.default_language))
            for choice in question.choices:
                column.choices.setdefault(choice.name, choice.label.get(language, form.default_language)
                                          or choice.name)
    return columns


def _wide_table(rows: list[dict[str, Any]], statuses: list[dict[str, str]], columns: dict[str, _Column],
                personal: bool, language: str, forms: tuple) -> ExportTable:
    n = len(rows)
    data: dict[str, Any] = {}
    labels: dict[str, str] = {}
    value_labels: dict[str, dict[Any, str]] = {}
    kinds: dict[str, str] = {}
    skipped: dict[str, np.ndarray] = {}
    questions: dict[str, str] = {}

    fixed = ["respondent", *(PERSONAL_COLUMNS if personal else ()), *SESSION_COLUMNS[1:], *SAMPLE_COLUMNS]
    attribute_names = sorted({k for row in rows for k in row if k.startswith("sample_") and k != "sample_role"})
    for name in [*fixed, *attribute_names]:
        values = [row.get(name) for row in rows]
        if name in ("session", "number_of_reminders"):
            data[name] = pd.array(values, dtype="Int64")
        elif name in ("duration_seconds", "pi", "weight"):
            data[name] = pd.array([math.nan if v is None else float(v) for v in values], dtype="float64")
        else:
            data[name] = pd.array([None if v is None else str(v) for v in values], dtype=object)
        labels[name] = (f"{text('sample_attribute', language)}: {name[len('sample_'):]}"
                        if name in attribute_names else text(name, language))
        kinds[name] = "personal" if name in PERSONAL_COLUMNS else "meta"

    for name, column in columns.items():
        question = column.question
        kind = question.type
        label = question.label.get(language, column.default_language) or name
        raw = [row.get(name) for row in rows]
        answered_status = [status.get(name) for status in statuses]
        skip = np.array([s == "skipped" for s in answered_status], dtype=bool) if kind.is_asked else None
        present = [v is not None and v is not NOT_APPLICABLE and v != () for v in raw]
        questions[name] = name
        labels[name] = label
        if kind is QuestionType.SELECT_ONE:
            if column.integer_coded:
                data[name] = pd.array([int(v) if p else None for v, p in zip(raw, present)], dtype="Int64")
                value_labels[name] = {int(c): lab for c, lab in column.choices.items()}
            else:
                data[name] = pd.array([str(v) if p else None for v, p in zip(raw, present)], dtype=object)
                value_labels[name] = dict(column.choices)
            kinds[name] = "select_one"
        elif kind is QuestionType.SELECT_MULTIPLE:
            data[name] = pd.array([" ".join(v) if p else None for v, p in zip(raw, present)], dtype=object)
            kinds[name] = "select_multiple"
            for choice, choice_label in column.choices.items():
                dummy = f"{name}/{choice}"
                data[dummy] = pd.array([(1 if choice in v else 0) if p else None for v, p in zip(raw, present)],
                                       dtype="Int64")
                labels[dummy] = f"{label}: {choice_label}"
                value_labels[dummy] = {0: text("not_selected", language), 1: text("selected", language)}
                kinds[dummy] = "choice"
                questions[dummy] = name
                if skip is not None and skip.any():
                    skipped[dummy] = skip
        elif kind is QuestionType.INTEGER:
            data[name] = pd.array([int(v) if p else None for v, p in zip(raw, present)], dtype="Int64")
            kinds[name] = "integer"
        elif kind is QuestionType.DECIMAL:
            data[name] = pd.array([float(v) if p else math.nan for v, p in zip(raw, present)], dtype="float64")
            kinds[name] = "decimal"
        elif kind is QuestionType.CALCULATE:
            numbers = [v for v, p in zip(raw, present) if p]
            if numbers and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
                data[name] = pd.array([float(v) if p else math.nan for v, p in zip(raw, present)], dtype="float64")
            else:
                data[name] = pd.array([_text_cell(v) if p else None for v, p in zip(raw, present)], dtype=object)
            kinds[name] = "calculate"
        else:
            data[name] = pd.array([_text_cell(v) if p else None for v, p in zip(raw, present)], dtype=object)
            kinds[name] = {QuestionType.DATE: "date", QuestionType.TEXT: "text",
                           QuestionType.ACKNOWLEDGE: "acknowledge"}.get(kind, "metadata")
        if skip is not None and skip.any():
            skipped[name] = skip

    df = pd.DataFrame(data, index=pd.RangeIndex(n))
    table = ExportTable(df, labels, value_labels, kinds=kinds, skipped=skipped, questions=questions,
                        layout="wide", language=language, personal=personal, forms=forms)
    table.codebook = codebook_rows(table)
    return table


def _text_cell(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return to_string(value)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


# -- long ------------------------------------------------------------------------------------


def _long_value(value: Any) -> str | None:
    if value is None or value is NOT_APPLICABLE or value == ():
        return None
    return _text_cell(value)


def _long_label(question: Question | None, value: Any, language: str, default_language: str) -> str | None:
    if question is None or not question.type.is_select or value in (None, ()) or value is NOT_APPLICABLE:
        return None
    names = value if isinstance(value, tuple) else (value,)
    found = []
    for name in names:
        choice = question.choice_by_name(str(name))
        found.append(choice.label.get(language, default_language) if choice else str(name))
    return "; ".join(found)


def _long_table(rows: list[dict[str, Any]], personal: bool, language: str, forms: tuple) -> ExportTable:
    names = ["respondent", *(PERSONAL_COLUMNS if personal else ()), *LONG_COLUMNS[1:]]
    data = {}
    for name in names:
        values = [row.get(name) for row in rows]
        data[name] = (pd.array(values, dtype="Int64") if name == "session"
                      else pd.array([None if v is None else str(v) for v in values], dtype=object))
    labels = {name: text("answer_status" if name == "status" else name, language) for name in names}
    kinds = {name: "personal" if name in PERSONAL_COLUMNS else "meta" for name in names}
    table = ExportTable(pd.DataFrame(data, index=pd.RangeIndex(len(rows))), labels,
                        {"status": {s: s for s in ANSWER_STATUSES}}, kinds=kinds, layout="long",
                        language=language, personal=personal, forms=forms)
    table.codebook = codebook_rows(table)
    return table
