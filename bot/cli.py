"""The `khaosat` command.

Exit codes: 0 done; 1 the input was refused (a form with errors, a stored form that
conflicts); 2 the command line itself was wrong (click's usage errors).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from bot import clock
from bot.cli_backup import backup
from bot.cli_common import (EXIT_REFUSED, _DB_OPTION, _SURVEY_OPTION, _at, _check_database, _database, _project,  # noqa: F401
                            _refuse, _survey_db, console, errors)
from bot.cli_database import DATABASE, is_postgresql_url
from bot.config import Config, ConfigError, load_config
from fieldwork import Refused
from storage import QuestionnaireConflict, StorageError, open_storage
from storage.atomic_files import describe
from surveys.model import Questionnaire

# pyxform (behind surveys.xlsform) and pandas take a third of a second to import: commands that
# need them import them where they are used, so `khaosat status` and `--help` start fast.

class _Khaosat(click.Group):
    """The command group; a database that cannot be used ends with a message, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except StorageError as error:
            errors.print(f"[bold red]✗[/] the database cannot be used: {escape(str(error))}")
            sys.exit(EXIT_REFUSED)
        except Refused as refused:  # a fieldwork operation refused its input: its message, exit 1
            _refuse(refused.message, refused.problems)
        except OSError as error:  # a file that cannot be read or written: one line (storage.atomic_files)
            _refuse(describe(error, error.filename or "a file", "read or write"))


@click.group(cls=_Khaosat, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="khaosat")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), envvar="KHAOSAT_CONFIG",
              help="Configuration file (see config.example.toml); also from $KHAOSAT_CONFIG.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """khaosat: chat surveys for Vietnam's administrative-reform indexes (PAR INDEX, SIPAS)."""
    try:
        ctx.obj = load_config(config_path) if config_path else Config()
    except ConfigError as error:
        errors.print(f"[bold red]✗[/] {escape(str(error))}", markup=True)
        sys.exit(EXIT_REFUSED)


main.add_command(backup)  # commands in modules of their own


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
    from surveys.xlsform import FormError, load_questionnaire

    files = [p for path in paths for p in (_form_files(path) if path.is_dir() else [path])]
    if not files:
        _refuse(f"no questionnaire files (.xlsx .xls .csv .md) in {', '.join(map(str, paths))}")
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
    from surveys.xlsform import iter_form_files

    return list(iter_form_files(folder))


def _print_summary(path: Path, questionnaire: Questionnaire) -> None:
    from fieldwork.form_summary import summarize

    summary = summarize(questionnaire)
    console.print(f"[bold green]✓ {path}[/]: '{summary.title}' "
                  f"(form_id {summary.form_id}, version {summary.version})")
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("questions asked", str(summary.asked))
    table.add_row("by type", ", ".join(f"{t.kind} {t.count}" for t in summary.types))
    table.add_row("groups", str(summary.groups))
    if summary.repeats:  # asked once per instance; exported as a table each
        table.add_row("repeats", summary.repeats)
    table.add_row("languages", ", ".join(f"{name} ({code})" for code, name in summary.languages)
                  + f"; default {summary.default_language}")
    for kind, count, note in summary.notes("en"):
        if kind != "unaskable":  # listed one by one below
            table.add_row(f"  {kind} ({count})", note)
    if summary.label_media:  # stored with the form; how each channel sends them (README "Media in labels")
        table.add_row("media in labels", ", ".join(f"{kind} {count}" for kind, count in summary.label_media)
                      + escape(f" ({summary.label_media_note('en')})"))
    console.print(table)
    for warning in summary.warnings:
        console.print(f"    [yellow]warning[/] {escape(warning)}", markup=True)
    if summary.not_asked:
        console.print(f"    [yellow]not asked in a chat[/] ({len(summary.not_asked)}): skipped, "
                      "exported as missing with their own code")
        for question in summary.not_asked:
            console.print(f"      {question.name} ({question.source_type}, {question.place}): "
                          f"{question.reason}", markup=False)


# -- taking a questionnaire --------------------------------------------------------------------


