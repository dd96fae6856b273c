"""Fama-MacBeth regressions with Newey-West standard errors (numpy only).

Step 1, per cross-section (a period: a day, a signal candle, ...): OLS of the outcome on a
constant and the regressors, each regressor standardised inside the cross-section
(z = (x - mean) / std, population std), so a coefficient reads "outcome change per one
cross-sectional standard deviation of the filter". Step 2: the time series of each
coefficient; its mean is the estimate and its standard error is Newey-West (Bartlett kernel)
on that series, which allows for the autocorrelation that overlapping outcomes (forward
returns over several periods) create.

Newey-West of a series x_1..x_T with lag L:
    e_t = x_t - mean(x);  g_j = (1/T) sum_{t=j+1..T} e_t e_{t-j}
    S = g_0 + 2 sum_{j=1..L} (1 - j/(L+1)) g_j;  se(mean) = sqrt(S / T)
With L = 0 this is the population standard deviation over sqrt(T) (the classic Fama-MacBeth
error uses the sample deviation, slightly larger for small T). The default lag is
floor(4 (T/100)^(2/9)) (Newey and West, 1994).

A cross-section is skipped when it has fewer than ``min_obs`` complete rows or its design is
rank deficient; a regressor that is constant inside a cross-section is left out of that
cross-section only (its coefficient is NaN there), so T can differ between regressors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FamaMacBethResult", "default_lags", "fama_macbeth", "newey_west_se", "newey_west_variance"]


def default_lags(n: int) -> int:
    """Newey-West (1994) plug-in lag: floor(4 (n/100)^(2/9)); 0 for n <= 0."""
    return int(math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0))) if n > 0 else 0


def newey_west_variance(x: Sequence[float] | np.ndarray, lags: int | None = None) -> float:
    """Long-run variance S of a series (Bartlett kernel); NaN for an empty series."""
    a = np.asarray(x, dtype=float)
    n = a.size
    if n == 0:
        return math.nan
    lag = default_lags(n) if lags is None else int(lags)
    if lag < 0:
        raise ValueError("lags must be >= 0")
    lag = min(lag, n - 1)
    e = a - a.mean()
    s = float(e @ e) / n
    for j in range(1, lag + 1):
        s += 2.0 * (1.0 - j / (lag + 1.0)) * float(e[j:] @ e[:-j]) / n
    return s


def newey_west_se(x: Sequence[float] | np.ndarray, lags: int | None = None) -> float:
    """Newey-West standard error of the mean of ``x``; NaN for fewer than two values (one
    value says nothing about the spread of its mean)."""
    a = np.asarray(x, dtype=float)
    if a.size < 2:
        return math.nan
    s = newey_west_variance(a, lags)
    return math.sqrt(max(s, 0.0) / a.size)


@dataclass(frozen=True)
class FamaMacBethResult:
    """``coefs``: one row per used cross-section (index: period), columns 'const' and the
    regressors. ``summary``: per coefficient the mean ('coef'), Newey-West 'se', 't',
    'periods' (T) and 'lags'. ``n_obs`` / ``r2``: per used cross-section."""

    y: str
    xs: tuple[str, ...]
    coefs: pd.DataFrame
    summary: pd.DataFrame
    n_obs: pd.Series
    r2: pd.Series
    skipped: int  # cross-sections skipped (too few rows or rank deficient)
    standardized: bool

    @property
    def periods(self) -> int:
        return len(self.coefs)


def _r_squared(yy: np.ndarray, resid: np.ndarray) -> float:
    """1 - RSS/TSS; NaN when the outcome is constant up to rounding (its spread is within a
    relative 1e-12 of its size), where TSS is rounding noise and the ratio meaningless."""
    scale = float(np.abs(yy).max()) if yy.size else 0.0
    if yy.size == 0 or float(np.ptp(yy)) <= 1e-12 * scale:
        return math.nan
    tss = float(((yy - yy.mean()) ** 2).sum())
    return 1.0 - float(resid @ resid) / tss if tss > 0 else math.nan


def _standardize(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0)


def fama_macbeth(
    data: pd.DataFrame,
    y: str,
    xs: Sequence[str],
    period: str,
    *,
    standardize: bool = True,
    min_obs: int | None = None,
    lags: int | None = None,
) -> FamaMacBethResult:
    """Fama-MacBeth regression of ``y`` on ``xs`` with cross-sections given by the ``period``
    column. ``min_obs`` defaults to len(xs) + 2; ``lags`` to ``default_lags(T)`` per
    coefficient series."""
    xs = tuple(xs)
    if not xs:
        raise ValueError("at least one regressor is needed")
    missing = [c for c in (y, period, *xs) if c not in data.columns]
    if missing:
        raise KeyError(f"columns not in the data: {missing}")
    need = len(xs) + 2 if min_obs is None else int(min_obs)
    cols = ("const", *xs)
    frame = data[[period, y, *xs]].copy()
    for c in (y, *xs):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    frame = frame.replace([np.inf, -np.inf], np.nan).dropna()
    rows: list[np.ndarray] = []
    index: list[object] = []
    n_obs: list[int] = []
    r2s: list[float] = []
    skipped = 0
    for key, g in frame.groupby(period, sort=True):
        n = len(g)
        if n < need:
            skipped += 1
            continue
        X = g[list(xs)].to_numpy(dtype=float)
        yy = g[y].to_numpy(dtype=float)
        keep = X.std(axis=0) > 1e-12 * np.maximum(1.0, np.abs(X).max(axis=0))
        if not keep.any():
            skipped += 1
            continue
        Xk = X[:, keep]
        if standardize:
            Xk = _standardize(Xk)
        design = np.column_stack([np.ones(n), Xk])
        if np.linalg.matrix_rank(design) < design.shape[1]:
            skipped += 1
            continue
        beta, *_ = np.linalg.lstsq(design, yy, rcond=None)
        resid = yy - design @ beta
        r2s.append(_r_squared(yy, resid))
        full = np.full(len(cols), np.nan)
        full[0] = beta[0]
        full[1:][keep] = beta[1:]
        rows.append(full)
        index.append(key)
        n_obs.append(n)
    coefs = pd.DataFrame(rows, index=pd.Index(index, name=period), columns=list(cols))
    summary_rows = []
    for c in cols:
        series = coefs[c].dropna().to_numpy() if len(coefs) else np.array([])
        t_len = series.size
        lag = (default_lags(t_len) if lags is None else min(int(lags), max(t_len - 1, 0)))
        mean = float(series.mean()) if t_len else math.nan
        se = newey_west_se(series, lag) if t_len >= 2 else math.nan
        # no variation over time (up to rounding): the t statistic is undefined
        t = mean / se if math.isfinite(se) and se > 1e-12 * max(1.0, abs(mean)) else math.nan
        summary_rows.append({"coef": mean, "se": se, "t": t, "periods": t_len, "lags": lag})
    summary = pd.DataFrame(summary_rows, index=pd.Index(cols, name="regressor"))
    return FamaMacBethResult(
        y=y, xs=xs, coefs=coefs, summary=summary,
        n_obs=pd.Series(n_obs, index=coefs.index, dtype=float),
        r2=pd.Series(r2s, index=coefs.index, dtype=float),
        skipped=skipped, standardized=standardize,
    )
