"""Files sent for media questions (a photo, a voice note, a video, a document): their bytes,
kept with the session and the question they answer.

Table written here: ``answer_media``. The answer itself (the file's stored name, as ODK stores
media answers) goes through the one step write (``sessions.py``) like any answer; this aggregate
keeps the file. A file is keyed by its session, question key (``household[2]/photo`` inside a
repeat) and SHA-256, so the same update delivered twice stores one file; ``event_key`` remembers
the update that brought it, so a re-delivered update is recognised before anything is fetched.

The content may be personal data (faces, voices): with a data key set it is sealed like names
and phones (``personal_crypto.seal_bytes``, AES-256-GCM); ``sealed_with`` names the key.
``reseal_media`` (``khaosat rekey``) seals every file again with the current key, a batch per
transaction so that a large table is never held in memory. Erasure and retention
(``privacy.py``) delete a person's files with their sessions.

A file is kept while its session refers to it: the current answer to its question, or any
earlier value in ``answer_history`` (a photo the person replaced by another, or an answer the
form set aside when the person went back and the question became not relevant: an analyst may
need what was sent, and the history says when it changed). A file nothing ever referred to is
one the engine refused (a constraint on the question) or one stored by a turn that never
reached the engine; ``purge_unreferenced_media`` deletes those once older than a grace period
(the retention pass, ``fieldwork/privacy.py``), never at once: a re-delivered update reuses the
stored file (``media_of_event``) and the answer may land a moment after the file.
"""

from __future__ import annotations

import abc
import sqlite3
from dataclasses import dataclass
from typing import Protocol

from .personal_crypto import codec
from .sqlite_hops import SQLiteRepository, one_row


@dataclass(frozen=True)
class MediaFile:
    session_id: int
    #: The answer's key: the question's name, per instance inside a repeat (`household[2]/photo`).
    question: str
    #: The stored file's name: the answer's value.
    name: str
    mime: str
    size: int
    sha256: str
    received_at: str
    #: The bytes as sent (opened when read with content; b"" when listed without).
    content: bytes = b""


_COLUMNS = "session_id, question, name, mime, size, sha256, received_at"

#: Files no answer and no answer history of their session names (answers hold the name as a
#: JSON string, unescaped: a stored name has no quote, backslash or control character, see
#: bot/chat/media.stored_name, and non-ASCII stays as is in the JSON), received before
#: the bound. Written with the table's own name, not an alias, for DELETE on both databases.
_UNREFERENCED = (
    " FROM answer_media WHERE julianday(answer_media.received_at) < julianday(?)"
    " AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.session_id = answer_media.session_id"
    "   AND a.question = answer_media.question AND a.value = ('\"' || answer_media.name || '\"'))"
    " AND NOT EXISTS (SELECT 1 FROM answer_history h WHERE h.session_id = answer_media.session_id"
    "   AND h.question = answer_media.question AND (h.new_value = ('\"' || answer_media.name || '\"')"
    "   OR h.old_value = ('\"' || answer_media.name || '\"')))")


class Media(Protocol):
    """The media files aggregate's storage."""

    @abc.abstractmethod
    async def store_media(self, session_id: int, question: str, name: str, mime: str, content: bytes, sha256: str,
                          event_key: str, at: str) -> MediaFile:
        """Keep a file; the same session, question and SHA-256 again returns the file kept (idempotent)."""

    @abc.abstractmethod
    async def media_of_event(self, session_id: int, event_key: str) -> MediaFile | None:
        """The file an update brought, if it was stored already (a re-delivered update)."""

    @abc.abstractmethod
    async def media_files(self, session_ids: list[int], content: bool = True) -> list[MediaFile]:
        """The files of these sessions, by session and question; with their bytes opened when ``content``."""

    @abc.abstractmethod
    async def reseal_media(self, batch: int = 100) -> int:
        """Seal every file not sealed with the current key (another key, or plaintext) with it;
        returns how many were. Idempotent: a file already under the current key is not read."""

    @abc.abstractmethod
    async def purge_unreferenced_media(self, received_before: str, *, dry_run: bool) -> int:
        """Delete the files received before ``received_before`` that neither an answer nor the
        answer history of their session refers to (``dry_run``: count them); returns how many."""


