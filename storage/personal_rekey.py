"""``khaosat rekey``: every stored name and phone re-encrypted with the current data key.

Run after adding a new key in front of ``KHAOSAT_DATA_KEY`` (rotation), after setting a key on a
database written without one (plaintext values become encrypted), or to refresh the phones'
lookup hashes. Tables written here: ``respondent_personal`` (name, phone, ``phone_hmac``) and
``frame_personal`` (name, phone).

One body for SQLite and PostgreSQL (a repository on the shared hops, like every aggregate).
The rows are walked in primary-key order, ``batch`` rows per write transaction: a frame of a
million rows is never held in memory, and the bots' writes wait for one batch at most (they keep
running; rows they write meanwhile are sealed with the current key already, the first one of the
variable). An interrupted run keeps the batches it committed; a run re-encrypts only rows not
under the current key yet, so the next run finishes the rest and a second complete run changes
nothing. Media files are re-sealed by their own aggregate (``media.reseal_media``), which
``khaosat rekey`` calls after this.
"""

from __future__ import annotations

import abc
import sqlite3
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Protocol

from .personal_crypto import ENV, PersonalKeyError, PersonalCodec, codec
from .sqlite_hops import SQLiteRepository


@dataclass(frozen=True)
class Rekeyed:
    """How many rows were re-encrypted (rows already under the current key are left as they are)."""

    respondents: int
    frame_rows: int


class PersonalRekey(Protocol):
    """Re-encryption of the stored names and phones."""

    @abc.abstractmethod
    async def rekey_personal(self, batch: int = 500) -> Rekeyed:
        """Seal every name and phone not under the current key with it (and hash phones with it);
        raises ``PersonalKeyError`` when no key is set. Idempotent."""


class SQLitePersonalRekey(SQLiteRepository):
    """``PersonalRekey`` on SQLite (and PostgreSQL, through the same statements)."""

    async def rekey_personal(self, batch: int = 500) -> Rekeyed:
        personal = codec()
        if not personal.encrypting:
            raise PersonalKeyError(f"{ENV} is not set: there is no key to encrypt with")
        return Rekeyed(await self._walk(_respondents, personal, batch), await self._walk(_frame_rows, personal, batch))

    async def _walk(self, step: Callable[..., tuple[int, Any]], personal: PersonalCodec, batch: int) -> int:
        """``step`` once per batch, each in its own write transaction, from the last key seen on."""
        changed, after = 0, None
        while True:
            done, after = await self._write(step, personal, after, batch)
            changed += done
            if after is None:
                return changed


#: The batch's rows locked until its commit on PostgreSQL: a bot changing a name meanwhile (under
#: READ COMMITTED) waits, and is not overwritten by the value read before it. SQLite's write
#: transaction (``BEGIN IMMEDIATE``) keeps every other writer out already.
_LOCKED = "/*postgresql: FOR UPDATE*/"


def _respondents(conn: sqlite3.Connection, personal: PersonalCodec, after: Any, limit: int) -> tuple[int, Any]:
    """One batch of ``respondent_personal`` after ``respondent_id`` ``after``: (rows changed, last id or None)."""
    where, params = ("", (limit,)) if after is None else (" WHERE respondent_id > ?", (after, limit))
    rows = conn.execute("SELECT respondent_id, name, phone, phone_hmac FROM respondent_personal"
                        f"{where} ORDER BY respondent_id LIMIT ? {_LOCKED}", params).fetchall()
    changed = []
    for respondent_id, name, phone, phone_hmac in rows:
        if personal.is_current(name) and personal.is_current(phone) and (phone is None or phone_hmac):
            continue  # done by an earlier run (or written with the current key)
        name, phone = personal.open(name), personal.open(phone)  # any configured key, or plaintext
        changed.append((personal.seal(name), personal.seal(phone), personal.phone_hash(phone), respondent_id))
    if changed:
        conn.executemany("UPDATE respondent_personal SET name = ?, phone = ?, phone_hmac = ? WHERE respondent_id = ?",
                         changed)
    return len(changed), (rows[-1][0] if len(rows) == limit else None)


def _frame_rows(conn: sqlite3.Connection, personal: PersonalCodec, after: Any, limit: int) -> tuple[int, Any]:
    """One batch of ``frame_personal`` after the key ``after`` (survey, frame id): (rows changed, last key or None)."""
    where, params = ("", (limit,)) if after is None else (
        " WHERE survey_id > ? OR (survey_id = ? AND frame_id > ?)", (after[0], after[0], after[1], limit))
    rows = conn.execute("SELECT survey_id, frame_id, name, phone FROM frame_personal"
                        f"{where} ORDER BY survey_id, frame_id LIMIT ? {_LOCKED}", params).fetchall()
    changed = []
    for survey_id, frame_id, name, phone in rows:
        if personal.is_current(name) and personal.is_current(phone):
            continue
        changed.append((personal.seal(personal.open(name)), personal.seal(personal.open(phone)), survey_id, frame_id))
    if changed:
        conn.executemany("UPDATE frame_personal SET name = ?, phone = ? WHERE survey_id = ? AND frame_id = ?", changed)
    last = (rows[-1][0], rows[-1][1]) if len(rows) == limit else None
    return len(changed), last
