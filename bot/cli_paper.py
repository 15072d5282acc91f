"""`khaosat paper print`: printable paper questionnaires, one per sampled person with their code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from bot.cli_database import DATABASE


@click.group("paper")
def paper() -> None:
    """Paper questionnaires: print them; the returned ones are typed in the console (Paper entry)."""


@paper.command("print")
@click.option("--db", type=DATABASE, help="The survey database.")
@click.option("--survey", "survey_id", help="The survey project (default: the only one stored).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for the forms.")
@click.option("--unit", "units", multiple=True, help="Only people of this administrative unit (repeatable).")
@click.option("--reissue", is_flag=True, help="New codes for everyone not yet reached; old codes stop working.")
@click.option("--no-pdf", is_flag=True, help="Write the printable HTML only (no headless Chromium run).")
@click.option("--blocks", type=click.IntRange(1, 50), default=5, show_default=True,
              help="Blank blocks for a repeat (roster) of unknown size at the top level.")
@click.option("--nested-blocks", type=click.IntRange(1, 50), default=3, show_default=True,
              help="Blank blocks for a repeat of unknown size inside another repeat's block.")
@click.pass_context
def print_paper(ctx: click.Context, db: Path | None, survey_id: str | None, out: Path, units: tuple[str, ...],
                reissue: bool, no_pdf: bool, blocks: int, nested_blocks: int) -> None:
    """Print a paper questionnaire for every sampled person not yet reached.

    Each copy carries the person's code (the personal code letters carry, so the person may also
    answer in chat with it) and its QR code, so a returned form identifies its respondent: type
    or scan the code on the console's Paper entry page. Vietnamese first with English beneath,
    choice codes beside every choice, skip instructions in words, required questions marked.

    Writes paper-forms.html (one copy per page), paper-forms.pdf (with a headless Chromium) and
    paper-forms.csv (who gets which code: PERSONAL DATA). Codes are stored only as hashes, so
    earlier files in the folder are kept: a later run writes paper-forms-2.*, then -3 …

    A repeat group (household roster) prints one block per instance: a count that is a number
    gives that many blocks; a count read from an answer gives as many as that answer's constraint
    allows (". <= 8": 8, at most 12), else --blocks (--nested-blocks inside another repeat); so
    does a repeat without a count ("add another?").
    """
    from bot import clock
    from bot.cli_common import _project, _survey_db, console
    from fieldwork import Refused
    from fieldwork.invitations import check_writable
    from fieldwork.paper import print_forms
    from fieldwork.paper_repeats import Blocks
    from storage import open_storage

    db = _survey_db(ctx, db)
    check_writable(out)

    async def run():
        async with await open_storage(db) as storage:
            project = await _project(storage, survey_id)
            unknown = [u for u in units if u not in project.units]
            if unknown:
                raise Refused(f"--unit: no unit {', '.join(unknown)} in survey {project.id}")
            return await print_forms(storage, project, out, clock.now(ctx.obj.zone), units=list(units) or None,
                                     reissue=reissue, pdf=not no_pdf, blocks=Blocks(blocks, nested_blocks))

    printed = asyncio.run(run())
    files = ", ".join(str(path) for path in printed.files.values())
    console.print(f"Printed {printed.count} paper form(s): {files}")
    if not no_pdf and "pdf" not in printed.files:
        console.print("No PDF: no headless Chromium found (apt-get install chromium); print the HTML instead.")


def print_modes(report, out) -> None:
    """`khaosat status`'s table of response rates by mode (``exporters.modes``), when anyone answered."""
    from rich.table import Table

    rows = report.modes()
    if not rows:
        return
    table = Table(title="By mode: completes, and RR1's share (completes in the mode / the eligible sample)")
    for column in ("mode", "completed", "partial", "refused", "RR1 share"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for row in rows:
        table.add_row(row.mode, str(row.completed), str(row.partial), str(row.refused),
                      "–" if row.rr1 is None else f"{row.rr1:.1%}")
    out.print(table)
