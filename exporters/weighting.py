"""Survey weights: base weights, nonresponse adjustment, post-stratification, raking, linear
calibration, trimming and a weight summary, as plain functions over pandas/numpy.

Every adjustment returns ``(new_weights, report)``. The report carries what the variance estimator
needs (`report.step`, residualised in `exporters.estimation` exactly as R's survey package does)
plus iterations, convergence and the largest remaining margin error. The arithmetic follows R's
survey package 4.x (`postStratify`, `rake`, `calibrate(calfun="linear")`, `trimWeights`) so that
weights agree with R to rounding error; see tests/test_weighting.py, which runs R on the same data.

`run_weight(data, design_path, out_path)` is `khaosat weight`: base weights, then nonresponse
adjustment, calibration and trimming as the design file asks (exporters/design.example.toml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from exporters.design import Design, DesignError, Margin, load_design, read_table
from exporters.grake import grake, logit_calfun
from storage.atomic_files import atomic_path

# -- calibration steps (what the variance needs) -------------------------------------------------


@dataclass(frozen=True)
class PostStratStep:
    """postStratify: `codes` per row, weights before (`oldw`) and after (`neww`)."""

    codes: np.ndarray
    oldw: np.ndarray
    neww: np.ndarray


@dataclass(frozen=True)
class RakingStep:
    """rake: per margin the row codes and the factors of the last sweep; `final` weights after it.

    R keeps the weights after each margin's post-stratification of the last sweep (`psw`); they are
    rebuilt here from the final weights and the factors, which avoids copying every sweep.
    """

    codes: tuple[np.ndarray, ...]
    factors: tuple[np.ndarray, ...]
    final: np.ndarray

    def margin_weights(self) -> list[np.ndarray]:
        out = [self.final]
        w = self.final
        for codes, factor in zip(self.codes[:0:-1], self.factors[:0:-1]):
            f = factor[codes]
            w = np.divide(w, f, out=np.zeros_like(w), where=f != 0)
            out.append(w)
        return out[::-1]


@dataclass(frozen=True)
class LinearStep:
    """Linear (GREG) calibration: model matrix, weights before (`d`) and g-weights (new = g·d)."""

    X: np.ndarray
    d: np.ndarray
    g: np.ndarray


CalibrationStep = PostStratStep | RakingStep | LinearStep


@dataclass
class Report:
    """What an adjustment did."""

    method: str
    iterations: int = 0
    converged: bool = True
    max_margin_error: float = 0.0  # largest |weighted sample total - population total| over levels
    maxit: int | None = None
    epsilon: float | None = None
    step: CalibrationStep | None = field(default=None, repr=False)
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {"method": self.method, "iterations": self.iterations, "converged": self.converged,
               "max_margin_error": self.max_margin_error}
        if self.maxit is not None:
            out["maxit"] = self.maxit
        if self.epsilon is not None:
            out["epsilon"] = self.epsilon
        out.update(self.details)
        return out


# -- helpers -------------------------------------------------------------------------------------


def _column(df: pd.DataFrame, column: str, what: str) -> pd.Series:
    if column not in df.columns:
        raise DesignError(f"column {column!r} ({what}) is not in the data; its columns are: "
                          f"{', '.join(map(str, df.columns))}")
    return df[column]


def _as_weights(weights, n: int | None = None) -> np.ndarray:
    w = np.array(weights, dtype=float)  # a copy: never change the caller's array
    if w.ndim != 1:
        raise ValueError("weights must be one-dimensional")
    if n is not None and len(w) != n:
        raise ValueError(f"{len(w)} weights for {n} rows")
    if not np.all(np.isfinite(w)):
        raise DesignError("weights contain missing or infinite values")
    return w


def level_key(value: Any) -> str:
    """How a data value is matched to a level name in the design file: 2.0 -> "2", True -> "True"."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return str(value)


