"""Break-even win rates, Wilson intervals and the realised win-rate tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from engine.analysis.risk_reward import (
    break_even_win_rate,
    label_win_rates,
    round_trip_fee,
    trade_win_rates,
    verdict,
    wilson_interval,
)
from engine.settings import ProfileSettings


def test_break_even_win_rate():
    assert break_even_win_rate(0.02, 0.01) == pytest.approx(1 / 3)
    assert break_even_win_rate(0.008, 0.02) == pytest.approx(0.02 / 0.028)
    # fees: p (0.02 - 0.002) = (1 - p)(0.01 + 0.002)  ->  p = 0.012 / 0.030
    assert break_even_win_rate(0.02, 0.01, 0.002, 0.002) == pytest.approx(0.4)
    assert break_even_win_rate(0.001, 0.01, 0.002, 0.002) == 1.0
    with pytest.raises(ValueError):
        break_even_win_rate(0.0, 0.01)
    assert round_trip_fee(ProfileSettings()) == pytest.approx(0.0002)


def test_expected_return_is_zero_at_break_even():
    tp, sl, f = 0.012, 0.02, 0.0006
    p = break_even_win_rate(tp, sl, f, f)
    assert p * (tp - f) - (1 - p) * (sl + f) == pytest.approx(0.0, abs=1e-15)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 100)
    assert (lo, hi) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    assert verdict(0.5, 0.6, 0.4) == "above" and verdict(0.1, 0.3, 0.4) == "below"
    assert verdict(0.3, 0.5, 0.4) == "inconclusive" and verdict(math.nan, math.nan, 0.4) == "n/a"


def test_label_table():
    labels = pd.DataFrame({
        "side": ["long"] * 10 + ["short"] * 4,
        "label": [1, 1, 1, 1, 1, 1, -1, -1, 0, float("nan"), 1, -1, -1, -1],
        "exit_ret": [0.01] * 6 + [-0.01, -0.01, 0.002, float("nan"), 0.01, -0.01, -0.01, -0.01],
    })
    t = label_win_rates(labels, 0.01, 0.01, fee=0.001).set_index("side")
    assert t.loc["long", ["signals", "tp", "stop", "timeout", "open"]].tolist() == [10, 6, 2, 1, 1]
    assert t.loc["long", "win_rate"] == pytest.approx(0.75)
    assert t.loc["long", "break_even"] == pytest.approx(0.011 / 0.020)
    assert t.loc["long", "mean_net_ret"] == pytest.approx((6 * 0.01 - 0.02 + 0.002) / 9 - 0.001)
    assert t.loc["short", "win_rate"] == pytest.approx(0.25)
    assert t.loc["long", "edge"] == pytest.approx(0.75 - 0.55)


def test_trade_table_and_realised_break_even():
    trades = pd.DataFrame({
        "side": ["long"] * 5 + ["short"],
        "pnl": [2.0, 1.0, -3.0, 4.0, -1.0, 0.5],
        "ret": [0.02, 0.01, -0.03, 0.03, -0.01, 0.004],
    })
    t = trade_win_rates(trades, 0.008, 0.02).set_index("side")
    assert t.loc["long", "trades"] == 5 and t.loc["long", "wins"] == 3
    assert t.loc["long", "win_rate"] == pytest.approx(0.6)
    assert t.loc["long", "avg_win_ret"] == pytest.approx(0.02)
    assert t.loc["long", "avg_loss_ret"] == pytest.approx(0.02)
    assert t.loc["long", "realised_break_even"] == pytest.approx(0.5)
    assert t.loc["long", "pnl"] == pytest.approx(3.0)
    assert math.isnan(t.loc["short", "avg_loss_ret"]) and math.isnan(t.loc["short", "realised_break_even"])
