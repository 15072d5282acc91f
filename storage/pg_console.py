"""The coordinator console's stores on PostgreSQL: ``ConsoleStores.open("postgresql://…")``.

The accounts, audit and jobs stores are the SQLite ones, unchanged: they are written against
``Transactions`` in the SQL both databases share, and get ``PostgresTransactions`` here. The
fieldwork views read the bots' tables with SQLite's date arithmetic and ``rowid``; they follow
with the bots' PostgreSQL backend and until then say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import StorageError
from .pg_connection import PostgresTransactions, open_pool

if TYPE_CHECKING:
    from .console_db import ConsoleStores


_PENDING = "PostgreSQL backend: the console's fieldwork views are not yet complete"


class PendingFieldworkViews:
    """``FieldworkViews`` on PostgreSQL: not yet (see the module's docstring)."""

    async def completes_by_day(self, survey_id: str, utc_offset_minutes: int) -> list[tuple[str, str, int]]:
        raise StorageError(_PENDING)

    async def nonrespondents(self, survey_id: str, *, personal: bool = False) -> list:
        raise StorageError(_PENDING)


async def open_console_stores(stores: type["ConsoleStores"], url: str) -> "ConsoleStores":
    """Every console store on one pool to ``url`` (migrated); ``close()`` closes the pool."""
    from .accounts import SQLiteAccounts
    from .audit import SQLiteAudit
    from .jobs import SQLiteJobs

    pool = await open_pool(url, max_size=4)
    transactions = PostgresTransactions(pool)
    return stores(pool, SQLiteAccounts(transactions), SQLiteAudit(transactions), SQLiteJobs(transactions),
                  PendingFieldworkViews())