class SQLiteMedia(SQLiteRepository):
    """``Media`` on SQLite (and PostgreSQL, through the same statements)."""

    async def store_media(self, session_id: int, question: str, name: str, mime: str, content: bytes, sha256: str,
                          event_key: str, at: str) -> MediaFile:
        sealed, key_id = codec().seal_bytes(content)

        def body(conn: sqlite3.Connection) -> MediaFile:
            found = one_row(conn, f"SELECT {_COLUMNS} FROM answer_media WHERE session_id = ? AND question = ?"
                                  " AND sha256 = ?", (session_id, question, sha256))
            if found is None:
                conn.execute("INSERT INTO answer_media (session_id, question, name, mime, size, sha256, content,"
                             " sealed_with, event_key, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (session_id, question, name, mime, len(content), sha256, sealed, key_id, event_key, at))
                return MediaFile(session_id, question, name, mime, len(content), sha256, at)
            return MediaFile(*found)

        return await self._write(body)

    async def media_of_event(self, session_id: int, event_key: str) -> MediaFile | None:
        row = await self._fetchone(f"SELECT {_COLUMNS} FROM answer_media WHERE session_id = ? AND event_key = ?",
                                   (session_id, event_key))
        return MediaFile(*row) if row is not None else None

    async def media_files(self, session_ids: list[int], content: bool = True) -> list[MediaFile]:
        if not session_ids:
            return []
        personal = codec()
        found: list[MediaFile] = []
        extra = ", content, sealed_with" if content else ""
        for start in range(0, len(session_ids), 500):
            chunk = session_ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = await self._fetchall(f"SELECT {_COLUMNS}{extra} FROM answer_media WHERE session_id IN ({marks})"
                                        " ORDER BY session_id, question, received_at", chunk)
            for row in rows:
                data = personal.open_bytes(row[7], row[8]) if content else b""
                found.append(MediaFile(*row[:7], content=data))
        return found

    async def reseal_media(self, batch: int = 100) -> int:
        personal = codec()
        current = personal.current_key_id
        if current is None:
            return 0  # nothing to seal with (``khaosat rekey`` refuses before coming here)

        def one_batch(conn: sqlite3.Connection) -> int:
            # Each batch is its own transaction: at most ``batch`` files (20 MB each at most) in
            # memory, the bots' writes wait for one batch only, and an interrupted run keeps what
            # it did; the next picks up the files still under another key.
            rows = conn.execute("SELECT session_id, question, sha256, content, sealed_with FROM answer_media"
                                " WHERE sealed_with IS NULL OR sealed_with <> ?"
                                " ORDER BY session_id, question, sha256 LIMIT ?", (current, batch)).fetchall()
            for session_id, question, sha256, content, sealed_with in rows:
                sealed, key_id = personal.seal_bytes(personal.open_bytes(content, sealed_with))
                conn.execute("UPDATE answer_media SET content = ?, sealed_with = ? WHERE session_id = ?"
                             " AND question = ? AND sha256 = ?", (sealed, key_id, session_id, question, sha256))
            return len(rows)

        total = 0
        while done := await self._write(one_batch):
            total += done
        return total

    async def purge_unreferenced_media(self, received_before: str, *, dry_run: bool) -> int:
        def body(conn: sqlite3.Connection) -> int:
            if dry_run:
                return one_row(conn, f"SELECT count(*){_UNREFERENCED}", (received_before,))[0]
            return conn.execute(f"DELETE{_UNREFERENCED}", (received_before,)).rowcount

        return await (self._read if dry_run else self._write)(body)
