"""Fieldwork progress and status per stratum and group: what coordinators check every day.

Two views:

* ``survey_status`` / ``status_messages`` — ``khaosat status``: one survey project's
  sample per group and stratum with AAPOR rates, quota fill, pace and projection; as text,
  the same messages for the terminal (``--format text``), /progress and the daily summary
  (``fieldwork_messages``: every stored survey).
* ``progress`` / ``format_progress`` — per questionnaire and stratum over every respondent;
  what /progress shows when no survey project is stored (open mode without a sample). Its
  response rate is completes over everyone except the ineligible (AAPOR RR1 with e = 1).

Both are computed by GROUP BY queries in storage; no respondent is loaded into Python.

Response rates (AAPOR Standard Definitions, 10th edition, 2023). Each sample member is put
in one AAPOR class by its current disposition:

=================  ===================================  =====
our disposition    AAPOR                                class
=================  ===================================  =====
completed          1.1 complete interview               I
partial            1.2 partial interview                P
started            1.2 partial, once the survey has     P
                   closed (read time: today > closes);
                   before that 2.3 other (in progress)  O
refused            2.11 refusal / break-off             R
contacted          2.3 other (reached, no interview)    O
invited            2.2 non-contact                      NC
unreachable        2.2 non-contact (blocked, 403)       NC
sampled            3.1 not attempted, eligibility       UH
                   unknown
ineligible         4.x not eligible                     NE
quota_full         4.8 quota filled (not eligible)      NE
replaced           the class of the disposition it had when replaced (kept in the rates:
                   substitutes are extra cases, AAPOR §on substitution)
=================  ===================================  =====

* RR1   = I / (I + P + R + NC + O + UH)         — completes only
* RR2   = (I + P) / (I + P + R + NC + O + UH)   — partials count as respondents
* COOP1 = I / (I + P + R + O)                   — among those contacted

Unknown-eligibility cases count as eligible (e = 1), the conservative choice of RR1/RR2.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace

from storage import Storage
from surveys.messages import say
from surveys.project import SurveyProject

#: Dispositions that mean the person was reached in chat (or got further).
_REACHED = {"contacted", "started", "partial", "completed", "refused", "quota_full"}


@dataclass(frozen=True)
class StratumProgress:
    form_id: str
    stratum: str
    sampled: int
    reached: int
    started: int
    completed: int
    refused: int
    unreachable: int
    ineligible: int

    @property
    def response_rate(self) -> float:
        eligible = self.sampled - self.ineligible
        return self.completed / eligible if eligible else 0.0


async def progress(storage: Storage) -> list[StratumProgress]:
    counts: dict[tuple[str, str], Counter] = {}
    for form_id, stratum, disposition, n in await storage.disposition_counts():
        counts.setdefault((form_id or "—", stratum or "—"), Counter())[disposition] += n
    rows = []
    for (form_id, stratum), c in sorted(counts.items()):
        rows.append(StratumProgress(
            form_id=form_id, stratum=stratum, sampled=sum(c.values()),
            reached=sum(c[d] for d in _REACHED), started=c["started"] + c["partial"] + c["completed"],
            completed=c["completed"], refused=c["refused"], unreachable=c["unreachable"],
            ineligible=c["ineligible"]))
    return rows


def format_progress(rows: list[StratumProgress], language: str = "vi") -> str:
    """A short text table for a chat message (a phone screen is narrow)."""
    if not rows:
        return say("progress_empty", language)
    lines = [say("progress_title", language)]
    for row in rows:
        lines.append(f"• {row.form_id} / {row.stratum}: {row.completed}/{row.sampled} "
                     f"({row.response_rate:.0%}) · {say('progress_reached', language)} {row.reached} · "
                     f"{say('progress_refused', language)} {row.refused} · "
                     f"{say('progress_unreachable', language)} {row.unreachable}")
    return "\n".join(lines)


# -- AAPOR -------------------------------------------------------------------------------------

AAPOR_CLASSES = ("I", "P", "R", "NC", "O", "UH", "NE")
_AAPOR = {"completed": "I", "partial": "P", "refused": "R", "contacted": "O", "invited": "NC",
          "unreachable": "NC", "sampled": "UH", "ineligible": "NE", "quota_full": "NE"}


def aapor_class(disposition: str, *, closed: bool, replaced_disposition: str | None = None) -> str:
    """The AAPOR class of a disposition (table in the module docstring)."""
    if disposition == "replaced":
        return aapor_class(replaced_disposition or "invited", closed=closed)
    if disposition == "started":
        return "P" if closed else "O"
    return _AAPOR[disposition]


@dataclass(frozen=True)
class Rates:
    rr1: float | None
    rr2: float | None
    coop1: float | None


def aapor_rates(classes: Counter | dict[str, int]) -> Rates:
    c = Counter(classes)
    eligible = c["I"] + c["P"] + c["R"] + c["NC"] + c["O"] + c["UH"]
    contacted = c["I"] + c["P"] + c["R"] + c["O"]
    return Rates(c["I"] / eligible if eligible else None, (c["I"] + c["P"]) / eligible if eligible else None,
                 c["I"] / contacted if contacted else None)


# -- khaosat status ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusRow:
    """One group × stratum (or a total: stratum "*" for a group, group "*" for the survey)."""

    group: str
    stratum: str
    allocated: int  # n_h of the design
    sampled: int  # members fielded, replaced ones included
    replaced: int
    invited: int  # ever reached this step (from the disposition history)
    contacted: int
    started: int
    completed: int
    partial: int
    refused: int
    unreachable: int
    ineligible: int
    rr1: float | None
    rr2: float | None
    coop1: float | None
    quota: int | None
    target: int  # the quota, else the expected completes round(n_h × expected response rate)
    quota_fill: float | None
    pace: float  # completes per day over the pace window
    projection: float
    lagging: bool
    # AAPOR class counts, for totals
    classes: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class StatusReport:
    survey_id: str
    title: str
    at: str
    opens: str
    closes: str
    days_left: int
    pace_days: int
    closed: bool
    rows: list[StatusRow]  # strata, then a total per group, then the survey total
    #: Members per stratum, mode and AAPOR class (``exporters.modes``: response rates by mode).
    mode_counts: tuple = ()

    def strata(self) -> list[StatusRow]:
        return [r for r in self.rows if "*" not in (r.group, r.stratum)]

    def modes(self) -> list:
        """Completes and RR1's share per mode over the strata of this report (``exporters.modes``)."""
        from exporters.modes import mode_rates

        strata = self.strata()
        eligible = sum(n for r in strata for aapor, n in r.classes if aapor != "NE")
        return mode_rates(self.mode_counts, {r.stratum for r in strata}, eligible)


