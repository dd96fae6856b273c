"""The absolute force exit and the exit-coverage warning (issue 18, forced and defensive exits).

A position whose exit orders cannot rest (the venue answers every reduce-only limit with
"closeable amount reserved", as HTX does while other close orders hold it) is reported after
EXIT_COVERAGE_ALERT_MINUTES and closed reduce-only at market after
ABSOLUTE_FORCE_EXIT_AFTER_MINUTES; the stop stays in place throughout. Polls are a few odd
seconds apart (an unaligned clock)."""

from __future__ import annotations

from decimal import Decimal as Dec

import pytest

from engine.exchange import errors as E
from engine.exchange.sim import _SimPosition
from engine.runtime.events import EventBus, Repair, TradeClosed
from engine.runtime.positions import MarketContext
from engine.runtime.profile import CycleInput, ProfileRunner
from engine.runtime.snapshot import read_snapshot
from engine.settings import Settings
from engine.store.state import StateStore

from test_runtime_protection import A, T0, market, new_sim

MIN = 60_000


class ExitsReserved:
    """Every exit order is refused: the closeable amount is held elsewhere (HTX 1048-like)."""

    def __init__(self, sim, refuse=True):
        self.sim, self.refuse, self.refused = sim, refuse, 0

    def __getattr__(self, name):
        return getattr(self.sim, name)

    async def place_reduce_only_limit(self, symbol, position_side, amount, price, cid):
        if self.refuse:
            self.refused += 1
            raise E.ReduceOnlyFrozen("closeable amount reserved by other close orders", venue="sim")
        return await self.sim.place_reduce_only_limit(symbol, position_side, amount, price, cid)


def settings(**kw) -> Settings:
    s = Settings.defaults()
    return Settings(s.glob, {side: p.model_copy(update=kw) for side, p in s.profiles.items()})


async def run(ex, sim, s, minutes, step_ms=137_911):
    store = await StateStore.open(":memory:")
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    runner = ProfileRunner("long", s.side("long"), ex, store, bus, [A], s.glob)
    t = T0
    while t < T0 + minutes * MIN:
        sim.set_price(A, "100.3", t)
        snap = await read_snapshot(ex, [A], t)
        await runner.cycle(CycleInput(snap, {A: market(A)}, {}, {A: MarketContext()}, None, None, set(),
                                      new_candle=False))
        t += step_ms
    await store.close()
    return seen


async def test_a_position_whose_exits_cannot_rest_is_reported_then_force_closed():
    sim = new_sim()
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    ex = ExitsReserved(sim)
    s = settings(exit_coverage_alert_minutes=20.0, absolute_force_exit_after_minutes=60.0)
    seen = await run(ex, sim, s, minutes=45)
    assert ex.refused > 0 and await sim.fetch_positions()  # still open at 45 min
    [warn] = [e for e in seen if isinstance(e, Repair) and e.problem.startswith("exit orders missing")]
    assert 20 * MIN <= warn.ts_ms - T0 < 25 * MIN and "absolute force exit" in warn.action
    assert any(o.kind == "stop_loss" for o in await sim.fetch_open_orders())  # the stop stayed

    sim2 = new_sim()
    sim2._positions[A] = _SimPosition(Dec(10), Dec(100))
    ex2 = ExitsReserved(sim2)
    seen = await run(ex2, sim2, s, minutes=70)
    assert await sim2.fetch_positions() == []
    [trade] = [e for e in seen if isinstance(e, TradeClosed)]
    assert trade.reason == "force_exit" and 60 * MIN <= trade.ts_ms - T0 < 66 * MIN


@pytest.mark.parametrize("kw", [{"enable_absolute_force_exit": False, "absolute_force_exit_after_minutes": 60.0},
                                {"absolute_force_exit_after_minutes": 0.0}], ids=["off", "zero"])
async def test_with_the_force_exit_off_the_position_stays_and_is_still_reported(kw):
    sim = new_sim()
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    seen = await run(ExitsReserved(sim), sim, settings(**kw), minutes=90)
    assert await sim.fetch_positions()
    [warn] = [e for e in seen if isinstance(e, Repair) and e.problem.startswith("exit orders missing")]
    assert "check it by hand" in warn.action


async def test_a_position_with_resting_exits_is_never_force_closed():
    sim = new_sim()
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    ex = ExitsReserved(sim, refuse=False)
    seen = await run(ex, sim, settings(absolute_force_exit_after_minutes=30.0), minutes=120, step_ms=611_003)
    assert await sim.fetch_positions()
    assert any(o.kind == "limit" and o.reduce_only for o in await sim.fetch_open_orders())
    assert not any(isinstance(e, Repair) and e.problem.startswith("exit orders missing") for e in seen)
