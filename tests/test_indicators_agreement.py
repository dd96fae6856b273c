"""Vectorised vs incremental forms agree on every recorded candle file, and both agree with
plain-Python reference implementations written independently here."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market import indicators as ind
from engine.market.candles import Aggregator, Candle, OhlcvArrays, candles_to_arrays
from engine.market.feeds import read_candles_csv

DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"  # the 2018 BTC-quoted set (test data)
FILES = sorted(p.name for p in DATA.glob("*-5m*.csv")) + ["XRP_USDT_USDT-1h-futures.csv"]
M5 = 300_000
RTOL = 1e-9

Vec = Callable[[OhlcvArrays], np.ndarray]
Inc = Callable[[], object]

# name -> (vectorised over arrays, incremental factory); default settings of the strategy
CASES: dict[str, tuple[Vec, Inc]] = {
    "ema24": (lambda a: ind.ema(a.close, 24), lambda: ind.Ema(24)),
    "ema72": (lambda a: ind.ema(a.close, 72), lambda: ind.Ema(72)),
    "ema48": (lambda a: ind.ema(a.close, 48), lambda: ind.Ema(48)),
    "ema120": (lambda a: ind.ema(a.close, 120), lambda: ind.Ema(120)),
    "rsi14": (lambda a: ind.rsi(a.close, 14), lambda: ind.Rsi(14)),
    "atr14": (lambda a: ind.atr(a.high, a.low, a.close, 14), lambda: ind.Atr(14)),
    "atr_rate14": (lambda a: ind.atr_rate(a.high, a.low, a.close, 14), lambda: ind.AtrRate(14)),
    "chop14": (lambda a: ind.choppiness(a.high, a.low, a.close, 14), lambda: ind.Choppiness(14)),
    "vol_ratio5_20": (lambda a: ind.volume_ratio(a.volume, 5, 20), lambda: ind.VolumeRatio(5, 20)),
    "vol_spike5": (lambda a: ind.volume_spike(a.volume, 5), lambda: ind.VolumeSpike(5)),
    "ret6": (lambda a: ind.candle_return(a.close, 6, a.ts, M5), lambda: ind.Return(6, M5)),
    "rs12": (lambda a: ind.relative_strength(a.close, 12, a.ts, timeframe_ms=M5),
             lambda: ind.RelativeStrength(12, M5)),
}


def load(name: str) -> tuple[list[Candle], OhlcvArrays]:
    candles = read_candles_csv(DATA / name)
    return candles, candles_to_arrays(candles)


def assert_agree(inc: np.ndarray, vec: np.ndarray, what: str) -> None:
    assert inc.shape == vec.shape, what
    np.testing.assert_array_equal(np.isnan(inc), np.isnan(vec), err_msg=f"{what}: warm-up/NaN differ")
    np.testing.assert_allclose(inc, vec, rtol=RTOL, atol=1e-12, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("name", FILES)
def test_forms_agree_on_recorded_file(name: str) -> None:
    candles, a = load(name)
    tf_ms = int(np.min(np.diff(a.ts)))
    for key, (vec_fn, make) in CASES.items():
        if key in ("ret6", "rs12") and tf_ms != M5:
            continue
        inc = make()
        got = np.array([inc.update(c) for c in candles])  # type: ignore[attr-defined]
        vec = vec_fn(a)
        assert_agree(got, vec, f"{name} {key}")
        if len(vec) > 200:
            assert np.isfinite(vec[-50:]).any(), f"{name} {key} never warmed up"


@pytest.mark.parametrize("name", FILES)
def test_volume_profile_forms_agree_on_recorded_file(name: str) -> None:
    candles, a = load(name)
    vec = ind.volume_profile(a.high, a.low, a.volume, 60, 12, 0.7)
    inc = ind.VolumeProfile(60, 12, 0.7)
    got = np.array([inc.update(c) for c in candles])
    for j, field in enumerate(("poc", "val", "vah")):
        assert_agree(got[:, j], vec[j], f"{name} {field}")
    ok = ~np.isnan(vec[0])
    assert ok[59:].all()
    assert (vec[1][ok] <= vec[0][ok]).all() and (vec[0][ok] <= vec[2][ok]).all()


def test_forms_agree_on_aggregated_1h_macro_emas() -> None:
    candles = read_candles_csv(DATA / "ETH_BTC-5m.csv")
    agg = Aggregator("5m", "1h")
    hours = [h for c in candles for h in agg.update(c)]
    assert len(hours) == 479  # 20 days, the first hour starts at 04:55 and is incomplete
    a = candles_to_arrays(hours)
    for period in (48, 120):
        e = ind.Ema(period)
        assert_agree(np.array([e.update(h) for h in hours]), ind.ema(a.close, period), f"ema{period}")


# --- independent references ----------------------------------------------------------------
def ref_ema(x: list[float], n: int) -> list[float]:
    out = [math.nan] * len(x)
    if len(x) < n:
        return out
    y = sum(x[:n]) / n
    out[n - 1] = y
    for i in range(n, len(x)):
        y += 2.0 / (n + 1) * (x[i] - y)
        out[i] = y
    return out


def ref_wilder(x: list[float], n: int) -> list[float]:
    """Wilder average of x[1:], first value at index n."""
    out = [math.nan] * len(x)
    if len(x) <= n:
        return out
    y = sum(x[1 : n + 1]) / n
    out[n] = y
    for i in range(n + 1, len(x)):
        y = (y * (n - 1) + x[i]) / n
        out[i] = y
    return out


def ref_tr(h: list[float], lo: list[float], c: list[float]) -> list[float]:
    return [h[0] - lo[0]] + [max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1]))
                             for i in range(1, len(c))]


@pytest.mark.parametrize("name", ["ETH_BTC-5m.csv", "ADA_BTC-5m.csv", "XRP_USDT_USDT-5m-futures.csv"])
def test_against_plain_python_references(name: str) -> None:
    _, a = load(name)
    c, h, lo, v = (x.tolist() for x in (a.close, a.high, a.low, a.volume))
    n = len(c)
    np.testing.assert_allclose(ind.ema(a.close, 24), ref_ema(c, 24), rtol=RTOL)

    diffs = [0.0] + [c[i] - c[i - 1] for i in range(1, n)]
    ag = ref_wilder([max(d, 0.0) for d in diffs], 14)
    al = ref_wilder([max(-d, 0.0) for d in diffs], 14)
    rsi_ref = [g / (g + lz) * 100 if (g + lz) else 50.0 for g, lz in zip(ag, al)]
    np.testing.assert_allclose(ind.rsi(a.close, 14), rsi_ref, rtol=RTOL)

    tr = ref_tr(h, lo, c)
    np.testing.assert_allclose(ind.atr(a.high, a.low, a.close, 14), ref_wilder(tr, 14), rtol=RTOL)

    chop = [math.nan] * n
    for i in range(14, n):
        w = range(i - 13, i + 1)
        rng = max(h[j] for j in w) - min(lo[j] for j in w)
        chop[i] = 100 * math.log10(sum(tr[j] for j in w) / rng) / math.log10(14) if rng else 100.0
    np.testing.assert_allclose(ind.choppiness(a.high, a.low, a.close, 14), chop, rtol=RTOL, atol=1e-9)

    vr = [math.nan] * 19 + [(sum(v[i - 4 : i + 1]) / 5) / (sum(v[i - 19 : i + 1]) / 20)
                            for i in range(19, n)]
    np.testing.assert_allclose(ind.volume_ratio(a.volume, 5, 20), vr, rtol=RTOL)

    vs = [math.nan] * 5 + [v[i] / (sum(v[i - 5 : i]) / 5) for i in range(5, n)]
    np.testing.assert_allclose(ind.volume_spike(a.volume, 5), vs, rtol=RTOL)


def ref_profile(lo: list[float], hi: list[float], vol: list[float], bins: int, area: float):
    """Straightforward loops: histogram by overlap, then grow the area from the POC."""
    bottom, top = min(lo), max(hi)
    width = (top - bottom) / bins
    edges = [bottom + width * k for k in range(bins)] + [top]
    hist = [0.0] * bins
    for low, high, v in zip(lo, hi, vol):
        if high > low:
            for k in range(bins):
                hist[k] += max(0.0, min(high, edges[k + 1]) - max(low, edges[k])) / (high - low) * v
        else:
            k = min(int((low - bottom) / width), bins - 1) if width > 0 else 0
            hist[k] += v
    total = sum(hist)
    poc = max(range(bins), key=lambda k: (hist[k], -k))
    a = b = poc
    acc = hist[poc]
    while acc < area * total and (a > 0 or b < bins - 1):
        up = hist[b + 1] if b < bins - 1 else -1.0
        dn = hist[a - 1] if a > 0 else -1.0
        if up >= dn:
            b += 1
            acc += up
        if dn >= up:
            a -= 1
            acc += dn
    return (edges[poc] + edges[poc + 1]) / 2, edges[a], edges[b + 1]


def test_volume_profile_against_reference() -> None:
    _, a = load("ETH_BTC-5m.csv")
    vec = ind.volume_profile(a.high, a.low, a.volume, 60, 12, 0.7)
    lo, hi, vol = a.low.tolist(), a.high.tolist(), a.volume.tolist()
    for i in range(59, len(lo), 37):
        want = ref_profile(lo[i - 59 : i + 1], hi[i - 59 : i + 1], vol[i - 59 : i + 1], 12, 0.7)
        got = (vec[0][i], vec[1][i], vec[2][i])
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=str(i))


# --- random data ---------------------------------------------------------------------------
@st.composite
def ohlcv(draw: st.DrawFn) -> list[Candle]:
    n = draw(st.integers(min_value=1, max_value=90))
    price = draw(st.floats(min_value=1e-6, max_value=1e5))
    steps = draw(st.lists(st.floats(min_value=-0.05, max_value=0.05), min_size=n, max_size=n))
    wicks = draw(st.lists(st.tuples(st.floats(0, 0.02), st.floats(0, 0.02)), min_size=n, max_size=n))
    vols = draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e9)), min_size=n, max_size=n))
    flat = draw(st.booleans())  # flat runs exercise zero ranges and ties
    out = []
    for i in range(n):
        o = price
        price = price if flat and i % 3 else price * (1 + steps[i])
        c = price
        h = max(o, c) * (1 + wicks[i][0])
        lo = min(o, c) * (1 - wicks[i][1])
        out.append(Candle(i * M5, o, h, lo, c, vols[i]))
    return out


@settings(max_examples=120, deadline=None)
@given(candles=ohlcv(), period=st.integers(min_value=2, max_value=20))
def test_forms_agree_on_random_candles(candles: list[Candle], period: int) -> None:
    a = candles_to_arrays(candles)
    pairs = {
        "ema": (ind.ema(a.close, period), ind.Ema(period)),
        "rsi": (ind.rsi(a.close, period), ind.Rsi(period)),
        "atr": (ind.atr(a.high, a.low, a.close, period), ind.Atr(period)),
        "chop": (ind.choppiness(a.high, a.low, a.close, period), ind.Choppiness(period)),
        "vr": (ind.volume_ratio(a.volume, max(1, period // 3), period),
               ind.VolumeRatio(max(1, period // 3), period)),
        "spike": (ind.volume_spike(a.volume, period), ind.VolumeSpike(period)),
        "ret": (ind.candle_return(a.close, period, a.ts, M5), ind.Return(period, M5)),
    }
    for key, (vec, inc) in pairs.items():
        got = np.array([inc.update(c) for c in candles])  # type: ignore[attr-defined]
        assert_agree(got, vec, key)
    r = pairs["rsi"][0]
    assert ((r[~np.isnan(r)] >= 0) & (r[~np.isnan(r)] <= 100)).all()
    ch = pairs["chop"][0]
    assert (ch[~np.isnan(ch)] >= -1e-9).all()


@settings(max_examples=120, deadline=None)
@given(candles=ohlcv(), window=st.integers(min_value=1, max_value=40),
       bins=st.integers(min_value=1, max_value=16), area=st.floats(min_value=0.05, max_value=1.0))
def test_volume_profile_random(candles: list[Candle], window: int, bins: int, area: float) -> None:
    a = candles_to_arrays(candles)
    vec = ind.volume_profile(a.high, a.low, a.volume, window, bins, area, chunk=7)
    inc = ind.VolumeProfile(window, bins, area)
    got = np.array([inc.update(c) for c in candles])
    for j in range(3):
        assert_agree(got[:, j], vec[j], f"vp{j}")
    for i in range(window - 1, len(candles)):
        poc, val, vah = vec[0][i], vec[1][i], vec[2][i]
        if np.isnan(poc):
            assert a.volume[i - window + 1 : i + 1].sum() == 0
            continue
        lo = a.low[i - window + 1 : i + 1].min()
        hi = a.high[i - window + 1 : i + 1].max()
        assert lo <= val <= poc <= vah <= hi


def test_running_sums_do_not_drift_after_spikes() -> None:
    """Huge spikes followed by tiny volumes: the live running sums must stay exact enough."""
    rng = np.random.default_rng(7)
    vol = rng.uniform(0.5, 2.0, 20_000)
    vol[rng.integers(0, 20_000, 60)] = 1e12
    candles = [Candle(i * M5, 1.0, 1.0, 1.0, 1.0, float(v)) for i, v in enumerate(vol)]
    vr, vs = ind.VolumeRatio(5, 20), ind.VolumeSpike(5)
    got_vr = np.array([vr.update(c) for c in candles])
    got_vs = np.array([vs.update(c) for c in candles])
    assert_agree(got_vr, ind.volume_ratio(vol, 5, 20), "volume_ratio")
    assert_agree(got_vs, ind.volume_spike(vol, 5), "volume_spike")
