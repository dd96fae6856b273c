"""One consistent read of the account per cycle, shared by both profiles.

Batched: one balance read, one positions read, one open-orders read (normal and stop orders)
and one book read for all symbols. In one-way mode the side of an order tells whose it is: a
non-reduce-only buy is a long entry, a reduce-only sell a long exit or stop; the mirror for
shorts. So both profiles can share the account without a lookup per order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from engine.exchange.base import Exchange
from engine.exchange.types import Balance, BookTop, Order, Position

SIDES = ("long", "short")


def order_profile(order: Order) -> str:
    """Which profile an order belongs to, from its side and reduce-only flag."""
    if order.reduce_only:
        return "long" if order.side == "sell" else "short"
    return "long" if order.side == "buy" else "short"


@dataclass
class Snapshot:
    now_ms: int
    balance: Balance
    positions: dict[str, Position]  # by symbol (one-way mode: one position per symbol)
    orders: list[Order]
    books: dict[str, BookTop] = field(default_factory=dict)
    leverage: dict[str, Decimal | None] = field(default_factory=dict)
    # two accounts (COINS_2): the balance of the account that trades a symbol (sizing and the
    # margin caps are per account); `balance` is then both together
    balances: dict[str, Balance] = field(default_factory=dict)
    account_of: Callable[[str], str] | None = None
    # symbols whose account did not answer this read: their positions and orders are unknown
    # (not absent), and `unknown_why` says why
    unknown: frozenset[str] = frozenset()
    unknown_why: str = ""

    def balance_for(self, symbol: str) -> Balance:
        if self.account_of is not None:
            found = self.balances.get(self.account_of(symbol))
            # (an account not read: nothing to size from, rather than both accounts' total)
            return found if found is not None else Balance(Decimal(0), Decimal(0), Decimal(0), Decimal(0))
        return self.balance

    def position(self, symbol: str, side: str) -> Position | None:
        pos = self.positions.get(symbol)
        return pos if pos is not None and pos.side == side else None

    def orders_of(self, profile: str, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders if o.is_open and order_profile(o) == profile
                and (symbol is None or o.symbol == symbol)]

    def symbols_held_by(self, profile: str) -> set[str]:
        held = {s for s, p in self.positions.items() if p.side == profile}
        held |= {o.symbol for o in self.orders if o.is_open and order_profile(o) == profile}
        return held


async def read_snapshot(exchange: Exchange, symbols: list[str], now_ms: int) -> Snapshot:
    view = getattr(exchange, "fetch_account_view", None)  # two accounts: each read on its own
    unknown: frozenset[str] = frozenset()
    why = ""
    if view is not None:
        balance, positions, orders, unknown, why = await view()
    else:
        balance = await exchange.fetch_balance()
        positions = await exchange.fetch_positions(None)
        orders = await exchange.fetch_open_orders(None)
    wanted = [s for s in symbols if s not in unknown]
    books = await exchange.fetch_order_book_top(wanted) if wanted else {}
    by_symbol: dict[str, Position] = {}
    for p in positions:
        if p.contracts > 0:
            by_symbol[p.symbol] = p
    split = getattr(exchange, "account_of", None)  # two accounts (engine/exchange/accounts.py)
    balances = dict(getattr(exchange, "balances", None) or {}) if split is not None else {}
    return Snapshot(now_ms, balance, by_symbol, list(orders), dict(books), balances=balances, account_of=split,
                    unknown=unknown, unknown_why=why)
