"""The report's sections (fieldwork, weights, scores, domains, satisfaction) built from its inputs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from exporters.report.charts import (chart_domains, chart_fill, chart_rates, chart_satisfaction,
                                     chart_totals, chart_weights)
from exporters.report.content import Chart, Column, Section, Table, _nfc, t

# -- sections -------------------------------------------------------------------------------------


def _group_name(project, gid: str, lang: str) -> str:
    group = project.groups.get(gid) if project is not None else None
    return _nfc(group.label_in(lang)) if group else gid


def stratum_label(row, project, lang: str) -> str:
    """"Người dân / Xã Á" for citizen/xa-a; totals as "Tổng" and "Người dân — tổng"."""
    if row.group == "*":
        return t("total", lang)
    name = _group_name(project, row.group, lang)
    if row.stratum == "*":
        return t("group_total", lang, group=name)
    rest = row.stratum.split("/", 1)[1] if "/" in row.stratum else ""
    if project is not None and rest:
        rest = "/".join(_nfc(project.units[p].name) if p in project.units else p for p in rest.split("/"))
    return f"{name} / {rest}" if rest else name


def _fill(row) -> float | None:
    """Completes over target: the quota fill where there is a quota (target = quota)."""
    return row.completed / row.target if row.target else None


def fieldwork_section(status, project, lang: str) -> Section:
    state = (t("closed_state", lang, closes=status.closes) if status.closed else
             t("open_state", lang, days=status.days_left, closes=status.closes))
    section = Section("fieldwork", t("fieldwork", lang),
                      notes=[t("fieldwork_note", lang, state=state, pace=status.pace_days)])
    columns = [Column(t("group", lang), width=18), Column(t("stratum", lang), width=18),
               Column(t("stratum_name", lang), width=28)]
    columns += [Column(t(name, lang), "int", 10) for name in ("allocated", "sampled", "invited", "contacted",
                                                              "started", "completed")]
    columns += [Column("RR1", "pct", 8), Column("RR2", "pct", 8), Column("COOP1", "pct", 8),
                Column(t("quota", lang), "int", 10), Column(t("target", lang), "int", 10),
                Column(t("fill", lang), "pct", 10), Column(t("pace", lang), "float", 10),
                Column(t("projection", lang), "points", 10), Column(t("lagging", lang), "bool", 8)]
    table = Table("fieldwork", columns, [], caption=t("fieldwork", lang))
    for row in status.rows:
        total = "*" in (row.group, row.stratum)
        group = t("total", lang) if row.group == "*" else _group_name(project, row.group, lang)
        table.rows.append([group, row.stratum, stratum_label(row, project, lang), row.allocated, row.sampled,
                           row.invited, row.contacted, row.started, row.completed, row.rr1, row.rr2, row.coop1,
                           row.quota, row.target, _fill(row), row.pace, row.projection, row.lagging])
        table.highlight.append(row.lagging)
        table.strong.append(total)
    section.tables.append(table)
    strata = status.strata()
    if not strata:
        section.notes.append(t("no_strata", lang))
        return section
    labels = [stratum_label(r, project, lang) for r in strata]
    lagging = [r.lagging for r in strata]
    section.charts.append(Chart("fieldwork_rates", t("chart_rates", lang),
                                chart_rates(labels, [r.rr1 for r in strata], [r.rr2 for r in strata], lagging,
                                            lang)))
    section.charts.append(Chart("fieldwork_fill", t("chart_fill", lang),
                                chart_fill(labels, [_fill(r) for r in strata],
                                           [r.projection / r.target if r.target else None for r in strata],
                                           lagging, lang)))
    return section


def weights_section(w: np.ndarray, dropped: int, column: str, source: str, lang: str) -> Section:
    from exporters.weighting import weight_summary

    summary = weight_summary(w)
    section = Section("weights", t("weights", lang), notes=[t("weights_note", lang, column=column, file=source)])
    if dropped:
        section.notes.append(t("weights_dropped", lang, n=dropped))
    table = Table("weights", [Column(t("statistic", lang), width=40), Column(t("value", lang), "weight", 16)], [],
                  caption=t("weights_summary", lang))
    for key in ("n", "min", "q1", "median", "q3", "max", "mean", "sum", "deff", "n_eff"):
        table.rows.append([t(key, lang), summary[key]])
    section.tables.append(table)
    section.charts.append(Chart("weights", t("chart_weights", lang), chart_weights(w, summary, lang)))
    return section


def _unit_names(frame: pd.DataFrame, project) -> dict[str, str]:
    units = project.units if project is not None else {}
    return {u: (_nfc(units[u].name) if u in units else u) for u in dict.fromkeys(frame["unit"])}


def _unit_label(unit: str, names: dict[str, str]) -> str:
    name = names.get(unit, unit)
    return unit if name == unit else name


def _by_rank(totals: pd.DataFrame) -> pd.DataFrame:
    return totals.assign(_r=totals["rank"].fillna(math.inf)).sort_values(["_r", "unit"], kind="stable")


def scores_sections(frame: pd.DataFrame, project, source: str, lang: str) -> list[Section]:
    names = _unit_names(frame, project)
    totals = _by_rank(frame[frame["level"] == "total"].drop_duplicates("unit"))
    order = list(totals["unit"])
    labels = [_unit_label(u, names) for u in order]
    maximum = float(totals["maximum"].max()) if totals["maximum"].notna().any() else 0.0

    scores = Section("scores", t("scores", lang), notes=[t("scores_note", lang, file=source)])
    table = Table("scores", [Column(t("rank", lang), "int", 7), Column(t("unit", lang), width=14),
                             Column(t("name", lang), width=28), Column(t("points", lang), "points", 10),
                             Column(t("maximum", lang), "points", 10), Column(t("se", lang), "float", 12),
                             Column(t("ci_low", lang), "points", 14), Column(t("ci_high", lang), "points", 14)], [],
                  caption=t("scores", lang))
    for r in totals.itertuples():
        table.rows.append([None if pd.isna(r.rank) else int(r.rank), r.unit, names[r.unit], _num(r.value),
                           _num(r.maximum), _num(r.se), _num(r.ci_low), _num(r.ci_high)])
    scores.tables.append(table)
    scores.charts.append(Chart("scores", t("chart_scores", lang),
                               chart_totals(labels, totals["value"].to_numpy(float), totals["ci_low"].to_numpy(float),
                                            totals["ci_high"].to_numpy(float), maximum, lang)))
    sections = [scores]

    domain_rows = frame[frame["level"] == "domain"]
    if not domain_rows.empty:
        domains = list(dict.fromkeys(domain_rows["id"]))
        first = domain_rows.drop_duplicates("id").set_index("id")
        titles = [first.at[d, "name"] or d for d in domains]
        points = np.full((len(order), len(domains)), np.nan)
        value = {(r.unit, r.id): r.value for r in domain_rows.itertuples()}
        for i, u in enumerate(order):
            for j, d in enumerate(domains):
                points[i, j] = value.get((u, d), np.nan)
        section = Section("domains", t("domains", lang), notes=[t("domains_note", lang)])
        columns = [Column(t("rank", lang), "int", 7), Column(t("unit", lang), width=14),
                   Column(t("name", lang), width=28)]
        columns += [Column(t("domain_header", lang, name=title if title == d else f"{d} · {title}",
                             max=f"{_num(first.at[d, 'maximum']) or 0:g}"),
                           "points", 16) for d, title in zip(domains, titles)]
        columns.append(Column(t("domain_header", lang, name=t("total", lang), max=f"{maximum:g}"), "points", 14))
        table = Table("domains", columns, [], caption=t("domains", lang))
        for i, r in enumerate(totals.itertuples()):
            table.rows.append([None if pd.isna(r.rank) else int(r.rank), r.unit, names[r.unit],
                               *(_num(v) for v in points[i]), _num(r.value)])
        section.tables.append(table)
        section.charts.append(Chart("domains", t("chart_domains", lang),
                                    chart_domains(labels, [f"{d} · {n}" if n != d else d for d, n in
                                                           zip(domains, titles)], points, lang)))
        sections.append(section)

    aspect_rows = frame[frame["level"] == "aspect"]
    if not aspect_rows.empty:
        aspects = list(dict.fromkeys(aspect_rows["id"]))
        first = aspect_rows.drop_duplicates("id").set_index("id")
        titles = [first.at[a, "name"] or a for a in aspects]
        share = {(r.unit, r.id): r.value for r in aspect_rows.itertuples()}
        overall = {r.unit: r.value for r in frame[frame["level"] == "satisfaction"].itertuples()}
        units = [u for u in order if any((u, a) in share for a in aspects)]
        shares = np.array([[share.get((u, a), np.nan) for a in aspects] for u in units], dtype=float)
        section = Section("satisfaction", t("satisfaction", lang), notes=[t("satisfaction_note", lang)])
        columns = [Column(t("unit", lang), width=14), Column(t("name", lang), width=28)]
        columns += [Column(title, "pct", 14) for title in titles]
        columns.append(Column(t("overall", lang), "pct", 12))
        table = Table("satisfaction", columns, [], caption=t("satisfaction", lang))
        for i, u in enumerate(units):
            table.rows.append([u, names[u], *(_num(v) for v in shares[i]), _num(overall.get(u))])
        section.tables.append(table)
        section.charts.append(Chart("satisfaction", t("chart_satisfaction", lang),
                                    chart_satisfaction([_unit_label(u, names) for u in units], titles, shares,
                                                       lang)))
        sections.append(section)
    return sections


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v