@main.command("try")
@click.argument("form_path", metavar="FORM", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--db", type=DATABASE,
              help="SQLite file to keep answers in; run again with the same file to resume.")
@click.option("--lang", type=click.Choice(["vi", "en"]), default=None,
              help="Language (default: locale.language of the configuration, vi).")
@click.option("--respondent", default="console", show_default=True, help="Who is answering (any id).")
@click.option("--frame", "frame_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Sample frame (CSV/XLSX) whose row --frame-id the form preloads (instance('respondent')).")
@click.option("--frame-id", default=None, help="The frame_id of the row of --frame to preload.")
@click.option("--preload", "preload_flags", multiple=True, metavar="NAME=VALUE",
              help="A preload of the sampled person (unit, group, stratum, a frame column); repeatable.")
@click.pass_context
def try_form(ctx: click.Context, form_path: Path, db: Path | None, lang: str | None, respondent: str,
             frame_path: Path | None, frame_id: str | None, preload_flags: tuple[str, ...]) -> None:
    """Take the questionnaire FORM in the terminal, through the same engine as the chat bots.

    From a script (stdin not a terminal) one line answers one prompt: `yes` accepts consent,
    a choice's name (or number) answers a select_one, several separated by spaces a
    select_multiple, numbers and dates (YYYY-MM-DD or DD/MM/YYYY) and text as typed, `OK` an
    acknowledge, an empty line skips an optional question, `<` goes back. `/stop` pauses,
    `/refuse` declines, `/lang en` switches language.
    """
    from bot.cli_preloads import try_preloads

    questionnaire = _load_or_exit(form_path)
    preloads = try_preloads(questionnaire, frame_path, frame_id, preload_flags)
    db = _database(ctx, db, create=True)
    if db is None:
        scratch = tempfile.TemporaryDirectory(prefix="khaosat-try-")
        db = Path(scratch.name) / "try.sqlite"
        errors.print("[dim]No --db: answers are kept only until this run ends.[/]")
    asyncio.run(_try(questionnaire, form_path, db, lang or ctx.obj.language, respondent, ctx.obj, preloads))


async def _try(questionnaire: Questionnaire, form_path: Path, db: Path, lang: str, respondent: str,
               config: Config, preloads: dict[str, str] | None = None) -> None:
    from bot.console import ConsoleChannel
    from fieldwork.conversations import Conversations

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
        await channel.take(questionnaire, f"console:{respondent}", lang, preloads)


def _load_or_exit(path: Path) -> Questionnaire:
    from surveys.xlsform import FormError, load_questionnaire

    try:
        return load_questionnaire(path)
    except FormError as error:
        errors.print(f"[bold red]✗ {path}[/]: this form cannot run in a chat")
        for problem in error.problems:
            errors.print(f"    {problem}", markup=False)
        sys.exit(EXIT_REFUSED)


# -- export ----------------------------------------------------------------------------------


@main.command("export")
@click.option("--db", type=DATABASE,
              help="The survey database (default: the configured one).")
@click.option("--format", "file_format", type=click.Choice(["csv", "xlsx", "sav", "dta", "parquet"]), default="csv",
              show_default=True, help="csv (UTF-8 with BOM), xlsx (with a codebook sheet), sav (SPSS), dta (Stata), "
              "parquet.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@click.option("--layout", type=click.Choice(["wide", "long"]), default="wide", show_default=True,
              help="wide: one row per session; long: one row per answer.")
@click.option("--form", "form_id", default=None, help="Only sessions of this form_id.")
@click.option("--lang", "language", type=click.Choice(["vi", "en"]), default="vi", show_default=True,
              help="Language of variable and value labels.")
@click.option("--personal", is_flag=True,
              help="Add names and phones (PERSONAL DATA, Law 91/2025/QH15). Without it: pseudonyms only.")
@click.option("--delimiter", default=",", show_default=True,
              help="CSV field separator: ';' for Excel set to a Vietnamese (or other comma-decimal) locale.")
