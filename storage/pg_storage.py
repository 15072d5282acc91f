"""``Storage`` on a PostgreSQL database: the same repositories as on SQLite, on the same storage
thread and hops, over ``pg_hops.PostgresConnection`` (why, in that module's docstring)."""

from __future__ import annotations

from .errors import StorageError
from .pg_hops import open_connection
from .sqlite import SYNCHRONOUS, SQLiteStorage


class PostgresStorage(SQLiteStorage):
    """``Storage`` on PostgreSQL. Create with ``await PostgresStorage.open("postgresql://…")``."""

    @classmethod
    async def open(cls, url: str, synchronous: str = "full") -> PostgresStorage:  # type: ignore[override]
        """Connect and migrate. ``synchronous`` is SQLite's setting and means nothing here: the
        server's ``synchronous_commit`` decides when a COMMIT returns; a value SQLite would refuse
        is refused here too, so a configuration means the same on both."""
        if str(synchronous).lower() not in SYNCHRONOUS:
            raise StorageError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}")
        return cls(await open_connection(url))

    async def database_file(self) -> str | None:
        """No file: a reader opens its own connection with the URL instead."""
        return None
