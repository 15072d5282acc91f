"""``khaosat survey``, ``frame``, ``sample`` and ``status``: survey projects, sample frames,
samples and fieldwork progress from the command line (the console runs the same ``fieldwork``
operations)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from rich.table import Table

from bot import clock
from bot.cli_common import _DB_OPTION, _SURVEY_OPTION, _at, _project, _survey_db, _wide, console, errors
from storage import open_storage


@click.group("survey")
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


@click.group("frame")
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


@click.group("sample")
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


@click.command("status")
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
    from bot.cli_paper import print_modes

    print_modes(report, _wide())
