"""Set-based reads of every session and answer, for exports and statistics.

The export used to read one session at a time through the bot's storage thread (two round trips a
session, a Python object per cell). `AnswersRead` instead answers a whole export in a few
statements, handing rows over in chunks so that memory stays bounded, on its **own** read
connection: the database is in WAL mode, so a reader in a worker thread or process sees one
consistent snapshot per statement and never blocks the bots writing answers meanwhile.

The SQL is here (storage owns all SQL); `exporters.table` turns the rows into columns.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, Sequence

from .errors import StorageError
from .personal_crypto import codec

#: Answers (by rowid range) handed over per chunk: a few tens of MB of arrow arrays at a time.
CHUNK_ROWS = 200_000
#: Sessions per chunk of the long layout (~40 answers each).
SESSIONS_PER_CHUNK = 5_000

#: The channel an event came through, from the prefix of its key (each channel keys the events it
#: applies by its own update id: ``tg:<bot>:<update>``, ``zalo:<bot>:<message>``,
#: ``console:<uuid>``, a typed paper form ``paper:<form>:<seq>``). Events with another key (tests, replays, system events) name no channel.
EVENT_KEY_CHANNELS = {"tg": "telegram", "zalo": "zalo", "console": "console", "paper": "paper"}

#: Columns of `AnswersRead.sessions`, in order.
SESSION_FIELDS = ("session", "respondent_id", "respondent", "form_id", "form_version", "channel",
                  "last_event_key", "status", "language", "started_at", "completed_at", "updated_at",
                  "disposition", "disposition_at", "stratum", "survey", "group", "unit", "pi", "weight",
                  "sample_role", "attributes", "number_of_reminders", "name", "phone")


@dataclass(frozen=True)
class FormSource:
    """A stored questionnaire used by the sessions read, in order of its first session."""

    form_id: str
    version: str
    source: bytes
    source_name: str
    #: The files beside it that it reads (`prices.csv` → bytes), as stored with it.
    attachments: Mapping[str, bytes] = field(default_factory=dict)


class AnswersRead(Protocol):
    """Whole-survey reads for analysts; every method reads one consistent snapshot."""

    def forms(self, form_id: str | None) -> list[FormSource]: ...

    def sessions(self, form_id: str | None, personal: bool) -> dict[str, list[Any]]: ...

    def answers(self, form_id: str | None) -> Iterator[dict[str, Any]]: ...

    def long_answers(self, form_id: str | None, sessions: Sequence[int] = ()) -> Iterator[dict[str, Any]]: ...

    def repeat_answers(self, form_id: str | None) -> Iterator[dict[str, Any]]: ...

    def snapshot(self) -> Any: ...

    def close(self) -> None: ...


_SESSIONS = f"""
SELECT s.id, s.respondent_id, r.pseudonym, s.form_id, s.form_version, s.channel,
       (SELECT e.event_key FROM events e WHERE e.session_id = s.id
          AND ({' OR '.join(f"e.event_key LIKE '{prefix}:%'" for prefix in EVENT_KEY_CHANNELS)})
        ORDER BY e.revision DESC LIMIT 1),
       s.status, json_extract(s.state, '$.language'), json_extract(s.state, '$.started_at'),
       json_extract(s.state, '$.completed_at'), s.updated_at,
       r.disposition, r.disposition_at, r.stratum,
       m.survey_id, m.grp, f.unit, m.pi, m.weight, m.role, f.attributes,
       coalesce((SELECT count(*) FROM reminders w WHERE w.respondent_id = s.respondent_id
                 AND w.withdrawn_at IS NULL), 0),
       {{personal}}
FROM sessions s
JOIN respondents r ON r.id = s.respondent_id
LEFT JOIN sample_members m ON m.respondent_id = s.respondent_id
      AND m.survey_id IN (SELECT id FROM survey_versions)
