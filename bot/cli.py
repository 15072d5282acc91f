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
from rich.markup import escape
from rich.table import Table

from bot import clock
from bot.cli_backup import backup
from bot.cli_database import DATABASE, is_postgresql_url
from bot.config import Config, ConfigError, load_config
from fieldwork import Refused
from storage import QuestionnaireConflict, StorageError, open_storage
from surveys.model import Questionnaire

# pyxform (behind surveys.xlsform) and pandas take a third of a second to import: commands that
# need them import them where they are used, so `khaosat status` and `--help` start fast.

EXIT_REFUSED = 1

# Scripts read the transcript line by line: no wrapping when output is not a terminal.
console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
errors = Console(stderr=True, highlight=False, soft_wrap=True)


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
    kinds = Counter(q.type.value for q in questionnaire.questions)
    console.print(f"[bold green]✓ {path}[/]: '{questionnaire.title}' "
                  f"(form_id {questionnaire.form_id}, version {questionnaire.version})")
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("questions asked", str(len(questionnaire.asked)))
    table.add_row("by type", ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    table.add_row("groups", str(len(questionnaire.groups)))
    if questionnaire.has_repeats:  # asked once per instance; exported as a table each
        from surveys.repeats import describe

        table.add_row("repeats", describe(questionnaire))
    table.add_row("languages", ", ".join(f"{lang.name} ({lang.code})" for lang in questionnaire.languages)
                  + f"; default {questionnaire.default_language}")
    console.print(table)
    for warning in questionnaire.warnings:
        console.print(f"    [yellow]warning[/] {escape(warning)}", markup=True)
    if questionnaire.unaskable:
        console.print(f"    [yellow]not asked in a chat[/] ({len(questionnaire.unaskable)}): skipped, "
                      "exported as missing with their own code")
        for question in questionnaire.unaskable:
            console.print(f"      {question.name} ({question.source_type}, {question.location}): "
                          f"{question.unaskable}", markup=False)


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
              help="Add names and phones (PERSONAL DATA, Decree 13/2023/NĐ-CP). Without it: pseudonyms only.")
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
                     "(Decree 13/2023/NĐ-CP).")
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
@click.option("--title", default=None, help="Survey name on the letters (default: the survey project's title).")
@click.option("--reissue", is_flag=True, help="New codes for everyone not yet reached; old codes stop working.")
@click.pass_context
def invite(ctx: click.Context, db: Path | None, out: Path, telegram_username: str | None, zalo_name: str | None,
           title: str | None, reissue: bool) -> None:
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
    if not telegram_username and not zalo_name:
        raise click.UsageError("say how people answer: --telegram BOT_USERNAME and/or --zalo NAME")
    invitations.check_writable(out)
    ways = invitations.channels(telegram_username, zalo_name)

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


# -- survey projects, sample frames, samples and status ----------------------------------------


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


@main.group("survey")
def survey_group() -> None:
    """Survey projects: one round with its groups, units, strata, dates and settings."""


@survey_group.command("load")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--form", "form_paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A group's questionnaire (XLSForm) to store with the survey; repeat for each.")
@_DB_OPTION
@click.pass_context
def survey_load(ctx: click.Context, path: Path, form_paths: tuple[Path, ...], db: Path | None) -> None:
    """Check a survey TOML file (and its questionnaires, --form) and store it (see config.example.toml, [survey]).

    Loading the same id again with the same content changes nothing; changed content is
    stored as a new version (older versions are kept), unless it would remove a group or
    unit that the frame or sample uses, or change a sampled group's questionnaire. Nothing is
    stored unless the file and every questionnaire are valid.
    """
    from fieldwork.surveys import check_survey, store_checked

    checked = check_survey(path, form_paths)
    db = _survey_db(ctx, db, create=True)

    async def run():
        async with await open_storage(db) as storage:
            return await store_checked(storage, checked, clock.now(ctx.obj.zone), name=path.name)

    loaded = asyncio.run(run())
    project, stored, new = loaded.project, loaded, loaded.new
    levels = " → ".join(project.levels)
    console.print(f"[bold green]✓[/] {project.title} ({project.id}): {len(project.groups)} group(s), "
                  f"{len(project.units)} unit(s) ({levels}), {project.opens} – {project.closes}; "
                  + (f"stored as version {stored.version}" if new else f"unchanged (version {stored.version})"))


