"""``khaosat rekey``: every stored name and phone re-encrypted with the current data key.

Run after adding a new key in front of ``KHAOSAT_DATA_KEY`` (rotation), after setting a key on a
database written without one (plaintext values become encrypted), or to refresh the phones'
lookup hashes. One ``BEGIN IMMEDIATE`` transaction: it is all done or nothing is, and the bots
may keep running (they wait for the lock a moment, like for any write). SQLite only, as the
bots' storage is. Media files are re-sealed by their own aggregate (``media.reseal_media``, a
batch per transaction: files are large), which ``khaosat rekey`` calls after this.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .errors import StorageError
from .ownership import check_sqlite_file
from .personal_crypto import ENV, PersonalKeyError, codec


@dataclass(frozen=True)
class Rekeyed:
    """How many rows were re-encrypted (rows already under the current key are left as they are)."""

    respondents: int
    frame_rows: int


def rekey_sqlite(path: Path, *, busy_timeout_s: float = 30) -> Rekeyed:
    """Re-encrypt ``respondent_personal`` and ``frame_personal`` of the (migrated) database at ``path``."""
    personal = codec()
    if not personal.encrypting:
        raise PersonalKeyError(f"{ENV} is not set: there is no key to encrypt with")
    check_sqlite_file(path)
    connection = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s)
    try:
        connection.execute("BEGIN IMMEDIATE")
        respondents = connection.execute(
            "SELECT respondent_id, name, phone, phone_hmac FROM respondent_personal").fetchall()
        changed = 0
        for respondent_id, name, phone, phone_hmac in respondents:
            if personal.is_current(name) and personal.is_current(phone) and (phone is None or phone_hmac):
                continue  # done by an earlier run (or written with the current key)
            name, phone = personal.open(name), personal.open(phone)  # any configured key, or plaintext
            connection.execute(
                "UPDATE respondent_personal SET name = ?, phone = ?, phone_hmac = ? WHERE respondent_id = ?",
                (personal.seal(name), personal.seal(phone), personal.phone_hash(phone), respondent_id))
            changed += 1
        frame = connection.execute("SELECT survey_id, frame_id, name, phone FROM frame_personal").fetchall()
        frame_changed = 0
        for survey_id, frame_id, name, phone in frame:
            if personal.is_current(name) and personal.is_current(phone):
                continue
            connection.execute(
                "UPDATE frame_personal SET name = ?, phone = ? WHERE survey_id = ? AND frame_id = ?",
                (personal.seal(personal.open(name)), personal.seal(personal.open(phone)), survey_id, frame_id))
            frame_changed += 1
        connection.execute("COMMIT")
    except sqlite3.Error as error:
        raise StorageError(f"sqlite: {error}") from None
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        connection.close()
    return Rekeyed(changed, frame_changed)
