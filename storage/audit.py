"""The console's audit log (migration 10): who did what, when, from where.

Append-only: logins (and refused ones), logouts, account changes, every export or download
and every view of personal data; the console's pages add their own actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .console_db import Transactions


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    account_id: int | None
    username: str | None
    address: str | None
    action: str
    survey_id: str | None
    detail: str


#: LIMIT for "all rows" in both dialects (SQLite's LIMIT -1 is an error on PostgreSQL).
_ALL = 2**63 - 1

AUDIT_COLUMNS = ("id", "at", "account_id", "username", "address", "action", "survey_id", "detail")


class AuditLog(Protocol):
    async def record(self, action: str, *, at: str, account_id: int | None = None, username: str | None = None,
                     address: str | None = None, survey_id: str | None = None, detail: str = "") -> int: ...

    async def entries(self, *, limit: int = 200, before_id: int | None = None,
                      action: str | None = None) -> list[AuditEntry]: ...


class SQLiteAudit:
    def __init__(self, tx: Transactions):
        self.tx = tx

    async def record(self, action: str, *, at: str, account_id: int | None = None, username: str | None = None,
                     address: str | None = None, survey_id: str | None = None, detail: str = "") -> int:
        _, entry_id = await self.tx.execute(
            "INSERT INTO console_audit (at, account_id, username, address, action, survey_id, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)", (at, account_id, username, address, action, survey_id, detail))
        return entry_id

    async def entries(self, *, limit: int = 200, before_id: int | None = None,
                      action: str | None = None) -> list[AuditEntry]:
        """Newest first; ``before_id`` pages back; ``limit`` 0 means all."""
        rows = await self.tx.fetchall(
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM console_audit"
            # The comparison first: PostgreSQL types a parameter where it first meets it.
            " WHERE (id < :before OR :before IS NULL) AND (action = :action OR :action IS NULL)"
            " ORDER BY id DESC LIMIT :limit",
            {"before": before_id, "action": action, "limit": limit if limit > 0 else _ALL})
        return [AuditEntry(*row) for row in rows]
