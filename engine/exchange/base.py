"""The one interface the engine uses to trade, whatever is behind it (HTX, simulator, faults).

Conventions every implementation follows:

- amounts are contracts, prices USDT, all `Decimal`; implementations round amounts DOWN and prices
  in the safe direction (see `precision`), and return the order as actually sent;
- every order carries a caller-chosen deterministic `client_order_id` (see `client_ids`); placing
  an id that already exists returns the existing order instead of creating a second one;
- reduce-only helpers take the *position* side, so the closing order side cannot be mistaken;
- reads are batched: one call returns all symbols wherever the venue allows it;
- errors are the typed hierarchy of `errors`, never library exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Protocol, runtime_checkable

from .errors import CancelNotConfirmed, InvalidOrder, ReduceOnlyFrozen
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
    reduced_position_side,
)


@runtime_checkable
class Exchange(Protocol):
    name: str

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        """Markets by unified symbol (USDT-margined perpetual swaps only)."""
        ...

    def market(self, symbol: str) -> Market:
        """A loaded market; raises `InvalidOrder` for an unknown symbol."""
        ...

    async def fetch_balance(self) -> Balance: ...

    async def fetch_positions(self, symbols: Sequence[str] | None = None) -> list[Position]:
        """Open positions (contracts > 0); all symbols in one read when `symbols` is None."""
        ...

    async def fetch_open_orders(self, symbols: Sequence[str] | None = None) -> list[Order]:
        """Open normal orders AND open stop / take-profit / trigger orders."""
        ...

    async def fetch_order(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        client_order_id: int | None = None,
        kind: OrderKind = "limit",
    ) -> Order | None:
        """One order in any state, by id or client id; None when the venue does not know it.

        `kind` selects the order family on venues that keep stops apart (HTX algo orders).
        """
        ...

    async def place_post_only(
        self, symbol: str, side: Side, amount: Decimal, price: Decimal, client_order_id: int,
        *, stop_loss: Decimal | None = None,
    ) -> Order:
        """Maker-only limit entry; `PostOnlyWouldCross` when the venue refuses it synchronously
        (a venue may instead accept and cancel it: the order then reads back as canceled).

        `stop_loss`: trigger of a reduce-only market stop attached to the order (HTX:
        `sl_trigger_price` on the order). The venue activates it once the order has filled, for
        the order's volume, without a client id of ours; until then it protects nothing, and
        whether a partial fill activates it is not documented, so the engine's own stop stays
        the protection that counts and the attached one only closes the gap after a fill."""
        ...

    async def place_reduce_only_limit(
        self,
        symbol: str,
        position_side: PositionSide,
        amount: Decimal,
        price: Decimal,
        client_order_id: int,
    ) -> Order: ...

    async def close_reduce_only_market(
        self, symbol: str, position_side: PositionSide, amount: Decimal, client_order_id: int
    ) -> Order: ...

    async def open_market(
        self, symbol: str, side: Side, amount: Decimal, client_order_id: int
    ) -> Order:
        """Market order that opens or adds (not reduce-only): used by the BTC hedge only, which
        must follow the net exposure now rather than rest as a maker. HTX v5 "Place Order"
        (POST /v5/trade/order, type=market, reduce_only 0). Refused during an order ban."""
        ...

    async def place_stop_loss(
        self,
        symbol: str,
        position_side: PositionSide,
        amount: Decimal,
        trigger_price: Decimal,
        client_order_id: int,
    ) -> Order:
        """Exchange-side stop that closes (market) at the trigger; never opens or flips."""
        ...

    async def cancel_order(self, order: Order) -> Order:
        """Cancel and return the best known final state (filled amount included).

        Cancelling an order that is already gone returns its final state; `OrderNotFound` only
        when the venue does not know the order at all.
        """
        ...

    async def amend_order(
        self,
        order: Order,
        *,
        new_client_order_id: int,
        price: Decimal | None = None,
        amount: Decimal | None = None,
    ) -> Order | None:
        """Move a limit price (or a stop's trigger, passed as `price`) and/or shrink the amount.

        Returns the replacement, or None when nothing was left to replace (fully filled).
        """
        ...

    async def fetch_fills(self, symbols: Sequence[str], since_ms: int) -> list[Fill]: ...

    async def fetch_funding_rates(self, symbols: Sequence[str]) -> dict[str, FundingRate]: ...

    async def fetch_leverage(self, symbol: str) -> Decimal | None:
        """The account leverage the venue applies to `symbol` (read only, never changed)."""
        ...

    async def fetch_order_book_top(self, symbols: Sequence[str]) -> dict[str, BookTop]: ...

    async def close(self) -> None: ...


@runtime_checkable
class ReferenceFeed(Protocol):
    """Public price reference of another venue (MEXC by default, any ccxt venue of
    EXTERNAL_PRICE_REFERENCE_EXCHANGES): no keys, read only."""

    name: str

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]: ...

    async def fetch_best_prices(self, symbols: Sequence[str]) -> dict[str, BookTop]: ...

    async def fetch_book_tops(self, symbols: Sequence[str], depth: int = 5) -> dict[str, BookTop]: ...

    async def close(self) -> None: ...


@runtime_checkable
class CandleHistory(Protocol):
    """Public candle history of a venue, one request per page (`crot download`; HTX, MEXC).

    Rows are ``[open_ms, open, high, low, close, volume_in_coins]``, oldest first, as served
    (values unchecked, the forming candle included); the window is [since_ms, until_ms) and
    the caller keeps it within the venue's page limit (2000 candles on HTX and MEXC). Errors
    are the typed hierarchy, after the adapter's own retries."""

    name: str

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]: ...

    async def fetch_candles_page(self, symbol: str, timeframe: str, since_ms: int,
                                 until_ms: int) -> list[list[float]]: ...

    async def close(self) -> None: ...


