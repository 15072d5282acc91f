"""Answers as tables for analysts: the export model behind `khaosat export`.

Respondents appear under their pseudonym only (Law 91/2025/QH15 on personal data): an analyst's file
never carries the external id that links a row to a person. Names and phones are added only
when asked for explicitly (``personal=True``, ``khaosat export --personal``); the columns are
then labelled PERSONAL DATA and the file's metadata says so.

`export_frame` builds one `ExportTable` (a pandas DataFrame plus variable labels, value labels
and codebook rows); `exporters.writers` turns it into CSV, XLSX, SPSS, Stata or Parquet.

Layouts
    *wide*: one row per session. Session and sample columns first (`WIDE_SESSION_COLUMNS`: ``channel``
    is where the session started, ``last_channel`` where its latest event came from,
    `SAMPLE_COLUMNS`, then ``sample_<attribute>`` for the frame's strata attributes), then one
    column per question in form order (notes excluded; calculations and start/end/today
    metadata included). A select_multiple gives XLSForm's space-separated choice names
    column **plus** one 0/1 column per choice named ``question/choice`` (ODK's convention); a
    rank gives the names in rank order plus one column per choice, ``question/choice``, with
    the rank given to that choice (1 = first).
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
    In the table, dates are ISO 8601 text (``YYYY-MM-DD``) and session timestamps ISO 8601 text with
    their offset, as CSV writes them; SPSS, Stata, XLSX and Parquet get real dates and date-times
    (Vietnam's local time; zone-aware in Parquet), see `exporters.writers.typed_columns`.
    ``duration_seconds`` is completed_at − started_at.

Missing values: not applicable vs skipped
    *not applicable* (hidden by relevance) and *not reached* (the session stopped before)
    are plain missing everywhere: empty in CSV/XLSX, null in Parquet, system-missing in
    SPSS, ``.`` (or "") in Stata.
    *skipped* (an optional question the respondent left empty) is also empty in CSV, XLSX and
    Parquet — the long layout's ``status`` column tells them apart there — but is a declared
    missing code in the statistics formats: in SPSS a user-missing value (``-99``, or ``-999``…
    if the column already uses it; ``"-99"`` for text columns) labelled "Bỏ qua / skipped";
    in Stata the extended missing value ``.a`` labelled the same for numeric and coded
    columns (Stata text variables have no missing codes, so skipped text stays "", and the
    codebook says so per column). Dates are written as dates, which carry no missing code:
    skipped dates are plain missing in every format. Each column's choice is in
    `ExportTable.skipped` (the rows) and the codebook's ``missing``.

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

import asyncio
import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import orjson
import pandas as pd

from storage.answers_read import EVENT_KEY_CHANNELS, AnswersRead, database_file, open_answers_read
from surveys import codec
from surveys.expressions import NOT_APPLICABLE, to_string
from surveys.messages import EXPORT_LABELS, translate
from surveys.model import Question, QuestionType, Questionnaire
from surveys.xlsform import load_questionnaire_bytes

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

#: The wide layout's session columns: ``channel`` is where the session started, ``last_channel``
#: where its latest event came from (a person may start on Telegram and finish on Zalo).
#: ``mode`` (telegram, zalo, web, paper…), as response rates by mode count it (``exporters.modes``): the
#: channel the session started on, or ``paper`` when it was typed from a paper form.
WIDE_SESSION_COLUMNS = (*SESSION_COLUMNS[:5], "last_channel", "mode", *SESSION_COLUMNS[5:])


def text(key: str, language: str) -> str:
    """A column or value label of exports (``EXPORT_LABELS``); a language other than vi and en gets English."""
    language = language if language in ("vi", "en") else "en"
    return translate(EXPORT_LABELS, key, language)


def last_channels(first: Sequence[str], last_event_keys: Sequence[str | None]) -> list[str]:
    """Each session's last channel: the channel named by the key of its latest event that has one
    (`storage.answers_read.EVENT_KEY_CHANNELS`), else the channel it started on."""
    return [EVENT_KEY_CHANNELS.get(key.split(":", 1)[0], channel) if key else channel
            for channel, key in zip(first, last_event_keys)]


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
    #: One long table per repeat of the forms (wide layout), by repeat name, in form order: a row per
    #: instance, linked to its parent's row by ``_parent_index`` (see `exporters.repeat_tables`).
    repeats: dict[str, "ExportTable"] = field(default_factory=dict)

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
    """`read_export` of an open storage (or anything with a ``.storage``, or a path), run in a worker
    thread on a connection of its own, so the caller's event loop keeps serving meanwhile."""
    if isinstance(source, (str, Path)):
        path = Path(source)
    else:
        path = await database_file(getattr(source, "storage", source))
    return await asyncio.to_thread(read_export, path, form_id, layout, personal, language, progress)


