"""The funding-aware exit and the dynamic profit floor (issue 18).

Pure: ENABLE_FUNDING_AWARE_EXIT scales the ladder's markups when the position pays or receives
funding; ENABLE_DYNAMIC_PROFIT_FLOOR lowers the fee floor in high daily volatility and under
adverse funding, never below DYNAMIC_PROFIT_FLOOR_MIN_RATE. Runtime: a ProfileRunner re-plans
the ladder when the quantised funding state changes (not on every rate tick); the engine reads
funding at most every FUNDING_CACHE_TTL_SEC, a failed read never stops the step, and the
simulator shows the recorded funding event due next, as replay feeds it.
"""

from __future__ import annotations

from decimal import Decimal as Dec

import pytest

from engine.exchange import errors as E
from engine.exchange.sim import _SimPosition
from engine.exchange.types import Market
from engine.exits.ladder import (
    dynamic_fee_floor, exit_plan, exit_state_tag, fee_floor, funding_markup_multiplier,
)
from engine.runtime.engine import Engine
from engine.runtime.events import ErrorEvent, EventBus, OrderEvent
from engine.runtime.positions import MarketContext
from engine.runtime.profile import CycleInput
from engine.runtime.snapshot import read_snapshot
from engine.settings import ProfileSettings, Settings
from engine.store.state import StateStore

from test_runtime_protection import A, held_long_runner, market, new_sim, T0

M = Market("ETH/USDT:USDT", "ETH-USDT", "ETH", "USDT", contract_size=Dec("0.01"), amount_step=Dec("1"),
           price_step=Dec("0.01"), min_amount=Dec("1"), min_notional=None)
MIN = 60_000
#: a fee floor of 2% (fees 0.1% x 20) that binds over the first markup (0.8%)
FLOOR = dict(buy_fee_rate=0.0005, sell_fee_rate=0.0005, min_profit_fee_multiplier=20.0)
HIGH_VOL = 0.035 * 1.5  # daily volatility at the default threshold x DAILY_VOLATILITY_REFERENCE


def tp1(p: ProfileSettings, side="long", **kw) -> Dec:
    plan = exit_plan(p, side, Dec(100), Dec(100), M, mode="normal", hours_held=0.0, **kw)
    return next(o.price for o in plan.orders if o.tag == "tp1")


def runner_tp(p: ProfileSettings, side="long", **kw) -> Dec:
    plan = exit_plan(p, side, Dec(100), Dec(100), M, mode="normal", hours_held=0.0, **kw)
    return next(o.price for o in plan.orders if o.tag == "runner")


# -- the dynamic profit floor --------------------------------------------------------------------

def test_the_dynamic_floor_is_off_by_default_and_the_fee_floor_binds():
    p = ProfileSettings(**FLOOR)
    assert fee_floor(p) == pytest.approx(0.02)
    assert tp1(p, daily_volatility=HIGH_VOL * 3, funding=0.01) == Dec("102.00")


def test_high_daily_volatility_lowers_the_floor_by_its_multiplier():
    p = ProfileSettings(**FLOOR, enable_dynamic_profit_floor=True)
    assert tp1(p, daily_volatility=0.035 * 1.4) == Dec("102.00")  # below the threshold
    assert tp1(p, daily_volatility=HIGH_VOL) == Dec("101.40")  # 2% x 0.7
    assert tp1(p, daily_volatility=None) == Dec("102.00")  # unknown volatility: no reduction
    # DYNAMIC_PROFIT_FLOOR_VOLATILITY_MULTIPLIER_THRESHOLD
    assert tp1(p.model_copy(update={"dynamic_profit_floor_volatility_multiplier_threshold": 1.3}),
               daily_volatility=0.035 * 1.4) == Dec("101.40")
    assert tp1(p.model_copy(update={"dynamic_profit_floor_volatility_multiplier_threshold": 0.0}),
               daily_volatility=HIGH_VOL * 10) == Dec("102.00")  # 0 = never
    # DYNAMIC_PROFIT_FLOOR_HIGH_VOL_MULTIPLIER
    assert tp1(p.model_copy(update={"dynamic_profit_floor_high_vol_multiplier": 0.5}),
               daily_volatility=HIGH_VOL) == Dec("101.00")
    # the ladder's own markup (0.8%) still applies above a lower floor
    assert tp1(p.model_copy(update={"dynamic_profit_floor_high_vol_multiplier": 0.1}),
               daily_volatility=HIGH_VOL) == Dec("100.80")