@runtime_checkable
class FundingHistory(Protocol):
    """Recorded funding events of a venue, one request per page (`crot download`; HTX).

    ``(funding_time_ms, rate)`` in [since_ms, until_ms), at most ``limit`` rows, in the venue's
    order; a page of ``limit`` rows may be truncated (the caller narrows the window)."""

    async def fetch_funding_history_page(self, symbol: str, since_ms: int, until_ms: int,
                                         limit: int) -> list[tuple[int, float]]: ...


async def amend_by_cancel_replace(
    exchange: Exchange,
    order: Order,
    *,
    new_client_order_id: int,
    price: Decimal | None = None,
    amount: Decimal | None = None,
) -> Order | None:
    """Amend for venues without a native amend.

    Limits: cancel first, then re-place at most the *remaining* amount, so a partial fill that
    happened before the cancel is never re-bought. Stops: place the new stop first and cancel
    the old one afterwards, so the position is never without a stop; only if the venue refuses
    two stops at once (closeable amount reserved) is the order reversed.
    """
    if order.client_order_id is not None and new_client_order_id == order.client_order_id:
        raise InvalidOrder("an amended order needs a new client order id")
    if order.kind == "stop_loss":
        position_side = reduced_position_side(order.side)
        trigger = price if price is not None else order.trigger_price
        if trigger is None:
            raise InvalidOrder("stop order without trigger price")
        new_amount = amount if amount is not None else order.amount
        try:
            new = await exchange.place_stop_loss(
                order.symbol, position_side, new_amount, trigger, new_client_order_id
            )
        except ReduceOnlyFrozen:
            await exchange.cancel_order(order)
            return await exchange.place_stop_loss(
                order.symbol, position_side, new_amount, trigger, new_client_order_id
            )
        await exchange.cancel_order(order)
        return new
    if order.kind != "limit" or not (order.reduce_only or order.post_only):
        raise InvalidOrder(f"cannot amend a {order.kind} order (post-only/reduce-only limits and stops only)")
    final = await exchange.cancel_order(order)
    if final.status == "open":
        # two live orders (old and replacement) could both fill: wait for the cancel to land
        raise CancelNotConfirmed(f"order {order.id} still open after cancel", venue=exchange.name)
    if final.status == "filled":
        return None
    remaining = order.amount - max(final.filled, order.filled)
    if remaining <= 0:
        return None
    new_amount = remaining if amount is None else min(amount, remaining)
    new_price = price if price is not None else order.price
    if new_price is None:
        raise InvalidOrder("limit order without price")
    if order.reduce_only:
        return await exchange.place_reduce_only_limit(
            order.symbol, reduced_position_side(order.side), new_amount, new_price, new_client_order_id
        )
    return await exchange.place_post_only(order.symbol, order.side, new_amount, new_price, new_client_order_id)
