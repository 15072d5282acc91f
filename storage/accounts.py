"""Console accounts, their web sessions and login attempts (migration 10).

An account has a role (admin, coordinator, analyst, viewer), a scope (survey ids; unit ids
within them, empty meaning all) and a ``personal`` flag (may see names and phones). Web
sessions are stored by the SHA-256 of their cookie token, so a copy of the database opens no
session. Passwords arrive hashed (argon2id, by ``console.auth``): no hashing here.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Protocol

from .console_db import Transactions
from .errors import NotFound, StorageError

ROLES = ("admin", "coordinator", "analyst", "viewer")


class AccountExists(StorageError):
    """An account with this username exists already."""


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    display_name: str
    role: str
    surveys: tuple[str, ...]
    units: tuple[str, ...]
    personal: bool
    disabled: bool
    created_at: str
    updated_at: str
    password_hash: str = field(repr=False, default="")


@dataclass(frozen=True)
class WebSession:
    account: Account
    csrf: str
    expires_at: str


class Accounts(Protocol):
    async def add_account(self, username: str, *, role: str, password_hash: str, at: str, display_name: str = "",
                          surveys: tuple[str, ...] = (), units: tuple[str, ...] = (),
                          personal: bool = False) -> Account: ...

    async def get_account(self, account_id: int) -> Account: ...

    async def account_by_username(self, username: str) -> Account | None: ...

    async def list_accounts(self) -> list[Account]: ...

    async def update_account(self, account_id: int, *, at: str, role: str | None = None,
                             display_name: str | None = None, surveys: tuple[str, ...] | None = None,
                             units: tuple[str, ...] | None = None, personal: bool | None = None,
                             disabled: bool | None = None) -> Account: ...

    async def set_password(self, account_id: int, password_hash: str, at: str) -> None: ...

    async def create_session(self, token_hash: str, account_id: int, csrf: str, *, at: str, expires_at: str,
                             address: str | None) -> None: ...

    async def web_session(self, token_hash: str, now: str) -> WebSession | None: ...

    async def delete_session(self, token_hash: str) -> None: ...

    async def record_login_attempt(self, username: str, address: str, ok: bool, at: str) -> None: ...

    async def failed_logins_since(self, username: str, address: str, since: str) -> tuple[int, int]: ...


_COLUMNS = ("id, username, display_name, role, surveys, units, personal, disabled, created_at, updated_at,"
            " password_hash")


def _account(row: sqlite3.Row) -> Account:
    return Account(id=row["id"], username=row["username"], display_name=row["display_name"], role=row["role"],
                   surveys=tuple(json.loads(row["surveys"])), units=tuple(json.loads(row["units"])),
                   personal=bool(row["personal"]), disabled=bool(row["disabled"]), created_at=row["created_at"],
                   updated_at=row["updated_at"], password_hash=row["password_hash"])


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise StorageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


class SQLiteAccounts:
    def __init__(self, tx: Transactions):
        self.tx = tx

    async def add_account(self, username: str, *, role: str, password_hash: str, at: str, display_name: str = "",
                          surveys: tuple[str, ...] = (), units: tuple[str, ...] = (),
                          personal: bool = False) -> Account:
        _check_role(role)
        try:
            _, account_id = await self.tx.execute(
                "INSERT INTO console_accounts (username, display_name, role, surveys, units, personal,"
                " password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (username, display_name, role, json.dumps(list(surveys)), json.dumps(list(units)), int(personal),
                 password_hash, at, at))
        except self.tx.integrity_errors:
            raise AccountExists(f"an account named '{username}' exists already") from None
        return await self.get_account(account_id)

    async def get_account(self, account_id: int) -> Account:
        row = await self.tx.fetchone(f"SELECT {_COLUMNS} FROM console_accounts WHERE id = ?", (account_id,))
        if row is None:
            raise NotFound(f"no account {account_id}")
        return _account(row)

    async def account_by_username(self, username: str) -> Account | None:
        row = await self.tx.fetchone(f"SELECT {_COLUMNS} FROM console_accounts WHERE username = ?", (username,))
        return None if row is None else _account(row)

    async def list_accounts(self) -> list[Account]:
        return [_account(row) for row in await self.tx.fetchall(
            f"SELECT {_COLUMNS} FROM console_accounts ORDER BY username")]

    async def update_account(self, account_id: int, *, at: str, role: str | None = None,
                             display_name: str | None = None, surveys: tuple[str, ...] | None = None,
                             units: tuple[str, ...] | None = None, personal: bool | None = None,
                             disabled: bool | None = None) -> Account:
        changes: dict[str, object] = {}
        if role is not None:
            _check_role(role)
            changes["role"] = role
        if display_name is not None:
            changes["display_name"] = display_name
        if surveys is not None:
            changes["surveys"] = json.dumps(list(surveys))
        if units is not None:
            changes["units"] = json.dumps(list(units))
        if personal is not None:
            changes["personal"] = int(personal)
        if disabled is not None:
            changes["disabled"] = int(disabled)
        async with self.tx.write() as db:
            cursor = await db.execute(
                f"UPDATE console_accounts SET {', '.join(f'{k} = :{k}' for k in changes)}"
                f"{', ' if changes else ''}updated_at = :at WHERE id = :id", {**changes, "at": at, "id": account_id})
            if cursor.rowcount == 0:
                raise NotFound(f"no account {account_id}")
            if disabled:  # a disabled account is signed out everywhere at once
                await db.execute("DELETE FROM console_sessions WHERE account_id = ?", (account_id,))
        return await self.get_account(account_id)

    async def set_password(self, account_id: int, password_hash: str, at: str) -> None:
        async with self.tx.write() as db:
            cursor = await db.execute("UPDATE console_accounts SET password_hash = ?, updated_at = ? WHERE id = ?",
                                      (password_hash, at, account_id))
            if cursor.rowcount == 0:
                raise NotFound(f"no account {account_id}")
            # A new password ends every session opened with the old one.
            await db.execute("DELETE FROM console_sessions WHERE account_id = ?", (account_id,))

    async def create_session(self, token_hash: str, account_id: int, csrf: str, *, at: str, expires_at: str,
                             address: str | None) -> None:
        await self.tx.execute(
            "INSERT INTO console_sessions (token_hash, account_id, csrf, created_at, expires_at, address)"
            " VALUES (?, ?, ?, ?, ?, ?)", (token_hash, account_id, csrf, at, expires_at, address))

    async def web_session(self, token_hash: str, now: str) -> WebSession | None:
        """The live session of this token: not expired, its account not disabled."""
        row = await self.tx.fetchone(
            f"SELECT s.csrf, s.expires_at, {', '.join('a.' + c.strip() for c in _COLUMNS.split(','))}"
            " FROM console_sessions s JOIN console_accounts a ON a.id = s.account_id"
            " WHERE s.token_hash = ? AND julianday(s.expires_at) > julianday(?) AND a.disabled = 0",
            (token_hash, now))
        return None if row is None else WebSession(_account(row), row["csrf"], row["expires_at"])

    async def delete_session(self, token_hash: str) -> None:
        await self.tx.execute("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash,))

    async def record_login_attempt(self, username: str, address: str, ok: bool, at: str) -> None:
        await self.tx.execute("INSERT INTO console_login_attempts (username, address, ok, at) VALUES (?, ?, ?, ?)",
                              (username, address, int(ok), at))

    async def failed_logins_since(self, username: str, address: str, since: str) -> tuple[int, int]:
        """Failed attempts at or after ``since``: (for this username, from this address)."""
        row = await self.tx.fetchone(
            "SELECT (SELECT count(*) FROM console_login_attempts WHERE username = :u AND ok = 0"
            "        AND julianday(at) >= julianday(:since)),"
            "       (SELECT count(*) FROM console_login_attempts WHERE address = :a AND ok = 0"
            "        AND julianday(at) >= julianday(:since))",
            {"u": username, "a": address, "since": since})
        return row[0], row[1]
