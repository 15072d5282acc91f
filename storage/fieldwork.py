"""Fieldwork: samples and their members, the dispositions of respondents (their one write,
``move_disposition``) and the counts coordinators watch.

Tables written here: ``samples``, ``sample_strata``, ``sample_members``, ``disposition_history``,
``respondents.disposition``; the respondents of a fielded sample (through
``links.insert_respondent``) and their ``respondent_personal`` rows.
"""

from __future__ import annotations

import abc
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

from .errors import NotReplaceable, ReserveExhausted, SampleConflict, StorageError
from .records import FrameRow, Respondent, SampleInfo, SampleMember, SampleMemberInput, SampleStratum
from .links import insert_respondent, require_respondent, respondent_by_external_id
from .reminders_store import REMINDED, withdraw_reminders
from .surveys import import_frame_rows
from .sqlite_hops import SQLiteRepository, all_rows, one_row


_MEMBER_COLUMNS = (
    "survey_id, frame_id, grp, form_id, stratum, pi, weight, role, reserve_rank, respondent_id,"
    " promoted_at, replaces, replaced_by, replaced_disposition"
)


def move_disposition(
    conn: sqlite3.Connection, respondent: Respondent, status: str, at: str, *, reason: str | None, key: str | None
) -> None:
    """The one write of a disposition change: the respondent's disposition (left alone if it is
    ``status`` already), its history row and, leaving the dispositions reminders go to, the
    withdrawal of the reminders not sent yet."""
    conn.execute(
        "UPDATE respondents SET disposition = ?, disposition_at = ? WHERE id = ? AND disposition IS DISTINCT FROM ?",
        (status, at, respondent.id, status),
    )
    conn.execute(
        "INSERT INTO disposition_history (respondent_id, status, reason, at, key) VALUES (?, ?, ?, ?, ?)",
        (respondent.id, status, reason, at, key),
    )
    if respondent.disposition in REMINDED and status not in REMINDED:
        withdraw_reminders(conn, respondent.id, status, at)


