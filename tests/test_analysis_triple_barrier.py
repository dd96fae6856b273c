"""Triple-barrier labels: constructed paths for every case, and the real bundled candles
checked against a direct path scan."""

from __future__ import annotations

from pathlib import Path
import math

import numpy as np
import pandas as pd
import pytest

from engine.analysis.risk_reward import label_win_rates
from engine.analysis.triple_barrier import Barriers, load_candles, triple_barrier
from engine.market.feeds import read_candles_csv
from engine.settings import ProfileSettings

#: the 2018 BTC-quoted set and the XRP perp files: test data since the demo moved to USDT-M perps
DEMO_DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"

TF = 300_000


def path(*bars: tuple[float, float, float, float], start_close: float = 100.0) -> pd.DataFrame:
    """Candle 0 is the signal candle (close = entry); then (open, high, low, close) bars."""
    rows = [(0, start_close, start_close, start_close, start_close)]
    rows += [((i + 1) * TF, *b) for i, b in enumerate(bars)]
    return pd.DataFrame(rows, columns=["ts_ms", "open", "high", "low", "close"])


def one(side: str, candles: pd.DataFrame, tp=0.01, stop=0.01, horizon_candles=4, ts=0):
    sig = pd.DataFrame({"ts_ms": [ts], "symbol": ["X"], "side": [side]})
    out = triple_barrier(sig, {"X": candles}, Barriers(tp, stop, horizon_candles * 5), timeframe_ms=TF)
    return out.iloc[0]


FLAT = (100.0, 100.2, 99.8, 100.0)


@pytest.mark.parametrize(("side", "bars", "label", "hit", "bars_held", "ret"), [
    # long
    ("long", [FLAT, (100, 101.0, 99.9, 100.9), FLAT], 1, "tp", 2, 0.01),
    ("long", [FLAT, (100, 100.5, 98.9, 99.5), (99.5, 102, 99.5, 101.5)], -1, "stop", 2, -0.01),
    ("long", [(100, 101.5, 98.5, 100)], -1, "stop", 1, -0.01),  # both in one candle: stop
    ("long", [FLAT, (97.0, 97.5, 96.0, 97.2)], -1, "stop", 2, -0.03),  # gap through the stop
    ("long", [FLAT, (100, 100.3, 99.5, 100.3), FLAT, (100.1, 100.5, 99.9, 100.4)], 0, "time", 4, 0.004),
    # short mirrors
    ("short", [FLAT, (100, 100.1, 99.0, 99.2)], 1, "tp", 2, 0.01),
    ("short", [(100, 101.2, 99.9, 101)], -1, "stop", 1, -0.01),
    ("short", [(100, 101.5, 98.5, 100)], -1, "stop", 1, -0.01),
    ("short", [(103.0, 104, 102.5, 103.5)], -1, "stop", 1, -0.03),
    ("short", [FLAT, FLAT, FLAT, (100, 100.2, 99.5, 99.6)], 0, "time", 4, 0.004),
])
def test_constructed_paths(side, bars, label, hit, bars_held, ret):
    r = one(side, path(*bars))
    assert r["label"] == label and r["hit"] == hit and r["bars"] == bars_held
    assert r["exit_ret"] == pytest.approx(ret)
    assert r["entry_price"] == 100.0
    assert r["exit_ts_ms"] == bars_held * TF + TF  # close time of the exit candle


def test_take_profit_before_a_later_stop_and_barriers_after_the_horizon_are_ignored():
    r = one("long", path(FLAT, (100, 101.2, 99.9, 101), (101, 101, 95, 95)))
    assert r["label"] == 1
    late = one("long", path(FLAT, FLAT, FLAT, FLAT, (100, 120, 100, 120)))  # bar 5 > horizon 4
    assert late["label"] == 0 and late["fwd_ret"] == pytest.approx(0.0)


def test_data_ending_before_the_horizon_leaves_the_label_open_unless_a_barrier_was_hit():
    r = one("long", path(FLAT, FLAT))
    assert math.isnan(r["label"]) and r["hit"] == "open" and math.isnan(r["fwd_ret"])
    r = one("long", path(FLAT, (100, 101.5, 100, 101)))
    assert r["label"] == 1 and math.isnan(r["fwd_ret"])