def read_export(path: str | Path, form_id: str | None = None, layout: str = "wide", personal: bool = False,
                language: str = "vi", progress: Progress | None = None) -> ExportTable:
    """The sessions of the database at ``path`` as an ExportTable (synchronous; any thread).

    A few set-based reads (`storage.answers_read`): the sessions with their sample and paradata in
    one statement, the answers streamed in chunks and placed in a (sessions × questions) matrix of
    value ids; each distinct JSON text is decoded once (orjson) and each column converted per
    distinct value, then spread by index. ``progress(done, total)`` counts sessions.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    with open_answers_read(path) as reader, reader.snapshot():
        forms = {(f.form_id, f.version): load_questionnaire_bytes(f.source, f.source_name, f.attachments)
                 for f in reader.forms(form_id)}
        sessions = reader.sessions(form_id, personal)
        total = len(sessions["session"])
        if progress:
            progress(0, total)
        if layout == "long":
            from exporters.long_layout import _long_table

            table = _long_table(reader, form_id, sessions, forms, personal, language, progress)
        else:
            table = _wide_table(reader, form_id, sessions, forms, personal, language)
        if progress:
            progress(total, total)
        return table


class _Values:
    """Every distinct answer JSON text met, decoded once: text → id, id → value."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.decoded: list[Any] = []

    def codes(self, texts: Any) -> np.ndarray:
        """Value ids of an arrow string array (dictionary-encoded first: each text looked up once)."""
        encoded = texts.dictionary_encode()
        ids = np.fromiter((self._id(t) for t in encoded.dictionary.to_pylist()), dtype=np.int64,
                          count=len(encoded.dictionary))
        return ids[encoded.indices.to_numpy(zero_copy_only=False)]

    def _id(self, text: str) -> int:
        found = self.ids.get(text)
        if found is None:
            found = self.ids[text] = len(self.decoded)
            self.decoded.append(_decode(text))
        return found


def _lookup(texts: Any, index: dict[str, int]) -> np.ndarray:
    """``index[text]`` (-1 where absent) for each item of an arrow string array."""
    encoded = texts.dictionary_encode()
    found = np.fromiter((index.get(t, -1) for t in encoded.dictionary.to_pylist()), dtype=np.int64,
                        count=len(encoded.dictionary))
    return found[encoded.indices.to_numpy(zero_copy_only=False)]


def _decode(text: str) -> Any:
    """`codec.decode_value` with orjson; the standard library where orjson differs (integers beyond
    64 bits, which orjson reads as floats, and lone surrogates, which it refuses)."""
    try:
        plain = orjson.loads(text)
    except orjson.JSONDecodeError:
        plain = json.loads(text)
    if plain.__class__ is float:
        plain = json.loads(text)
    return codec.value_from_plain(plain)


def _present(value: Any) -> bool:
    return value is not None and value is not NOT_APPLICABLE and value != ()


def _cells(vids: np.ndarray, decoded: list[Any], convert: Callable[[Any], Any]) -> np.ndarray:
    """An object array: ``convert(value)`` where an answer is present, else None — worked out once
    per distinct value id and spread by index (``vids`` < 0: no answer stored)."""
    distinct, inverse = np.unique(vids, return_inverse=True)
    out = np.empty(len(distinct), dtype=object)
    for i, vid in enumerate(distinct.tolist()):
        value = decoded[vid] if vid >= 0 else None
        out[i] = convert(value) if _present(value) else None
    return out[inverse]


def _text_column(values: Sequence[Any]) -> Any:
    return pd.array([None if v is None else str(v) for v in values], dtype=object)


def _float_column(cells: np.ndarray) -> Any:
    return pd.array(np.asarray(cells, dtype=object).astype("float64"), dtype="float64")