class Fieldwork(Protocol):
    """The fieldwork aggregate's storage: the contract every backend keeps."""

    @abc.abstractmethod
    async def set_disposition(
        self,
        respondent_id: int,
        status: str,
        at: str,
        *,
        reason: str | None = None,
        key: str | None = None,
    ) -> bool:
        """Move the respondent to disposition ``status`` (one of ``DISPOSITIONS``).

        In one transaction: the respondent's current disposition and
        disposition_at are replaced and a history row (status, reason, at,
        key) is appended. Returns False and writes nothing if ``key`` (unique
        across all respondents) was recorded before, or if the respondent is
        already in ``status``. Transitions are not policed here: the caller
        decides which moves make sense. Moving from a status reminders go to
        (contacted, started) to any other withdraws, in the same
        transaction, the person's reminders not sent yet: those still queued
        (never handed over) and those whose message is pending in the outbox
        (the message ends ``failed`` with the error "withdrawn: <status>",
        unsent); their ``reminders`` rows get ``withdrawn_at`` and
        ``withdrawn_because`` (the status). So do ``replace_member`` and
        ``release_stale_quota_slots``, which move people too. An unknown
        status raises ``StorageError``, an unknown respondent ``NotFound``.
        """

    @abc.abstractmethod
    async def disposition_history(self, respondent_id: int) -> list[dict[str, Any]]:
        """The respondent's disposition changes in order: dicts of status, reason, at, key."""

    @abc.abstractmethod
    async def record_sample(
        self,
        survey_id: str,
        members: Sequence[SampleMemberInput],
        strata: Sequence[SampleStratum],
        *,
        source: str,
        seed: int | None,
        frame_sha256: str | None,
        params: str,
        at: str,
        personal: dict[str, tuple[str | None, str | None]] | None = None,
        frame: Sequence[FrameRow] | None = None,
    ) -> bool:
        """Record a drawn or imported sample in one transaction; False if it was recorded before.

        Main members become respondents (external id ``"<survey>:<frame_id>"``, disposition
        "sampled", the group's questionnaire, the stratum key, personal data from
        ``personal`` (frame_id → (name, phone)) or else from the stored frame). Reserves are
        stored with their rank but are not respondents until promoted, so nobody invites
        them. An identical sample (same source, seed and frame_sha256) already recorded is a
        no-op; a different one raises ``SampleConflict``. ``frame``, if given, is imported
        first in the same transaction (an imported sample is its own frame).
        """

    @abc.abstractmethod
    async def sample_info(self, survey_id: str) -> SampleInfo | None:
        """How the survey's sample was made, or None if it has none."""

    @abc.abstractmethod
    async def sample_strata(self, survey_id: str) -> list[SampleStratum]:
        """N_h, n_h and reserve length per stratum, ordered by stratum."""

    @abc.abstractmethod
    async def sample_members(
        self, survey_id: str, role: str | None = None
    ) -> list[SampleMember]:
        """The survey's members (optionally one role), by stratum then role then rank/frame_id."""

    @abc.abstractmethod
    async def replace_member(
        self,
        survey_id: str,
        respondent_id: int,
        at: str,
        *,
        reason: str | None = None,
        replaceable: Sequence[str] = ("refused", "unreachable", "ineligible"),
    ) -> SampleMember:
        """Field the next reserve of the respondent's stratum in their place; returns it.

        In one transaction: the first unused reserve by rank becomes a respondent (as in
        ``record_sample``) with ``replaces`` set; the replaced respondent moves to
        disposition "replaced" (history row, reason) and their previous disposition is
        kept as ``replaced_disposition`` for response rates. Both keep the stratum's design
        probability. Raises ``NotReplaceable`` if the respondent is not a fielded member of
        the survey in one of ``replaceable`` (or was replaced already) and
        ``ReserveExhausted`` if the reserve list is used up; nothing is written then.
        """

    @abc.abstractmethod
    async def replaceable_members(
        self, survey_id: str, dispositions: Sequence[str] = ("refused", "unreachable", "ineligible")
    ) -> list[int]:
        """Respondent ids of fielded members in ``dispositions``, by id."""

    @abc.abstractmethod
    async def status_counts(self, survey_id: str) -> list[dict[str, Any]]:
        """Fielded members counted per group, stratum, disposition and stage reached.

        Dicts of group, stratum, disposition (for a replaced member: the disposition it had
        when replaced, as ``replaced_disposition``; ``disposition`` stays "replaced"),
        stage (the furthest step ever reached in the disposition history: 0 sampled,
        1 invited, 2 contacted, 3 started, 4 completed; refusal and quota-full imply
        contact, unreachable an invitation) and n. One GROUP BY over the survey's members
        (the SQLite implementation keeps disposition and stage on them with triggers): the
        work does not grow with the number of answers or history rows.
        """

    @abc.abstractmethod
    async def completes_since(self, survey_id: str, since: str) -> dict[tuple[str, str], int]:
        """(group, stratum) → members whose disposition became "completed" at or after ``since``."""

    @abc.abstractmethod
    async def disposition_counts(self) -> list[tuple[str | None, str | None, str, int]]:
        """(form_id, stratum, disposition, n) over all respondents, aggregated in SQL."""

    @abc.abstractmethod
    async def unreached_members(self, survey_id: str | None = None) -> list[dict[str, Any]]:
        """Fielded members invited but never linked to any chat, with name and phone (personal data).

        Dicts of survey_id, respondent_id, pseudonym, grp, stratum, disposition, invited_at
        (first invitation), name, phone; ordered by survey, stratum, id.
        """