def _margin_codes(series: pd.Series, levels: Sequence[str], variable: str) -> np.ndarray:
    """Row codes into `levels` (strings); rows whose level is not listed get code len(levels)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if (codes < 0).any():
        raise DesignError(f"calibration variable {variable!r} has missing values "
                          f"(row {int(np.argmax(codes < 0))})")
    index = {name: i for i, name in enumerate(levels)}
    lookup = np.array([index.get(level_key(u), len(levels)) for u in uniques], dtype=np.intp)
    return lookup[codes]


def _normalise_margins(margins) -> list[Margin]:
    if isinstance(margins, Margin):
        return [margins]
    if isinstance(margins, Mapping):
        margins = list(margins.items())
    out = []
    for m in margins:
        if isinstance(m, Margin):
            out.append(m)
        else:
            variable, totals = m
            if isinstance(totals, Mapping):
                out.append(Margin(variable, totals={str(k): float(v) for k, v in totals.items()}))
            else:
                out.append(Margin(variable, total=float(totals)))
    return out


@dataclass
class _Coded:
    variable: str
    codes: np.ndarray  # intp, len(levels) = "not in the population table"
    levels: list[str]
    population: np.ndarray  # len(levels) + 1, the last is unused
    series: pd.Series  # the data column, for messages


def _code_margin(df: pd.DataFrame, margin: Margin) -> _Coded:
    if not margin.categorical:
        raise DesignError(f"margin {margin.variable!r} is numeric; post-stratification and raking "
                          f"need population counts per level")
    series = _column(df, margin.variable, "a calibration variable")
    levels = list(margin.totals)
    codes = _margin_codes(series, levels, margin.variable)
    pop = np.array([margin.totals[k] for k in levels] + [0.0])
    return _Coded(margin.variable, codes, levels, pop, series)


def _factors(coded: _Coded, w: np.ndarray, partial: bool = False) -> np.ndarray:
    """postStratify's reweighting factor per level (the last entry, for unlisted levels, is 1)."""
    k = len(coded.levels)
    sample = np.bincount(coded.codes, weights=w, minlength=k + 1)
    if sample[k] != 0:
        row = int(np.flatnonzero((coded.codes == k) & (w != 0))[0])
        raise DesignError(f"calibration variable {coded.variable!r}: level "
                          f"{level_key(coded.series.iloc[row])!r} (row {row}) is in the sample but has no "
                          f"population total (levels given: {', '.join(coded.levels)})")
    pop = coded.population
    absent = (sample[:k] == 0) & (pop[:k] != 0)
    if absent.any() and not partial:
        names = [coded.levels[i] for i in np.flatnonzero(absent)]
        raise DesignError(f"calibration variable {coded.variable!r}: level(s) {', '.join(names)} have a "
                          f"population total but no one (with a positive weight) in the sample")
    factor = np.ones(k + 1)
    ok = sample[:k] != 0
    factor[:k][ok] = pop[:k][ok] / sample[:k][ok]
    return factor


def _margin_error(coded: list[_Coded], w: np.ndarray) -> float:
    worst = 0.0
    for c in coded:
        k = len(c.levels)
        sample = np.bincount(c.codes, weights=w, minlength=k + 1)[:k]
        worst = max(worst, float(np.max(np.abs(sample - c.population[:k]))))
    return worst


# -- base weights and nonresponse ----------------------------------------------------------------


def base_weights(df: pd.DataFrame, design: Design) -> np.ndarray:
    """Base weights: the weights column, 1/probabilities, N_h/n_h from the fpc, or 1 (as svydesign)."""
    if design.weights:
        w = pd.to_numeric(_column(df, design.weights, "design.weights"), errors="coerce").to_numpy(float)
        what = f"weights column {design.weights!r}"
    elif design.probabilities:
        p = pd.to_numeric(_column(df, design.probabilities, "design.probabilities"),
                          errors="coerce").to_numpy(float)
        if np.any((p <= 0) | (p > 1)):
            raise DesignError(f"probabilities column {design.probabilities!r} must be in (0, 1]; "
                              f"row {int(np.argmax((p <= 0) | (p > 1)))} is {p[np.argmax((p <= 0) | (p > 1))]}")
        w = 1.0 / p
        what = f"probabilities column {design.probabilities!r}"
    elif design.fpc:
        from exporters.estimation import fpc_population  # the one place that reads fpc

        popsize, sampsize = fpc_population(df, design)
        w = popsize / sampsize
        what = f"fpc column {design.fpc!r}"
    else:
        return np.ones(len(df))
    bad = ~np.isfinite(w)
    if bad.any():
        raise DesignError(f"{what}: row {int(np.argmax(bad))} is missing or not a number")
    if np.any(w < 0):
        raise DesignError(f"{what}: row {int(np.argmax(w < 0))} is negative")
    return w


