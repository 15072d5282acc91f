"""Questionnaires: the exact XLSForm sources by form id and version.

Tables written here: ``questionnaires``.
"""

from __future__ import annotations

import abc
import hashlib
import sqlite3
from typing import Protocol

from .errors import NotFound, QuestionnaireConflict
from .records import StoredQuestionnaire
from .sqlite_hops import SQLiteRepository, one_row


class Questionnaires(Protocol):
    """The questionnaires aggregate's storage: the contract every backend keeps."""

    @abc.abstractmethod
    async def save_questionnaire(
        self, form_id: str, version: str, source_name: str, source: bytes, at: str
    ) -> StoredQuestionnaire:
        """Keep the exact source of a questionnaire version.

        Idempotent, because the bot saves the form every time it loads it:
        identical content returns the record stored first. Different content
        under the same form_id and version raises ``QuestionnaireConflict`` —
        answers already collected refer to the old content.
        """

    @abc.abstractmethod
    async def get_questionnaire(self, form_id: str, version: str) -> StoredQuestionnaire:
        """Return one questionnaire version or raise ``NotFound``."""

    @abc.abstractmethod
    async def list_questionnaires(self) -> list[StoredQuestionnaire]:
        """All stored versions, ordered by form_id then loaded_at."""


class SQLiteQuestionnaires(SQLiteRepository):
    """``Questionnaires`` on SQLite."""

    async def save_questionnaire(
        self, form_id: str, version: str, source_name: str, source: bytes, at: str
    ) -> StoredQuestionnaire:
        sha256 = hashlib.sha256(source).hexdigest()

        def body(conn: sqlite3.Connection) -> StoredQuestionnaire:
            row = one_row(
                conn,
                "SELECT * FROM questionnaires WHERE form_id = ? AND version = ?",
                (form_id, version),
            )
            if row is not None:
                existing = StoredQuestionnaire(**dict(row))
                if existing.sha256 != sha256:
                    raise QuestionnaireConflict(
                        f"questionnaire {form_id!r} version {version!r} is already stored "
                        f"with different content (sha256 {existing.sha256}, "
                        f"loaded from {existing.source_name!r} at {existing.loaded_at}); "
                        "bump the form version"
                    )
                return existing
            record = StoredQuestionnaire(form_id, version, source_name, bytes(source), sha256, at)
            conn.execute(
                "INSERT INTO questionnaires (form_id, version, source_name, source, sha256,"
                " loaded_at) VALUES (?, ?, ?, ?, ?, ?)",
                (form_id, version, source_name, record.source, sha256, at),
            )
            return record

        return await self._write(body)

    async def get_questionnaire(self, form_id: str, version: str) -> StoredQuestionnaire:
        row = await self._fetchone(
            "SELECT * FROM questionnaires WHERE form_id = ? AND version = ?", (form_id, version)
        )
        if row is None:
            raise NotFound(f"questionnaire {form_id!r} version {version!r}")
        return StoredQuestionnaire(**dict(row))

    async def list_questionnaires(self) -> list[StoredQuestionnaire]:
        rows = await self._fetchall("SELECT * FROM questionnaires ORDER BY form_id, loaded_at")
        return [StoredQuestionnaire(**dict(row)) for row in rows]
