"""Feeds: recorded-file replay and the ccxt poller against an offline fake exchange."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from engine.market.candles import Candle, CandleStore, last_closed_open_ts
from engine.market.feeds import (
    CandleFeed,
    CcxtFeed,
    FileFeed,
    merge_by_time,
    parse_recorded_filename,
    read_candles_csv,
)

DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"  # the 2018 BTC-quoted set (test data)
M5 = 300_000
T0 = 1_700_000_000_000 // M5 * M5  # an aligned moment


# --- file names and CSV --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ETH_BTC-5m.csv", ("ETH/BTC", "5m", "spot")),
        ("XRP_USDT_USDT-5m-futures.csv", ("XRP/USDT:USDT", "5m", "futures")),
        ("XRP_USDT_USDT-1h-mark.csv", ("XRP/USDT:USDT", "1h", "mark")),
        ("XRP_USDT_USDT-8h-funding_rate.csv", ("XRP/USDT:USDT", "8h", "funding_rate")),
        ("1000PEPE_USDT_USDT-15m-futures.csv", ("1000PEPE/USDT:USDT", "15m", "futures")),
    ],
)
def test_parse_recorded_filename(name: str, expected: tuple[str, str, str]) -> None:
    info = parse_recorded_filename(DATA / name)
    assert info is not None
    assert (info.symbol, info.timeframe, info.kind) == expected


@pytest.mark.parametrize("name", ["PROVENANCE.md", "ETH-5m.csv", "ETH_BTC.csv", "ETH_BTC-5x.csv"])
def test_parse_recorded_filename_rejects(name: str) -> None:
    assert parse_recorded_filename(name) is None


def test_read_candles_csv(tmp_path: Path) -> None:
    mark = read_candles_csv(DATA / "XRP_USDT_USDT-1h-mark.csv")
    assert len(mark) == 100 and all(c.volume == 0.0 for c in mark)  # empty volume column
    eth = read_candles_csv(DATA / "ETH_BTC-5m.csv")
    assert len(eth) == 5760
    assert eth[0] == Candle(1515560100000, 0.0984, 0.0994766, 0.09828605, 0.0994766, 1820.54447418)
    with pytest.raises(ValueError, match="funding_rate.csv:2"):  # not candles: high = low = 0
        read_candles_csv(DATA / "XRP_USDT_USDT-8h-funding_rate.csv")
    bad = tmp_path / "X_Y-5m.csv"
    bad.write_text("ts,o,h,l,c,v\n1,1,1,1,1,1\n")
    with pytest.raises(ValueError, match="header"):
        read_candles_csv(bad)


# --- FileFeed ------------------------------------------------------------------------------
def test_file_feed_loads_trade_candle_files_only() -> None:
    feed = FileFeed.from_directory(DATA, "5m")
    assert isinstance(feed, CandleFeed)
    assert set(feed.symbols) == {
        "ADA/BTC", "DASH/BTC", "ETC/BTC", "ETH/BTC", "LTC/BTC", "NXT/BTC", "TRX/BTC", "XLM/BTC",
        "XMR/BTC", "ZEC/BTC", "XRP/ETH", "XRP/USDT:USDT"}
    assert feed.timeframe == "5m"
    hourly = FileFeed.from_directory(DATA, "1h")
    assert hourly.symbols == ("XRP/USDT:USDT",)  # the mark-price file is not a trade series
    assert len(hourly.history("XRP/USDT:USDT")) == 100
    with pytest.raises(FileNotFoundError):
        FileFeed.from_directory(DATA, "5m", symbols=["BTC/USDT:USDT"])


async def test_file_feed_returns_only_closed_candles_in_order() -> None:
    feed = FileFeed.from_directory(DATA, "5m", symbols=["ETH/BTC", "ADA/BTC"])
    first = 1515560100000
    assert feed.start_ms == first + M5
    assert await feed.poll(first + M5 - 1) == {}  # the first candle is still forming
    batch = await feed.poll(first + M5)
    assert {s: [c.ts_ms for c in cs] for s, cs in batch.items()} == {
        "ETH/BTC": [first], "ADA/BTC": [first]}
    assert await feed.poll(first + M5) == {}  # never delivered twice
    batch = await feed.poll(first + 4 * M5 + 10)
    assert [c.ts_ms for c in batch["ETH/BTC"]] == [first + M5, first + 2 * M5, first + 3 * M5]
    merged = merge_by_time(batch)
    assert [(c.ts_ms, s) for s, c in merged] == sorted((c.ts_ms, s) for s, c in merged)
    assert [s for s, _ in merged[:2]] == ["ADA/BTC", "ETH/BTC"]
    feed.reset()
    assert [c.ts_ms for c in (await feed.poll(first + M5))["ETH/BTC"]] == [first]


BTC_PAIRS = {  # candle counts from PROVENANCE.md
    "ADA/BTC": 5720, "DASH/BTC": 5758, "ETC/BTC": 5759, "ETH/BTC": 5760, "LTC/BTC": 5760,
    "NXT/BTC": 5760, "TRX/BTC": 5754, "XLM/BTC": 5760, "XMR/BTC": 5758, "ZEC/BTC": 5757}


async def test_file_feed_full_replay_delivers_every_candle_once_after_close() -> None:
    feed = FileFeed.from_directory(DATA, "5m", symbols=BTC_PAIRS)
    expected = {s: feed.history(s) for s in feed.symbols}
    assert {s: len(v) for s, v in expected.items()} == BTC_PAIRS
    got: dict[str, list[Candle]] = {s: [] for s in feed.symbols}
    stores = {s: CandleStore(s, "5m", capacity=10) for s in feed.symbols}
    ticks = 0
    last_key = (0, "")
    async for now, batch in feed.replay():
        ticks += 1
        for symbol, candle in merge_by_time(batch):
            assert candle.ts_ms + M5 <= now
            assert (candle.ts_ms, symbol) > last_key  # time order across symbols
            last_key = (candle.ts_ms, symbol)
            got[symbol].append(candle)
        for symbol, candles in batch.items():
            report = stores[symbol].ingest(candles, now)
            assert report.forming == report.duplicates == report.out_of_order == 0
    assert got == expected
    assert feed.exhausted
    assert ticks == (feed.end_ms - feed.start_ms) // M5 + 1 == 5760


def test_file_feed_sorts_dedupes_and_checks_alignment() -> None:
    a, b = Candle(0, 1, 1, 1, 1, 1), Candle(M5, 2, 2, 2, 2, 1)
    feed = FileFeed({"A/B": [b, a, Candle(M5, 3, 3, 3, 3, 1)]}, "5m")
    assert feed.history("A/B") == [a, b]
    with pytest.raises(ValueError):
        FileFeed({"A/B": [Candle(7, 1, 1, 1, 1, 1)]}, "5m")


# --- CcxtFeed --------------------------------------------------------------------------------
class FakeExchange:
    """Offline stand-in with ccxt's fetch_ohlcv signature, serving recorded-shaped rows.

    ``mode='count'``: the first ``limit`` candles from ``since`` (most exchanges).
    ``mode='window'``: only candles in [since, since + (limit-1)*tf] (HTX from/to paging).
    The forming candle (opened before the exchange clock ``now``) is included, as on HTX.
    """

    def __init__(self, series: dict[str, list[list[Any]]], now: int, *, mode: str = "count",
                 cap: int = 1000, delay: float = 0.0):
        self.series = series
        self.now = now
        self.mode = mode
        self.cap = cap
        self.delay = delay
        self.calls: list[tuple[str, str, int | None, int | None]] = []
        self.fail: dict[str, BaseException] = {}
        self.in_flight = 0
        self.max_in_flight = 0

    async def fetch_ohlcv(self, symbol: str, timeframe: str = "1m", since: int | None = None,
                          limit: int | None = None, params: dict = {}) -> list[list]:  # noqa: B006
        self.calls.append((symbol, timeframe, since, limit))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if symbol in self.fail:
                raise self.fail[symbol]
            size = min(limit or self.cap, self.cap)
            rows = [r for r in self.series[symbol] if r[0] <= self.now and r[0] >= (since or 0)]
            if self.mode == "window":
                rows = [r for r in rows if r[0] <= (since or 0) + (size - 1) * M5]
            return [list(r) for r in rows[:size]]
        finally:
            self.in_flight -= 1


def rows(start: int, n: int, skip: set[int] = frozenset()) -> list[list[Any]]:  # type: ignore[assignment]
    return [[start + i * M5, 1.0 + i, 1.5 + i, 0.5 + i, 1.2 + i, float(i)]
            for i in range(n) if i not in skip]


def test_fetch_ohlcv_signature_matches_ccxt() -> None:
    params = list(inspect.signature(ccxt_async.htx.fetch_ohlcv).parameters)
    assert params[:6] == ["self", "symbol", "timeframe", "since", "limit", "params"]
    assert inspect.iscoroutinefunction(ccxt_async.htx.fetch_ohlcv)
    assert list(inspect.signature(FakeExchange.fetch_ohlcv).parameters) == params[:6]


async def test_ccxt_feed_bootstrap_pages_and_drops_forming() -> None:
    now = T0 + 5000 * M5 + 1234  # candle 5000 is forming
    ex = FakeExchange({"BTC/USDT:USDT": rows(T0, 5001)}, now)
    feed = CcxtFeed(ex, ["BTC/USDT:USDT"], "5m", warmup_candles=2500, page_limit=1000, close_delay_ms=0)
    assert isinstance(feed, CandleFeed)
    out = await feed.poll(now)
    got = out["BTC/USDT:USDT"]
    assert [c.ts_ms for c in got] == [T0 + i * M5 for i in range(2500, 5000)]
    assert got[-1].ts_ms == last_closed_open_ts(now, M5)
    assert [(c[2], c[3]) for c in ex.calls] == [
        (T0 + 2500 * M5, 1000), (T0 + 3500 * M5, 1000), (T0 + 4500 * M5, 501)]
    assert all(c[1] == "5m" for c in ex.calls)
    assert feed.requests == 3 and feed.last_ts("BTC/USDT:USDT") == T0 + 4999 * M5


async def test_ccxt_feed_steady_state_one_small_request_per_due_symbol() -> None:
    symbols = [f"C{i}/USDT:USDT" for i in range(5)]
    now = T0 + 100 * M5 + 5_000
    ex = FakeExchange({s: rows(T0, 200) for s in symbols}, now)
    feed = CcxtFeed(ex, symbols, "5m", warmup_candles=50, close_delay_ms=2000)
    first = await feed.poll(now)
    assert all(len(first[s]) == 50 for s in symbols) and len(ex.calls) == 5
    ex.calls.clear()
    assert await feed.poll(now + 60_000) == {}  # same candle still forming: nothing to ask
    assert ex.calls == []
    ex.now = now + M5
    out = await feed.poll(now + M5)
    assert {s: [c.ts_ms for c in cs] for s, cs in out.items()} == {s: [T0 + 100 * M5] for s in symbols}
    assert sorted(ex.calls) == sorted((s, "5m", T0 + 100 * M5, 2) for s in symbols)


async def test_ccxt_feed_waits_when_local_clock_runs_ahead_of_exchange() -> None:
    # our clock says candle 10 has closed, the exchange is 1.5 s behind: 10 is still forming there
    local_now = T0 + 11 * M5 + 500
    ex = FakeExchange({"A/USDT:USDT": rows(T0, 20)}, now=local_now - 1500)
    feed = CcxtFeed(ex, ["A/USDT:USDT"], "5m", warmup_candles=5, close_delay_ms=2000)
    out = await feed.poll(local_now)
    assert [c.ts_ms for c in out["A/USDT:USDT"]] == [T0 + i * M5 for i in range(6, 10)]
    # a moment later the exchange shows candle 11 forming: 10 is confirmed closed
    ex.now = local_now + 1000
    out = await feed.poll(local_now + 1000)
    assert [c.ts_ms for c in out["A/USDT:USDT"]] == [T0 + 10 * M5]
    # exchange without the forming candle: the last closed one waits close_delay_ms
    ex2 = FakeExchange({"A/USDT:USDT": rows(T0, 11)}, now=T0 + 30 * M5)
    feed2 = CcxtFeed(ex2, ["A/USDT:USDT"], "5m", warmup_candles=3, close_delay_ms=2000)
    assert [c.ts_ms for c in (await feed2.poll(T0 + 11 * M5 + 100))["A/USDT:USDT"]] == [
        T0 + 8 * M5, T0 + 9 * M5]
    assert [c.ts_ms for c in (await feed2.poll(T0 + 11 * M5 + 2000))["A/USDT:USDT"]] == [T0 + 10 * M5]


async def test_ccxt_feed_bounded_concurrency() -> None:
    symbols = [f"C{i}/USDT:USDT" for i in range(24)]
    now = T0 + 30 * M5 + 1
    ex = FakeExchange({s: rows(T0, 31) for s in symbols}, now, delay=0.002)
    feed = CcxtFeed(ex, symbols, "5m", warmup_candles=10, max_concurrency=3, close_delay_ms=0)
    out = await feed.poll(now)
    assert len(out) == 24 and len(ex.calls) == 24
    assert 1 < ex.max_in_flight <= 3


async def test_ccxt_feed_isolates_errors_and_resumes_without_holes() -> None:
    symbols = ["A/USDT:USDT", "B/USDT:USDT"]
    now = T0 + 20 * M5 + 1
    ex = FakeExchange({s: rows(T0, 40) for s in symbols}, now)
    feed = CcxtFeed(ex, symbols, "5m", warmup_candles=5, close_delay_ms=0)
    ex.fail["B/USDT:USDT"] = ccxt.NetworkError(
        "htx GET https://api.hbdm.com/linear-swap-ex/market/history/kline?AccessKeyId=abc 502")
    out = await feed.poll(now)
    assert list(out) == ["A/USDT:USDT"]
    err = feed.errors["B/USDT:USDT"]
    assert err.startswith("NetworkError") and "https://" not in err and "AccessKeyId" not in err
    del ex.fail["B/USDT:USDT"]
    ex.now = now + 2 * M5
    out = await feed.poll(now + 2 * M5)
    # B never got its warm-up: it warms up from the new target (21 - 4 = 17)
    assert [c.ts_ms for c in out["B/USDT:USDT"]] == [T0 + i * M5 for i in range(17, 22)]
    assert [c.ts_ms for c in out["A/USDT:USDT"]] == [T0 + 20 * M5, T0 + 21 * M5]
    assert feed.errors == {}
    ex.fail["A/USDT:USDT"] = RuntimeError("a bug must not be swallowed")
    ex.now = now + 3 * M5
    with pytest.raises(RuntimeError):
        await feed.poll(now + 3 * M5)
    # nothing was committed by the failed poll: B's candle 22 is delivered on the next one
    assert feed.last_ts("B/USDT:USDT") == T0 + 21 * M5
    del ex.fail["A/USDT:USDT"]
    out = await feed.poll(now + 3 * M5)
    assert {s: [c.ts_ms for c in cs] for s, cs in out.items()} == {
        "A/USDT:USDT": [T0 + 22 * M5], "B/USDT:USDT": [T0 + 22 * M5]}


async def test_ccxt_feed_drops_malformed_rows() -> None:
    now = T0 + 6 * M5 + 1
    data = rows(T0, 7)
    data[2] = [T0 + 2 * M5, 1.0, None, 1.0, 1.0, 1.0]  # missing high
    data[3] = [T0 + 3 * M5, 1.0, 0.5, 2.0, 1.0, 1.0]  # high < low
    data.insert(4, [T0 + 3 * M5 + 17, 1.0, 1.0, 1.0, 1.0, 1.0])  # not on the 5m grid
    ex = FakeExchange({"A/USDT:USDT": data}, now)
    feed = CcxtFeed(ex, ["A/USDT:USDT"], "5m", warmup_candles=6, close_delay_ms=0)
    out = await feed.poll(now)
    assert [c.ts_ms for c in out["A/USDT:USDT"]] == [T0, T0 + M5, T0 + 4 * M5, T0 + 5 * M5]
    assert feed.malformed == 3


async def test_ccxt_feed_pages_across_a_hole_in_window_mode() -> None:
    """HTX pages by from/to windows: a 1200-candle hole yields an empty window that must be
    stepped over, not mistaken for the end of the data."""
    n = 3000
    hole = set(range(500, 1700))
    now = T0 + n * M5 + 1
    ex = FakeExchange({"A/USDT:USDT": rows(T0, n + 1, hole)}, now, mode="window")
    feed = CcxtFeed(ex, ["A/USDT:USDT"], "5m", warmup_candles=n, close_delay_ms=0)
    got = (await feed.poll(now))["A/USDT:USDT"]
    assert [c.ts_ms for c in got] == [T0 + i * M5 for i in range(n) if i not in hole]
    assert len(ex.calls) <= 5
    store = CandleStore("A/USDT:USDT", "5m", capacity=n)
    report = store.ingest(got, now)
    assert [g.missing for g in report.gaps] == [1200]


async def test_ccxt_feed_replays_recorded_file_like_live() -> None:
    """Poll every 5 minutes over the recorded XRP futures candles: the delivered stream is
    exactly the file, each candle once, none before it closed."""
    candles = read_candles_csv(DATA / "XRP_USDT_USDT-5m-futures.csv")
    start = candles[0].ts_ms
    ex = FakeExchange({"XRP/USDT:USDT": [c.to_ohlcv() for c in candles]}, now=start + 300 * M5 + 1)
    feed = CcxtFeed(ex, ["XRP/USDT:USDT"], "5m", warmup_candles=300, close_delay_ms=0)
    got: list[Candle] = []
    now = start + 300 * M5 + 1
    while now <= candles[-1].ts_ms + 2 * M5:
        ex.now = now
        for c in (await feed.poll(now)).get("XRP/USDT:USDT", []):
            assert c.ts_ms + M5 <= now
            got.append(c)
        now += M5
    assert got == candles
    assert feed.requests == len(ex.calls) == 1 + (len(candles) - 300)


def test_ccxt_feed_rejects_bad_config() -> None:
    ex = FakeExchange({}, 0)
    with pytest.raises(ValueError):
        CcxtFeed(ex, ["A", "A"])
    with pytest.raises(ValueError):
        CcxtFeed(ex, ["A"], max_concurrency=0)
    with pytest.raises(ValueError):
        CcxtFeed(ex, ["A"], timeframe="1M")