_COUNTED = ("allocated", "sampled", "replaced", "invited", "contacted", "started", "completed", "partial",
            "refused", "unreachable", "ineligible")


async def survey_status(storage: Storage, project: SurveyProject, now: dt.datetime) -> StatusReport:
    """The status table of one survey at ``now`` (an aware datetime).

    Pace = completes per day over the last 7 days (fewer if the survey opened less than 7
    days ago, at least 1), from the disposition history. Days left = calendar days from
    today to the closing date (0 on and after it). Projection = completed + pace × days
    left. A stratum lags when its projection is below its target: the quota target from
    the project, else the expected completes, round(n_h × expected_response_rate).
    """
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(project.settings.timezone)
    local = now.astimezone(zone)
    today = local.date()
    closed = today > project.closes
    days_left = max(0, (project.closes - today).days)
    pace_days = max(1, min(7, (today - project.opens).days))
    since = (local - dt.timedelta(days=pace_days)).isoformat()

    counts = await storage.status_counts(project.id)
    # Quota fill from the quota slots (fieldwork/quotas.py): completed slots, or with count_at =
    # "start" reserved + completed; strata without slots fall back to their completes.
    slots = await storage.quota_counts(project.id)
    filled = {stratum: c["completed"] + (c["reserved"] if project.quotas.count_at == "start" else 0)
              for stratum, c in slots.items()}
    recent = await storage.completes_since(project.id, since)
    allocated = {(s.group, s.stratum): s.n for s in await storage.sample_strata(project.id)}

    cells: dict[tuple[str, str], Counter] = {}
    classes: dict[tuple[str, str], Counter] = {}
    for row in counts:
        key = (row["group"], row["stratum"])
        c = cells.setdefault(key, Counter())
        k = classes.setdefault(key, Counter())
        n, stage, disposition = row["n"], row["stage"], row["disposition"]
        c["sampled"] += n
        for step, name in enumerate(("invited", "contacted", "started", "completed"), start=1):
            if stage >= step and name != "completed":
                c[name] += n
        aapor = aapor_class(disposition, closed=closed, replaced_disposition=row["replaced_disposition"])
        k[aapor] += n
        effective = row["replaced_disposition"] if disposition == "replaced" else disposition
        if disposition == "replaced":
            c["replaced"] += n
        if disposition == "completed":
            c["completed"] += n
        if aapor == "P":
            c["partial"] += n
        if effective in ("refused", "unreachable", "ineligible"):
            c[effective] += n
    for key in allocated:
        cells.setdefault(key, Counter())
    for stratum in project.quotas.targets:
        gid = stratum.split("/", 1)[0]
        cells.setdefault((gid, stratum), Counter())

    order = {gid: i for i, gid in enumerate(project.groups)}
    rows: list[StatusRow] = []
    for key in sorted(cells, key=lambda k: (order.get(k[0], len(order)), k[1])):
        gid, stratum = key
        c = cells[key]
        group = project.groups.get(gid)
        rate = group.allocation.expected_response_rate if group else 1.0
        n_h = allocated.get(key, 0)
        quota = project.quotas.targets.get(stratum)
        target = quota if quota is not None else round(n_h * rate)
        rows.append(_row(gid, stratum, {**c, "allocated": n_h}, classes.get(key, Counter()), quota, target,
                         recent.get(key, 0) / pace_days, days_left, filled.get(stratum)))
    totals: list[StatusRow] = []
    for gid in sorted({r.group for r in rows}, key=lambda g: order.get(g, len(order))):
        part = [r for r in rows if r.group == gid]
        totals.append(_total(gid, "*", part, days_left))
    if rows:
        totals.append(_total("*", "*", rows, days_left))
    from exporters.modes import mode_counts

    return StatusReport(project.id, project.title, local.isoformat(), project.opens.isoformat(),
                        project.closes.isoformat(), days_left, pace_days, closed, rows + totals,
                        await mode_counts(storage, project.id, closed=closed))


