"""Indicator values checked by hand, edge cases and warm-up lengths.

Hand values use the first rows of XRP_USDT_USDT-5m-futures.csv (real recorded candles),
worked out with explicit arithmetic in the test, not by calling the code under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.market import indicators as ind
from engine.market.candles import Candle, candles_to_arrays
from engine.market.feeds import read_candles_csv

DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"  # the 2018 BTC-quoted set (test data)
M5 = 300_000

# first eight rows of XRP_USDT_USDT-5m-futures.csv: ts, open, high, low, close, volume
ROWS = [
    (1636934400000, 1.1893, 1.1954, 1.1891, 1.1941, 9289043.5),
    (1636934700000, 1.1941, 1.1993, 1.1934, 1.1972, 7267451.9),
    (1636935000000, 1.1972, 1.1994, 1.1958, 1.1963, 4199874.3),
    (1636935300000, 1.1963, 1.199, 1.1963, 1.198, 3834762.5),
    (1636935600000, 1.198, 1.2017, 1.198, 1.2, 5362935.4),
    (1636935900000, 1.2, 1.2092, 1.1975, 1.2083, 12116690.4),
    (1636936200000, 1.2084, 1.2097, 1.2061, 1.2079, 6959499.2),
    (1636936500000, 1.2079, 1.2082, 1.2034, 1.2056, 4608466.2),
]


@pytest.fixture(scope="module")
def head() -> list[Candle]:
    candles = read_candles_csv(DATA / "XRP_USDT_USDT-5m-futures.csv")[: len(ROWS)]
    assert [c.to_ohlcv() for c in candles] == [list(r) for r in ROWS]  # file unchanged
    return candles


def both(fn_vec, make_inc, candles: list[Candle]) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised result and the incremental values for the same candles."""
    inc = make_inc()
    return fn_vec(candles_to_arrays(candles)), np.array([inc.update(c) for c in candles])


def check(values: np.ndarray, expected: dict[int, float], nan_before: int) -> None:
    assert np.isnan(values[:nan_before]).all()
    for i, want in expected.items():
        assert values[i] == pytest.approx(want, rel=1e-12), i


# --- hand-computed values ----------------------------------------------------------------
def test_ema_by_hand(head: list[Candle]) -> None:
    # EMA3, alpha = 2/(3+1) = 0.5, seeded with the SMA of the first three closes
    seed = (1.1941 + 1.1972 + 1.1963) / 3  # 1.19586666...
    e3 = seed + 0.5 * (1.198 - seed)
    e4 = e3 + 0.5 * (1.2 - e3)
    e5 = e4 + 0.5 * (1.2083 - e4)
    assert seed == pytest.approx(1.1958666666666666, rel=1e-12)
    assert e4 == pytest.approx(1.1984666666666666, rel=1e-12)
    v, i = both(lambda a: ind.ema(a.close, 3), lambda: ind.Ema(3), head)
    for values in (v, i):
        check(values, {2: seed, 3: e3, 4: e4, 5: e5}, nan_before=2)


def test_rsi_by_hand(head: list[Candle]) -> None:
    # changes: +0.0031, -0.0009, +0.0017, +0.0020, +0.0083, -0.0004, -0.0023
    g3, l3 = (0.0031 + 0.0017) / 3, 0.0009 / 3  # seed over changes 1..3
    g4, l4 = (2 * g3 + 0.0020) / 3, (2 * l3 + 0.0) / 3  # Wilder: (prev*(n-1) + x) / n
    g5, l5 = (2 * g4 + 0.0083) / 3, (2 * l4) / 3
    g6, l6 = (2 * g5) / 3, (2 * l5 + 0.0004) / 3
    expected = {3: 100 * g3 / (g3 + l3), 4: 100 * g4 / (g4 + l4), 5: 100 * g5 / (g5 + l5),
                6: 100 * g6 / (g6 + l6)}
    assert expected[3] == pytest.approx(100 * 16 / 19, rel=1e-9)  # 84.21
    assert expected[4] == pytest.approx(100 * 52 / 58, rel=1e-9)  # 89.66
    assert expected[6] == pytest.approx(100 * 706 / 766, rel=1e-9)  # 92.17
    v, i = both(lambda a: ind.rsi(a.close, 3), lambda: ind.Rsi(3), head)
    for values in (v, i):
        check(values, expected, nan_before=3)


