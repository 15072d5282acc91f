"""The exports' set-based reads (storage/answers_read.py) on PostgreSQL: the same statements and
the same reader, on a connection of its own (``pg_hops.PostgresConnection``); only how a chunk's
column is joined into one text and how the answers are cut into chunks differ."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .answers_read import CHUNK_ROWS, SQLiteAnswersRead
from .pg_hops import PostgresConnection


class PostgresAnswersRead(SQLiteAnswersRead):
    """`AnswersRead` on a PostgreSQL database; open it in the thread (or process) that uses it."""

    _JOINED = "string_agg(CAST({expression} AS text), '{separator}')"

    def __init__(self, url: str) -> None:  # noqa: D107 - no PRAGMAs, no file to check
        self._conn = PostgresConnection(url)  # type: ignore[assignment]

    def _storage_ranges(self) -> tuple[str, list[tuple[int, int]]]:
        """No rowid here: ranges of session ids holding about `CHUNK_ROWS` answers each."""
        first, last, count = self._conn.execute(
            "SELECT min(session_id), max(session_id), count(*) FROM answers").fetchone()
        if first is None:
            return "", []
        step = max(1, CHUNK_ROWS * (last - first + 1) // count)
        return "a.session_id >= ?1 AND a.session_id < ?2", [(start, start + step) for start in
                                                            range(first, last + 1, step)]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees one committed state: a REPEATABLE READ transaction (the storage
        thread's read hops run without one; an export's reads must agree with each other)."""
        self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")
