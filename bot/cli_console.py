"""`khaosat user add|list|disable|passwd` and `khaosat serve`: the coordinator console's commands.

Registered on the main group at the end of bot/cli.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from bot import clock
from bot import cli_common
from bot.cli_common import _DB_OPTION, _survey_db
from bot.config import Config, ConsoleConfig

def _refuse(message: str) -> None:
    cli_common._refuse(message)


def _print(text: str) -> None:
    cli_common.console.print(text)


ROLE_CHOICE = click.Choice(["admin", "coordinator", "analyst", "viewer"])


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


async def _with_stores(db: Path, action):
    from storage.console_db import ConsoleStores

    async with await ConsoleStores.open(db) as stores:
        return await action(stores)


def _account_or_refuse(stores_account, username: str):
    if stores_account is None:
        _refuse(f"no console account named '{username}' (khaosat user list)")
    return stores_account


@click.group("user")
def user() -> None:
    """Console accounts: the first admin, and scripting (the rest from the console's Users page)."""


@user.command("add")
@click.argument("username")
@click.option("--role", type=ROLE_CHOICE, required=True,
              help="admin: everything; coordinator: fieldwork of --survey; analyst: data; viewer: progress only.")
@click.option("--survey", "surveys", multiple=True, help="A survey id the account may see (repeat; none = all).")
@click.option("--unit", "units", multiple=True,
              help="Only this unit and those below it (repeat; e.g. a commune officer's commune).")
@click.option("--personal/--no-personal", default=None,
              help="May see names and phones (default: yes for admin and coordinator, no otherwise).")
@click.option("--name", "display_name", default="", help="The name shown in the console.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@_DB_OPTION
@click.pass_context
def user_add(ctx: click.Context, username: str, role: str, surveys: tuple[str, ...], units: tuple[str, ...],
             personal: bool | None, display_name: str, password_stdin: bool, db: Path | None) -> None:
    """Add a console account."""
    from console.accounts import AccountError, create_account, personal_by_default

    db = _survey_db(ctx, db, create=True)
    password = _read_password(password_stdin)
    if personal is None:
        personal = personal_by_default(role)
    try:
        account = asyncio.run(_with_stores(db, lambda stores: create_account(
            stores, username, password, role=role, at=_now(), display_name=display_name, surveys=surveys,
            units=units, personal=personal)))
    except AccountError as error:
        _refuse(str(error))
    _print(f"Added {escape(account.username)} ({account.role}).")


@user.command("list")
@_DB_OPTION
@click.pass_context
def user_list(ctx: click.Context, db: Path | None) -> None:
    """List the console accounts."""
    db = _survey_db(ctx, db, create=True)
    accounts = asyncio.run(_with_stores(db, lambda stores: stores.accounts.list_accounts()))
    table = Table()
    for column in ("username", "name", "role", "surveys", "units", "personal", "state"):
        table.add_column(column)
    for a in accounts:
        table.add_row(a.username, a.display_name, a.role, ", ".join(a.surveys) or "all", ", ".join(a.units) or "all",
                      "yes" if a.personal else "no", "disabled" if a.disabled else "active")
    cli_common._wide().print(table)


@user.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@_DB_OPTION
@click.pass_context
def user_disable(ctx: click.Context, username: str, enable: bool, db: Path | None) -> None:
    """Disable an account (its sessions end at once), or --enable it again."""
    db = _survey_db(ctx, db)

    async def change(stores):
        account = _account_or_refuse(await stores.accounts.account_by_username(username), username)
        await stores.accounts.update_account(account.id, at=_now(), disabled=not enable)
        await stores.audit.record("user_enabled" if enable else "user_disabled", at=_now(),
                                  username="(command line)", detail=username)

    asyncio.run(_with_stores(db, change))
    _print(f"{'Enabled' if enable else 'Disabled'} {escape(username)}.")


@user.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@_DB_OPTION
@click.pass_context
def user_passwd(ctx: click.Context, username: str, password_stdin: bool, db: Path | None) -> None:
    """Set an account's password (its sessions end)."""
    from console.accounts import AccountError, change_password

    db = _survey_db(ctx, db)
    password = _read_password(password_stdin)

    async def change(stores):
        account = _account_or_refuse(await stores.accounts.account_by_username(username), username)
        await change_password(stores, account, password, _now())
        await stores.audit.record("password_set", at=_now(), username="(command line)", detail=username)

    try:
        asyncio.run(_with_stores(db, change))
    except AccountError as error:
        _refuse(str(error))
    _print(f"Changed the password of {escape(username)}.")


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: [console] listen, else 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: [console] port, else 8080; 0: any free port).")
@_DB_OPTION
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, db: Path | None) -> None:
    """Serve the coordinator console (web pages) over the survey database until interrupted.

    Accounts: `khaosat user add NAME --role admin` first. Reminders sent from the console go
    through the [[telegram]]/[[zalo]] bots of --config (their running `khaosat run` sends them).
    """
    import logging
    import signal

    from bot.reminders import ReminderBot
    from console.server import serve_until

    config: Config = ctx.obj
    db = _survey_db(ctx, db)
    settings = config.console or ConsoleConfig()
    settings = dataclasses.replace(settings, host=host or settings.host,
                                   port=settings.port if port is None else port)
    bots = [ReminderBot(b.channel, b.name, b.pace.per_second) for b in config.bots]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if not asyncio.run(_with_stores(db, lambda stores: stores.accounts.list_accounts())):
        cli_common.errors.print(f"[yellow]![/] no console account yet: khaosat user add NAME --role admin --db {db}")

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        serving = [serve_until(stop, settings, db, clock=lambda: clock.now(config.zone), bots=bots,
                               synchronous=config.synchronous,
                               started=lambda running: _print(f"Console at {running.url} (Ctrl+C stops)"))]
        if config.web is not None:  # [web]: the respondents' pages too
            from bot.web.server import serve_web_until
            serving.append(serve_web_until(stop, config, db, clock=lambda: clock.now(config.zone),
                                           started=lambda running: _print(f"Web pages at {running.url}")))
        await asyncio.gather(*serving)

    try:
        asyncio.run(main_loop())
    except OSError as error:
        _refuse(f"cannot listen on {settings.host}:{settings.port}: {error}")


