"""MexcReference against ccxt's real MEXC client on a loopback server (public endpoints, no keys)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.exchange import errors as E
from engine.exchange.base import ReferenceFeed
from engine.exchange.mexc import MexcConfig, MexcReference
from engine.exchange.retry import RetryPolicy
from engine.exchange.testing import LoopbackServer, Reply, deny_network

BTC, ETH, XRP = "BTC/USDT:USDT", "ETH/USDT:USDT", "XRP/USDT:USDT"
NOW_MS = 1_781_000_000_000


def contract(symbol, base, settle, size, tick):
    return {
        "symbol": symbol, "displayName": symbol, "displayNameEn": f"{symbol} SWAP", "positionOpenType": 3,
        "baseCoin": base, "quoteCoin": "USDT" if settle == "USDT" else "USD", "settleCoin": settle,
        "contractSize": size, "minLeverage": 1, "maxLeverage": 200, "priceScale": 2, "volScale": 0,
        "amountScale": 4, "priceUnit": tick, "volUnit": 1, "minVol": 1, "maxVol": 1000000,
        "takerFeeRate": 0.0002, "makerFeeRate": 0, "state": 0, "isNew": False, "isHot": True, "isHidden": False,
    }


DETAIL = {
    "success": True,
    "code": 0,
    "data": [
        contract("BTC_USDT", "BTC", "USDT", 0.0001, 0.1),
        contract("ETH_USDT", "ETH", "USDT", 0.01, 0.01),
        contract("XRP_USDT", "XRP", "USDT", 1, 0.0001),
        contract("BTC_USD", "BTC", "BTC", 100, 0.5),
    ],
}
TICKERS = {
    "success": True,
    "code": 0,
    "data": [
        {"symbol": "BTC_USDT", "lastPrice": 63180.5, "bid1": 63180.4, "ask1": 63180.5, "volume24": 4045530,
         "amount24": 141331823.57, "holdVol": 5832946, "lower24Price": 61000, "high24Price": 63500,
         "riseFallRate": 0.01, "riseFallValue": 600, "indexPrice": 63179, "fairPrice": 63180,
         "fundingRate": 0.0001, "maxBidPrice": 69000, "minAskPrice": 57000, "timestamp": 1780999999500},
        {"symbol": "ETH_USDT", "lastPrice": 3581.3, "bid1": 3581.25, "ask1": 3581.5, "volume24": 40455,
         "amount24": 141331823.57, "holdVol": 58329, "lower24Price": 3413.4, "high24Price": 3588.7,
         "riseFallRate": 0.0275, "riseFallValue": 95.95, "indexPrice": 3580.78, "fairPrice": 3581.08,
         "fundingRate": 0.000063, "maxBidPrice": 3938.85, "minAskPrice": 3222.7, "timestamp": 1780999999400},
    ],
}


def depth(bids, asks, ts=1780999999600):
    return {"success": True, "code": 0, "data": {"asks": asks, "bids": bids, "version": 2827730444, "timestamp": ts}}


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def served():
    with deny_network() as refused:
        server = LoopbackServer()
        await server.start()
        server.route("GET", "/api/v1/contract/detail", DETAIL)
        reference = MexcReference(
            MexcConfig(
                contract_url=f"{server.base_url}/api/v1/contract",
                timeout_ms=2_000,
                rate_limit_ms=1,
                retry=RetryPolicy(max_attempts=2, base_delay=0, seed=1, sleep=_no_sleep),
                clock_ms=lambda: NOW_MS,
            )
        )
        try:
            yield server, reference
        finally:
            await reference.close()
            await server.stop()
    assert refused == []


async def test_loads_only_usdt_swaps_with_one_request(served):
    server, reference = served
    assert isinstance(reference, ReferenceFeed)
    markets = await reference.load_markets()
    assert set(markets) == {BTC, ETH, XRP}
    assert (markets[BTC].contract_size, markets[BTC].price_step, markets[BTC].max_leverage) == (Decimal("0.0001"), Decimal("0.1"), Decimal("200"))
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/api/v1/contract/detail")]
    assert all("ApiKey" not in r.headers and "X-MEXC-APIKEY" not in r.headers for r in server.requests)


async def test_best_prices_for_all_symbols_in_one_request(served):
    server, reference = served
    server.route("GET", "/api/v1/contract/ticker", TICKERS)
    tops = await reference.fetch_best_prices([BTC, ETH, "NOPE/USDT:USDT"])
    (request,) = server.calls("GET", "/api/v1/contract/ticker")
    assert request.query == {}  # all symbols at once
    assert set(tops) == {BTC, ETH}
    btc = tops[BTC]
    assert (btc.venue, btc.bid, btc.ask, btc.venue_ts_ms, btc.received_ms) == ("mexc", Decimal("63180.4"), Decimal("63180.5"), 1780999999500, NOW_MS)
    assert btc.valid and btc.mid == Decimal("63180.45")


async def test_book_tops_with_depth_per_symbol_and_a_failing_symbol_left_out(served):
    server, reference = served
    server.route("GET", "/api/v1/contract/depth/BTC_USDT", depth([[63180.4, 1000, 1], [63180.0, 500, 2]], [[63180.5, 2000, 1], [63181, 100, 1]]))
    server.route("GET", "/api/v1/contract/depth/ETH_USDT", Reply(status=500, text="oops"))
    tops = await reference.fetch_book_tops([BTC, ETH], depth=2)
    assert set(tops) == {BTC}
    btc = tops[BTC]
    assert (btc.bid, btc.ask, btc.bid_size, btc.ask_size, btc.levels) == (Decimal("63180.4"), Decimal("63180.5"), Decimal("0.1"), Decimal("0.2"), 2)
    assert btc.depth_bid_notional == Decimal("63180.4") * Decimal("0.1") + Decimal("63180.0") * Decimal("0.05")
    assert server.calls("GET", "/api/v1/contract/depth/BTC_USDT")[0].query == {"limit": "2"}
    assert len(server.calls("GET", "/api/v1/contract/depth/ETH_USDT")) == 2  # one retry, then left out


async def test_venue_errors_are_typed(served):
    server, reference = served
    await reference.load_markets()
    server.route("GET", "/api/v1/contract/ticker", {"success": False, "code": 510, "message": "Requests are too frequent"})
    with pytest.raises(E.RateLimited):
        await reference.fetch_best_prices([BTC, ETH])
    assert len(server.calls("GET", "/api/v1/contract/ticker")) == 2  # transient: retried once
    server.route("GET", "/api/v1/contract/ticker", {"success": False, "code": 1001, "message": "contract does not exist"})
    with pytest.raises(E.ExchangeError) as caught:
        await reference.fetch_best_prices([BTC, ETH])
    assert not isinstance(caught.value, E.TransientError)
