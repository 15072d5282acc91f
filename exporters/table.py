"""Answers as tables for analysts: the export model behind `khaosat export`.

Respondents appear under their pseudonym only (Decree 13/2023/ND-CP): an analyst's file
never carries the external id that links a row to a person. Names and phones are added only
when asked for explicitly (``personal=True``, ``khaosat export --personal``); the columns are
then labelled PERSONAL DATA and the file's metadata says so.

`export_frame` builds one `ExportTable` (a pandas DataFrame plus variable labels, value labels
and codebook rows); `exporters.writers` turns it into CSV, XLSX, SPSS, Stata or Parquet.

Layouts
    *wide*: one row per session. Session and sample columns first (`SESSION_COLUMNS`,
    `SAMPLE_COLUMNS`, then ``sample_<attribute>`` for the frame's strata attributes), then one
    column per question in form order (notes excluded; calculations and start/end/today
    metadata included). A select_multiple gives XLSForm's space-separated choice names
    column **plus** one 0/1 column per choice named ``question/choice`` (ODK's convention).
    *long*: one row per stored answer (session × question reached): value, value label,
    status and the time of the answer's last change (from the answer history).

Codes
    select_one values are the choice names (the XLSForm codes). When every choice name of a
    question is an integer ("1".."5"), the column is numeric (1 = "Rất không hài lòng" …);
    otherwise it stays text ("co", "khong") and the value labels map text codes to labels.
    Labels are in the chosen language (falling back to the form's default). SPSS keeps text
    codes as text with string value labels; Stata's value labels need integers, so there a
    text-coded question is stored as the choice's 1-based position in the list (the number
    people see in chat) with the choice label, and the codebook gives both (see writers).
    Dates are ISO 8601 text (``YYYY-MM-DD``) and session timestamps ISO 8601 text with their
    offset, identical in every format. ``duration_seconds`` is completed_at − started_at.

Missing values: not applicable vs skipped
    *not applicable* (hidden by relevance) and *not reached* (the session stopped before)
    are plain missing everywhere: empty in CSV/XLSX, null in Parquet, system-missing in
    SPSS, ``.`` (or "") in Stata.
    *skipped* (an optional question the respondent left empty) is also empty in CSV, XLSX and
    Parquet — the long layout's ``status`` column tells them apart there — but is a declared
    missing code in the statistics formats: in SPSS a user-missing value (``-99``, or ``-999``…
    if the column already uses it; ``"-99"`` for text columns) labelled "Bỏ qua / skipped";
    in Stata the extended missing value ``.a`` labelled the same for numeric and coded
    columns (Stata text variables have no missing codes, so skipped text stays ""). Each
    column's choice is in `ExportTable.skipped` (the rows) and the codebook's ``missing``.

Formula injection
    Text cells starting with ``=``, ``+``, ``-``, ``@``, tab or CR get a leading apostrophe
    in CSV and XLSX (spreadsheets). SPSS, Stata and Parquet files are not opened by
    spreadsheets and keep answers exactly as typed.

Paradata: ``number_of_reminders`` is the number of reminders recorded for the respondent
(``Storage.reminder_counts``: every reminder the reminder pass queued, of any survey, whether or
not its bot has handed it over to the outbox yet, less those withdrawn unsent because the person
finished first).

Column and value labels are in ``surveys.messages.EXPORT_LABELS`` (the one place for texts).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from bot.conversations import Conversations
from surveys import codec
from surveys.expressions import NOT_APPLICABLE, to_string
from surveys.messages import EXPORT_LABELS, translate
from surveys.model import Question, QuestionType, Questionnaire

SESSION_COLUMNS = ("respondent", "session", "form_id", "form_version", "channel", "status", "language",
                   "started_at", "completed_at", "updated_at")
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: Paradata and sample columns of the wide layout, after SESSION_COLUMNS.
SAMPLE_COLUMNS = ("duration_seconds", "disposition", "disposition_at", "stratum", "survey", "group", "unit",
                  "pi", "weight", "sample_role", "number_of_reminders")
PERSONAL_COLUMNS = ("name", "phone")
LONG_COLUMNS = ("respondent", "session", "form_id", "form_version", "question", "type", "value", "value_label",
                "status", "changed_at")
LAYOUTS = ("wide", "long")
ANSWER_STATUSES = ("answered", "skipped", "not_applicable")

_INTEGER_NAME = re.compile(r"^[+-]?\d+$")

def text(key: str, language: str) -> str:
    """A column or value label of exports (``EXPORT_LABELS``); a language other than vi and en gets English."""
    return translate(EXPORT_LABELS, key, language if language in ("vi", "en") else "en")


@dataclass
class ExportTable:
    """A table ready to write, with everything SPSS/Stata need to label it.

    ``value_labels`` maps a column to {code: label}; codes are ints for integer-coded
    questions and 0/1 columns, else the choice names. ``kinds`` gives each column's kind
    (meta, select_one, select_multiple, choice, integer, decimal, text, date, calculate,
    metadata, personal). ``skipped`` maps a column to a boolean array, True where the
    respondent skipped an optional question (only columns with a skip are present).
    ``questions`` maps a column to its XLSForm question name (for codebooks).
    """

    df: pd.DataFrame
    variable_labels: dict[str, str]
    value_labels: dict[str, dict[Any, str]]
    codebook: list[dict[str, Any]] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, np.ndarray] = field(default_factory=dict)
    questions: dict[str, str] = field(default_factory=dict)
    layout: str = "wide"
    language: str = "vi"
    personal: bool = False
    forms: tuple[tuple[str, str], ...] = ()

    def metadata(self) -> dict[str, Any]:
        """Everything but the data, as JSON-able values (Parquet keeps it in its schema)."""
        return {
            "layout": self.layout,
            "language": self.language,
            "personal_data": self.personal,
            "forms": [list(f) for f in self.forms],
            "variable_labels": self.variable_labels,
            "value_labels": {c: [[k, v] for k, v in labels.items()] for c, labels in self.value_labels.items()},
            "kinds": self.kinds,
            "questions": self.questions,
            "codebook": self.codebook,
        }


Progress = Callable[[int, int], None]


async def export_frame(source: Any, form_id: str | None = None, layout: str = "wide", personal: bool = False,
                       language: str = "vi", progress: Progress | None = None) -> ExportTable:
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


# -- codebook --------------------------------------------------------------------------------

_KIND_TYPES = {"select_one": "select_one", "select_multiple": "select_multiple", "choice": "0/1",
               "integer": "integer", "decimal": "decimal", "text": "text", "date": "date (ISO 8601 text)",
               "calculate": "calculate", "metadata": "metadata", "acknowledge": "acknowledge",
               "personal": "PERSONAL DATA (text)"}


def codebook_rows(table: ExportTable) -> list[dict[str, Any]]:
    """One row per column: variable, label, type, values ("code = label; …"), missing, question."""
    rows = []
    for column in table.df.columns:
        kind = table.kinds.get(column, "meta")
        dtype = table.df[column].dtype
        type_name = _KIND_TYPES.get(kind) or ("number" if dtype.kind in "if" or str(dtype) == "Int64" else "text")
        values = "; ".join(f"{code} = {label}" for code, label in table.value_labels.get(column, {}).items())
        missing = "empty = not asked / not applicable"
        if column in table.skipped:
            missing += "; skipped: empty in CSV/XLSX/Parquet, user-missing in SPSS, .a in Stata"
        rows.append({"variable": column, "label": table.variable_labels.get(column, ""), "type": type_name,
                     "values": values, "missing": missing, "question": table.questions.get(column, "")})
    return rows


# -- the original CSV table (kept for /export in chat and the demo) ---------------------------


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]


async def session_table(conversations: Conversations, form_id: str | None = None) -> Table:
    storage = conversations.storage
    sessions = await storage.list_sessions(form_id)
    question_columns: dict[str, None] = {}
    rows = []
    for session in sessions:
        form = await conversations.questionnaire(session.form_id, session.form_version)
        for question in form.questions:
            if question.type is not QuestionType.NOTE:
                question_columns.setdefault(question.name, None)
        state = codec.decode_state(session.state)
        respondent = await storage.get_respondent(session.respondent_id)
        row: dict[str, Any] = {
            "respondent": respondent.pseudonym,
            "session": session.id,
            "form_id": session.form_id,
            "form_version": session.form_version,
            "channel": session.channel,
            "status": session.status,
            "language": state.language,
            "started_at": _cell(state.started_at),
            "completed_at": _cell(state.completed_at),
            "updated_at": session.updated_at,
        }
        for name, answer in (await storage.answers(session.id)).items():
            row[name] = _cell(codec.decode_value(answer.value))
        rows.append(row)
    return Table(SESSION_COLUMNS + tuple(question_columns), tuple(rows))


def _cell(value: Any) -> Any:
    """XLSForm's export conventions: multi-select as space-separated names, empty when not asked."""
    if value is None or value is NOT_APPLICABLE:
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return to_string(value)


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def write_csv(table: Table, path: Path) -> None:
    """UTF-8 with a byte-order mark, so Excel shows Vietnamese correctly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=table.columns, extrasaction="ignore")
        writer.writeheader()
        for row in table.rows:
            writer.writerow({column: neutralise(row.get(column, "")) for column in table.columns})
