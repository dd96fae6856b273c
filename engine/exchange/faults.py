"""Fault injection around any `Exchange`, reproducible by seed (chaos tests, paper-mode drills).

Faults and where they apply:

| fault | calls | effect |
|---|---|---|
| `timeout` | all | `ExchangeTimeout` *before* the inner call (nothing happened) |
| `network` | all | `NetworkError` before the inner call |
| `rate_limit` | all | `RateLimited` before the inner call |
| `reject` | place_* | `InvalidOrder` before the inner call |
| `lost_response` | place_*, cancel | the inner call RUNS, then the caller gets `ExchangeTimeout` |
| `delayed_fill` | fetch_fills | a new fill is hidden for 1..`max_fill_delay_polls` polls |

A caller cannot tell a pre-send timeout from a lost response - exactly the ambiguity a live venue
produces. A delayed fill is only released if the inner exchange still returns it for the
caller's `since_ms`, as on a real venue: polling with a `since` that skipped past it loses it,
which is what a runtime must be tested against (poll with an overlap).

Every call draws the same number of random values in the same order, so a given seed and call
sequence always yields the same faults (`injected` lists them).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from . import errors as E
from .base import Exchange, amend_by_cancel_replace
from .types import Balance, BookTop, Fill, FundingRate, Market, Order, OrderKind, Position, PositionSide, Side

T = TypeVar("T")


@dataclass(frozen=True)
class FaultRates:
    timeout: float = 0.0
    network: float = 0.0
    rate_limit: float = 0.0
    reject: float = 0.0
    lost_response: float = 0.0
    delayed_fill: float = 0.0
    max_fill_delay_polls: int = 3

    def __post_init__(self) -> None:
        for name in ("timeout", "network", "rate_limit", "reject", "lost_response", "delayed_fill"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} rate must be in [0, 1], got {value}")
        if self.max_fill_delay_polls < 1:
            raise ValueError("max_fill_delay_polls must be >= 1")


class FaultInjectingExchange:
    """Wraps `inner`; `injected` records (call, fault) for every fault raised."""

    def __init__(self, inner: Exchange, *, seed: int, rates: FaultRates):
        self.inner = inner
        self.rates = rates
        self.name = f"faulty({inner.name})"
        self._rng = random.Random(seed)
        self.injected: list[tuple[str, str]] = []
        self._held: dict[str, int] = {}  # fill id -> polls left before it is shown
        self._released: set[str] = set()

    # ------------------------------------------------------------------ fault machinery

    def _draws(self) -> tuple[float, float, float, float, float]:
        r = self._rng.random
        return r(), r(), r(), r(), r()

    async def _call(self, what: str, call: Callable[[], Awaitable[T]], *, place: bool = False, write: bool = False) -> T:
        timeout, network, limited, reject, lost = self._draws()
        rates = self.rates
        if timeout < rates.timeout:
            self.injected.append((what, "timeout"))
            raise E.ExchangeTimeout(f"injected timeout in {what}", venue=self.name)
        if network < rates.network:
            self.injected.append((what, "network"))
            raise E.NetworkError(f"injected network error in {what}", venue=self.name)
        if limited < rates.rate_limit:
            self.injected.append((what, "rate_limit"))
            raise E.RateLimited(f"injected rate limit in {what}", venue=self.name)
        if place and reject < rates.reject:
            self.injected.append((what, "reject"))
            raise E.InvalidOrder(f"injected rejection of {what}", venue=self.name)
        result = await call()
        if write and lost < rates.lost_response:
            self.injected.append((what, "lost_response"))
            raise E.ExchangeTimeout(f"injected lost response in {what} (the call was executed)", venue=self.name)
        return result

    # ------------------------------------------------------------------ reads

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        return await self.inner.load_markets(reload)

    def market(self, symbol: str) -> Market:
        return self.inner.market(symbol)

    async def fetch_balance(self) -> Balance:
        return await self._call("fetch_balance", self.inner.fetch_balance)

    async def fetch_positions(self, symbols: Sequence[str] | None = None) -> list[Position]:
        return await self._call("fetch_positions", lambda: self.inner.fetch_positions(symbols))

    async def fetch_open_orders(self, symbols: Sequence[str] | None = None) -> list[Order]:
        return await self._call("fetch_open_orders", lambda: self.inner.fetch_open_orders(symbols))

    async def fetch_order(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        client_order_id: int | None = None,
        kind: OrderKind = "limit",
    ) -> Order | None:
        return await self._call(
            "fetch_order",
            lambda: self.inner.fetch_order(symbol, order_id=order_id, client_order_id=client_order_id, kind=kind),
        )

    async def fetch_fills(self, symbols: Sequence[str], since_ms: int) -> list[Fill]:
        fills = await self._call("fetch_fills", lambda: self.inner.fetch_fills(symbols, since_ms))
        visible = []
        for fill in fills:
            if fill.id not in self._held and fill.id not in self._released:
                if self._rng.random() < self.rates.delayed_fill:
                    self._held[fill.id] = self._rng.randint(1, self.rates.max_fill_delay_polls)
                    self.injected.append(("fetch_fills", "delayed_fill"))
                else:
                    self._released.add(fill.id)
            if fill.id in self._held:
                if self._held[fill.id] > 0:
                    self._held[fill.id] -= 1
                    continue
                del self._held[fill.id]
                self._released.add(fill.id)
            visible.append(fill)
        return visible

    async def fetch_funding_rates(self, symbols: Sequence[str]) -> dict[str, FundingRate]:
        return await self._call("fetch_funding_rates", lambda: self.inner.fetch_funding_rates(symbols))

    async def fetch_leverage(self, symbol: str) -> Decimal | None:
        return await self._call("fetch_leverage", lambda: self.inner.fetch_leverage(symbol))

    async def fetch_order_book_top(self, symbols: Sequence[str]) -> dict[str, BookTop]:
        return await self._call("fetch_order_book_top", lambda: self.inner.fetch_order_book_top(symbols))

    # ------------------------------------------------------------------ writes

    async def place_post_only(
        self, symbol: str, side: Side, amount: Decimal, price: Decimal, client_order_id: int,
        *, stop_loss: Decimal | None = None,
    ) -> Order:
        return await self._call(
            "place_post_only",
            lambda: self.inner.place_post_only(symbol, side, amount, price, client_order_id, stop_loss=stop_loss),
            place=True,
            write=True,
        )

    async def place_reduce_only_limit(
        self, symbol: str, position_side: PositionSide, amount: Decimal, price: Decimal, client_order_id: int
    ) -> Order:
        return await self._call(
            "place_reduce_only_limit",
            lambda: self.inner.place_reduce_only_limit(symbol, position_side, amount, price, client_order_id),
            place=True,
            write=True,
        )

    async def close_reduce_only_market(
        self, symbol: str, position_side: PositionSide, amount: Decimal, client_order_id: int
    ) -> Order:
        return await self._call(
            "close_reduce_only_market",
            lambda: self.inner.close_reduce_only_market(symbol, position_side, amount, client_order_id),
            place=True,
            write=True,
        )

    async def open_market(self, symbol: str, side: Side, amount: Decimal, client_order_id: int) -> Order:
        return await self._call(
            "open_market",
            lambda: self.inner.open_market(symbol, side, amount, client_order_id),
            place=True,
            write=True,
        )

    async def place_stop_loss(
        self, symbol: str, position_side: PositionSide, amount: Decimal, trigger_price: Decimal, client_order_id: int
    ) -> Order:
        return await self._call(
            "place_stop_loss",
            lambda: self.inner.place_stop_loss(symbol, position_side, amount, trigger_price, client_order_id),
            place=True,
            write=True,
        )

    async def cancel_order(self, order: Order) -> Order:
        return await self._call("cancel_order", lambda: self.inner.cancel_order(order), write=True)

    async def amend_order(
        self, order: Order, *, new_client_order_id: int, price: Decimal | None = None, amount: Decimal | None = None
    ) -> Order | None:
        # each step (cancel, place) goes through the faults on its own
        return await amend_by_cancel_replace(
            self, order, new_client_order_id=new_client_order_id, price=price, amount=amount
        )

    async def close(self) -> None:
        await self.inner.close()