_TRUE = {"1", "1.0", "true", "yes", "y", "t", "x", "có", "co"}
_FALSE = {"0", "0.0", "false", "no", "n", "f", "", "không", "khong"}


def _flags(series: pd.Series, column: str) -> np.ndarray:
    out = np.empty(len(series), dtype=bool)
    for i, v in enumerate(series.tolist()):
        if isinstance(v, (bool, np.bool_)):
            out[i] = bool(v)
            continue
        if v is None or (isinstance(v, float) and math.isnan(v)):
            raise DesignError(f"column {column!r}: row {i} is empty (expected yes/no, 1/0 or true/false)")
        key = level_key(v).strip().lower()
        if key in _TRUE:
            out[i] = True
        elif key in _FALSE:
            out[i] = False
        else:
            raise DesignError(f"column {column!r}: row {i} is {v!r} (expected yes/no, 1/0 or true/false)")
    return out


def nonresponse_adjust(df: pd.DataFrame, weights, classes: str | Sequence[str], responded: str | Sequence,
                       eligible: str | Sequence | None = None) -> tuple[np.ndarray, Report]:
    """Weighting-class nonresponse adjustment.

    Within each class (the combination of the `classes` columns), respondents' weights are multiplied
    by Σ base weights of eligible sampled units / Σ base weights of respondents; eligible
    nonrespondents get weight 0; units known to be ineligible are in neither sum and keep their weight.
    `responded` and `eligible` are column names or boolean arrays.
    """
    w = _as_weights(weights, len(df))
    if isinstance(classes, str):
        classes = [classes]
    resp = _flags(_column(df, responded, "nonresponse.responded"), responded) if isinstance(responded, str) \
        else np.asarray(responded, dtype=bool)
    elig = np.ones(len(df), dtype=bool) if eligible is None else (
        _flags(_column(df, eligible, "nonresponse.eligible"), eligible) if isinstance(eligible, str)
        else np.asarray(eligible, dtype=bool))
    resp = resp & elig
    if classes:
        for c in classes:
            _column(df, c, "a nonresponse class")
        keys = df[list(classes)].astype(object).where(df[list(classes)].notna(), None)
        codes, uniques = pd.MultiIndex.from_frame(keys).factorize()
    else:
        codes, uniques = np.zeros(len(df), dtype=np.intp), [("all",)]
    k = len(uniques)
    eligible_sum = np.bincount(codes, weights=w * elig, minlength=k)
    respondent_sum = np.bincount(codes, weights=w * resp, minlength=k)
    empty = (respondent_sum == 0) & (eligible_sum > 0)
    if empty.any():
        label = uniques[int(np.argmax(empty))]
        raise DesignError(f"nonresponse class {dict(zip(classes, label))} has no respondents; "
                          f"merge it with a neighbouring class")
    factor = np.divide(eligible_sum, respondent_sum, out=np.ones(k), where=respondent_sum > 0)
    new = np.where(resp, w * factor[codes], np.where(elig, 0.0, w))
    labels = ["/".join(map(str, u if isinstance(u, tuple) else (u,))) for u in uniques]
    report = Report("nonresponse", iterations=1, details={
        "factors": {lab: float(f) for lab, f in zip(labels, factor)},
        "respondents": int(resp.sum()), "nonrespondents": int((elig & ~resp).sum()),
        "ineligible": int((~elig).sum())})
    return new, report


# -- post-stratification and raking ---------------------------------------------------------------


