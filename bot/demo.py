"""`khaosat demo`: the real Telegram and Zalo bots against local emulators, with simulated people.

Everything is local: a SQLite file, the bundled questionnaires, the two emulators on 127.0.0.1.
A sample is loaded as a coordinator would, everyone gets a personal invitation, and a few
hundred simulated people answer — half on Telegram (buttons), half on Zalo (typed numbers);
some stop half-way, some go back, some press buttons of questions already answered. The first
person's chat on each channel is printed in full.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bot import clock as clocks
from bot.config import BotConfig, Config
from bot.invitations import code_hash, new_link_code, new_typed_code
from bot.outbox import Pace
from bot.run import RunningBot, run
from bot.simulate import TelegramPerson, Transcript, ZaloPerson
from bot.telegram.emulator import BotApiEmulator, Limits
from bot.zalo.emulator import ZaloBotApiEmulator, ZaloLimits
from exporters.progress import progress
from exporters.table import session_table, write_csv
from bot.conversations import Conversations
from storage import open_storage
from surveys.templates import bundled_templates
from surveys.xlsform import load_questionnaire

TOKEN = "700000:DEMO-local-emulator-token"
ZALO_TOKEN = "710000:DEMO-local-zalo-token"
STRATA = ("xa-hai-lang", "xa-cam-lo", "phuong-dong-ha")
#: The demo runs a few hundred conversations in seconds, so it lifts the emulator's limits;
#: the real limits are enforced in the tests and measured in bench/outbox_rate.py.
DEMO_LIMITS = Limits(per_bot_per_second=5000, per_chat_per_second=100, per_chat_burst=100)
DEMO_ZALO_LIMITS = ZaloLimits(per_bot_per_second=5000, per_chat_per_second=100, per_chat_burst=100)
DEMO_PACE = Pace(per_second=4000, per_chat_per_second=90, per_chat_burst=90, max_in_flight=64)


async def run_demo(out_dir: Path, respondents: int, seed: int, console: Console) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / "demo.sqlite"
    for leftover in out_dir.glob("demo.sqlite*"):
        leftover.unlink()
    rng = random.Random(seed)
    forms = [load_questionnaire(path) for path in bundled_templates()]
    emulator = BotApiEmulator(limits=DEMO_LIMITS)
    base = await emulator.start()
    telegram = emulator.add_bot(TOKEN, "khaosat_demo_bot")
    # Zalo delivers some messages twice; the demo lets it, as the real platform does.
    zalo_emulator = ZaloBotApiEmulator(limits=DEMO_ZALO_LIMITS, duplicate_probability=0.02, seed=seed)
    zalo_base = await zalo_emulator.start()
    zalo = zalo_emulator.add_bot(ZALO_TOKEN, "Bot Khảo sát CCHC")
    codes = await _draw_sample(db_path, forms, respondents, rng)
    forms_paths = tuple(bundled_templates())
    config = Config(database=db_path, source=out_dir / "demo.toml", bots=(
        BotConfig(channel="telegram", name="demo", token=TOKEN, api_base=base, forms=forms_paths,
                  coordinators=(1,), pace=DEMO_PACE),
        BotConfig(channel="zalo", name="demo-zalo", token=ZALO_TOKEN, api_base=zalo_base, forms=forms_paths,
                  pace=DEMO_PACE)))
    stop, ready = asyncio.Event(), asyncio.Event()
    running: list[RunningBot] = []
    bots_task = asyncio.create_task(run(config, stop, started=lambda bots: (running.extend(bots), ready.set())))
    await ready.wait()
    console.print(f"[bold]khaosat demo[/]: {respondents} simulated people answer on Telegram ({base}) and "
                  f"Zalo ({zalo_base}), both local emulators; bundled example questionnaires; database {db_path}")
    outcomes: dict[str, int] = {}
    try:
        transcripts = {"Telegram": Transcript(), "Zalo": Transcript()}
        people = []
        for number, (link_code, typed_code) in enumerate(codes):
            form, person_rng = forms[number % len(forms)], random.Random(rng.random())
            if number % 2 == 0:
                people.append(TelegramPerson(telegram.user(10_000 + number, first_name=f"Người {number}"), form,
                                             link_code, person_rng, transcripts["Telegram"] if number == 0 else None))
            else:
                people.append(ZaloPerson(zalo.user(display_name=f"Người {number}"), form, typed_code, person_rng,
                                         transcripts["Zalo"] if number == 1 else None))
        slots = asyncio.Semaphore(60)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("People answering", total=len(people))

            async def one(person: TelegramPerson) -> None:
                async with slots:
                    outcome = await person.take_part()
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                bar.advance(task)

            await asyncio.gather(*(one(person) for person in people))
        for channel, transcript in transcripts.items():
            console.rule(f"The first person's chat on {channel}")
            console.print(transcript.text(), markup=False, highlight=False)
        await _settle(running)
    finally:
        stop.set()
        await bots_task
        await emulator.stop()
        await zalo_emulator.stop()
    return await _summarise(db_path, out_dir, console, telegram.stats, zalo.stats, outcomes,
                            emulator.violations + zalo_emulator.violations)


async def _draw_sample(db_path: Path, forms, respondents: int, rng: random.Random) -> list[tuple[str, str]]:
    """Respondents as a sample file would give them, each with a link code and a typed code."""
    codes = []
    at = clocks.now()
    async with await open_storage(db_path) as storage:
        conversations = Conversations(storage)
        for path, form in zip(bundled_templates(), forms):
            await conversations.register(form, path.read_bytes(), path.name, at)
        for number in range(respondents):
            form = forms[number % len(forms)]
            respondent = await storage.add_respondent(f"demo-{number:04d}", form_id=form.form_id,
                                                      stratum=rng.choice(STRATA), at=at.isoformat())
            link, typed = new_link_code(), new_typed_code()
            await storage.issue_invitation(respondent.id, "link", code_hash(link), at.isoformat())
            await storage.issue_invitation(respondent.id, "typed", code_hash(typed), at.isoformat())
            await storage.set_disposition(respondent.id, "invited", at.isoformat(), key=f"demo-invite-{number}")
            codes.append((link, typed))
    return codes


async def _settle(running: list[RunningBot]) -> None:
    storage = running[0].surveys.storage
    for _ in range(500):
        counts = await storage.outbox_counts()
        if counts["pending"] == 0 and counts["sending"] == 0:
            return
        await asyncio.sleep(0.02)


async def _summarise(db_path: Path, out_dir: Path, console: Console, stats, zalo_stats, outcomes: dict,
                     violations) -> dict:
    async with await open_storage(db_path) as storage:
        rows = await progress(storage)
        table = await session_table(Conversations(storage))
        outbox = await storage.outbox_counts()
    export = out_dir / "answers.csv"
    write_csv(table, export)
    view = Table(title="Fieldwork by questionnaire and stratum")
    for column in ("questionnaire", "stratum", "sampled", "reached", "started", "completed", "refused",
                   "response rate"):
        view.add_column(column, justify="left" if column in ("questionnaire", "stratum") else "right")
    for row in rows:
        view.add_row(row.form_id, row.stratum, str(row.sampled), str(row.reached), str(row.started),
                     str(row.completed), str(row.refused), f"{row.response_rate:.0%}")
    console.print(view, width=max(console.width, 110))
    behaviour = ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items()))
    console.print(f"Simulated people: {behaviour}")
    console.print(f"Bot → Telegram: {stats.sent} messages, {stats.edits} edits, {stats.callback_answers} button "
                  f"answers, {stats.too_many_requests} × 429")
    console.print(f"Bot → Zalo: {zalo_stats.sent} messages, {zalo_stats.duplicates} messages delivered twice by the "
                  f"platform (each handled once), {zalo_stats.too_many_requests} × 429")
    console.print(f"Outbox {dict(outbox)}; Bot API request violations: {len(violations)}")
    console.print(f"Export: {export} ({len(table.rows)} sessions × {len(table.columns)} columns)")
    console.print(f"Database: {db_path}  — take a questionnaire yourself: "
                  f"khaosat try {bundled_templates()[-1]} --db {db_path}")
    return {"progress": rows, "outcomes": outcomes, "violations": list(violations), "outbox": outbox}