LEFT JOIN frame_units f ON f.survey_id = m.survey_id AND f.frame_id = m.frame_id
{{personal_join}}
WHERE (?1 IS NULL OR s.form_id = ?1)
ORDER BY s.id
"""


class SQLiteAnswersRead:
    """`AnswersRead` on a SQLite file, with a connection of its own (``query_only``).

    Open it in the thread (or process) that uses it; `open_answers_read` does.
    """

    #: One column of a chunk as one text (``_answer_columns``); PostgreSQL's is ``string_agg``.
    _JOINED = "group_concat({expression}, '{separator}')"

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise StorageError(f"no database at {path}")
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA query_only = 1")
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._conn.execute("PRAGMA cache_size = -65536")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> SQLiteAnswersRead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def forms(self, form_id: str | None) -> list[FormSource]:
        rows = self._conn.execute(
            "SELECT q.form_id, q.version, q.source, q.source_name FROM"
            " (SELECT form_id, form_version, min(id) AS first FROM sessions"
            "  WHERE (?1 IS NULL OR form_id = ?1) GROUP BY form_id, form_version) s"
            " JOIN questionnaires q ON q.form_id = s.form_id AND q.version = s.form_version"
            " ORDER BY s.first", (form_id,)).fetchall()
        files: dict[tuple[str, str], dict[str, bytes]] = {}
        for key_form, key_version, name, content in self._conn.execute(
                "SELECT form_id, version, name, content FROM questionnaire_attachments"
                " WHERE (?1 IS NULL OR form_id = ?1) ORDER BY name", (form_id,)):
            files.setdefault((key_form, key_version), {})[name] = bytes(content)
        return [FormSource(*row, attachments=files.get((row[0], row[1]), {})) for row in rows]

    def sessions(self, form_id: str | None, personal: bool) -> dict[str, list[Any]]:
        """One list per `SESSION_FIELDS` entry, one item per session in id order."""
        sql = _SESSIONS.format(personal="p.name, p.phone" if personal else "NULL, NULL",
                               personal_join="LEFT JOIN respondent_personal p ON p.respondent_id = r.id"
                               if personal else "")
        rows = self._conn.execute(sql, (form_id,)).fetchall()
        columns = list(zip(*rows)) if rows else [()] * len(SESSION_FIELDS)
        out = {name: list(values) for name, values in zip(SESSION_FIELDS, columns)}
        if personal:  # names and phones are encrypted at rest (personal_crypto)
            personal_codec = codec()
            for name in ("name", "phone"):
                out[name] = [personal_codec.open(value) for value in out[name]]
        return out

    def answers(self, form_id: str | None) -> Iterator[dict[str, Any]]:
        """Every stored answer, in chunks of `CHUNK_ROWS` rows in storage order, as arrow arrays:
        ``session`` (int64 numpy), ``question`` and ``value`` (JSON text) strings, ``skipped`` (bool
        numpy)."""
        for chunk in self._answer_columns({"session": "a.session_id", "question": "a.question", "value": "a.value",
                                           "skipped": "CASE WHEN a.status = 'skipped' THEN 1 ELSE 0 END"}, form_id):
            chunk["session"] = _integers(chunk["session"])
            chunk["skipped"] = _integers(chunk["skipped"]).astype(bool)
            yield chunk

    def repeat_answers(self, form_id: str | None) -> Iterator[dict[str, Any]]:
        """As `answers`, only those inside repeat instances (keys such as ``household[2]/age``, which
        no question name can be: XLSForm names have no brackets), for the repeat tables."""
        for chunk in self._answer_columns({"session": "a.session_id", "question": "a.question", "value": "a.value",
                                           "skipped": "a.status = 'skipped'"}, form_id,
                                          only="instr(a.question, '[') > 0"):
            chunk["session"] = _integers(chunk["session"])
            chunk["skipped"] = _integers(chunk["skipped"]).astype(bool)
            yield chunk

    def long_answers(self, form_id: str | None, sessions: Sequence[int] = ()) -> Iterator[dict[str, Any]]:
        """As `answers`, with ``status`` and ``changed_at`` (the answer's latest history entry, else
        its update time) instead of ``skipped``, a range of ``sessions`` (sorted ids) at a time in
        session order, so that a long table can be written as it is read (the caller sorts the
        questions within a chunk)."""
        ranges = [(sessions[i], sessions[min(i + SESSIONS_PER_CHUNK, len(sessions)) - 1])
                  for i in range(0, len(sessions), SESSIONS_PER_CHUNK)]
        for chunk in self._answer_columns({
                "session": "a.session_id", "question": "a.question", "value": "a.value", "status": "a.status",
                "changed_at": "coalesce((SELECT h.at FROM answer_history h WHERE h.session_id = a.session_id"
                              " AND h.question = a.question ORDER BY h.id DESC LIMIT 1), a.updated_at)"}, form_id,
                ranges):
            chunk["session"] = _integers(chunk["session"])
            yield chunk

    def _answer_columns(self, expressions: dict[str, str], form_id: str | None,
                        session_ranges: Sequence[tuple[int, int]] | None = None,
                        only: str | None = None) -> Iterator[dict[str, Any]]:
        """The answers table in rowid ranges, each column of a range as ONE text that SQLite joins
        (``group_concat``) and arrow splits: no Python object per answer, a sequential scan.
        Record separator U+001E cannot occur in JSON text (control characters are escaped in JSON
        strings), in XLSForm names, numbers or timestamps; a count check guards it anyway."""
        import pyarrow as pa
        import pyarrow.compute as pc

        select = ", ".join(self._JOINED.format(expression=e, separator=_SEPARATOR) for e in expressions.values())
        if session_ranges is None:  # storage order, by rowid: a sequential scan
            where, ranges = self._storage_ranges()
            if not ranges:
                return
        else:  # by session, through the (session_id, question) key
            where, ranges = "a.session_id >= ?1 AND a.session_id <= ?2", list(session_ranges)
        if only is not None:
            where = f"{where} AND {only}"
        sql = (f"SELECT {select}, count(*) FROM answers a WHERE {where}"
               + ("" if form_id is None else " AND a.session_id IN (SELECT id FROM sessions WHERE form_id = ?3)"))
        for start, end in ranges:
            params = (start, end) + (() if form_id is None else (form_id,))
            *texts, count = self._conn.execute(sql, params).fetchone()
            if not count:
                continue
            chunk = {}
            for name, joined in zip(expressions, texts):
                column = pc.split_pattern(pa.array([joined], pa.large_string()), _SEPARATOR).flatten()
                if len(column) != count:
                    raise StorageError(f"answers {start}…{end}: a {name} contains U+001E")
                chunk[name] = column
            yield chunk

    def _storage_ranges(self) -> tuple[str, list[tuple[int, int]]]:
        """The answers in rowid ranges of `CHUNK_ROWS`: SQLite's storage order, a sequential scan."""
        first, last = self._conn.execute("SELECT min(rowid), max(rowid) FROM answers").fetchone()
        if first is None:
            return "", []
        return "a.rowid >= ?1 AND a.rowid < ?2", [(start, start + CHUNK_ROWS) for start in
                                                  range(first, last + 1, CHUNK_ROWS)]

    def snapshot(self) -> "_Snapshot":
        """``with reader.snapshot():`` every read inside sees the same committed state (one read
        transaction; WAL lets the bots keep writing meanwhile)."""
        return _Snapshot(self._conn)


_SEPARATOR = "\x1e"


class _Snapshot:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN")

    def __exit__(self, *exc: object) -> None:
        self._conn.execute("COMMIT")


def _integers(column: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(column, pa.int64()).to_numpy()


def open_answers_read(path: str | Path) -> SQLiteAnswersRead:
    """A reader of the survey database at ``path`` (a file or a ``postgresql://`` URL; read-only
    use, its own connection)."""
    if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
        from .pg_answers_read import PostgresAnswersRead

        return PostgresAnswersRead(path)
    try:
        return SQLiteAnswersRead(path)
    except sqlite3.Error as error:
        raise StorageError(f"cannot read {path}: {error}") from error


async def database_file(storage: Any) -> Path | str:
    """The file behind an open storage (or its PostgreSQL URL, kept a string), so that a reader can
    open its own connection."""
    path = await storage.database_file()
    if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
        return path
    if path:
        return Path(path)
    raise StorageError("the storage has no database file (an in-memory database cannot be read apart)")
