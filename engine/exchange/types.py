"""Venue-neutral value types exchanged between the engine and an exchange adapter.

All quantities are `Decimal`: amounts are in *contracts* (multiply by `Market.contract_size` for
coin quantity), prices in quote currency (USDT). Every type is a frozen dataclass so a value read
from the exchange can be shared between tasks without defensive copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Side = Literal["buy", "sell"]
PositionSide = Literal["long", "short"]
OrderKind = Literal["limit", "market", "stop_loss", "take_profit", "trigger", "other"]
OrderStatus = Literal["open", "filled", "canceled", "rejected", "expired", "unknown"]

#: order kinds that live on HTX's algo endpoints (their ids differ from normal order ids)
ALGO_KINDS: frozenset[str] = frozenset({"stop_loss", "take_profit", "trigger"})


def closing_side(position_side: PositionSide) -> Side:
    """The order side that reduces a position: a long is closed by selling."""
    if position_side == "long":
        return "sell"
    if position_side == "short":
        return "buy"
    raise ValueError(f"position side must be 'long' or 'short', got {position_side!r}")


def reduced_position_side(order_side: Side) -> PositionSide:
    """The position a reduce-only order of `order_side` reduces (one-way mode)."""
    if order_side == "sell":
        return "long"
    if order_side == "buy":
        return "short"
    raise ValueError(f"order side must be 'buy' or 'sell', got {order_side!r}")


@dataclass(frozen=True, slots=True)
class Market:
    symbol: str  # unified ccxt symbol, e.g. "BTC/USDT:USDT"
    venue_id: str  # exchange market id, e.g. "BTC-USDT"
    base: str
    quote: str
    contract_size: Decimal  # coin per contract
    amount_step: Decimal  # contracts
    price_step: Decimal  # tick size
    min_amount: Decimal  # contracts
    min_notional: Decimal | None = None  # USDT, None when the venue states none
    max_leverage: Decimal | None = None
    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Balance:
    """Cross-margin account in the settle currency: equity = wallet + unrealized PnL."""

    equity: Decimal
    free: Decimal  # margin available for new orders
    used_margin: Decimal  # initial margin of positions and open orders
    unrealized_pnl: Decimal
    currency: str = "USDT"
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    side: PositionSide
    contracts: Decimal  # always > 0
    entry_price: Decimal
    mark_price: Decimal | None
    unrealized_pnl: Decimal
    leverage: Decimal | None
    liquidation_price: Decimal | None  # None when the venue reports none (or <= 0)
    closeable: Decimal | None = None  # contracts not reserved by close orders (HTX "available")
    margin_mode: str = "cross"
    ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    client_order_id: int | None
    symbol: str
    side: Side
    kind: OrderKind
    price: Decimal | None  # limit price (None for market / market-at-trigger stops)
    trigger_price: Decimal | None
    amount: Decimal  # contracts
    filled: Decimal
    status: OrderStatus
    reduce_only: bool
    post_only: bool
    ts_ms: int | None = None
    average_price: Decimal | None = None

    @property
    def remaining(self) -> Decimal:
        rest = self.amount - self.filled
        return rest if rest > 0 else Decimal(0)

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def is_algo(self) -> bool:
        return self.kind in ALGO_KINDS


@dataclass(frozen=True, slots=True)
class Fill:
    id: str
    order_id: str
    client_order_id: int | None
    symbol: str
    side: Side
    price: Decimal
    amount: Decimal  # contracts
    fee: Decimal  # positive = paid, negative = rebate
    fee_currency: str
    maker: bool
    ts_ms: int
    realized_pnl: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FundingRate:
    symbol: str
    rate: Decimal  # per funding interval; longs pay shorts when positive
    funding_time_ms: int | None  # the funding event this rate applies to
    next_funding_time_ms: int | None = None
    interval: str | None = None  # e.g. "8h"


@dataclass(frozen=True, slots=True)
class BookTop:
    """Best bid/ask of one venue, sizes in coin (contracts x contract size).

    `depth_*_notional` sums price x size over the levels that were read (only the best level for a
    ticker read), so a caller can require a minimum depth before trusting the price.
    """

    venue: str
    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    bid_size: Decimal | None  # coin
    ask_size: Decimal | None  # coin
    venue_ts_ms: int | None
    received_ms: int
    depth_bid_notional: Decimal | None = None
    depth_ask_notional: Decimal | None = None
    levels: int = 1

    @property
    def mid(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2

    @property
    def valid(self) -> bool:
        return self.bid is not None and self.ask is not None and 0 < self.bid < self.ask

