"""Regression tests for money-path findings of the review (each failed before its fix)."""

from decimal import Decimal as Dec
from types import SimpleNamespace as NS

import pytest

from engine.exchange.sim import SimConfig, SimulatedExchange, _SimPosition
from engine.exchange.types import Market, Order, Position
from engine.exits.hard_stop import breakeven_trigger
from engine.runtime.events import EventBus
from engine.runtime.positions import MarketContext, stop_action
from engine.runtime.profile import CycleInput, ProfileRunner
from engine.runtime.snapshot import read_snapshot
from engine.settings import Settings
from engine.store.state import PositionMeta, StateStore

SYM = "ETH/USDT:USDT"
M = Market(SYM, "ETH-USDT", "ETH", "USDT", contract_size=Dec(1), amount_step=Dec(1), price_step=Dec("0.01"),
           min_amount=Dec(1), min_notional=None)


def stop_order(side, trigger, amount=10):
    return Order("s1", 11, SYM, "sell" if side == "long" else "buy", "stop_loss", None, Dec(trigger), Dec(amount),
                 Dec(0), "open", True, False, 0)


def test_a_locked_breakeven_stop_is_never_moved_back_out():
    p = Settings.defaults().side("long")
    for side, through in (("long", Dec("-0.01")), ("short", Dec("0.01"))):
        entry = Dec(100)
        lock = breakeven_trigger(side, entry, p.buy_fee_rate + p.sell_fee_rate, M)
        base = Dec(98) if side == "long" else Dec(102)
        meta = PositionMeta(SYM, side, 0, Dec(1000), runner_active=True, stop_trigger=base, stop_entry=entry)
        for price in (lock, lock + through):  # the book touches or crosses the lock before it fires
            position = Position(SYM, side, Dec(10), entry, price, Dec(0), None, None)
            action = stop_action(side, p, position, meta, M, [stop_order(side, lock)], [], price, None)
            assert action is None, (side, price, action)  # the lock stays; nothing loosens it


class CancelsFirstClose:
    """The venue accepts the first market close, then cancels it without a fill."""

    def __init__(self, sim):
        self.sim, self.closes = sim, 0

    def __getattr__(self, name):
        return getattr(self.sim, name)

    async def close_reduce_only_market(self, symbol, position_side, amount, cid):
        self.closes += 1
        if self.closes == 1:
            o = self.sim._new_order(cid, symbol, "sell" if position_side == "long" else "buy", "market",
                                    None, None, amount, True, False)
            self.sim._close_order(o, "canceled")
            return o.snapshot()
        return await self.sim.close_reduce_only_market(symbol, position_side, amount, cid)


async def test_a_close_dropped_unfilled_is_sent_again_next_cycle():
    sim = SimulatedExchange([M], SimConfig(stops_reserve_closeable=False))
    sim.set_price(SYM, "100")
    ex = CancelsFirstClose(sim)
    settings = Settings.defaults()
    store = await StateStore.open(":memory:")
    runner = ProfileRunner("long", settings.side("long"), ex, store, EventBus(), [SYM], settings.glob)

    async def cycle(now):
        snap = await read_snapshot(ex, [SYM], now)
        ci = CycleInput(snap, {SYM: M}, {}, {SYM: MarketContext()}, None, None, set(), new_candle=False)
        return await runner.cycle(ci)

    t = 10 * 86_400_000
    sim._positions[SYM] = _SimPosition(Dec(10), Dec(100))
    await cycle(t)  # protected: stop and exits placed
    # the price gaps through the emergency line (4 %) while the stop needs resizing (a partial
    # exit fill): the plan is a market close instead of a stop the venue would refuse
    sim._positions[SYM].contracts = Dec(9)
    sim.set_price(SYM, "95.5")
    first = await cycle(t + 3000)
    assert [o.status for o in first.outcomes] == ["rejected"]  # said, not called done
    await cycle(t + 6000)
    assert ex.closes == 2 and not await sim.fetch_positions()  # a new close went out and filled
    await store.close()


def recovered_gates(**failed: bool):
    """The gates of a real entry decision (the engine's pipeline), all passed unless named."""
    from engine.settings.strategy_doc import pipeline_gates

    return tuple(g._replace(passed=not failed.get(g.name, False)) for g in pipeline_gates())


