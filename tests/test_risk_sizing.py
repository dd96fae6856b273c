"""Sizing within caps, the entry ladder and averaging conditions."""

from decimal import Decimal as Dec

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from engine.exchange.types import Market
from engine.risk.averaging import AveragingInput, add_notional, averaging_checks, required_drawdown
from engine.risk.sizing import AccountView, effective_leverage, entry_budget, entry_ladder
from engine.settings import ProfileSettings

P = ProfileSettings()
XRP = Market("XRP/USDT:USDT", "XRP-USDT", "XRP", "USDT", contract_size=Dec("10"), amount_step=Dec("1"),
             price_step=Dec("0.0001"), min_amount=Dec("1"), min_notional=Dec("5"))


def acct(equity="1000", free="1000", used="0", symbol="0", active=0):
    return AccountView(Dec(equity), Dec(free), Dec(used), Dec(symbol), active)


def test_budget_is_fraction_of_equity():
    b = entry_budget(P, acct(), Dec(10))
    assert b.margin == Dec("20.00") and b.binding == "budget"
    assert b.notional == Dec("200.00")


@pytest.mark.parametrize("account, binding, margin", [
    (acct(symbol="15"), "position_margin_cap", Dec("15.00")),  # 30 - 15 already on the symbol
    (acct(used="490"), "total_margin_cap", Dec("10.00")),  # 500 - 490
    (acct(free="30"), "free_margin_after_reserve", Dec("15.0")),  # 30 - reserve 15
    (acct(active=50), "max_active_positions", Dec("0")),
    (acct(equity="0", free="0"), "free_margin_after_reserve", Dec("0")),
])
def test_caps_bind(account, binding, margin):
    b = entry_budget(P, account, Dec(10))
    assert b.binding == binding and b.margin == margin


def test_multiplier_shrinks_but_never_lifts_past_cap():
    assert entry_budget(P, acct(), Dec(10), multiplier=0.5).margin == Dec("10.000")
    b = entry_budget(P, acct(), Dec(10), multiplier=3.0)
    assert b.margin == Dec("30.00") and b.binding == "position_margin_cap"


def test_effective_leverage_takes_the_smaller():
    assert effective_leverage(P, Dec(10)) == Dec(10)
    assert effective_leverage(P, Dec(50)) == Dec(30)
    assert effective_leverage(P, None) == Dec(1)  # unknown account leverage: the safe side
    assert effective_leverage(ProfileSettings(account_leverage=5), Dec(50)) == Dec(5)


def test_long_ladder_below_market_short_above():
    orders = entry_ladder("long", XRP, Dec("200"), Dec("1.0000"), (0.5, 0.5), (0.0, 0.01))
    assert [o.price for o in orders] == [Dec("1.0000"), Dec("0.9900")]
    assert [o.amount for o in orders] == [Dec("10"), Dec("10")]
    orders = entry_ladder("short", XRP, Dec("200"), Dec("1.00005"), (0.5, 0.5), (0.0, 0.01))
    assert [o.price for o in orders] == [Dec("1.0001"), Dec("1.0101")]  # sells round up (passive)


def test_ladder_skips_orders_below_minimums():
    orders = entry_ladder("long", XRP, Dec("8"), Dec("1.0"), (0.5, 0.5), (0.0, 0.01))
    assert orders == []  # 4 USDT per rung < 5 USDT minimum notional


@hsettings(max_examples=300, deadline=None)
@given(budget=st.decimals(min_value=0, max_value=100000, places=2),
       price=st.decimals(min_value=Dec("0.0001"), max_value=1000, places=4),
       f1=st.floats(0, 1), off=st.floats(0, 0.2))
def test_ladder_never_exceeds_budget(budget, price, f1, off):
    orders = entry_ladder("long", XRP, budget, price, (f1, 1 - f1), (0.0, off))
    assert sum(o.notional(XRP) for o in orders) <= budget
    for o in orders:
        assert o.price <= price and o.amount >= XRP.min_amount


def base_avg(**kw):
    d = dict(side="long", entry_price=Dec("100"), price=Dec("97"), position_notional=Dec("200"),
             stages_done=0, opened_ms=0, last_add_ms=None, now_ms=3_600_000, has_entry_orders=False,
             has_exit_ladder=True, in_breakeven=False, add_valid=True, pullback_recovered=True,
             macro_allows=True, atr_rate=0.005, daily_volatility=0.05)
    d.update(kw)
    return AveragingInput(**d)


def failed(checks):
    return [c.name for c in checks if not c.passed]


def test_averaging_all_conditions_pass():
    assert failed(averaging_checks(P, base_avg())) == []
    assert add_notional(P, base_avg()) == Dec("100.0")


def test_required_drawdown_scales_with_stage_and_volatility():
    assert required_drawdown(P, 1, None, None) == pytest.approx(0.01)
    assert required_drawdown(P, 2, None, None) == pytest.approx(0.02)
    assert required_drawdown(P, 1, 0.02, None) == pytest.approx(0.02)  # ATR x 1.0 x 1
    assert required_drawdown(P, 2, None, 0.1) == pytest.approx(0.036)  # 0.1 x 0.18 x 2


@pytest.mark.parametrize("kw, name", [
    (dict(price=Dec("99.5")), "drawdown"),
    (dict(stages_done=2), "stages"),
    (dict(has_entry_orders=True), "no_entry_orders"),
    (dict(has_exit_ladder=False), "exit_ladder_present"),
    (dict(in_breakeven=True), "not_breakeven"),
    (dict(add_valid=False), "add_valid"),
    (dict(pullback_recovered=False), "pullback_recovery"),
    (dict(macro_allows=False), "macro_allows_averaging"),
    (dict(last_add_ms=0, now_ms=7 * 3_600_000), "hours_since_last_add"),
    (dict(now_ms=49 * 3_600_000), "position_age_minutes"),
    (dict(side="short", price=Dec("99")), "drawdown"),
])
def test_each_averaging_condition_blocks(kw, name):
    checks = averaging_checks(P, base_avg(**kw))
    assert name in failed(checks)


def test_short_averaging_needs_price_above_entry():
    assert failed(averaging_checks(P, base_avg(side="short", price=Dec("103")))) == []