#: The demo's console accounts (printed by `khaosat demo`; the demo database is thrown away).
DEMO_PASSWORD = "khaosat-demo"
DEMO_ADMIN = "admin"
DEMO_COORDINATOR = "can-bo-xa"


def serve_demo(summary: dict, port: int) -> None:
    """After `khaosat demo`: a demo admin and a coordinator limited to one commune, then the console
    over the demo database on 127.0.0.1, its clock running on from where the demo's stopped."""
    import logging
    import signal

    from bot.demo import COMMUNES
    from console.accounts import create_account
    from console.server import serve_until

    db: Path = summary["database"]
    survey, commune = summary["survey"], next(iter(COMMUNES))
    offset = summary["now"] - dt.datetime.now(summary["now"].tzinfo)

    async def accounts(stores) -> None:
        for name, role, units in ((DEMO_ADMIN, "admin", ()), (DEMO_COORDINATOR, "coordinator", (commune,))):
            await create_account(stores, name, DEMO_PASSWORD, role=role, at=_now(), surveys=(survey,), units=units,
                                 personal=True)

    asyncio.run(_with_stores(db, accounts))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    def started(running) -> None:
        _print(f"\n[bold]The coordinator console:[/] {running.url}")
        _print(f"  log in as [bold]{DEMO_ADMIN}[/] (everything) or [bold]{DEMO_COORDINATOR}[/] (only {commune}), "
               f"password [bold]{DEMO_PASSWORD}[/]")
        _print("  Ctrl+C stops it; later: khaosat serve --db " + str(db))

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve_until(stop, ConsoleConfig(host="127.0.0.1", port=port), db,
                          clock=lambda: dt.datetime.now(summary["now"].tzinfo) + offset, started=started)

    try:
        asyncio.run(main_loop())
    except OSError as error:
        _refuse(f"cannot serve the console on 127.0.0.1:{port}: {error} (try --port 0, or --no-serve)")
