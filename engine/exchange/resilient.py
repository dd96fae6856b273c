"""Retry + idempotent placement around any `Exchange` (the simulator in paper mode and chaos tests).

`HtxExchange` applies the same helpers (`retry.retry_read`, `retry.place_idempotent`) inside,
directly over its ccxt calls; this wrapper gives any other implementation the same guarantees,
and lets the algorithm be tested against the simulator behind `FaultInjectingExchange`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from . import errors as E
from .base import Exchange, amend_by_cancel_replace
from .retry import RetryPolicy, place_idempotent, retry_read
from .types import (
    Balance,
    BookTop,
    Fill,
    FundingRate,
    Market,
    Order,
    OrderKind,
    Position,
    PositionSide,
    Side,
    closing_side,
)


class RetryingExchange:
    def __init__(self, inner: Exchange, policy: RetryPolicy | None = None):
        self.inner = inner
        self.policy = policy or RetryPolicy()
        self.name = inner.name

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        return await retry_read(lambda: self.inner.load_markets(reload), self.policy, what="load markets")

    def market(self, symbol: str) -> Market:
        return self.inner.market(symbol)

    async def fetch_balance(self) -> Balance:
        return await retry_read(self.inner.fetch_balance, self.policy, what="balance")

    async def fetch_positions(self, symbols: Sequence[str] | None = None) -> list[Position]:
        return await retry_read(lambda: self.inner.fetch_positions(symbols), self.policy, what="positions")

    async def fetch_open_orders(self, symbols: Sequence[str] | None = None) -> list[Order]:
        return await retry_read(lambda: self.inner.fetch_open_orders(symbols), self.policy, what="open orders")

    async def fetch_order(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        client_order_id: int | None = None,
        kind: OrderKind = "limit",
    ) -> Order | None:
        return await retry_read(
            lambda: self.inner.fetch_order(symbol, order_id=order_id, client_order_id=client_order_id, kind=kind),
            self.policy,
            what="fetch order",
        )

    async def fetch_fills(self, symbols: Sequence[str], since_ms: int) -> list[Fill]:
        return await retry_read(lambda: self.inner.fetch_fills(symbols, since_ms), self.policy, what="fills")

    async def fetch_funding_rates(self, symbols: Sequence[str]) -> dict[str, FundingRate]:
        return await retry_read(lambda: self.inner.fetch_funding_rates(symbols), self.policy, what="funding")

    async def fetch_leverage(self, symbol: str) -> Decimal | None:
        return await retry_read(lambda: self.inner.fetch_leverage(symbol), self.policy, what="leverage")

    async def fetch_order_book_top(self, symbols: Sequence[str]) -> dict[str, BookTop]:
        return await retry_read(lambda: self.inner.fetch_order_book_top(symbols), self.policy, what="book tops")

    async def _place(
        self, symbol: str, client_order_id: int, kind: OrderKind, create, what: str, *, side: Side, reduce_only: bool
    ) -> Order:
        async def lookup() -> Order | None:
            found = await self.inner.fetch_order(symbol, client_order_id=client_order_id, kind=kind)
            E.refuse_reuse(found, symbol, side, kind, reduce_only, client_order_id, self.name)
            return found

        return await place_idempotent(
            create, lookup, self.policy, client_order_id=client_order_id, what=what
        )

    async def place_post_only(
        self, symbol: str, side: Side, amount: Decimal, price: Decimal, client_order_id: int,
        *, stop_loss: Decimal | None = None,
    ) -> Order:
        return await self._place(
            symbol,
            client_order_id,
            "limit",
            lambda: self.inner.place_post_only(symbol, side, amount, price, client_order_id, stop_loss=stop_loss),
            f"post-only {side} {symbol}",
            side=side,
            reduce_only=False,
        )

    async def place_reduce_only_limit(
        self, symbol: str, position_side: PositionSide, amount: Decimal, price: Decimal, client_order_id: int
    ) -> Order:
        return await self._place(
            symbol,
            client_order_id,
            "limit",
            lambda: self.inner.place_reduce_only_limit(symbol, position_side, amount, price, client_order_id),
            f"reduce-only limit {symbol}",
            side=closing_side(position_side),
            reduce_only=True,
        )

    async def close_reduce_only_market(
        self, symbol: str, position_side: PositionSide, amount: Decimal, client_order_id: int
    ) -> Order:
        return await self._place(
            symbol,
            client_order_id,
            "market",
            lambda: self.inner.close_reduce_only_market(symbol, position_side, amount, client_order_id),
            f"reduce-only market {symbol}",
            side=closing_side(position_side),
            reduce_only=True,
        )

    async def open_market(self, symbol: str, side: Side, amount: Decimal, client_order_id: int) -> Order:
        return await self._place(
            symbol,
            client_order_id,
            "market",
            lambda: self.inner.open_market(symbol, side, amount, client_order_id),
            f"market {side} {symbol}",
            side=side,
            reduce_only=False,
        )

    async def place_stop_loss(
        self, symbol: str, position_side: PositionSide, amount: Decimal, trigger_price: Decimal, client_order_id: int
    ) -> Order:
        return await self._place(
            symbol,
            client_order_id,
            "stop_loss",
            lambda: self.inner.place_stop_loss(symbol, position_side, amount, trigger_price, client_order_id),
            f"stop-loss {symbol}",
            side=closing_side(position_side),
            reduce_only=True,
        )

    async def cancel_order(self, order: Order) -> Order:
        # cancelling twice is harmless: the second call returns the final state
        return await retry_read(lambda: self.inner.cancel_order(order), self.policy, what=f"cancel {order.id}")

    async def amend_order(
        self, order: Order, *, new_client_order_id: int, price: Decimal | None = None, amount: Decimal | None = None
    ) -> Order | None:
        return await amend_by_cancel_replace(
            self, order, new_client_order_id=new_client_order_id, price=price, amount=amount
        )

    async def close(self) -> None:
        await self.inner.close()
