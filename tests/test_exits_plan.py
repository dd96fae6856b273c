"""Hard stop placement, the adaptive exit ladder, runner, breakeven and time exits."""

from decimal import Decimal as Dec

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from engine.exchange.types import Market
from engine.exits.hard_stop import (
    breakeven_trigger, emergency_breached, stop_amount, stop_distance, stop_is_protective, stop_trigger,
)
from engine.exits.ladder import (
    RunnerState, breakeven_due, exit_mode, exit_plan, fee_floor, runner_step, time_exit_fraction,
    time_exit_order, trailing_pullback,
)
from engine.settings import ProfileSettings

P = ProfileSettings()
M = Market("ETH/USDT:USDT", "ETH-USDT", "ETH", "USDT", contract_size=Dec("0.01"), amount_step=Dec("1"),
           price_step=Dec("0.01"), min_amount=Dec("1"), min_notional=None)


@pytest.mark.parametrize("atr, expected", [
    (None, 0.02), (0.005, 0.02), (0.012, 0.024), (0.02, 0.03), (float("nan"), 0.02),
])
def test_stop_distance_atr_widened_but_capped(atr, expected):
    assert stop_distance(P, atr) == pytest.approx(expected)


def test_stop_trigger_rounds_toward_market():
    assert stop_trigger("long", Dec("2000.03"), 0.02, M) == Dec("1960.03")  # 1960.0294 -> up
    assert stop_trigger("short", Dec("2000.03"), 0.02, M) == Dec("2040.03")  # 2040.0306 -> down
    assert stop_is_protective("long", Dec("1960"), Dec("2000"))
    assert not stop_is_protective("short", Dec("1960"), Dec("2000"))
    assert breakeven_trigger("long", Dec("2000"), 0.0002, M) == Dec("2000.40")


@hsettings(max_examples=200, deadline=None)
@given(contracts=st.decimals(min_value=0, max_value=10**6, places=3))
def test_stop_never_larger_than_position(contracts):
    assert stop_amount(contracts, M) <= contracts


def test_emergency():
    assert emergency_breached(P, "long", Dec("100"), Dec("96"))
    assert not emergency_breached(P, "long", Dec("100"), Dec("96.5"))
    assert emergency_breached(P, "short", Dec("100"), Dec("104"))


def test_exit_mode_by_growth():
    assert exit_mode(P, Dec("100"), Dec("100")) == "normal"
    assert exit_mode(P, Dec("130"), Dec("100")) == "medium"
    assert exit_mode(P, Dec("180"), Dec("100")) == "heavy"


def test_normal_plan_has_fixed_part_and_runner():
    plan = exit_plan(P, "long", Dec("2000"), Dec("100"), M, mode="normal", hours_held=0, atr_rate=0.004)
    tags = [o.tag for o in plan.orders]
    assert tags == ["tp1", "runner"]
    tp1, runner = plan.orders
    assert tp1.amount == Dec("30") and tp1.price == Dec("2016.00")  # +0.8%
    assert runner.amount == Dec("70") and runner.price == Dec("2100.00")  # +5%
    assert plan.runner is not None and plan.runner.activation == 0.02
    assert plan.runner.pullback == pytest.approx(0.01)
    assert sum(o.amount for o in plan.orders) == Dec("100")


def test_heavy_plan_is_a_plain_ladder_for_shorts():
    plan = exit_plan(P, "short", Dec("2000"), Dec("100"), M, mode="heavy", hours_held=0)
    assert [o.price for o in plan.orders] == [Dec("1994.00"), Dec("1984.00"), Dec("1970.00")]
    assert [o.amount for o in plan.orders] == [Dec("60"), Dec("25"), Dec("15")]
    assert plan.runner is None


def test_plain_ladder_with_runner_disabled_and_fee_floor():
    p = ProfileSettings(ema_exit_trailing_enabled=False, ema_exit_runner_enabled=False,
                        min_profit_fee_multiplier=50)  # floor = 0.0002 x 50 = 1%
    plan = exit_plan(p, "long", Dec("2000"), Dec("100"), M, mode="normal", hours_held=0)
    assert fee_floor(p) == pytest.approx(0.01)
    assert [o.price for o in plan.orders] == [Dec("2020.00"), Dec("2032.00"), Dec("2060.00"), Dec("2100.00")]
    assert sum(o.amount for o in plan.orders) == Dec("100")


