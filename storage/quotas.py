"""Quotas: the per-stratum slots a respondent reserves, completes or releases.

Tables written here: ``quota_slots``.
"""

from __future__ import annotations

import abc
import sqlite3
from typing import Protocol

from .coordination import serialise
from .fieldwork import move_disposition
from .links import require_respondent
from .sqlite_hops import SQLiteRepository, all_rows, one_row


class Quotas(Protocol):
    """The quotas aggregate's storage: the contract every backend keeps."""

    @abc.abstractmethod
    async def quota_member(self, respondent_id: int) -> tuple[str, str] | None:
        """(survey_id, stratum key) of a fielded sample member; None for anyone else."""

    @abc.abstractmethod
    async def reserve_quota_slot(
        self, survey_id: str, stratum: str, respondent_id: int, target: int | None, at: str
    ) -> bool:
        """Take a quota slot for the respondent, in ONE ``BEGIN IMMEDIATE`` transaction.

        Already holding a reserved or completed slot: True, nothing written. Otherwise, if
        ``target`` is None (a soft quota) or the stratum's reserved + completed slots are
        fewer than ``target``, the slot is inserted (or a released one reserved again) and
        True returned; else False and nothing is written. Because the count and the insert
        are one write transaction, concurrent callers in any number of processes can never
        take more than ``target`` slots.
        """

    @abc.abstractmethod
    async def complete_quota_slot(self, respondent_id: int, at: str) -> bool:
        """Mark the respondent's slot completed; False if they have none or it already is."""

    @abc.abstractmethod
    async def release_quota_slot(self, respondent_id: int, at: str) -> bool:
        """Release the respondent's reserved slot (a refusal); False if none was reserved."""

    @abc.abstractmethod
    async def release_stale_quota_slots(self, survey_id: str, older_than: str, at: str) -> list[int]:
        """Release reserved slots whose session has had no activity since ``older_than``.

        In one transaction: slots of people already completed become completed and of
        people who refused (or were replaced) released (repairing a missed hook); then
        every reserved slot of a person in contacted/started/partial whose latest session
        (or, without one, the reservation) is older than ``older_than`` is released and the
        person becomes a break-off (disposition "partial", history keyed by the slot, so
        twice is once). Returns the respondent ids released, by id.
        """

    @abc.abstractmethod
    async def quota_counts(self, survey_id: str) -> dict[str, dict[str, int]]:
        """stratum → {"reserved": n, "completed": n, "released": n} of the survey's slots."""


class SQLiteQuotas(SQLiteRepository):
    """``Quotas`` on SQLite."""

    async def quota_member(self, respondent_id: int) -> tuple[str, str] | None:
        row = await self._fetchone(
            "SELECT survey_id, stratum FROM sample_members WHERE respondent_id = ?", (respondent_id,)
        )
        return (row[0], row[1]) if row is not None else None

    async def reserve_quota_slot(
        self, survey_id: str, stratum: str, respondent_id: int, target: int | None, at: str
    ) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            # The count below and the insert must not interleave with another taker's of the
            # same stratum (PostgreSQL's READ COMMITTED would let both count 9 of 10).
            serialise(conn, f"quota:{survey_id}:{stratum}")
            row = one_row(
                conn, "SELECT state FROM quota_slots WHERE respondent_id = ?", (respondent_id,)
            )
            if row is not None and row[0] in ("reserved", "completed"):
                return True
            if target is not None:
                (taken,) = one_row(
                    conn,
                    "SELECT count(*) FROM quota_slots WHERE survey_id = ? AND stratum = ?"
                    " AND state IN ('reserved', 'completed')",
                    (survey_id, stratum),
                )
                if taken >= target:
                    return False
            conn.execute(
                "INSERT INTO quota_slots (survey_id, stratum, respondent_id, state, reserved_at,"
                " updated_at) VALUES (?, ?, ?, 'reserved', ?, ?) ON CONFLICT (respondent_id) DO UPDATE"
                " SET survey_id = excluded.survey_id, stratum = excluded.stratum, state = 'reserved',"
                " reserved_at = excluded.reserved_at, updated_at = excluded.updated_at",
                (survey_id, stratum, respondent_id, at, at),
            )
            return True

        return await self._write(body)

    async def complete_quota_slot(self, respondent_id: int, at: str) -> bool:
        return await self._move_quota_slot(respondent_id, "completed", "state != 'completed'", at)

    async def release_quota_slot(self, respondent_id: int, at: str) -> bool:
        return await self._move_quota_slot(respondent_id, "released", "state = 'reserved'", at)

    async def _move_quota_slot(self, respondent_id: int, to: str, only_if: str, at: str) -> bool:
        """One slot to its next state; True when it moved (the callers' conditions are constants)."""
        def body(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                f"UPDATE quota_slots SET state = ?, updated_at = ? WHERE respondent_id = ? AND {only_if}",
                (to, at, respondent_id),
            )
            return cursor.rowcount == 1

        return await self._write(body)

    async def release_stale_quota_slots(self, survey_id: str, older_than: str, at: str) -> list[int]:
        def body(conn: sqlite3.Connection) -> list[int]:
            # Heal slots whose step hook did not run (a crash between the step and the hook).
            conn.execute(
                "UPDATE quota_slots SET state = 'completed', updated_at = ?"
                " WHERE survey_id = ? AND state = 'reserved' AND respondent_id IN"
                " (SELECT id FROM respondents WHERE disposition = 'completed')",
                (at, survey_id),
            )
            conn.execute(
                "UPDATE quota_slots SET state = 'released', updated_at = ?"
                " WHERE survey_id = ? AND state = 'reserved' AND respondent_id IN"
                " (SELECT id FROM respondents WHERE disposition IN ('refused', 'replaced'))",
                (at, survey_id),
            )
            rows = all_rows(
                conn,
                "SELECT q.id, q.respondent_id, q.reserved_at FROM quota_slots q"
                " JOIN respondents r ON r.id = q.respondent_id"
                " WHERE q.survey_id = ? AND q.state = 'reserved'"
                " AND r.disposition IN ('contacted', 'started', 'partial')"
                " AND julianday(coalesce((SELECT max(s.updated_at) FROM sessions s"
                "   WHERE s.respondent_id = q.respondent_id AND s.form_id = r.form_id), q.reserved_at))"
                "   < julianday(?)"
                " ORDER BY q.respondent_id",
                (survey_id, older_than),
            )
            released = []
            for slot_id, respondent_id, reserved_at in rows:
                conn.execute(
                    "UPDATE quota_slots SET state = 'released', updated_at = ? WHERE id = ?",
                    (at, slot_id),
                )
                key = f"quota-release:{respondent_id}:{reserved_at}"
                if one_row(conn, "SELECT 1 FROM disposition_history WHERE key = ?", (key,)) is None:
                    move_disposition(conn, require_respondent(conn, respondent_id), "partial", at,
                                     reason=f"quota slot released: no activity since {older_than}", key=key)
                released.append(respondent_id)
            return released

        return await self._write(body)

    async def quota_counts(self, survey_id: str) -> dict[str, dict[str, int]]:
        rows = await self._fetchall(
            "SELECT stratum, state, count(*) FROM quota_slots WHERE survey_id = ? GROUP BY 1, 2",
            (survey_id,),
        )
        counts: dict[str, dict[str, int]] = {}
        for stratum, state, n in rows:
            counts.setdefault(stratum, {"reserved": 0, "completed": 0, "released": 0})[state] = n
        return counts
