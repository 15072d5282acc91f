"""R's grake: the Newton iteration of bounded linear and logit calibration (calibrate with bounds,
or calfun = "logit"), step for step, so that the g-weights equal R's. Used by
`exporters.weighting.calibrate_linear`."""

from __future__ import annotations

import numpy as np


def logit_calfun(lower: float, upper: float):
    """R's cal.logit: g = 1 + Fm1(u) runs from `lower` to `upper` along a logistic curve."""
    a = (upper - lower) / ((upper - 1) * (1 - lower))

    def fm1(u):
        e = np.exp(a * u)
        return (lower * (upper - 1) + upper * (1 - lower) * e) / (upper - 1 + (1 - lower) * e) - 1

    def df_(u):
        e = np.exp(a * u)
        den = upper - 1 + (1 - lower) * e
        return (upper * (1 - lower) * e * a / den
                - (lower * (upper - 1) + upper * (1 - lower) * e) * ((1 - lower) * e * a) / den ** 2)

    return fm1, df_


def grake(X, ww, population, bounds, maxit, epsilon, calfun=None):
    """R's grake: Newton steps on the calibration equations (linear with bounds, or `calfun`'s
    (Fm1, dF)), halving a step that makes g or its derivative non-finite, as R does."""
    lower, upper = bounds
    sample = X.T @ ww
    scales = population / sample
    scale = None
    if np.min(scales) > 20:
        scale = float(np.mean(scales))
        ww = ww * scale
        sample = sample * scale

    def fm1(u):
        return np.minimum(np.maximum(u + 1, lower), upper) - 1

    def df_(u):
        return ((u < upper - 1) & (u > lower - 1)).astype(float)

    if calfun is not None:
        fm1, df_ = calfun

    eta = np.zeros(X.shape[1])
    xeta = X @ eta
    deriv = df_(xeta)
    it = 1
    converged = True
    while True:
        tmat = (X * (ww * deriv)[:, None]).T @ X
        misfit = population - sample - X.T @ (ww * fm1(xeta))
        deta = np.linalg.pinv(tmat, rcond=256 * np.finfo(float).eps) @ misfit
        eta = eta + deta
        xeta = X @ eta
        with np.errstate(over="ignore", invalid="ignore"):
            g = 1 + fm1(xeta)
            deriv = df_(xeta)
            while it < maxit and not (np.all(np.isfinite(g)) and np.all(np.isfinite(deriv))):
                it += 1
                deta = deta / 2
                eta = eta - deta
                xeta = X @ eta
                g = 1 + fm1(xeta)
                deriv = df_(xeta)
        misfit = population - sample - X.T @ (ww * fm1(xeta))
        if np.all(np.abs(misfit) / (1 + np.abs(population)) < epsilon):
            break
        it += 1
        if it > maxit:
            converged = False
            break
    if scale is not None:
        g = g * scale
    return g, min(it, maxit), converged
