"""Progress: per group × stratum, the numbers of ``khaosat status`` (exporters/progress.py) for the
strata the account may see, with what should be done by today, totals per unit level, and a chart
of completes over time against the target line; the live part refreshes itself (htmx polling).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aiohttp import web

from console.app import NavEntry, console_of, fieldwork_storage, language, render, request_scope, stores
from console.i18n import add_texts, t
from console.auth import Scope, requires, stratum_visible
from console.labels import group_label, level_label, stratum_label, unit_units
from exporters.modes import mode_name
from exporters.progress import StatusReport, StatusRow, restrict, survey_status, total_of
from surveys.project import SurveyProject

routes = web.RouteTableDef()
NAV = [NavEntry("nav_progress", "/surveys/{survey}/progress", ("coordinator", "analyst", "viewer"), order=10)]

ROLES = ("coordinator", "analyst", "viewer")

add_texts({  # response rates by mode (exporters/modes.py)
    "modes_title": {"vi": "Theo hình thức trả lời", "en": "By mode"},
    "col_mode": {"vi": "Hình thức", "en": "Mode"},
    "col_partial": {"vi": "Dở dang", "en": "Partial"},
    "col_refused": {"vi": "Từ chối", "en": "Refused"},
    "col_mode_rate": {"vi": "Tỷ lệ hoàn thành trên mẫu", "en": "Completes over the sample"},
})


@dataclass(frozen=True)
class Line:
    """A row of the page: a stratum, a group total or the survey total."""

    row: StatusRow
    group: str
    stratum: str
    expected: int  # target × the share of the fieldwork period elapsed by today
    fill: float | None
    total: bool


def elapsed_share(project: SurveyProject, today: dt.date) -> float:
    """Share of the fieldwork days (opening and closing day included) begun by the end of today."""
    days = (project.closes - project.opens).days + 1
    return min(1.0, max(0.0, ((today - project.opens).days + 1) / days))


def _line(project: SurveyProject, row: StatusRow, share: float, lang: str, total_text: str,
          group: str | None = None) -> Line:
    total = "*" in (row.group, row.stratum)
    if group is None:
        group = total_text if row.group == "*" else group_label(project, row.group, lang)
    stratum = total_text if row.stratum == "*" else stratum_label(project, row.stratum, lang)
    fill = row.quota_fill if row.quota else (row.completed / row.target if row.target else None)
    return Line(row, group, stratum, round(row.target * share), fill, total)



async def progress_model(request: web.Request) -> dict:
    """Everything the page and its live part show, for the request's account and ?unit=."""
    scope: Scope = request_scope(request)
    project = scope.project
    lang = language(request)
    now = console_of(request).clock()
    local = now.astimezone(ZoneInfo(project.settings.timezone))
    full = await survey_status(fieldwork_storage(request), project, now)
    report = full
    wanted = unit_units(project, scope.unit) if scope.unit else None
    if scope.units is not None or wanted is not None:
        report = restrict(full, lambda r: stratum_visible(r.stratum, scope.units)
                          and (wanted is None or stratum_visible(r.stratum, wanted)))
    share = elapsed_share(project, local.date())
    total_text = t("total", lang)
    lines = [_line(project, row, share, lang, total_text) for row in report.rows]
    return {
        "project": project, "report": report, "lines": lines, "share": share,
        "levels": level_totals(project, report, share, lang, total_text, scope.units),
        "chart": await chart(request, project, report, local),
        "modes": [(mode_name(row.mode, lang), row) for row in report.modes()],
        "updated": now, "unit": scope.unit or "",
        "unit_choices": [(u.id, u.name, level_label(project, u.level, lang)) for u in project.units.values()
                         if scope.units is None or u.id in scope.units],
        "refresh": console_of(request).config.refresh_seconds,
    }


def level_totals(project: SurveyProject, report: StatusReport, share: float, lang: str, total_text: str,
                 visible: frozenset[str] | None) -> list[tuple[str, str, list[Line]]]:
    """Per level of the project (province, commune, …): its id, its name for people, and one
    total per unit over the strata that name it or a unit below it."""
    strata = report.strata()
    out = []
    for level in project.levels:
        lines = []
        for unit in project.units.values():
            if unit.level != level or (visible is not None and unit.id not in visible):
                continue
            below = unit_units(project, unit.id)
            rows = [r for r in strata if stratum_visible(r.stratum, below)]
            if rows:
                total = total_of(rows, report.days_left)
                lines.append(_line(project, total, share, lang, total_text, group=unit.name))
        if lines:
            out.append((level, level_label(project, level, lang), lines))
    return out


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    done: str  # SVG polyline points of the cumulative completes
    target: str  # of the target line
    ymax: int
    first: str
    last: str
    total_done: int
    total_target: int


async def chart(request: web.Request, project: SurveyProject, report: StatusReport,
                local: dt.datetime) -> Chart | None:
    """Cumulative completes per day (of the visible strata) against a straight target line from
    zero at opening to the total target at closing."""
    keep = {r.stratum for r in report.strata()}
    today = local.date()
    offset = int(local.utcoffset().total_seconds() // 60)
    per_day: dict[str, int] = {}
    for stratum, day, n in await stores(request).fieldwork.completes_by_day(project.id, offset):
        if stratum in keep and day:
            per_day[day] = per_day.get(day, 0) + n
    target = sum(r.target for r in report.strata())
    days = (project.closes - project.opens).days + 1
    if days <= 0 or not keep:
        return None
    width, height, pad = 640, 240, 28
    end = min(today, project.closes)
    before = sum(n for day, n in per_day.items() if day < project.opens.isoformat())
    done_points = []
    cumulative = before
    for i in range(max(0, (end - project.opens).days + 1)):
        day = (project.opens + dt.timedelta(days=i)).isoformat()
        cumulative += per_day.get(day, 0)
        done_points.append((i, cumulative))
    ymax = max(target, cumulative, 1)

    def point(i: float, value: float) -> str:
        x = pad + (width - 2 * pad) * (i + 1) / days
        y = height - pad - (height - 2 * pad) * value / ymax
        return f"{x:.1f},{y:.1f}"

    start = f"{pad:.1f},{height - pad:.1f}"
    done = " ".join([start] + [point(i, v) for i, v in done_points])
    line = f"{start} {point(days - 1, target)}"
    return Chart(width, height, done, line, ymax, project.opens.strftime("%d/%m"), project.closes.strftime("%d/%m"),
                 cumulative, target)


@routes.get("/surveys/{survey}/progress")
@requires(*ROLES)
async def progress_page(request: web.Request) -> web.Response:
    return render(request, "progress.html", **await progress_model(request))


@routes.get("/surveys/{survey}/progress/live")
@requires(*ROLES)
async def progress_live(request: web.Request) -> web.Response:
    return render(request, "progress_live.html", **await progress_model(request))
