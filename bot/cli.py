"""The `khaosat` command.

Exit codes: 0 done; 1 the input was refused (a form with errors, a stored form that
conflicts); 2 the command line itself was wrong (click's usage errors).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from bot import clock
from bot.config import Config, ConfigError, load_config
from storage import QuestionnaireConflict, StorageError, open_storage
from surveys.model import Questionnaire
from surveys.xlsform import SUPPORTED_SUFFIXES, FormError, load_questionnaire

EXIT_REFUSED = 1

# Scripts read the transcript line by line: no wrapping when output is not a terminal.
console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
errors = Console(stderr=True, highlight=False, soft_wrap=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="khaosat")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), envvar="KHAOSAT_CONFIG",
              help="Configuration file (see config.example.toml); also from $KHAOSAT_CONFIG.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """khaosat: chat surveys for Vietnam's administrative-reform indexes (PAR INDEX, SIPAS)."""
    try:
        ctx.obj = load_config(config_path) if config_path else Config()
    except ConfigError as error:
        errors.print(f"[bold red]✗[/] {error}", markup=True)
        sys.exit(EXIT_REFUSED)


def _database(ctx: click.Context, db: Path | None) -> Path | None:
    """--db if given, else the configured database when a configuration file was given."""
    config: Config = ctx.obj
    return db if db is not None or config.source is None else config.database


# -- forms -----------------------------------------------------------------------------------


@main.group()
def form() -> None:
    """Check questionnaires written as XLSForm."""


@form.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def form_check(paths: tuple[Path, ...]) -> None:
    """Validate XLSForm files (.xlsx .xls .csv .md), or every such file in a folder.

    Prints a summary of each form that a chat can run, and every problem of each that it
    cannot, with sheet, row and column. Exit 1 if any form has a problem.
    """
    files = [p for path in paths for p in (_form_files(path) if path.is_dir() else [path])]
    failed = 0
    for path in files:
        try:
            questionnaire = load_questionnaire(path)
        except FormError as error:
            failed += 1
            errors.print(f"[bold red]✗ {path}[/]: {len(error.problems)} problem(s)")
            for problem in error.problems:
                errors.print(f"    {problem}", markup=False)
            continue
        _print_summary(path, questionnaire)
    if len(files) > 1:
        console.print(f"{len(files) - failed} of {len(files)} forms can run in a chat.")
    if failed:
        sys.exit(EXIT_REFUSED)


def _form_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)


