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
