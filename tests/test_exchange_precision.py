"""Safe-direction rounding and deterministic client ids."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.exchange import errors as E
from engine.exchange.client_ids import MAX_CLIENT_ORDER_ID, client_order_id, is_valid_client_order_id
from engine.exchange.precision import (
    D,
    ceil_to_step,
    check_minimums,
    contracts_for_qty,
    floor_to_step,
    fmt,
    is_on_step,
    meets_minimums,
    qty_for_contracts,
    round_amount,
    round_limit_price,
    round_stop_trigger,
)
from engine.exchange.types import Market

XRP = Market("XRP/USDT:USDT", "XRP-USDT", "XRP", "USDT", Decimal("10"), Decimal("1"), Decimal("0.0001"), Decimal("1"), Decimal("5"))

prices = st.decimals(min_value=Decimal("0.00001"), max_value=Decimal("1000000"), places=6, allow_nan=False, allow_infinity=False)
steps = st.sampled_from([Decimal(s) for s in ("0.0001", "0.001", "0.01", "0.1", "0.5", "1", "5", "25", "0.0005")])


@given(prices, steps)
def test_floor_and_ceil_bracket_the_value_on_the_grid(value, step):
    lo, hi = floor_to_step(value, step), ceil_to_step(value, step)
    assert lo <= value <= hi
    assert hi - lo in (0, step)
    assert is_on_step(lo, step) and is_on_step(hi, step)


@given(prices, steps)
def test_limit_prices_round_to_the_passive_side(price, tick):
    assert round_limit_price("buy", price, tick) <= price  # a buy never pays more
    assert round_limit_price("sell", price, tick) >= price  # a sell never accepts less


@given(prices, steps)
def test_stop_triggers_round_toward_the_market(trigger, tick):
    assert round_stop_trigger("long", trigger, tick) >= trigger  # a long's stop fires no later
    assert round_stop_trigger("short", trigger, tick) <= trigger


@given(st.decimals(min_value=0, max_value=100000, places=4), steps)
def test_amounts_never_round_up(amount, step):
    rounded = round_amount(amount, step)
    assert rounded <= amount and amount - rounded < step


def test_examples_and_exact_formatting():
    assert round_limit_price("buy", Decimal("60000.17"), Decimal("0.1")) == Decimal("60000.1")
    assert round_limit_price("sell", Decimal("0.51231"), Decimal("0.0001")) == Decimal("0.5124")
    assert round_stop_trigger("long", Decimal("61900.25"), Decimal("0.1")) == Decimal("61900.3")
    assert round_stop_trigger("short", Decimal("0.52347"), Decimal("0.0001")) == Decimal("0.5234")
    assert fmt(round_limit_price("buy", Decimal("100"), Decimal("0.5"))) == "100"
    assert fmt(Decimal("1E+2")) == "100" and fmt(Decimal("0.00010")) == "0.0001" and fmt(Decimal("-0")) == "0"
    assert round_amount(Decimal("3.99"), Decimal("1")) == Decimal("3")


def test_rounding_ignores_a_global_context_changed_by_ccxt():
    with decimal.localcontext() as ctx:
        ctx.rounding = decimal.ROUND_HALF_UP  # what ccxt's decimal_to_precision leaves behind
        ctx.prec = 6
        assert floor_to_step(Decimal("123456.789"), Decimal("0.01")) == Decimal("123456.78")
        assert ceil_to_step(Decimal("0.123401"), Decimal("0.0001")) == Decimal("0.1235")


def test_contract_conversions_and_minimums():
    assert contracts_for_qty(Decimal("259"), XRP) == Decimal("25")  # 25.9 contracts -> 25
    assert qty_for_contracts(Decimal("25"), XRP) == Decimal("250")
    assert meets_minimums(XRP, Decimal("1"), Decimal("0.5"))  # 10 XRP x 0.5 = 5 USDT
    assert not meets_minimums(XRP, Decimal("1"), Decimal("0.49"))
    assert not meets_minimums(XRP, Decimal("0"), None)
    with pytest.raises(E.InvalidOrder, match="below the minimum"):
        check_minimums(XRP, Decimal("0.5"), None)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        floor_to_step(Decimal("1"), Decimal("0"))
    with pytest.raises(ValueError):
        round_limit_price("buy", Decimal("0"), Decimal("0.1"))
    with pytest.raises(ValueError):
        round_stop_trigger("flat", Decimal("1"), Decimal("0.1"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        D(True)
    with pytest.raises(ValueError):
        D(float("nan"))
    assert D(0.1) == Decimal("0.1")  # floats go through their shortest repr


# --------------------------------------------------------------------------- client ids


def test_client_ids_are_deterministic_and_distinct():
    a = client_order_id("long", "BTC/USDT:USDT", "entry", "pos1:0")
    assert a == client_order_id("long", "BTC/USDT:USDT", "entry", "pos1:0")
    others = {
        client_order_id("short", "BTC/USDT:USDT", "entry", "pos1:0"),
        client_order_id("long", "ETH/USDT:USDT", "entry", "pos1:0"),
        client_order_id("long", "BTC/USDT:USDT", "stop", "pos1:0"),
        client_order_id("long", "BTC/USDT:USDT", "entry", "pos1:1"),
    }
    assert a not in others and len(others) == 4
    # pinned: changing the derivation would give a restarted engine new ids for old intents
    assert a == 2055229239904947


@given(st.text(min_size=1).filter(lambda s: "|" not in s), st.integers())
def test_client_ids_fit_what_ccxt_passes_intact(profile, key):
    cid = client_order_id(profile, "BTC/USDT:USDT", "entry", key)
    assert 1 <= cid <= MAX_CLIENT_ORDER_ID
    assert int(float(cid)) == cid  # ccxt's safe_integer round trip


def test_client_id_parts_are_validated():
    with pytest.raises(ValueError):
        client_order_id("", "BTC/USDT:USDT", "entry", 1)
    with pytest.raises(ValueError):
        client_order_id("long", "BTC|USDT", "entry", 1)
    assert not is_valid_client_order_id(2**53)
    assert not is_valid_client_order_id(True)
    assert not is_valid_client_order_id("12")
