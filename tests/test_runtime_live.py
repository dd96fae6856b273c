"""Paper mode through the live loop: wall-clock polling, warm-up from history, then trading.

The feed is the recorded XRP perpetual series served by closing time (as the ccxt feed would
deliver it), the exchange is the simulator, and the clock is fake, so the test is offline and
fast while the loop, warm-up and polling logic are the real ones.
"""

import asyncio
from pathlib import Path

from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.market.feeds import FileFeed
from engine.runtime.events import EventBus, OrderEvent, StopEvent
from engine.runtime.live import LiveParts, coin_symbols, run_live, warmup_candles
from engine.runtime.replay import demo_market
from engine.settings.envfile import parse_lines
from engine.settings.loader import settings_from_assignments

#: the 2018 BTC-quoted set and the XRP perp files: test data since the demo moved to USDT-M perps
DEMO_DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"

XRP = "XRP/USDT:USDT"


def make_settings(text: str):
    assignments, errors = parse_lines(text.splitlines())
    assert not errors
    return settings_from_assignments(assignments)


def test_coin_symbols_and_warmup():
    assert coin_symbols(("btc", "xrp")) == ["BTC/USDT:USDT", "XRP/USDT:USDT"]
    s = make_settings("ENABLE_GOLD_BTC_RSI_OVERLAY=false")
    assert warmup_candles(s) == int(1440 * 1.5) + 100  # EMA120 on 1h = 1440 5m candles
    s = make_settings("")  # the gold overlay needs GOLD_MIN_CANDLES (80) 4h candles: 82 x 48 5m candles
    assert warmup_candles(s) == 82 * 48
    assert warmup_candles(make_settings("GOLD_MIN_CANDLES=100")) == 102 * 48  # the live warm-up follows it


async def test_poll_interval_sec_is_the_pause_between_polls(tmp_path):
    async def pauses(text: str) -> list[float]:
        feed = FileFeed.from_directory(DEMO_DATA, "5m", symbols=[XRP])
        history = feed.history(XRP)
        sim = SimulatedExchange([demo_market(XRP, history)], SimConfig(stops_reserve_closeable=False))
        clock = {"now": history[1500].ts_ms + 300_000 + 2_713}
        seen: list[float] = []

        async def wait(seconds):
            seen.append(seconds)
            clock["now"] += int(seconds * 1000) + 17
            await asyncio.sleep(0)

        await run_live(make_settings("COINS=xrp\n" + text), bus=EventBus(), paper=True,
                       parts=LiveParts(sim, feed, None, sim), db_path=tmp_path / f"{len(text)}.sqlite",
                       clock_ms=lambda: clock["now"], max_steps=3, wait=wait, benchmark=None)
        return seen

    default = await pauses("")
    assert default and set(default) == {make_settings("").glob.poll_interval_sec}
    assert set(await pauses("POLL_INTERVAL_SEC=7\n")) == {7}


async def test_paper_loop_warms_up_then_trades_and_protects(tmp_path):
    # No BTC series in this recording: benchmark=None makes BTC neutral (relative strength is
    # then the coin's own return, as with BTC-quoted data).
    # The filters are loosened: this test is about the loop (warm-up, polling, protection),
    # and this week of XRP offers no entry the default gates accept.
    settings = make_settings("COINS=xrp\nPOLL_INTERVAL_SEC=1\nENTRY_MIN_SCORE=0\nEMA_USE_RS_CONFIRMATION=false\n"
                             "EMA_VOLUME_CONFIRMATION_ENABLED=false\nEMA_CHOP_FILTER_ENABLED=false\n"
                             "ENTRY_MIN_RS60_ABS=0\nENTRY_MIN_RS30_ABS=0\n")
    feed = FileFeed.from_directory(DEMO_DATA, "5m", symbols=[XRP])
    history = feed.history(XRP)
    market = demo_market(XRP, history)
    sim = SimulatedExchange([market], SimConfig(stops_reserve_closeable=False))
    clock = {"now": history[1500].ts_ms + 300_000}  # start after 1500 closed candles (warm-up)
    polls = []

    class Feed:
        symbols = (XRP,)
        timeframe = "5m"

        async def poll(self, now_ms):
            batch = await feed.poll(now_ms)
            polls.append((now_ms, sum(len(v) for v in batch.values())))
            return batch

    async def wait(seconds):
        clock["now"] += 300_000  # one 5m candle per poll
        await asyncio.sleep(0)

    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    invariant_checks = 0

    engines = []
    steps = await run_live(settings, bus=bus, paper=True, parts=LiveParts(sim, Feed(), None, sim), db_path=tmp_path / "p.sqlite",
                           clock_ms=lambda: clock["now"], max_steps=450, wait=wait, on_engine=engines.append,
                           benchmark=None)
    assert steps == 450
    assert polls[0][1] == 1501  # the first poll is the warm-up history
    assert all(n <= 1 for _, n in polls[1:])  # then one new closed candle per poll at most
    placed = [e for e in seen if isinstance(e, OrderEvent) and e.action == "placed"]
    assert any(e.purpose == "entry" for e in placed)
    stops = [e for e in seen if isinstance(e, StopEvent)]
    assert stops, "a filled entry must be protected by a stop"
    # every position left open has its stop on the (simulated) exchange
    for pos in await sim.fetch_positions():
        orders = [o for o in await sim.fetch_open_orders() if o.symbol == pos.symbol and o.kind == "stop_loss"]
        assert len(orders) == 1 and orders[0].amount == pos.contracts
        invariant_checks += 1
    assert engines and engines[0].mode == "paper"
