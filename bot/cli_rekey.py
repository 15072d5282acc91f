"""`khaosat rekey`: names and phones re-encrypted with the current key (rotation; see README)."""

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
    """Encrypt every stored name and phone with the first key of $KHAOSAT_DATA_KEY.

    Rotation: put a new key in front, keeping the old one (KHAOSAT_DATA_KEY="NEW,OLD"), restart
    the bots with it, run `khaosat rekey`, then drop OLD. Run it also after setting a key on a
    database written without one: its plaintext names and phones become encrypted. All or
    nothing, in one transaction; the bots may keep running.
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

    asyncio.run(migrated())
    done = rekey_sqlite(db)  # a StorageError (no key, a key missing from the list) ends as one line
    console.print(f"Re-encrypted the names and phones of {done.respondents} respondent(s) and {done.frame_rows} "
                  f"frame row(s) in {db} with the first key of ${ENV}.")
