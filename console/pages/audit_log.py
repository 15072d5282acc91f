"""The audit log (admins only): newest first, page by page; the whole log as CSV (itself audited)."""

from __future__ import annotations

from aiohttp import web

from console.app import NavEntry, audit, csv_download, render, stores
from console.auth import requires
from console.i18n import local_time
from storage.audit import AUDIT_COLUMNS

routes = web.RouteTableDef()
NAV = [NavEntry("nav_audit", "/admin/audit", ("admin",), order=95)]
PAGE = 200


@routes.get("/admin/audit")
@requires("admin")
async def audit_page(request: web.Request) -> web.Response:
    try:
        before = int(request.query["before"]) if request.query.get("before") else None
    except ValueError:
        raise web.HTTPNotFound() from None
    action = request.query.get("action") or None
    entries = await stores(request).audit.entries(limit=PAGE, before_id=before, action=action)
    older = entries[-1].id if len(entries) == PAGE else None
    return render(request, "audit.html", entries=entries, older=older, action=action or "")


@routes.get("/admin/audit.csv")
@requires("admin")
async def audit_csv(request: web.Request) -> web.Response:
    entries = await stores(request).audit.entries(limit=0)
    rows = [[*(getattr(entry, c) if getattr(entry, c) is not None else "" for c in AUDIT_COLUMNS),
             local_time(entry.at)] for entry in reversed(entries)]
    await audit(request, "download", f"audit log: {len(entries)} row(s)")
    return csv_download([*AUDIT_COLUMNS, "local_time"], rows, "khaosat-audit.csv")