def _print_summary(path: Path, questionnaire: Questionnaire) -> None:
    kinds = Counter(q.type.value for q in questionnaire.questions)
    console.print(f"[bold green]✓ {path}[/]: '{questionnaire.title}' "
                  f"(form_id {questionnaire.form_id}, version {questionnaire.version})")
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("questions asked", str(len(questionnaire.asked)))
    table.add_row("by type", ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    table.add_row("groups", str(len(questionnaire.groups)))
    table.add_row("languages", ", ".join(f"{lang.name} ({lang.code})" for lang in questionnaire.languages)
                  + f"; default {questionnaire.default_language}")
    console.print(table)
    for warning in questionnaire.warnings:
        console.print(f"    [yellow]warning[/] {warning}", markup=True)


# -- taking a questionnaire --------------------------------------------------------------------


@main.command("try")
@click.argument("form_path", metavar="FORM", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite file to keep answers in; run again with the same file to resume.")
@click.option("--lang", type=click.Choice(["vi", "en"]), default=None,
              help="Language (default: locale.language of the configuration, vi).")
@click.option("--respondent", default="console", show_default=True, help="Who is answering (any id).")
@click.pass_context
def try_form(ctx: click.Context, form_path: Path, db: Path | None, lang: str | None, respondent: str) -> None:
    """Take the questionnaire FORM in the terminal, through the same engine as the chat bots.

    From a script (stdin not a terminal) one line answers one prompt: `yes` accepts consent,
    a choice's name (or number) answers a select_one, several separated by spaces a
    select_multiple, numbers and dates (YYYY-MM-DD or DD/MM/YYYY) and text as typed, `OK` an
    acknowledge, an empty line skips an optional question, `<` goes back. `/stop` pauses,
    `/refuse` declines, `/lang en` switches language.
    """
    questionnaire = _load_or_exit(form_path)
    db = _database(ctx, db)
    if db is None:
        scratch = tempfile.TemporaryDirectory(prefix="khaosat-try-")
        db = Path(scratch.name) / "try.sqlite"
        errors.print("[dim]No --db: answers are kept only until this run ends.[/]")
    asyncio.run(_try(questionnaire, form_path, db, lang or ctx.obj.language, respondent, ctx.obj))


async def _try(questionnaire: Questionnaire, form_path: Path, db: Path, lang: str, respondent: str,
               config: Config) -> None:
    from bot.console import ConsoleChannel
    from bot.conversations import Conversations

    interactive = sys.stdin.isatty()

    def read_line(_prompt) -> str | None:
        if interactive:
            try:
                return console.input("[bold]› [/]")
            except EOFError:
                return None
        line = sys.stdin.readline()
        return None if line == "" else line.rstrip("\n")

    async with await open_storage(db) as storage:
        conversations = Conversations(storage)
        try:
            await conversations.register(questionnaire, form_path.read_bytes(), form_path.name,
                                         clock.now(config.zone))
        except QuestionnaireConflict:
            errors.print(f"[bold red]✗[/] {db} already holds form '{questionnaire.form_id}' version "
                         f"'{questionnaire.version}' with other content. Change the version in the "
                         "settings sheet, or use another --db.")
            sys.exit(EXIT_REFUSED)
        channel = ConsoleChannel(conversations, console, read_line, lambda: clock.now(config.zone),
                                 echo_input=not interactive)
        await channel.take(questionnaire, f"console:{respondent}", lang)


def _load_or_exit(path: Path) -> Questionnaire:
    try:
        return load_questionnaire(path)
    except FormError as error:
        errors.print(f"[bold red]✗ {path}[/]: this form cannot run in a chat")
        for problem in error.problems:
            errors.print(f"    {problem}", markup=False)
        sys.exit(EXIT_REFUSED)


# -- export ----------------------------------------------------------------------------------


@main.command("export")
@click.option("--db", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The survey database (default: the configured one).")
@click.option("--format", "file_format", type=click.Choice(["csv"]), default="csv", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@click.option("--form", "form_id", default=None, help="Only sessions of this form_id.")
@click.pass_context
def export(ctx: click.Context, db: Path | None, file_format: str, out: Path, form_id: str | None) -> None:
    """Write one row per session and one column per question (XLSForm names).

    select_multiple answers are space-separated choice names; questions not answered or not
    relevant are empty. Respondents appear under pseudonymous ids.
    """
    from exporters.table import session_table, write_csv

    db = _database(ctx, db)
    if db is None or not db.is_file():
        raise click.UsageError("give --db PATH of an existing database, or --config with its storage.path")

    async def run():
        from bot.conversations import Conversations

        async with await open_storage(db) as storage:
            return await session_table(Conversations(storage), form_id)

    try:
        table = asyncio.run(run())
    except StorageError as error:
        errors.print(f"[bold red]✗[/] {db}: {error}")
        sys.exit(EXIT_REFUSED)
    write_csv(table, out)
    console.print(f"Wrote {len(table.rows)} sessions × {len(table.columns)} columns to {out}")


# -- running the bots ------------------------------------------------------------------------


@main.command("run")
@click.pass_context
def run_bots(ctx: click.Context) -> None:
    """Run every bot of the configuration (--config) until interrupted.

    Each [[telegram]] bot long-polls or serves its webhook; all share the configured database.
    Tokens come from the environment (token_env) and never appear in logs.
    """
    import logging
    import signal

    from bot.run import run

    config: Config = ctx.obj
    if config.source is None or not config.bots:
        raise click.UsageError("give --config FILE with at least one [[telegram]] bot (see config.example.toml)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run(config, stop)

    asyncio.run(main_loop())


@main.command("invite")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="The survey database.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for the letters.")
@click.option("--telegram", "telegram_username", help="The Telegram bot's username, for deep links and QR codes.")
@click.option("--zalo", "zalo_name", help="The Zalo bot's name as people search for it.")
@click.option("--title", default="Khảo sát cải cách hành chính", show_default=True, help="Survey name on the letters.")
@click.option("--reissue", is_flag=True, help="New codes for everyone not yet reached; old codes stop working.")
@click.pass_context
def invite(ctx: click.Context, db: Path | None, out: Path, telegram_username: str | None, zalo_name: str | None,
           title: str, reissue: bool) -> None:
    """Issue personal codes and write invitation letters for the people not yet reached.

    Writes invitations.csv (for mail merge: link, typed code, QR file), qr/*.png and
    letters.html (one printable letter per page, in Vietnamese). Codes are stored only as
    hashes: keep these files safe, and run with --reissue to replace lost ones.
    """
    from rich.progress import Progress

    from exporters.letters import Channels, issue_letters, write_letters

    db = _database(ctx, db)
    if db is None or not db.is_file():
        raise click.UsageError("give --db PATH of an existing database, or --config with its storage.path")
    if not telegram_username and not zalo_name:
        raise click.UsageError("say how people answer: --telegram BOT_USERNAME and/or --zalo NAME")
    channels = Channels(telegram_username.lstrip("@") if telegram_username else None, zalo_name)

    async def issue():
        async with await open_storage(db) as storage:
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("Issuing codes", total=None)
                return await issue_letters(storage, channels, clock.now(ctx.obj.zone), reissue=reissue,
                                           progress=lambda done, total: bar.update(task, completed=done, total=total))

    letters = asyncio.run(issue())
    files = write_letters(letters, out, channels, title)
    console.print(f"Issued {len(letters)} invitation(s): {files['csv']}, {files['html']}, {files['qr']}/")


# -- demo ------------------------------------------------------------------------------------


@main.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("khaosat-demo"),
              show_default=True, help="Folder for the demo database and export.")
@click.option("--respondents", type=click.IntRange(1, 5_000), default=200, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True, help="Same seed, same demo.")
def demo(out: Path, respondents: int, seed: int) -> None:
    """Run the Telegram bot against a local Bot API emulator with simulated people, and summarise.

    A sample is loaded and invited; simulated people open their links and answer the bundled
    example questionnaires (some stop half-way, go back, or press old buttons). Needs no token
    and no network: the emulator listens on 127.0.0.1 and the data is one SQLite file.
    """
    from bot.demo import run_demo

    asyncio.run(run_demo(out, respondents, seed, console))


if __name__ == "__main__":
    main()
