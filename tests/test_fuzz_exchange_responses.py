"""Bad exchange data: missing fields, NaN, negative sizes. Each record either parses into
values that pass the sanity checks or raises a typed ExchangeError; nothing else escapes, so
the engine never computes a stop or a size from a number it cannot trust."""

from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st

from engine.exchange import errors as E
from engine.exchange.htx import HtxConfig, HtxExchange, _parsed
from engine.exchange.types import Balance, Order, Position
from engine.exchange.validate import check_balance, check_order, check_position

NUMS = st.one_of(st.none(), st.just(""), st.just("NaN"), st.just("Infinity"), st.just("-1"), st.just("0"),
                 st.just("abc"), st.decimals(allow_nan=True, allow_infinity=True).map(str),
                 st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10))


def position_records():
    info = st.fixed_dictionaries({}, optional={
        "volume": NUMS, "open_avg_price": NUMS, "cost_open": NUMS, "mark_price": NUMS, "profit_unreal": NUMS,
        "lever_rate": NUMS, "liquidation_price": NUMS, "available": NUMS, "direction": st.sampled_from(["buy", "sell", "x"]),
    })
    return st.fixed_dictionaries({"info": info}, optional={
        "symbol": st.sampled_from(["BTC/USDT:USDT", None]), "side": st.sampled_from(["long", "short", "up", None]),
        "contracts": NUMS, "entryPrice": NUMS, "timestamp": st.one_of(st.none(), st.integers(0, 2**41)),
    })


def order_records():
    info = st.fixed_dictionaries({}, optional={
        "type": st.sampled_from(["limit", "post_only", "sl", "market", "weird"]), "price": NUMS, "volume": NUMS,
        "trade_volume": NUMS, "sl_trigger_price": NUMS, "reduce_only": st.sampled_from([0, 1, "1", None]),
        "client_order_id": st.one_of(st.none(), st.integers(-5, 2**60), st.text(max_size=5)),
        "trade_avg_price": NUMS,
    })
    return st.fixed_dictionaries({"info": info, "symbol": st.just("BTC/USDT:USDT")}, optional={
        "id": st.one_of(st.none(), st.text(max_size=8)), "side": st.sampled_from(["buy", "sell", None, "hold"]),
        "status": st.sampled_from(["open", "closed", "canceled", "??"]), "amount": NUMS, "filled": NUMS,
        "price": NUMS,
    })


EX = HtxExchange(HtxConfig(api_key="fuzz-key-0001", secret="fuzz-secret-0001"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=position_records())
def test_position_records_parse_cleanly_or_fail_typed(record):
    try:
        pos = _parsed("position", EX._parse_position, record)
        if pos is not None:
            pos = check_position(pos)
    except E.ExchangeError:
        return
    if pos is not None:
        assert isinstance(pos, Position)
        assert pos.contracts.is_finite() and pos.contracts > 0
        assert pos.entry_price.is_finite() and pos.entry_price > 0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=order_records())
def test_order_records_parse_cleanly_or_fail_typed(record):
    try:
        order = check_order(_parsed("order", EX._parse_order, record))
    except E.ExchangeError:
        return
    assert isinstance(order, Order)
    assert order.amount >= 0 and order.filled >= 0
    assert order.price is None or (order.price.is_finite() and order.price > 0)


def test_balance_without_numbers_is_refused():
    bad = Balance(Decimal("NaN"), Decimal(1), Decimal(0), Decimal(0))
    try:
        check_balance(bad)
    except E.MalformedResponse as exc:
        assert "equity" in str(exc)
    else:
        raise AssertionError("NaN equity accepted")
    check_balance(Balance(Decimal(10), Decimal(5), Decimal(5), Decimal(0)))
