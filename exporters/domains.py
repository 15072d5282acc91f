"""Estimates in every domain at once (svyby), in time that grows with rows, not rows × domains.

`domains` codes each row's domain once per `--by` (one or several columns, cross-classified),
from the distinct values only. `domain_estimates` gives every domain's weighted mean or total
from group sums, and its linearised variance without forming the (rows × domains) matrix of
influence values:

* In a domain d the influence value of row i is z_id = a_i when row i is in d, else 0 (means:
  a_i = w_i (y_i − ȳ_d) / Ŵ_d; totals: a_i = w_i y_i). Each row is in one domain, so z is a
  sparse matrix with one value per row (per statistic).
* Calibration replaces z by residuals x = z − U C (R's svyrecvar): every calibration step
  subtracts fitted values that are linear in z, of low rank — post-stratification psw·means of
  its cells, raking the same per margin (ten back-fitting sweeps, as R), linear calibration
  scale·A·coef. U (rows × r) holds those fixed directions and C (r × domains) the coefficients,
  computed from group sums of z and of U; the steps are applied in order, as R does.
* The variance Σ_h f_h n_h/(n_h − 1) Σ_j (T_hjd − T̄_hd)² of the PSU totals T = T_z − S C
  (S: PSU totals of U) is expanded into sums over strata of T_z, T_z², T_z·S and SᵀS, which
  need only the (PSU, domain) pairs that occur.

The tests compare with R's svyby, cross-classified, plain and calibrated, to a relative 1e-9.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from exporters.design import DesignError
from exporters.weighting import LinearStep, PostStratStep, RakingStep, level_key


def domains(design: Any, by_columns: str | Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Each row's domain (-1 where a `by` value is missing) and the domains' labels
    ("region=north, sex=F"), in svyby's order: the levels of each column sorted, the first column
    varying fastest; only combinations that occur. Computed once per `--by`, from the distinct
    values only."""
    from exporters.estimation import _sort_key

    columns = [by_columns] if isinstance(by_columns, str) else list(by_columns)
    if not columns:
        raise DesignError("no column to form domains")
    n = len(design.data)
    combined = np.zeros(n, dtype=np.int64)
    present = np.ones(n, dtype=bool)
    levels: list[list[str]] = []
    for column in reversed(columns):  # R's order: the first column varies fastest
        codes, uniques = pd.factorize(design.column(column), use_na_sentinel=True)
        values = uniques.tolist()
        keys = [level_key(v) for v in values]
        rank: dict[str, int] = {}
        for value, key in sorted(zip(values, keys), key=lambda pair: _sort_key(pair[0])):
            rank.setdefault(key, len(rank))
        ranked = np.array([rank[k] for k in keys] + [0], dtype=np.int64)[codes]
        present &= codes >= 0
        combined = combined * max(len(rank), 1) + ranked
        levels.append(list(rank))
    found, at = np.unique(combined[present], return_inverse=True)
    out = np.full(n, -1, dtype=np.intp)
    out[present] = at
    labels = []
    for code in found.tolist():
        parts = []
        for column, names in zip(columns, reversed(levels)):
            code, index = divmod(code, max(len(names), 1))
            parts.append(f"{column}={names[index]}")
        labels.append(", ".join(parts))
    return out, labels


