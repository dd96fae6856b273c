"""The live engine reads MEXC with sizes when entries are decided (the depth check needs
them) and with the cheap batched ticker between candles."""

import asyncio
from decimal import Decimal
from pathlib import Path

from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.exchange.types import BookTop
from engine.runtime.engine import Engine
from engine.runtime.events import EventBus
from engine.runtime.replay import demo_market
from engine.settings import Settings
from engine.store.state import StateStore
from engine.market.feeds import FileFeed

#: the 2018 BTC-quoted set and the XRP perp files: test data since the demo moved to USDT-M perps
DEMO_DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"


class Reference:
    name = "mexc"

    def __init__(self):
        self.calls = []

    async def load_markets(self, reload=False):
        return {}

    async def fetch_best_prices(self, symbols):
        self.calls.append("ticker")
        return {}

    async def fetch_book_tops(self, symbols, depth=5):
        self.calls.append(f"books:{depth}")
        return {s: BookTop("mexc", s, Decimal("1"), Decimal("1.001"), Decimal(100), Decimal(100), 0, 0) for s in symbols}

    async def close(self):
        pass


async def test_books_at_candle_close_ticker_between(tmp_path):
    sym = "XRP/USDT:USDT"
    history = FileFeed.from_directory(DEMO_DATA, "5m", symbols=[sym]).history(sym)
    sim = SimulatedExchange([demo_market(sym, history)], SimConfig())
    sim.set_price(sym, Decimal(str(history[0].close)), history[0].ts_ms)
    store = await StateStore.open(tmp_path / "s.sqlite")
    ref = Reference()
    engine = Engine(Settings.defaults(), sim, store, EventBus(), symbols=[sym], reference_feed=ref)
    await engine.start()
    now = history[0].ts_ms + 300_000
    await engine.step(now, {sym: [history[0]]})  # a candle closed
    await engine.step(now + 3_000, {})  # a poll between candles
    await store.close()
    assert ref.calls == ["books:1", "ticker"]
