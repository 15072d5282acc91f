"""Paper forms: the printed copies (one per sampled person, identified by a code) and the
entries staff type from the returned ones (first entry, second entry, the resolution).

Tables written here: ``paper_forms``, ``paper_entries``. The answers themselves become a
session through the one step write (``sessions.py``), like a chat's; this aggregate only
remembers which copy went to whom, what each person typed, and which session it became.

Codes are stored as hashes only, as invitation codes are (``links.py``): the printed code is
the person's typed invitation code, so a copy of the database does not give anyone a form's code.
"""

from __future__ import annotations

import abc
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import NotFound, StorageError
from .sqlite_hops import SQLiteRepository, one_row

#: The entries of one paper form: typed first, typed again by someone else, resolved.
ENTRY_PASSES = (1, 2, 3)


@dataclass(frozen=True)
class PaperForm:
    id: int
    respondent_id: int
    survey_id: str
    form_id: str
    form_version: str
    printed_at: str
    #: The session the form became (None until its entries were resolved and written).
    session_id: int | None
    written_at: str | None


@dataclass(frozen=True)
class PaperEntry:
    paper_form_id: int
    #: 1: first entry, 2: second entry (another person), 3: the resolution of their differences.
    pass_number: int
    account_id: int | None
    username: str
    language: str
    #: JSON object: question name → what was typed (text, as on the paper).
    answers: str
    entered_at: str


_FORM_COLUMNS = "id, respondent_id, survey_id, form_id, form_version, printed_at, session_id, written_at"
_ENTRY_COLUMNS = "paper_form_id, pass, account_id, username, language, answers, entered_at"


#: Dispositions whose AAPOR class is I, P or R: the members a mode is counted for.
_ANSWERED = "('started', 'partial', 'completed', 'refused')"

