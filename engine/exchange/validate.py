"""Sanity checks on what a venue returns, before the engine acts on it.

A position with a NaN entry price, an order with a negative amount or a balance without
equity would otherwise flow into stop and size arithmetic. Each check raises
`MalformedResponse` (a typed, non-transient error): the cycle that read the data sends
nothing, and the error names the field, never a credential.
"""

from __future__ import annotations

from decimal import Decimal

from .errors import MalformedResponse
from .types import Balance, Order, Position


def _finite(name: str, value: Decimal | None, *, positive: bool = False, allow_none: bool = False,
            non_negative: bool = False) -> None:
    if value is None:
        if allow_none:
            return
        raise MalformedResponse(f"{name} is missing")
    if not value.is_finite():
        raise MalformedResponse(f"{name} is not a finite number ({value})")
    if positive and value <= 0:
        raise MalformedResponse(f"{name} must be > 0 (got {value})")
    if non_negative and value < 0:
        raise MalformedResponse(f"{name} must be >= 0 (got {value})")


def check_position(p: Position) -> Position:
    where = f"position {p.symbol}"
    if p.side not in ("long", "short"):
        raise MalformedResponse(f"{where}: side {p.side!r}")
    _finite(f"{where} contracts", p.contracts, positive=True)
    _finite(f"{where} entry price", p.entry_price, positive=True)
    _finite(f"{where} mark price", p.mark_price, positive=True, allow_none=True)
    _finite(f"{where} unrealized PnL", p.unrealized_pnl)
    return p


def check_order(o: Order) -> Order:
    where = f"order {o.id} ({o.symbol})"
    if o.side not in ("buy", "sell"):
        raise MalformedResponse(f"{where}: side {o.side!r}")
    _finite(f"{where} amount", o.amount, non_negative=True)
    _finite(f"{where} filled", o.filled, non_negative=True)
    if o.filled > o.amount and o.amount > 0:
        raise MalformedResponse(f"{where}: filled {o.filled} exceeds amount {o.amount}")
    _finite(f"{where} price", o.price, positive=True, allow_none=True)
    _finite(f"{where} trigger price", o.trigger_price, positive=True, allow_none=True)
    return o


def check_balance(b: Balance) -> Balance:
    _finite("balance equity", b.equity)
    _finite("balance free margin", b.free)
    _finite("balance used margin", b.used_margin, non_negative=True)
    _finite("balance unrealized PnL", b.unrealized_pnl)
    return b
