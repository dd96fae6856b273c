"""`crot download` uses only the adapters' public, documented history reads.

The adapters given to `download` here are doubles that have the public methods
(`load_markets`, `fetch_candles_page`, `fetch_funding_history_page`, `close`) and refuse every
private attribute: download.py reaching into an adapter's `_read` / `_ccxt` (or anything
private) fails these tests. The real adapters are checked to offer the same methods (the
`CandleHistory` / `FundingHistory` protocols); what they send is covered by
tests/test_market_download.py against the loopback venues.
"""

from __future__ import annotations

import ast
import gzip
import math
from decimal import Decimal
from pathlib import Path

import pytest

import engine.market.download as dl
from engine.exchange.base import CandleHistory, FundingHistory
from engine.exchange.htx import HtxConfig, HtxExchange
from engine.exchange.mexc import MexcReference
from engine.exchange.types import Market
from engine.market.download import download
from engine.market.feeds import read_candles_csv, read_funding_csv
from engine.settings import load_settings

TF = 300_000
DAY = 86_400_000
START = 1_722_470_400_000  # 2024-08-01 00:00 UTC
END = START + 2 * DAY
NOW = END + 3 * TF
ETH, BTC = "ETH/USDT:USDT", "BTC/USDT:USDT"
ENV = ("COINS=eth\nEXTERNAL_PRICE_ENABLED=true\nEXTERNAL_PRICE_REFERENCE_EXCHANGES=mexc\n"
       "ENABLE_GOLD_BTC_RSI_OVERLAY=false\n")


def _market(symbol: str) -> Market:
    base = symbol.split("/")[0]
    return Market(symbol=symbol, venue_id=f"{base}-USDT", base=base, quote="USDT", contract_size=Decimal("0.01"),
                  amount_step=Decimal(1), price_step=Decimal("0.01"), min_amount=Decimal(1))


def _price(symbol: str, ts: int, venue: str) -> float:
    base = 3000.0 if symbol == ETH else 60000.0
    return base * (1 + 0.01 * math.sin(ts / 3_600_000)) * (1.0005 if venue == "mexc" else 1.0)


class PublicOnly:
    """An adapter double: any private attribute read from outside is a test failure."""

    def __getattribute__(self, name: str):
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
            raise AssertionError(f"download touched the private adapter attribute {name!r}")
        return object.__getattribute__(self, name)


class HistoryDouble(PublicOnly):
    def __init__(self, name: str, symbols: list[str], funding: bool):
        self.name = name
        self.markets = {s: _market(s) for s in symbols}
        self.funding = funding
        self.candle_pages: list[tuple[str, int, int]] = []
        self.funding_pages: list[tuple[str, int, int, int]] = []
        self.closed = False

    async def load_markets(self, reload: bool = False):
        return self.markets

    async def fetch_candles_page(self, symbol: str, timeframe: str, since_ms: int, until_ms: int):
        assert timeframe == "5m" and (until_ms - since_ms) // TF <= 2000
        self.candle_pages.append((symbol, since_ms, until_ms))
        first = -(-since_ms // TF) * TF
        return [[t, _price(symbol, t, self.name), _price(symbol, t, self.name) * 1.001,
                 _price(symbol, t, self.name) * 0.999, _price(symbol, t, self.name), 12.5]
                for t in range(first, min(until_ms, NOW), TF)]  # the forming candle too, as venues do

    async def fetch_funding_history_page(self, symbol: str, since_ms: int, until_ms: int, limit: int):
        assert self.funding, "the reference venue is never asked for funding"
        self.funding_pages.append((symbol, since_ms, until_ms, limit))
        first = -(-since_ms // (8 * 3_600_000)) * 8 * 3_600_000
        rows = [(t, 0.0001) for t in range(first, until_ms, 8 * 3_600_000)]
        return list(reversed(rows))[:limit]  # newest first, as HTX serves them

    async def close(self) -> None:
        self.closed = True


def _settings(tmp: Path):
    env = tmp / "test.env"
    env.write_text(ENV)
    return load_settings(env, missing_ok=False)


async def test_download_runs_on_adapters_that_have_only_the_public_history_reads(tmp_path):
    htx = HistoryDouble("htx", [ETH, BTC], funding=True)
    mexc = HistoryDouble("mexc", [ETH, BTC], funding=False)
    data = tmp_path / "data"
    report = await download(_settings(tmp_path), data, START, END, htx_exchange=htx, reference_feed=mexc,
                            clock_ms=lambda: NOW)
    assert report.errors == [] and report.unknown == []
    assert htx.closed and mexc.closed
    assert {s for s, *_ in htx.candle_pages} == {ETH, BTC} and {s for s, *_ in mexc.candle_pages} == {ETH, BTC}
    assert {s for s, *_ in htx.funding_pages} == {ETH, BTC}

    eth = read_candles_csv(data / "ETH_USDT_USDT-5m-futures.csv.gz")
    assert [c.ts_ms for c in eth] == list(range(START, END, TF))  # closed candles of the range only
    assert eth[0].close == _price(ETH, START, "htx") and eth[0].volume == 12.5
    ref = read_candles_csv(data / "reference" / "ETH_USDT_USDT-5m-futures.csv.gz")
    assert [c.ts_ms for c in ref] == list(range(START, END, TF))
    assert ref[5].close == _price(ETH, START + 5 * TF, "mexc")
    funding = read_funding_csv(data / "BTC_USDT_USDT-8h-funding_rate.csv.gz")
    assert [t for t, _ in funding] == list(range(START, END, 8 * 3_600_000))
    assert gzip.decompress((data / "BTC_USDT_USDT-8h-funding_rate.csv.gz").read_bytes()).startswith(b"timestamp")

    # a second run over the same range asks the adapters for nothing
    htx2 = HistoryDouble("htx", [ETH, BTC], funding=True)
    mexc2 = HistoryDouble("mexc", [ETH, BTC], funding=False)
    again = await download(_settings(tmp_path), data, START, END, htx_exchange=htx2, reference_feed=mexc2,
                           clock_ms=lambda: NOW)
    assert again.errors == [] and again.requests == 0
    assert htx2.candle_pages == htx2.funding_pages == mexc2.candle_pages == []


async def test_a_double_refuses_private_attributes():
    """The guard itself: what download.py did before (`ex._read`, `ex._ccxt`) fails."""
    d = HistoryDouble("htx", [ETH], funding=True)
    for name in ("_read", "_ccxt", "_markets"):
        with pytest.raises(AssertionError, match=name):
            getattr(d, name)


def test_download_py_reads_no_private_attribute_of_another_object():
    """Statically: every `x._name` in download.py is on `self` (its own helpers), none is `_read`, `_ccxt`, `_once`."""
    tree = ast.parse(Path(dl.__file__).read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id == "self"):
                bad.append(f"line {node.lineno}: {ast.unparse(node)}")
            elif isinstance(owner, ast.Name) and owner.id == "self" and node.attr in ("_read", "_ccxt", "_once"):
                bad.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert bad == []


async def test_the_real_adapters_offer_the_public_history_reads():
    htx = HtxExchange(HtxConfig(api_key="", secret=""))
    mexc = MexcReference()
    try:
        assert isinstance(htx, CandleHistory) and isinstance(htx, FundingHistory)
        assert isinstance(mexc, CandleHistory)
        for method in (HtxExchange.fetch_candles_page, HtxExchange.fetch_funding_history_page,
                       MexcReference.fetch_candles_page):
            assert method.__doc__ and "[since_ms, until_ms)" in method.__doc__
    finally:
        await htx.close()
        await mexc.close()
