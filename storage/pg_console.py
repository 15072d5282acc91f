"""The coordinator console's stores on PostgreSQL: ``ConsoleStores.open("postgresql://…")``.

The accounts, audit, jobs stores and the fieldwork views are the SQLite ones, unchanged: they are
written against ``Transactions`` in the SQL both databases share (translated by
storage/pg_dialect.py, as the bots' repositories are), and get ``PostgresTransactions`` here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .pg_connection import PostgresTransactions, open_pool

if TYPE_CHECKING:
    from .console_db import ConsoleStores


async def open_console_stores(stores: type["ConsoleStores"], url: str) -> "ConsoleStores":
    """Every console store on one pool to ``url`` (migrated); ``close()`` closes the pool."""
    from .accounts import SQLiteAccounts
    from .audit import SQLiteAudit
    from .fieldwork_views import SQLiteFieldworkViews
    from .jobs import SQLiteJobs

    pool = await open_pool(url, max_size=4)
    transactions = PostgresTransactions(pool)
    return stores(pool, SQLiteAccounts(transactions), SQLiteAudit(transactions), SQLiteJobs(transactions),
                  SQLiteFieldworkViews(transactions))
