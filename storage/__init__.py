"""Durable storage for khaosat: questionnaires, respondents, sessions, answers,
dispositions, invitations, chat links and the outbox.

All SQL lives in this package, one module per aggregate; ``storage/README.md`` maps every
table to the module that writes it. Callers depend on the ``Storage`` interface (the union of
the aggregates' Protocols) and get an implementation from ``open_storage``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from .base import Storage
from .errors import (
    AmbiguousPhone,
    InvitationRevoked,
    InvitationUsed,
    LinkConflict,
    NotFound,
    QuestionnaireConflict,
    StaleRevision,
    StorageError,
    FrameConflict,
    NotReplaceable,
    ReserveExhausted,
    SampleConflict,
)
from .records import (
    DISPOSITIONS,
    INVITATION_KINDS,
    OUTBOX_STATES,
    AnswerChange,
    AnswerRecord,
    ConsentRecord,
    Invitation,
    OutgoingMessage,
    Personal,
    QueuedMessage,
    ReminderHandOver,
    ReminderTexts,
    Respondent,
    SessionRecord,
    StepResult,
    StoredQuestionnaire,
    SAMPLE_ROLES,
    FrameImport,
    FrameRow,
    SampleInfo,
    SampleMember,
    SampleMemberInput,
    SampleStratum,
    StoredSurvey,
)
from .sqlite import SQLiteStorage

__all__ = [
    "DISPOSITIONS",
    "INVITATION_KINDS",
    "OUTBOX_STATES",
    "AmbiguousPhone",
    "AnswerChange",
    "AnswerRecord",
    "ConsentRecord",
    "Invitation",
    "InvitationRevoked",
    "InvitationUsed",
    "LinkConflict",
    "NotFound",
    "OutgoingMessage",
    "Personal",
    "QuestionnaireConflict",
    "QueuedMessage",
    "ReminderHandOver",
    "ReminderTexts",
    "Respondent",
    "SQLiteStorage",
    "SessionRecord",
    "StaleRevision",
    "StepResult",
    "Storage",
    "StorageError",
    "StoredQuestionnaire",
    "is_postgresql_url",
    "redacted",
    "open_storage",
    "SAMPLE_ROLES",
    "FrameConflict",
    "FrameImport",
    "FrameRow",
    "NotReplaceable",
    "ReserveExhausted",
    "SampleConflict",
    "SampleInfo",
    "SampleMember",
    "SampleMemberInput",
    "SampleStratum",
    "StoredSurvey",
]


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def is_postgresql_url(location: object) -> bool:
    """Whether ``location`` (a --db value, storage.path) names a PostgreSQL database, not a file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


async def open_storage(path: str | os.PathLike[str], synchronous: str = "full") -> Storage:
    """Open the SQLite database at ``path`` (creating it) or the PostgreSQL database a
    ``postgresql://`` URL names, and apply the migrations.

    Use as ``async with await open_storage(path) as storage:``. ``synchronous`` is "full"
    (the default; every commit is on disk before the call returns) or "normal" (survives a
    killed process, but power loss or an OS crash may lose the last commits); see
    ``SQLiteStorage.open``. On PostgreSQL the server's ``synchronous_commit`` decides instead.
    """
    if is_postgresql_url(path):
        from .pg_storage import PostgresStorage  # asyncpg is imported only for PostgreSQL

        return await PostgresStorage.open(str(path))
    return await SQLiteStorage.open(path, synchronous=synchronous)
