"""`khaosat report`: one XLSX workbook and one self-contained HTML page with charts.

Parts, each skipped (with a line saying so) when its input is missing:

* **fieldwork** — from the database via `exporters.progress.survey_status`: a table per group
  and stratum (sampled … completed, AAPOR RR1/RR2/COOP1, quota, target, fill, pace,
  projection, lagging) and bar charts of the response rates and of the quota fill per stratum,
  lagging strata in red;
* **weights** — from a table with a weight column (e.g. the output of `khaosat weight`): a
  histogram and `exporters.weighting.weight_summary` (quartiles, Kish's design effect,
  effective n). Rows with weight 0 (nonrespondents after a nonresponse adjustment) and rows
  without a weight are left out, with a note;
* **scores** — from the CSV/XLSX of `khaosat score`: total points per unit with 95 % confidence
  intervals sorted by rank, points per domain (stacked bars and a table, maxima in the
  headers), and SIPAS satisfaction per aspect when the file has such rows.

Charts are drawn with matplotlib's Agg canvas (no display, no pyplot state) in DejaVu Sans,
which matplotlib ships and which has every Vietnamese letter. The HTML embeds them as
``data:image/png;base64`` URIs and has its stylesheet inline: one file, no network. The
workbook has one sheet per table (header row bold and frozen, number formats) and the same
charts on a ``charts`` sheet.

Only pseudonymous ids and aggregate numbers appear: no names, phones or addresses of people.

The report is split by responsibility: ``content`` (texts and the sections/tables/charts
model), ``inputs`` (reading scores and weights), ``charts`` (matplotlib), ``sections`` (the
parts above), ``page`` (HTML) and ``workbook`` (XLSX); this module runs them in order and
re-exports their public names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from exporters.report.charts import (
    BLUE, DPI, FONT, GREY, LIGHT_BLUE, LIGHT_RED, PALETTE, RED, chart_domains, chart_fill, chart_rates,
    chart_satisfaction, chart_totals, chart_weights,
)
from exporters.report.content import (
    FORMATS, LANGUAGES, SKIP_TEXT, TEXT, Chart, Column, Report, ReportInputs, Section, Table, t,
)
from exporters.report.inputs import SCORE_COLUMNS, load_scores, load_weights
from exporters.report.page import CSS, render_html
from exporters.report.sections import (
    fieldwork_section, scores_sections, stratum_label, weights_section,
)
from exporters.report.workbook import write_xlsx
from storage.atomic_files import write_text

__all__ = [
    "BLUE", "DPI", "FONT", "GREY", "LIGHT_BLUE", "LIGHT_RED", "PALETTE", "RED", "chart_domains",
    "chart_fill", "chart_rates", "chart_satisfaction", "chart_totals", "chart_weights", "FORMATS",
    "LANGUAGES", "SKIP_TEXT", "TEXT", "Chart", "Column", "Report", "ReportInputs", "Section",
    "Table", "t", "SCORE_COLUMNS", "load_scores", "load_weights", "CSS", "render_html",
    "fieldwork_section", "scores_sections", "stratum_label", "weights_section", "write_xlsx",
    "build_report", "report_steps",
]


# -- the whole report -----------------------------------------------------------------------------


def report_steps(inputs: ReportInputs, out_dir: Path) -> tuple[Report, list[tuple[str, Callable[[], None]]]]:
    """The report and its steps (label, action), run in order; the CLI shows them as a progress bar."""
    report = Report(inputs)
    lang = inputs.language
    steps: list[tuple[str, Callable[[], None]]] = []
    if inputs.status is not None:
        steps.append((t("fieldwork", lang),
                      lambda: report.sections.append(fieldwork_section(inputs.status, inputs.project, lang))))
    if inputs.weights is not None:
        steps.append((t("weights", lang), lambda: report.sections.append(
            weights_section(inputs.weights, inputs.weights_dropped, inputs.weight_column, inputs.weights_source,
                            lang))))
    if inputs.scores is not None:
        steps.append((t("scores", lang), lambda: report.sections.extend(
            scores_sections(inputs.scores, inputs.project, inputs.scores_source, lang))))

    def html_step():
        write_text(out_dir / "report.html", render_html(report))

    steps.append(("report.html", html_step))
    steps.append(("report.xlsx", lambda: write_xlsx(report, out_dir / "report.xlsx")))
    return report, steps


def build_report(inputs: ReportInputs, out_dir: str | Path, console=None) -> Report:
    """Write report.html and report.xlsx into ``out_dir``; with a rich console, show a progress bar."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if inputs.scores is not None and "satisfaction" not in inputs.skipped \
            and not (inputs.scores["level"] == "aspect").any():
        inputs.skipped.append("satisfaction")
    report, steps = report_steps(inputs, out_dir)
    if console is None:
        for _, action in steps:
            action()
        return report
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("report", total=len(steps))
        for label, action in steps:
            progress.update(task, description=label)
            action()
            progress.advance(task)
    return report
