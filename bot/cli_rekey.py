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
def rekey(ctx: click.Context, db: Path | str | None, generate_key: bool) -> None:
    """Encrypt every stored name, phone and media file with the first key of $KHAOSAT_DATA_KEY.

    Rotation: put a new key in front, keeping the old one (KHAOSAT_DATA_KEY="NEW,OLD"), restart
    the bots with it, run `khaosat rekey`, then drop OLD. Run it also after setting a key on a
    database written without one: its plaintext names, phones and files become encrypted. An
    SQLite file or a postgresql:// URL. Names and phones in batches of 500 rows, media files
    (photos, recordings) in batches of 100, each batch its own short transaction, so the bots may
    keep running and an interrupted run keeps what it did: run it again to finish (a finished
    run leaves nothing to do).
    """
    from bot.cli_common import _survey_db, console
    from storage import open_storage, redacted
    from storage.personal_crypto import ENV, PersonalKeyError, codec, generate_key as new_key

    if generate_key:
        click.echo(new_key())
        return
    db = _survey_db(ctx, db)
    if not codec().encrypting:  # before opening (and migrating) anything
        raise PersonalKeyError(f"{ENV} is not set: there is no key to encrypt with")

    async def rekeyed() -> None:
        async with await open_storage(db) as storage:  # migrated first: the lookup column exists before it is filled
            done = await storage.personal_rekey.rekey_personal()
            console.print(f"Re-encrypted the names and phones of {done.respondents} respondent(s) and "
                          f"{done.frame_rows} frame row(s) in {redacted(str(db))} with the first key of ${ENV}.")
            files = await storage.media.reseal_media()
            console.print(f"Re-encrypted {files} media file(s) (photos, recordings, documents) with the same key.")

    asyncio.run(rekeyed())
