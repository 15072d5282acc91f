"""SQLite schema as an ordered list of migrations.

``PRAGMA user_version`` holds how many migrations a database has had. Opening
an older database applies the missing ones in a single transaction, so an
interrupted upgrade leaves the old schema intact. Append new migrations; never
edit one that has shipped.
"""

from __future__ import annotations

import aiosqlite

from .errors import StorageError

#: Each migration is a sequence of statements run inside one transaction.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """
        CREATE TABLE questionnaires (
            form_id     TEXT NOT NULL,
            version     TEXT NOT NULL,
            source_name TEXT NOT NULL,
            source      BLOB NOT NULL,
            sha256      TEXT NOT NULL,
            loaded_at   TEXT NOT NULL,
            PRIMARY KEY (form_id, version)
        )
        """,
        """
        CREATE TABLE respondents (
            id          INTEGER PRIMARY KEY,
            external_id TEXT NOT NULL UNIQUE,
            pseudonym   TEXT NOT NULL UNIQUE,
            created_at  TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE sessions (
            id            INTEGER PRIMARY KEY,
            respondent_id INTEGER NOT NULL REFERENCES respondents (id),
            form_id       TEXT NOT NULL,
            form_version  TEXT NOT NULL,
            channel       TEXT NOT NULL,
            status        TEXT NOT NULL,
            state         TEXT NOT NULL CHECK (json_valid(state)),
            revision      INTEGER NOT NULL CHECK (revision >= 0),
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL,
            FOREIGN KEY (form_id, form_version) REFERENCES questionnaires (form_id, version)
        )
        """,
        # At most one open session per respondent and form, even with
        # concurrent writers in several processes.
        """
        CREATE UNIQUE INDEX sessions_one_open ON sessions (respondent_id, form_id)
        WHERE status NOT IN ('completed', 'refused')
        """,
        "CREATE INDEX sessions_by_form ON sessions (form_id, id)",
        """
        CREATE TABLE events (
            id         INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions (id),
            event_key  TEXT NOT NULL,
            event      TEXT NOT NULL CHECK (json_valid(event)),
            revision   INTEGER NOT NULL,
            at         TEXT NOT NULL,
            UNIQUE (session_id, event_key),
            UNIQUE (session_id, revision)
        )
        """,
        """
        CREATE TABLE answers (
            session_id INTEGER NOT NULL REFERENCES sessions (id),
            question   TEXT NOT NULL,
            value      TEXT NOT NULL CHECK (json_valid(value)),
            status     TEXT NOT NULL
                       CHECK (status IN ('answered', 'skipped', 'not_applicable')),
            updated_at TEXT NOT NULL,
            PRIMARY KEY (session_id, question)
        )
        """,
        """
        CREATE TABLE answer_history (
            id         INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions (id),
            question   TEXT NOT NULL,
            old_value  TEXT,
            old_status TEXT,
            new_value  TEXT NOT NULL,
            new_status TEXT NOT NULL,
            event_id   INTEGER NOT NULL REFERENCES events (id),
            at         TEXT NOT NULL
        )
        """,
        "CREATE INDEX answer_history_by_question ON answer_history (session_id, question, id)",
    ),
]


async def migrate(db: aiosqlite.Connection) -> None:
    """Bring ``db`` (in autocommit mode) up to ``len(MIGRATIONS)``.

    The version is read under the write lock so two processes opening the
    same file at once cannot both apply a migration. A database newer than
    this code is refused rather than written with an outdated understanding
    of its schema.
    """
    target = len(MIGRATIONS)
    await db.execute("BEGIN IMMEDIATE")
    try:
        async with db.execute("PRAGMA user_version") as cur:
            (current,) = await cur.fetchone()
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