@pytest.mark.parametrize("failed", [None, "pullback_cross_age", "pullback_gap"])
async def test_averaging_reads_the_pullback_gates_the_pipeline_really_has(failed):
    """Averaging asked for a gate named "pullback_recovery", which no real decision has, so
    with EMA_AVERAGING_REQUIRE_PULLBACK_RECOVERY on (the default) it could never add."""
    from engine.exchange.types import Balance, BookTop
    from engine.runtime.snapshot import Snapshot

    settings = Settings.defaults()
    assert settings.side("long").ema_averaging_require_pullback_recovery
    store = await StateStore.open(":memory:")
    runner = ProfileRunner("long", settings.side("long"), None, store, EventBus(), [SYM], settings.glob)
    runner.state.positions[SYM] = PositionMeta(SYM, "long", 0, Dec(1000), contracts=Dec(10), entry_price=Dec(100))
    snap = Snapshot(30 * 3_600_000, Balance(Dec(10000), Dec(9000), Dec(1000), Dec(0)),
                    {SYM: Position(SYM, "long", Dec(10), Dec(100), Dec(97), Dec(0), None, None)},
                    [Order("x", 1, SYM, "sell", "limit", Dec(101), None, Dec(10), Dec(0), "open", True, False, 0)],
                    {SYM: BookTop("sim", SYM, Dec("96.99"), Dec("97.01"), None, None, 0, 0)}, {SYM: Dec(5)})
    d = NS(symbol=SYM, score=0.1, valid=True, entry_valid=True, add_valid=True,
           gates=recovered_gates(**({failed: True} if failed else {})), features=None)
    ci = CycleInput(snap, {SYM: M}, {SYM: d}, {SYM: MarketContext(atr_rate=0.001)}, None, None, set())
    adds = runner._averaging(ci, Dec(0))
    assert bool(adds) == (failed is None)
    await store.close()


async def test_averaging_counts_the_margin_new_ladders_took_this_cycle():
    from engine.exchange.types import Balance, BookTop
    from engine.runtime.snapshot import Snapshot

    settings = Settings.defaults()
    p = settings.side("long")
    store = await StateStore.open(":memory:")
    runner = ProfileRunner("long", p, None, store, EventBus(), [SYM], settings.glob)
    runner.state.positions[SYM] = PositionMeta(SYM, "long", 0, Dec(1000), contracts=Dec(10), entry_price=Dec(100))
    snap = Snapshot(30 * 3_600_000, Balance(Dec(10000), Dec(5200), Dec(4800), Dec(0)),
                    {SYM: Position(SYM, "long", Dec(10), Dec(100), Dec(97), Dec(0), None, None)},
                    [Order("x", 1, SYM, "sell", "limit", Dec(101), None, Dec(10), Dec(0), "open", True, False, 0)],
                    {SYM: BookTop("sim", SYM, Dec("96.99"), Dec("97.01"), None, None, 0, 0)}, {SYM: Dec(5)})
    d = NS(symbol=SYM, score=0.1, valid=True, entry_valid=True, add_valid=True,
           gates=recovered_gates(), features=None)
    ci = CycleInput(snap, {SYM: M}, {SYM: d}, {SYM: MarketContext(atr_rate=0.001)}, None, None, set())
    free_all = runner._averaging(ci, Dec(0))
    assert free_all  # with the whole 200 of margin left, the add goes out
    capped = runner._averaging(ci, Dec(199))  # a new ladder took 199 of the 200 left this cycle
    total = sum((a.price * a.amount / 5 for a in capped), Dec(0))
    assert total <= Dec(1)  # the add fits in what is left under the 50 % cap, or is skipped
    await store.close()


async def test_sides_share_one_feature_engine_unless_their_indicator_settings_differ():
    from engine.runtime.engine import Engine
    from engine.settings.envfile import parse_lines
    from engine.settings.loader import settings_from_assignments

    def engine_for(text):
        assignments, _ = parse_lines(text.splitlines())
        return Engine(settings_from_assignments(assignments), None, None, EventBus(), symbols=[SYM])

    shared = engine_for("SHORT_EMA_POSITION_BUDGET_FRACTION=0.01\n")  # not an indicator setting
    assert shared.features["long"] is shared.features["short"]
    split = engine_for("SHORT_EMA_CHOP_PERIOD=21\n")
    assert split.features["long"] is not split.features["short"]
    assert len(split._feature_engines()) == 2 and len(shared._feature_engines()) == 1