def poststratify(df: pd.DataFrame, weights, margin, partial: bool = False) -> tuple[np.ndarray, Report]:
    """R's postStratify on one categorical variable: `margin` is a Margin or (column, {level: count})."""
    ms = _normalise_margins(margin if isinstance(margin, Mapping) else [margin])
    if len(ms) != 1:
        raise ValueError("poststratify takes one margin; use rake for several")
    m = ms[0]
    w = _as_weights(weights, len(df))
    coded = _code_margin(df, m)
    factor = _factors(coded, w, partial)
    new = w * factor[coded.codes]
    report = Report("poststratify", iterations=1, converged=True,
                    max_margin_error=_margin_error([coded], new),
                    step=PostStratStep(coded.codes, w, new))
    return new, report


def _joint_codes(coded: list[_Coded]) -> tuple[np.ndarray, int]:
    """One code per cell of the joint table of the margin variables (only cells that occur)."""
    sizes = [len(c.levels) + 1 for c in coded]
    if math.prod(sizes) < 2**62:
        joint = np.zeros(len(coded[0].codes), dtype=np.int64)
        for c, size in zip(coded, sizes):
            joint *= size
            joint += c.codes
        if math.prod(sizes) <= 4 * len(joint) + 1024:
            return joint.astype(np.intp), math.prod(sizes)
        uniq, inv = np.unique(joint, return_inverse=True)
        return inv.astype(np.intp), len(uniq)
    uniq, inv = np.unique(np.column_stack([c.codes for c in coded]), axis=0, return_inverse=True)
    return inv.reshape(-1).astype(np.intp), len(uniq)


def rake(df: pd.DataFrame, weights, margins, maxit: int = 10, epsilon: float = 1.0,
         partial: bool = False) -> tuple[np.ndarray, Report]:
    """R's rake: iterative post-stratification on each margin in turn, at most `maxit` sweeps.

    Convergence exactly as R's survey::rake: after each sweep, the weighted joint table of all
    margin variables is compared with the previous one, and raking stops when no cell moved by
    `epsilon` or more (`epsilon` < 1 means that fraction of the total starting weight). The report's
    `iterations` counts sweeps done, `max_margin_error` is the largest |weighted total - population
    total| left in any margin level. Not converging is reported (converged=False), not raised.
    `margins`: Margins, (column, {level: count}) pairs, or a {column: {level: count}} dict.
    """
    ms = _normalise_margins(margins)
    if not ms:
        raise ValueError("rake needs at least one margin")
    w = _as_weights(weights, len(df))
    coded = [_code_margin(df, m) for m in ms]
    eps = epsilon * float(w.sum()) if epsilon < 1 else float(epsilon)
    joint, ncell = _joint_codes(coded)
    old = np.bincount(joint, weights=w, minlength=ncell)
    converged = False
    sweeps = 0
    factors: list[np.ndarray] = []
    delta = math.inf
    while sweeps < maxit:
        factors = []
        for c in coded:
            factor = _factors(c, w, partial)
            w *= factor[c.codes]
            factors.append(factor)
        sweeps += 1
        new = np.bincount(joint, weights=w, minlength=ncell)
        delta = float(np.max(np.abs(new - old)))
        if delta < eps:
            converged = True
            break
        old = new
    report = Report("rake", iterations=sweeps, converged=converged, max_margin_error=_margin_error(coded, w),
                    maxit=maxit, epsilon=epsilon,
                    step=RakingStep(tuple(c.codes for c in coded), tuple(factors), w.copy()),
                    details={"last_change": delta})
    return w, report


# -- linear calibration ---------------------------------------------------------------------------