def _row(gid: str, stratum: str, c: dict, k: Counter, quota: int | None, target: int, pace: float,
         days_left: int, filled: int | None = None) -> StatusRow:
    rates = aapor_rates(k)
    completed = c.get("completed", 0)
    projection = completed + pace * days_left
    return StatusRow(
        group=gid, stratum=stratum, **{name: int(c.get(name, 0)) for name in _COUNTED},
        rr1=rates.rr1, rr2=rates.rr2, coop1=rates.coop1, quota=quota, target=target,
        quota_fill=(completed if filled is None else filled) / quota if quota else None, pace=pace, projection=projection,
        lagging=target > 0 and projection < target, classes=tuple(sorted(k.items())))


def _total(gid: str, stratum: str, part: list[StatusRow], days_left: int) -> StatusRow:
    c = {name: sum(getattr(r, name) for r in part) for name in _COUNTED}
    k: Counter = Counter()
    for r in part:
        k.update(dict(r.classes))
    quotas = [r.quota for r in part]
    quota = sum(quotas) if quotas and all(q is not None for q in quotas) else None
    row = _row(gid, stratum, c, k, quota, sum(r.target for r in part), sum(r.pace for r in part), days_left)
    return replace(row, lagging=any(r.lagging for r in part))


def restrict(report: StatusReport, keep) -> StatusReport:
    """The report over the strata ``keep(row)`` accepts (a coordinator's units), with the group
    and survey totals computed again from them exactly as ``survey_status`` computes them."""
    strata = [r for r in report.strata() if keep(r)]
    totals = [_total(gid, "*", [r for r in strata if r.group == gid], report.days_left)
              for gid in dict.fromkeys(r.group for r in strata)]
    if strata:
        totals.append(_total("*", "*", strata, report.days_left))
    return replace(report, rows=strata + totals)


def total_of(rows: list[StatusRow], days_left: int, group: str = "*", stratum: str = "*") -> StatusRow:
    """One total row over ``rows`` (strata), as the group and survey totals are made."""
    return _total(group, stratum, rows, days_left)


# -- output ----------------------------------------------------------------------------------------

#: Columns of the csv/json output, in order.
STATUS_COLUMNS = tuple(f.name for f in fields(StatusRow) if f.name != "classes")


def status_records(report: StatusReport) -> list[dict]:
    records = []
    for row in report.rows:
        record = {name: getattr(row, name) for name in STATUS_COLUMNS}
        record["days_left"] = report.days_left
        records.append(record)
    return records


def status_json(report: StatusReport) -> str:
    data = {k: v for k, v in asdict(report).items() if k not in ("rows", "mode_counts")}
    data["rows"] = status_records(report)
    data["modes"] = [asdict(row) for row in report.modes()]
    return json.dumps(data, ensure_ascii=False, indent=2)


def status_csv(report: StatusReport) -> str:
    out = io.StringIO()
    records = status_records(report)
    writer = csv.DictWriter(out, fieldnames=[*STATUS_COLUMNS, "days_left"], lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: ("" if v is None else round(v, 4) if isinstance(v, float) else v)
                         for k, v in record.items()})
    return out.getvalue()




def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


#: A chat message's limit where none is given: Telegram's (Zalo's is 2,000; each channel passes its own).
TELEGRAM_TEXT_LIMIT = 4096
#: Room kept after the first line of a message that is one of several, for " (12/34)".
_PART_NUMBER = 8