#: Fielded members of a survey who answered, per stratum, disposition (a replaced member's: the one it
#: had when replaced) and the mode of their latest session: "paper" when it was typed from a paper form,
#: else the channel it started on. One probe per member (no events are read).
_MODE_COUNTS = (
    "SELECT m.stratum AS stratum, CASE WHEN m.disposition = 'replaced' THEN m.replaced_disposition"
    " ELSE m.disposition END AS disposition,"
    # The paper sessions are looked up once (an ephemeral index), not per member: paper_forms has no
    # index on session_id, and its migration has shipped.
    " CASE WHEN s.id IN (SELECT p.session_id FROM paper_forms p WHERE p.session_id IS NOT NULL) THEN 'paper'"
    " ELSE s.channel END AS mode,"
    " count(*) AS n"
    " FROM sample_members m JOIN sessions s ON s.id ="
    " (SELECT max(x.id) FROM sessions x WHERE x.respondent_id = m.respondent_id)"
    f" WHERE m.survey_id = ? AND (m.disposition IN {_ANSWERED} OR m.replaced_disposition IN {_ANSWERED})"
    " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)


def read_mode_counts(path: str, survey_id: str) -> list[dict[str, Any]]:
    """``mode_counts`` on a read connection of its own (a worker thread calls it): at national scale it
    reads one session per member, which must not hold the bots' storage thread (WAL: no blocking)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(_MODE_COUNTS, (survey_id,)).fetchall()]
    except sqlite3.Error as error:
        raise StorageError(f"cannot read the modes of {path}: {error}") from error
    finally:
        conn.close()


class PaperEntries(Protocol):
    """The paper forms aggregate's storage."""

    @abc.abstractmethod
    async def record_paper_form(self, code_hash: str, respondent_id: int, survey_id: str, form_id: str,
                                form_version: str, at: str) -> PaperForm:
        """Remember a printed copy; the same ``code_hash`` again returns the copy recorded (idempotent)."""

    @abc.abstractmethod
    async def paper_form_by_code(self, code_hash: str) -> PaperForm | None:
        """The copy printed with this code, if any."""

    @abc.abstractmethod
    async def paper_form(self, paper_form_id: int) -> PaperForm:
        """One copy, or ``NotFound``."""

    @abc.abstractmethod
    async def paper_forms(self, survey_id: str) -> list[PaperForm]:
        """The survey's copies, by id."""

    @abc.abstractmethod
    async def paper_entries(self, paper_form_id: int) -> list[PaperEntry]:
        """The entries of one copy, by pass."""

    @abc.abstractmethod
    async def entry_passes(self, survey_id: str) -> dict[int, tuple[int, ...]]:
        """paper form id → the passes entered so far, for the survey's copies that have any."""

    @abc.abstractmethod
    async def save_paper_entry(self, paper_form_id: int, pass_number: int, account_id: int | None, username: str,
                               language: str, answers: str, at: str) -> bool:
        """Store one entry. The same person may type their own pass again (a correction) until the
        copy is written; an entry of that pass by someone else, or any entry after the copy was
        written, raises ``StorageError``. Returns False when the same answers were stored already."""

    @abc.abstractmethod
    async def form_units(self, survey_id: str) -> dict[int, str]:
        """paper form id → the frame unit of its respondent (the console's scope check and lists)."""

    @abc.abstractmethod
    async def mark_paper_written(self, paper_form_id: int, session_id: int, at: str) -> bool:
        """Record the session the copy became; False if it was recorded before (the first one stays)."""


class SQLitePaperEntries(SQLiteRepository):
    """``PaperEntries`` on SQLite."""

    @staticmethod
    def _form(conn: sqlite3.Connection, where: str, value: Any) -> PaperForm | None:
        row = one_row(conn, f"SELECT {_FORM_COLUMNS} FROM paper_forms WHERE {where} = ?", (value,))
        return PaperForm(*row) if row is not None else None

    async def record_paper_form(self, code_hash: str, respondent_id: int, survey_id: str, form_id: str,
                                form_version: str, at: str) -> PaperForm:
        def body(conn: sqlite3.Connection) -> PaperForm:
            found = self._form(conn, "code_hash", code_hash)
            if found is not None:
                return found
            conn.execute(
                "INSERT INTO paper_forms (code_hash, respondent_id, survey_id, form_id, form_version, printed_at)"
                " VALUES (?, ?, ?, ?, ?, ?)", (code_hash, respondent_id, survey_id, form_id, form_version, at))
            return self._form(conn, "code_hash", code_hash)

        return await self._write(body)

    async def paper_form_by_code(self, code_hash: str) -> PaperForm | None:
        return await self._read(self._form, "code_hash", code_hash)

    async def paper_form(self, paper_form_id: int) -> PaperForm:
        found = await self._read(self._form, "id", paper_form_id)
        if found is None:
            raise NotFound(f"paper form {paper_form_id}")
        return found

    async def paper_forms(self, survey_id: str) -> list[PaperForm]:
        rows = await self._fetchall(f"SELECT {_FORM_COLUMNS} FROM paper_forms WHERE survey_id = ? ORDER BY id",
                                    (survey_id,))
        return [PaperForm(*row) for row in rows]

    async def paper_entries(self, paper_form_id: int) -> list[PaperEntry]:
        rows = await self._fetchall(f"SELECT {_ENTRY_COLUMNS} FROM paper_entries WHERE paper_form_id = ?"
                                    " ORDER BY pass", (paper_form_id,))
        return [PaperEntry(*row) for row in rows]

    async def entry_passes(self, survey_id: str) -> dict[int, tuple[int, ...]]:
        rows = await self._fetchall(
            "SELECT e.paper_form_id, e.pass FROM paper_entries e JOIN paper_forms f ON f.id = e.paper_form_id"
            " WHERE f.survey_id = ? ORDER BY e.paper_form_id, e.pass", (survey_id,))
        passes: dict[int, tuple[int, ...]] = {}
        for form_id, number in rows:
            passes[form_id] = passes.get(form_id, ()) + (number,)
        return passes

    async def save_paper_entry(self, paper_form_id: int, pass_number: int, account_id: int | None, username: str,
                               language: str, answers: str, at: str) -> bool:
        if pass_number not in ENTRY_PASSES:
            raise StorageError(f"entry pass {pass_number} is not one of {ENTRY_PASSES}")

        def body(conn: sqlite3.Connection) -> bool:
            form = self._form(conn, "id", paper_form_id)
            if form is None:
                raise NotFound(f"paper form {paper_form_id}")
            if form.written_at is not None:
                raise StorageError(f"paper form {paper_form_id} was written as session {form.session_id} already")
            row = one_row(conn, "SELECT username, answers, language FROM paper_entries"
                                " WHERE paper_form_id = ? AND pass = ?", (paper_form_id, pass_number))
            if row is not None:
                if row[0] != username:
                    raise StorageError(f"entry {pass_number} of paper form {paper_form_id} was typed by {row[0]}")
                if row[1] == answers and row[2] == language:
                    return False
                conn.execute("UPDATE paper_entries SET answers = ?, language = ?, entered_at = ?"
                             " WHERE paper_form_id = ? AND pass = ?",
                             (answers, language, at, paper_form_id, pass_number))
                return True
            conn.execute(f"INSERT INTO paper_entries ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (paper_form_id, pass_number, account_id, username, language, answers, at))
            return True

        return await self._write(body)

    async def form_units(self, survey_id: str) -> dict[int, str]:
        rows = await self._fetchall(
            "SELECT p.id, f.unit FROM paper_forms p JOIN sample_members m ON m.respondent_id = p.respondent_id"
            " JOIN frame_units f ON f.survey_id = m.survey_id AND f.frame_id = m.frame_id WHERE p.survey_id = ?",
            (survey_id,))
        return {row[0]: row[1] for row in rows}

    async def form_unit(self, paper_form_id: int) -> str | None:
        """The frame unit of one paper form's respondent."""
        row = await self._fetchone(
            "SELECT f.unit FROM paper_forms p JOIN sample_members m ON m.respondent_id = p.respondent_id"
            " JOIN frame_units f ON f.survey_id = m.survey_id AND f.frame_id = m.frame_id WHERE p.id = ?",
            (paper_form_id,))
        return row[0] if row is not None else None

    async def mark_paper_written(self, paper_form_id: int, session_id: int, at: str) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("UPDATE paper_forms SET session_id = ?, written_at = ?"
                                  " WHERE id = ? AND written_at IS NULL", (session_id, at, paper_form_id))
            return cursor.rowcount == 1

        return await self._write(body)

    async def mode_counts(self, survey_id: str) -> list[dict[str, Any]]:
        """Members who answered per stratum, disposition and mode (``_MODE_COUNTS``), on the storage's
        own connection (an in-memory database; a file is read apart with ``read_mode_counts``)."""
        rows = await self._fetchall(_MODE_COUNTS, (survey_id,))
        return [dict(row) for row in rows]
