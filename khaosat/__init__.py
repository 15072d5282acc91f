"""khaosat for analysts, from Python or a notebook: synchronous functions that return pandas objects.

    import khaosat

    answers = khaosat.read_answers("survey.sqlite", form="sipas_citizen")     # one row per session
    weighted = khaosat.weight(answers, "design.toml")                       # + the weight column
    estimates = khaosat.estimate(weighted, "design.toml", means=["hai_long_chung"], by=["unit"])
    scores = khaosat.score(weighted, "scoring_par_2026.toml", unit="unit", design="design.toml")

The command line (``khaosat export``, ``weight``, ``estimate``, ``score``) does the same through
the functions underneath. ``data`` is a DataFrame or a file (CSV, XLSX, Parquet, SPSS .sav);
``design`` is a design file (see exporters/design.example.toml), a dict of the same tables, a
`Design`, or None (equal weights, simple random sampling). Problems raise `DesignError` with a
message that names the column or key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from exporters.design import Design, DesignError, design_from_dict, load_design, read_table
from exporters.table import ExportTable, read_export

__all__ = ["Design", "DesignError", "ExportTable", "estimate", "read_answers", "read_table", "read_export",
           "score", "weight"]


def read_answers(db: str | Path, form: str | None = None, layout: str = "wide", language: str = "vi",
                 personal: bool = False) -> pd.DataFrame:
    """The survey database's answers as `khaosat export` writes them (pseudonymous unless
    ``personal``). Labels and the codebook: `read_export` (an `ExportTable`, ``.df`` the frame)."""
    return read_export(db, form, layout, personal, language).df


def _data(data: pd.DataFrame | str | Path) -> pd.DataFrame:
    return data if isinstance(data, pd.DataFrame) else read_table(data)


def _design(design: Design | Mapping[str, Any] | str | Path | None) -> Design:
    if design is None:
        return Design()
    if isinstance(design, Design):
        return design
    if isinstance(design, Mapping):
        return design_from_dict(design)
    return load_design(design)


def weight(data: pd.DataFrame | str | Path, design: Design | Mapping[str, Any] | str | Path) -> pd.DataFrame:
    """The data with its final weights in the design's ``[output] weight`` column; the steps'
    reports and the weight summary are in ``.attrs["weighting"]``."""
    from exporters.weighting import apply_design, weight_summary

    frame, chosen = _data(data), _design(design)
    result = apply_design(frame, chosen)
    out = frame.copy()
    out[chosen.weight_column] = result.weights
    out.attrs["weighting"] = {"weights": weight_summary(result.weights), "base": weight_summary(result.base),
                              "steps": [r.as_dict() for r in result.reports]}
    return out


def estimate(data: pd.DataFrame | str | Path, design: Design | Mapping[str, Any] | str | Path | None = None, *,
             means: Sequence[str] = (), totals: Sequence[str] = (), proportions: Sequence[str] = (),
             ratios: Sequence[str] = (), by: str | Sequence[str] = (), level: float = 0.95,
             interval: str = "normal") -> pd.DataFrame:
    """Means (proportions for a categorical column), totals, proportions and ratios ("num/den"), overall and in each
    domain of ``by`` (several columns: cross-classified), with linearised SEs and intervals (see
    `exporters.intervals`): one row per statistic, as `khaosat estimate` writes them."""
    from exporters.estimation import SurveyDesign, estimate_all
    from exporters.intervals import INTERVALS, degf, interval as bounds

    if interval not in INTERVALS:
        raise DesignError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    frame = _data(data)
    survey = SurveyDesign.from_design(frame, _design(design))
    by_columns = [by] if isinstance(by, str) else list(by)
    rows = []
    for e in estimate_all(survey, means, totals, by_columns or None, proportions, ratios):
        low, high = bounds(e.statistic, e.estimate, e.se, level, interval, degf(survey), len(frame))
        rows.append({"statistic": e.statistic, "variable": e.variable, "domain": e.domain, "estimate": e.estimate,
                     "se": e.se, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["statistic", "variable", "domain", "estimate", "se", "ci_low", "ci_high"])


def score(data: pd.DataFrame | str | Path, rules: str | Path, *, unit: str, group: str | None = None,
          design: Design | Mapping[str, Any] | str | Path | None = None) -> pd.DataFrame:
    """The index's survey share per rated unit (`khaosat score`): one row per statistic."""
    from exporters.estimation import SurveyDesign
    from exporters.scores import score_units, scores_frame
    from surveys.scoring import load_scoring

    frame = _data(data)
    survey = SurveyDesign.from_design(frame, _design(design))
    return scores_frame(score_units(frame, load_scoring(rules), survey, unit=unit, group=group))
