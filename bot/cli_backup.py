"""`khaosat backup`: a consistent copy of the database while the bots keep running."""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli_database import DATABASE


@click.command("backup")
@click.option("--db", type=DATABASE,
              help="The survey database (default: the configured one).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The backup file to write.")
@click.pass_context
def backup(ctx: click.Context, db: Path | None, out: Path) -> None:
    """Copy the database to --out with SQLite's online backup API, safe while `khaosat run` writes.

    The copy is the database at one instant (no half-written answer), checked for integrity and
    written as one self-contained file; an earlier backup at --out is replaced only once the new
    one is complete. The copy holds PERSONAL DATA (names, phones): keep it as protected as the
    database (Law 91/2025/QH15 on personal data). It opens like any khaosat database (--db FILE).
    """
    from bot.cli_common import _refuse, _survey_db, console
    from storage.backup import BackupError, backup_sqlite

    db = _survey_db(ctx, db)
    if isinstance(db, str):  # a postgresql:// URL (DATABASE keeps only files as Path)
        _refuse("khaosat backup copies an SQLite file; back a PostgreSQL database up with its own tools:"
                " pg_dump --format=custom --file=BACKUP 'postgresql://…' (and pg_restore to bring it back)")
    try:
        done = backup_sqlite(db, out)
    except (BackupError, OSError) as error:
        _refuse(f"no backup written: {error}")
    console.print(f"Backed up {db} to {done.path}: {done.pages} pages, {done.bytes / 1e6:.1f} MB, integrity ok.")
    console.print("Contains personal data (names, phones).")
