"""The survey share of an index per rated unit, with standard errors and ranks.

Input is a plain table — one row per rating (a respondent rating one unit; with cross-rating a
respondent has several rows) — plus the design and the scoring rules, so paper forms typed
into Excel score exactly like the bot's answers. For cross-rating, give the design
`clusters = "<respondent id column>"` so that one person's ratings of several units are not
treated as independent.

For unit u and sub-criterion s, each row's share x_is is the mean of the shares its answers
earn on the sub-criterion's questions (options marked "exclude", such as "Không biết", and
unanswered questions do not count). Within each respondent group g the design-weighted mean
m_gs is taken; the groups' means are combined with the rules' group weights, renormalised over
the groups that rated u on s; points = max_points × share. Criteria, domains and the total are
sums of their sub-criteria. Standard errors are linearised: every statistic is a smooth function
of domain means, so each row's influence value is formed and the design's variance (strata,
clusters, fpc, calibration — `SurveyDesign.variance`) is applied, keeping every PSU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from exporters.design import Design, DesignError, load_design, read_table
from exporters.estimation import SurveyDesign
from storage.atomic_files import atomic_path, make_folder
from surveys.scoring import ScoringRules, load_scoring

LEVELS = ("subcriterion", "criterion", "domain", "total")


@dataclass(frozen=True)
class Score:
    unit: str
    level: str  # subcriterion | criterion | domain | total | aspect | satisfaction
    id: str
    name: str
    value: float  # points; for satisfaction levels, the share satisfied
    maximum: float
    se: float
    rank: int | None = None

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        from statistics import NormalDist

        z = NormalDist().inv_cdf(0.5 + level / 2)
        return self.value - z * self.se, self.value + z * self.se


def _shares(data: pd.DataFrame, rules: ScoringRules) -> dict[str, np.ndarray]:
    """Each row's share on each sub-criterion (NaN where none of its answers count)."""
    missing = [q for q in rules.questions if q not in data.columns]
    if missing:
        raise DesignError(f"the data has no column for question(s) {', '.join(missing)} that the rules score")
    shares = {}
    for sub in rules.subcriteria:
        values = np.array([[np.nan if (s := rules.share(sub.scale, v)) is None else s for v in data[q].tolist()]
                           for q in sub.questions], dtype=float)
        counted = (~np.isnan(values)).sum(axis=0)
        with np.errstate(invalid="ignore"):
            shares[sub.id] = np.where(counted > 0, np.nansum(values, axis=0) / np.maximum(counted, 1), np.nan)
    return shares


def _combined_mean(x: np.ndarray, w: np.ndarray, in_unit: np.ndarray, groups: np.ndarray | None,
                   group_weights: dict[str, float]) -> tuple[float, np.ndarray]:
    """A group-weighted mean of x over the unit's rows, and each row's influence on it."""
    valid = in_unit & ~np.isnan(x)
    parts = [(None, 1.0, valid)] if groups is None or not group_weights else [
        (g, weight, valid & (groups == g)) for g, weight in group_weights.items()]
    parts = [(g, weight, mask) for g, weight, mask in parts if (w * mask).sum() > 0]
    if not parts:
        return math.nan, np.zeros(len(x))
    total_weight = sum(weight for _, weight, _ in parts)
    estimate, influence = 0.0, np.zeros(len(x))
    for _, weight, mask in parts:
        wm = w * mask
        m = float((wm * np.where(mask, x, 0.0)).sum() / wm.sum())
        share = weight / total_weight
        estimate += share * m
        influence += share * wm * np.where(mask, x - m, 0.0) / wm.sum()
    return estimate, influence