def test_atr_and_atr_rate_by_hand(head: list[Candle]) -> None:
    tr1 = max(1.1993 - 1.1934, abs(1.1993 - 1.1941), abs(1.1934 - 1.1941))  # 0.0059
    tr2 = max(1.1994 - 1.1958, abs(1.1994 - 1.1972), abs(1.1958 - 1.1972))  # 0.0036
    tr3 = max(1.199 - 1.1963, abs(1.199 - 1.1963), abs(1.1963 - 1.1963))  # 0.0027
    tr4 = max(1.2017 - 1.198, abs(1.2017 - 1.198), abs(1.198 - 1.198))  # 0.0037
    tr5 = max(1.2092 - 1.1975, abs(1.2092 - 1.2), abs(1.1975 - 1.2))  # 0.0117
    a3 = (tr1 + tr2 + tr3) / 3
    a4 = (2 * a3 + tr4) / 3
    a5 = (2 * a4 + tr5) / 3
    assert a5 == pytest.approx(0.1763 / 27, rel=1e-9)
    a = candles_to_arrays(head)
    np.testing.assert_allclose(ind.true_range(a.high, a.low, a.close)[1:6],
                               [tr1, tr2, tr3, tr4, tr5], rtol=1e-12)
    v, i = both(lambda a: ind.atr(a.high, a.low, a.close, 3), lambda: ind.Atr(3), head)
    for values in (v, i):
        check(values, {3: a3, 4: a4, 5: a5}, nan_before=3)
    v, i = both(lambda a: ind.atr_rate(a.high, a.low, a.close, 3), lambda: ind.AtrRate(3), head)
    for values in (v, i):
        check(values, {3: a3 / 1.198, 5: a5 / 1.2083}, nan_before=3)


def test_choppiness_by_hand(head: list[Candle]) -> None:
    # CHOP3 at row 3: window rows 1..3
    sum_tr = 0.0059 + 0.0036 + 0.0027
    rng = max(1.1993, 1.1994, 1.199) - min(1.1934, 1.1958, 1.1963)
    c3 = 100 * math.log10(sum_tr / rng) / math.log10(3)
    # row 4: window rows 2..4
    c4 = 100 * math.log10((0.0036 + 0.0027 + 0.0037) / (1.2017 - 1.1958)) / math.log10(3)
    assert c3 == pytest.approx(64.598, abs=1e-3)
    v, i = both(lambda a: ind.choppiness(a.high, a.low, a.close, 3), lambda: ind.Choppiness(3), head)
    for values in (v, i):
        check(values, {3: c3, 4: c4}, nan_before=3)


def test_volume_ratio_and_spike_by_hand(head: list[Candle]) -> None:
    v0, v1, v2, v3, v4 = 9289043.5, 7267451.9, 4199874.3, 3834762.5, 5362935.4
    ratio3 = ((v2 + v3) / 2) / ((v0 + v1 + v2 + v3) / 4)
    ratio4 = ((v3 + v4) / 2) / ((v1 + v2 + v3 + v4) / 4)
    v, i = both(lambda a: ind.volume_ratio(a.volume, 2, 4), lambda: ind.VolumeRatio(2, 4), head)
    for values in (v, i):
        check(values, {3: ratio3, 4: ratio4}, nan_before=3)
    spike3 = v3 / ((v0 + v1 + v2) / 3)
    spike5 = 12116690.4 / ((v2 + v3 + v4) / 3)
    assert spike5 > 2.5  # the 5th candle really is a volume spike
    v, i = both(lambda a: ind.volume_spike(a.volume, 3), lambda: ind.VolumeSpike(3), head)
    for values in (v, i):
        check(values, {3: spike3, 5: spike5}, nan_before=3)


