"""EMA_AVERAGING_POWER through a profile runner cycle (issue 18): the add is the current
notional x EMA_AVERAGING_BASE_FRACTION x growth ** (power - 1), growth = the position's cost
notional over its initial notional (>= 1), and the hard margin caps still apply after it.

A long 10 @ 100 on the simulator at 97 (1% per stage, interval 0): stage 1 is placed and fills
on a later candle (the position grows to 15 contracts at ~99); stage 2 is sized on the grown
position. The clock is unaligned and jittered (steps of 43..61 s)."""

from __future__ import annotations

from decimal import Decimal as Dec

import pytest
from types import SimpleNamespace as NS

from engine.runtime.events import OrderEvent
from engine.runtime.positions import MarketContext
from engine.runtime.profile import CycleInput
from engine.runtime.snapshot import read_snapshot

from test_account_pnl_engine import settings
from test_runtime_protection import A, held_long_runner, market, T0
from test_runtime_regressions import recovered_gates


async def adds(power: float, daily_volatility: float | None = None, failed_gate: str = "",
               **kw) -> tuple[list[Dec], Dec]:
    """The amounts of the adds placed (stage 1, stage 2) and the position size before stage 2
    (``daily_volatility``: the coin's measured daily volatility in the decision's features;
    ``failed_gate``: a gate of the decision that failed)."""
    s = settings(ema_averaging_interval_hours=0.0, ema_averaging_power=power, **kw)
    runner, sim, store, seen = await held_long_runner(s)
    none = lambda decisions, ctx, prof: NS(decisions=[], chosen_symbols=(), chosen=[])  # noqa: E731
    t = T0 + 1_337
    size = Dec(0)
    # (price, new candle): place the stop and exits; add 1; (a candle through the add fills
    # it); re-plan the exits for the grown size; add 2
    steps = [("97", False), ("97", True), ("96.9", False), ("96.9", True)]
    now = t
    for k, (px, new_candle) in enumerate(steps):
        if k == 2:  # the 5-minute candle after the add trades through it (low 96.8)
            start = now - now % 300_000 + 300_000
            sim.on_candle(A, start, "97", "97.1", "96.8", "96.9")
            now = start + 300_000 + 2_917
        now += 43_001 + (k * k * 4_561) % 17_000
        sim.set_price(A, px, now)
        if k == 3:
            size = (await sim.fetch_positions())[0].contracts
        snap = await read_snapshot(sim, [A], now)
        d = NS(symbol=A, ts_ms=now - 97_000, score=0.1, valid=True, entry_valid=True, add_valid=True,
               gates=recovered_gates(**({failed_gate: True} if failed_gate else {})), benchmark=None,
               features=None if daily_volatility is None else NS(daily_volatility=daily_volatility))
        await runner.cycle(CycleInput(snap, {A: market(A)}, {A: d}, {A: MarketContext(atr_rate=0.001)}, none,
                                      lambda **kw: None, set(), new_candle=new_candle))
    await store.close()
    placed = [e.amount for e in seen if isinstance(e, OrderEvent) and e.purpose == "add" and e.action == "placed"]
    return placed, size


async def test_power_one_leaves_the_add_at_the_base_fraction_of_the_current_notional():
    (first, second), size = await adds(1.0)
    assert size == 15 and first == 5  # 10 x 97 x 0.5 = 485 USDT at 97
    assert second == 7  # 15 x 96.9 x 0.5 = 726.75 USDT -> 7 contracts (rounded down)


async def test_power_two_grows_the_add_on_a_grown_position_and_a_half_shrinks_it():
    (first1, second1), _ = await adds(1.0)
    (first2, second2), size = await adds(2.0)
    (first_h, second_h), _ = await adds(0.5)
    # stage 1: the position has not grown (cost notional = initial notional), the power does nothing
    assert first1 == first2 == first_h == 5
    # stage 2: growth = (10 x 100 + 5 x 97) / 1000 = 1.485
    assert size == 15
    assert second2 == 11  # 726.75 x 1.485 = 1079.2 USDT -> 11.1 contracts at 96.9, rounded down
    assert second_h == 6  # 726.75 / sqrt(1.485) = 596.4 USDT -> 6.15 contracts, rounded down
    assert second_h < second1 < second2


async def test_the_hard_margin_cap_still_binds_after_the_power():
    # position margin cap: 2.4% of 100k equity = 2400 USDT at 1x, the position holds 15 x 96.9
    capped = dict(ema_max_position_margin_fraction=0.024, leverage=1.0)
    (_, second1), _ = await adds(1.0, **capped)
    (_, second2), _ = await adds(2.0, **capped)
    (_, second5), _ = await adds(5.0, **capped)
    assert second1 == 7  # under the cap: unchanged
    # uncapped, power 2 would add 11 and power 5 far more: the cap, not the power, decides
    assert second2 == second5 == 9


@pytest.mark.parametrize("kw", [
    {"ema_averaging_enabled": False},
    {"ema_averaging_drawdown_step": 0.05},
    {"ema_averaging_min_drawdown_step": 0.05},
    {"ema_averaging_atr_multiplier": 60.0, "ema_averaging_atr_enabled": True},
    {"ema_averaging_atr_enabled": True, "ema_averaging_atr_multiplier": 60.0},
    {"ema_averaging_min_atr_multiplier": 60.0},
    {"no_more_averaging_after_minutes": 0.01},
    {"ema_averaging_base_fraction": 0.25},
    {"ema_max_averaging_stages": 1},
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
async def test_an_averaging_setting_changes_the_adds(kw):
    """Issue 18: each averaging setting (the last one named) changes the adds of the scenario
    above against the same settings without it (a value that reaches no add decision fails)."""
    *_, last = kw
    base = {k: v for k, v in kw.items() if k != last}
    assert (await adds(1.0, **kw))[0] != (await adds(1.0, **base))[0]


async def test_the_daily_volatility_floor_of_the_drawdown_step_changes_the_adds():
    """EMA_AVERAGING_MIN_DAILY_VOLATILITY_FRACTION: a coin moving 3% a day needs 0.18 x 3% =
    0.54% per stage by default (the 1% step decides); at 2.0 it needs 6%, so the 3% and 3.1%
    drawdowns of the scenario add nothing."""
    assert (await adds(1.0, daily_volatility=0.03))[0] == (await adds(1.0))[0] == [5, 7]
    assert (await adds(1.0, daily_volatility=0.03, ema_averaging_min_daily_volatility_fraction=2.0))[0] == []
    assert (await adds(1.0, ema_averaging_min_daily_volatility_fraction=2.0))[0] == [5, 7]  # no measure, no floor


async def test_averaging_waits_for_the_pullback_to_recover_only_when_required():
    """EMA_AVERAGING_REQUIRE_PULLBACK_RECOVERY: with the pullback gap still failing, no add by
    default; with the requirement off the same drawdowns add as usual."""
    assert (await adds(1.0, failed_gate="pullback_gap"))[0] == []
    off = await adds(1.0, failed_gate="pullback_gap", ema_averaging_require_pullback_recovery=False)
    assert off[0] == [5, 7]