def score_units(data: pd.DataFrame, rules: ScoringRules, design: SurveyDesign, *, unit: str,
                group: str | None = None) -> list[Score]:
    if unit not in data.columns:
        raise DesignError(f"the data has no column {unit!r} for the rated unit")
    if group is not None and group not in data.columns:
        raise DesignError(f"the data has no column {group!r} for the respondent group")
    w = design.weights
    shares = _shares(data, rules)
    units = sorted({str(u) for u in data[unit].dropna().tolist()})
    unit_values = data[unit].astype(str).to_numpy()
    groups = data[group].astype(str).to_numpy() if group else None
    scores: list[Score] = []
    for u in units:
        in_unit = unit_values == u
        rows: list[tuple[str, str, str, float, float]] = []  # level, id, name, value, maximum
        influences: list[np.ndarray] = []
        per_sub: dict[str, tuple[float, np.ndarray]] = {}
        for sub in rules.subcriteria:
            share, z = _combined_mean(shares[sub.id], w, in_unit, groups, dict(rules.group_weights))
            per_sub[sub.id] = (sub.max_points * share, sub.max_points * z)
            rows.append(("subcriterion", sub.id, sub.name, sub.max_points * share, sub.max_points))
            influences.append(sub.max_points * z)
        for level, key, names in (("criterion", lambda s: s.criterion, {k: v[0] for k, v in rules.criteria.items()}),
                                  ("domain", lambda s: s.domain, dict(rules.domains)),
                                  ("total", lambda s: "total", {"total": rules.name or "total"})):
            for ident in dict.fromkeys(key(sub) for sub in rules.subcriteria):
                members = [sub for sub in rules.subcriteria if key(sub) == ident]
                value = sum(per_sub[sub.id][0] for sub in members)  # NaN if any sub-criterion is unrated
                rows.append((level, ident, names.get(ident, ident), value, sum(sub.max_points for sub in members)))
                influences.append(sum(per_sub[sub.id][1] for sub in members))
        if rules.satisfaction is not None:
            for level, ident, name, value, z in _satisfaction(data, rules, w, in_unit):
                rows.append((level, ident, name, value, 1.0))
                influences.append(z)
        se = np.sqrt(design.variance(np.column_stack(influences)))
        scores += [Score(u, level, ident, name, float(value), float(maximum),
                         float(s) if not math.isnan(value) else math.nan)
                   for (level, ident, name, value, maximum), s in zip(rows, se)]
    return _ranked(scores)


def _satisfaction(data: pd.DataFrame, rules: ScoringRules, w: np.ndarray, in_unit: np.ndarray):
    """Share satisfied per question, averaged per aspect, and the aspects averaged overall."""
    sat = rules.satisfaction
    aspects = []
    for aspect, questions in sat.aspects.items():
        per_question = []
        for question in questions:
            if question not in data.columns:
                raise DesignError(f"the data has no column for satisfaction question {question!r}")
            answers = [None if v is None or (isinstance(v, float) and math.isnan(v)) else
                       (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
                       for v in data[question].tolist()]
            y = np.array([np.nan if a is None or a == "" or a in sat.excluded else float(a in sat.satisfied)
                          for a in answers])
            p, z = _combined_mean(y, w, in_unit, None, {})
            if not math.isnan(p):
                per_question.append((p, z))
        if per_question:
            value = sum(p for p, _ in per_question) / len(per_question)
            influence = sum(z for _, z in per_question) / len(per_question)
            aspects.append(("aspect", aspect, sat.aspect_names.get(aspect, aspect), value, influence))
    yield from aspects
    if aspects:
        yield ("satisfaction", "overall", "overall", sum(a[3] for a in aspects) / len(aspects),
               sum(a[4] for a in aspects) / len(aspects))


def _ranked(scores: list[Score]) -> list[Score]:
    """Rank units (1 = best) on the total, each domain and overall satisfaction; ties share a rank."""
    ranked = []
    for score in scores:
        if score.level in ("total", "domain", "satisfaction") and not math.isnan(score.value):
            peers = [s.value for s in scores if (s.level, s.id) == (score.level, score.id) and not math.isnan(s.value)]
            score = Score(**{**score.__dict__, "rank": 1 + sum(v > score.value for v in peers)})
        ranked.append(score)
    return ranked


def scores_frame(scores: Sequence[Score], level: float = 0.95) -> pd.DataFrame:
    rows = []
    for score in scores:
        low, high = score.ci(level)
        rows.append({"unit": score.unit, "level": score.level, "id": score.id, "name": score.name,
                     "value": score.value, "maximum": score.maximum, "se": score.se,
                     "ci_low": low, "ci_high": high, "rank": score.rank})
    return pd.DataFrame(rows)


def run_score(data: Path | pd.DataFrame, rules_path: Path, out_path: Path, *, unit: str, group: str | None = None,
              design_path: Path | None = None) -> pd.DataFrame:
    """`khaosat score`: read the table (a path or a DataFrame), the rules and the design; write one
    row per statistic."""
    data = data if isinstance(data, pd.DataFrame) else read_table(data)
    rules = load_scoring(rules_path)
    design = SurveyDesign.from_design(data, load_design(design_path) if design_path else Design())
    frame = scores_frame(score_units(data, rules, design, unit=unit, group=group))
    out_path = Path(out_path)
    make_folder(out_path.parent)
    with atomic_path(out_path) as partial:
        if out_path.suffix.lower() == ".xlsx":
            frame.to_excel(partial, index=False)
        else:
            frame.to_csv(partial, index=False, encoding="utf-8-sig")
    return frame