def calibration_matrix(df: pd.DataFrame, margins, population: float | None = None
                       ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Model matrix and population totals for linear calibration, parametrised as R's
    `model.matrix(~a + b + x)`: an intercept (population size: the sum of the first categorical
    margin's totals, or `population`), then each categorical margin's levels but the first (R's
    sorted factor levels: numeric order for a numeric column), then numeric margins as they are.
    The parametrisation matters: R's convergence test divides each misfit by its own total.
    Levels with a zero population total and no sample rows are dropped, as R does.
    """
    ms = _normalise_margins(margins)
    cols, totals, names = [], [], []
    intercept = population
    for m in ms:
        if m.categorical:
            coded = _code_margin(df, m)
            k = len(coded.levels)
            if np.any(coded.codes == k):
                row = int(np.argmax(coded.codes == k))
                raise DesignError(f"calibration variable {m.variable!r}: level "
                                  f"{level_key(df[m.variable].iloc[row])!r} (row {row}) has no population total")
            if intercept is None:
                intercept = float(coded.population[:k].sum())
            numeric = pd.api.types.is_numeric_dtype(coded.series)
            order = sorted(range(k), key=lambda j: (float(coded.levels[j]), "") if numeric and _is_number(coded.levels[j])
                           else (math.inf, coded.levels[j]))
            for j in order[1:]:
                x = (coded.codes == j).astype(float)
                if not x.any() and coded.population[j] == 0:
                    continue
                cols.append(x)
                totals.append(coded.population[j])
                names.append(f"{m.variable}={coded.levels[j]}")
        else:
            x = pd.to_numeric(_column(df, m.variable, "a calibration variable"), errors="coerce").to_numpy(float)
            if np.isnan(x).any():
                raise DesignError(f"calibration variable {m.variable!r}: row {int(np.argmax(np.isnan(x)))} "
                                  f"is missing or not a number")
            cols.append(x)
            totals.append(m.total)
            names.append(m.variable)
    if intercept is not None:
        cols.insert(0, np.ones(len(df)))
        totals.insert(0, float(intercept))
        names.insert(0, "(Intercept)")
    if not cols:
        raise ValueError("linear calibration needs at least one margin")
    return np.column_stack(cols), np.asarray(totals, dtype=float), names


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def calibrate_linear(df: pd.DataFrame, weights, margins, population: float | None = None,
                     bounds: tuple[float, float] | None = None, maxit: int = 50,
                     epsilon: float = 1e-7, calfun: str = "linear") -> tuple[np.ndarray, Report]:
    """R's calibrate(calfun="linear"): GREG weights g·d with Σ g d x = population totals.

    Without bounds this is R's closed form (regcalibrate); with `bounds` = (lower, upper) on g it is
    R's grake Newton iteration (at most `maxit`, converged when every |misfit| / (1 + |total|) <
    `epsilon`). Non-convergence is reported, not raised.
    """
    d = _as_weights(weights, len(df))
    X, T, names = calibration_matrix(df, margins, population)
    sample = X.T @ d
    if calfun == "logit":
        if bounds is None:
            raise DesignError("logit calibration needs bounds on the g-weights, e.g. [0.5, 2]")
        g, iterations, converged = grake(X, d, T, bounds, maxit, epsilon, logit_calfun(*bounds))
    elif bounds is None or (bounds[0] == -math.inf and bounds[1] == math.inf):
        tmat = (X * d[:, None]).T @ X
        coef = np.linalg.solve(tmat, T - sample)
        g = 1.0 + X @ coef
        iterations, converged = 1, True
    else:
        g, iterations, converged = grake(X, d, T, bounds, maxit, epsilon)
    new = g * d
    err = float(np.max(np.abs(X.T @ new - T)))
    report = Report(calfun, iterations=iterations, converged=converged, max_margin_error=err, maxit=maxit,
                    epsilon=epsilon, step=LinearStep(X, d, g), details={"calibration_columns": names})
    return new, report


# -- trimming -------------------------------------------------------------------------------------


def trim_weights(weights, lower: float = -math.inf, upper: float = math.inf, strict: bool = False,
                 max_rounds: int = 1000) -> tuple[np.ndarray, Report]:
    """R's trimWeights: clip to [lower, upper] and give the trimmed amount back equally to the
    untrimmed units (the total is kept); with `strict`, repeat until nothing is outside."""
    w = _as_weights(weights)
    rounds = 0
    trimmed = 0
    while True:
        outside = (w < lower) | (w > upper)
        if not outside.any():
            break
        if outside.all():
            raise DesignError(f"trimming: every weight is outside [{lower}, {upper}]")
        rounds += 1
        trimmed = max(trimmed, int(outside.sum()))
        new = np.maximum(lower, np.minimum(w, upper))
        trimmings = w - new
        new[~outside] = new[~outside] + trimmings.sum() / (~outside).sum()
        w = new
        if not strict or rounds >= max_rounds:
            break
    still = int(((w < lower) | (w > upper)).sum())
    report = Report("trim", iterations=rounds, converged=still == 0,
                    details={"lower": lower, "upper": upper, "trimmed": trimmed, "outside_after": still})
    return w, report


# -- summary --------------------------------------------------------------------------------------


def weight_summary(weights) -> dict[str, float]:
    """min, quartiles (R's type 7), max, mean, sum, Kish's design effect due to weighting
    n Σw² / (Σw)² and the effective sample size (Σw)² / Σw²."""
    w = _as_weights(weights)
    if len(w) == 0:
        raise ValueError("no weights to summarise")
    q1, median, q3 = np.quantile(w, [0.25, 0.5, 0.75])
    s, s2 = float(w.sum()), float((w * w).sum())
    n = len(w)
    return {"n": n, "min": float(w.min()), "q1": float(q1), "median": float(median), "q3": float(q3),
            "max": float(w.max()), "mean": s / n, "sum": s,
            "deff": n * s2 / (s * s) if s else math.nan, "n_eff": s * s / s2 if s2 else math.nan}


# -- the whole pipeline ---------------------------------------------------------------------------


@dataclass
class Weighting:
    base: np.ndarray
    weights: np.ndarray
    steps: tuple[CalibrationStep, ...]
    reports: list[Report]


def apply_design(df: pd.DataFrame, design: Design) -> Weighting:
    """Base weights → nonresponse adjustment → calibration → trimming, as the design asks."""
    design.check_columns(df)
    base = base_weights(df, design)
    w = base
    reports: list[Report] = []
    steps: list[CalibrationStep] = []
    if design.responded:
        w, r = nonresponse_adjust(df, w, design.nonresponse_classes, design.responded, design.eligible)
        reports.append(r)
    method = design.method
    if method == "poststratify":
        w, r = poststratify(df, w, design.calibrate[0])
    elif method == "rake":
        w, r = rake(df, w, design.calibrate, maxit=design.maxit or 10,
                    epsilon=1.0 if design.epsilon is None else design.epsilon)
    elif method in ("linear", "logit"):
        w, r = calibrate_linear(df, w, design.calibrate, population=design.population, bounds=design.bounds,
                                maxit=design.maxit or 50,
                                epsilon=1e-7 if design.epsilon is None else design.epsilon, calfun=method)
    if method in ("linear", "logit") and not r.converged:
        raise DesignError(f"{method} calibration failed to converge in {r.iterations} iterations (largest margin "
                          f"error {r.max_margin_error:g}): widen calibration.bounds or check the totals")
    if method:
        reports.append(r)
        steps.append(r.step)
    if design.trimming:
        lower, upper = design.trimming.bounds(w)
        w, r = trim_weights(w, lower, upper, strict=design.trimming.strict)
        reports.append(r)
    return Weighting(base, w, tuple(steps), reports)


def run_weight(data, design_path: str | Path, out_path: str | Path | None = None) -> dict[str, Any]:
    """`khaosat weight`: read the data (a path or a DataFrame), weight it as the design file says,
    write the table with the weight column added (CSV, or .xlsx/.parquet by suffix), and return a
    summary: the weight summary, and one report per step (iterations, convergence, margin error)."""
    df = data if isinstance(data, pd.DataFrame) else read_table(data)
    design = load_design(design_path)
    result = apply_design(df, design)
    if out_path is not None:
        out = df.copy()
        out[design.weight_column] = result.weights
        out_path = Path(out_path)
        suffix = out_path.suffix.lower()
        with atomic_path(out_path) as partial:
            if suffix in (".xlsx", ".xlsm"):
                out.to_excel(partial, index=False)
            elif suffix == ".parquet":
                out.to_parquet(partial, index=False)
            else:
                out.to_csv(partial, index=False, float_format="%.17g")
    return {"weights": weight_summary(result.weights), "base": weight_summary(result.base),
            "steps": [r.as_dict() for r in result.reports], "weight_column": design.weight_column}