@click.option("--stata-version", type=click.Choice(["115", "117", "118", "119"]), default="118", show_default=True,
              help="Stata file format: 118 = Stata 14+; 115 = Stata 12, for R's foreign::read.dta and older "
                   "readers (text kept as UTF-8 bytes).")
@click.option("--labels", "use_labels", is_flag=True,
              help="csv/xlsx: choice labels instead of codes (as KoBoToolbox offers).")
@click.option("--label-headers", is_flag=True, help="csv/xlsx: question labels as column headers.")
@click.pass_context
def export(ctx: click.Context, db: Path | None, file_format: str, out: Path, layout: str, form_id: str | None,
           language: str, personal: bool, delimiter: str, stata_version: str, use_labels: bool,
           label_headers: bool) -> None:
    """Write the answers for analysts: CSV, Excel, SPSS, Stata or Parquet.

    Wide: session, paradata and sample columns, then one column per question (XLSForm names;
    select_multiple as space-separated names plus one 0/1 column per choice, `question/choice`).
    Long: one row per answer with its value, label, status and last change. SPSS and Stata
    files carry variable and value labels; Excel a codebook sheet. Respondents appear under
    pseudonymous ids unless --personal is given. Codes and missing values: see exporters/table.py.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from fieldwork.data import ExportOptions, export as export_answers

    db = _survey_db(ctx, db)

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=errors, transient=True, disable=not sys.stderr.isatty())
    options = ExportOptions(file_format, layout, form_id, language, personal, delimiter=delimiter,
                            stata_version=int(stata_version), labels=use_labels, label_headers=label_headers)
    if (use_labels or label_headers) and file_format not in ("csv", "xlsx"):
        raise click.UsageError("--labels and --label-headers are for --format csv or xlsx")

    async def run():
        async with await open_storage(db) as storage:
            task = bar.add_task("Reading sessions", total=None)
            return await export_answers(storage, out, options, where=str(db),
                                        progress=lambda done, total: bar.update(task, completed=done, total=total))

    with bar:
        exported = asyncio.run(run())
    console.print(f"Wrote {exported.rows} rows × {exported.columns} columns ({layout}, {file_format}) to {out}")
    if personal:
        errors.print("[bold yellow]![/] The file contains PERSONAL DATA (names and phones): keep it protected "
                     "(Law 91/2025/QH15 on personal data).")
        console.print("Contains personal data (names, phones).")


# -- running the bots ------------------------------------------------------------------------


@main.command("run")
@click.pass_context
def run_bots(ctx: click.Context) -> None:
    """Run every bot of the configuration (--config) until interrupted.

    Each [[telegram]] and [[zalo]] bot long-polls or serves its webhook; all share the configured
    database and the same chat rules. Telegram shows choices as buttons; Zalo numbers them and
    people type the number, several numbers ("1, 3", "2 và 4") or the options' words; "quay lại"
    or "<" goes back on both. A loaded survey's opens/closes dates apply (grace_days lets people
    already answering finish). At start-up, whoever's last reply a crash left undelivered gets
    their current question again. Tokens come from the environment (token_env) and never appear
    in logs; this is the one command that needs them. Each bot asks the platform who it is first:
    a token the platform refuses stops the command with one line naming the bot and its
    token_env (exit code 1).
    """
    import logging
    import signal

    from bot.run import tune_garbage_collector, run

    config: Config = ctx.obj
    if config.source is None or not config.bots:
        raise click.UsageError("give --config FILE with at least one [[telegram]] bot (see config.example.toml)")
    try:
        config.check_secrets()  # the one command that needs the tokens
    except ConfigError as error:
        _refuse(str(error))
    # Bots over a new, empty database would refuse every invitation code: a mistyped [storage]
    # path is an error here, not a fresh start.
    _check_database(config.database)
    from bot import logs
    from bot.processes import default_process_name

    logs.configure(config.process.log_format, config.process.name or default_process_name())
    # aiogram logs every update at INFO ("Update id=… is handled"): at survey load that is
    # thousands of lines a second, each costing the event loop as much as a storage call.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run(config, stop, started=lambda bots: tune_garbage_collector())

    try:
        asyncio.run(main_loop())
    except ConfigError as error:  # a token the platform refuses
        _refuse(str(error))


@main.command("invite")
@click.option("--db", type=DATABASE, help="The survey database.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for the letters.")
@click.option("--telegram", "telegram_username", help="The Telegram bot's username, for deep links and QR codes.")
@click.option("--zalo", "zalo_name", help="The Zalo bot's name as people search for it.")
@click.option("--web", "web_url", help="The web pages' public address (default: [web] public_url of the configuration).")
@click.option("--title", default=None, help="Survey name on the letters (default: the survey project's title).")
@click.option("--reissue", is_flag=True, help="New codes for everyone not yet reached; old codes stop working.")
@click.pass_context
def invite(ctx: click.Context, db: Path | None, out: Path, telegram_username: str | None, zalo_name: str | None,
           web_url: str | None, title: str | None, reissue: bool) -> None:
    """Issue personal codes and write invitation letters for the people not yet reached.

    Writes invitations.csv (for mail merge: link, typed code, QR file), qr/*.png and
    letters.html (one printable letter per page, in Vietnamese). Codes are stored only as
    hashes: keep these files safe, and run with --reissue to replace lost ones.

    Earlier letters in the folder are never overwritten: a later run into the same folder
    (e.g. after `khaosat sample replace`) writes invitations-2.csv, letters-2.html and qr-2/,
    then -3, and so on.

    Each letter carries its survey project's title, its [organiser] (the sending agency) and
    whom to ask (contact, phone, email); without them it is signed "Ban tổ chức khảo sát".
    """
    from rich.progress import Progress

    from fieldwork import invitations

    db = _survey_db(ctx, db)
    web_url = web_url or (ctx.obj.web.public_url if ctx.obj.web else None)
    if not telegram_username and not zalo_name and not web_url:
        raise click.UsageError("say how people answer: --telegram BOT_USERNAME and/or --zalo NAME and/or --web URL")
    invitations.check_writable(out)
    ways = invitations.channels(telegram_username, zalo_name, web_url)

    async def issue():
        async with await open_storage(db) as storage:
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("Issuing codes", total=None)
                return await invitations.issue(
                    storage, out, ways, title, clock.now(ctx.obj.zone), reissue=reissue, where=str(db),
                    progress=lambda done, total: bar.update(task, completed=done, total=total))

    try:
        issued = asyncio.run(issue())
    except Refused:
        console.print("Issued 0 invitation(s).")
        raise
    if issued.without_contact:
        errors.print("[yellow]![/] some letters carry no contact: add phone and email to the survey project's "
                     "\\[organiser] table (see surveys/templates/survey.example.toml) and run with --reissue")
    files = issued.files
    console.print(f"Issued {issued.count} invitation(s): {files['csv']}, {files['html']}, {files['qr']}/"
                  + (f" (the earlier letters in {out} are kept)" if issued.earlier_kept else ""))


@main.command("remind")
@click.option("--list-unreached", "list_unreached", is_flag=True,
              help="Write the people invited but never linked to a chat (CSV, PERSONAL DATA).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The CSV file for --list-unreached.")
@click.option("--run-once", "run_once", is_flag=True,
              help="Make one reminder pass now (for cron): queue the due reminders for the running bots.")
@click.option("--at", "at", default=None, hidden=True, help="Run as of this ISO time (tests, replays).")
@_SURVEY_OPTION
@_DB_OPTION
@click.pass_context
def remind(ctx: click.Context, list_unreached: bool, out: Path | None, run_once: bool, at: str | None,
           survey_id: str | None, db: Path | None) -> None:
    """Reminders: list the people bots cannot reach, or make one reminder pass.

    --list-unreached --out FILE writes everyone invited who never opened a chat with a bot
    (Telegram and Zalo bots cannot write first; people who answer only on the web pages are
    listed too, marked "web only"), with name, phone, group and stratum, so the
    coordinator can remind them by letter, SMS or phone. The file holds PERSONAL DATA (Law
    91/2025/QH15): keep it on the office computer and delete it after use.

    --run-once makes the same pass `khaosat run` makes every [reminders] interval_minutes:
    releases idle quota slots and queues the due reminders (never in quiet hours, never
    twice) for the bots of --config; the running bots pick them up within half a minute and
    send them at their pace, each text with the person's progress as it is then.
    """

    from bot.reminders import ReminderBot, reminder_pass, write_unreached

    if list_unreached == run_once:
        raise click.UsageError("give one of --list-unreached (with --out FILE) or --run-once")
    if list_unreached and out is None:
        raise click.UsageError("--list-unreached needs --out FILE")
    db = _survey_db(ctx, db)
    config: Config = ctx.obj
    now = _at(ctx, at)

    if list_unreached:
        async def listing() -> int:
            async with await open_storage(db) as storage:
                if survey_id is not None:  # an unknown --survey is refused before the file is written
                    await _project(storage, survey_id)
                return await write_unreached(storage, out, survey_id)

        try:
            count, web_only = asyncio.run(listing())
        except OSError as error:
            _refuse(describe(error, out))
        console.print(f"Wrote {out}: {count} person(s) invited but never reached in a chat, "
                      f"{web_only} of them web only: no chat to remind.")
        console.print("Contains personal data (names, phones).")
        return
    if not config.bots:
        raise click.UsageError("give --config FILE with the [[telegram]]/[[zalo]] bots that send the reminders")
    bots = [ReminderBot(b.channel, b.name, b.pace.per_second) for b in config.bots]

    async def one_pass():
        async with await open_storage(db) as storage:
            return await reminder_pass(storage, bots, now)

    result = asyncio.run(one_pass())
    for survey, why in sorted(result.skipped.items()):
        console.print(f"{survey}: no reminders ({why})")
    for survey, released in sorted(result.released.items()):
        console.print(f"{survey}: released {len(released)} idle quota slot(s)")
    console.print(f"Queued {result.count} reminder(s).")


# -- demo ------------------------------------------------------------------------------------


@main.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("khaosat-demo"),
              show_default=True, help="Folder for the demo database and export.")
@click.option("--respondents", type=click.IntRange(1, 5_000), default=200, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True, help="Same seed, same demo.")
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="End by serving the coordinator console over the demo's fieldwork (until Ctrl+C).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="The console's port on 127.0.0.1 (0: any free port).")
@click.option("--db", "database", type=DATABASE, default=None,
              help="An empty PostgreSQL database (postgresql://…) instead of a fresh demo.sqlite in --out.")
def demo(out: Path, respondents: int, seed: int, serve: bool, port: int, database: str | None) -> None:
    """Run the Telegram bot against a local Bot API emulator with simulated people, and summarise.

    A sample is loaded and invited; simulated people open their links and answer the bundled
    example questionnaires (some stop half-way, go back, or press old buttons). Needs no token
    and no network: the emulator listens on 127.0.0.1 and the data is one SQLite file.
    """
    from bot.demo import run_demo

    if database is not None and not is_postgresql_url(database):
        raise click.BadParameter("the demo makes its own SQLite file in --out; --db takes a postgresql:// URL",
                                 param_hint="--db")
    summary = asyncio.run(run_demo(out, respondents, seed, console, database))
    if serve:
        from bot.cli_console import serve_demo

        serve_demo(summary, port)


# Commands in modules of their own, which use the helpers above.
from bot.cli_console import serve, user  # noqa: E402
from bot.cli_fieldwork import frame_group, sample_group, status, survey_group  # noqa: E402
from bot.cli_statistics import estimate, report, score, weight  # noqa: E402

from bot.cli_paper import paper  # noqa: E402
from bot.cli_rekey import rekey  # noqa: E402
from bot.cli_privacy import privacy, purge  # noqa: E402 — retention and rights requests

for command in (user, serve, survey_group, frame_group, sample_group, status, weight, estimate, score, report,
                purge, privacy, paper, rekey):
    main.add_command(command)

if __name__ == "__main__":
    main()
