"""The long layout of exports: one row per stored answer (session × question reached), with its
value, value label, status and the time of its last change; see `exporters.table` for the model.

It is built a range of sessions at a time (`long_frames`), so that a national export of millions
of answers can be written as it is read (`read_long_chunks`, `exporters.writers.write_csv_chunks`)
with memory bounded by one chunk; `exporters.table.read_export` joins the chunks for the other
formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from exporters.table import (ANSWER_STATUSES, LONG_COLUMNS, PERSONAL_COLUMNS, ExportTable, Progress, _lookup,
                             _objects, _text_cell, _Values, codebook_rows, text)
from storage.answers_read import AnswersRead, open_answers_read
from surveys.expressions import NOT_APPLICABLE
from surveys.model import Question, QuestionType, Questionnaire
from surveys.repeats import repeat_plan, split_key
from surveys.xlsform import load_questionnaire_bytes


def read_long_chunks(path: str | Path, form_id: str | None = None, personal: bool = False, language: str = "vi",
                     progress: Progress | None = None) -> Iterator[ExportTable]:
    """The long layout as a sequence of ExportTables of a few thousand sessions each, in order, read
    in one snapshot: for writing a national export (millions of answers) with bounded memory."""
    with open_answers_read(path) as reader, reader.snapshot():
        forms = {(f.form_id, f.version): load_questionnaire_bytes(f.source, f.source_name, f.attachments)
                 for f in reader.forms(form_id)}
        sessions = reader.sessions(form_id, personal)
        for df in long_frames(reader, form_id, sessions, forms, personal, language, progress):
            yield long_export_table(df, personal, language, forms)


def _long_label(question: Question | None, value: Any, language: str, default_language: str) -> str | None:
    if question is None or not question.type.is_select or value in (None, ()) or value is NOT_APPLICABLE:
        return None
    names = value if isinstance(value, tuple) else (value,)
    found = []
    for name in names:
        choice = question.choice_by_name(str(name))
        found.append(choice.label.get(language, default_language) if choice else str(name))
    return "; ".join(found)


def _long_table(reader: AnswersRead, form_id: str | None, sessions: dict[str, list[Any]],
                forms: dict[tuple[str, str], Questionnaire], personal: bool, language: str,
                progress: Progress | None) -> ExportTable:
    """One row per stored answer, by session and question; notes left out (`long_frames` joined)."""
    frames = list(long_frames(reader, form_id, sessions, forms, personal, language, progress))
    columns = long_columns(personal)
    df = (pd.concat(frames, ignore_index=True) if frames else
          pd.DataFrame({c: pd.array([], dtype="Int64" if c == "session" else object) for c in columns}))
    return long_export_table(df, personal, language, forms)


def long_columns(personal: bool) -> list[str]:
    return ["respondent", *(PERSONAL_COLUMNS if personal else ()), *LONG_COLUMNS[1:]]


def long_export_table(df: pd.DataFrame, personal: bool, language: str,
                      forms: dict[tuple[str, str], Questionnaire] | tuple) -> ExportTable:
    """The labels, kinds and codebook of the long layout around its rows (all, or one chunk)."""
    columns = long_columns(personal)
    labels = {name: text("answer_status" if name == "status" else name, language) for name in columns}
    kinds = {name: "personal" if name in PERSONAL_COLUMNS else "meta" for name in columns}
    table = ExportTable(df, labels, {"status": {s: s for s in ANSWER_STATUSES}}, kinds=kinds, layout="long",
                        language=language, personal=personal, forms=tuple(sorted(forms)))
    table.codebook = codebook_rows(table)
    return table


def long_frames(reader: AnswersRead, form_id: str | None, sessions: dict[str, list[Any]],
                forms: dict[tuple[str, str], Questionnaire], personal: bool, language: str,
                progress: Progress | None = None) -> Iterator[pd.DataFrame]:
    """The long layout a range of sessions at a time, in order (memory bounded by the chunk). The
    answers come as arrays; the question's type and note-ness are worked out per (form, question)
    pair, the value text per distinct value and the label per distinct (form, question, value)."""
    ids = np.asarray(sessions["session"], dtype=np.int64)
    form_keys = list(forms)
    form_of = np.asarray([form_keys.index(k) for k in zip(sessions["form_id"], sessions["form_version"])],
                         dtype=np.int64)
    per_session = {name: _objects([None if v is None else str(v) for v in sessions[name]])
                   for name in ("respondent", *(PERSONAL_COLUMNS if personal else ()), "form_id", "form_version")}
    status_names = _objects(list(ANSWER_STATUSES))
    status_index = {s: i for i, s in enumerate(ANSWER_STATUSES)}
    values = _Values()
    for chunk in reader.long_answers(form_id, ids.tolist()):
        at = np.searchsorted(ids, chunk["session"])
        names = {name: i for i, name in enumerate(sorted(chunk["question"].unique().to_pylist()))}
        question_id = _lookup(chunk["question"], names)  # ids in name order: sorting by id sorts by name
        order = np.lexsort((question_id, at))
        at, question_id = at[order], question_id[order]
        vids = values.codes(chunk["value"])[order]
        status = _lookup(chunk["status"], status_index)[order]
        changed_at = chunk["changed_at"].take(pa.array(order)).to_numpy(zero_copy_only=False)
        name_of = _objects(list(names))
        pairs, pair = np.unique(form_of[at] * (1 << 32) + question_id, return_inverse=True)
        pair_form = [form_keys[p >> 32] for p in pairs.tolist()]
        found = [_question(forms[key], name_of[p & 0xFFFFFFFF]) for key, p in zip(pair_form, pairs.tolist())]
        keep = np.asarray([q is None or q.type is not QuestionType.NOTE for q in found], dtype=bool)[pair]
        distinct_vids, value_at = np.unique(vids, return_inverse=True)
        value_text = _objects([_long_value(values.decoded[v]) for v in distinct_vids.tolist()])
        label_keys, label_at = np.unique(pair * (1 << 32) + vids, return_inverse=True)
        value_label = _objects([_long_label(found[k >> 32], values.decoded[k & 0xFFFFFFFF], language,
                                            forms[pair_form[k >> 32]].default_language)
                                for k in label_keys.tolist()])
        types = _objects([q.type.value if q is not None else "" for q in found])
        data: dict[str, Any] = {name: column[at] for name, column in per_session.items()}
        data.update(session=ids[at], question=name_of[question_id], type=types[pair], value=value_text[value_at],
                    value_label=value_label[label_at], status=status_names[status], changed_at=changed_at)
        yield pd.DataFrame({name: (pd.array(data[name][keep], dtype="Int64") if name == "session"
                                   else pd.array(data[name][keep], dtype=object)) for name in long_columns(personal)},
                           index=pd.RangeIndex(int(keep.sum())))
        if progress and len(at):
            progress(int(at[-1]) + 1, len(ids))


def _question(form: Questionnaire, name: str) -> Question | None:
    """The question of a stored answer's key: its name, or an instance key (`member[2]/age`)."""
    if form.has(name):
        return form.question(name)
    if "[" in name and form.has_repeats:
        repeats, _numbers, bare = split_key(name)
        index = repeat_plan(form).by_shape.get((repeats, bare))
        return None if index is None else form.questions[index]
    return None


def _long_value(value: Any) -> str | None:
    if value is None or value is NOT_APPLICABLE or value == ():
        return None
    return _text_cell(value)
