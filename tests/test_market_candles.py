"""Candle value, timeframe arithmetic, CandleStore (closed-only, gaps, ring) and aggregation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market.candles import (
    Aggregator,
    Candle,
    CandleStore,
    SymbolCandles,
    candles_to_arrays,
    is_closed,
    last_closed_open_ts,
    minutes_to_candles,
    timeframe_minutes,
    timeframe_ms,
)
from engine.market.feeds import read_candles_csv

DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"  # the 2018 BTC-quoted set (test data)
M5 = 300_000
H1 = 3_600_000


def mk(ts: int, close: float = 1.0, volume: float = 1.0) -> Candle:
    return Candle(ts, close, close * 1.01, close * 0.99, close, volume)


# --- timeframes -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tf", "ms"),
    [("1m", 60_000), ("5m", M5), ("15m", 900_000), ("30m", 1_800_000), ("1h", H1),
     ("4h", 4 * H1), ("1d", 86_400_000)],
)
def test_timeframe_ms(tf: str, ms: int) -> None:
    assert timeframe_ms(tf) == ms
    assert timeframe_minutes(tf) == ms // 60_000


@pytest.mark.parametrize("bad", ["", "m", "5", "0m", "-5m", "1M", "1w", "5x", "1.5h", " 5m", 5])
def test_timeframe_rejects_bad_values(bad: object) -> None:
    with pytest.raises(ValueError):
        timeframe_ms(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("minutes", "tf", "n"),
    [(2880, "1h", 48), (7200, "1h", 120), (120, "5m", 24), (360, "5m", 72), (30, "5m", 6),
     (60, "5m", 12), (100, "1h", 2), (89, "1h", 1), (90, "1h", 2), (20, "1h", 1), (5, "5m", 1)],
)
def test_minutes_to_candles(minutes: int, tf: str, n: int) -> None:
    assert minutes_to_candles(minutes, tf) == n


def test_minutes_to_candles_strict_and_invalid() -> None:
    assert minutes_to_candles(2880, "1h", strict=True) == 48
    with pytest.raises(ValueError):
        minutes_to_candles(100, "1h", strict=True)
    for bad in (0, -60):
        with pytest.raises(ValueError):
            minutes_to_candles(bad, "5m")
    with pytest.raises(TypeError):
        minutes_to_candles(60.0, "5m")  # type: ignore[arg-type]


def test_closed_rule() -> None:
    assert not is_closed(0, M5, M5 - 1)
    assert is_closed(0, M5, M5)
    assert last_closed_open_ts(M5 * 10, M5) == M5 * 9
    assert last_closed_open_ts(M5 * 10 + 1, M5) == M5 * 9
    assert last_closed_open_ts(M5 * 11 - 1, M5) == M5 * 9


# --- Candle -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "row",
    [
        (0, math.nan, 1, 1, 1, 1), (0, 1, math.inf, 1, 1, 1), (0, 1, 1, 1, 1, -1.0),
        (0, 0.0, 1, 0.0, 0.5, 1), (0, 1, 0.9, 0.8, 0.85, 1),  # open above high
        (0, 1, 1.2, 1.1, 1.15, 1),  # open below low
        (0, 1, 1.0, 1.1, 1.0, 1),  # low above high
        (-5, 1, 1, 1, 1, 1), (1.5, 1, 1, 1, 1, 1), (True, 1, 1, 1, 1, 1),
    ],
)
def test_candle_validation_rejects(row: tuple) -> None:
    with pytest.raises(ValueError):
        Candle(*row)


def test_candle_from_ohlcv() -> None:
    c = Candle.from_ohlcv([1_600_000_000_000, "1.0", 2, 0.5, 1.5, None])
    assert c == Candle(1_600_000_000_000, 1.0, 2.0, 0.5, 1.5, 0.0)
    assert c.to_ohlcv() == [1_600_000_000_000, 1.0, 2.0, 0.5, 1.5, 0.0]
    assert Candle.from_ohlcv([1.6e12, 1, 1, 1, 1, 3]).ts_ms == 1_600_000_000_000
    for bad in ([1, 1, 1, 1, 1], [1, None, 1, 1, 1, 1], [1.5, 1, 1, 1, 1, 1]):
        with pytest.raises(ValueError):
            Candle.from_ohlcv(bad)
    with pytest.raises(AttributeError):
        c.close = 2.0  # type: ignore[misc]  # frozen


def test_candles_to_arrays() -> None:
    cs = [mk(0, 1.0, 5.0), mk(M5, 2.0, 6.0)]
    a = candles_to_arrays(cs)
    assert a.ts.dtype == np.int64 and list(a.ts) == [0, M5]
    assert list(a.close) == [1.0, 2.0] and list(a.volume) == [5.0, 6.0]
    assert len(candles_to_arrays([]).close) == 0


# --- CandleStore --------------------------------------------------------------------------
def test_store_drops_forming_candle_then_accepts_it_once_closed() -> None:
    s = CandleStore("ETH/BTC", "5m", capacity=10)
    batch = [mk(i * M5, 1 + i) for i in range(4)]
    r = s.ingest(batch, now_ms=3 * M5 + M5 - 1)  # the 4th candle is still forming
    assert [c.ts_ms for c in r.accepted] == [0, M5, 2 * M5]
    assert r.forming == 1 and len(s) == 3 and s.last_ts == 2 * M5
    r = s.ingest(batch, now_ms=4 * M5)  # re-sent batch: 3 duplicates/old, last now closed
    assert [c.ts_ms for c in r.accepted] == [3 * M5]
    assert r.duplicates == 1 and r.out_of_order == 2  # 2*M5 equals the newest stored
    assert list(s.close()) == [1.0, 2.0, 3.0, 4.0]


def test_store_ignores_duplicates_out_of_order_and_misaligned() -> None:
    s = CandleStore("X", "5m", capacity=10)
    now = 100 * M5
    r = s.ingest([mk(2 * M5, 3), mk(0, 1), mk(M5, 2), mk(M5, 99)], now)  # unordered batch
    assert [c.close for c in r.accepted] == [1, 2, 3]
    assert r.duplicates == 1  # second M5 candle in the batch: first version wins
    r = s.ingest([mk(2 * M5, 42), mk(M5, 42), mk(3 * M5 + 7, 42)], now)
    assert r.accepted == [] and r.duplicates == 1 and r.out_of_order == 1 and r.misaligned == 1
    assert list(s.close()) == [1, 2, 3]
    assert s.stats == {"accepted": 3, "forming": 0, "duplicates": 2, "out_of_order": 1,
                       "misaligned": 1, "missing": 0}


def test_store_records_gaps_on_real_file() -> None:
    candles = read_candles_csv(DATA / "ADA_BTC-5m.csv")
    s = CandleStore("ADA/BTC", "5m", capacity=100_000)
    r = s.ingest(candles, now_ms=candles[-1].ts_ms + M5)
    assert len(r.accepted) == len(candles) == 5720
    # PROVENANCE.md: 5 gaps; the missing counts come from the timestamps
    assert [g.missing for g in r.gaps] == [1, 1, 4, 1, 33]
    assert s.gaps == tuple(r.gaps)
    assert s.stats["missing"] == 40
    ts = np.array([c.ts_ms for c in candles])
    assert len(candles) + 40 == (ts[-1] - ts[0]) // M5 + 1
    g = r.gaps[-1]
    assert (g.symbol, g.timeframe, g.prev_ts_ms, g.next_ts_ms) == (
        "ADA/BTC", "5m", 1516017300000, 1516017300000 + 34 * M5)
    # candles after the last gap are contiguous
    after = int(np.searchsorted(ts, g.next_ts_ms))
    assert s.contiguous == len(candles) - after


def test_store_ring_buffer_views() -> None:
    s = CandleStore("X", "5m", capacity=7)
    assert len(s) == 0 and s.latest is None and s.close().shape == (0,)
    for i in range(20):
        s.ingest([mk(i * M5, 1 + i, volume=10 + i)], now_ms=10**9)
        n = min(i + 1, 7)
        assert len(s) == n
        assert list(s.close()) == [float(1 + j) for j in range(i + 1 - n, i + 1)]
        assert list(s.ts()) == [j * M5 for j in range(i + 1 - n, i + 1)]
    assert list(s.close(3)) == [18.0, 19.0, 20.0]
    assert list(s.volume(100)) == [float(v) for v in range(23, 30)]
    assert s.close(0).shape == (0,)
    a = s.arrays(2)
    assert list(a.high) == [19 * 1.01, 20 * 1.01] and list(a.low) == [19 * 0.99, 20 * 0.99]
    assert list(a.open) == [19.0, 20.0]
    assert s.latest == mk(19 * M5, 20, 29)
    assert s.candles(2) == [mk(18 * M5, 19, 28), mk(19 * M5, 20, 29)]
    view = s.close()
    with pytest.raises(ValueError):
        view[0] = 0.0  # views are read-only
    assert view.flags.c_contiguous


def test_store_capacity_validation() -> None:
    with pytest.raises(ValueError):
        CandleStore("X", "5m", capacity=0)


@settings(max_examples=150, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.integers(min_value=0, max_value=60), min_size=0, max_size=8),
        min_size=1, max_size=12,
    ),
    capacity=st.integers(min_value=1, max_value=9),
    lag=st.integers(min_value=0, max_value=3),
)
def test_store_matches_simple_model(batches: list[list[int]], capacity: int, lag: int) -> None:
    """Random batches (unordered, duplicated, forming, gapped) against a plain model."""
    s = CandleStore("X", "5m", capacity=capacity)
    model: list[int] = []
    missing = 0
    now_slot = 0
    for batch in batches:
        now_slot += 5
        now = now_slot * M5 - lag  # lag > 0 leaves the newest slot forming
        for slot in sorted(batch):
            if (slot + 1) * M5 > now or (model and slot <= model[-1]):
                continue
            if model:
                missing += slot - model[-1] - 1
            model.append(slot)
        s.ingest([mk(k * M5, 1 + k) for k in batch], now)
        kept = model[-capacity:]
        assert list(s.ts()) == [k * M5 for k in kept]
        assert list(s.close()) == [float(1 + k) for k in kept]
    assert s.stats["missing"] == missing
    assert sum(g.missing for g in s.gaps) == missing


# --- Aggregation ------------------------------------------------------------------------
def test_aggregate_real_5m_to_1h_matches_groupby() -> None:
    candles = read_candles_csv(DATA / "XRP_USDT_USDT-5m-futures.csv")
    agg = Aggregator("5m", "1h")
    built = [h for c in candles for h in agg.update(c)]
    df = pd.DataFrame([c.to_ohlcv() for c in candles], columns=["ts", "o", "h", "l", "c", "v"])
    df["bucket"] = df.ts // H1 * H1
    g = df.groupby("bucket").agg(o=("o", "first"), h=("h", "max"), l=("l", "min"),
                                 c=("c", "last"), v=("v", "sum"), n=("o", "size"))
    full = g[g.n == 12]
    assert len(g) - len(full) == 1  # the file ends mid-hour (22:30): that hour is not emitted
    assert [c.ts_ms for c in built] == list(full.index)
    np.testing.assert_array_equal([c.open for c in built], full.o)
    np.testing.assert_array_equal([c.high for c in built], full.h)
    np.testing.assert_array_equal([c.low for c in built], full.l)
    np.testing.assert_array_equal([c.close for c in built], full.c)
    np.testing.assert_allclose([c.volume for c in built], full.v, rtol=1e-12)
    assert agg.emitted == len(full) and agg.dropped == 0


def test_aggregate_emits_only_when_bucket_is_complete() -> None:
    agg = Aggregator("5m", "1h")
    base = 10 * H1
    for i in range(11):
        assert agg.update(mk(base + i * M5, 1 + i, volume=1)) == []
    out = agg.update(mk(base + 11 * M5, 12, volume=1))
    assert len(out) == 1
    h = out[0]
    assert (h.ts_ms, h.open, h.close, h.volume) == (base, 1.0, 12.0, 12.0)
    assert h.high == pytest.approx(12 * 1.01) and h.low == pytest.approx(0.99)
    assert agg.update(mk(base + 11 * M5)) == []  # repeated / old input ignored


def test_aggregate_drops_incomplete_bucket_by_default() -> None:
    agg = Aggregator("5m", "1h")
    out = []
    for i in list(range(5)) + list(range(6, 12)) + list(range(12, 24)):  # slot 5 missing
        out += agg.update(mk(i * M5, 1 + i))
    assert [c.ts_ms for c in out] == [H1]
    assert agg.dropped == 1 and agg.partial == 0


def test_aggregate_max_missing_emits_partial_buckets() -> None:
    agg = Aggregator("5m", "1h", max_missing=1)
    # bucket 0: slot 11 (the last) missing -> emitted when bucket 1 starts
    out = [h for i in range(11) for h in agg.update(mk(i * M5, 1 + i))]
    assert out == []
    out = agg.update(mk(12 * M5, 13))
    assert len(out) == 1 and out[0].ts_ms == 0 and out[0].close == 11.0 and out[0].volume == 11.0
    # bucket 1: two slots missing -> dropped
    out = [h for i in range(15, 24) for h in agg.update(mk(i * M5, 1 + i))]
    assert out == [] and agg.dropped == 1
    assert agg.partial == 1 and agg.emitted == 1


def test_aggregator_validation() -> None:
    with pytest.raises(ValueError):
        Aggregator("5m", "5m")
    with pytest.raises(ValueError):
        Aggregator("15m", "1h", max_missing=4)
    with pytest.raises(ValueError):
        Aggregator("1h", "5m")
    with pytest.raises(ValueError):
        Aggregator("5m", "1h").update(mk(7))


def test_symbol_candles_derives_1h_without_forming_hours() -> None:
    candles = read_candles_csv(DATA / "ADA_BTC-5m.csv")
    sc = SymbolCandles("ADA/BTC", "5m", ("1h",), capacity={"5m": 1000, "1h": 500})
    delivered_1h = []
    # replay in chunks of 7 candles with the clock at the last candle's close
    for k in range(0, len(candles), 7):
        chunk = candles[k : k + 7]
        now = chunk[-1].ts_ms + M5
        out = sc.ingest(chunk, now)
        assert [c.ts_ms for c in out["5m"]] == [c.ts_ms for c in chunk]
        for h in out["1h"]:
            assert h.ts_ms + H1 <= now
        delivered_1h += out["1h"]
    hours = {c.ts_ms // H1 for c in candles}
    complete = {h for h in hours if sum(1 for c in candles if c.ts_ms // H1 == h) == 12}
    assert {c.ts_ms // H1 for c in delivered_1h} == complete
    assert len(sc.store("5m")) == 1000 and len(sc.store("1h")) == len(complete)
    # 1h gaps where incomplete hours were dropped are recorded by the 1h store
    span = max(complete) - min(complete) + 1
    assert len(complete) < span - 1  # the ADA gaps do knock out whole hours
    assert sum(g.missing for g in sc.store("1h").gaps) == span - len(complete)
    assert sc.store("1h").capacity == 500
