"""Volatility and BTC-risk scaling (settings group `volatility`, issue 18).

Per setting: the pure function in engine.risk.volatility, and a ProfileRunner cycle on the
simulator where changing the value changes an order's size or price (or the averaging
decision). The hard margin caps hold with the largest multiplier; at the defaults nothing
changes (control).
"""

from __future__ import annotations

import math
from decimal import Decimal as Dec
from types import SimpleNamespace as NS

import pytest

from engine.exchange.sim import SimulatedExchange
from engine.exchange.types import Balance, BookTop, Market, Order, Position
from engine.risk.averaging import required_drawdown
from engine.risk.volatility import (
    btc_risk,
    entry_scaling,
    ladder_volatility_multiplier,
    recovery_stage_drawdown,
    volatility_budget_multiplier,
)
from engine.runtime.actions import PlaceEntry
from engine.runtime.events import EventBus, OrderEvent
from engine.runtime.positions import MarketContext
from engine.runtime.profile import CycleInput, ProfileRunner
from engine.runtime.snapshot import Snapshot, read_snapshot
from engine.settings import Settings
from engine.store.state import PositionMeta, StateStore

SYM = "ETH/USDT:USDT"
M = Market(SYM, "ETH-USDT", "ETH", "USDT", contract_size=Dec(1), amount_step=Dec("0.001"), price_step=Dec("0.01"),
           min_amount=Dec("0.001"), min_notional=None)
T0 = 10 * 86_400_000
STEP = 300_000  # 5m


def prof(side="long", **kw):
    return Settings.defaults().side(side).model_copy(update=kw)


def feats(volatility=0.0012, daily_volatility=0.035):
    return NS(volatility=volatility, daily_volatility=daily_volatility)


def bench(ts=T0, close=100.0, ret30=0.0, ret60=0.0, volatility=0.001):
    return NS(ts_ms=ts, close=close, ret30=ret30, ret60=ret60, volatility=volatility)


def decision(f=None, b=None):
    return NS(symbol=SYM, score=1.0, valid=True, entry_valid=True, add_valid=True, gates=(),
              features=f, benchmark=b)


def _select(decisions, ctx, p):
    chosen = [d for d in decisions if d.symbol == SYM]
    return NS(decisions=chosen, chosen=chosen, chosen_symbols=tuple(d.symbol for d in chosen))


async def entries(p, d, *, side="long", runner=None, now=T0):
    """One ProfileRunner cycle on the simulator; the entry orders it planned (and the order
    events' reasons)."""
    sim = SimulatedExchange([M])
    sim.set_price(SYM, "100")
    store = await StateStore.open(":memory:", inline=True)
    bus = EventBus()
    events = []
    bus.subscribe(lambda e: events.append(e) if isinstance(e, OrderEvent) else None)
    if runner is None:
        runner = ProfileRunner(side, p, sim, store, bus, [SYM], Settings.defaults().glob)
    else:
        runner.exchange, runner.store, runner.bus = sim, store, bus
        runner.executor = type(runner.executor)(sim, store, bus, side)
        runner.state.ladders.clear()
    snap = await read_snapshot(sim, [SYM], now)
    ci = CycleInput(snap, {SYM: M}, {SYM: d}, {SYM: MarketContext()}, _select, lambda **kw: None, set())
    result = await runner.cycle(ci)
    await store.close()
    rungs = [a for a in result.actions if isinstance(a, PlaceEntry)]
    return rungs, [e.reason for e in events if e.purpose == "entry"], runner


def size(rungs):
    return float(sum((a.amount * a.price for a in rungs), Dec(0)))


def deepest(rungs):
    return rungs[-1].price


# -- control: at the defaults, nothing changes ------------------------------------------------
async def test_control_defaults_change_nothing():
    p = prof()
    plain, reasons, _ = await entries(p, decision())
    wild, reasons_wild, _ = await entries(
        p, decision(feats(0.01, 0.3), bench(ret30=-0.05, ret60=-0.05, volatility=0.01)))
    assert [(a.price, a.amount) for a in plain] == [(a.price, a.amount) for a in wild]
    assert plain and all(r == "" for r in reasons + reasons_wild)
    assert all(a.reason == "" for a in plain + wild)
    # the bid is 100.00 in the simulator: rungs at 0 % and 1 % below it
    assert [a.price for a in plain] == [Dec("100.00"), Dec("99.00")]