@survey_group.command("list")
@_DB_OPTION
@click.pass_context
def survey_list(ctx: click.Context, db: Path | None) -> None:
    """The loaded survey projects and their versions."""
    db = _survey_db(ctx, db)

    from fieldwork.sample import sample_summary
    from fieldwork.surveys import surveys_with_samples

    async def run():
        async with await open_storage(db) as storage:
            return await surveys_with_samples(storage)

    table = Table("id", "title", "year", "opens", "closes", "version", "loaded", "sample")
    for s, sample in asyncio.run(run()):
        table.add_row(s.id, s.title, str(s.index_year), s.opens, s.closes, str(s.version), s.loaded_at[:16],
                      sample_summary(sample))
    _wide().print(table)


@main.group("frame")
def frame_group() -> None:
    """Sample frames: the people who may be sampled."""


@frame_group.command("import")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_SURVEY_OPTION
@_DB_OPTION
@click.pass_context
def frame_import(ctx: click.Context, path: Path, survey_id: str | None, db: Path | None) -> None:
    """Import a frame from CSV (UTF-8, with or without BOM) or XLSX.

    Columns: id, group, unit, optional name and phone, and the survey's strata variables.
    The file is checked whole: any problem (each shown with its line, header = line 1, and
    column) and nothing is imported. Importing the same file again changes nothing; names
    and phones are stored apart from everything else.
    """
    from fieldwork.sample import import_frame

    db = _survey_db(ctx, db)

    async def run():
        async with await open_storage(db) as storage:
            project = await _project(storage, survey_id)
            return await import_frame(storage, project, path, clock.now(ctx.obj.zone).isoformat())

    result = asyncio.run(run())
    console.print(f"[bold green]✓[/] {path}: {result.rows} people; {result.added} added, {result.changed} changed, "
                  f"{result.removed} removed, {result.unchanged} unchanged")


@main.group("sample")
def sample_group() -> None:
    """Draw the sample, import one drawn elsewhere, and replace nonrespondents from reserves."""


@sample_group.command("draw")
@click.option("--seed", type=click.IntRange(0), required=True, help="Same seed and frame, same sample.")
@_SURVEY_OPTION
@_DB_OPTION
@click.pass_context
def sample_draw(ctx: click.Context, seed: int, survey_id: str | None, db: Path | None) -> None:
    """Draw a stratified random sample and ordered reserve lists from the imported frame.

    Each group's allocation (fixed, proportional, equal or census) comes from the survey
    project; every member's inclusion probability n_h/N_h and base weight are stored.
    Members become respondents ready for `khaosat invite`; reserves wait for
    `khaosat sample replace`. Running again with the same seed changes nothing.
    """
    from fieldwork.sample import draw

    db = _survey_db(ctx, db)

    async def run():
        async with await open_storage(db) as storage:
            project = await _project(storage, survey_id)
            return await draw(storage, project, seed, clock.now(ctx.obj.zone).isoformat())

    result = asyncio.run(run())
    table = Table("group", "stratum", "N_h", "n_h", "π_h", "weight", "reserve")
    for s in result.strata:
        table.add_row(s.group, s.stratum, str(s.population), str(s.n), f"{s.pi:.4f}",
                      f"{s.weight:.2f}" if s.n else "—", str(s.reserve))
    _wide().print(table)
    console.print(("[bold green]✓[/] drew " if result.recorded else "Already drawn with this seed: ")
                  + f"{result.main} member(s) and {result.reserve} reserve(s) (seed {seed})")


