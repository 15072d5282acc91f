"""What the ``khaosat`` commands share: the output consoles, refusing with exit 1, finding and
checking the database, ``--db``/``--survey``/``--at``. The commands live in ``bot/cli.py`` and
the ``bot/cli_*.py`` modules, which all import from here (not from each other)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from bot import clock
from bot.cli_database import DATABASE, is_postgresql_url
from bot.config import Config


EXIT_REFUSED = 1

# Scripts read the transcript line by line: no wrapping when output is not a terminal.
console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def _database(ctx: click.Context, db: Path | None, *, create: bool = False) -> Path | None:
    """--db if given, else the configured database when a configuration file was given; checked
    by `_check_database` (only commands that create a database pass ``create=True``)."""
    config: Config = ctx.obj
    db = db if db is not None or config.source is None else config.database
    _check_database(db, create=create)
    return db


_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_database(db: Path | str | None, *, create: bool = False) -> None:
    """The one check of a database path before it is opened (opening creates a missing or empty file).

    A file that is not SQLite is always refused. A path that does not exist, or an empty file, is
    refused too unless the command creates databases (``create``: `survey load`, `try`), so a
    mistyped --db never silently becomes a new, empty database. A PostgreSQL URL is the server's
    to check when it is opened.
    """
    if db is None or is_postgresql_url(db):
        return
    if not db.exists():
        if not create:
            _refuse(f"{db} does not exist: give the path of an existing khaosat database "
                    "(khaosat survey load FILE --db PATH creates one)")
        return
    if not db.is_file():
        _refuse(f"{db} is not a file, not a khaosat database")
    with db.open("rb") as handle:
        head = handle.read(len(_SQLITE_HEADER))
    if not head:
        if not create:
            _refuse(f"{db} is empty, not a khaosat database (khaosat survey load FILE --db PATH creates one)")
    elif head != _SQLITE_HEADER:
        _refuse(f"{db} is not a khaosat database (not an SQLite file)")


def _at(ctx: click.Context, at: str | None):
    """The hidden --at ISO time, or now."""
    import datetime as dt

    try:
        now = dt.datetime.fromisoformat(at) if at else clock.now(ctx.obj.zone)
    except ValueError:
        raise click.BadParameter(f"{at!r} is not an ISO date-time (e.g. 2026-08-15T09:00)", param_hint="--at")
    return now if now.tzinfo is not None else now.replace(tzinfo=ctx.obj.zone)


def _survey_db(ctx: click.Context, db: Path | None, *, create: bool = False) -> Path:
    """The database a command needs: --db or the configured one, checked (see `_check_database`)."""
    db = _database(ctx, db, create=create)
    if db is None:
        raise click.UsageError("give --db PATH of an existing database, or --config with its storage.path")
    return db


def _refuse(message: str, problems: list | None = None) -> None:
    errors.print(f"[bold red]✗[/] {escape(message)}", markup=True, highlight=False)
    for problem in problems or []:
        errors.print(f"    {problem}", markup=False)
    sys.exit(EXIT_REFUSED)


async def _project(storage, survey_id: str | None):
    """The stored project named by --survey, or the only one stored."""
    from fieldwork.surveys import find_project

    return await find_project(storage, survey_id)


def _wide() -> Console:
    """Tables for scripts are not cut to 80 columns."""
    return console if sys.stdout.isatty() else Console(highlight=False, width=200)


_DB_OPTION = click.option("--db", type=DATABASE,
                          help="The survey database (default: the configured one).")
_SURVEY_OPTION = click.option("--survey", "survey_id", default=None,
                              help="The survey project's id (default: the only one loaded).")