@pytest.mark.parametrize("side, funding, price", [
    ("long", 0.0001, "101.20"),  # a long pays: 2% x 0.6
    ("long", -0.0001, "102.00"),  # a long receives: no reduction
    ("short", -0.0001, "98.80"),  # a short pays
    ("short", 0.0001, "98.00"),
    ("long", None, "102.00"),  # funding unknown
])
def test_adverse_funding_lowers_the_floor(side, funding, price):
    p = ProfileSettings(**FLOOR, enable_dynamic_profit_floor=True)
    assert tp1(p, side, funding=funding) == Dec(price)


def test_the_adverse_funding_multiplier_and_thresholds_move_the_floor():
    p = ProfileSettings(**FLOOR, enable_dynamic_profit_floor=True)
    # DYNAMIC_PROFIT_FLOOR_ADVERSE_FUNDING_MULTIPLIER
    assert tp1(p.model_copy(update={"dynamic_profit_floor_adverse_funding_multiplier": 0.5}),
               funding=0.0001) == Dec("101.00")
    # FUNDING_POSITIVE_THRESHOLD: 0.0001 is no longer adverse for a long
    assert tp1(p.model_copy(update={"funding_positive_threshold": 0.0002}), funding=0.0001) == Dec("102.00")
    # FUNDING_NEGATIVE_THRESHOLD: -0.0001 is no longer adverse for a short
    assert tp1(p.model_copy(update={"funding_negative_threshold": -0.0002}), "short",
               funding=-0.0001) == Dec("98.00")
    # both reductions multiply: 2% x 0.7 x 0.6 = 0.84%
    assert tp1(p, funding=0.0001, daily_volatility=HIGH_VOL) == Dec("100.84")


def test_the_dynamic_floor_never_goes_below_its_minimum_rate():
    p = ProfileSettings(**FLOOR, enable_dynamic_profit_floor=True, dynamic_profit_floor_min_rate=0.018)
    assert tp1(p, funding=0.0001, daily_volatility=HIGH_VOL) == Dec("101.80")
    assert dynamic_fee_floor(p, "long", funding=0.0001, daily_volatility=HIGH_VOL, urgent=True) == \
        pytest.approx(0.018)
    assert dynamic_fee_floor(p.model_copy(update={"dynamic_profit_floor_min_rate": 0.0}), "long",
                             funding=0.0001, daily_volatility=HIGH_VOL) == pytest.approx(0.02 * 0.7 * 0.6)


# -- the funding-aware exit ------------------------------------------------------------------------

@pytest.mark.parametrize("side, funding, first, runner", [
    ("long", 0.0001, "100.60", "103.75"),  # a long pays: markups x 0.75
    ("long", -0.0001, "100.92", "105.75"),  # a long receives: x 1.15
    ("short", -0.0001, "99.40", "96.25"),  # a short pays
    ("short", 0.0001, "99.08", "94.25"),  # a short receives
    ("long", 0.00005, "100.80", "105.00"),  # between the thresholds: unchanged
    ("long", None, "100.80", "105.00"),  # unknown
])
def test_funding_scales_the_exit_markups(side, funding, first, runner):
    p = ProfileSettings(enable_funding_aware_exit=True)
    assert tp1(p, side, funding=funding) == Dec(first)
    assert runner_tp(p, side, funding=funding) == Dec(runner)


def test_the_funding_aware_exit_settings_move_the_prices():
    p = ProfileSettings(enable_funding_aware_exit=True)
    assert tp1(ProfileSettings(), funding=0.0001) == Dec("100.80")  # off by default
    assert tp1(p.model_copy(update={"funding_positive_markup_multiplier": 0.5}), funding=0.0001) == Dec("100.40")
    assert tp1(p.model_copy(update={"funding_negative_markup_multiplier": 1.5}), funding=-0.0001) == Dec("101.20")
    assert tp1(p.model_copy(update={"funding_positive_threshold": 0.0003}), funding=0.0002) == Dec("100.80")
    assert tp1(p.model_copy(update={"funding_negative_threshold": -0.0003}), funding=-0.0002) == Dec("100.80")
    # never below the fee floor
    q = p.model_copy(update=dict(FLOOR))
    assert tp1(q, funding=0.0001) == Dec("102.00")
    assert funding_markup_multiplier(p, "short", -0.0001) == 0.75


