"""Questionnaires: the exact XLSForm sources by form id and version.

Tables written here: ``questionnaires``, ``questionnaire_attachments``.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import sqlite3
from collections.abc import Mapping
from typing import Protocol

from .errors import NotFound, QuestionnaireConflict
from .records import StoredQuestionnaire
from .sqlite_hops import SQLiteRepository, all_rows, one_row


class Questionnaires(Protocol):
    """The questionnaires aggregate's storage: the contract every backend keeps."""

    @abc.abstractmethod
    async def save_questionnaire(
        self, form_id: str, version: str, source_name: str, source: bytes, at: str,
        attachments: Mapping[str, bytes] | None = None,
    ) -> StoredQuestionnaire:
        """Keep the exact source of a questionnaire version, and the files beside it that it
        reads (`attachments`: file name → bytes).

        Idempotent, because the bot saves the form every time it loads it:
        identical content returns the record stored first (an attachment not stored yet, as in
        a database from before attachments were kept, is added). Different content — the source
        or an attachment of the same name — under the same form_id and version raises
        ``QuestionnaireConflict``: answers already collected refer to the old content.
        """

    @abc.abstractmethod
    async def get_questionnaire(self, form_id: str, version: str) -> StoredQuestionnaire:
        """Return one questionnaire version with its attachments, or raise ``NotFound``."""

    @abc.abstractmethod
    async def list_questionnaires(self) -> list[StoredQuestionnaire]:
        """All stored versions, ordered by form_id then loaded_at (without their attachments)."""


class SQLiteQuestionnaires(SQLiteRepository):
    """``Questionnaires`` on SQLite."""

    async def save_questionnaire(
        self, form_id: str, version: str, source_name: str, source: bytes, at: str,
        attachments: Mapping[str, bytes] | None = None,
    ) -> StoredQuestionnaire:
        sha256 = hashlib.sha256(source).hexdigest()
        files = {name: (bytes(content), hashlib.sha256(content).hexdigest())
                 for name, content in sorted((attachments or {}).items())}

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
            else:
                existing = StoredQuestionnaire(form_id, version, source_name, bytes(source), sha256, at)
                conn.execute(
                    "INSERT INTO questionnaires (form_id, version, source_name, source, sha256,"
                    " loaded_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (form_id, version, source_name, existing.source, sha256, at),
                )
            if not files:  # a form that reads no file (the record says nothing of attachments)
                return existing
            stored = {row[0]: row[1] for row in all_rows(
                conn, "SELECT name, sha256 FROM questionnaire_attachments WHERE form_id = ? AND version = ?",
                (form_id, version))}
            for name, (content, digest) in files.items():
                if name not in stored:
                    conn.execute(
                        "INSERT INTO questionnaire_attachments (form_id, version, name, content, sha256)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (form_id, version, name, content, digest),
                    )
                elif stored[name] != digest:
                    raise QuestionnaireConflict(
                        f"questionnaire {form_id!r} version {version!r} is already stored with another "
                        f"{name!r} (sha256 {stored[name]}); bump the form version"
                    )
            return dataclasses.replace(existing, attachments=self._attachments(conn, form_id, version))

        return await self._write(body)

    async def get_questionnaire(self, form_id: str, version: str) -> StoredQuestionnaire:
        def body(conn: sqlite3.Connection) -> StoredQuestionnaire:
            row = one_row(conn, "SELECT * FROM questionnaires WHERE form_id = ? AND version = ?",
                          (form_id, version))
            if row is None:
                raise NotFound(f"questionnaire {form_id!r} version {version!r}")
            return StoredQuestionnaire(**dict(row), attachments=self._attachments(conn, form_id, version))

        return await self._read(body)

    @staticmethod
    def _attachments(conn: sqlite3.Connection, form_id: str, version: str) -> dict[str, bytes]:
        return {row[0]: bytes(row[1]) for row in all_rows(
            conn, "SELECT name, content FROM questionnaire_attachments WHERE form_id = ? AND version = ?"
            " ORDER BY name", (form_id, version))}

    async def list_questionnaires(self) -> list[StoredQuestionnaire]:
        rows = await self._fetchall("SELECT * FROM questionnaires ORDER BY form_id, loaded_at")
        return [StoredQuestionnaire(**dict(row)) for row in rows]
