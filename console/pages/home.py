"""The home page: the surveys the account may see."""

from __future__ import annotations

from aiohttp import web

from console.app import NavEntry, current_account, console_of, fieldwork_storage, render
from console.auth import can_see_survey, requires
from surveys.project import SurveyProject

routes = web.RouteTableDef()
NAV = [NavEntry("nav_home", "/", ("coordinator", "analyst", "viewer"), order=0)]


@routes.get("/")
@requires("coordinator", "analyst", "viewer")
async def home(request: web.Request) -> web.Response:
    account = current_account(request)
    today = console_of(request).clock().date()
    surveys = []
    for stored in await fieldwork_storage(request).list_surveys():
        if can_see_survey(account, stored.id):
            project = SurveyProject.from_json(stored.project)
            surveys.append({"id": project.id, "title": project.title, "opens": project.opens,
                            "closes": project.closes, "days_left": max(0, (project.closes - today).days),
                            "closed": today > project.closes})
    units = ", ".join(account.units)
    return render(request, "home.html", surveys=surveys, units=units)
