"""MARKETS_CACHE_FILE, MARKETS_CACHE_MAX_AGE_SEC, MARKET_LOAD_RETRIES and MARKET_DATA_MAX_WORKERS
through `build_parts` (the live/paper start) against the loopback HTX venue, ccxt's real client
in between: the markets requests and the candle requests in flight are counted at the venue.

The cache's clock is a fake one, unaligned with the venue's (2021) and with the wall clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from engine.exchange import errors as E
from engine.exchange.retry import RetryPolicy
from engine.exchange.testing import deny_network
from engine.runtime.live import build_parts, coin_symbols, htx_config
from engine.settings.envfile import Assignment
from engine.settings.loader import settings_from_assignments

from fake_htx_venue import BTC, Fault, FakeHtxVenue, Reply

MARKETS = "/linear-swap-api/v1/swap_contract_info"
KLINE = "/linear-swap-ex/market/history/kline"
T0 = 1_900_000_000_000  # the bot's clock: neither the venue's nor the wall clock


def make_settings(tmp_path: Path, **values: str):
    base = {"COINS": "btc,eth,xrp", "DATA_DIR": str(tmp_path / "data"), "EXTERNAL_PRICE_ENABLED": "false",
            "ENABLE_GOLD_BTC_RSI_OVERLAY": "false", "EMA_MACRO_TIMEFRAME": "15m",
            "EMA_MACRO_FAST_MINUTES": "180", "EMA_MACRO_SLOW_MINUTES": "450"}
    base.update(values)
    return settings_from_assignments([Assignment(k, v, i + 1) for i, (k, v) in enumerate(base.items())])


@pytest.fixture
async def venue():
    with deny_network():
        async with FakeHtxVenue(api_key="AKfake-cache", secret="SKfake-cache") as v:
            yield v


class Start:
    """Paper starts through build_parts, pointed at the venue, with the bot's clock."""

    def __init__(self, venue: FakeHtxVenue, settings):
        self.venue, self.settings, self.now = venue, settings, T0

    def config(self):
        cfg = htx_config(self.settings, True)
        return replace(cfg, hostnames=(self.venue.host,), scheme="http", rate_limit_ms=1, clock_ms=lambda: self.now,
                       retry=RetryPolicy(max_attempts=1, base_delay=0.001, max_delay=0.002, seed=3))

    async def __call__(self, keep_open: bool = False):
        parts = await build_parts(self.settings, coin_symbols(self.settings.glob.coins), True, self.config())
        if not keep_open:
            for c in parts.closers:
                await c.close()
        return parts

    def markets_requests(self) -> int:
        return len(self.venue.calls("GET", MARKETS))


async def test_second_start_uses_the_cache_without_a_markets_request(venue, tmp_path):
    start = Start(venue, make_settings(tmp_path))
    first = await start()
    assert start.markets_requests() == 1
    path = tmp_path / "data" / "htx_markets.json"  # the default: DATA_DIR/htx_markets.json
    doc = json.loads(path.read_text())
    assert sorted(m["symbol"] for m in doc["markets"]) == sorted(await first.closers[0].load_markets())
    assert not list(path.parent.glob(".htx_markets.json.*"))  # the temporary file is gone

    start.now += 3_600_000  # an hour later: well inside the default week
    second = await start(keep_open=True)
    assert start.markets_requests() == 1  # no second markets request
    htx = second.closers[0]
    assert htx.market(BTC) == first.closers[0].market(BTC)  # contract size and steps as fetched
    assert BTC in htx._ccxt.markets  # ccxt's client has them too (set_markets) ...
    candles = await second.feed.poll(venue.now_ms)  # ... so it can route a candle request
    assert candles.get(BTC)
    await htx.close()


async def test_cache_older_than_max_age_is_fetched_again(venue, tmp_path):
    start = Start(venue, make_settings(tmp_path, MARKETS_CACHE_MAX_AGE_SEC="60"))
    await start()
    start.now += 59_000
    await start()
    assert start.markets_requests() == 1
    start.now += 2_000  # 61 s after the write
    await start()
    assert start.markets_requests() == 2
    saved = json.loads((tmp_path / "data" / "htx_markets.json").read_text())["saved_ms"]
    assert saved == start.now  # rewritten by the fetch
    start.now -= 10_000  # the clock stepped back: a cache "from the future" is not trusted
    await start()
    assert start.markets_requests() == 3