def status_messages(report: StatusReport, project: SurveyProject | None = None, language: str = "vi",
                    limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """``khaosat status`` as plain-text chat messages of at most ``limit`` characters each: the one
    rendering of the status for people (``khaosat status --format text``, /progress, the daily summary).

    A title line (survey, days left, closing date), then per group its total and one line per
    stratum (quota or expected completes as the target, fill, RR1, projection; lagging ones marked
    ⚠), then the survey total and the legend. When that is longer than ``limit`` it is split per
    group — a group is cut at line boundaries only when it alone does not fit — and each message
    repeats the title with its number, "(2/5)".
    """
    lang = language if language in ("vi", "en") else "vi"
    if not report.rows:
        return [say("status_empty", lang, title=report.title)[:limit]]
    head = say("status_closed" if report.closed else "status_title", lang,
               title=report.title, days=report.days_left, closes=report.closes)
    blocks = _status_blocks(report, project, lang)
    whole = "\n".join([head, *(line for block in blocks for line in block)])
    if len(whole) <= limit:
        return [whole]
    head = head[: max(0, limit // 2)]  # a title cannot take the whole message
    room = limit - len(head) - _PART_NUMBER - 1
    parts: list[list[str]] = []
    for block in blocks:
        for piece in _pieces(block, room):
            if parts and len("\n".join(parts[-1] + piece)) <= room:
                parts[-1].extend(piece)
            else:
                parts.append(piece)
    return [f"{head} ({number}/{len(parts)})\n" + "\n".join(part) for number, part in enumerate(parts, start=1)]


def format_status_text(report: StatusReport, project: SurveyProject | None = None, language: str = "vi") -> str:
    """The same messages as a coordinator's Telegram chat gets, one after another, for a terminal."""
    return "\n\n".join(status_messages(report, project, language))


def _status_blocks(report: StatusReport, project: SurveyProject | None, lang: str) -> list[list[str]]:
    """Per group, its total then its strata; last, the survey total and the legend."""

    def label(row: StatusRow) -> str:
        if row.group == "*":
            return say("status_total", lang)
        group = project.groups.get(row.group) if project else None
        name = group.label_in(lang) if group else row.group
        if row.stratum == "*":
            return f"{name} — {say('status_total', lang).lower()}"
        rest = row.stratum.split("/", 1)[1] if "/" in row.stratum else ""
        if project and rest:
            rest = "/".join(project.units[p].name if p in project.units else p for p in rest.split("/"))
        return f"{name} / {rest}" if rest else name

    def line(row: StatusRow) -> str:
        fill = _pct(row.quota_fill if row.quota else (row.completed / row.target if row.target else None))
        return say("status_row", lang, mark="⚠" if row.lagging else "•", label=label(row), completed=row.completed,
                   target=row.target, fill=fill, rr=_pct(row.rr1), projection=f"{row.projection:.0f}")

    strata = report.strata()
    blocks = []
    for total in (r for r in report.rows if r.group != "*" and r.stratum == "*"):
        blocks.append([line(total)] + [line(r) for r in strata if r.group == total.group])
    last = [line(r) for r in report.rows if r.group == "*"]
    from exporters.modes import modes_line

    if by_mode := modes_line(report.modes(), lang):
        last.append(by_mode)
    if any(r.lagging for r in report.rows):
        last.append(say("status_lagging", lang))
    return blocks + [last]


def _pieces(lines: list[str], room: int) -> list[list[str]]:
    """``lines`` as one piece when they fit in ``room`` characters, else cut at line boundaries
    (a single line longer than ``room`` is shortened)."""
    pieces: list[list[str]] = [[]]
    for text in lines:
        text = text if len(text) <= room else text[: room - 1] + "…"
        if pieces[-1] and len("\n".join(pieces[-1] + [text])) > room:
            pieces.append([])
        pieces[-1].append(text)
    return [piece for piece in pieces if piece]


async def fieldwork_messages(storage: Storage, now: dt.datetime, language: str = "vi",
                             limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """What a coordinator's chat gets for /progress and the daily summary: every stored survey's
    ``status_messages`` at ``now``; the per-form progress when no survey project is stored (open
    mode without a sample), cut to ``limit`` at line boundaries."""
    from surveys.project import stored_project

    messages = []
    for stored in await storage.list_surveys():
        project = await stored_project(storage, stored.id)
        messages += status_messages(await survey_status(storage, project, now), project, language, limit)
    if not messages:
        text = format_progress(await progress(storage), language)
        messages = ["\n".join(piece) for piece in _pieces(text.splitlines(), limit)]
    return messages