def test_returns_and_relative_strength_by_hand(head: list[Candle]) -> None:
    v, i = both(lambda a: ind.candle_return(a.close, 3, a.ts, M5), lambda: ind.Return(3, M5), head)
    for values in (v, i):
        check(values, {3: 1.198 / 1.1941 - 1, 5: 1.2083 / 1.1963 - 1}, nan_before=3)
    # BTC-quoted data: BTC's return against itself is 0, rs is the pair's own return
    v, i = both(lambda a: ind.relative_strength(a.close, 3, a.ts, timeframe_ms=M5),
                lambda: ind.RelativeStrength(3, M5), head)
    for values in (v, i):
        check(values, {3: 1.198 / 1.1941 - 1}, nan_before=3)


def test_btc_return_30m_uses_six_5m_candles(head: list[Candle]) -> None:
    a = candles_to_arrays(head)
    r = ind.btc_return(a.close, 30, "5m", a.ts)
    check(r, {6: 1.2079 / 1.1941 - 1, 7: 1.2056 / 1.1972 - 1}, nan_before=6)
    tracker = ind.Return.over_minutes(30, "5m")
    assert tracker.period == 6 and tracker.timeframe_ms == M5
    assert [tracker.update(c) for c in head][6] == pytest.approx(1.2079 / 1.1941 - 1, rel=1e-12)


def _profile_candles(rows: list[tuple[float, float, float]]) -> list[Candle]:
    return [Candle(i * M5, lo, hi, lo, hi, v) for i, (lo, hi, v) in enumerate(rows)]


@pytest.mark.parametrize(
    ("rows", "area", "expected"),
    [
        # range [1, 5], 4 bins of 1.0. A: [1,2] vol 4 -> bin0 4. B: point 3 vol 10 -> bin2.
        # C: [2,5] vol 6 -> 2 per unit: bins 1,2,3 get 2 each. hist = [4, 2, 12, 2], total 20.
        # POC bin2 (3..4) -> 3.5. 0.7: need 14; neighbours tie at 2 -> both -> 16: VA 2..5.
        ([(1, 2, 4), (3, 3, 10), (2, 5, 6)], 0.7, (3.5, 2.0, 5.0)),
        # 0.6: need 12, the POC bin alone holds 12 -> VA = 3..4
        ([(1, 2, 4), (3, 3, 10), (2, 5, 6)], 0.6, (3.5, 3.0, 4.0)),
        # C: [3,5] vol 6 -> bins 2,3 get 3 each. hist = [4, 0, 13, 3]: grow up (3 > 0) -> 3..5
        ([(1, 2, 4), (3, 3, 10), (3, 5, 6)], 0.7, (3.5, 3.0, 5.0)),
        # 1.0: everything -> VA spans the whole range
        ([(1, 2, 4), (3, 3, 10), (3, 5, 6)], 1.0, (3.5, 1.0, 5.0)),
        # flat window: every candle at 2.0 -> all three are 2.0
        ([(2, 2, 1), (2, 2, 5), (2, 2, 1)], 0.7, (2.0, 2.0, 2.0)),
        # no volume at all: unknown
        ([(1, 2, 0), (3, 3, 0), (2, 5, 0)], 0.7, (math.nan, math.nan, math.nan)),
    ],
)
def test_volume_profile_by_hand(rows: list, area: float, expected: tuple) -> None:
    candles = _profile_candles(rows)
    a = candles_to_arrays(candles)
    vec = ind.volume_profile(a.high, a.low, a.volume, window=3, bins=4, value_area=area)
    inc = ind.VolumeProfile(window=3, bins=4, value_area=area)
    got = [inc.update(c) for c in candles]
    assert math.isnan(got[1].poc) and inc.ready
    for value in (tuple(x[2] for x in vec), tuple(got[2])):
        np.testing.assert_allclose(value, expected, rtol=1e-12, equal_nan=True)