def test_the_phase_tag_is_quantised_and_empty_when_both_are_off():
    off = ProfileSettings()
    assert exit_state_tag(off, "long", 0.01, HIGH_VOL) == ""
    on = ProfileSettings(enable_funding_aware_exit=True, enable_dynamic_profit_floor=True)
    assert exit_state_tag(on, "long", 0.0001, None) == exit_state_tag(on, "long", 0.0009, None) == "|fa"
    assert exit_state_tag(on, "long", -0.0004, None) == "|fr"
    assert exit_state_tag(on, "long", 0.00002, 0.01) == ""
    assert exit_state_tag(on, "short", -0.0002, HIGH_VOL) == "|fav"


# -- a ProfileRunner re-plans when the funding state changes -----------------------------------------

def settings(**kw) -> Settings:
    s = Settings.defaults()
    return Settings(s.glob, {side: p.model_copy(update=kw) for side, p in s.profiles.items()})


async def run_runner(s: Settings, funding_at, minutes=30, step_ms=137_911):
    """Cycles of a long 10 @ 100 at 100, the funding rate given by `funding_at(minute)`."""
    runner, sim, store, seen = await held_long_runner(s)
    t = T0
    while t < T0 + minutes * MIN:
        sim.set_price(A, "100", t)
        snap = await read_snapshot(sim, [A], t)
        ctx = MarketContext(funding=funding_at((t - T0) / MIN))
        await runner.cycle(CycleInput(snap, {A: market(A)}, {}, {A: ctx}, None, None, set(), new_candle=False))
        t += step_ms
    await store.close()
    return sim, [e for e in seen if isinstance(e, OrderEvent) and e.purpose == "exit" and e.action == "placed"]


def _tp1_prices(placed):
    # the fixed part (3 of 10) exits at the first markup; the runner's take-profit is the other
    return [e.price for e in placed if e.amount == Dec(3)]


async def test_a_funding_state_change_re_plans_the_ladder_once_and_ticks_do_not():
    s = settings(enable_funding_aware_exit=True)
    # neutral, then a long paying (two different rates, one state), then neutral again
    rates = lambda m: 0.00002 if m < 10 else (0.0002 if m < 15 else 0.0003) if m < 20 else 0.0
    _, placed = await run_runner(s, rates)
    assert _tp1_prices(placed) == [Dec("100.80"), Dec("100.60"), Dec("100.80")]
    # off: the same rates change nothing
    _, placed = await run_runner(settings(), rates)
    assert _tp1_prices(placed) == [Dec("100.80")]


async def test_a_high_volatility_state_re_plans_the_floor():
    s = settings(**FLOOR, enable_dynamic_profit_floor=True)
    runner, sim, store, seen = await held_long_runner(s)
    t = T0
    for i in range(12):
        sim.set_price(A, "100", t)
        snap = await read_snapshot(sim, [A], t)
        ctx = MarketContext(daily_volatility=HIGH_VOL if i >= 6 else 0.02)
        await runner.cycle(CycleInput(snap, {A: market(A)}, {}, {A: ctx}, None, None, set(), new_candle=False))
        t += 137_911
    await store.close()
    placed = [e for e in seen if isinstance(e, OrderEvent) and e.purpose == "exit" and e.action == "placed"]
    assert _tp1_prices(placed) == [Dec("102.00"), Dec("101.40")]


# -- the engine: the funding cache, a failed read, the simulator's recorded funding ----------------

class CountingFunding:
    """The simulator, counting funding reads; `fail` makes them raise."""

    def __init__(self, sim, fail=False):
        self.sim, self.fail, self.calls = sim, fail, 0

    def __getattr__(self, name):
        return getattr(self.sim, name)

    async def fetch_funding_rates(self, symbols):
        self.calls += 1
        if self.fail:
            raise E.NetworkError("funding endpoint unreachable")
        return await self.sim.fetch_funding_rates(symbols)


