"""What one cycle wants done on the exchange, as plain data.

The planner decides a list of actions from a snapshot; the executor carries them out. Every
order action carries its deterministic client order id, so executing an action twice (after a
crash, a lost reply or a retry) never creates a second order.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.exchange.types import Order, PositionSide


@dataclass(frozen=True)
class PlaceEntry:
    """A post-only entry or averaging rung."""

    symbol: str
    position_side: PositionSide
    price: Decimal
    amount: Decimal
    client_order_id: int
    intent_key: str
    purpose: str = "entry"  # entry | add
    stop_trigger: Decimal | None = None  # the stop sent attached to the order (HARD_STOP_ATTACH_TO_ENTRY)
    reason: str = ""  # why the size/price is what it is (volatility and BTC-risk multipliers)


@dataclass(frozen=True)
class PlaceStop:
    """Place the reduce-only hard stop; `replaces` are cancelled only after it is on the
    exchange (the position is never without a stop). If the exchange refuses because close
    orders reserve the closeable amount, `exit_orders` are cancelled first and the stop placed."""

    symbol: str
    position_side: PositionSide
    trigger: Decimal
    amount: Decimal
    client_order_id: int
    intent_key: str
    replaces: tuple[Order, ...] = ()
    exit_orders: tuple[Order, ...] = ()
    reason: str = "protect"


@dataclass(frozen=True)
class PlaceExit:
    """A reduce-only limit (not post-only): a take-profit, breakeven, time or defensive exit, or
    the runner's close at the current price. `fallback` (the runner's close): the market close
    carried out at once instead when the venue refuses the limit because other close orders
    reserve the closeable amount."""

    symbol: str
    position_side: PositionSide
    price: Decimal
    amount: Decimal
    client_order_id: int
    intent_key: str
    tag: str
    purpose: str = "exit"
    fallback: CloseMarket | None = None


@dataclass(frozen=True)
class Cancel:
    order: Order
    purpose: str
    reason: str


@dataclass(frozen=True)
class CloseMarket:
    """Reduce-only market close (dust, tiny entries, trailing runner, emergencies)."""

    symbol: str
    position_side: PositionSide
    amount: Decimal
    client_order_id: int
    intent_key: str
    reason: str
    cancel_first: tuple[Order, ...] = ()
    # the close takes the whole position (its stops are cancelled once it filled); False: a
    # partial reduction (the hedge's), whose stop is re-sized by the next protection instead
    whole: bool = True


@dataclass(frozen=True)
class OpenMarket:
    """A market order that opens or adds to a position: the BTC hedge's only (a strategy entry
    is always a post-only ladder)."""

    symbol: str
    position_side: PositionSide
    amount: Decimal
    client_order_id: int
    intent_key: str
    reason: str
    purpose: str = "hedge"


Action = PlaceEntry | PlaceStop | PlaceExit | Cancel | CloseMarket | OpenMarket


def action_symbol(a: Action) -> str:
    return a.order.symbol if isinstance(a, Cancel) else a.symbol
