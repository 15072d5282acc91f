"""SQLite schema as an ordered list of migrations.

``PRAGMA user_version`` holds how many migrations a database has had. Opening
an older database applies the missing ones in a single transaction, so an
interrupted upgrade leaves the old schema intact. Append new migrations; never
edit one that has shipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import StorageError
from .ownership import APPLICATION_ID, FIRST_TABLES, ForeignDatabase, foreign_message
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
    # loaders: phones are encrypted at rest (storage/personal_crypto.py); a lookup by phone
    # compares this keyed hash (HMAC-SHA256) of the normalised number instead.
    (
        "ALTER TABLE respondent_personal ADD COLUMN phone_hmac TEXT",
        "CREATE INDEX respondent_personal_by_phone_hmac ON respondent_personal (phone_hmac)",
    ),
    # procs: several `khaosat run` processes on one database (storage/coordination.py): who is
    # alive (heartbeats, and the bots each sends for), named leases (the reminder pass, a chat's
    # turn), and which process is sending an outbox row until when (a killed one's rows lapse).
    (
        """
        CREATE TABLE processes (
            id           TEXT PRIMARY KEY,
            name         TEXT NOT NULL,
            bots         TEXT NOT NULL,
            started_at   TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL,
            lease_until  TEXT NOT NULL
        )
        """,
        "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until TEXT NOT NULL)",
        "ALTER TABLE outbox ADD COLUMN claimed_by TEXT",
        "ALTER TABLE outbox ADD COLUMN lease_until TEXT",
        "CREATE INDEX outbox_sending ON outbox (channel, bot, chat_id) WHERE state = 'sending'",
    ),
    # forms: the CSV files a questionnaire reads (pulldata, instance(), select_one_from_file),
    # kept with its source so a restarted bot loads the form as it was loaded first.
    (
        """
        CREATE TABLE questionnaire_attachments (
            form_id TEXT NOT NULL,
            version TEXT NOT NULL,
            name    TEXT NOT NULL,
            content BLOB NOT NULL,
            sha256  TEXT NOT NULL,
            PRIMARY KEY (form_id, version, name),
            FOREIGN KEY (form_id, version) REFERENCES questionnaires (form_id, version)
        )
        """,
    ),
    # branch media: files sent for image/audio/video/file questions (storage/media.py), sealed
    # with the data key when one is set; one per session, question key and SHA-256.
    (
        """
        CREATE TABLE answer_media (
            session_id  INTEGER NOT NULL REFERENCES sessions (id),
            question    TEXT NOT NULL,
            name        TEXT NOT NULL,
            mime        TEXT NOT NULL,
            size        INTEGER NOT NULL,
            sha256      TEXT NOT NULL,
            content     BLOB NOT NULL,
            sealed_with TEXT,
            event_key   TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (session_id, question, sha256)
        )
        """,
        "CREATE INDEX answer_media_by_event ON answer_media (session_id, event_key)",
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
        (application_id,) = (await db.execute_fetchall("PRAGMA application_id"))[0]
        if application_id != APPLICATION_ID:
            # Checked again under the write lock (``ownership.check_sqlite_file`` ran before
            # opening), then marked: the header says whose file this is.
            tables = {row[0] for row in await db.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
            if tables and (application_id != 0 or current == 0 or not FIRST_TABLES <= tables):
                raise ForeignDatabase(foreign_message("the database", application_id, tables))
            await db.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # an int constant
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
