"""Carries out planned actions on the exchange, one at a time, in order.

Each order intent is written to the state store before it is sent and updated after, and every
outcome is published as an event. Rejections the strategy expects (post-only would cross,
closeable amount frozen, not enough margin) are outcomes, not errors; a transient failure that
survived the adapter's retries ends the cycle's remaining non-protective actions, since the
next cycle re-plans from a fresh snapshot anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from engine.exchange import errors as E
from engine.exchange.base import Exchange
from engine.exchange.client_ids import client_order_id
from engine.exchange.types import Order, closing_side
from engine.store.state import StateStore

from .actions import Action, Cancel, CloseMarket, OpenMarket, PlaceEntry, PlaceExit, PlaceStop
from .events import ErrorEvent, EventBus, OrderEvent, StopEvent

log = logging.getLogger("crot.executor")


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: str  # done | rejected | frozen | failed | skipped
    order: Order | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "done"


class Executor:
    def __init__(self, exchange: Exchange, store: StateStore, bus: EventBus, profile: str):
        self.exchange = exchange
        self.store = store
        self.bus = bus
        self.profile = profile

    async def run(self, actions: list[Action], now_ms: int) -> list[Outcome]:
        outcomes: list[Outcome] = []
        broken = False
        for action in actions:
            protective = isinstance(action, (PlaceStop, CloseMarket))
            if broken and not protective:
                outcomes.append(Outcome(action, "skipped", detail="exchange unavailable this cycle"))
                continue
            try:
                outcome = await self._one(action, now_ms)
            except E.TransientError as exc:
                broken = True
                outcome = Outcome(action, "failed", detail=f"{type(exc).__name__}: {exc}")
                self._order_event(action, "failed", now_ms, outcome.detail)
            except E.ExchangeError as exc:
                outcome = Outcome(action, "failed", detail=f"{type(exc).__name__}: {exc}")
                self._order_event(action, "failed", now_ms, outcome.detail)
            except Exception as exc:
                # not the exchange (the state file, a bug): the other stops still go out; what
                # adds risk waits for the next cycle
                log.exception("%s failed", type(action).__name__)
                broken = True
                outcome = Outcome(action, "failed", detail=f"{type(exc).__name__}: {E.redact(exc)}")
                self._order_event(action, "failed", now_ms, outcome.detail)
            outcomes.append(outcome)
        return outcomes

    # -- one action ------------------------------------------------------------------------
    async def _one(self, a: Action, now_ms: int) -> Outcome:
        if isinstance(a, Cancel):
            final = await self._cancel(a.order, now_ms, a.purpose, a.reason)
            return Outcome(a, "done", final)
        if isinstance(a, PlaceEntry):
            side = "buy" if a.position_side == "long" else "sell"
            await self._intent(a.client_order_id, a.symbol, a.purpose, a.intent_key, side, a.price, a.amount, now_ms)
            try:
                order = await self.exchange.place_post_only(a.symbol, side, a.amount, a.price, a.client_order_id,
                                                            stop_loss=a.stop_trigger)
            except (E.PostOnlyWouldCross, E.InsufficientMargin, E.PriceOutOfBand, E.InvalidOrder) as exc:
                return await self._rejected(a, exc, now_ms)
            return await self._placed(a, order, now_ms)
        if isinstance(a, PlaceExit):
            await self._intent(a.client_order_id, a.symbol, a.purpose, a.intent_key,
                               closing_side(a.position_side), a.price, a.amount, now_ms)
            try:
                order = await self.exchange.place_reduce_only_limit(
                    a.symbol, a.position_side, a.amount, a.price, a.client_order_id)
            except E.ReduceOnlyFrozen:
                await self.store.update_order(a.client_order_id, "frozen", now_ms, note="closeable reserved")
                if a.fallback is not None:
                    # a close that must not wait (the runner's): at market now, the way a market
                    # close makes room (stops cancelled only right before a second attempt)
                    self._order_event(a, "rejected", now_ms, "closeable amount reserved; closing at market")
                    return await self._close(a.fallback, now_ms)
                self._order_event(a, "rejected", now_ms, "closeable amount reserved; waiting")
                return Outcome(a, "frozen")
            except (E.PriceOutOfBand, E.InvalidOrder) as exc:
                return await self._rejected(a, exc, now_ms)
            return await self._placed(a, order, now_ms)
        if isinstance(a, OpenMarket):
            side = "buy" if a.position_side == "long" else "sell"
            await self._intent(a.client_order_id, a.symbol, a.purpose, a.intent_key, side, None, a.amount, now_ms)
            try:
                order = await self.exchange.open_market(a.symbol, side, a.amount, a.client_order_id)
            except (E.InsufficientMargin, E.PriceOutOfBand, E.InvalidOrder) as exc:
                return await self._rejected(a, exc, now_ms)
            return await self._placed(a, order, now_ms)
        if isinstance(a, PlaceStop):
            return await self._stop(a, now_ms)
        if isinstance(a, CloseMarket):
            return await self._close(a, now_ms)
        raise TypeError(f"unknown action {a!r}")

    async def _close(self, a: CloseMarket, now_ms: int) -> Outcome:
        """Reduce-only market close. The close goes out first with the stop still resting;
        the stop is cancelled only once the position is gone, so a close that is refused or
        times out leaves the position protected. Exit limits are cancelled before (they only
        take profit, and reserve the closeable amount). On a venue where the stop reserves the
        closeable amount too (the close is refused for it), the stop is cancelled right before
        a second attempt - the only window without it."""
        stops = [o for o in a.cancel_first if o.kind == "stop_loss"]
        for o in a.cancel_first:
            if o.kind != "stop_loss":
                await self._cancel(o, now_ms, "exit", f"before {a.reason}")
        await self._intent(a.client_order_id, a.symbol, "close", a.intent_key,
                           closing_side(a.position_side), None, a.amount, now_ms, required=False)
        try:
            try:
                order = await self.exchange.close_reduce_only_market(
                    a.symbol, a.position_side, a.amount, a.client_order_id)
            except E.ReduceOnlyFrozen:
                if not stops:
                    raise
                for o in stops:
                    await self._cancel(o, now_ms, "stop", f"the venue reserves its amount; {a.reason} close")
                stops = []
                order = await self.exchange.close_reduce_only_market(
                    a.symbol, a.position_side, a.amount, a.client_order_id)
        except (E.ReduceOnlyFrozen, E.InvalidOrder) as exc:
            await self._update(a.client_order_id, "rejected", now_ms, note=type(exc).__name__)
            self._order_event(a, "rejected", now_ms, type(exc).__name__)
            return Outcome(a, "rejected", detail=type(exc).__name__)
        if order.status in ("canceled", "rejected", "expired") and order.filled <= 0:
            # accepted, then dropped unfilled: say so (the next cycle plans a new close)
            await self._update(a.client_order_id, order.status, now_ms, exchange_id=order.id)
            self._order_event(a, "rejected", now_ms, f"close {order.status} without a fill", order)
            return Outcome(a, "rejected", order, f"close {order.status} without a fill")
        outcome = await self._placed(a, order, now_ms)
        if a.whole and order.filled >= a.amount:
            for o in stops:  # the position is gone: its stop has nothing left to protect
                await self._cancel(o, now_ms, "stop", f"position closed ({a.reason})")
        return outcome

    async def _stop(self, a: PlaceStop, now_ms: int) -> Outcome:
        side = closing_side(a.position_side)
        await self._intent(a.client_order_id, a.symbol, "stop", a.intent_key, side, a.trigger, a.amount, now_ms,
                           required=False)
        try:
            order = await self.exchange.place_stop_loss(
                a.symbol, a.position_side, a.amount, a.trigger, a.client_order_id)
        except E.ReduceOnlyFrozen:
            # Close orders reserve the closeable amount: the stop comes first. Cancel the exit
            # ladder (the planner restores it next cycle if size allows), then the old stops.
            for o in a.exit_orders:
                await self._cancel(o, now_ms, "exit", "make room for the hard stop")
            try:
                order = await self.exchange.place_stop_loss(
                    a.symbol, a.position_side, a.amount, a.trigger, a.client_order_id)
            except E.ReduceOnlyFrozen:
                cancelled = []
                for o in a.replaces:
                    try:
                        await self._cancel(o, now_ms, "stop", "replace (no room for two stops)")
                    except E.ExchangeError:
                        pass  # it may have been carried out: the placement below tells
                    cancelled.append(o)
                try:
                    order = await self.exchange.place_stop_loss(
                        a.symbol, a.position_side, a.amount, a.trigger, a.client_order_id)
                except E.ExchangeError:
                    # the replacement was refused or not answered: put the old stop back at
                    # once rather than leave the position without one until the next cycle
                    await self._restore(a, cancelled, now_ms)
                    raise
                a = PlaceStop(**{**a.__dict__, "replaces": ()})
        if not order.is_open:
            # A stop that is not resting protects nothing: keep the old ones, report it; the
            # next cycle (or the verify pass) plans a new stop version.
            await self._update(a.client_order_id, order.status, now_ms, exchange_id=order.id)
            self._order_event(a, "rejected", now_ms, f"stop {order.status}", order)
            return Outcome(a, "rejected", order, f"stop {order.status}")
        outcome = await self._placed(a, order, now_ms)
        self.bus.publish(StopEvent(now_ms, self.profile, a.symbol, "placed" if not a.replaces else "moved",
                                   order.trigger_price, order.amount, a.reason))
        for old in a.replaces:
            if old.client_order_id != a.client_order_id:
                await self._cancel(old, now_ms, "stop", "replaced")
        return outcome

    async def _restore(self, a: PlaceStop, cancelled: list[Order], now_ms: int) -> None:
        for old in cancelled:
            if old.trigger_price is None:
                continue
            cid = client_order_id(self.profile, a.symbol, "stop", f"restore:{old.client_order_id}:{a.client_order_id}")
            await self._intent(cid, a.symbol, "stop", f"{a.intent_key}:restore", closing_side(a.position_side),
                               old.trigger_price, old.amount, now_ms, required=False)
            try:
                back = await self.exchange.place_stop_loss(a.symbol, a.position_side, old.amount,
                                                           old.trigger_price, cid)
            except E.ExchangeError as exc:
                if not isinstance(exc, E.ReduceOnlyFrozen):  # frozen: the old stop was never cancelled
                    self._order_event(a, "failed", now_ms, f"old stop not restored: {type(exc).__name__}")
                return
            await self._update(cid, "open" if back.is_open else back.status, now_ms, exchange_id=back.id)
            self.bus.publish(StopEvent(now_ms, self.profile, a.symbol, "placed", back.trigger_price, back.amount,
                                       "restored: its replacement was refused"))
            return  # one stop back is enough

    # -- helpers ---------------------------------------------------------------------------
    async def _rejected(self, a: PlaceEntry | PlaceExit | OpenMarket, exc: Exception, now_ms: int) -> Outcome:
        """A placement the venue refused in a way the strategy expects: recorded, reported."""
        await self.store.update_order(a.client_order_id, "rejected", now_ms, note=type(exc).__name__)
        self._order_event(a, "rejected", now_ms, type(exc).__name__)
        return Outcome(a, "rejected", detail=type(exc).__name__)

    async def _intent(self, cid: int, symbol: str, purpose: str, key: str, side: str,
                      price: Decimal | None, amount: Decimal, now_ms: int, *, required: bool = True) -> None:
        """The intent record before an order is sent. `required=False` (stops and closes): a
        state file that cannot be written (disk full) must not keep a position unprotected;
        the order goes out anyway and the failure is reported."""
        try:
            await self.store.record_intent(client_order_id=cid, profile=self.profile, symbol=symbol,
                                           purpose=purpose, intent_key=key, side=side, price=price,
                                           amount=amount, now_ms=now_ms)
        except Exception as exc:
            if required:
                raise
            self._store_failed(now_ms, symbol, exc)

    async def _update(self, cid: int, status: str, now_ms: int, **kw: object) -> None:
        """Order status after the venue answered: the order exists whatever the state file
        says, so a failed write is reported, never raised."""
        try:
            await self.store.update_order(cid, status, now_ms, **kw)  # type: ignore[arg-type]
        except Exception as exc:
            self._store_failed(now_ms, "", exc)

    def _store_failed(self, now_ms: int, symbol: str, exc: Exception) -> None:
        log.error("state file write failed: %s", exc)
        self.bus.publish(ErrorEvent(now_ms, "state", f"order record not written{' for ' + symbol if symbol else ''}: "
                                    f"{type(exc).__name__}: {exc}", profile=self.profile))

    async def _placed(self, a: Action, order: Order, now_ms: int) -> Outcome:
        status = "open" if order.is_open else order.status
        await self._update(order.client_order_id or 0, status, now_ms, exchange_id=order.id)
        self._order_event(a, "placed", now_ms, "", order)
        return Outcome(a, "done", order)

    async def _cancel(self, order: Order, now_ms: int, purpose: str, reason: str) -> Order:
        try:
            final = await self.exchange.cancel_order(order)
        except E.OrderNotFound:
            final = order
        if order.client_order_id:
            await self._update(order.client_order_id, final.status, now_ms)
        self.bus.publish(OrderEvent(now_ms, self.profile, order.symbol, "cancelled", purpose,
                                    order.client_order_id, order.side, order.price or order.trigger_price,
                                    order.amount, order.reduce_only, reason))
        return final

    def _order_event(self, a: Action, action: str, now_ms: int, reason: str, order: Order | None = None) -> None:
        if isinstance(a, Cancel):
            return
        purpose = getattr(a, "purpose", None) or ("stop" if isinstance(a, PlaceStop) else "close")
        if isinstance(a, (PlaceEntry, OpenMarket)):
            side = "buy" if a.position_side == "long" else "sell"
            price, reduce_only = getattr(a, "price", None), False
        else:
            side = closing_side(a.position_side)
            price = getattr(a, "price", None) or getattr(a, "trigger", None)
            reduce_only = True
        self.bus.publish(OrderEvent(now_ms, self.profile, a.symbol, action, purpose, a.client_order_id,
                                    side, price, a.amount, reduce_only, reason or getattr(a, "reason", "")))
