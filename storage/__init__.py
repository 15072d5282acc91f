"""Durable storage for khaosat: questionnaires, respondents, sessions, answers.

All SQL lives in this package. Callers depend on the ``Storage`` interface
and get an implementation from ``open_storage``.
"""

from __future__ import annotations

import os

from .base import Storage
from .errors import NotFound, QuestionnaireConflict, StaleRevision, StorageError
from .records import (
    AnswerChange,
    AnswerRecord,
    Respondent,
    SessionRecord,
    StepResult,
    StoredQuestionnaire,
)
from .sqlite import SQLiteStorage

__all__ = [
    "AnswerChange",
    "AnswerRecord",
    "NotFound",
    "QuestionnaireConflict",
    "Respondent",
    "SQLiteStorage",
    "SessionRecord",
    "StaleRevision",
    "StepResult",
    "Storage",
    "StorageError",
    "StoredQuestionnaire",
    "open_storage",
]


async def open_storage(path: str | os.PathLike[str]) -> Storage:
    """Open the SQLite database at ``path``, creating it and applying migrations.

    Use as ``async with await open_storage(path) as storage:``.
    """
    return await SQLiteStorage.open(path)
