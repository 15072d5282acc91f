"""Several ``khaosat run`` processes on one database: who is alive, and named leases.

Tables written here: ``processes``, ``leases``.

* **Heartbeats.** Each process registers itself (``heartbeat``) with the bots it sends for and
  renews that every few seconds; a row whose ``lease_until`` has passed is a process that died
  (or hangs). The outbox uses it twice: an outbox row claimed by a process that is not alive any
  more is recovered as *unknown* (``Outbox.recover_abandoned``: never resent), and each live
  process sends at its share of a bot's rate (``bot/coordination.py``).
* **Leases.** A named lease (``take_lease``) is held by one process until a time: the reminder
  pass (one process a turn), one chat's turn while its update is handled. A killed holder's lease
  is free as soon as its heartbeat lapses (or at its end); no one has to clean up. Taking is one ``INSERT … ON CONFLICT DO UPDATE …
  WHERE`` statement, atomic on both databases (PostgreSQL locks the conflicting row, re-checks
  the WHERE on its latest version, and so lets one of two racing takers through).

Times are ISO-8601 text in UTC, compared as strings (``storage/base.py``).
"""

from __future__ import annotations

import abc
import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from .sqlite_hops import SQLiteRepository, all_rows


@dataclass(frozen=True)
class LiveProcess:
    """A ``khaosat run`` process whose heartbeat lease has not passed."""

    id: str
    name: str
    bots: tuple[str, ...]  # "channel/bot" of each bot it sends for
    started_at: str
    heartbeat_at: str


def serialise(conn: Any, name: str) -> None:
    """Make concurrent write transactions that name ``name`` run one after the other.

    The dialect hook of the multi-process rules (``reserve_quota_slot``'s count-then-insert, the
    outbox's one-row-in-flight-per-chat claim). SQLite: nothing to do, every write is one
    ``BEGIN IMMEDIATE`` holding the database's single write lock. PostgreSQL (READ COMMITTED, where
    two transactions may both count before either inserts): a transaction-level advisory lock on
    the name, released at COMMIT or ROLLBACK, so a killed process cannot keep it.
    """
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        from .pg_locks import lock_key

        conn.execute("SELECT pg_advisory_xact_lock(?)", (lock_key(name),))


class Coordination(Protocol):
    """Process heartbeats and named leases: the contract every backend keeps."""

    @abc.abstractmethod
    async def heartbeat(self, process_id: str, name: str, bots: Sequence[str], at: str, until: str) -> None:
        """Register the process or renew it: alive until ``until``, sending for ``bots``."""

    @abc.abstractmethod
    async def leave(self, process_id: str) -> None:
        """The process stops: forget it at once (its peers take up its share at their next beat)."""

    @abc.abstractmethod
    async def live_processes(self, at: str) -> list[LiveProcess]:
        """Processes whose lease has not passed at ``at``, oldest first (then by id)."""

    @abc.abstractmethod
    async def take_lease(self, name: str, holder: str, at: str, until: str) -> bool:
        """Hold ``name`` until ``until``: True if it was free (never taken, lapsed by ``at``, or
        held by a process that is not alive: killed, its heartbeat lapsed) or already ``holder``'s
        (then renewed); False, writing nothing, if another live process holds it. Holders are
        process ids (``heartbeat``)."""

    @abc.abstractmethod
    async def release_lease(self, name: str, holder: str) -> bool:
        """Give ``name`` up if ``holder`` holds it (the row is deleted); False if it did not."""


class SQLiteCoordination(SQLiteRepository):
    """``Coordination`` on SQLite."""

    async def heartbeat(self, process_id: str, name: str, bots: Sequence[str], at: str, until: str) -> None:
        def body(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO processes (id, name, bots, started_at, heartbeat_at, lease_until)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET bots = excluded.bots,"
                " heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until",
                (process_id, name, "\n".join(bots), at, at, until))

        await self._write(body)

    async def leave(self, process_id: str) -> None:
        await self._write(lambda conn: conn.execute("DELETE FROM processes WHERE id = ?", (process_id,)))

    async def live_processes(self, at: str) -> list[LiveProcess]:
        rows = await self._read(all_rows, "SELECT id, name, bots, started_at, heartbeat_at FROM processes"
                                " WHERE lease_until > ? ORDER BY started_at, id", (at,))
        return [LiveProcess(row[0], row[1], tuple(b for b in row[2].split("\n") if b), row[3], row[4])
                for row in rows]

    async def take_lease(self, name: str, holder: str, at: str, until: str) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
                " SET holder = excluded.holder, until = excluded.until"
                " WHERE leases.until <= ? OR leases.holder = excluded.holder OR NOT EXISTS"
                " (SELECT 1 FROM processes p WHERE p.id = leases.holder AND p.lease_until > ?)",
                (name, holder, until, at, at)).rowcount == 1

        return await self._write(body)

    async def release_lease(self, name: str, holder: str) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)).rowcount == 1

        return await self._write(body)
