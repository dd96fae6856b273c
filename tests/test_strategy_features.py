"""Strategy features: hand-checked values, incremental == vectorised on the real candles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.market import Candle, read_candles_csv
from engine.market.feeds import parse_recorded_filename
from engine.market.indicators import volume_profile
from engine.settings import ProfileSettings
from engine.strategy import (
    CROSS_DOWN,
    CROSS_UP,
    FeatureEngine,
    SymbolFeatures,
    features_at,
    features_from_history,
    frame_to_features,
)
from engine.strategy._profile import value_area_batch
from engine.strategy.features import FEATURE_FIELDS

DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"  # the 2018 BTC-quoted set (test data)
FILES = sorted(DATA.glob("*_BTC-5m.csv"))

# Short periods so that hand arithmetic on the first rows is feasible.
SMALL = dict(
    ema_trigger_fast_minutes=15, ema_trigger_slow_minutes=30,        # EMA3 / EMA6 on 5m
    ema_pullback_fast_minutes=15, ema_pullback_slow_minutes=30,      # EMA3 / EMA6 on 5m
    ema_macro_fast_minutes=120, ema_macro_slow_minutes=180,          # EMA2 / EMA3 on 1h
    ema_chop_period=3, ema_volume_short_window=2, ema_volume_long_window=4,
    ema_volume_spike_window=2, ema_volume_profile_window=6, ema_volume_profile_bins=3,
    ema_averaging_atr_period=3, rs_fast_window=10, rs_slow_window=20,
    volatility_window=3, daily_volatility_window=4,
)


def load(path: Path) -> tuple[str, list[Candle]]:
    info = parse_recorded_filename(path)
    assert info is not None
    return info.symbol, read_candles_csv(path)


@pytest.fixture(scope="module")
def history() -> dict[str, list[Candle]]:
    return dict(load(p) for p in FILES)


def test_ten_bundled_series_are_present(history):
    assert len(history) == 10


# ---------------------------------------------------------------------------------------
# hand-checked values on the first rows of ETH/BTC (no gaps)
# ---------------------------------------------------------------------------------------
def _ema(values: list[float], n: int) -> list[float]:
    """EMA seeded with the SMA of the first n values; NaN before."""
    a = 2.0 / (n + 1)
    out = [math.nan] * len(values)
    if len(values) < n:
        return out
    e = sum(values[:n]) / n
    out[n - 1] = e
    for i in range(n, len(values)):
        e = (1 - a) * e + a * values[i]
        out[i] = e
    return out


def test_first_rows_by_hand():
    _, candles = load(DATA / "ETH_BTC-5m.csv")
    rows = candles[:60]
    p = ProfileSettings(**SMALL)
    engine = FeatureEngine(p)
    got = []
    for c in rows:
        engine.on_candle("ETH/BTC", "5m", c)
        got.append(engine.features("ETH/BTC"))
    o = [c.open for c in rows]
    h = [c.high for c in rows]
    lo = [c.low for c in rows]
    cl = [c.close for c in rows]
    v = [c.volume for c in rows]
    ts = [c.ts_ms for c in rows]

    # The first candle opens at 04:55, so the 04:00 hour is incomplete and dropped; hours
    # 05, 06, 07 complete at rows 12, 24, 36: the macro EMA3 is ready at row 36.
    assert ts[0] % 3_600_000 == 55 * 60_000
    assert all(f is None for f in got[:36])
    f = got[36]
    assert f is not None and f.warm
    i = 36
    hour_closes = [cl[12], cl[24], cl[36]]
    a2 = 2.0 / 3.0
    macro_fast = (1 - a2) * ((hour_closes[0] + hour_closes[1]) / 2) + a2 * hour_closes[2]
    macro_slow = sum(hour_closes) / 3
    assert f.macro_fast == pytest.approx(macro_fast, rel=1e-12)
    assert f.macro_slow == pytest.approx(macro_slow, rel=1e-12)
    assert f.macro_ts_ms == ts[36] - 55 * 60_000  # the 07:00 hour

    e3, e6 = _ema(cl, 3), _ema(cl, 6)
    assert f.trigger_fast == pytest.approx(e3[i], rel=1e-12)
    assert f.trigger_slow == pytest.approx(e6[i], rel=1e-12)
    assert f.pullback_fast == pytest.approx(e3[i], rel=1e-12)
    assert f.pullback_gap == pytest.approx((e3[i] - e6[i]) / e6[i], rel=1e-9)
    # last sign change of (EMA3 - EMA6), from the first row where both exist
    last = None
    for j in range(6, i + 1):
        d0, d1 = e3[j - 1] - e6[j - 1], e3[j] - e6[j]
        if d0 <= 0 < d1:
            last = (CROSS_UP, j)
        elif d0 >= 0 > d1:
            last = (CROSS_DOWN, j)
    assert last is not None
    assert f.pullback_cross == last[0]
    assert f.pullback_cross_age_min == (i - last[1]) * 5

    # choppiness(3) over rows 34..36
    tr = [max(h[j] - lo[j], abs(h[j] - cl[j - 1]), abs(lo[j] - cl[j - 1])) for j in (34, 35, 36)]
    rng = max(h[34:37]) - min(lo[34:37])
    assert f.chop == pytest.approx(100 * math.log10(sum(tr) / rng) / math.log10(3), rel=1e-12)
    # volume ratio 2/4, spike 2 vs the 4 before, directional share of the last 2
    assert f.volume_ratio == pytest.approx((sum(v[35:37]) / 2) / (sum(v[33:37]) / 4), rel=1e-12)
    j = 36 if v[36] >= v[35] else 35
    assert f.spike_ratio == pytest.approx(v[j] / (sum(v[31:35]) / 4), rel=1e-12)
    assert f.spike_direction == ("up" if cl[j] > o[j] else "down" if cl[j] < o[j] else "flat")
    up = sum(v[k] for k in (35, 36) if cl[k] > o[k])
    dn = sum(v[k] for k in (35, 36) if cl[k] < o[k])
    assert f.volume_up_fraction == pytest.approx(up / (v[35] + v[36]), abs=1e-15)
    assert f.volume_down_fraction == pytest.approx(dn / (v[35] + v[36]), abs=1e-15)
    # log returns over 10 and 20 minutes = 2 and 4 candles; no benchmark: rs = own return
    assert f.ret30 == pytest.approx(math.log(cl[36] / cl[34]), rel=1e-12)
    assert f.ret60 == pytest.approx(math.log(cl[36] / cl[32]), rel=1e-12)
    assert f.rs30 == f.ret30 and f.rs60 == f.ret60
    # Wilder ATR(3): mean of TR[1..3], then atr = (2 atr + tr) / 3
    trs = [max(h[k] - lo[k], abs(h[k] - cl[k - 1]), abs(lo[k] - cl[k - 1])) for k in range(1, 37)]
    atr_v = sum(trs[:3]) / 3
    for x in trs[3:]:
        atr_v = (2 * atr_v + x) / 3
    assert f.atr == pytest.approx(atr_v, rel=1e-12)
    assert f.atr_rate == pytest.approx(atr_v / cl[36], rel=1e-12)
    # realized volatility: sample std of the last 3 (and 4, scaled to a day) log returns
    r = [math.log(cl[k] / cl[k - 1]) for k in range(1, 37)]
    assert f.volatility == pytest.approx(float(np.std(r[-3:], ddof=1)), rel=1e-9)
    assert f.daily_volatility == pytest.approx(float(np.std(r[-4:], ddof=1)) * math.sqrt(288),
                                               rel=1e-9)
    # value area of the last 6 candles, 3 bins, 70 %
    win = range(31, 37)
    pl, ph = min(lo[k] for k in win), max(h[k] for k in win)
    width = (ph - pl) / 3
    edges = [pl, pl + width, pl + 2 * width, ph]
    hist = [0.0, 0.0, 0.0]
    for k in win:
        for b in range(3):
            ov = max(0.0, min(h[k], edges[b + 1]) - max(lo[k], edges[b]))
            hist[b] += v[k] * ov / (h[k] - lo[k])
    poc = hist.index(max(hist))
    a = b = poc
    acc = hist[poc]
    while acc < 0.7 * sum(hist) and (a > 0 or b < 2):
        upv = hist[b + 1] if b < 2 else -1.0
        dnv = hist[a - 1] if a > 0 else -1.0
        if upv >= dnv:
            b += 1
            acc += upv
        if dnv >= upv:
            a -= 1
            acc += dnv
    assert f.va_poc == pytest.approx((edges[poc] + edges[poc + 1]) / 2, rel=1e-12)
    assert f.va_low == pytest.approx(edges[a], rel=1e-12)
    assert f.va_high == pytest.approx(edges[b + 1], rel=1e-12)


# ---------------------------------------------------------------------------------------
# incremental == vectorised
# ---------------------------------------------------------------------------------------
def _run_incremental(history, p, benchmark=None, max_missing=0):
    """Feed every series in time order (all symbols of one candle time before the next)
    and record the features of every symbol after each of its candles."""
    engine = FeatureEngine(p, benchmark_symbol=benchmark, max_missing=max_missing)
    events = sorted((c.ts_ms, sym, c) for sym, cs in history.items() for c in cs)
    rows: dict[str, list[SymbolFeatures | None]] = {s: [] for s in history}
    k = 0
    while k < len(events):
        ts = events[k][0]
        batch = []
        while k < len(events) and events[k][0] == ts:
            batch.append(events[k])
            k += 1
        for _, sym, c in batch:
            engine.on_candle(sym, "5m", c)
        feats = engine.features_all([sym for _, sym, _ in batch])
        for _, sym, _ in batch:
            rows[sym].append(feats.get(sym))
    return engine, rows


def _assert_same(frame, got, symbol):
    warm = frame["warm"].to_numpy()
    assert [f is not None for f in got] == list(warm), symbol
    assert warm.any(), symbol
    idx = np.flatnonzero(warm)
    for name in FEATURE_FIELDS:
        if name in ("symbol", "warm"):
            continue
        inc = [getattr(got[i], name) for i in idx]
        vec = frame[name].to_numpy()[idx]
        if name in ("pullback_cross", "spike_direction", "ts_ms", "macro_ts_ms"):
            assert list(inc) == list(vec), (symbol, name)
        else:
            # Same arithmetic in both paths, hence exact, except: the rolling variances
            # (running sums vs pandas), and chop / volume ratio / ATR, whose incremental and
            # vectorised forms in engine.market can differ in the last bit
            exact = name not in ("chop", "volume_ratio", "atr", "atr_rate", "volatility",
                                 "daily_volatility")
            tol = 0.0 if exact else (1e-7 if "volatility" in name else 1e-10)
            np.testing.assert_allclose(np.asarray(inc, dtype=float), vec.astype(float),
                                       rtol=tol, atol=0.0 if exact else 1e-15,
                                       equal_nan=True,
                                       err_msg=f"{symbol} {name}")


def test_incremental_equals_vectorised_on_all_bundled_series(history):
    p = ProfileSettings()
    frames = features_from_history(history, p)
    _, rows = _run_incremental(history, p)
    for sym, frame in frames.items():
        assert len(frame) == len(history[sym])
        _assert_same(frame, rows[sym], sym)
        # roughly five days of warm-up (120 complete hours), then warm to the end
        first = int(np.argmax(frame["warm"].to_numpy()))
        assert 1400 <= first <= 1700, (sym, first)


def test_incremental_equals_vectorised_with_benchmark_and_derived_pullback(history):
    # a benchmark symbol (relative strength vs it), the pullback layer aggregated to 15m,
    # partial hours accepted (ADA and TRX have gaps)
    p = ProfileSettings(**{**SMALL, "ema_pullback_timeframe": "15m",
                           "ema_pullback_fast_minutes": 45, "ema_pullback_slow_minutes": 90})
    sub = {s: history[s][:1500] for s in ("ETH/BTC", "ADA/BTC", "TRX/BTC")}
    frames = features_from_history(sub, p, benchmark_symbol="ETH/BTC", max_missing=2)
    _, rows = _run_incremental(sub, p, benchmark="ETH/BTC", max_missing=2)
    for sym, frame in frames.items():
        _assert_same(frame, rows[sym], sym)
    eth = frames["ETH/BTC"]
    assert np.nanmax(np.abs(eth["rs60"].to_numpy())) == 0.0  # rs of the benchmark to itself
    ada = frames["ADA/BTC"]
    assert not np.allclose(ada["rs60"].to_numpy(), ada["ret60"].to_numpy(), equal_nan=True)


def test_history_input_order_and_duplicates_do_not_matter(history):
    import random

    from engine.market import candles_to_arrays

    p = ProfileSettings(**SMALL)
    cs = history["XMR/BTC"][:150]
    messy = cs + cs[10:20]
    random.Random(7).shuffle(messy)
    clean = features_from_history({"X": cs}, p)["X"]
    for data in (messy, candles_to_arrays(cs)):
        other = features_from_history({"X": data}, p)["X"]
        assert len(other) == 150
        assert other.equals(clean)


def test_frame_rows_convert_to_features(history):
    p = ProfileSettings(**SMALL)
    frame = features_from_history({"XLM/BTC": history["XLM/BTC"][:200]}, p)["XLM/BTC"]
    feats = frame_to_features(frame)
    assert len(feats) == 200
    assert feats[0] is None and features_at(frame, 0) is None
    assert feats[150] == features_at(frame, 150)
    assert feats[150].symbol == "XLM/BTC"


# ---------------------------------------------------------------------------------------
# engine contract
# ---------------------------------------------------------------------------------------
def test_engine_feeds_base_candles_only_and_ignores_old_ones(history):
    p = ProfileSettings(**SMALL)
    engine = FeatureEngine(p)
    cs = history["LTC/BTC"]
    with pytest.raises(ValueError, match="aggregated"):
        engine.on_candle("LTC/BTC", "1h", cs[0])
    assert engine.on_candle("LTC/BTC", "5m", cs[1])
    assert not engine.on_candle("LTC/BTC", "5m", cs[1])  # duplicate
    assert not engine.on_candle("LTC/BTC", "5m", cs[0])  # older
    bad = Candle(cs[2].ts_ms + 1, 1.0, 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="aligned"):
        engine.on_candle("LTC/BTC", "5m", bad)
    assert engine.features("LTC/BTC") is None
    assert engine.features("UNKNOWN") is None


def test_engine_refuses_a_layer_below_the_trigger_timeframe():
    p = ProfileSettings().model_copy(update={"ema_pullback_timeframe": "1m"})
    with pytest.raises(ValueError, match="multiple"):
        FeatureEngine(p)


def test_features_and_features_all_agree_and_cache(history):
    p = ProfileSettings(**SMALL)
    engine = FeatureEngine(p)
    for sym in ("ETH/BTC", "LTC/BTC"):
        engine.on_candles(sym, "5m", history[sym][:100])
    one = engine.features("ETH/BTC")
    both = engine.features_all()
    assert set(both) == {"ETH/BTC", "LTC/BTC"}
    assert both["ETH/BTC"] == one
    assert engine.features("ETH/BTC") is one  # cached until a new candle
    engine.on_candle("ETH/BTC", "5m", history["ETH/BTC"][100])
    assert engine.features("ETH/BTC").ts_ms == history["ETH/BTC"][100].ts_ms


def test_features_all_can_skip_symbols_whose_candle_is_missing(history):
    p = ProfileSettings(**SMALL)
    engine = FeatureEngine(p)
    engine.on_candles("ETH/BTC", "5m", history["ETH/BTC"][:100])
    engine.on_candles("LTC/BTC", "5m", history["LTC/BTC"][:99])  # one candle behind
    ts = history["ETH/BTC"][99].ts_ms
    assert set(engine.features_all()) == {"ETH/BTC", "LTC/BTC"}
    assert set(engine.features_all(ts_ms=ts)) == {"ETH/BTC"}


def test_relative_strength_follows_a_late_benchmark_candle(history):
    p = ProfileSettings(**SMALL)
    engine = FeatureEngine(p, benchmark_symbol="ETH/BTC")
    eth, ltc = history["ETH/BTC"][:80], history["LTC/BTC"][:80]
    for a, b in zip(eth[:-1], ltc[:-1]):
        engine.on_candle("ETH/BTC", "5m", a)
        engine.on_candle("LTC/BTC", "5m", b)
    engine.on_candle("LTC/BTC", "5m", ltc[-1])  # the symbol's candle first ...
    early = engine.features("LTC/BTC")
    assert math.isnan(early.rs60)  # benchmark not at this candle yet
    engine.on_candle("ETH/BTC", "5m", eth[-1])  # ... then the benchmark's
    late = engine.features("LTC/BTC")
    btc = engine.benchmark()
    assert btc.ts_ms == late.ts_ms
    assert late.rs60 == pytest.approx(late.ret60 - btc.ret60, abs=1e-18)
    assert late.rs30 == pytest.approx(late.ret30 - btc.ret30, abs=1e-18)


def test_neutral_benchmark_for_pairs_quoted_in_btc(history):
    engine = FeatureEngine(ProfileSettings(**SMALL))
    assert engine.benchmark() is None
    engine.on_candles("XMR/BTC", "5m", history["XMR/BTC"][:10])
    b = engine.benchmark()
    assert b.ts_ms == history["XMR/BTC"][9].ts_ms
    assert b.ret30 == 0.0 and b.rs60 == 0.0
    assert engine.benchmark(123).ts_ms == 123


# ---------------------------------------------------------------------------------------
# the batched value area is the market module's value area
# ---------------------------------------------------------------------------------------
def test_value_area_batch_matches_market_volume_profile(history):
    cs = history["NXT/BTC"][:400]
    h = np.array([c.high for c in cs])
    lo = np.array([c.low for c in cs])
    v = np.array([c.volume for c in cs])
    v[50:120] = 0.0  # an empty window gives NaN
    lo[200:260] = h[200:260]  # point candles use the bin holding their price
    for window, bins, va in ((60, 12, 0.7), (20, 5, 0.5), (7, 3, 1.0)):
        poc, val, vah = volume_profile(h, lo, v, window, bins, va)
        from numpy.lib.stride_tricks import sliding_window_view as swv
        bp, bl, bh = value_area_batch(swv(lo, window), swv(h, window), swv(v, window), bins, va)
        np.testing.assert_array_equal(bp, poc[window - 1:])
        np.testing.assert_array_equal(bl, val[window - 1:])
        np.testing.assert_array_equal(bh, vah[window - 1:])
    assert np.isnan(bp).any()