async def run_engine(ex, sim, s, steps, step_ms=137_911):
    store = await StateStore.open(":memory:")
    bus = EventBus()
    seen: list = []
    bus.subscribe(seen.append)
    engine = Engine(s, ex, store, bus, symbols=[A])
    await engine.start()
    t = T0
    for _ in range(steps):
        sim.set_price(A, "100", t)
        await engine.step(t, {})
        t += step_ms
    await store.close()
    return engine, seen


def _open_position(sim):
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))


async def _tp1_resting(sim):
    return sorted(o.price for o in await sim.fetch_open_orders(A)
                  if o.kind == "limit" and o.reduce_only and o.amount == Dec(3))


async def test_the_engine_reads_funding_at_most_every_ttl_and_prices_the_ladder_with_it():
    sim = new_sim()
    _open_position(sim)
    sim.set_funding_rate(A, "0.0002")
    ex = CountingFunding(sim)
    s = settings(enable_funding_aware_exit=True, funding_cache_ttl_sec=600)
    # 20 steps of 137.911 s (the last at 43.7 min): read at steps 0, 5, 10 and 15 (each the
    # first step at least 600 s after the previous read)
    engine, _ = await run_engine(ex, sim, s, steps=20)
    assert ex.calls == 4
    assert engine.funding == {A: pytest.approx(0.0002)}
    assert await _tp1_resting(sim) == [Dec("100.60")]
    # FUNDING_CACHE_TTL_SEC: a shorter TTL reads more often
    sim2 = new_sim()
    _open_position(sim2)
    ex2 = CountingFunding(sim2)
    await run_engine(ex2, sim2, settings(enable_funding_aware_exit=True, funding_cache_ttl_sec=60), steps=20)
    assert ex2.calls == 20
    # neither feature on: funding is never read
    sim3 = new_sim()
    ex3 = CountingFunding(sim3)
    await run_engine(ex3, sim3, settings(), steps=3)
    assert ex3.calls == 0


async def test_a_failed_funding_read_is_reported_and_does_not_stop_the_step():
    sim = new_sim()
    _open_position(sim)
    sim.set_funding_rate(A, "0.0002")
    ex = CountingFunding(sim, fail=True)
    s = settings(enable_funding_aware_exit=True, enable_dynamic_profit_floor=True)
    # unaligned 10.001 s steps: the read fails at 0 s, is retried at 30.003 s (after 30 s)
    engine, seen = await run_engine(ex, sim, s, steps=4, step_ms=10_001)  # no step raised
    assert any(isinstance(e, ErrorEvent) and e.where == "funding" for e in seen)
    assert engine.funding == {}
    # the position is still protected and its ladder rests, priced without funding
    orders = await sim.fetch_open_orders(A)
    assert any(o.kind == "stop_loss" for o in orders)
    assert await _tp1_resting(sim) == [Dec("100.80")]
    assert ex.calls == 2


async def test_the_simulator_shows_the_recorded_funding_event_due_next():
    sim = new_sim()
    events = [(T0 + 3_600_000, "0.0003"), (T0 + 9 * 3_600_000, "-0.0002")]
    sim.set_funding_events(A, events)
    r = (await sim.fetch_funding_rates([A]))[A]
    assert r.rate == Dec("0.0003") and r.funding_time_ms == T0 + 3_600_000
    assert r.next_funding_time_ms == T0 + 9 * 3_600_000
    # the clock moved past the first event (by another symbol's price): the next one shows
    sim.set_price("SOL/USDT:USDT", "50", T0 + 2 * 3_600_000)
    assert (await sim.fetch_funding_rates([A]))[A].rate == Dec("-0.0002")
    # A's candle over the second event settles it: nothing recorded after it
    sim.on_candle(A, T0 + 9 * 3_600_000 - 30_000, "100", "100", "100", "100")
    r = (await sim.fetch_funding_rates([A]))[A]
    assert r.rate == 0 and r.funding_time_ms is None


async def test_replay_style_recorded_funding_prices_the_engine_s_ladder():
    sim = new_sim()
    _open_position(sim)
    sim.set_funding_events(A, [(T0 + 3_600_000, "0.0004"), (T0 + 9 * 3_600_000, "0.00001")])
    s = settings(enable_funding_aware_exit=True)
    await run_engine(sim, sim, s, steps=3)
    assert await _tp1_resting(sim) == [Dec("100.60")]