@sample_group.command("import")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_SURVEY_OPTION
@_DB_OPTION
@click.pass_context
def sample_import(ctx: click.Context, path: Path, survey_id: str | None, db: Path | None) -> None:
    """Import a sample drawn elsewhere: the frame's columns plus probability or weight.

    Optional columns role (main/reserve) and reserve_rank give reserve lists. Checked
    whole like a frame; the file also becomes the survey's frame.
    """
    from fieldwork.sample import import_sample

    db = _survey_db(ctx, db)

    async def run():
        async with await open_storage(db) as storage:
            project = await _project(storage, survey_id)
            return await import_sample(storage, project, path, clock.now(ctx.obj.zone).isoformat())

    recorded, main_count = asyncio.run(run())
    console.print(("[bold green]✓[/] imported " if recorded else "Already imported: ")
                  + f"{main_count} sample member(s) from {path}")


@sample_group.command("replace")
@click.argument("respondent", type=int, required=False)
@click.option("--nonrespondents", is_flag=True,
              help="Replace every refused, unreachable or ineligible member, reserves in order.")
@click.option("--reason", default=None, help="Kept in the replaced person's disposition history.")
@_SURVEY_OPTION
@_DB_OPTION
@click.pass_context
def sample_replace(ctx: click.Context, respondent: int | None, nonrespondents: bool, reason: str | None,
                   survey_id: str | None, db: Path | None) -> None:
    """Replace RESPONDENT (an id) by the next reserve of the same stratum.

    Only refused, unreachable or ineligible members are replaced. The replaced person's
    disposition becomes "replaced"; the replacement keeps the stratum's design probability
    n_h/N_h.
    """
    from fieldwork.sample import replace

    if (respondent is None) == (not nonrespondents):
        raise click.UsageError("give a RESPONDENT id or --nonrespondents (not both)")
    db = _survey_db(ctx, db)

    async def run():
        async with await open_storage(db) as storage:
            project = await _project(storage, survey_id)
            return await replace(storage, project, clock.now(ctx.obj.zone).isoformat(), respondent=respondent,
                                 reason=reason)

    result = asyncio.run(run())
    replaced, exhausted = result.replaced, result.exhausted
    for old, member in replaced:
        console.print(f"respondent {old} → {member.respondent_id} (reserve {member.reserve_rank} of "
                      f"{member.stratum}, π {member.pi:.4f})")
    for old in exhausted:
        errors.print(f"[yellow]respondent {old}: no reserve left in the stratum[/]")
    console.print(f"Replaced {len(replaced)}; {len(exhausted)} without a reserve.")


@main.command("status")
@_SURVEY_OPTION
@click.option("--format", "out_format", type=click.Choice(["table", "csv", "json", "text"]), default="table",
              show_default=True, help="text: the chat message sent to coordinators.")
