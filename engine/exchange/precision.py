"""Rounding to exchange steps in the direction that can never add risk.

Rules (and why):

- amounts round DOWN to the amount step: an entry never exceeds its cap, a close or a stop is
  never larger than the position it protects.
- limit prices round to the *passive* side: buy DOWN, sell UP. A post-only entry then never
  crosses more than intended, and an exit limit (sell for a long, buy for a short) never
  accepts a worse price than the one computed (take-profit, breakeven, controlled-loss cap).
- stop triggers round TOWARD the current price: a long's stop (sell, below price) rounds UP, a
  short's stop (buy, above price) rounds DOWN. The stop then fires no later than computed, so the
  loss stays within the cap; the cost is at most one tick of extra stop-outs.

Every function here is pure and uses an explicit rounding mode inside a local decimal context:
ccxt's `decimal_to_precision` changes the thread's *global* decimal context (rounding mode and
traps), so nothing in this module may rely on the ambient context.
"""

from __future__ import annotations

import decimal
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from .errors import InvalidOrder
from .types import Market, PositionSide, Side

_PREC = 40


def D(value: object) -> Decimal:
    """Exact Decimal from int/str/Decimal; floats go through `repr` (shortest round-trip)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"not a finite number: {value}")
        return Decimal(repr(value))
    if isinstance(value, str):
        return Decimal(value.strip())
    raise TypeError(f"cannot convert {type(value).__name__} to Decimal")


def D_or_none(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return D(value)
    except (ValueError, TypeError, decimal.InvalidOperation):
        return None


def _check_step(step: Decimal) -> None:
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    _check_step(step)
    with decimal.localcontext() as ctx:
        ctx.prec = _PREC
        ctx.traps[decimal.Underflow] = False
        ctx.rounding = rounding
        units = (value / step).to_integral_value(rounding=rounding)
        result = units * step
        # keep the step's exponent so formatting is exact ("0.10" stays "0.1" only if step says so)
        return result.quantize(step.normalize(), rounding=rounding) if step.as_tuple().exponent < 0 else result


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    return _to_step(value, step, ROUND_FLOOR)


def ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    return _to_step(value, step, ROUND_CEILING)


def is_on_step(value: Decimal, step: Decimal) -> bool:
    _check_step(step)
    with decimal.localcontext() as ctx:
        ctx.prec = _PREC
        return value % step == 0


def round_amount(amount: Decimal, step: Decimal) -> Decimal:
    """Contracts rounded DOWN: never more than asked."""
    if amount < 0:
        raise ValueError("amount must be >= 0")
    return floor_to_step(amount, step)


def round_limit_price(side: Side, price: Decimal, tick: Decimal) -> Decimal:
    """Passive rounding: buy DOWN, sell UP (entries and exits alike)."""
    if price <= 0:
        raise ValueError("price must be > 0")
    if side == "buy":
        return floor_to_step(price, tick)
    if side == "sell":
        return ceil_to_step(price, tick)
    raise ValueError(f"bad side {side!r}")


def round_stop_trigger(position_side: PositionSide, trigger: Decimal, tick: Decimal) -> Decimal:
    """Toward the market: a long's stop rounds UP, a short's stop rounds DOWN."""
    if trigger <= 0:
        raise ValueError("trigger must be > 0")
    if position_side == "long":
        return ceil_to_step(trigger, tick)
    if position_side == "short":
        return floor_to_step(trigger, tick)
    raise ValueError(f"bad position side {position_side!r}")


def attached_stop_trigger(side: str, trigger: Decimal, price: Decimal, tick: Decimal) -> Decimal | None:
    """The stop attached to an entry of `side` ("buy"/"sell") at `price`, rounded toward the
    market; None when it is not beyond the price on the losing side (no venue may get it)."""
    if D(trigger) <= 0:
        return None
    rounded = round_stop_trigger("long" if side == "buy" else "short", D(trigger), tick)
    beyond = rounded < price if side == "buy" else rounded > price
    return rounded if beyond else None


def contracts_for_qty(qty: Decimal, market: Market) -> Decimal:
    """Coin quantity -> contracts, rounded DOWN to the amount step."""
    with decimal.localcontext() as ctx:
        ctx.prec = _PREC
        raw = qty / market.contract_size
    return round_amount(raw, market.amount_step)


def qty_for_contracts(contracts: Decimal, market: Market) -> Decimal:
    with decimal.localcontext() as ctx:
        ctx.prec = _PREC
        return contracts * market.contract_size


def notional(contracts: Decimal, price: Decimal, market: Market) -> Decimal:
    with decimal.localcontext() as ctx:
        ctx.prec = _PREC
        return contracts * market.contract_size * price


def meets_minimums(market: Market, amount: Decimal, price: Decimal | None) -> bool:
    if amount < market.min_amount or amount <= 0:
        return False
    if market.min_notional is not None and price is not None:
        return notional(amount, price, market) >= market.min_notional
    return True


def check_minimums(market: Market, amount: Decimal, price: Decimal | None) -> None:
    if not meets_minimums(market, amount, price):
        raise InvalidOrder(
            f"{market.symbol}: {fmt(amount)} contracts at {fmt(price) if price else 'market'} is below "
            f"the minimum ({fmt(market.min_amount)} contracts"
            + (f", {fmt(market.min_notional)} notional" if market.min_notional is not None else "")
            + ")"
        )


def fmt(value: Decimal | None) -> str:
    """Plain decimal string without exponent or trailing zeros ("60000.1", "3", "0.0001")."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"
