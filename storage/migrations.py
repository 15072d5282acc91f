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
    # loaders: phones are encrypted at rest (storage/personal_crypto.py); a lookup by phone
    # compares this keyed hash (HMAC-SHA256) of the normalised number instead.
    (
        "ALTER TABLE respondent_personal ADD COLUMN phone_hmac TEXT",
        "CREATE INDEX respondent_personal_by_phone_hmac ON respondent_personal (phone_hmac)",
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