def test_defaults_of_the_switches_are_off():
    p = prof()
    s = entry_scaling(p, "long", 0.05, 0.5, -0.5, 0.5)
    assert s.budget == 1.0 and s.ladder == 1.0 and s.reason() == ""


# -- volatility-targeted sizing ---------------------------------------------------------------
def test_volatility_budget_multiplier_is_reference_over_daily_volatility_clamped():
    p = prof(enable_volatility_targeted_sizing=True)
    assert volatility_budget_multiplier(p, 0.035) == pytest.approx(1.0)
    assert volatility_budget_multiplier(p, 0.05) == pytest.approx(0.7)
    assert volatility_budget_multiplier(p, 0.5) == pytest.approx(0.65)  # MIN
    assert volatility_budget_multiplier(p, 0.001) == pytest.approx(1.5)  # MAX
    assert volatility_budget_multiplier(p, None) == 1.0
    assert volatility_budget_multiplier(p, math.nan) == 1.0
    assert volatility_budget_multiplier(prof(enable_volatility_targeted_sizing=True,
                                             daily_volatility_reference=0.07), 0.05) == pytest.approx(1.4)
    assert volatility_budget_multiplier(prof(enable_volatility_targeted_sizing=True,
                                             min_volatility_budget_multiplier=0.2), 0.5) == pytest.approx(0.2)
    assert volatility_budget_multiplier(prof(enable_volatility_targeted_sizing=True,
                                             max_volatility_budget_multiplier=1.2), 0.001) == pytest.approx(1.2)
    assert volatility_budget_multiplier(prof(), 0.5) == 1.0


async def test_volatility_targeted_sizing_scales_the_entry_size():
    d = decision(feats(daily_volatility=0.07))  # twice the reference: half the budget
    base, _, _ = await entries(prof(), d)
    on, reasons, _ = await entries(prof(enable_volatility_targeted_sizing=True), d)
    assert size(on) < size(base)
    assert size(on) == pytest.approx(size(base) * 0.65, rel=0.05)  # MIN 0.65 binds (0.5)
    low, _, _ = await entries(prof(enable_volatility_targeted_sizing=True, min_volatility_budget_multiplier=0.5), d)
    assert size(low) == pytest.approx(size(base) * 0.5, rel=0.05)
    ref, _, _ = await entries(prof(enable_volatility_targeted_sizing=True, daily_volatility_reference=0.056), d)
    assert size(ref) == pytest.approx(size(base) * 0.8, rel=0.05)
    assert "volatility_budget x0.650" in reasons[0] and on[0].reason == reasons[0]


async def test_the_position_margin_cap_holds_with_the_largest_budget_multiplier():
    p = prof(enable_volatility_targeted_sizing=True, max_volatility_budget_multiplier=10.0)
    calm = decision(feats(daily_volatility=0.0001))
    rungs, _, _ = await entries(p, calm)
    base, _, _ = await entries(prof(), calm)
    lev = Dec(1)  # the simulator's leverage is not read: 1x
    margin = sum((a.amount * a.price for a in rungs), Dec(0)) / lev
    assert margin <= Dec(10000) * Dec(str(p.ema_max_position_margin_fraction))  # 300 USDT
    assert size(rungs) > size(base)  # it was lifted, up to the cap
    mid, _, _ = await entries(prof(enable_volatility_targeted_sizing=True, max_volatility_budget_multiplier=1.2), calm)
    assert size(base) < size(mid) < size(rungs)


async def test_the_total_margin_cap_holds_with_the_largest_multiplier():
    p = prof(enable_volatility_targeted_sizing=True, max_volatility_budget_multiplier=10.0,
             ema_max_position_margin_fraction=1.0, ema_max_total_margin_fraction=0.05)
    rungs, _, _ = await entries(p, decision(feats(daily_volatility=0.0001)))
    assert sum((a.amount * a.price for a in rungs), Dec(0)) <= Dec(500)  # 1x


