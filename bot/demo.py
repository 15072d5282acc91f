"""`khaosat demo`: simulated respondents take the bundled templates through the console channel.

Everything is local: a SQLite file, the bundled questionnaires, an accelerated clock. The
first respondent's conversation is printed in full so a newcomer sees what a respondent sees.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bot.clock import VIETNAM
from bot.console import ConsoleChannel
from bot.conversations import Conversations
from bot.simulate import SimulatedRespondent
from exporters.table import session_table, write_csv
from storage import open_storage
from surveys.engine import Status
from surveys.templates import bundled_templates
from surveys.xlsform import load_questionnaire


@dataclass
class SimulatedClock:
    """Each reading moves time on by a few seconds to a minute, as a person typing would."""

    now: dt.datetime
    rng: random.Random

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=self.rng.randint(3, 60))
        return self.now


async def run_demo(out_dir: Path, respondents: int, seed: int, console: Console) -> dict[str, Counter]:
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / "demo.sqlite"
    for leftover in out_dir.glob("demo.sqlite*"):
        leftover.unlink()
    rng = random.Random(seed)
    clock = SimulatedClock(dt.datetime(2026, 11, 2, 8, 0, tzinfo=VIETNAM), rng)
    async with await open_storage(db_path) as storage:
        conversations = Conversations(storage)
        forms = []
        for path in bundled_templates():
            form = load_questionnaire(path)
            await conversations.register(form, path.read_bytes(), path.name, clock())
            forms.append(form)
        console.print(f"[bold]khaosat demo[/]: {respondents} simulated respondents, "
                      f"{len(forms)} bundled example questionnaires, database {db_path}")
        console.rule("The first respondent's conversation")
        statuses: dict[str, Counter] = {form.form_id: Counter() for form in forms}
        quiet = Console(file=io.StringIO(), width=100)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("Respondents answering", total=respondents)
            for number in range(respondents):
                form = forms[number % len(forms)]
                language = "en" if rng.random() < 0.1 else "vi"
                person = SimulatedRespondent(form, rng, today=clock.now.date())
                shown = console if number == 0 else quiet
                channel = ConsoleChannel(conversations, shown, person.reply, clock,
                                         echo_input=True, show_names=False)
                status = await channel.take(form, f"demo:{number:04d}", language)
                if status is Status.PAUSED and rng.random() < 0.7:
                    clock.now += dt.timedelta(hours=rng.randint(2, 30))  # comes back later
                    status = await channel.take(form, f"demo:{number:04d}", language)
                statuses[form.form_id][status.value] += 1
                if number == 0:
                    console.rule("The other respondents")
                progress.advance(task)
        table = await session_table(conversations)
        export = out_dir / "answers.csv"
        write_csv(table, export)
    _print_summary(console, statuses, table.columns, len(table.rows), export, db_path)
    return statuses


def _print_summary(console: Console, statuses: dict[str, Counter], columns, rows: int,
                   export: Path, db_path: Path) -> None:
    summary = Table(title="Sessions by questionnaire and status")
    summary.add_column("questionnaire")
    for status in ("completed", "paused", "active", "refused"):
        summary.add_column(status, justify="right")
    summary.add_column("total", justify="right")
    for form_id, counter in statuses.items():
        summary.add_row(form_id, *(str(counter[s]) for s in ("completed", "paused", "active", "refused")),
                        str(sum(counter.values())))
    console.print(summary)
    console.print(f"Export: {export} ({rows} rows × {len(columns)} columns)")
    console.print(f"Database: {db_path}  — try it yourself: khaosat try "
                  f"{bundled_templates()[0]} --db {db_path}")