def test_volume_profile_point_candle_at_top_goes_to_last_bin() -> None:
    candles = _profile_candles([(1, 2, 1), (5, 5, 10), (1, 5, 4)])
    inc = ind.VolumeProfile(window=3, bins=4, value_area=0.5)
    poc, val, vah = [inc.update(c) for c in candles][-1]
    assert (poc, val, vah) == (4.5, 4.0, 5.0)


# --- warm-up lengths, degenerate markets, validation ---------------------------------------
def test_warmup_lengths_on_real_file() -> None:
    a = candles_to_arrays(read_candles_csv(DATA / "ETH_BTC-5m.csv"))
    first = {
        "ema24": (ind.ema(a.close, 24), 23),
        "rsi14": (ind.rsi(a.close, 14), 14),
        "atr14": (ind.atr(a.high, a.low, a.close, 14), 14),
        "chop14": (ind.choppiness(a.high, a.low, a.close, 14), 14),
        "vr5/20": (ind.volume_ratio(a.volume, 5, 20), 19),
        "spike5": (ind.volume_spike(a.volume, 5), 5),
        "vp60": (ind.volume_profile(a.high, a.low, a.volume, 60)[0], 59),
        "ret12": (ind.candle_return(a.close, 12), 12),
    }
    for name, (values, k) in first.items():
        assert np.isnan(values[:k]).all(), name
        assert not np.isnan(values[k:]).any(), name


def test_short_inputs_are_all_nan() -> None:
    x = np.array([1.0, 2.0])
    for values in (ind.ema(x, 3), ind.rsi(x, 3), ind.atr(x, x, x, 3), ind.choppiness(x, x, x, 3),
                   ind.volume_ratio(x, 1, 3), ind.volume_spike(x, 2), ind.candle_return(x, 2),
                   ind.volume_profile(x, x, x, 3)[0]):
        assert len(values) == 2 and np.isnan(values).all()
    assert len(ind.ema(np.array([]), 3)) == 0


def test_flat_market_values() -> None:
    flat = [Candle(i * M5, 2.0, 2.0, 2.0, 2.0, 0.0) for i in range(30)]
    a = candles_to_arrays(flat)
    assert ind.rsi(a.close, 14)[-1] == 50.0  # no gains, no losses: neutral
    assert ind.choppiness(a.high, a.low, a.close, 14)[-1] == 100.0  # no range: maximally choppy
    assert ind.atr(a.high, a.low, a.close, 14)[-1] == 0.0
    assert ind.volume_ratio(a.volume, 5, 20)[-1] == 0.0  # nothing traded: fails a min gate
    assert ind.volume_spike(a.volume, 5)[-1] == 0.0
    rsi, chop, vr, vs = ind.Rsi(14), ind.Choppiness(14), ind.VolumeRatio(5, 20), ind.VolumeSpike(5)
    for c in flat:
        values = (rsi.update(c), chop.update(c), vr.update(c), vs.update(c))
    assert values == (50.0, 100.0, 0.0, 0.0)
    wake = Candle(30 * M5, 2.0, 2.0, 2.0, 2.0, 7.0)
    assert vs.update(wake) == math.inf  # volume after a dead window
    assert ind.volume_spike(np.r_[a.volume, 7.0], 5)[-1] == math.inf


def test_ema_constant_series_stays_constant() -> None:
    x = np.full(50, 0.1)
    np.testing.assert_allclose(ind.ema(x, 24)[23:], 0.1, rtol=1e-15)
    e = ind.Ema(24)
    assert [e.push(0.1) for _ in range(50)][-1] == pytest.approx(0.1, rel=1e-15) and e.ready


