"""The soft-defensive exit (issue 18, forced and defensive exits).

Pure functions per setting, then the public interface: ProfileRunner cycles on the simulator
with an unaligned clock; every few cycles a signal update (a decision on a new candle) says the
long's signal broke while BTC fell. After the confirmations a reduce-only limit at the market
reduces the position, growing step by step; the hard stop stays and follows the size, and the
position closed this way is recorded with the reason "soft_defensive"."""

from __future__ import annotations

from decimal import Decimal as Dec
from types import SimpleNamespace as NS

import pytest

from engine.exits import soft_defensive as sd
from engine.runtime.events import FillEvent, OrderEvent, TradeClosed
from engine.runtime.positions import MarketContext
from engine.runtime.profile import CycleInput
from engine.runtime.snapshot import read_snapshot
from engine.settings import Settings

from test_runtime_protection import A, held_long_runner, market, T0

MIN = 60_000
M = market(A)


def prof(**kw):
    return Settings.defaults().side("long").model_copy(update=kw)


# -- pure functions --------------------------------------------------------------------------
def test_conditions_need_a_broken_signal_the_drawdown_and_btc_against():
    p = prof(soft_defensive_exit_min_drawdown=0.02, soft_defensive_exit_btc_against_return=0.003)
    assert sd.conditions_met(p, "long", 0.025, False, -0.004)
    assert not sd.conditions_met(p, "long", 0.025, True, -0.004)  # the signal still holds
    assert not sd.conditions_met(p, "long", 0.015, False, -0.004)
    assert not sd.conditions_met(p, "long", 0.025, False, -0.002)
    assert not sd.conditions_met(p, "long", 0.025, False, 0.004)  # BTC with the long
    assert sd.conditions_met(p, "short", 0.025, False, 0.004)
    assert not sd.conditions_met(p, "long", 0.025, False, None)
    assert sd.conditions_met(prof(soft_defensive_exit_min_drawdown=0.01), "long", 0.015, False, -0.004)
    assert sd.conditions_met(prof(soft_defensive_exit_btc_against_return=0.001), "long", 0.025, False, -0.002)
    assert sd.conditions_met(prof(soft_defensive_exit_btc_against_return=0.0), "long", 0.025, False, None)
    assert not sd.conditions_met(prof(soft_defensive_exit_enabled=False), "long", 0.5, False, -0.1)


def test_confirmations_start_it():
    assert not sd.started(prof(soft_defensive_exit_confirmations=2), 1)
    assert sd.started(prof(soft_defensive_exit_confirmations=2), 2)
    assert sd.started(prof(soft_defensive_exit_confirmations=1), 1)
    assert not sd.started(prof(soft_defensive_exit_confirmations=3), 2)


def test_the_share_starts_at_initial_grows_by_step_up_to_max():
    p = prof(soft_defensive_exit_initial_fraction=0.33, soft_defensive_exit_step_fraction=0.33,
             soft_defensive_exit_max_fraction=1.0)
    assert sd.next_fraction(p, 0) == pytest.approx(0.33)
    assert sd.next_fraction(p, 0.33) == pytest.approx(0.66)
    assert sd.next_fraction(p, 0.99) == 1.0
    assert sd.next_fraction(prof(soft_defensive_exit_initial_fraction=0.5), 0) == 0.5
    assert sd.next_fraction(prof(soft_defensive_exit_step_fraction=0.1), 0.33) == pytest.approx(0.43)
    assert sd.next_fraction(prof(soft_defensive_exit_max_fraction=0.5), 0.33) == 0.5


def test_steps_wait_for_the_reprice_interval():
    assert not sd.step_due(prof(soft_defensive_exit_reprice_minutes=6.0), 5 * MIN, 0)
    assert sd.step_due(prof(soft_defensive_exit_reprice_minutes=6.0), 6 * MIN, 0)
    assert sd.step_due(prof(soft_defensive_exit_reprice_minutes=3.0), 3 * MIN, 0)


def test_the_order_closes_the_missing_share_rounded_down_at_a_passive_price():
    o = sd.close_order("long", Dec("97.005"), Dec(10), Dec(10), 0.33, M)
    assert (o.tag, o.price, o.amount) == ("soft_defensive", Dec("97.01"), Dec(3))
    assert sd.close_order("long", Dec(97), Dec(10), Dec(7), 0.66, M).amount == Dec(3)  # 6 - 3 closed
    assert sd.close_order("long", Dec(97), Dec(10), Dec(4), 1.0, M).amount == Dec(4)
    assert sd.close_order("long", Dec(97), Dec(10), Dec(7), 0.33, M) is None  # already done
    assert sd.close_order("short", Dec("103.005"), Dec(10), Dec(10), 0.5, M).price == Dec("103.00")
    # a remainder the dust rule would close at market goes with this order
    p = prof(dust_position_notional=500.0)
    assert sd.close_order("long", Dec(97), Dec(10), Dec(10), 0.5, M, p).amount == Dec(10)
    assert sd.close_order("long", Dec(97), Dec(10), Dec(10), 0.5, M, prof()).amount == Dec(5)


