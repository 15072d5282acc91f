"""Passwords, login limits, web sessions, and the role/scope check every handler goes through.

Roles: *admin* (everything, accounts included), *coordinator* (fieldwork of their surveys,
optionally only some units), *analyst* (data of their surveys), *viewer* (progress only).
Scope: ``Account.surveys`` (empty: every survey; a coordinator always has at least one) and
``Account.units`` (empty: every unit; else those units and everything below them). Names and
phones: admins, and accounts with the ``personal`` flag.

Handlers declare what they need with ``@requires(...)``; the check runs on the server for
every request, whatever the page showed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import secrets
from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from storage import NotFound
from storage.accounts import Account
from surveys.project import SurveyProject

#: Failed logins allowed per account and per client address within the window.
LOGIN_LIMIT = 5
LOGIN_WINDOW = dt.timedelta(minutes=15)
MIN_PASSWORD = 10

_hasher = PasswordHasher()  # argon2id, argon2-cffi's RFC 9106 low-memory defaults
# Verified when the username is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(account: Account | None, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(account.password_hash if account else _DUMMY_HASH, password) and account is not None
        except (VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(verify)


def new_token() -> tuple[str, str]:
    """(cookie token, the hash the database keeps)."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- scope -----------------------------------------------------------------------------------------


def can_see_survey(account: Account, survey_id: str) -> bool:
    if account.disabled:
        return False
    return account.role == "admin" or not account.surveys or survey_id in account.surveys


def has_personal(account: Account) -> bool:
    return account.role == "admin" or (account.personal and account.role != "viewer")


def visible_units(account: Account, project: SurveyProject) -> frozenset[str] | None:
    """The units the account may see in this project (theirs and everything below); None: all."""
    if account.role == "admin" or not account.units:
        return None
    from .labels import unit_units

    return frozenset().union(*(unit_units(project, unit) for unit in account.units))


def stratum_visible(stratum: str, units: frozenset[str] | None) -> bool:
    """A stratum key (``group/value/...``) is visible when unscoped, or when one of its values is
    a visible unit; a stratum that names no unit is hidden from a unit-scoped account."""
    if units is None:
        return True
    return any(part in units for part in stratum.split("/")[1:])


@dataclass(frozen=True)
class Scope:
    """What ``@requires`` established for this request (``console.app.request_scope``)."""

    project: SurveyProject | None
    units: frozenset[str] | None  # visible units; None: all
    unit: str | None  # the unit the page was asked for (?unit=), checked to be visible


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def requires(*roles: str, personal: bool = False) -> Callable[[Handler], Handler]:
    """The account must be signed in with one of ``roles`` (admin always passes).

    If the route has a ``{survey}`` part, the survey must exist (404) and be in the account's
    scope (403); ``?unit=`` (or a ``{unit}`` route part) must be a unit of the survey (404)
    the account may see (403). ``personal``: the account must have personal-data access.
    (A live part asked for by htmx gets 401 with ``HX-Redirect`` to the login page instead.)
    Sets the request's ``Scope`` (``console.app.request_scope(request)``). Refusals are audited by the error middleware.
    """
    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            from console.app import SCOPE, current_account, fieldwork_storage  # app imports this module

            account = current_account(request)
            if account is None:
                target = f"/login?next={_quote_path(request)}"
                if request.headers.get("HX-Request"):  # a live part whose session ended: the whole page goes
                    raise web.HTTPUnauthorized(headers={"HX-Redirect": target})
                raise web.HTTPFound(target)
            if account.role != "admin" and account.role not in roles:
                raise web.HTTPForbidden(reason="role")
            if personal and not has_personal(account):
                raise web.HTTPForbidden(reason="personal")
            project = None
            units = None
            unit = request.match_info.get("unit") or request.query.get("unit") or None
            survey_id = request.match_info.get("survey")
            if survey_id is not None:
                if not can_see_survey(account, survey_id):
                    raise web.HTTPForbidden(reason="survey")
                try:
                    stored = await fieldwork_storage(request).get_survey(survey_id)
                except NotFound:
                    raise web.HTTPNotFound() from None
                project = SurveyProject.from_json(stored.project)
                units = visible_units(account, project)
                if unit is not None:
                    if unit not in project.units:
                        raise web.HTTPNotFound()
                    if units is not None and unit not in units:
                        raise web.HTTPForbidden(reason="unit")
            request[SCOPE] = Scope(project, units, unit)
            return await handler(request)
        checked.required_roles = roles  # type: ignore[attr-defined]  # for tests and the nav
        return checked
    return wrap


def _quote_path(request: web.Request) -> str:
    from urllib.parse import quote

    return quote(request.rel_url.path_qs, safe="")


def safe_next(value: str | None) -> str:
    """A redirect target after login: a path on this site only."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
