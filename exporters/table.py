"""Answers as a table: one row per session, one column per question (XLSForm names).

Respondents appear under their pseudonym only (Decree 13/2023/ND-CP): an analyst's file
never carries the external id that links a row to a person.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.conversations import Conversations
from surveys import codec
from surveys.expressions import NOT_APPLICABLE, to_string
from surveys.model import QuestionType

SESSION_COLUMNS = ("respondent", "session", "form_id", "form_version", "channel", "status", "language",
                   "started_at", "completed_at", "updated_at")
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


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