@click.option("--lang", type=click.Choice(["vi", "en"]), default=None, help="Language of the text format.")
@click.option("--at", "at", default=None, hidden=True, help="Compute as of this ISO time (tests, replays).")
@_DB_OPTION
@click.pass_context
def status(ctx: click.Context, survey_id: str | None, out_format: str, lang: str | None, at: str | None,
           db: Path | None) -> None:
    """Fieldwork per group and stratum: sampled, invited, contacted, started, completed,
    AAPOR response rates (RR1, RR2, COOP1), quota fill, pace, days left and projection.

    Pace is completes per day over the last 7 days; projection = completed + pace × days
    left; strata projected below their quota target (or the expected completes of their
    sample) are lagging and shown in red.
    """

    from exporters.progress import format_status_text, status_csv, status_json, survey_status

    db = _survey_db(ctx, db)
    now = _at(ctx, at)

    async def run():
        async with await open_storage(db) as storage:
            project = await _project(storage, survey_id)
            return project, await survey_status(storage, project, now)

    project, report = asyncio.run(run())
    if out_format == "json":
        click.echo(status_json(report))
        return
    if out_format == "csv":
        click.echo(status_csv(report), nl=False)
        return
    if out_format == "text":
        click.echo(format_status_text(report, project, lang or ctx.obj.language))
        return
    state = "closed" if report.closed else f"{report.days_left} day(s) left"
    table = Table(title=f"{report.title} — {state} (closes {report.closes}); pace over {report.pace_days} day(s)")
    for column in ("group", "stratum", "n", "sampled", "invited", "contacted", "started", "completed", "RR1",
                   "RR2", "COOP1", "target", "quota fill", "pace/day", "projection"):
        table.add_column(column, justify="left" if column in ("group", "stratum") else "right")

    def pct(value):
        return "–" if value is None else f"{value:.0%}"

    for row in report.rows:
        total = "*" in (row.group, row.stratum)
        style = "bold red" if row.lagging else ("bold" if total else None)
        within = row.stratum.split("/", 1)[1] if "/" in row.stratum else ("" if row.stratum == "*" else "—")
        table.add_row(row.group if row.group != "*" else "total", within,
                      str(row.allocated), str(row.sampled), str(row.invited), str(row.contacted), str(row.started),
                      str(row.completed), pct(row.rr1), pct(row.rr2), pct(row.coop1),
                      f"{row.target}{'' if row.quota is not None else '*'}", pct(row.quota_fill),
                      f"{row.pace:.1f}", f"{row.projection:.0f}", style=style, end_section=row.stratum == "*")
    _wide().print(table)
    console.print("[dim]target* = expected completes (no quota); red = lagging: projected below target[/]")


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
    (Telegram and Zalo bots cannot write first), with name, phone, group and stratum, so the
    coordinator can remind them by letter, SMS or phone. The file holds PERSONAL DATA (Decree
    13/2023/NĐ-CP): keep it on the office computer and delete it after use.

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
            count = asyncio.run(listing())
        except OSError as error:
            _refuse(f"cannot write {out}: {error}")
        console.print(f"Wrote {out}: {count} person(s) invited but never reached in a chat.")
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


# -- statistics: weights, estimates, index scores ----------------------------------------------


def _statistics(action):
    """Run a statistics step, turning a design or data problem into a clear message and exit 1."""
    from exporters.design import DesignError
    from surveys.scoring import ScoringError

    try:
        return action()
    except (DesignError, ScoringError, OSError) as error:
        errors.print(f"[bold red]✗[/] {escape(str(error))}", markup=True)
        sys.exit(EXIT_REFUSED)


def _DATA(command):
    """--data FILE, or --db PATH [--form ID] to read the answers straight from the survey database."""
    command = click.option("--form", "form_id", default=None, help="With --db: only this questionnaire.")(command)
    command = click.option("--db", type=DATABASE,
                           help="Read the answers from the survey database instead (one row per session, "
                                "with the sample's strata, probabilities and weights).")(command)
    return click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        help="A table: CSV, XLSX, Parquet or SPSS .sav (e.g. from khaosat export, or paper "
                             "forms typed into Excel).")(command)


def _table(data: Path | None, db: Path | None, form_id: str | None):
    """The table to analyse: a file as given, or the wide export of the database (pseudonymous)."""
    if (data is None) == (db is None):
        raise click.UsageError("give either --data FILE or --db PATH")
    if data is not None:
        return data
    _check_database(db)

    async def migrate():
        async with await open_storage(db):  # an older database is brought up to date first
            pass

    import khaosat

    asyncio.run(migrate())
    return khaosat.read_answers(db, form_id)
_DESIGN = click.option("--design", "design_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                       help="The design file (see exporters/design.example.toml); default: equal weights, "
                            "simple random sampling.")