# -- volatility-adjusted ladders --------------------------------------------------------------
def test_ladder_volatility_multiplier_is_volatility_over_reference_clamped():
    p = prof(enable_volatility_adjusted_ladders=True)
    assert ladder_volatility_multiplier(p, 0.0024) == pytest.approx(2.0)
    assert ladder_volatility_multiplier(p, 0.1) == pytest.approx(2.5)  # MAX
    assert ladder_volatility_multiplier(p, 0.0001) == pytest.approx(0.75)  # MIN
    assert ladder_volatility_multiplier(prof(enable_volatility_adjusted_ladders=True, volatility_reference=0.0024),
                                        0.0024) == pytest.approx(1.0)
    assert ladder_volatility_multiplier(prof(enable_volatility_adjusted_ladders=True,
                                             max_ladder_volatility_multiplier=1.5), 0.1) == pytest.approx(1.5)
    assert ladder_volatility_multiplier(prof(enable_volatility_adjusted_ladders=True,
                                             min_ladder_volatility_multiplier=0.5), 0.0001) == pytest.approx(0.5)
    assert ladder_volatility_multiplier(p, None) == 1.0
    assert ladder_volatility_multiplier(prof(), 0.1) == 1.0


async def test_volatility_adjusted_ladders_move_the_deep_rung():
    d = decision(feats(volatility=0.0024))  # twice the reference
    base, _, _ = await entries(prof(), d)
    wide, reasons, _ = await entries(prof(enable_volatility_adjusted_ladders=True), d)
    assert deepest(base) == Dec("99.00") and deepest(wide) == Dec("98.00")  # 1 % -> 2 %
    assert wide[0].price == base[0].price  # the 0 % rung stays at the bid
    capped, _, _ = await entries(prof(enable_volatility_adjusted_ladders=True, max_ladder_volatility_multiplier=1.5), d)
    assert deepest(capped) == Dec("98.50")
    ref, _, _ = await entries(prof(enable_volatility_adjusted_ladders=True, volatility_reference=0.0048), d)
    assert deepest(ref) == Dec("99.25")  # x0.5 -> MIN 0.75: 0.75 %
    calm = decision(feats(volatility=0.0001))
    narrow, _, _ = await entries(prof(enable_volatility_adjusted_ladders=True, min_ladder_volatility_multiplier=0.5),
                                 calm)
    assert deepest(narrow) == Dec("99.50")
    assert "volatility_ladder x2.000" in reasons[0]


async def test_a_short_ladder_widens_above_the_ask():
    d = decision(feats(volatility=0.0024))
    base, _, _ = await entries(prof("short"), d, side="short")
    wide, _, _ = await entries(prof("short", enable_volatility_adjusted_ladders=True), d, side="short")
    assert deepest(wide) > deepest(base)


# -- volatility recovery stages ---------------------------------------------------------------
def test_recovery_stage_drawdown_is_daily_volatility_times_fraction_times_stage():
    p = prof(enable_volatility_recovery_stages=True, averaging_drawdown_daily_volatility_fraction=0.5)
    assert recovery_stage_drawdown(p, 1, 0.04) == pytest.approx(0.02)
    assert recovery_stage_drawdown(p, 2, 0.04) == pytest.approx(0.04)
    assert recovery_stage_drawdown(prof(), 2, 0.04) == 0.0
    assert recovery_stage_drawdown(p, 1, None) == 0.0


def test_recovery_stages_are_a_floor_not_added_to_the_min_daily_volatility_floor():
    off = prof()
    on = prof(enable_volatility_recovery_stages=True)  # same 0.18 as the always-on floor
    for stage in (1, 2):
        assert required_drawdown(on, stage, None, 0.2) == pytest.approx(required_drawdown(off, stage, None, 0.2))
    wide = prof(enable_volatility_recovery_stages=True, averaging_drawdown_daily_volatility_fraction=0.5)
    assert required_drawdown(wide, 2, None, 0.1) == pytest.approx(0.1)  # 0.1 x 0.5 x 2


