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