def test_ema_for_minutes() -> None:
    assert ind.Ema.for_minutes(2880, "1h").period == 48
    assert ind.Ema.for_minutes(7200, "1h").period == 120
    assert ind.Ema.for_minutes(120, "5m").period == 24
    assert ind.Ema.for_minutes(360, "5m").period == 72
    assert ind.RelativeStrength.over_minutes(60, "5m").own.period == 12


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError):
        ind.ema(np.array([1.0, np.nan, 2.0]), 2)
    with pytest.raises(ValueError):
        ind.rsi(np.array([[1.0, 2.0]]), 2)
    with pytest.raises(ValueError):
        ind.atr(np.ones(5), np.ones(4), np.ones(5), 2)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            ind.Ema(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ind.Choppiness(1)
    with pytest.raises(ValueError):
        ind.volume_ratio(np.ones(30), 21, 20)
    with pytest.raises(ValueError):
        ind.VolumeProfile(60, 12, 0.0)


def test_return_is_nan_across_a_gap() -> None:
    candles = read_candles_csv(DATA / "ADA_BTC-5m.csv")
    a = candles_to_arrays(candles)
    r_ts = ind.candle_return(a.close, 6, a.ts, M5)
    r_count = ind.candle_return(a.close, 6)
    span = np.full(len(a.ts), -1)
    span[6:] = a.ts[6:] - a.ts[:-6]
    gapped = span > 6 * M5
    assert gapped.sum() > 0
    assert np.isnan(r_ts[gapped]).all() and not np.isnan(r_count[gapped]).any()
    ok = span == 6 * M5
    np.testing.assert_array_equal(r_ts[ok], r_count[ok])
    tracker = ind.Return(6, M5)
    inc = np.array([tracker.update(c) for c in candles])
    np.testing.assert_array_equal(inc, r_ts)


def test_relative_strength_against_btc_series() -> None:
    sym = [Candle(i * M5, p, p, p, p, 1.0) for i, p in enumerate([10, 11, 12, 13, 14, 15.0])]
    # BTC lacks the candle at slot 4
    btc_rows = [(0, 100.0), (1, 101.0), (2, 99.0), (3, 100.0), (5, 102.0)]
    btc = [Candle(k * M5, p, p, p, p, 1.0) for k, p in btc_rows]
    s, b = candles_to_arrays(sym), candles_to_arrays(btc)
    rs = ind.relative_strength(s.close, 2, s.ts, b.close, b.ts, M5)
    assert np.isnan(rs[:2]).all()
    assert rs[2] == pytest.approx((12 / 10 - 1) - (99 / 100 - 1), rel=1e-12)
    assert rs[3] == pytest.approx((13 / 11 - 1) - (100 / 101 - 1), rel=1e-12)
    assert np.isnan(rs[4])  # no BTC candle at that time
    assert np.isnan(rs[5])  # BTC window 3..5 spans its gap
    # incremental: the shared BTC tracker is updated first each cycle
    btc_ret = ind.Return(2, M5)
    tracker = ind.RelativeStrength(2, M5)
    btc_by_ts = {c.ts_ms: c for c in btc}
    got = []
    for c in sym:
        if c.ts_ms in btc_by_ts:
            btc_ret.update(btc_by_ts[c.ts_ms])
        got.append(tracker.update(c, btc_ret))
    np.testing.assert_array_equal(np.array(got), rs)
    # aligned arrays without timestamps
    aligned = ind.relative_strength(np.array([1.0, 2.0, 3.0]), 1, btc_close=np.array([1.0, 1.5, 1.5]))
    np.testing.assert_allclose(aligned[1:], [1.0 - 0.5, 0.5 - 0.0])
    with pytest.raises(ValueError):
        ind.RelativeStrength(3).update(sym[0], ind.Return(2))