def test_missing_candles_and_symbols():
    candles = path(FLAT, FLAT, FLAT, FLAT, FLAT)
    gap = candles.drop(index=[2, 3])  # the time window is by time: fewer candles, not later ones
    r = one("long", pd.concat([gap, pd.DataFrame([(6 * TF, 100, 120, 100, 120)], columns=gap.columns)]))
    assert r["label"] == 0 and r["bars"] == 2  # candles at 1 and 4 (x TF) only
    sig = pd.DataFrame({"ts_ms": [TF // 2, 0], "symbol": ["X", "Y"], "side": ["long", "long"]})
    out = triple_barrier(sig, {"X": candles}, Barriers(0.01, 0.01, 20), timeframe_ms=TF)
    assert list(out["hit"]) == ["no_data", "no_data"] and out["label"].isna().all()


def test_barriers_from_settings():
    p = ProfileSettings()
    first = Barriers.from_settings(p)
    assert (first.take_profit, first.stop, first.horizon_minutes) == (0.008, 0.02, 5760.0)
    ladder = Barriers.from_settings(p, "ladder", horizon_minutes=240)
    assert ladder.take_profit == pytest.approx(0.35 * 0.008 + 0.25 * 0.016 + 0.25 * 0.03 + 0.15 * 0.05)
    assert ladder.horizon_minutes == 240
    with pytest.raises(ValueError):
        Barriers(0.0, 0.01, 10)


def scan(candles, i, side, tp, stop, horizon_ms):
    """Direct, candle-by-candle reading of the rules."""
    entry = candles[i].close
    t0 = candles[i].ts_ms
    last = None
    for c in candles[i + 1:]:
        if c.ts_ms >= t0 + TF + horizon_ms:
            break
        last = c
        if side == "long":
            if c.low <= entry * (1 - stop):
                return -1, min(c.open, entry * (1 - stop)) / entry - 1
            if c.high >= entry * (1 + tp):
                return 1, tp
        else:
            if c.high >= entry * (1 + stop):
                return -1, 1 - max(c.open, entry * (1 + stop)) / entry
            if c.low <= entry * (1 - tp):
                return 1, tp
    if candles[-1].ts_ms < t0 + horizon_ms or last is None:
        return None, None
    r = last.close / entry - 1
    return 0, r if side == "long" else -r


@pytest.mark.parametrize(("name", "tp", "stop", "horizon_min"), [
    ("ETH_BTC", 0.008, 0.02, 240),
    ("ZEC_BTC", 0.01, 0.01, 720),
    ("ADA_BTC", 0.008, 0.02, 5760),  # the default settings: 96 h time barrier
])
def test_real_candles_match_a_direct_scan(name, tp, stop, horizon_min):
    candles = read_candles_csv(DEMO_DATA / f"{name}-5m.csv")
    symbol = name.replace("_", "/")
    idx = list(range(100, len(candles), 53))
    sig = pd.DataFrame({
        "ts_ms": [candles[i].ts_ms for i in idx for _ in (0, 1)],
        "symbol": symbol,
        "side": ["long", "short"] * len(idx),
    })
    out = triple_barrier(sig, {symbol: candles}, Barriers(tp, stop, horizon_min))
    seen = {-1: 0, 0: 0, 1: 0, None: 0}
    for k, row in out.iterrows():
        label, ret = scan(candles, idx[k // 2], row["side"], tp, stop, horizon_min * 60_000)
        seen[label] += 1
        if label is None:
            assert math.isnan(row["label"])
        else:
            assert row["label"] == label
            assert row["exit_ret"] == pytest.approx(ret, rel=1e-12, abs=1e-15)
    assert seen[1] > 0 and seen[-1] > 0  # the real data exercises both barriers
    if horizon_min < 1000:
        assert seen[0] > 0
    rr = label_win_rates(out, tp, stop).set_index("side")
    for side in ("long", "short"):
        g = out[(out["side"] == side) & out["complete"]]  # late signals are reported apart
        n_tp, n_sl = int((g["label"] == 1).sum()), int((g["label"] == -1).sum())
        assert rr.loc[side, "win_rate"] == pytest.approx(n_tp / (n_tp + n_sl))
        assert rr.loc[side, "break_even"] == pytest.approx(stop / (tp + stop))


def test_load_candles_reads_the_recorded_directory():
    c = load_candles(DEMO_DATA, symbols=["ETH/BTC", "NOPE/BTC"])
    assert list(c) == ["ETH/BTC"] and len(c["ETH/BTC"].ts) == 5760
    assert np.all(np.diff(c["ETH/BTC"].ts) > 0)


def test_signals_in_the_last_horizon_do_not_bias_the_win_rate():
    # every complete signal times out; the late ones are kept only when they hit a barrier:
    # the take-profit here. Counting them would turn a 0 / 0 table into a 100 % win rate.
    bars = [FLAT] * 8 + [(100, 101.5, 99.9, 101.2)]
    candles = path(*bars)
    sig = pd.DataFrame({"ts_ms": [0, TF, 6 * TF, 7 * TF], "symbol": ["X"] * 4, "side": ["long"] * 4})
    out = triple_barrier(sig, {"X": candles}, Barriers(0.01, 0.01, 20), timeframe_ms=TF)
    assert out["complete"].tolist() == [True, True, False, False]
    assert out["label"].tolist() == [0, 0, 1, 1]  # the late hits keep their labels
    t = label_win_rates(out, 0.01, 0.01).set_index("side")
    assert t.loc["long", ["tp", "stop", "timeout", "open", "late_tp", "late_stop"]].tolist() == [0, 0, 2, 2, 2, 0]
    assert math.isnan(t.loc["long", "win_rate"])


@pytest.mark.parametrize("bad", ["nan_close", "nan_high", "duplicate", "duplicate_unsorted"])
def test_nan_or_duplicate_candles_are_rejected(bad):
    candles = path(FLAT, FLAT, FLAT, FLAT)
    if bad == "nan_close":
        candles.loc[2, "close"] = np.nan
    elif bad == "nan_high":
        candles.loc[3, "high"] = np.nan
    elif bad == "duplicate":
        candles = pd.concat([candles, candles.iloc[[2]]], ignore_index=True)
    else:
        candles = pd.concat([candles.iloc[[3]], candles], ignore_index=True)
    sig = pd.DataFrame({"ts_ms": [0], "symbol": ["BTCUSDT"], "side": ["long"]})
    with pytest.raises(ValueError, match=r"candles of BTCUSDT: .*(NaN|duplicate)") as e:
        triple_barrier(sig, {"BTCUSDT": candles}, Barriers(0.01, 0.01, 20), timeframe_ms=TF)
    assert "ts_ms=" in str(e.value)
