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
