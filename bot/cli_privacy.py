"""`khaosat purge` (retention of contact data) and `khaosat privacy` (data subjects' requests),
under the Law on Personal Data Protection No. 91/2025/QH15 and Decree 356/2025/NĐ-CP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from bot.cli_database import DATABASE

_WHAT = (("names", "names"), ("phones", "phones"), ("frame_people", "frame rows with name/phone"),
         ("chats", "chat links (chat ids)"), ("codes", "invitation codes"), ("accounts", "messenger account ids"),
         ("link_attempts", "link attempts"),
         ("messages", "sent messages' chat ids and texts"), ("media", "photos, recordings and files"))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(key, 0)} {label}" for key, label in _WHAT)


@click.command("purge")
@click.option("--db", type=DATABASE, help="The survey database (default: the configured one).")
@click.option("--survey", "survey_id", help="Only this survey (default: every stored survey).")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.option("--at", hidden=True, help="Pretend it is this ISO time (tests).")
@click.pass_context
def purge(ctx: click.Context, db: Path | None, survey_id: str | None, dry_run: bool, at: str | None) -> None:
    """Delete the contact data of surveys whose retention has run out.

    `[privacy] retention_days` after a survey's close date (default in
    surveys/templates/privacy.default.toml), its names, phones, chat ids and invitation codes
    are deleted; answers stay, under their pseudonyms. Without --survey, media files no answer
    refers to (files the questionnaire refused) are deleted two days after they came. `khaosat
    run` does the same pass hourly; running it again deletes nothing more.
    """
    from bot.cli_common import _at, _refuse, _survey_db, console
    from fieldwork.privacy import retention_pass, unreferenced_media_pass
    from storage import open_storage

    db = _survey_db(ctx, db)
    now = _at(ctx, at)

    async def run():
        async with await open_storage(db) as storage:
            outcomes = await retention_pass(storage, now, dry_run=dry_run, survey_id=survey_id)
            # Not a survey's retention: files of any survey that no answer refers to.
            unreferenced = None if survey_id is not None else \
                await unreferenced_media_pass(storage, now, dry_run=dry_run)
            return outcomes, unreferenced

    outcomes, unreferenced = asyncio.run(run())
    if survey_id is not None and not outcomes:
        _refuse(f"--survey {survey_id}: no such survey in {db}")
    for outcome in outcomes:
        if not outcome.due:
            console.print(f"{outcome.survey_id}: kept until {outcome.purge_from:%d/%m/%Y} (retention not over)")
        elif dry_run:
            console.print(f"{outcome.survey_id}: would delete {_counts(outcome.counts)}")
        else:
            console.print(f"{outcome.survey_id}: deleted {_counts(outcome.counts)}")
    if unreferenced is not None:
        console.print(f"Media files no answer refers to (refused by the questionnaire), older than 2 days: "
                      f"{'would delete' if dry_run else 'deleted'} {unreferenced}")
    if dry_run:
        console.print("Dry run: nothing was deleted.")


@click.group("privacy")
def privacy() -> None:
    """Respondents' requests to withdraw consent and delete their data (made in the chat)."""


@privacy.command("requests")
@click.option("--db", type=DATABASE, help="The survey database (default: the configured one).")
@click.option("--survey", "survey_id", help="Only this survey's requests.")
@click.pass_context
def requests(ctx: click.Context, db: Path | None, survey_id: str | None) -> None:
    """List requests with their legal deadlines (Decree 356/2025/NĐ-CP)."""
    from bot.cli_common import _refuse, _survey_db, console
    from fieldwork import Refused
    from fieldwork.surveys import find_project
    from storage import open_storage

    db = _survey_db(ctx, db)

    async def run():
        async with await open_storage(db) as storage:
            if survey_id is None:
                found = await storage.rights_requests()
            else:
                project = await find_project(storage, survey_id)
                found = await storage.rights_requests(
                    survey_id=project.id, form_ids=sorted({g.form_id for g in project.groups.values()}))
            return [(request, (await storage.get_respondent(request.respondent_id)).pseudonym) for request in found]

    try:
        found = asyncio.run(run())
    except Refused as error:
        _refuse(str(error))
    if not found:
        console.print("No requests.")
    for request, pseudonym in found:
        console.print(f"{request.id}\t{pseudonym}\t{request.status}\topened {request.opened_at}\t"
                      f"acknowledge by {request.acknowledge_by}\thandle by {request.handle_by}")


@privacy.command("fulfil")
@click.argument("request_id", type=int)
@click.option("--db", type=DATABASE, help="The survey database (default: the configured one).")
@click.pass_context
def fulfil(ctx: click.Context, request_id: int, db: Path | None) -> None:
    """Erase the person of request REQUEST_ID: answers, name, phone, codes; the bot then tells them."""
    from bot import clock
    from bot.cli_common import _refuse, _survey_db, console
    from fieldwork.privacy import PrivacyError, fulfil_request
    from storage import open_storage

    db = _survey_db(ctx, db)

    async def run():
        async with await open_storage(db) as storage:
            return await fulfil_request(storage, request_id, "cli", clock.now(ctx.obj.zone))

    try:
        counts = asyncio.run(run())
    except PrivacyError as error:
        _refuse(str(error))
    console.print(f"Request {request_id} fulfilled: {counts['sessions']} session(s), {counts['answers']} answer(s), "
                  f"{_counts(counts)} deleted. The bot tells the person and then forgets their chat.")
