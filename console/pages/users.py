"""Accounts (admins only): add, change role and scope, disable, reset a password. Audited."""

from __future__ import annotations

from aiohttp import web

from console.accounts import (AccountError, change_password, check_scope, create_account, personal_by_default,
                              split_ids)
from console.app import NavEntry, audit, console_of, current_account, fieldwork_storage, render, stores
from console.auth import requires
from storage import NotFound
from storage.accounts import ROLES, Account
from surveys.project import SurveyProject

routes = web.RouteTableDef()
NAV = [NavEntry("nav_users", "/admin/users", ("admin",), order=90)]


async def _check_ids(request: web.Request, surveys: tuple[str, ...], units: tuple[str, ...]) -> None:
    """Survey ids must be stored surveys; unit ids units of those surveys (of any, when all)."""
    stored = {s.id: SurveyProject.from_json(s.project) for s in await fieldwork_storage(request).list_surveys()}
    unknown = [s for s in surveys if s not in stored]
    if unknown:
        raise AccountError("unknown_surveys", ids=", ".join(unknown))
    known_units = {u for sid, project in stored.items() if not surveys or sid in surveys for u in project.units}
    unknown = [u for u in units if u not in known_units]
    if unknown:
        raise AccountError("unknown_units", ids=", ".join(unknown))


def _describe(account: Account) -> str:
    return (f"{account.username}: role {account.role}, surveys {','.join(account.surveys) or 'all'}, units "
            f"{','.join(account.units) or 'all'}, personal {'yes' if account.personal else 'no'}")


async def _page(request: web.Request, *, status: int = 200, error: AccountError | None = None,
                form: dict | None = None) -> web.Response:
    accounts = await stores(request).accounts.list_accounts()
    return render(request, "users.html", status=status, accounts=accounts, roles=ROLES, error=error,
                  form=form or {}, saved=request.query.get("saved"))


@routes.get("/admin/users")
@requires("admin")
async def users_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/admin/users")
@requires("admin")
async def add_user(request: web.Request) -> web.Response:
    form = await request.post()
    values = {key: str(form.get(key, "")).strip() for key in ("username", "display_name", "role", "surveys", "units", "personal")}
    surveys, units = split_ids(values["surveys"]), split_ids(values["units"])
    try:
        await _check_ids(request, surveys, units)
        account = await create_account(
            stores(request), values["username"], str(form.get("password", "")), role=values["role"],
            at=console_of(request).now(), display_name=values["display_name"], surveys=surveys, units=units,
            personal=_personal_choice(values["personal"], values["role"]))
    except AccountError as error:
        return await _page(request, status=400, error=error, form=values)
    await audit(request, "user_added", _describe(account))
    raise web.HTTPSeeOther(f"/admin/users?saved={account.username}")


def _personal_choice(value, role: str) -> bool:
    """The add form's "personal" select: yes, no, or (the default) as ``user add`` decides by role."""
    if value in ("yes", "no"):
        return value == "yes"
    return personal_by_default(role)


async def _target(request: web.Request) -> Account:
    try:
        return await stores(request).accounts.get_account(int(request.match_info["account"]))
    except (NotFound, ValueError):
        raise web.HTTPNotFound() from None


@routes.post("/admin/users/{account}")
@requires("admin")
async def change_user(request: web.Request) -> web.Response:
    account = await _target(request)
    form = await request.post()
    role = str(form.get("role", account.role))
    surveys, units = split_ids(str(form.get("surveys", ""))), split_ids(str(form.get("units", "")))
    try:
        check_scope(role, surveys)
        await _check_ids(request, surveys, units)
        if account.id == current_account(request).id and role != "admin":
            raise AccountError("not_yourself")
    except AccountError as error:
        return await _page(request, status=400, error=error)
    changed = await stores(request).accounts.update_account(
        account.id, at=console_of(request).now(), role=role, surveys=surveys, units=units,
        personal=form.get("personal") == "on", display_name=str(form.get("display_name", account.display_name)))
    await audit(request, "user_changed", f"was {_describe(account)}; now {_describe(changed)}")
    raise web.HTTPSeeOther(f"/admin/users?saved={account.username}")


@routes.post("/admin/users/{account}/disable")
@requires("admin")
async def disable_user(request: web.Request) -> web.Response:
    account = await _target(request)
    form = await request.post()
    disable = form.get("disable") == "1"
    if disable and account.id == current_account(request).id:
        return await _page(request, status=400, error=AccountError("not_yourself"))
    await stores(request).accounts.update_account(account.id, at=console_of(request).now(), disabled=disable)
    await audit(request, "user_disabled" if disable else "user_enabled", account.username)
    raise web.HTTPSeeOther(f"/admin/users?saved={account.username}")


@routes.post("/admin/users/{account}/password")
@requires("admin")
async def reset_password(request: web.Request) -> web.Response:
    account = await _target(request)
    form = await request.post()
    try:
        await change_password(stores(request), account, str(form.get("password", "")), console_of(request).now())
    except AccountError as error:
        return await _page(request, status=400, error=error)
    await audit(request, "password_reset", account.username)
    raise web.HTTPSeeOther(f"/admin/users?saved={account.username}")