def test_decay_caps_markups_and_drops_runner():
    plan = exit_plan(P, "long", Dec("2000"), Dec("100"), M, mode="medium", hours_held=7)
    assert max(o.price for o in plan.orders) <= Dec("2060.00")  # capped at +3%
    plan = exit_plan(P, "long", Dec("2000"), Dec("100"), M, mode="normal", hours_held=7)
    assert plan.runner is None and len(plan.orders) == 4


def test_breakeven_plan_prices_fees_and_buffer():
    plan = exit_plan(P, "long", Dec("2000"), Dec("7"), M, mode="breakeven", hours_held=50)
    assert [(o.tag, o.price, o.amount) for o in plan.orders] == [("be1", Dec("2000.80"), Dec("7"))]


@hsettings(max_examples=200, deadline=None)
@given(contracts=st.integers(0, 10**6), mode=st.sampled_from(["normal", "medium", "heavy", "breakeven"]),
       hours=st.floats(0, 100), side=st.sampled_from(["long", "short"]))
def test_exit_orders_never_exceed_position(contracts, mode, hours, side):
    plan = exit_plan(P, side, Dec("2000"), Dec(contracts), M, mode=mode, hours_held=hours)
    assert sum(o.amount for o in plan.orders) <= Dec(contracts)
    for o in plan.orders:
        assert (o.price > Dec("2000")) if side == "long" else (o.price < Dec("2000"))


def test_trailing_pullback_bounds():
    assert trailing_pullback(P, None) == pytest.approx(0.01)
    assert trailing_pullback(P, 0.01) == pytest.approx(0.015)
    assert trailing_pullback(P, 0.05) == pytest.approx(0.03)


def test_runner_activates_then_trails():
    plan = exit_plan(P, "long", Dec("100"), Dec("100"), M, mode="normal", hours_held=0)
    spec = plan.runner
    s = RunnerState(False, None)
    s, hit = runner_step("long", Dec("100"), spec, s, Dec("101.5"), Dec("99"), Dec("101"))
    assert not s.active and not hit
    s, hit = runner_step("long", Dec("100"), spec, s, Dec("103"), Dec("101"), Dec("102.5"))
    assert s.active and s.best_price == Dec("103") and not hit
    s, hit = runner_step("long", Dec("100"), spec, s, Dec("102.5"), Dec("101.5"), Dec("101.9"))
    assert hit  # 103 x 0.99 = 101.97 > close


def test_runner_short_mirror():
    spec = exit_plan(P, "short", Dec("100"), Dec("100"), M, mode="normal", hours_held=0).runner
    s, hit = runner_step("short", Dec("100"), spec, RunnerState(False, None), Dec("99"), Dec("97"), Dec("97.5"))
    assert s.active and not hit
    s, hit = runner_step("short", Dec("100"), spec, s, Dec("98.5"), Dec("97.5"), Dec("98"))
    assert hit  # 97 x 1.01 = 97.97 < 98


def test_time_exit_steps_and_loss_bound():
    assert time_exit_fraction(P, 5759) == 0
    assert time_exit_fraction(P, 5760) == 0.25
    assert time_exit_fraction(P, 5760 + 720) == 0.5
    assert time_exit_fraction(P, 5760 + 5 * 720) == 1.0
    o = time_exit_order(P, "long", Dec("100"), Dec("40"), Dec("90"), M, 0.25)
    assert o.price == Dec("97.00") and o.amount == Dec("10")  # never below -3%
    o = time_exit_order(P, "short", Dec("100"), Dec("40"), Dec("99"), M, 0.5)
    assert o.price == Dec("99.00") and o.amount == Dec("20")


def test_breakeven_due():
    assert not breakeven_due(P, 47 * 60)
    assert breakeven_due(P, 48 * 60)
    assert breakeven_due(P, 36 * 60, time_multiplier=0.75)
