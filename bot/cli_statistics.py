"""``khaosat weight``, ``estimate``, ``score`` and ``report``: weights, estimates with their
standard errors, the index's survey share per rated unit, and the fieldwork report."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from bot.cli_common import (EXIT_REFUSED, _DB_OPTION, _SURVEY_OPTION, _at, _check_database, _database, _project, _refuse,
                     console, errors)
from bot.cli_database import DATABASE
from storage import StorageError, open_storage


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


@click.command("weight")
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


@click.command("estimate")
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


@click.command("score")
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


@click.command("report")
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
