"""Confidence intervals as R's survey package gives them: normal (``confint`` of svymean and
svytotal), t with the design's degrees of freedom (``confint(..., df = degf(design))``), and for
proportions the methods of ``svyciprop``: "logit" and "xlogit" (a Wald interval on the logit
scale, back-transformed: it stays inside 0–1), "asin" (arcsine square root), "beta" (Korn and
Graubard's, with an effective sample size) and "mean" (p ± t·se). svyciprop's own default is
"logit" with df = degf(design).

Degrees of freedom (R's ``degf``): the number of PSUs less the number of strata.
"""

from __future__ import annotations

import math
from typing import Any

INTERVALS = ("normal", "t", "logit", "xlogit", "asin", "beta", "mean")
PROPORTION_ONLY = ("logit", "xlogit", "asin", "beta")


def degf(design: Any) -> int:
    """R's degf(design): PSUs − strata (each row is a PSU without clusters)."""
    return len(design.psu_stratum) - len(design.n_h)


def interval(statistic: str, estimate: float, se: float, level: float, method: str, df: float,
             rows: int) -> tuple[float, float]:
    """The (low, high) interval of one estimate. ``method`` is one of `INTERVALS`; the
    svyciprop methods apply to proportions, other statistics get the t interval with them."""
    from scipy import stats

    if method not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {method!r}")
    if not 0 < level < 1:
        raise ValueError(f"the confidence level must be between 0 and 1, not {level}")
    alpha = 1 - level
    if method == "normal":
        q = float(stats.norm.ppf(1 - alpha / 2))
        return estimate - q * se, estimate + q * se
    q = float(stats.t.ppf(1 - alpha / 2, df))
    p = estimate
    if statistic != "proportion" or method in ("t", "mean"):
        return estimate - q * se, estimate + q * se
    if not 0 < p < 1:
        return math.nan, math.nan
    if method in ("logit", "xlogit"):
        eta, half = math.log(p / (1 - p)), q * se / (p * (1 - p))
        return _expit(eta - half), _expit(eta + half)
    if method == "asin":
        angle, half = math.asin(math.sqrt(p)), q * se / (2 * math.sqrt(p * (1 - p)))
        return math.sin(angle - half) ** 2, math.sin(angle + half) ** 2
    n_eff = p * (1 - p) / se ** 2 * float(stats.t.ppf(alpha / 2, rows - 1) / stats.t.ppf(alpha / 2, df)) ** 2
    return (float(stats.beta.ppf(alpha / 2, n_eff * p, n_eff * (1 - p) + 1)),
            float(stats.beta.ppf(1 - alpha / 2, n_eff * p + 1, n_eff * (1 - p))))


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))
