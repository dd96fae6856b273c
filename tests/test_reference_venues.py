"""The reference venues of the settings: EXTERNAL_PRICE_REFERENCE_EXCHANGES (any ccxt id, in
fallback order), EXTERNAL_PRICE_REST_TIMEOUT_SEC (ccxt timeout of each request) and
EXTERNAL_PRICE_REST_POLL_INTERVAL_SEC (at most one best-prices request per interval).
Offline: ccxt's MEXC client on a loopback server, fake ccxt clients and fake feeds."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import ccxt
import pytest

from engine.exchange import errors as E
from engine.exchange.base import ReferenceFeed
from engine.exchange.ccxt_reference import CcxtReference, ReferenceConfig
from engine.exchange.mexc import MexcConfig, MexcReference
from engine.exchange.retry import RetryPolicy
from engine.exchange.testing import LoopbackServer, Reply, deny_network
from engine.exchange.types import BookTop
from engine.reference import ReferenceTracker
from engine.reference.venues import FallbackReference, PolledReference, reference_from_settings, venue_reference
from engine.settings import ProfileSettings, load_settings

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
NOW_MS = 1_781_000_000_123
T0 = 1_781_000_000_347  # an unaligned clock value


async def _no_sleep(_: float) -> None:
    return None


NO_WAIT = RetryPolicy(max_attempts=2, base_delay=0, seed=1, sleep=_no_sleep)


def glob_of(tmp_path: Path, text: str = ""):
    env = tmp_path / "test.env"
    env.write_text(text)
    return load_settings(env, missing_ok=False).glob


def top(venue: str, symbol: str, bid: str, ask: str, received_ms: int = NOW_MS) -> BookTop:
    return BookTop(venue, symbol, Decimal(bid), Decimal(ask), Decimal(10), Decimal(10), None, received_ms)


class Feed:
    """A fake `ReferenceFeed` that records what it was asked for."""

    def __init__(self, name: str, tops: dict[str, BookTop] | None = None, fail: Exception | None = None):
        self.name, self.tops, self.fail = name, tops or {}, fail
        self.asked: list[tuple[str, tuple[str, ...]]] = []
        self.closed = False

    async def load_markets(self, reload=False):
        if self.fail:
            raise self.fail
        return {}

    async def _answer(self, what, symbols):
        self.asked.append((what, tuple(symbols)))
        if self.fail:
            raise self.fail
        return {s: t for s, t in self.tops.items() if s in symbols}

    async def fetch_best_prices(self, symbols):
        return await self._answer("prices", symbols)

    async def fetch_book_tops(self, symbols, depth=5):
        return await self._answer(f"books:{depth}", symbols)

    async def close(self):
        self.closed = True


# -- EXTERNAL_PRICE_REFERENCE_EXCHANGES ---------------------------------------------------------------


def test_disabled_reference_is_none_and_bad_ids_are_one_line_errors(tmp_path):
    assert reference_from_settings(glob_of(tmp_path, "EXTERNAL_PRICE_ENABLED=false\n")) is None
    for ids, words in (("mexc,nosuchvenue", ("'nosuchvenue'", "not a ccxt exchange id", "expected")),
                       ("kraken", ("'kraken'", "no perpetual swaps", "expected")),
                       ("htx", ("'htx'", "primary exchange", "expected"))):
        with pytest.raises(ValueError) as caught:
            reference_from_settings(glob_of(tmp_path, f"EXTERNAL_PRICE_REFERENCE_EXCHANGES={ids}\n"))
        message = str(caught.value)
        assert "\n" not in message and message.startswith("EXTERNAL_PRICE_REFERENCE_EXCHANGES")
        assert all(w in message for w in words), message


async def test_the_listed_venues_are_built_in_order(tmp_path):
    built = []

    def make(exchange_id, timeout_ms):
        built.append((exchange_id, timeout_ms))
        return Feed(exchange_id)

    g = glob_of(tmp_path, "EXTERNAL_PRICE_REFERENCE_EXCHANGES=Binance,mexc,binance\nEXTERNAL_PRICE_REST_TIMEOUT_SEC=1.25\n")
    feed = reference_from_settings(g, make=make)
    assert isinstance(feed, ReferenceFeed) and feed.name == "binance>mexc"
    assert built == [("binance", 1250), ("mexc", 1250)]  # lower-cased, duplicates dropped
    assert reference_from_settings(glob_of(tmp_path), make=make).name == "mexc"  # the default


async def test_default_venues_are_real_ccxt_clients(tmp_path):
    feed = reference_from_settings(glob_of(tmp_path, "EXTERNAL_PRICE_REFERENCE_EXCHANGES=mexc,bybit\n"
                                                     "EXTERNAL_PRICE_REST_TIMEOUT_SEC=2\n"))
    try:
        assert feed.name == "mexc>bybit"
        mexc, bybit = feed.feed.feeds
        assert isinstance(mexc, MexcReference) and type(bybit) is CcxtReference
        assert mexc.config.timeout_ms == bybit.config.timeout_ms == 2000
    finally:
        await feed.close()
    assert isinstance(venue_reference("okx", 700), CcxtReference)


async def test_a_failed_venue_falls_through_per_symbol():
    dead = Feed("mexc", fail=E.NetworkError("connection reset", venue="mexc"))
    partial = Feed("binance", {BTC: top("binance", BTC, "100", "100.02"),
                               ETH: BookTop("binance", ETH, None, None, None, None, None, NOW_MS)})
    last = Feed("bybit", {ETH: top("bybit", ETH, "10", "10.01"), BTC: top("bybit", BTC, "1", "2")})
    feed = FallbackReference([dead, partial, last])
    tops = await feed.fetch_book_tops([BTC, ETH], depth=1)
    assert {s: t.venue for s, t in tops.items()} == {BTC: "binance", ETH: "bybit"}  # ETH's binance book was empty
    assert dead.asked == [("books:1", (BTC, ETH))] and last.asked == [("books:1", (ETH,))]  # only what was missing
    await feed.close()
    assert dead.closed and partial.closed and last.closed


async def test_an_empty_book_is_kept_when_no_venue_has_a_better_one_and_all_dead_raises():
    empty = BookTop("mexc", BTC, None, None, None, None, None, NOW_MS)
    feed = FallbackReference([Feed("mexc", {BTC: empty}), Feed("binance", fail=E.ExchangeTimeout("t"))])
    assert await feed.fetch_best_prices([BTC]) == {BTC: empty}
    feed = FallbackReference([Feed("mexc", fail=E.RateLimited("slow down")), Feed("binance", fail=KeyError("x"))])
    with pytest.raises(E.ExchangeError) as caught:
        await feed.fetch_best_prices([BTC])
    assert "mexc (RateLimited: slow down)" in str(caught.value) and "binance (KeyError)" in str(caught.value)


def test_tops_of_another_venue_are_the_reference():
    """The tracker takes whatever venue the reference feed answered from (here binance)."""
    p = ProfileSettings(external_price_entry_filter_enabled=True)
    tr = ReferenceTracker()
    tr.update({BTC: top("htx", BTC, "100.00", "100.02")}, {BTC: top("binance", BTC, "100.00", "100.02")}, NOW_MS)
    r = tr.check("long", BTC, NOW_MS, p)
    assert r.status == "ok" and r.premium_bps == pytest.approx(0.0) and not r.blocked
    tr.update({BTC: top("htx", BTC, "101.00", "101.02", NOW_MS + 1)},
              {BTC: top("binance", BTC, "100.00", "100.02", NOW_MS + 1)}, NOW_MS + 1)
    assert tr.check("long", BTC, NOW_MS + 1, p).blocked  # ~100 bps HTX premium vs binance


# -- the generic ccxt venue ---------------------------------------------------------------------------


class FakeCcxt:
    """The unified ccxt calls a `CcxtReference` makes, with results in ccxt's unified shapes
    (ccxt Manual: https://docs.ccxt.com/#/README?id=market-structure, ?id=ticker-structure,
    ?id=order-book-structure)."""

    precisionMode = ccxt.TICK_SIZE

    def __init__(self, markets, has_bids_asks=True, fail: Exception | None = None):
        self.markets_raw, self.fail, self.calls = markets, fail, []
        self.has = {"fetchBidsAsks": has_bids_asks, "fetchTickers": True}
        self.set = []

    async def _call(self, name, result):
        self.calls.append(name)
        if self.fail:
            raise self.fail
        return result

    async def fetch_markets(self):
        return await self._call("markets", self.markets_raw)

    def set_markets(self, markets):
        self.set = [m["symbol"] for m in markets]

    async def fetch_bids_asks(self, symbols):
        return await self._call("bids_asks", {BTC: {"symbol": BTC, "bid": 63180.4, "ask": 63180.5, "timestamp": 1}})

    async def fetch_tickers(self, symbols):
        return await self._call("tickers", {BTC: {"symbol": BTC, "bid": 63000.0, "ask": 63000.1, "timestamp": 2}})

    async def fetch_order_book(self, symbol, limit):
        return await self._call(f"book {symbol} {limit}", {"bids": [[63180.4, 3]], "asks": [[63180.5, 5]], "timestamp": 3})

    async def close(self):
        self.calls.append("close")


def market(symbol, *, swap=True, linear=True, settle="USDT", size=0.001):
    return {"id": symbol.replace("/", "").split(":")[0], "symbol": symbol, "base": symbol.split("/")[0], "quote": "USDT",
            "settle": settle, "swap": swap, "linear": linear, "contractSize": size,
            "precision": {"amount": 1, "price": 0.1}, "limits": {"amount": {"min": 1}, "leverage": {"max": 100}}}


MARKETS = [market(BTC), market("BTC/USDT", swap=False, linear=None, settle=None, size=None),
           market("BTC/USD:BTC", linear=False, settle="BTC"), market("ETH/USDT:USDT-261225", swap=False)]


async def test_generic_venue_reads_usdt_linear_perpetuals_only():
    client = FakeCcxt(MARKETS)
    ref = CcxtReference("binance", ReferenceConfig(clock_ms=lambda: NOW_MS), client=client)
    assert isinstance(ref, ReferenceFeed) and ref.name == "binance"
    assert set(await ref.load_markets()) == {BTC} and client.set == [BTC]
    prices = await ref.fetch_best_prices([BTC, ETH])
    assert set(prices) == {BTC} and client.calls[-1] == "bids_asks"  # book tickers where the venue has them
    assert (prices[BTC].venue, prices[BTC].mid, prices[BTC].received_ms) == ("binance", Decimal("63180.45"), NOW_MS)
    books = await ref.fetch_book_tops([BTC], depth=1)
    assert (books[BTC].bid_size, books[BTC].ask_size) == (Decimal("0.003"), Decimal("0.005"))  # contracts x 0.001
    await ref.close()
    assert client.calls[-1] == "close"


async def test_generic_venue_without_book_tickers_uses_tickers_and_errors_are_typed():
    client = FakeCcxt(MARKETS, has_bids_asks=False)
    ref = CcxtReference("gate", ReferenceConfig(retry=NO_WAIT), client=client)
    assert (await ref.fetch_best_prices([BTC]))[BTC].bid == Decimal("63000.0") and client.calls[-1] == "tickers"
    client.fail = ccxt.NetworkError("gate GET https://api.gateio.ws/ failed")
    with pytest.raises(E.NetworkError):
        await ref.fetch_best_prices([BTC])
    assert client.calls[-2:] == ["tickers", "tickers"]  # transient: retried once


# -- EXTERNAL_PRICE_REST_TIMEOUT_SEC ------------------------------------------------------------------

DETAIL = {"success": True, "code": 0, "data": [{
    "symbol": "BTC_USDT", "displayName": "BTC_USDT", "displayNameEn": "BTC_USDT SWAP", "positionOpenType": 3,
    "baseCoin": "BTC", "quoteCoin": "USDT", "settleCoin": "USDT", "contractSize": 0.0001, "minLeverage": 1,
    "maxLeverage": 200, "priceScale": 2, "volScale": 0, "amountScale": 4, "priceUnit": 0.1, "volUnit": 1,
    "minVol": 1, "maxVol": 1000000, "takerFeeRate": 0.0002, "makerFeeRate": 0, "state": 0, "isNew": False,
    "isHot": True, "isHidden": False}]}
TICKER = {"success": True, "code": 0, "data": {  # one symbol asked: one object, as in MEXC's example
    "symbol": "BTC_USDT", "lastPrice": 63180.5, "bid1": 63180.4, "ask1": 63180.5, "timestamp": 1780999999500}}


@pytest.fixture
async def mexc_server():
    # MEXC futures market endpoints "Get Contract Info" (/api/v1/contract/detail) and "Get Ticker"
    # (/api/v1/contract/ticker): https://www.mexc.com/api-docs/futures/market-endpoints
    with deny_network() as refused:
        server = LoopbackServer()
        await server.start()
        server.route("GET", "/api/v1/contract/detail", DETAIL)
        try:
            yield server
        finally:
            await server.stop()
    assert refused == []


def loopback_mexc(server):
    def make(exchange_id, timeout_ms):
        return MexcReference(MexcConfig(contract_url=f"{server.base_url}/api/v1/contract", timeout_ms=timeout_ms,
                                        rate_limit_ms=1, retry=NO_WAIT, clock_ms=lambda: NOW_MS))
    return make


async def test_the_timeout_setting_bounds_each_request(tmp_path, mexc_server):
    mexc_server.route("GET", "/api/v1/contract/ticker", Reply(json=TICKER, delay=1.0))
    short = reference_from_settings(glob_of(tmp_path, "EXTERNAL_PRICE_REST_TIMEOUT_SEC=0.2\n"), make=loopback_mexc(mexc_server))
    try:
        with pytest.raises(E.ExchangeTimeout):
            await short.fetch_best_prices([BTC])
    finally:
        await short.close()
    roomy = reference_from_settings(glob_of(tmp_path, "EXTERNAL_PRICE_REST_TIMEOUT_SEC=3\n"), make=loopback_mexc(mexc_server))
    try:
        assert (await roomy.fetch_best_prices([BTC]))[BTC].mid == Decimal("63180.45")
    finally:
        await roomy.close()


# -- EXTERNAL_PRICE_REST_POLL_INTERVAL_SEC ------------------------------------------------------------


async def test_best_prices_are_asked_at_most_once_per_interval(tmp_path):
    now = [T0]
    feed = Feed("mexc", {BTC: top("mexc", BTC, "100", "100.02", T0)})
    g = glob_of(tmp_path, "EXTERNAL_PRICE_REST_POLL_INTERVAL_SEC=2.5\n")
    ref = reference_from_settings(g, make=lambda i, t: feed, clock_ms=lambda: now[0])
    first = await ref.fetch_best_prices([BTC])
    now[0] = T0 + 2_499
    feed.tops = {BTC: top("mexc", BTC, "101", "101.02", now[0])}
    again = await ref.fetch_best_prices([BTC])
    assert len(feed.asked) == 1 and again == first and again[BTC].received_ms == T0  # its true age kept
    assert await ref.fetch_best_prices([BTC, ETH]) != first and len(feed.asked) == 2  # a symbol not asked yet
    now[0] = T0 + 2_499 + 2_500
    assert (await ref.fetch_best_prices([BTC]))[BTC].bid == Decimal("101") and len(feed.asked) == 3


async def test_book_reads_are_always_fresh_and_count_as_a_poll():
    now = [T0]
    feed = Feed("mexc", {BTC: top("mexc", BTC, "100", "100.02", T0)})
    ref = PolledReference(feed, 1_000, clock_ms=lambda: now[0])
    await ref.fetch_best_prices([BTC])
    now[0] = T0 + 10
    books = await ref.fetch_book_tops([BTC], depth=1)  # at a candle close: depth is needed now
    now[0] = T0 + 20
    assert await ref.fetch_best_prices([BTC]) == books
    assert [a for a, _ in feed.asked] == ["prices", "books:1"]


async def test_a_failed_poll_also_waits_for_the_interval():
    now = [T0]
    feed = Feed("mexc", {BTC: top("mexc", BTC, "100", "100.02", T0)})
    ref = PolledReference(feed, 1_000, clock_ms=lambda: now[0])
    good = await ref.fetch_best_prices([BTC])
    now[0], feed.fail = T0 + 1_001, E.NetworkError("down")
    with pytest.raises(E.NetworkError):
        await ref.fetch_best_prices([BTC])
    now[0] = T0 + 1_500
    assert await ref.fetch_best_prices([BTC]) == good and len(feed.asked) == 2  # the dead venue is not hammered
