"""SQLite schema as an ordered list of migrations.

``PRAGMA user_version`` holds how many migrations a database has had. Opening
an older database applies the missing ones in a single transaction, so an
interrupted upgrade leaves the old schema intact. Append new migrations; never
edit one that has shipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import StorageError
from .schema_first import FIRST_MIGRATIONS

if TYPE_CHECKING:
    import aiosqlite

    from .sqlite_hops import SQLiteThread

#: Each migration is a sequence of statements run inside one transaction. 1-10 are in
#: ``schema_first.py``; append new ones here, one tuple each, after a comment saying what for.
MIGRATIONS: list[tuple[str, ...]] = [
    *FIRST_MIGRATIONS,
    # hardening: the bot-wide limit on failed code attempts counts a bot's attempts of the last
    # minute, from every chat: a range of this index instead of a scan of all the bot's attempts.
    ("CREATE INDEX link_attempts_by_bot ON link_attempts (channel, bot, at)",),
    # privacy: consents with the exact text shown, data subjects' rights requests (Law
    # 91/2025/QH15, Decree 356/2025/NĐ-CP) and the audit trail of their fulfilment and of purges.
    (
        """
        CREATE TABLE privacy_texts (
            sha256   TEXT PRIMARY KEY,
            version  TEXT NOT NULL,
            language TEXT NOT NULL,
            channel  TEXT NOT NULL,
            text     TEXT NOT NULL,
            first_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE consents (
            id            INTEGER PRIMARY KEY,
            respondent_id INTEGER NOT NULL REFERENCES respondents (id),
            text_sha256   TEXT NOT NULL REFERENCES privacy_texts (sha256),
            version       TEXT NOT NULL,
            channel       TEXT NOT NULL,
            at            TEXT NOT NULL,
            key           TEXT NOT NULL UNIQUE
        )
        """,
        "CREATE INDEX consents_by_respondent ON consents (respondent_id, id)",
        """
        CREATE TABLE rights_requests (
            id             INTEGER PRIMARY KEY,
            respondent_id  INTEGER NOT NULL REFERENCES respondents (id),
            kind           TEXT NOT NULL CHECK (kind IN ('withdraw_delete')),
            channel        TEXT NOT NULL,
            bot            TEXT NOT NULL,
            language       TEXT NOT NULL,
            opened_at      TEXT NOT NULL,
            acknowledge_by TEXT NOT NULL,
            handle_by      TEXT NOT NULL,
            status         TEXT NOT NULL CHECK (status IN ('open', 'fulfilled', 'closed')),
            fulfilled_at   TEXT,
            fulfilled_by   TEXT,
            notified_at    TEXT
        )
        """,
        "CREATE UNIQUE INDEX rights_requests_one_active ON rights_requests (respondent_id) WHERE status <> 'closed'",
        "CREATE INDEX rights_requests_by_status ON rights_requests (status, id)",
        """
        CREATE TABLE privacy_log (
            id         INTEGER PRIMARY KEY,
            request_id INTEGER REFERENCES rights_requests (id),
            survey_id  TEXT,
            action     TEXT NOT NULL,
            actor      TEXT NOT NULL,
            detail     TEXT NOT NULL,
            at         TEXT NOT NULL
        )
        """,
    ),
    # paper: printed paper forms (one per sampled person, by the hash of its code) and the
    # entries typed from the returned ones (first, second, resolution); storage/paper_entries.py
    (
        """
        CREATE TABLE paper_forms (
            id            INTEGER PRIMARY KEY,
            code_hash     TEXT NOT NULL UNIQUE,
            respondent_id INTEGER NOT NULL REFERENCES respondents (id),
            survey_id     TEXT NOT NULL,
            form_id       TEXT NOT NULL,
            form_version  TEXT NOT NULL,
            printed_at    TEXT NOT NULL,
            session_id    INTEGER REFERENCES sessions (id),
            written_at    TEXT
        )
        """,
        "CREATE INDEX paper_forms_by_survey ON paper_forms (survey_id, id)",
        "CREATE INDEX paper_forms_by_respondent ON paper_forms (respondent_id)",
        """
        CREATE TABLE paper_entries (
            paper_form_id INTEGER NOT NULL REFERENCES paper_forms (id),
            pass          INTEGER NOT NULL CHECK (pass IN (1, 2, 3)),
            account_id    INTEGER,
            username      TEXT NOT NULL,
            language      TEXT NOT NULL,
            answers       TEXT NOT NULL CHECK (json_valid(answers)),
            entered_at    TEXT NOT NULL,
            PRIMARY KEY (paper_form_id, pass)
        )
        """,
    ),
]


async def migrate(db: aiosqlite.Connection | SQLiteThread) -> None:
    """Bring ``db`` (in autocommit mode) up to ``len(MIGRATIONS)``.

    ``db`` is the console's aiosqlite connection or the bots' ``SQLiteThread``: only their
    common public ``execute``, ``execute_fetchall`` and ``in_transaction`` are used.

    The version is read under the write lock so two processes opening the
    same file at once cannot both apply a migration. A database newer than
    this code is refused rather than written with an outdated understanding
    of its schema.
    """
    target = len(MIGRATIONS)
    await db.execute("BEGIN IMMEDIATE")
    try:
        (current,) = (await db.execute_fetchall("PRAGMA user_version"))[0]
        if current > target:
            raise StorageError(
                f"database schema version {current} is newer than this khaosat "
                f"supports ({target}); upgrade khaosat to open it"
            )
        if current < target:
            for migration in MIGRATIONS[current:]:
                for statement in migration:
                    await db.execute(statement)
            # PRAGMA takes no parameters; target is an int computed above.
            await db.execute(f"PRAGMA user_version = {target}")
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            await db.execute("ROLLBACK")
        raise
