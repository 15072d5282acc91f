"""Design-based estimates with linearised standard errors: means, proportions and totals, overall
and by domain, equal to R's survey package (svymean, svytotal, svyby; confint).

One design object, many estimators (R's shape): build a `SurveyDesign` from a table and a
`Design` (exporters/design.py; a commented example file is exporters/design.example.toml), then
call `mean`, `total`, `proportions` or `by`. Every estimate carries its standard error; `.ci()`
gives a normal confidence interval, as R's `confint` for svymean/svytotal.

Variance (R's svyrecvar with one stage, "ultimate cluster"): influence values z_i (for a mean
w_i (y_i − ȳ) / N̂, for a total w_i y_i) are summed to PSU totals z_hj, and
V = Σ_h (1 − n_h/N_h) · n_h/(n_h − 1) · Σ_j (z_hj − z̄_h)². Without clusters every row is a PSU;
without an fpc the factor (1 − n_h/N_h) is 1; an fpc ≤ 1 is a sampling fraction; with clusters
N_h counts PSUs. After post-stratification, raking or linear calibration, z is first replaced by
residuals exactly as R does (regression on the calibration variables fitted with the
pre-calibration weights; for raking, R's ten back-fitting passes). Domains zero out z outside
the domain but keep every PSU: the design is never subset. Missing values of the analysed
column are treated as R's na.rm=TRUE (those rows get weight 0, their PSUs stay).

Lonely PSUs: as R's default `options(survey.lonely.psu = "fail")`, a stratum with a single PSU is
an error (`LonelyPSUError`) unless its fpc makes it a certainty stratum (no variance).

`run_estimate(...)` is `khaosat estimate`: one CSV row per statistic, with columns
`statistic, variable, domain, estimate, se, ci_low, ci_high`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from exporters.design import Design, DesignError, load_design, read_table
from exporters.weighting import (CalibrationStep, LinearStep, PostStratStep, RakingStep, apply_design,
                                 level_key)
from storage.atomic_files import atomic_open


class LonelyPSUError(DesignError):
    """A stratum has a single PSU (R: 'Stratum (x) has only one PSU at stage 1')."""


@dataclass(frozen=True)
class Estimate:
    statistic: str  # "mean", "total" or "proportion"
    variable: str  # column, or "column=level" for a proportion / a count of a category
    domain: str  # "" for the whole population, else "column=level"
    estimate: float
    se: float

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """Normal confidence interval (R's confint default for svymean and svytotal)."""
        z = NormalDist().inv_cdf(1 - (1 - level) / 2)
        return self.estimate - z * self.se, self.estimate + z * self.se


# -- the design structure ------------------------------------------------------------------------


def _codes(values: pd.Series, what: str, column: str) -> np.ndarray:
    codes, _ = pd.factorize(values, sort=True, use_na_sentinel=True)
    if (codes < 0).any():
        raise DesignError(f"{what} column {column!r} has a missing value in row {int(np.argmax(codes < 0))}")
    return codes.astype(np.intp)


def _structure(df: pd.DataFrame, design: Design):
    """Strata codes, PSU codes (unique over the design) and the stratum of each PSU."""
    n = len(df)
    if n == 0:
        raise DesignError("the data table has no rows")
    strata = _codes(df[design.strata], "strata", design.strata) if design.strata else np.zeros(n, np.intp)
    if design.clusters:
        if design.clusters not in df.columns:
            raise DesignError(f"column {design.clusters!r} (design.clusters) is not in the data")
        clusters = _codes(df[design.clusters], "clusters", design.clusters)
        if design.nest:
            psu, _ = pd.factorize(pd.MultiIndex.from_arrays([strata, clusters]), sort=True)
            psu = psu.astype(np.intp)
        else:
            psu = clusters
            per_psu = pd.Series(strata).groupby(psu).nunique().to_numpy()
            if (per_psu > 1).any():
                row = int(np.argmax(psu == int(np.argmax(per_psu > 1))))
                raise DesignError(f"clusters are not nested in strata: PSU {df[design.clusters].iloc[row]!r} "
                                  f"is in several strata (set nest = true if cluster ids restart in each stratum)")
    else:
        psu = np.arange(n, dtype=np.intp)
    npsu = int(psu.max()) + 1
    psu_stratum = np.zeros(npsu, dtype=np.intp)
    psu_stratum[psu] = strata
    if npsu == 1 and not (design.nest and design.strata):
        raise DesignError("the design has only one primary sampling unit")
    return strata, psu, psu_stratum


def fpc_population(df: pd.DataFrame, design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Per row: population size N_h (PSUs with clusters) and sample size n_h, as R's as.fpc."""
    strata, psu, psu_stratum = _structure(df, design)
    n_h = np.bincount(psu_stratum, minlength=int(strata.max()) + 1).astype(float)
    sampsize = n_h[strata]
    if not design.fpc:
        return np.full(len(df), np.inf), sampsize
    if design.fpc not in df.columns:
        raise DesignError(f"column {design.fpc!r} (design.fpc) is not in the data")
    fpc = pd.to_numeric(df[design.fpc], errors="coerce").to_numpy(float)
    if np.isnan(fpc).any():
        raise DesignError(f"fpc column {design.fpc!r}: row {int(np.argmax(np.isnan(fpc)))} is missing or not a number")
    ispopsize = bool(np.any(fpc > 1))
    if ispopsize != bool(np.all(fpc >= 1)):
        raise DesignError(f"fpc column {design.fpc!r} mixes population sizes (> 1) and sampling fractions "
                          f"(< 1): all values must be >= 1 or all <= 1")
    if not ispopsize and np.any(fpc <= 0):
        raise DesignError(f"fpc column {design.fpc!r}: a sampling fraction must be positive (row "
                          f"{int(np.argmax(fpc <= 0))})")
    popsize = fpc if ispopsize else sampsize / fpc
    if np.any(popsize < sampsize):
        row = int(np.argmax(popsize < sampsize))
        raise DesignError(f"fpc column {design.fpc!r} implies more than 100% sampling: row {row} has population "
                          f"size {popsize[row]:g} but {sampsize[row]:g} sampled "
                          f"{'PSUs' if design.clusters else 'units'} in its stratum")
    varies = pd.Series(popsize).groupby(strata).nunique() > 1
    if varies.any():
        label = df[design.strata].iloc[int(np.argmax(strata == varies.index[np.argmax(varies.to_numpy())]))] \
            if design.strata else "(all)"
        raise DesignError(f"fpc column {design.fpc!r} varies within stratum {label!r}")
    return popsize, sampsize


class Groups:
    """Sums of the rows of a matrix per group code, all columns at once (sorted once, then
    ``np.add.reduceat``): the column-wise equivalent of one ``np.bincount`` per column."""

    def __init__(self, codes: np.ndarray, size: int) -> None:
        self.codes = np.asarray(codes, dtype=np.intp)
        self.size = size
        self.order = np.argsort(self.codes, kind="stable")
        ordered = self.codes[self.order]
        self.starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else ordered
        self.present = ordered[self.starts]
        # Every row its own group in order (a design without clusters: each person a PSU).
        self.identity = size == len(self.codes) and bool(np.array_equal(self.codes, np.arange(size)))

    def sums(self, x: np.ndarray) -> np.ndarray:
        """(size × k) group sums of an (n × k) matrix; a vector gives a vector."""
        if self.identity:
            return x
        if x.ndim == 1:
            return np.bincount(self.codes, weights=x, minlength=self.size)
        out = np.zeros((self.size, x.shape[1]))
        if len(self.codes):
            out[self.present] = np.add.reduceat(x[self.order], self.starts, axis=0)
        return out


class SurveyDesign:
    """A sample with its design: weights, strata, PSUs, fpc and the calibration steps applied.

    Build it with `SurveyDesign.from_design(df, design)` (applies the design's weighting steps, so
    the variance accounts for calibration) or `SurveyDesign(df, design, weights=w, calibration=steps)`.
    """

    def __init__(self, data: pd.DataFrame, design: Design, weights=None,
                 calibration: Sequence[CalibrationStep] = ()):
        design.check_columns(data)
        self.data = data
        self.design = design
        if weights is None:
            from exporters.weighting import base_weights

            weights = base_weights(data, design)
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(data),) or not np.all(np.isfinite(w)):
            raise DesignError("weights must be one finite number per row")
        self.weights = w
        self.calibration = tuple(calibration)
        self.strata, self.psu, self.psu_stratum = _structure(data, design)
        nstrata = int(self.strata.max()) + 1
        self.n_h = np.bincount(self.psu_stratum, minlength=nstrata).astype(float)
        popsize, _ = fpc_population(data, design)
        first = np.zeros(nstrata, dtype=np.intp)
        first[self.strata[::-1]] = np.arange(len(data))[::-1]
        N_h = popsize[first]
        self.f_h = np.where(np.isinf(N_h), 1.0, (N_h - self.n_h) / np.where(np.isinf(N_h), 1.0, N_h))
        self.psu_groups = Groups(self.psu, len(self.psu_stratum))
        self.stratum_groups = Groups(self.psu_stratum, nstrata)
        self.stratum_labels = ([level_key(v) for v in sorted(data[design.strata].unique().tolist(), key=_sort_key)]
                               if design.strata else ["(all)"])

    @classmethod
    def from_design(cls, data: pd.DataFrame, design: Design) -> "SurveyDesign":
        result = apply_design(data, design)
        return cls(data, design, weights=result.weights, calibration=result.steps)

    # -- variance --------------------------------------------------------------------------------

    def residualise(self, x: np.ndarray) -> np.ndarray:
        """Replace influence values by calibration residuals, step by step as R's svyrecvar."""
        x = np.array(x, dtype=float, copy=True)
        for step in self.calibration:
            if isinstance(step, PostStratStep):
                psw, oldw = step.neww.copy(), step.oldw
                psw[(psw == 0) & (oldw == 0)] = 1.0
                groups = Groups(step.codes, int(step.codes.max()) + 1)
                den = groups.sums(oldw)
                ratio = _safe_div(x, psw[:, None])
                means = _safe_div(groups.sums(ratio * oldw[:, None]), den[:, None])
                x -= means[step.codes] * psw[:, None]
            elif isinstance(step, RakingStep):
                psws = step.margin_weights()
                margins = [(Groups(c, int(c.max()) + 1), c) for c in step.codes]
                counts = [np.bincount(c) for c in step.codes]
                for _ in range(10):
                    for (groups, codes), psw, cnt in zip(margins, psws, counts):
                        ratio = _safe_div(x, psw[:, None])
                        means = _safe_div(groups.sums(ratio)[:len(cnt)], cnt[:, None])
                        x -= psw[:, None] * means[codes]
            elif isinstance(step, LinearStep):
                sw = np.sqrt(step.d)
                scale = step.g * sw
                v = _safe_div(x, scale[:, None])
                A = step.X * sw[:, None]
                coef, *_ = np.linalg.lstsq(A, v, rcond=None)
                x = (v - A @ coef) * scale[:, None]
        return x

    def variance(self, z: np.ndarray) -> np.ndarray:
        """Linearised variance of each column of influence values z (n × k)."""
        z = self.residualise(np.asarray(z, dtype=float).reshape(len(self.data), -1))
        scale, centred, factor = self.variance_scale()
        tot = self.psu_groups.sums(z)
        mean = self.stratum_groups.sums(tot) / self.n_h[:, None] * centred[:, None]
        cen = tot - mean[self.psu_stratum]
        return (self.stratum_groups.sums(cen * cen) * scale[:, None]).sum(axis=0) * factor

    def variance_scale(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Per stratum: the factor f_h · n_h / (n_h − 1) (0 for certainty strata) and whether its PSU
        totals are centred at the stratum mean; and the factor of the whole sum. A stratum with one
        PSU follows the design's `lonely_psu` (R's survey.lonely.psu; "fail" by default)."""
        rule = getattr(self.design, "lonely_psu", "fail")
        certain = self.f_h < 1e-7
        lonely = (self.n_h == 1) & ~certain
        if lonely.any() and rule == "fail":
            h = int(np.argmax(lonely))
            raise LonelyPSUError(f"stratum {self.stratum_labels[h]!r} has only one PSU; R's default "
                                 f"(survey.lonely.psu = 'fail') stops here too: merge it with a similar "
                                 f"stratum, give an fpc that marks it as taken in full, or set "
                                 f"[design] lonely_psu")
        scale = np.where(self.n_h > 1, self.f_h * self.n_h / np.maximum(self.n_h - 1, 1), self.f_h)
        scale[certain] = 0.0
        centred = ~(lonely & (rule == "adjust"))
        factor = 1.0
        if rule in ("remove", "certainty"):
            scale[lonely] = 0.0
        elif rule == "average":
            scale[lonely] = 0.0
            factor = len(self.n_h) / (len(self.n_h) - int(lonely.sum())) if not lonely.all() else math.nan
        return scale, centred, factor

    # -- helpers ---------------------------------------------------------------------------------

    def column(self, column: str) -> pd.Series:
        if column not in self.data.columns:
            raise DesignError(f"column {column!r} is not in the data; its columns are: "
                              f"{', '.join(map(str, self.data.columns))}")
        return self.data[column]

    def domain_mask(self, domain) -> tuple[np.ndarray, str]:
        if domain is None:
            return np.ones(len(self.data), dtype=bool), ""
        if isinstance(domain, tuple) and len(domain) == 2 and isinstance(domain[0], str):
            column, level = domain
            codes, uniques = pd.factorize(self.column(column), use_na_sentinel=True)
            wanted = np.array([level_key(v) == level_key(level) for v in uniques.tolist()] + [False])
            return wanted[codes], f"{column}={level_key(level)}"
        mask = np.asarray(domain, dtype=bool)
        if mask.shape != (len(self.data),):
            raise ValueError("a domain must be a (column, level) pair or one boolean per row")
        return mask, "(subset)"


def _safe_div(a, b):
    a = np.asarray(a, dtype=float)
    b = np.broadcast_to(np.asarray(b, dtype=float), a.shape) if np.ndim(b) <= np.ndim(a) else b
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def _sort_key(v):
    return (0, float(v), "") if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        else (1, 0.0, str(v))


def _numeric(design: SurveyDesign, column: str) -> np.ndarray:
    series = design.column(column)
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float).to_numpy()
    if pd.api.types.is_numeric_dtype(series):
        return series.to_numpy(dtype=float, na_value=np.nan)
    converted = pd.to_numeric(series, errors="coerce")
    bad = converted.isna() & series.notna() & (series.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise DesignError(f"column {column!r} is not numeric (row {row} is {series.iloc[row]!r}); a mean or "
                          f"total needs numbers; use proportions for a categorical column")
    return converted.to_numpy(dtype=float, na_value=np.nan)


def is_categorical(design: SurveyDesign, column: str) -> bool:
    """True for text/category/boolean columns with no number in them (a select_one, say)."""
    series = design.column(column)
    if isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(series):
        return True
    if pd.api.types.is_numeric_dtype(series):
        return False
    return pd.to_numeric(series.dropna(), errors="coerce").isna().all()


# -- estimators ----------------------------------------------------------------------------------


def _mean_matrix(design: SurveyDesign, Y: np.ndarray, valid: np.ndarray, mask: np.ndarray, what: str):
    w = design.weights * (valid & mask)
    psum = w.sum()
    if psum == 0:
        raise DesignError(f"{what}: no observations with a positive weight")
    Y = np.where(np.isnan(Y), 0.0, Y)
    avg = (w[:, None] * Y).sum(axis=0) / psum
    z = w[:, None] * (Y - avg) / psum
    return avg, np.sqrt(design.variance(z))


def mean(design: SurveyDesign, column: str, domain=None) -> Estimate:
    """Weighted mean of a numeric column (svymean; missing values as na.rm=TRUE)."""
    mask, label = design.domain_mask(domain)
    y = _numeric(design, column)
    avg, se = _mean_matrix(design, y[:, None], ~np.isnan(y), mask, f"mean of {column!r}")
    return Estimate("mean", column, label, float(avg[0]), float(se[0]))


def ratio_columns(design: SurveyDesign, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The numerator and denominator of a ratio named "numerator/denominator", as numbers."""
    numerator, slash, denominator = column.partition("/")
    if not slash or not numerator or not denominator:
        raise DesignError(f"a ratio is written numerator/denominator (two columns), not {column!r}")
    return _numeric(design, numerator), _numeric(design, denominator)


def ratio(design: SurveyDesign, column: str, domain=None) -> Estimate:
    """Σ w·y / Σ w·x for column "y/x", e.g. procedures on time / procedures (svyratio; rows where
    either is missing are left out, their PSUs stay)."""
    mask, label = design.domain_mask(domain)
    y, x = ratio_columns(design, column)
    w = design.weights * (~np.isnan(y) & ~np.isnan(x) & mask)
    y0, x0 = np.where(np.isnan(y), 0.0, y), np.where(np.isnan(x), 0.0, x)
    denominator = float((w * x0).sum())
    if denominator == 0:
        raise DesignError(f"ratio {column!r}: the weighted total of the denominator is 0")
    estimate = float((w * y0).sum()) / denominator
    z = w * (y0 - estimate * x0) / denominator
    return Estimate("ratio", column, label, estimate, float(np.sqrt(design.variance(z[:, None]))[0]))


def total(design: SurveyDesign, column: str, domain=None) -> Estimate:
    """Weighted total of a numeric column (svytotal; missing values as na.rm=TRUE)."""
    mask, label = design.domain_mask(domain)
    y = _numeric(design, column)
    w = design.weights * (~np.isnan(y) & mask)
    z = w * np.where(np.isnan(y), 0.0, y)
    return Estimate("total", column, label, float(z.sum()), float(np.sqrt(design.variance(z[:, None]))[0]))


def _indicators(design: SurveyDesign, column: str):
    series = design.column(column)
    found, distinct = pd.factorize(series, use_na_sentinel=True)
    present = found >= 0
    levels = sorted(distinct.tolist(), key=_sort_key)
    keys = [level_key(v) for v in levels]
    lookup = {lv: i for i, lv in enumerate(levels)}
    codes = np.array([lookup[v] for v in distinct.tolist()] + [-1], dtype=np.intp)[found]
    Y = np.zeros((len(series), len(levels)))
    Y[present, codes[present]] = 1.0
    return Y, present, keys


def proportions(design: SurveyDesign, column: str, domain=None) -> list[Estimate]:
    """One proportion per category of a column (svymean on a factor; missing as na.rm=TRUE)."""
    mask, label = design.domain_mask(domain)
    Y, present, keys = _indicators(design, column)
    avg, se = _mean_matrix(design, Y, present, mask, f"proportions of {column!r}")
    return [Estimate("proportion", f"{column}={k}", label, float(a), float(s)) for k, a, s in zip(keys, avg, se)]


def counts(design: SurveyDesign, column: str, domain=None) -> list[Estimate]:
    """Estimated population count per category (svytotal on a factor)."""
    mask, label = design.domain_mask(domain)
    Y, present, keys = _indicators(design, column)
    z = (design.weights * (present & mask))[:, None] * Y
    se = np.sqrt(design.variance(z))
    return [Estimate("total", f"{column}={k}", label, float(t), float(s))
            for k, t, s in zip(keys, z.sum(axis=0), se)]


def by(design: SurveyDesign, estimator, column: str, by_column: str | Sequence[str]) -> list[Estimate]:
    """An estimator in each domain of `by_column` (or of several columns, cross-classified): svyby.
    Sorted levels; the design is never subset. Means, proportions, totals and counts are computed
    for all domains at once (`exporters.domains`); any other estimator domain by domain."""
    from exporters.domains import domain_estimates, domains

    codes, labels = domains(design, by_column)
    x = None
    if estimator in (mean, total):
        y = _numeric(design, column)
        Y, valid, names = y[:, None], ~np.isnan(y), [column]
    elif estimator is ratio:
        y, x = ratio_columns(design, column)
        Y, valid, names = y[:, None], ~np.isnan(y) & ~np.isnan(x), [column]
    elif estimator in (proportions, counts):
        Y, valid, keys = _indicators(design, column)
        names = [f"{column}={k}" for k in keys]
    else:
        out: list[Estimate] = []
        for d, label in enumerate(labels):
            for e in (lambda r: r if isinstance(r, list) else [r])(estimator(design, column, domain=codes == d)):
                out.append(Estimate(e.statistic, e.variable, label, e.estimate, e.se))
        return out
    is_ratio = estimator in (mean, proportions, ratio)
    statistic = {mean: "mean", total: "total", proportions: "proportion", counts: "total", ratio: "ratio"}[estimator]
    what = f"{statistic if statistic != 'proportion' else 'proportions'} of {column!r}"
    est, se = domain_estimates(design, Y, valid, codes, labels, is_ratio, what, x)
    return [Estimate(statistic, name, label, float(est[d, j]), float(se[d, j]))
            for d, label in enumerate(labels) for j, name in enumerate(names)]


# -- khaosat estimate ----------------------------------------------------------------------------


def estimate_all(design: SurveyDesign, means: Iterable[str] = (), totals: Iterable[str] = (),
                 by_column: str | Sequence[str] | None = None, proportions_of: Iterable[str] = (),
                 ratios: Iterable[str] = ()) -> list[Estimate]:
    """What `khaosat estimate` computes: a mean per numeric `means` column (proportions for a
    categorical one), a total per `totals` column (counts per category for a categorical one),
    overall and, with `by_column`, in each of its domains (several columns: cross-classified)."""
    jobs = []
    for column in means:
        jobs.append((proportions if is_categorical(design, column) else mean, column))
    for column in proportions_of:
        jobs.append((proportions, column))
    for column in totals:
        jobs.append((counts if is_categorical(design, column) else total, column))
    for column in ratios:
        jobs.append((ratio, column))
    out: list[Estimate] = []
    for estimator, column in jobs:
        result = estimator(design, column)
        out.extend(result if isinstance(result, list) else [result])
        if by_column:
            out.extend(by(design, estimator, column, by_column))
    return out


def write_estimates(estimates: Sequence[Estimate], out_path: str | Path, level: float = 0.95,
                    interval: str = "normal", df: float = math.inf, rows: int = 0) -> None:
    """The CSV of `khaosat estimate`; intervals as `exporters.intervals.interval` says."""
    from exporters.intervals import interval as bounds

    with atomic_open(out_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["statistic", "variable", "domain", "estimate", "se", "ci_low", "ci_high"])
        for e in estimates:
            lo, hi = bounds(e.statistic, e.estimate, e.se, level, interval, df, rows)
            writer.writerow([e.statistic, e.variable, e.domain, repr(e.estimate), repr(e.se), repr(lo), repr(hi)])


def run_estimate(data_path, design_path, means: Sequence[str] = (), totals: Sequence[str] = (),
                 by: str | Sequence[str] | None = None, out_path: str | Path | None = None, level: float = 0.95,
                 proportions_of: Sequence[str] = (), interval: str = "normal",
                 ratios: Sequence[str] = ()) -> list[Estimate]:
    """`khaosat estimate`: read the data (a path or a DataFrame) and design, apply its weighting
    steps, estimate, and write the CSV (statistic, variable, domain, estimate, se, ci_low, ci_high);
    ``interval``: normal (R's confint), t with the design's degrees of freedom, or a svyciprop
    method for proportions (`exporters.intervals`), at ``level``."""
    from exporters.intervals import INTERVALS, degf

    if interval not in INTERVALS:
        raise DesignError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if not 0 < level < 1:
        raise DesignError(f"the confidence level must be between 0 and 1 (e.g. 0.95), not {level}")
    df = data_path if isinstance(data_path, pd.DataFrame) else read_table(data_path)
    design = load_design(design_path)
    by_columns = [by] if isinstance(by, str) else list(by or ())
    for column in [*means, *totals, *proportions_of, *by_columns, *(p for r in ratios for p in r.split("/", 1))]:
        if column not in df.columns:
            raise DesignError(f"column {column!r} is not in the data; its columns are: "
                              f"{', '.join(map(str, df.columns))}")
    if not (means or totals or proportions_of or ratios):
        raise DesignError("nothing to estimate: give --mean COL, --total COL or --ratio NUM/DEN")
    survey = SurveyDesign.from_design(df, design)
    estimates = estimate_all(survey, means, totals, by_columns or None, proportions_of, ratios)
    if out_path is not None:
        write_estimates(estimates, out_path, level, interval, degf(survey), len(df))
    return estimates