@main.command("weight")
@_DATA
@click.option("--design", "design_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The design file (see exporters/design.example.toml).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The data with its weights.")
def weight(data: Path | None, db: Path | None, form_id: str | None, design_path: Path, out: Path) -> None:
    """Compute weights: base weights, nonresponse adjustment, post-stratification or raking,
    linear calibration and trimming, as the design file says; prints a weight summary."""
    from exporters.weighting import run_weight

    table = _table(data, db, form_id)
    summary = _statistics(lambda: run_weight(table, design_path, out))
    labels = {"n": "rows", "min": "min", "q1": "1st quartile", "median": "median", "q3": "3rd quartile",
              "max": "max", "mean": "mean", "sum": "sum", "deff": "design effect (Kish)",
              "n_eff": "effective sample size"}
    table = Table(title="Weight summary")
    for column in ("", "base weights", "final weights"):
        table.add_column(column, justify="left" if not column else "right")
    for key, label in labels.items():
        table.add_row(label, *(f"{summary[which][key]:,.4f}" if key != "n" else str(summary[which][key])
                               for which in ("base", "weights")))
    console.print(table)
    for step in summary["steps"]:
        console.print(f"{step['method']}: {step['iterations']} iteration(s), "
                      f"{'converged' if step['converged'] else '[bold red]did not converge[/]'}, "
                      f"largest margin error {step['max_margin_error']:.3g}")
    console.print(f"Wrote {out} (weights in column '{summary['weight_column']}')")


@main.command("estimate")
@_DATA
@_DESIGN
@click.option("--mean", "means", multiple=True, help="A column to average (a text column: one proportion per category).")
@click.option("--total", "totals", multiple=True, help="A column to total.")
@click.option("--proportion", "proportions", multiple=True,
              help="Proportions of each value of a column, also a numerically coded one (a 1–5 scale).")
@click.option("--ratio", "ratios", multiple=True,
              help="A ratio of two columns' totals, NUM/DEN (R's svyratio), e.g. on_time/procedures.")
@click.option("--by", "by", multiple=True,
              help="Also estimate within each value of this column (domains); give it twice for "
                   "cross-classified domains (e.g. --by unit --by gioi_tinh).")
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.95,
              show_default=True, help="Confidence level of the intervals.")