async def test_volatility_recovery_stages_hold_back_an_add():
    settings = Settings.defaults()
    d = NS(symbol=SYM, score=0.1, valid=True, entry_valid=True, add_valid=True, gates=_recovered_gates(),
           features=feats(daily_volatility=0.1), benchmark=None)

    async def adds(p):
        store = await StateStore.open(":memory:", inline=True)
        runner = ProfileRunner("long", p, None, store, EventBus(), [SYM], settings.glob)
        runner.state.positions[SYM] = PositionMeta(SYM, "long", 0, Dec(1000), contracts=Dec(10),
                                                   entry_price=Dec(100))
        snap = Snapshot(30 * 3_600_000, Balance(Dec(10000), Dec(9000), Dec(1000), Dec(0)),
                        {SYM: Position(SYM, "long", Dec(10), Dec(100), Dec(97), Dec(0), None, None)},
                        [Order("x", 1, SYM, "sell", "limit", Dec(101), None, Dec(10), Dec(0), "open", True, False, 0)],
                        {SYM: BookTop("sim", SYM, Dec("96.99"), Dec("97.01"), None, None, 0, 0)}, {SYM: Dec(5)})
        ci = CycleInput(snap, {SYM: M}, {SYM: d}, {SYM: MarketContext(atr_rate=0.001)}, None, None, set())
        out = runner._averaging(ci, Dec(0))
        await store.close()
        return out

    # drawdown 3 %: the always-on floor needs 0.1 x 0.18 = 1.8 %
    assert await adds(prof())
    assert await adds(prof(enable_volatility_recovery_stages=True))  # 0.18: the same floor
    assert not await adds(prof(enable_volatility_recovery_stages=True,
                               averaging_drawdown_daily_volatility_fraction=0.4))  # needs 4 %
    assert await adds(prof(enable_volatility_recovery_stages=True,
                           averaging_drawdown_daily_volatility_fraction=0.25))  # needs 2.5 %


def _recovered_gates():
    from engine.settings.strategy_doc import pipeline_gates

    return tuple(g._replace(passed=True) for g in pipeline_gates())


# -- BTC risk ---------------------------------------------------------------------------------
def test_btc_risk_cuts_on_a_drop_against_the_side_and_on_high_volatility():
    p = prof(enable_btc_risk_multiplier=True)
    assert btc_risk(p, "long", -0.005, 0.001).budget == pytest.approx(0.7)
    assert btc_risk(p, "long", -0.004, 0.001).budget == pytest.approx(0.7)  # at the threshold
    assert btc_risk(p, "long", -0.003, 0.001).budget == 1.0
    assert btc_risk(p, "long", 0.005, 0.001).budget == 1.0
    assert btc_risk(p, "short", 0.005, 0.001).budget == pytest.approx(0.7)  # BTC rising against a short
    assert btc_risk(p, "short", -0.005, 0.001).budget == 1.0
    assert btc_risk(p, "long", 0.0, 0.002).budget == pytest.approx(0.8)
    both = btc_risk(p, "long", -0.005, 0.002)
    assert both.budget == pytest.approx(0.56)  # 0.7 x 0.8, above the 0.55 floor
    assert both.ladder == pytest.approx(1.44)  # 1 + (1 - 0.56)
    assert btc_risk(prof(enable_btc_risk_multiplier=True, btc_risk_min_budget_multiplier=0.6),
                    "long", -0.005, 0.002).budget == pytest.approx(0.6)
    assert btc_risk(prof(enable_btc_risk_multiplier=True, btc_risk_max_ladder_multiplier=1.2),
                    "long", -0.005, 0.002).ladder == pytest.approx(1.2)
    assert btc_risk(prof(enable_btc_risk_multiplier=True, btc_risk_drop_threshold=-0.01),
                    "long", -0.005, 0.001).budget == 1.0
    assert btc_risk(prof(enable_btc_risk_multiplier=True, btc_risk_high_vol_threshold=0.003),
                    "long", 0.0, 0.002).budget == 1.0
    assert btc_risk(prof(enable_btc_risk_multiplier=True, btc_risk_drop_budget_multiplier=0.9),
                    "long", -0.005, 0.001).budget == pytest.approx(0.9)
    assert btc_risk(prof(enable_btc_risk_multiplier=True, btc_risk_vol_budget_multiplier=0.5,
                         btc_risk_min_budget_multiplier=0.0), "long", 0.0, 0.002).budget == pytest.approx(0.5)
    assert btc_risk(p, "long", None, None).budget == 1.0
    assert btc_risk(prof(), "long", -0.5, 0.5).budget == 1.0