def _durations(started: list[Any], completed: list[Any]) -> np.ndarray:
    out = np.full(len(started), math.nan)
    for i, (start, end) in enumerate(zip(started, completed)):
        if start and end:
            out[i] = (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
    return out


def _attributes(sessions: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """``sample_<attribute>`` columns from the frame rows' JSON attributes (sorted by name)."""
    parsed: list[dict[str, Any]] = []
    for survey, text_ in zip(sessions["survey"], sessions["attributes"]):
        found: dict[str, Any] = {}
        if survey is not None and text_ is not None:
            try:
                found = dict(orjson.loads(text_ or "{}"))
            except (ValueError, TypeError):
                pass
        parsed.append(found)
    names = sorted({f"sample_{k}" for found in parsed for k in found} - {"sample_role"})
    return {name: [found.get(name[len("sample_"):]) for found in parsed] for name in names}


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
            if question.type is QuestionType.NOTE or question.repeats:  # repeats have tables of their own
                continue
            column = columns.setdefault(question.name, _Column(question, form.default_language))
            for choice in question.choices:
                column.choices.setdefault(choice.name, choice.label.get(language, form.default_language)
                                          or choice.name)
    return columns


def _answer_matrix(reader: AnswersRead, form_id: str | None, ids: np.ndarray, names: list[str],
                   values: _Values) -> tuple[np.ndarray, np.ndarray]:
    """(value ids, skipped): sessions × questions; value id -1 where no answer is stored."""
    index = {name: j for j, name in enumerate(names)}
    vids = np.full((len(ids), len(names)), -1, dtype=np.int64, order="F")
    skipped = np.zeros((len(ids), len(names)), dtype=bool, order="F")
    for chunk in reader.answers(form_id):
        at = np.searchsorted(ids, chunk["session"])
        column = _lookup(chunk["question"], index)
        keep = column >= 0
        at, column = at[keep], column[keep]
        vids[at, column] = values.codes(chunk["value"])[keep]
        skipped[at, column] = chunk["skipped"][keep]
    return vids, skipped


def _wide_table(reader: AnswersRead, form_id: str | None, sessions: dict[str, list[Any]],
                forms: dict[tuple[str, str], Questionnaire], personal: bool, language: str) -> ExportTable:
    columns = _columns(forms.values(), language)
    ids = np.asarray(sessions["session"], dtype=np.int64)
    values = _Values()
    vids, skipped_matrix = _answer_matrix(reader, form_id, ids, list(columns), values)
    decoded = values.decoded
    n = len(ids)
    data: dict[str, Any] = {}
    labels: dict[str, str] = {}
    value_labels: dict[str, dict[Any, str]] = {}
    kinds: dict[str, str] = {}
    skipped: dict[str, np.ndarray] = {}
    questions: dict[str, str] = {}

    attributes = _attributes(sessions)
    fixed = ["respondent", *(PERSONAL_COLUMNS if personal else ()), *WIDE_SESSION_COLUMNS[1:], *SAMPLE_COLUMNS]
    last = last_channels(sessions["channel"], sessions["last_event_key"])
    mode = ["paper" if channel == "paper" else first for first, channel in zip(sessions["channel"], last)]
    sessions = {**sessions, "last_channel": last, "mode": mode}
    for name in [*fixed, *attributes]:
        if name in ("session", "number_of_reminders"):
            data[name] = pd.array(sessions[name], dtype="Int64")
        elif name == "duration_seconds":
            data[name] = pd.array(_durations(sessions["started_at"], sessions["completed_at"]), dtype="float64")
        elif name in ("pi", "weight"):
            data[name] = pd.array([math.nan if v is None else float(v) for v in sessions[name]], dtype="float64")
        else:
            data[name] = _text_column(attributes[name] if name in attributes else sessions[name])
        labels[name] = (f"{text('sample_attribute', language)}: {name[len('sample_'):]}"
                        if name in attributes else text(name, language))
        kinds[name] = "personal" if name in PERSONAL_COLUMNS else "meta"

    for j, (name, column) in enumerate(columns.items()):
        add_question_columns(name, column, vids[:, j], skipped_matrix[:, j], decoded, language,
                             data, labels, value_labels, kinds, skipped, questions)
    has_repeats = any(form.has_repeats for form in forms.values())
    if has_repeats:  # rows are numbered for the repeat tables' `_parent_index` to point to
        data = {"_index": pd.array(np.arange(1, n + 1), dtype="Int64"), **data}
        labels["_index"], kinds["_index"] = text("row_index", language), "meta"

    df = pd.DataFrame(data, index=pd.RangeIndex(n))
    table = ExportTable(df, labels, value_labels, kinds=kinds, skipped=skipped, questions=questions,
                        layout="wide", language=language, personal=personal, forms=tuple(sorted(forms)))
    table.codebook = codebook_rows(table)
    if has_repeats:
        from exporters.repeat_tables import repeat_tables

        table.repeats = repeat_tables(reader, form_id, forms, sessions, table, language)
    return table


def add_question_columns(name: str, column: "_Column", raw: np.ndarray, skipped_cells: np.ndarray,
                         decoded: list[Any], language: str, data: dict[str, Any], labels: dict[str, str],
                         value_labels: dict[str, dict[Any, str]], kinds: dict[str, str],
                         skipped: dict[str, np.ndarray], questions: dict[str, str]) -> None:
    """The column(s) of one question from its value ids ``raw`` (one per row; -1: no answer), added to
    the table's dicts: shared by the main table and the repeat tables (`exporters.repeat_tables`)."""
    question = column.question
    kind = question.type
    label = question.label.get(language, column.default_language) or name
    skip = skipped_cells.copy() if kind.is_asked else None
    questions[name] = question.name
    labels[name] = label
    if kind is QuestionType.SELECT_ONE:
        if column.integer_coded:
            data[name] = pd.array(_cells(raw, decoded, int), dtype="Int64")
            value_labels[name] = {int(c): lab for c, lab in column.choices.items()}
        else:
            data[name] = pd.array(_cells(raw, decoded, str), dtype=object)
            value_labels[name] = dict(column.choices)
        kinds[name] = "select_one"
    elif kind is QuestionType.SELECT_MULTIPLE:
        data[name] = pd.array(_cells(raw, decoded, " ".join), dtype=object)
        kinds[name] = "select_multiple"
        for choice, choice_label in column.choices.items():
            dummy = f"{name}/{choice}"
            data[dummy] = pd.array(_cells(raw, decoded, lambda v, c=choice: 1 if c in v else 0), dtype="Int64")
            labels[dummy] = f"{label}: {choice_label}"
            value_labels[dummy] = {0: text("not_selected", language), 1: text("selected", language)}
            kinds[dummy] = "choice"
            questions[dummy] = name
            if skip is not None and skip.any():
                skipped[dummy] = skip
    elif kind is QuestionType.RANK:
        # ODK's text (the names in rank order) plus, as select_multiple's 0/1 columns, one column
        # per choice with the rank given to it (1 = first; empty: not ranked, e.g. stopped early).
        data[name] = pd.array(_cells(raw, decoded, " ".join), dtype=object)
        kinds[name] = "rank"
        for choice, choice_label in column.choices.items():
            dummy = f"{name}/{choice}"
            data[dummy] = pd.array(_cells(raw, decoded, lambda v, c=choice: _rank_of(v, c)), dtype="Int64")
            labels[dummy] = f"{label}: {choice_label} ({text('rank_of', language)})"
            kinds[dummy] = "rank_position"
            questions[dummy] = name
            if skip is not None and skip.any():
                skipped[dummy] = skip
    elif kind is QuestionType.INTEGER:
        data[name] = pd.array(_cells(raw, decoded, int), dtype="Int64")
        kinds[name] = "integer"
    elif kind is QuestionType.DECIMAL:
        data[name] = _float_column(_cells(raw, decoded, float))
        kinds[name] = "decimal"
    elif kind is QuestionType.CALCULATE:
        numbers = [decoded[v] for v in np.unique(raw).tolist() if v >= 0 and _present(decoded[v])]
        if numbers and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            data[name] = _float_column(_cells(raw, decoded, float))
        else:
            data[name] = pd.array(_cells(raw, decoded, _text_cell), dtype=object)
        kinds[name] = "calculate"
    elif kind.is_media:  # the stored file's name; `exporters.media_files` puts the file beside the export
        data[name] = pd.array(_cells(raw, decoded, _text_cell), dtype=object)
        kinds[name] = "media"
    else:
        data[name] = pd.array(_cells(raw, decoded, _text_cell), dtype=object)
        kinds[name] = {QuestionType.DATE: "date", QuestionType.TEXT: "text", QuestionType.GEOPOINT: "text",
                       QuestionType.TIME: "text", QuestionType.DATETIME: "text",
                       QuestionType.ACKNOWLEDGE: "acknowledge"}.get(kind, "metadata")
    if skip is not None and skip.any():
        skipped[name] = skip


def _rank_of(value: Any, choice: str) -> int | None:
    """The rank (1 = first) a rank answer gives `choice`; None when it is not ranked."""
    names = value.split() if isinstance(value, str) else [str(name) for name in value]
    return names.index(choice) + 1 if choice in names else None


def _text_cell(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return to_string(value)


def _objects(items: list[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


# -- codebook --------------------------------------------------------------------------------

_KIND_TYPES = {"select_one": "select_one", "select_multiple": "select_multiple", "choice": "0/1",
               "rank": "rank (choice names in rank order)", "rank_position": "rank (1 = first)",
               "integer": "integer", "decimal": "decimal", "text": "text",
               "date": "date (ISO 8601 text in CSV; a date in SPSS, Stata, Excel and Parquet)",
               "calculate": "calculate", "metadata": "metadata", "acknowledge": "acknowledge",
               "personal": "PERSONAL DATA (text)",
               "media": "media (the file's path, in the <export>-media/ folder beside the export)"}


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
            if kind == "date":
                missing += "; skipped: empty everywhere (a date has no missing code)"
            elif dtype.kind in "if" or str(dtype) == "Int64" or table.value_labels.get(column):
                missing += "; skipped: empty in CSV/XLSX/Parquet, user-missing in SPSS, .a in Stata"
            else:  # Stata's text variables have no missing codes
                missing += "; skipped: empty in CSV/XLSX/Parquet and Stata, user-missing in SPSS"
        rows.append({"variable": column, "label": table.variable_labels.get(column, ""), "type": type_name,
                     "values": values, "missing": missing, "question": table.questions.get(column, "")})
    return rows