@click.option("--ci", "interval", type=click.Choice(["normal", "t", "logit", "xlogit", "asin", "beta", "mean"]),
              default="normal", show_default=True,
              help="Intervals: normal (R's confint), t with the design's degrees of freedom (PSUs − strata), "
                   "or for proportions a method of R's svyciprop (logit, xlogit, asin, beta, mean; t for the "
                   "other statistics).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="CSV to write.")
def estimate(data: Path | None, db: Path | None, form_id: str | None, design_path: Path | None,
             means: tuple[str, ...], totals: tuple[str, ...], proportions: tuple[str, ...],
             ratios: tuple[str, ...], by: tuple[str, ...],
             level: float, interval: str, out: Path) -> None:
    """Means, proportions and totals with linearised standard errors (as R's survey package):
    one row per statistic with the columns statistic, variable, domain, estimate, se."""
    from exporters.estimation import run_estimate

    if not means and not totals and not ratios and not proportions:
        raise click.UsageError("ask for at least one --mean, --total, --proportion or --ratio")
    if design_path is None:
        scratch = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        scratch.write("[design]\n")
        scratch.close()
        design_path = Path(scratch.name)
    table = _table(data, db, form_id)
    _statistics(lambda: run_estimate(table, design_path, list(means), list(totals), list(by), out, level=level,
                                     interval=interval, ratios=list(ratios), proportions_of=list(proportions)))
    console.print(f"Wrote {out}")


@main.command("score")
@_DATA
@_DESIGN
@click.option("--rules", "rules_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The year's scoring rules (see surveys/templates/scoring_*.example.toml).")
@click.option("--unit", required=True, help="The column naming the rated unit (province, department, commune).")
@click.option("--group", default=None, help="The column naming the respondent group, when the rules weight groups.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="CSV or XLSX to write.")
def score(data: Path | None, db: Path | None, form_id: str | None, design_path: Path | None, rules_path: Path,
          unit: str, group: str | None, out: Path) -> None:
    """The survey share of the index per rated unit: points per sub-criterion, criterion, domain
    and total with standard errors, confidence intervals and ranks; SIPAS-style satisfaction."""
    from exporters.scores import run_score

    table = _table(data, db, form_id)
    frame = _statistics(lambda: run_score(table, rules_path, out, unit=unit, group=group, design_path=design_path))
    totals = frame[frame.level == "total"].sort_values("rank")
    table = Table(title="Total points by unit")
    for column in ("rank", "unit", "points", "se"):
        table.add_column(column, justify="left" if column == "unit" else "right")
    for row in totals.itertuples():
        table.add_row(str(row.rank), str(row.unit), f"{row.value:.2f} / {row.maximum:.2f}", f"{row.se:.3f}")
    console.print(table)
    console.print(f"Wrote {out} ({len(frame)} statistics)")


# -- report ----------------------------------------------------------------------------------


@main.command("report")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.html and report.xlsx.")
@_DB_OPTION
@_SURVEY_OPTION
@click.option("--scores", "scores_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The table of khaosat score (CSV or XLSX).")
@click.option("--weights", "weights_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A table with a weight column, e.g. the output of khaosat weight.")
@click.option("--weight-column", default=None, help="The weight column of --weights (default: weight).")
@click.option("--lang", type=click.Choice(["vi", "en"]), default=None, help="Language of the report (default: vi).")
@click.option("--at", "at", default=None, hidden=True, help="Compute as of this ISO time (tests, replays).")
@click.pass_context
def report(ctx: click.Context, out: Path, db: Path | None, survey_id: str | None, scores_path: Path | None,
           weights_path: Path | None, weight_column: str | None, lang: str | None, at: str | None) -> None:
    """Write report.html (one self-contained page with charts) and report.xlsx: fieldwork per
    stratum from the database (response rates, quota fill, lagging strata), the weight
    distribution, and index scores by unit with confidence intervals and domain breakdowns.

    Each part needs its input (--db or --config, --weights, --scores); missing ones are skipped.
    """

    from exporters.report import SKIP_TEXT
    from fieldwork.data import report as write_report

    if weight_column is not None and weights_path is None:
        raise click.UsageError("--weight-column needs --weights FILE")
    db = _database(ctx, db)
    if survey_id is not None and db is None:
        raise click.UsageError("--survey needs --db PATH (or --config with its storage.path)")
    if db is None and scores_path is None and weights_path is None:
        _refuse("nothing to report: give --db (or --config), --scores FILE or --weights FILE")
    now = _at(ctx, at)
    options = dict(scores_path=scores_path, weights_path=weights_path, weight_column=weight_column,
                   language=lang or "vi", now=now, console=console)

    async def run():
        if db is None:
            return await write_report(out, **options)
        try:
            async with await open_storage(db) as storage:
                project = await _project(storage, survey_id)
                return await write_report(out, storage=storage, project=project, **options)
        except StorageError as error:
            _refuse(f"cannot read the database {db}: {error}")

    inputs, result = asyncio.run(run())
    for key in inputs.skipped:
        console.print(f"[yellow]–[/] skipped {SKIP_TEXT[key]['en']}")
    parts = ", ".join(section.key for section in result.sections) or "no part"
    console.print(f"[bold green]✓[/] Wrote {out / 'report.html'} and {out / 'report.xlsx'} ({parts}; "
                  f"{len(result.charts())} chart(s))")


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
def demo(out: Path, respondents: int, seed: int, serve: bool, port: int) -> None:
    """Run the Telegram bot against a local Bot API emulator with simulated people, and summarise.

    A sample is loaded and invited; simulated people open their links and answer the bundled
    example questionnaires (some stop half-way, go back, or press old buttons). Needs no token
    and no network: the emulator listens on 127.0.0.1 and the data is one SQLite file.
    """
    from bot.demo import run_demo

    summary = asyncio.run(run_demo(out, respondents, seed, console))
    if serve:
        from bot.cli_console import serve_demo

        serve_demo(summary, port)


from bot.cli_console import serve, user  # noqa: E402 — the console's commands, in their own module

main.add_command(user)
main.add_command(serve)

if __name__ == "__main__":
    main()
