"""Fama-MacBeth and Newey-West against hand computations and constructed data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine.analysis.fama_macbeth import default_lags, fama_macbeth, newey_west_se, newey_west_variance


def test_newey_west_hand_computed():
    # e = [-1.5, -0.5, 0.5, 1.5]; g0 = 5/4; g1 = (0.75 - 0.25 + 0.75)/4 = 0.3125;
    # g2 = (-0.75 - 0.75)/4 = -0.375
    x = [1.0, 2.0, 3.0, 4.0]
    assert newey_west_variance(x, 0) == pytest.approx(1.25)
    assert newey_west_se(x, 0) == pytest.approx(math.sqrt(1.25 / 4))
    assert newey_west_se(x, 1) == pytest.approx(0.625)  # S = 1.25 + 2 * 1/2 * 0.3125 = 1.5625
    s2 = 1.25 + 2 * (2 / 3) * 0.3125 + 2 * (1 / 3) * (-0.375)
    assert newey_west_variance(x, 2) == pytest.approx(s2)
    assert newey_west_se(x, 2) == pytest.approx(math.sqrt(s2 / 4))
    assert newey_west_se(x, 10) == newey_west_se(x, 3)  # lag capped at T - 1


def _nw_loops(x, lag):
    n = len(x)
    m = sum(x) / n
    e = [v - m for v in x]
    s = sum(v * v for v in e) / n
    for j in range(1, lag + 1):
        w = 1 - j / (lag + 1)
        s += 2 * w * sum(e[t] * e[t - j] for t in range(j, n)) / n
    return math.sqrt(s / n)


@pytest.mark.parametrize("lag", [0, 1, 3, 7])
def test_newey_west_matches_a_plain_loop(lag):
    x = np.random.default_rng(lag).normal(size=57).cumsum()
    assert newey_west_se(x, lag) == pytest.approx(_nw_loops(list(x), lag), rel=1e-12)


def test_default_lags():
    assert [default_lags(n) for n in (0, 1, 20, 100, 1000)] == [0, 1, 2, 4, 6]
    assert newey_west_se(np.arange(20.0)) == newey_west_se(np.arange(20.0), 2)


def test_newey_west_is_larger_for_positively_autocorrelated_series():
    rng = np.random.default_rng(3)
    x = np.zeros(400)
    for t in range(1, 400):
        x[t] = 0.8 * x[t - 1] + rng.normal()
    assert newey_west_se(x, 10) > 2 * newey_west_se(x, 0)


def _panel(seed: int, periods: int = 80, n: int = 150, beta: float = 0.4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for t in range(periods):
        z1 = rng.normal(size=n)
        loc, scale = rng.normal(5, 2), rng.uniform(0.5, 4)  # scale and level move over time
        x1 = loc + scale * z1
        x2 = rng.normal(size=n) * 10
        x3 = rng.exponential(size=n)
        zs1 = (x1 - x1.mean()) / x1.std()
        y = 0.1 + beta * zs1 + rng.normal(size=n)
        parts.append(pd.DataFrame({"day": t, "y": y, "x1": x1, "x2": x2, "x3": x3}))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("seed", [1, 2])
def test_known_coefficient_is_recovered_and_null_ones_are_insignificant(seed):
    res = fama_macbeth(_panel(seed), "y", ["x1", "x2", "x3"], "day")
    s = res.summary
    assert res.periods == 80 and res.skipped == 0
    assert s.loc["x1", "coef"] == pytest.approx(0.4, abs=0.03)
    assert s.loc["const", "coef"] == pytest.approx(0.1, abs=0.03)
    assert s.loc["x1", "t"] > 20
    assert abs(s.loc["x2", "t"]) < 3 and abs(s.loc["x3", "t"]) < 3
    assert abs(s.loc["x2", "coef"]) < 0.03
    assert (s["lags"] == default_lags(80)).all()
    assert res.n_obs.eq(150).all() and res.r2.between(0, 1).all()
    # the t statistic is the mean over its Newey-West error
    assert s.loc["x1", "se"] == pytest.approx(newey_west_se(res.coefs["x1"].to_numpy(), default_lags(80)))


def test_exact_fit_without_and_with_standardisation():
    x = np.array([1.0, 2.0, 4.0, 7.0, 8.0])
    df = pd.concat([pd.DataFrame({"p": p, "x": x + p, "y": 1.0 + 2.0 * (x + p)}) for p in range(3)])
    raw = fama_macbeth(df, "y", ["x"], "p", standardize=False)
    assert raw.coefs["x"].to_numpy() == pytest.approx([2.0, 2.0, 2.0])
    assert raw.coefs["const"].to_numpy() == pytest.approx([1.0, 1.0, 1.0])
    assert raw.summary.loc["x", "coef"] == pytest.approx(2.0)
    assert math.isnan(raw.summary.loc["x", "t"])  # zero variance over time: no t statistic
    z = fama_macbeth(df, "y", ["x"], "p")
    assert z.summary.loc["x", "coef"] == pytest.approx(2.0 * x.std())


def test_constant_regressor_rank_deficiency_and_small_cross_sections():
    rng = np.random.default_rng(0)
    parts = []
    for p in range(6):
        n = 3 if p == 5 else 30  # period 5 is too small
        x1 = rng.normal(size=n)
        x2 = np.full(n, 1.0) if p == 0 else rng.normal(size=n)  # constant in period 0
        parts.append(pd.DataFrame({"p": p, "x1": x1, "x2": x2, "y": x1 + rng.normal(size=n) * 0.1}))
    df = pd.concat(parts, ignore_index=True)
    df.loc[df.index[:2], "y"] = np.nan  # incomplete rows are dropped, not fatal
    res = fama_macbeth(df, "y", ["x1", "x2"], "p")
    assert list(res.coefs.index) == [0, 1, 2, 3, 4] and res.skipped == 1
    assert math.isnan(res.coefs.loc[0, "x2"]) and not math.isnan(res.coefs.loc[0, "x1"])
    assert res.summary.loc["x2", "periods"] == 4 and res.summary.loc["x1", "periods"] == 5
    dup = df.assign(x3=df["x1"] * 2.0)
    res2 = fama_macbeth(dup, "y", ["x1", "x3"], "p")
    assert res2.periods == 0 and res2.skipped == 6
    with pytest.raises(KeyError):
        fama_macbeth(df, "y", ["nope"], "p")


def test_newey_west_of_a_single_value_is_nan():
    # one observation says nothing about the spread of its mean (it used to read 0.0: a
    # "perfectly precise" estimate and an infinite t statistic)
    assert math.isnan(newey_west_se([0.7]))
    assert math.isnan(newey_west_se([0.7], 0))
    assert math.isnan(newey_west_se([]))
    assert newey_west_se([0.7, 0.9], 0) == pytest.approx(math.sqrt(0.01 / 2))


def test_r_squared_is_nan_for_an_outcome_constant_up_to_rounding():
    rng = np.random.default_rng(4)
    n = 20
    x = rng.normal(size=3 * n)
    y = np.concatenate([
        np.full(n, 0.3),  # exactly constant in the data, but its mean is not exactly 0.3
        np.array([0.1 + 0.2, 0.3] * (n // 2)) * 1000.0,  # equal up to one rounding step
        x[2 * n:] * 2.0 + rng.normal(size=n) * 1e-14,  # tiny noise on a real spread: kept
    ])
    df = pd.DataFrame({"p": np.repeat([0, 1, 2], n), "x": x, "y": y})
    res = fama_macbeth(df, "y", ["x"], "p")
    assert math.isnan(res.r2.loc[0]) and math.isnan(res.r2.loc[1])
    assert res.r2.loc[2] == pytest.approx(1.0)
    # a genuinely small-scale outcome is not "constant": the tolerance is relative
    tiny = df[df["p"] == 2].assign(y=lambda d: d["y"] * 1e-20)
    assert fama_macbeth(tiny, "y", ["x"], "p").r2.iloc[0] == pytest.approx(1.0)
