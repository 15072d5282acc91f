"""`khaosat rekey`: names, phones and media files re-encrypted with the current key (rotation; see README)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from bot.cli_database import DATABASE


@click.command("rekey")
@click.option("--db", type=DATABASE, help="The survey database (default: the configured one).")
@click.option("--generate-key", is_flag=True, help="Print a new key for KHAOSAT_DATA_KEY and stop.")
@click.pass_context
def rekey(ctx: click.Context, db: Path | None, generate_key: bool) -> None:
    """Encrypt every stored name, phone and media file with the first key of $KHAOSAT_DATA_KEY.

    Rotation: put a new key in front, keeping the old one (KHAOSAT_DATA_KEY="NEW,OLD"), restart
    the bots with it, run `khaosat rekey`, then drop OLD. Run it also after setting a key on a
    database written without one: its plaintext names, phones and files become encrypted. Names
    and phones: all or nothing, in one transaction. Media files (photos, recordings): in batches
    of 100, each its own transaction, so an interrupted run keeps what it did; run it again to
    finish. The bots may keep running.
    """
    from bot.cli_common import _refuse, _survey_db, console
    from storage import open_storage
    from storage.personal_crypto import ENV, generate_key as new_key
    from storage.personal_rekey import rekey_sqlite

    if generate_key:
        click.echo(new_key())
        return
    db = _survey_db(ctx, db)
    if isinstance(db, str):
        _refuse("khaosat rekey re-encrypts an SQLite database; the bots' storage runs on SQLite only for now")

    async def migrated() -> None:  # the lookup column exists before it is filled
        async with await open_storage(db):
            pass

    async def resealed_media() -> int:
        async with await open_storage(db) as storage:
            return await storage.media.reseal_media()

    asyncio.run(migrated())
    done = rekey_sqlite(db)  # a StorageError (no key, a key missing from the list) ends as one line
    console.print(f"Re-encrypted the names and phones of {done.respondents} respondent(s) and {done.frame_rows} "
                  f"frame row(s) in {db} with the first key of ${ENV}.")
    files = asyncio.run(resealed_media())
    console.print(f"Re-encrypted {files} media file(s) (photos, recordings, documents) with the same key.")