# -- through the public interface ------------------------------------------------------------
def settings(**kw) -> Settings:
    s = Settings.defaults()
    return Settings(s.glob, {side: p.model_copy(update=kw) for side, p in s.profiles.items()})


BASE = dict(hard_stop_loss_pct=0.05, hard_stop_loss_atr_enabled=False, hard_stop_loss_min_emergency_pct=0.08,
            enable_controlled_loss_exit=False, exit_coverage_alert_minutes=0.0,
            soft_defensive_exit_confirmations=2, soft_defensive_exit_reprice_minutes=6.0)


def decision(ts, valid=False, btc=-0.005):
    return NS(symbol=A, ts_ms=ts, valid=valid, benchmark=NS(ret30=btc))


async def run(s, minutes, *, valid=False, btc=-0.005, wick_every=0, step_ms=137_911):
    """A long 10 @ 100 with the price at 97.005; a signal update every 5 minutes (a new
    candle); with `wick_every`, a candle up to 97.5 every that many minutes (it fills a
    resting sell at the market)."""
    runner, sim, store, seen = await held_long_runner(s)
    t, log, last_wick = T0, [], T0
    while t < T0 + minutes * MIN:
        if wick_every and t - last_wick >= wick_every * MIN:
            last_wick = t
            sim.on_candle(A, t - 60_000, "97", "97.5", "96.9", "97")
        sim.set_price(A, "97", t)
        candle = (t - T0) // (5 * MIN)
        decisions = {A: decision(T0 + candle * 5 * MIN, valid, btc)}
        snap = await read_snapshot(sim, [A], t)
        await runner.cycle(CycleInput(snap, {A: M}, decisions, {A: MarketContext()}, None, None, set(),
                                      new_candle=False))
        orders = await sim.fetch_open_orders()
        pos = await sim.fetch_positions()
        log.append((t, pos[0].contracts if pos else Dec(0), orders))
        t += step_ms
    await store.close()
    return sim, seen, log


def _placed(seen):
    return [e for e in seen if isinstance(e, OrderEvent) and e.purpose == "soft_defensive" and e.action == "placed"]


async def test_after_the_confirmations_the_position_is_reduced_and_the_stop_follows():
    sim, seen, log = await run(settings(**BASE), minutes=30)
    placed = _placed(seen)
    assert placed
    # the second signal update (candle 2, at 5 min) confirms; not before
    assert 5 * MIN <= placed[0].ts_ms - T0 < 8 * MIN
    assert placed[0].amount == Dec(3) and placed[0].price == Dec("97.01")  # 33% of 10, at the market
    # re-priced every 6 minutes, the share growing: 3, then 6 in all, then 9
    assert [e.amount for e in placed][:3] == [Dec(3), Dec(6), Dec(9)]
    assert all(b.ts_ms - a.ts_ms >= 6 * MIN for a, b in zip(placed, placed[1:]))
    for t, contracts, orders in log:
        assert [o.amount for o in orders if o.kind == "stop_loss"] == [contracts], (t - T0) / MIN


async def test_fills_reduce_the_position_to_the_end_and_the_trade_says_soft_defensive():
    s = settings(**BASE)
    sim, seen, log = await run(s, minutes=60, wick_every=4)
    fills = [e for e in seen if isinstance(e, FillEvent) and e.purpose == "soft_defensive"]
    assert len(fills) >= 2  # step by step
    sizes = [c for _, c, _ in log]
    assert sizes == sorted(sizes, reverse=True) and 0 < sizes[len(sizes) // 3] < 10
    for t, contracts, orders in log:
        assert [o.amount for o in orders if o.kind == "stop_loss"] == ([contracts] if contracts else []), \
            (t - T0) / MIN
    assert await sim.fetch_positions() == []
    [trade] = [e for e in seen if isinstance(e, TradeClosed)]
    assert trade.reason == "soft_defensive"


async def test_max_fraction_bounds_what_it_closes():
    sim, seen, log = await run(settings(**BASE, soft_defensive_exit_max_fraction=0.5), minutes=60, wick_every=4)
    assert log[-1][1] == 5  # half of 10 closed, the rest kept
    assert max(e.amount for e in _placed(seen)) <= 5


@pytest.mark.parametrize("kw, valid, btc", [({}, True, -0.005), ({}, False, 0.001),
                                            ({"soft_defensive_exit_enabled": False}, False, -0.005),
                                            ({"soft_defensive_exit_min_drawdown": 0.05}, False, -0.005)],
                         ids=["signal-holds", "btc-not-against", "off", "drawdown-too-small"])
async def test_no_soft_defensive_exit_without_its_conditions(kw, valid, btc):
    sim, seen, log = await run(settings(**{**BASE, **kw}), minutes=30, valid=valid, btc=btc)
    assert not _placed(seen) and log[-1][1] == 10