async def test_max_age_zero_never_uses_the_cache(venue, tmp_path):
    start = Start(venue, make_settings(tmp_path, MARKETS_CACHE_MAX_AGE_SEC="0"))
    await start()
    await start()
    assert start.markets_requests() == 2


async def test_markets_cache_file_setting_names_the_file(venue, tmp_path):
    target = tmp_path / "shared" / "markets.json"
    start = Start(venue, make_settings(tmp_path, MARKETS_CACHE_FILE=str(target)))
    await start()
    await start()
    assert target.is_file() and not (tmp_path / "data" / "htx_markets.json").exists()
    assert start.markets_requests() == 1


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b'{"format": 1, "venue": "htx", "saved_ms": 1}',
                                     b'[1, 2]'])
async def test_corrupt_cache_is_ignored_with_one_warning_and_rewritten(venue, tmp_path, caplog, content):
    start = Start(venue, make_settings(tmp_path))
    path = tmp_path / "data" / "htx_markets.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        parts = await start()
    assert start.markets_requests() == 1
    warnings = [r for r in caplog.records if "markets cache" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info is None and "\n" not in warnings[0].getMessage()
    assert parts.closers[0].market(BTC).contract_size > 0
    assert json.loads(path.read_text())["markets"]  # a good cache again


async def test_cache_with_an_unusable_market_is_not_half_used(venue, tmp_path, caplog):
    start = Start(venue, make_settings(tmp_path))
    await start()
    path = tmp_path / "data" / "htx_markets.json"
    doc = json.loads(path.read_text())
    doc["markets"][0]["contractSize"] = 0  # a contract size of 0 would size every order wrong
    path.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        parts = await start()
    assert start.markets_requests() == 2
    assert any("markets cache" in r.getMessage() for r in caplog.records)
    assert all(m.contract_size > 0 for m in (await parts.closers[0].load_markets()).values())


def _outage(venue: FakeHtxVenue, times: int) -> Fault:
    return venue.inject(Fault("GET", MARKETS, execute=False, times=times, name="outage",
                              reply=Reply(status=503, text="<html>503 Service Unavailable</html>")))


async def test_market_load_retries_then_succeeds(venue, tmp_path):
    start = Start(venue, make_settings(tmp_path, MARKET_LOAD_RETRIES="2"))
    _outage(venue, 2)
    parts = await start()
    assert start.markets_requests() == 3  # two failures, the second retry answers
    assert parts.closers[0].market(BTC).contract_size > 0


async def test_market_load_gives_up_after_the_retries_and_never_uses_a_stale_cache(venue, tmp_path):
    start = Start(venue, make_settings(tmp_path, MARKET_LOAD_RETRIES="2", MARKETS_CACHE_MAX_AGE_SEC="60"))
    await start()  # a cache, soon stale
    start.now += 61_000
    _outage(venue, 3)
    with pytest.raises(E.ExchangeError):
        await start()
    assert start.markets_requests() == 1 + 3  # one load, then 1 + MARKET_LOAD_RETRIES attempts


async def test_market_load_retries_zero_is_one_attempt(venue, tmp_path):
    start = Start(venue, make_settings(tmp_path, MARKET_LOAD_RETRIES="0"))
    _outage(venue, 1)
    with pytest.raises(E.ExchangeError):
        await start()
    assert start.markets_requests() == 1


@pytest.mark.parametrize("workers", [1, 2])
async def test_market_data_max_workers_bounds_candle_requests_in_flight(venue, tmp_path, workers):
    start = Start(venue, make_settings(tmp_path, MARKET_DATA_MAX_WORKERS=str(workers)))
    parts = await build_parts(start.settings, coin_symbols(start.settings.glob.coins), True, start.config())
    in_flight, peak = [0], [0]
    kline = venue._kline

    async def slow_kline(rec):  # hold each candle reply so parallel requests overlap
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        try:
            await asyncio.sleep(0.05)
            return await kline(rec)
        finally:
            in_flight[0] -= 1

    venue._kline = slow_kline  # type: ignore[method-assign]
    try:
        history = await parts.feed.poll(venue.now_ms)
    finally:
        for c in parts.closers:
            await c.close()
    assert len(history) == 3 and len(venue.calls("GET", KLINE)) >= 3  # three symbols were due
    assert peak[0] == workers  # parallel, but never more than MARKET_DATA_MAX_WORKERS