class SQLiteFieldwork(SQLiteRepository):
    """``Fieldwork`` on SQLite."""

    async def set_disposition(
        self,
        respondent_id: int,
        status: str,
        at: str,
        *,
        reason: str | None = None,
        key: str | None = None,
    ) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            respondent = require_respondent(conn, respondent_id)
            if key is not None and one_row(
                conn, "SELECT 1 FROM disposition_history WHERE key = ?", (key,)
            ):
                return False
            if respondent.disposition == status:
                return False
            move_disposition(conn, respondent, status, at, reason=reason, key=key)
            return True

        return await self._write(body)

    async def disposition_history(self, respondent_id: int) -> list[dict[str, Any]]:
        rows = await self._fetchall(
            "SELECT status, reason, at, key FROM disposition_history WHERE respondent_id = ?"
            " ORDER BY id",
            (respondent_id,),
        )
        return [dict(row) for row in rows]

    async def record_sample(
        self,
        survey_id: str,
        members: Sequence[SampleMemberInput],
        strata: Sequence[SampleStratum],
        *,
        source: str,
        seed: int | None,
        frame_sha256: str | None,
        params: str,
        at: str,
        personal: dict[str, tuple[str | None, str | None]] | None = None,
        frame: Sequence[FrameRow] | None = None,
    ) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            old = one_row(
                conn,
                "SELECT source, seed, frame_sha256, created_at FROM samples WHERE survey_id = ?",
                (survey_id,),
            )
            if old is not None:
                if (old["source"], old["seed"], old["frame_sha256"]) == (source, seed, frame_sha256):
                    return False
                raise SampleConflict(
                    f"survey {survey_id!r} already has a sample ({old['source']} at {old['created_at']}"
                    + (f", seed {old['seed']}" if old["seed"] is not None else "") + ")"
                )
            if frame is not None:
                import_frame_rows(conn, survey_id, frame, at)
            conn.execute(
                "INSERT INTO samples (survey_id, source, seed, frame_sha256, params, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (survey_id, source, seed, frame_sha256, params, at),
            )
            conn.executemany(
                "INSERT INTO sample_strata (survey_id, grp, stratum, population, n, reserve)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(survey_id, s.group, s.stratum, s.population, s.n, s.reserve) for s in strata],
            )
            known = personal
            if known is None:
                known = {
                    row[0]: (row[1], row[2])
                    for row in all_rows(
                        conn,
                        "SELECT frame_id, name, phone FROM frame_personal WHERE survey_id = ?",
                        (survey_id,),
                    )
                }
            for m in members:
                if m.role not in ("main", "reserve"):
                    raise StorageError(f"unknown sample role {m.role!r}")
                respondent_id = None
                if m.role == "main":
                    name, phone = known.get(m.frame_id, (None, None))
                    respondent_id = self._field(conn, survey_id, m.frame_id, m.form_id, m.stratum,
                                                name, phone, at)
                conn.execute(
                    "INSERT INTO sample_members (survey_id, frame_id, grp, form_id, stratum, pi, weight,"
                    " role, reserve_rank, respondent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (survey_id, m.frame_id, m.group, m.form_id, m.stratum, m.pi, 1.0 / m.pi, m.role,
                     m.reserve_rank, respondent_id),
                )
            return True

        return await self._write(body)

    @classmethod
    def _field(
        cls, conn: sqlite3.Connection, survey_id: str, frame_id: str, form_id: str, stratum: str,
        name: str | None, phone: str | None, at: str,
    ) -> int:
        """Make a sample member a respondent (disposition "sampled") with its personal row."""
        external_id = f"{survey_id}:{frame_id}"
        if respondent_by_external_id(conn, external_id) is not None:
            raise SampleConflict(f"respondent {external_id!r} exists already")
        respondent = insert_respondent(conn, external_id, form_id, stratum, at)
        if name is not None or phone is not None:
            conn.execute(
                "INSERT INTO respondent_personal (respondent_id, name, phone) VALUES (?, ?, ?)",
                (respondent.id, name, phone),
            )
        return respondent.id

    async def sample_info(self, survey_id: str) -> SampleInfo | None:
        row = await self._fetchone(
            "SELECT survey_id, source, seed, frame_sha256, params, created_at FROM samples"
            " WHERE survey_id = ?",
            (survey_id,),
        )
        return SampleInfo(**dict(row)) if row is not None else None

    async def sample_strata(self, survey_id: str) -> list[SampleStratum]:
        rows = await self._fetchall(
            "SELECT grp, stratum, population, n, reserve FROM sample_strata WHERE survey_id = ?"
            " ORDER BY stratum",
            (survey_id,),
        )
        return [SampleStratum(*row) for row in rows]

    async def sample_members(
        self, survey_id: str, role: str | None = None
    ) -> list[SampleMember]:
        rows = await self._fetchall(
            f"SELECT {_MEMBER_COLUMNS} FROM sample_members WHERE survey_id = ?"
            " AND (? IS NULL OR role = ?) ORDER BY stratum, role, reserve_rank, frame_id",
            (survey_id, role, role),
        )
        return [SampleMember(*row) for row in rows]

    async def replace_member(
        self,
        survey_id: str,
        respondent_id: int,
        at: str,
        *,
        reason: str | None = None,
        replaceable: Sequence[str] = ("refused", "unreachable", "ineligible"),
    ) -> SampleMember:
        def body(conn: sqlite3.Connection) -> SampleMember:
            row = one_row(
                conn,
                f"SELECT {_MEMBER_COLUMNS} FROM sample_members WHERE survey_id = ? AND respondent_id = ?",
                (survey_id, respondent_id),
            )
            if row is None:
                raise NotReplaceable(f"respondent {respondent_id} is not in the sample of {survey_id!r}")
            member = SampleMember(*row)
            if member.replaced_by is not None:
                raise NotReplaceable(
                    f"respondent {respondent_id} was replaced already (by {member.replaced_by})")
            respondent = require_respondent(conn, respondent_id)
            if respondent.disposition not in replaceable:
                raise NotReplaceable(
                    f"respondent {respondent_id} is {respondent.disposition}; only "
                    f"{', '.join(replaceable)} can be replaced")
            row = one_row(
                conn,
                f"SELECT {_MEMBER_COLUMNS} FROM sample_members WHERE survey_id = ? AND stratum = ?"
                " AND role = 'reserve' AND respondent_id IS NULL ORDER BY reserve_rank LIMIT 1",
                (survey_id, member.stratum),
            )
            if row is None:
                raise ReserveExhausted(f"stratum {member.stratum!r} has no reserve left")
            reserve = SampleMember(*row)
            personal = one_row(
                conn,
                "SELECT name, phone FROM frame_personal WHERE survey_id = ? AND frame_id = ?",
                (survey_id, reserve.frame_id),
            )
            name, phone = tuple(personal) if personal is not None else (None, None)
            new_id = self._field(conn, survey_id, reserve.frame_id, reserve.form_id,
                                 reserve.stratum, name, phone, at)
            conn.execute(
                "UPDATE sample_members SET respondent_id = ?, promoted_at = ?, replaces = ?"
                " WHERE survey_id = ? AND frame_id = ?",
                (new_id, at, respondent_id, survey_id, reserve.frame_id),
            )
            conn.execute(
                "UPDATE sample_members SET replaced_by = ?, replaced_disposition = ?"
                " WHERE survey_id = ? AND frame_id = ?",
                (new_id, respondent.disposition, survey_id, member.frame_id),
            )
            move_disposition(conn, respondent, "replaced", at,
                             reason=reason or f"replaced by reserve {reserve.reserve_rank} ({new_id})",
                             key=f"replace:{survey_id}:{respondent_id}")
            row = one_row(
                conn,
                f"SELECT {_MEMBER_COLUMNS} FROM sample_members WHERE survey_id = ? AND frame_id = ?",
                (survey_id, reserve.frame_id),
            )
            return SampleMember(*row)

        return await self._write(body)

    async def replaceable_members(
        self, survey_id: str, dispositions: Sequence[str] = ("refused", "unreachable", "ineligible")
    ) -> list[int]:
        marks = ", ".join("?" for _ in dispositions)
        rows = await self._fetchall(
            "SELECT r.id FROM sample_members sm JOIN respondents r ON r.id = sm.respondent_id"
            f" WHERE sm.survey_id = ? AND sm.replaced_by IS NULL AND r.disposition IN ({marks})"
            " ORDER BY r.id",
            (survey_id, *dispositions),
        )
        return [row[0] for row in rows]

    async def status_counts(self, survey_id: str) -> list[dict[str, Any]]:
        # disposition and stage are kept on sample_members by triggers (migration 3).
        rows = await self._fetchall(
            "SELECT grp AS \"group\", stratum, disposition, replaced_disposition, stage, count(*) AS n"
            " FROM sample_members WHERE survey_id = ? AND respondent_id IS NOT NULL"
            " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2",
            (survey_id,),
        )
        return [dict(row) for row in rows]

    async def completes_since(self, survey_id: str, since: str) -> dict[tuple[str, str], int]:
        rows = await self._fetchall(
            "SELECT sm.grp, sm.stratum, count(DISTINCT h.respondent_id)"
            " FROM disposition_history h JOIN sample_members sm ON sm.respondent_id = h.respondent_id"
            " WHERE h.status = 'completed' AND h.at >= ? AND sm.survey_id = ?"
            " GROUP BY 1, 2",
            (since, survey_id),
        )
        return {(row[0], row[1]): row[2] for row in rows}

    async def disposition_counts(self) -> list[tuple[str | None, str | None, str, int]]:
        rows = await self._fetchall(
            "SELECT form_id, stratum, disposition, count(*) FROM respondents GROUP BY 1, 2, 3"
        )
        return [tuple(row) for row in rows]

    async def unreached_members(self, survey_id: str | None = None) -> list[dict[str, Any]]:
        rows = await self._fetchall(
            "SELECT sm.survey_id, r.id AS respondent_id, r.pseudonym, sm.grp, sm.stratum, r.disposition,"
            " (SELECT min(i.created_at) FROM invitations i WHERE i.respondent_id = r.id) AS invited_at,"
            " p.name, p.phone"
            " FROM sample_members sm JOIN respondents r ON r.id = sm.respondent_id"
            " LEFT JOIN respondent_personal p ON p.respondent_id = r.id"
            " WHERE (? IS NULL OR sm.survey_id = ?) AND sm.replaced_by IS NULL"
            " AND r.disposition IN ('sampled', 'invited')"
            " AND EXISTS (SELECT 1 FROM invitations i WHERE i.respondent_id = r.id)"
            " AND NOT EXISTS (SELECT 1 FROM chat_links l WHERE l.respondent_id = r.id)"
            " ORDER BY sm.survey_id, sm.stratum, r.id",
            (survey_id, survey_id),
        )
        return [dict(row) for row in rows]
