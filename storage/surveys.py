"""Surveys: the versions of a survey project as loaded, and its sampling frame.

Tables written here: ``survey_versions``, ``frame_units``, ``frame_personal``.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import sqlite3
from collections.abc import Sequence
from typing import Protocol

from .errors import FrameConflict, NotFound, StorageError
from .records import FrameImport, FrameRow, StoredSurvey
from .sqlite_hops import SQLiteRepository, all_rows, one_row


_SURVEY_COLUMNS = (
    "id, version, title, index_year, opens, closes, source_name, source, project, sha256, loaded_at"
)


def import_frame_rows(
    conn: sqlite3.Connection, survey_id: str, rows: Sequence[FrameRow], at: str
) -> FrameImport:
    existing = {
        row[0]: tuple(row[1:])
        for row in all_rows(
            conn,
            "SELECT f.frame_id, f.grp, f.unit, f.stratum, f.attributes, p.name, p.phone"
            " FROM frame_units f LEFT JOIN frame_personal p"
            " ON p.survey_id = f.survey_id AND p.frame_id = f.frame_id WHERE f.survey_id = ?",
            (survey_id,),
        )
    }
    wanted = {r.frame_id: (r.group, r.unit, r.stratum, r.attributes, r.name, r.phone) for r in rows}
    if len(wanted) != len(rows):
        raise StorageError("frame ids must be unique")
    added = [fid for fid in wanted if fid not in existing]
    changed = [fid for fid in wanted if fid in existing and existing[fid] != wanted[fid]]
    removed = [fid for fid in existing if fid not in wanted]
    if (added or changed or removed) and one_row(
        conn, "SELECT 1 FROM samples WHERE survey_id = ?", (survey_id,)
    ):
        raise FrameConflict(
            f"survey {survey_id!r} already has a sample drawn from its frame; this file would "
            f"add {len(added)}, change {len(changed)} and remove {len(removed)} row(s)"
        )
    conn.executemany(
        "DELETE FROM frame_units WHERE survey_id = ? AND frame_id = ?",
        [(survey_id, fid) for fid in (*removed, *changed)],
    )
    conn.executemany(
        "INSERT INTO frame_units (survey_id, frame_id, grp, unit, stratum, attributes, imported_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(survey_id, fid, *wanted[fid][:4], at) for fid in (*added, *changed)],
    )
    conn.executemany(
        "INSERT INTO frame_personal (survey_id, frame_id, name, phone) VALUES (?, ?, ?, ?)",
        [(survey_id, fid, *wanted[fid][4:]) for fid in (*added, *changed)
         if wanted[fid][4] is not None or wanted[fid][5] is not None],
    )
    return FrameImport(len(added), len(changed), len(removed),
                       len(wanted) - len(added) - len(changed))


class Surveys(Protocol):
    """The surveys aggregate's storage: the contract every backend keeps."""

    @abc.abstractmethod
    async def save_survey(
        self,
        survey_id: str,
        *,
        title: str,
        index_year: int,
        opens: str,
        closes: str,
        source_name: str,
        source: str,
        project: str,
        at: str,
    ) -> tuple[StoredSurvey, bool]:
        """Store a survey project; returns (current version, whether a new version was written).

        Same id and same ``project`` (by sha256) as the current version: nothing is written.
        Different content: a new version (current + 1) is appended and becomes current;
        older versions stay readable (``survey_versions``). Whether the new content is
        compatible with frames already imported is the caller's check
        (``frame_references``).
        """

    @abc.abstractmethod
    async def get_survey(self, survey_id: str, version: int | None = None) -> StoredSurvey:
        """The current (or the given) version of a survey, or raise ``NotFound``."""

    @abc.abstractmethod
    async def list_surveys(self) -> list[StoredSurvey]:
        """The current version of every survey, ordered by id."""

    @abc.abstractmethod
    async def survey_versions(self, survey_id: str) -> list[StoredSurvey]:
        """Every stored version of a survey, oldest first (empty if unknown)."""

    @abc.abstractmethod
    async def import_frame(self, survey_id: str, rows: Sequence[FrameRow], at: str) -> FrameImport:
        """Make ``rows`` the survey's frame, in one transaction.

        Rows are matched on frame_id: new ones are added, changed ones updated, ones absent
        from ``rows`` removed, identical ones left alone (so importing the same file again
        writes nothing). Personal fields go to their own table. Once the survey has a
        sample, only an identical frame is accepted; any change raises ``FrameConflict``
        and writes nothing.
        """

    @abc.abstractmethod
    async def frame_rows(self, survey_id: str, *, personal: bool = False) -> list[FrameRow]:
        """The survey's frame ordered by frame_id (name and phone only if ``personal``)."""

    @abc.abstractmethod
    async def frame_references(self, survey_id: str) -> tuple[set[str], set[str]]:
        """The distinct groups and units the survey's frame and sample refer to."""

    @abc.abstractmethod
    async def frame_sizes(self, survey_id: str) -> dict[tuple[str, str], int]:
        """How many people the survey's frame has per (group, stratum): N_h, counted in the database."""