async def test_btc_volatility_cuts_the_budget_and_widens_the_ladder():
    d = decision(feats(), bench(volatility=0.002))
    base, _, _ = await entries(prof(), d)
    on, reasons, _ = await entries(prof(enable_btc_risk_multiplier=True), d)
    assert size(on) == pytest.approx(size(base) * 0.8, rel=0.05)
    assert deepest(on) == Dec("98.80")  # 1 % x 1.2
    assert "btc_volatility" in reasons[0] and "btc_risk budget x0.800" in reasons[0]
    higher, _, _ = await entries(prof(enable_btc_risk_multiplier=True, btc_risk_high_vol_threshold=0.003), d)
    assert size(higher) == size(base)
    half, _, _ = await entries(prof(enable_btc_risk_multiplier=True, btc_risk_vol_budget_multiplier=0.5,
                                    btc_risk_min_budget_multiplier=0.0), d)
    assert size(half) == pytest.approx(size(base) * 0.5, rel=0.05)
    floor, _, _ = await entries(prof(enable_btc_risk_multiplier=True, btc_risk_vol_budget_multiplier=0.3), d)
    assert size(floor) == pytest.approx(size(base) * 0.55, rel=0.05)  # BTC_RISK_MIN_BUDGET_MULTIPLIER
    capped, _, _ = await entries(prof(enable_btc_risk_multiplier=True, btc_risk_vol_budget_multiplier=0.3,
                                      btc_risk_max_ladder_multiplier=1.1), d)
    assert deepest(capped) == Dec("98.90")  # 1.45 capped to 1.1


async def test_a_btc_drop_cuts_longs_not_shorts():
    # BTC_RISK_RETURN_WINDOW=6 candles of 5m = 30 min: BTC's RS_FAST_WINDOW return
    d = decision(feats(), bench(ret30=-0.006, ret60=0.0))
    p_long = prof(enable_btc_risk_multiplier=True, btc_risk_return_window=6)
    base, _, _ = await entries(prof(), d)
    cut, reasons, _ = await entries(p_long, d)
    assert size(cut) == pytest.approx(size(base) * 0.7, rel=0.05)
    assert "btc_return -0.00600<=-0.004" in reasons[0]
    lax, _, _ = await entries(prof(enable_btc_risk_multiplier=True, btc_risk_return_window=6,
                                   btc_risk_drop_threshold=-0.01), d)
    assert size(lax) == size(base)
    soft, _, _ = await entries(prof(enable_btc_risk_multiplier=True, btc_risk_return_window=6,
                                    btc_risk_drop_budget_multiplier=0.9), d)
    assert size(soft) == pytest.approx(size(base) * 0.9, rel=0.05)
    # window 12 candles = 60 min: the 60-minute return (flat) decides, no cut
    w12, _, _ = await entries(prof(enable_btc_risk_multiplier=True, btc_risk_return_window=12), d)
    assert size(w12) == size(base)
    short_base, _, _ = await entries(prof("short"), d, side="short")
    short, _, _ = await entries(prof("short", enable_btc_risk_multiplier=True, btc_risk_return_window=6), d,
                                side="short")
    assert size(short) == size(short_base)  # BTC falling is not against a short
    up = decision(feats(), bench(ret30=0.006))
    short_up, _, _ = await entries(prof("short", enable_btc_risk_multiplier=True, btc_risk_return_window=6), up,
                                   side="short")
    assert size(short_up) == pytest.approx(size(short_base) * 0.7, rel=0.05)


async def test_the_btc_return_over_a_window_of_its_own_comes_from_the_closes_seen():
    """BTC_RISK_RETURN_WINDOW=3 (15 min, no precomputed return): the runner measures BTC from
    the benchmark closes of the candles it decided on."""
    p = prof(enable_btc_risk_multiplier=True, btc_risk_return_window=3)
    base, _, _ = await entries(prof(), decision(feats(), bench()))
    first, _, runner = await entries(p, decision(feats(), bench(ts=T0, close=100.0)), now=T0)
    assert size(first) == size(base)  # no close 3 candles back yet: no cut
    for k in (1, 2):
        await entries(p, decision(feats(), bench(ts=T0 + k * STEP, close=100.0)), runner=runner,
                      now=T0 + k * STEP)
    later, reasons, _ = await entries(p, decision(feats(), bench(ts=T0 + 3 * STEP, close=99.0)),
                                      runner=runner, now=T0 + 3 * STEP)
    assert size(later) == pytest.approx(size(base) * 0.7, rel=0.05)  # -1 % in 15 min
    assert f"btc_return {math.log(0.99):.5f}" in reasons[0]
