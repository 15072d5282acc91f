"""Creating and changing console accounts: the checks the Users page and ``khaosat user`` share."""

from __future__ import annotations

import re

from storage.accounts import ROLES, Account, AccountExists
from storage.console_db import ConsoleStores

from .auth import MIN_PASSWORD, hash_password

_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{2,64}$")


class AccountError(ValueError):
    """Refused input: ``key`` and ``fields`` name the console text (console.i18n) that says why."""

    def __init__(self, key: str, **fields):
        from .i18n import t

        super().__init__(t(key, "en", **fields))
        self.key = key
        self.fields = fields


def split_ids(text: str | None) -> tuple[str, ...]:
    """``"a, b ,c"`` → ``("a", "b", "c")``; duplicates dropped, order kept."""
    seen: dict[str, None] = {}
    for part in re.split(r"[,\s]+", text or ""):
        if part:
            seen[part] = None
    return tuple(seen)


def check_scope(role: str, surveys: tuple[str, ...]) -> None:
    if role not in ROLES:
        raise AccountError("bad_role")
    if role == "coordinator" and not surveys:
        raise AccountError("scope_needed")


def personal_by_default(role: str) -> bool:
    """Whether a new account of ``role`` may see names and phones unless told otherwise: the
    people who contact respondents (admin, coordinator) do; analysts and viewers do not. The
    CLI's ``user add`` and the Users page both start from this."""
    return role in ("admin", "coordinator")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError("bad_password", n=MIN_PASSWORD)


async def create_account(stores: ConsoleStores, username: str, password: str, *, role: str, at: str,
                         display_name: str = "", surveys: tuple[str, ...] = (), units: tuple[str, ...] = (),
                         personal: bool = False) -> Account:
    if not _USERNAME.match(username):
        raise AccountError("bad_username")
    check_scope(role, surveys)
    check_password(password)
    try:
        return await stores.accounts.add_account(
            username, role=role, password_hash=await hash_password(password), at=at, display_name=display_name,
            surveys=surveys, units=units, personal=personal)
    except AccountExists:
        raise AccountError("user_exists", name=username) from None


async def change_password(stores: ConsoleStores, account: Account, password: str, at: str) -> None:
    check_password(password)
    await stores.accounts.set_password(account.id, await hash_password(password), at)
