"""Every page of the console goes through ``@requires``: a route without it would be open to anyone."""

from __future__ import annotations

import datetime as dt

from bot.config import ConsoleConfig
from console.app import make_app
from storage import open_storage
from storage.console_db import ConsoleStores

#: Routes that must work signed out.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/lang/{lang}")}


async def test_every_route_but_login_logout_and_language_checks_role_and_scope(tmp_path):
    db = tmp_path / "k.sqlite"
    async with await open_storage(db) as storage, await ConsoleStores.open(db) as stores:
        app = make_app(storage, stores, ConsoleConfig(), db, clock=lambda: dt.datetime.now(dt.timezone.utc))
        checked, public = [], []
        for route in app.router.routes():
            info = route.resource.get_info() if route.resource else {}
            path = info.get("formatter") or info.get("path") or ""
            if route.method == "HEAD" or "prefix" in info:  # HEAD twins of GET; the static files
                continue
            (public if (route.method, path) in PUBLIC else checked).append((route.method, path, route.handler))
        assert {(method, path) for method, path, _ in public} == PUBLIC
        unchecked = [(method, path) for method, path, handler in checked if not hasattr(handler, "required_roles")]
        assert unchecked == []
        assert ("GET", "/surveys/{survey}/progress") in {(m, p) for m, p, _ in checked}
