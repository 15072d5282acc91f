"""One long table per repeat group, beside the main (wide) table, as KoBoToolbox exports them.

A row per instance of the repeat that holds an answer (instances dropped by a lower count or a
"no" to "add another?" hold only NOT_APPLICABLE and have no row). Columns, first:

- ``_index``: the row's number in this table (1, 2, ...);
- ``_parent_table_name``: ``data`` (the main table, also the XLSX sheet's name) or the enclosing
  repeat's name for a nested repeat;
- ``_parent_index``: the ``_index`` of the parent row (the main table has an ``_index`` column
  when the form has repeats);
- ``respondent`` and ``session``, so a table also joins on its own;
- ``_position``: the instance's number within its parent row (XPath's position(..));

then one column per question of the repeat (not of repeats nested in it), with the codes, labels,
kinds and skipped marks of the main table (`exporters.table.add_question_columns`). Column names
are the question names as written in the form.

Only forms with repeats come here: the answers inside instances are read apart
(`AnswersRead.repeat_answers`), so exporting a form without repeats reads nothing more.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from exporters.table import ExportTable, _Column, _Values, add_question_columns, codebook_rows, text
from storage.answers_read import AnswersRead
from surveys.expressions import NOT_APPLICABLE
from surveys.model import QuestionType, Questionnaire
from surveys.repeats import bare_name, split_key

MAIN_TABLE = "data"


def repeat_tables(reader: AnswersRead, form_id: str | None, forms: dict[tuple[str, str], Questionnaire],
                  sessions: dict[str, list[Any]], main: ExportTable, language: str) -> dict[str, ExportTable]:
    """The repeat tables of `forms`, by repeat name, outer repeats before those nested in them."""
    chains: dict[str, tuple[str, ...]] = {}  # repeat name → enclosing repeats and itself
    columns: dict[str, dict[str, _Column]] = {}  # repeat name → column name → question
    for form in forms.values():
        for question in form.questions:
            if not question.repeats:
                continue
            for depth in range(1, len(question.repeats) + 1):
                chains.setdefault(question.repeats[depth - 1], question.repeats[:depth])
            if question.type is QuestionType.NOTE:
                continue
            found = columns.setdefault(question.repeats[-1], {})
            column = found.setdefault(bare_name(question), _Column(question, form.default_language))
            for choice in question.choices:
                column.choices.setdefault(choice.name, choice.label.get(language, form.default_language)
                                          or choice.name)
    order = sorted(chains, key=lambda name: len(chains[name]))  # stable: form order within a depth
    values = _Values()
    # (session, instance numbers) → column name → (value id, skipped), per repeat
    cells: dict[str, dict[tuple[int, tuple[int, ...]], dict[str, tuple[int, bool]]]] = {name: {} for name in order}
    for chunk in reader.repeat_answers(form_id):
        vids = values.codes(chunk["value"])
        for session, key, vid, skipped in zip(chunk["session"].tolist(), chunk["question"].to_pylist(),
                                              vids.tolist(), chunk["skipped"].tolist()):
            repeats, numbers, name = split_key(key)
            if repeats and chains.get(repeats[-1]) == repeats and name in columns.get(repeats[-1], {}):
                cells[repeats[-1]].setdefault((session, numbers), {})[name] = (vid, skipped)
    decoded = values.decoded
    main_rows = {session: index + 1 for index, session in enumerate(sessions["session"])}
    respondents = dict(zip(sessions["session"], sessions["respondent"]))
    row_numbers: dict[str, dict[tuple[int, tuple[int, ...]], int]] = {}
    tables: dict[str, ExportTable] = {}
    for name in order:
        chain = chains[name]
        parent = chain[-2] if len(chain) > 1 else None
        parent_rows = row_numbers.get(parent, {}) if parent else None
        rows = sorted(place for place, answers in cells[name].items()
                      if place[0] in main_rows and any(decoded[vid] is not NOT_APPLICABLE for vid, _ in answers.values())
                      and (parent_rows is None or (place[0], place[1][:-1]) in parent_rows))
        row_numbers[name] = {place: index + 1 for index, place in enumerate(rows)}
        tables[name] = _table(name, parent, rows, cells[name], columns.get(name, {}), decoded, main_rows,
                              parent_rows, respondents, main, language)
    return tables


def _table(name: str, parent: str | None, rows: list[tuple[int, tuple[int, ...]]],
           cells: dict[tuple[int, tuple[int, ...]], dict[str, tuple[int, bool]]], columns: dict[str, _Column],
           decoded: list[Any], main_rows: dict[int, int], parent_rows: dict | None, respondents: dict[int, Any],
           main: ExportTable, language: str) -> ExportTable:
    n = len(rows)
    data: dict[str, Any] = {
        "_index": pd.array(np.arange(1, n + 1), dtype="Int64"),
        "_parent_table_name": pd.array([parent or MAIN_TABLE] * n, dtype=object),
        "_parent_index": pd.array([main_rows[session] if parent_rows is None else parent_rows[(session, numbers[:-1])]
                                   for session, numbers in rows], dtype="Int64"),
        "respondent": pd.array([respondents[session] for session, _ in rows], dtype=object),
        "session": pd.array([session for session, _ in rows], dtype="Int64"),
        "_position": pd.array([numbers[-1] for _, numbers in rows], dtype="Int64"),
    }
    labels = {"_index": text("row_index", language), "_parent_table_name": text("parent_table", language),
              "_parent_index": text("parent_index", language), "respondent": text("respondent", language),
              "session": text("session", language), "_position": text("instance_number", language)}
    kinds = {column: "meta" for column in data}
    value_labels: dict[str, dict[Any, str]] = {}
    skipped: dict[str, np.ndarray] = {}
    questions: dict[str, str] = {}
    for column_name, column in columns.items():
        raw = np.full(n, -1, dtype=np.int64)
        skips = np.zeros(n, dtype=bool)
        for row, place in enumerate(rows):
            found = cells[place].get(column_name)
            if found is not None:
                raw[row], skips[row] = found
        add_question_columns(column_name, column, raw, skips, decoded, language,
                             data, labels, value_labels, kinds, skipped, questions)
    table = ExportTable(pd.DataFrame(data, index=pd.RangeIndex(n)), labels, value_labels, kinds=kinds,
                        skipped=skipped, questions=questions, layout=f"repeat {name}", language=language,
                        personal=main.personal, forms=main.forms)
    table.codebook = codebook_rows(table)
    return table