class SQLiteSurveys(SQLiteRepository):
    """``Surveys`` on SQLite."""

    async def save_survey(
        self,
        survey_id: str,
        *,
        title: str,
        index_year: int,
        opens: str,
        closes: str,
        source_name: str,
        source: str,
        project: str,
        at: str,
    ) -> tuple[StoredSurvey, bool]:
        sha256 = hashlib.sha256(project.encode("utf-8")).hexdigest()

        def body(conn: sqlite3.Connection) -> tuple[StoredSurvey, bool]:
            row = one_row(
                conn,
                f"SELECT {_SURVEY_COLUMNS} FROM survey_versions WHERE id = ?"
                " ORDER BY version DESC LIMIT 1",
                (survey_id,),
            )
            if row is not None and row["sha256"] == sha256:
                return StoredSurvey(**dict(row)), False
            version = row["version"] + 1 if row is not None else 1
            record = StoredSurvey(survey_id, version, title, index_year, opens, closes,
                                  source_name, source, project, sha256, at)
            conn.execute(
                f"INSERT INTO survey_versions ({_SURVEY_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                dataclasses.astuple(record),
            )
            return record, True

        return await self._write(body)

    async def get_survey(self, survey_id: str, version: int | None = None) -> StoredSurvey:
        row = await self._fetchone(
            f"SELECT {_SURVEY_COLUMNS} FROM survey_versions WHERE id = ? AND (? IS NULL OR version = ?)"
            " ORDER BY version DESC LIMIT 1",
            (survey_id, version, version),
        )
        if row is None:
            raise NotFound(f"survey {survey_id!r}" + (f" version {version}" if version else ""))
        return StoredSurvey(**dict(row))

    async def list_surveys(self) -> list[StoredSurvey]:
        rows = await self._fetchall(
            f"SELECT {_SURVEY_COLUMNS} FROM survey_versions v WHERE version ="
            " (SELECT max(version) FROM survey_versions w WHERE w.id = v.id) ORDER BY id"
        )
        return [StoredSurvey(**dict(row)) for row in rows]

    async def survey_versions(self, survey_id: str) -> list[StoredSurvey]:
        rows = await self._fetchall(
            f"SELECT {_SURVEY_COLUMNS} FROM survey_versions WHERE id = ? ORDER BY version",
            (survey_id,),
        )
        return [StoredSurvey(**dict(row)) for row in rows]

    async def import_frame(self, survey_id: str, rows: Sequence[FrameRow], at: str) -> FrameImport:
        return await self._write(import_frame_rows, survey_id, rows, at)

    async def frame_rows(self, survey_id: str, *, personal: bool = False) -> list[FrameRow]:
        if personal:
            sql = ("SELECT f.frame_id, f.grp AS \"group\", f.unit, f.stratum, f.attributes, p.name, p.phone"
                   " FROM frame_units f LEFT JOIN frame_personal p"
                   " ON p.survey_id = f.survey_id AND p.frame_id = f.frame_id"
                   " WHERE f.survey_id = ? ORDER BY f.frame_id")
        else:
            sql = ("SELECT frame_id, grp AS \"group\", unit, stratum, attributes FROM frame_units"
                   " WHERE survey_id = ? ORDER BY frame_id")
        return [FrameRow(**dict(row)) for row in await self._fetchall(sql, (survey_id,))]

    async def frame_references(self, survey_id: str) -> tuple[set[str], set[str]]:
        def body(conn: sqlite3.Connection) -> tuple[set[str], set[str]]:
            groups = all_rows(
                conn,
                "SELECT grp FROM frame_units WHERE survey_id = ?"
                " UNION SELECT grp FROM sample_members WHERE survey_id = ?",
                (survey_id, survey_id),
            )
            units = all_rows(
                conn, "SELECT DISTINCT unit FROM frame_units WHERE survey_id = ?", (survey_id,)
            )
            return {row[0] for row in groups}, {row[0] for row in units}

        return await self._read(body)

    async def frame_sizes(self, survey_id: str) -> dict[tuple[str, str], int]:
        rows = await self._fetchall(
            "SELECT grp, stratum, count(*) FROM frame_units WHERE survey_id = ? GROUP BY grp, stratum", (survey_id,))
        return {(row[0], row[1]): row[2] for row in rows}