def domain_estimates(design: Any, Y: np.ndarray, valid: np.ndarray, codes: np.ndarray, labels: list[str],
                     ratio: bool, what: str, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(estimates, SEs), domains × columns of Y: weighted means (``ratio``; with ``x``, ratios of
    totals Σwy / Σwx as svyratio) or totals."""
    from exporters.estimation import Groups

    n, width = Y.shape
    ndomains = len(labels)
    inside = codes >= 0
    groups = Groups(np.where(inside, codes, 0), ndomains)
    w = design.weights * (valid & inside)
    Y0 = np.where(np.isnan(Y), 0.0, Y)
    est = groups.sums(w[:, None] * Y0)
    x = np.ones(n) if x is None else np.where(np.isnan(x), 0.0, x)
    if ratio:
        psum = groups.sums(w * x)
        if (psum == 0).any():
            raise DesignError(f"{what} in domain {labels[int(np.argmax(psum == 0))]}: no observations with a "
                              f"positive weight")
        est = est / psum[:, None]
    rows = np.repeat(np.flatnonzero(inside), width)
    column = np.tile(np.arange(width), int(inside.sum()))
    d = codes[rows]
    values = (w[rows] * (Y0[rows, column] - est[d, column] * x[rows]) / psum[d] if ratio
              else w[rows] * Y0[rows, column])
    variance = sparse_variance(design, rows, d * width + column, values, ndomains * width)
    return est, np.sqrt(variance).reshape(ndomains, width)


def sparse_variance(design: Any, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, ncols: int) -> np.ndarray:
    """`SurveyDesign.variance` of the (rows × ncols) influence matrix given by its nonzero
    entries (row, column, value), calibration residuals included, without forming it."""
    from exporters.estimation import Groups, _safe_div

    n = len(design.data)
    blocks: list[np.ndarray] = []  # U, by blocks of columns (rows × k)
    coefs: list[np.ndarray] = []  # C, the matching blocks of rows (k × ncols)

    def U() -> np.ndarray:
        return np.hstack(blocks) if blocks else np.zeros((n, 0))

    def C() -> np.ndarray:
        return np.vstack(coefs) if coefs else np.zeros((0, ncols))

    def z_sums(codes: np.ndarray, size: int, factor: np.ndarray) -> np.ndarray:
        """Σ over z's entries of value × factor[row], per (codes[row], column): size × ncols."""
        key = codes[rows].astype(np.int64) * ncols + cols
        return np.bincount(key, weights=vals * factor[rows], minlength=size * ncols).reshape(size, ncols)

    for step in design.calibration:
        if isinstance(step, PostStratStep):
            psw, oldw = step.neww.copy(), step.oldw
            psw[(psw == 0) & (oldw == 0)] = 1.0
            size = int(step.codes.max()) + 1
            factor = _safe_div(1.0, psw) * oldw
            den = np.bincount(step.codes, weights=oldw, minlength=size)
            fitted = z_sums(step.codes, size, factor) - Groups(step.codes, size).sums(U() * factor[:, None]) @ C()
            blocks.append(_indicator(step.codes, size) * psw[:, None])
            coefs.append(_safe_div(fitted, den[:, None]))
        elif isinstance(step, RakingStep):
            margins = []
            for codes, psw in zip(step.codes, step.margin_weights()):
                size = int(codes.max()) + 1
                margins.append((codes, size, _safe_div(1.0, psw), np.bincount(codes, minlength=size), len(coefs)))
                blocks.append(_indicator(codes, size) * psw[:, None])
                coefs.append(np.zeros((size, ncols)))
            u = U()
            prepared = [(z_sums(codes, size, factor), Groups(codes, size).sums(u * factor[:, None]), count, at)
                        for codes, size, factor, count, at in margins]
            for _ in range(10):
                for from_z, from_u, count, at in prepared:
                    means = _safe_div(from_z - from_u @ C(), count[:, None])
                    coefs[at] = coefs[at] + means
        elif isinstance(step, LinearStep):
            sw = np.sqrt(step.d)
            scale = step.g * sw
            if (scale == 0).any():
                return design.variance(_dense(rows, cols, vals, n, ncols))
            A = step.X * sw[:, None]
            inverse = np.linalg.pinv(A)
            from_z = np.stack([np.bincount(cols, weights=inverse[f, rows] * vals / scale[rows], minlength=ncols)
                               for f in range(A.shape[1])])
            coef = from_z - (inverse @ (U() / scale[:, None])) @ C()
            blocks.append(A * scale[:, None])
            coefs.append(coef)
    return _variance(design, rows, cols, vals, ncols, U(), C())


def _variance(design: Any, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, ncols: int, u: np.ndarray,
              c: np.ndarray) -> np.ndarray:
    """Σ_h scale_h Σ_{PSU j in h} (T_jd − T̄_hd)², T = PSU totals of z − U C, from stratum sums."""
    scale, centred, factor = design.variance_scale()
    nstrata = len(design.n_h)
    pair, at = np.unique(design.psu[rows].astype(np.int64) * ncols + cols, return_inverse=True)
    t = np.bincount(at, weights=vals, minlength=len(pair))
    psu, col = pair // ncols, pair % ncols
    h = design.psu_stratum[psu]
    key = h.astype(np.int64) * ncols + col
    sum_t = np.bincount(key, weights=t, minlength=nstrata * ncols).reshape(nstrata, ncols)
    sum_t2 = np.bincount(key, weights=t * t, minlength=nstrata * ncols).reshape(nstrata, ncols)
    if u.shape[1]:
        s = design.psu_groups.sums(u)  # PSU totals of U
        sum_t -= design.stratum_groups.sums(s) @ c
        cross = np.stack([np.bincount(key, weights=t * s[psu, k], minlength=nstrata * ncols)
                          for k in range(u.shape[1])]).reshape(u.shape[1], nstrata, ncols)
        r = u.shape[1]
        gram = design.stratum_groups.sums((s[:, :, None] * s[:, None, :]).reshape(len(s), r * r)).reshape(-1, r, r)
        sum_t2 += -2.0 * np.einsum("khc,kc->hc", cross, c) + np.einsum("hkc,kc->hc", gram @ c, c)
    squares = sum_t2 - (sum_t * sum_t / design.n_h[:, None]) * centred[:, None]
    return (np.maximum(squares, 0.0) * scale[:, None]).sum(axis=0) * factor


def _indicator(codes: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((len(codes), size))
    out[np.arange(len(codes)), codes] = 1.0
    return out


def _dense(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int, ncols: int) -> np.ndarray:
    z = np.zeros((n, ncols))
    np.add.at(z, (rows, cols), vals)
    return z
