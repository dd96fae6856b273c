"""The BTC hedge on the account: one position on the hedge coin's perpetual, opposite the
strategy's net exposure (engine/risk/hedge.py has the arithmetic).

The hedge is a position like any other: it gets a reduce-only stop on the exchange from the
moment it exists (HARD_STOP_LOSS_PCT of the profile of its side, from its entry price), placed
in the protection pass before anything else of a step; while the stop is not confirmed both
profiles take no new risk, and after HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC the hedge is closed
reduce-only at market. Its orders go through an `Executor` of profile "hedge" (intent written
first, every outcome published and in the audit trail). The hedge coin is never one of the
traded coins (settings rule), so the profiles never see its position or orders.

Client ids come from a counter saved before each order is sent: a crash between the save and
the send loses nothing (the next plan starts from the position read from the exchange), and a
retry of the same order after a lost reply carries the same id (never a second order).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, Callable

from engine.exchange.base import Exchange
from engine.exchange.client_ids import client_order_id
from engine.exchange.precision import round_stop_trigger
from engine.exchange.types import Market, Order, Position, closing_side
from engine.risk import hedge as H
from engine.store.state import ACCOUNT_KEY, StateStore

from .actions import Action, Cancel, CloseMarket, OpenMarket, PlaceStop
from .events import ErrorEvent, EventBus, FillEvent, Positions, PositionView, StopEvent
from .executor import Executor, Outcome
from .positions import is_covered

log = logging.getLogger("crot.hedge")

PROFILE = "hedge"
STATE_KEY = "hedge"
#: after a close-out for want of a stop, the hedge is not reopened for this many times the longer
#: of HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC and BTC_HEDGE_COOLDOWN_SEC
REOPEN_PAUSE = 10


class HedgeRunner:
    def __init__(self, params: H.HedgeParams, market: Market, exchange: Exchange, store: StateStore, bus: EventBus,
                 side_settings: Callable[[str], Any], say: Callable[[str, int], None]):
        self.params = params
        self.market = market
        self.symbol = market.symbol
        self.store = store
        self.bus = bus
        self.side_settings = side_settings  # "long"/"short" -> that profile's settings (the stop)
        self.say = say  # (message, now_ms): the engine's status line
        self.exchange = exchange
        self.executor = Executor(exchange, store, bus, PROFILE)
        self._contracts_seen: Decimal | None = None  # the hedge's size at the last step (fills)
        self._fills_since: int | None = None
        self._fills_seen: dict[str, None] = {}
        self.seq = 0  # order counter: client ids
        self.last_order_ms: int | None = None
        self.active = False  # a hedge position of ours may be open (kept while the hedge is off)
        self.unprotected_since: int | None = None
        self.paused_until: int | None = None  # no reopening after a close-out for want of a stop
        self.last_plan: H.HedgePlan | None = None
        self._said = ""

    # -- state -----------------------------------------------------------------------------
    async def load(self) -> None:
        data = await self.store._get(ACCOUNT_KEY, STATE_KEY) or {}
        self.seq = int(data.get("seq", 0))
        self.last_order_ms = data.get("last_order_ms")
        self.active = bool(data.get("active", False))
        self.unprotected_since = data.get("unprotected_since")
        self.paused_until = data.get("paused_until")
        self._fills_seen = {str(x): None for x in data.get("fills_seen", [])}

    async def _save(self) -> None:
        await self.store._put(ACCOUNT_KEY, STATE_KEY, {"seq": self.seq, "last_order_ms": self.last_order_ms,
                                                       "active": self.active,
                                                       "unprotected_since": self.unprotected_since,
                                                       "paused_until": self.paused_until,
                                                       "fills_seen": list(self._fills_seen)})

    async def _save_safe(self, now_ms: int) -> None:
        """The protection path's save: a state file that cannot be written (disk full) must not
        keep the hedge's stop or its close-out from going out; the failure is reported."""
        try:
            await self._save()
        except Exception as exc:
            self._status(now_ms, f"hedge state not written: {type(exc).__name__}: {exc}", error=True)

    async def _next_id(self, purpose: str, now_ms: int, *, required: bool = True) -> tuple[int, str]:
        """A new client id, the counter saved before the order is sent (see module doc). The
        key carries the step time too, so ids stay unique even if a stored counter is lost.
        `required=False` (stops and closes): sent even when the save fails."""
        self.seq += 1
        if required:
            await self._save()
        else:
            await self._save_safe(now_ms)
        key = f"hedge:{purpose}:n{self.seq}:t{now_ms}"
        return client_order_id(PROFILE, self.symbol, purpose, key), key

    @property
    def manages(self) -> bool:
        """Whether the runner has anything to do: the hedge is on, or a hedge of ours is open."""
        return self.params.enabled or self.active

    # -- the stop --------------------------------------------------------------------------
    def block_reason(self) -> str:
        if self.unprotected_since is not None:
            return f"the {self.symbol} hedge has no confirmed stop"
        return ""

    def _orders(self, snap: Any) -> list[Order]:
        return [o for o in snap.orders if o.symbol == self.symbol and o.is_open]

    def _trigger(self, pos: Position, pct: Decimal) -> Decimal | None:
        """HARD_STOP_LOSS_PCT from the entry, rounded toward the market; None when there is
        no valid trigger (the position is then closed like one whose stop is refused)."""
        raw = pos.entry_price * (1 - pct) if pos.side == "long" else pos.entry_price * (1 + pct)
        try:
            return round_stop_trigger(pos.side, raw, self.market.price_step)  # type: ignore[arg-type]
        except (ValueError, ArithmeticError):
            return None

    async def protect(self, snap: Any, now_ms: int) -> bool:
        """Verify and place the hedge's stop; True when anything was sent.

        As for any position: a stop of the hedge's size and side must rest on the exchange;
        while it does not, new risk is blocked on both sides, and after
        HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC (or at once when the price is past the stop) the
        hedge is closed reduce-only at market and not reopened for a pause (`REOPEN_PAUSE`
        times the longer of that limit and BTC_HEDGE_COOLDOWN_SEC), so a venue that refuses
        its stops cannot keep it open unprotected, again and again."""
        if self.symbol in snap.unknown:
            return False  # its account did not answer: unknown, not gone
        pos: Position | None = snap.positions.get(self.symbol)
        if pos is None:
            changed = self.unprotected_since is not None
            self.unprotected_since = None
            leftovers = [o for o in self._orders(snap) if o.reduce_only and o.kind == "stop_loss"]
            if self.active and not self.params.enabled and not leftovers:
                self.active, changed = False, True
            if changed:
                await self._save_safe(now_ms)
            if leftovers and self.active:
                await self.executor.run([Cancel(o, "stop", "the hedge is closed") for o in leftovers], now_ms)
                return True
            return False
        if not self.active:
            self.active = True  # a position on the hedge market is the hedge (adopted)
            await self._save_safe(now_ms)
            self._status(now_ms, f"hedge: {pos.side} {pos.contracts} contracts found on {self.symbol}; "
                                 "managed as the hedge (stop, rebalancing)")
        p = self.side_settings(pos.side)
        if not p.hard_stop_loss_enabled:  # (said loudly at start: danger_warnings)
            if self.unprotected_since is not None:
                self.unprotected_since = None
                await self._save_safe(now_ms)
            return False
        stops = [o for o in self._orders(snap) if o.reduce_only and o.kind == "stop_loss"]
        mine = [o for o in stops if o.side == closing_side(pos.side)]
        exact = [o for o in mine if o.amount == pos.contracts]
        if exact:  # the stop of the hedge's size; any other stop on its market is stale
            if self.unprotected_since is not None:
                self.unprotected_since = None
                await self._save_safe(now_ms)
            stale = [o for o in stops if o is not exact[0]]
            if stale:
                await self.executor.run([Cancel(o, "stop", "replaced: the hedge changed size") for o in stale],
                                        now_ms)
            return bool(stale)
        if not is_covered(pos, mine, self.market) and self.unprotected_since is None:
            self.unprotected_since = now_ms  # (a larger stop still covers it while it is re-sized)
            await self._save_safe(now_ms)
        limit_ms = int(p.hard_stop_unprotected_close_after_sec * 1000)
        price = _price(snap, self.symbol, pos)
        trigger = self._trigger(pos, Decimal(str(p.hard_stop_loss_pct)))
        crossed = trigger is not None and price is not None and (
            (pos.side == "long" and trigger >= price) or (pos.side == "short" and trigger <= price))
        overdue = self.unprotected_since is not None and now_ms - self.unprotected_since >= limit_ms
        action: Action
        if crossed or overdue or trigger is None:
            if trigger is None and not overdue and not crossed:
                self._status(now_ms, f"hedge {self.symbol}: no valid stop trigger from entry "
                                     f"{pos.entry_price}; closed at market after {limit_ms / 1000:g} s", error=True)
                return False
            cid, key = await self._next_id("close", now_ms, required=False)
            why = "past its stop price" if crossed else \
                f"no confirmed stop for {(now_ms - (self.unprotected_since or now_ms)) / 1000:.0f} s"
            action = CloseMarket(self.symbol, pos.side, pos.contracts, cid, key, "unprotected", tuple(stops))
            pause_ms = REOPEN_PAUSE * max(limit_ms, self.params.cooldown_ms)
            self.last_order_ms, self.paused_until = now_ms, now_ms + pause_ms
            await self._save_safe(now_ms)
            self.bus.publish(StopEvent(now_ms, PROFILE, self.symbol, "emergency_close", trigger, pos.contracts,
                                       f"hedge {why}: closing reduce-only at market"))
            self._status(now_ms, f"hedge {self.symbol} {why}: closing reduce-only at market; not reopened for "
                                 f"{pause_ms / 60_000:g} min", error=True)
        else:
            cid, key = await self._next_id("stop", now_ms, required=False)
            action = PlaceStop(self.symbol, pos.side, trigger, pos.contracts, cid, key, replaces=tuple(stops),
                               reason="protect the hedge")
        outcomes = await self.executor.run([action], now_ms)
        if all(o.ok for o in outcomes) and isinstance(action, PlaceStop):
            self.unprotected_since = None
            await self._save_safe(now_ms)
        return True

    # -- rebalancing -----------------------------------------------------------------------
    async def rebalance(self, snap: Any, markets: dict[str, Market], now_ms: int, blocked: str = "") -> bool:
        """Move the hedge toward its target with at most one order; True when one was sent.
        `blocked`: why no new risk may be taken (the engine's risk block): the hedge may then be
        reduced or closed, not opened or increased."""
        if self.paused_until is not None and now_ms < self.paused_until:
            blocked = "; ".join(x for x in (blocked, "the hedge was closed for want of a stop, paused") if x)
        prices = {s: _price(snap, s, pos) for s, pos in snap.positions.items() if s in markets}
        net = H.net_exposure(snap.positions.values(), {s: p for s, p in prices.items() if p is not None}, markets)
        pos = snap.positions.get(self.symbol)
        book = snap.books.get(self.symbol)
        spread = None if book is None or not book.valid else float((book.ask - book.bid) / book.mid * 10_000)
        price = _price(snap, self.symbol, pos)
        plan = H.plan(self.params, net, pos, price, self.market, spread, now_ms, self.last_order_ms, blocked)
        self.last_plan = plan
        if plan.order is None:
            if plan.why != self._said and "threshold" not in plan.why and "cooling" not in plan.why:
                self._status(now_ms, f"hedge {self.symbol}: target {plan.target:+.2f} USDT, held "
                                     f"{plan.current:+.2f}: {plan.why}")
            self._said = plan.why
            return False
        o = plan.order
        self._said = ""
        reason = (f"{plan.why}: net exposure {net:+.2f} USDT, target {plan.target:+.2f}, held {plan.current:+.2f}")
        if o.kind == "reduce":
            cid, key = await self._next_id("close", now_ms)
            # the stops go along: cancelled after a whole close, or before a second attempt when
            # the venue reserves the closeable amount for them (re-sized by `protect` right after)
            stops = tuple(x for x in self._orders(snap) if x.reduce_only and x.kind == "stop_loss")
            whole = pos is None or o.contracts >= pos.contracts
            action: Action = CloseMarket(self.symbol, o.position_side, o.contracts, cid, key, "hedge",  # type: ignore[arg-type]
                                         stops, whole=whole)
        else:
            cid, key = await self._next_id("open", now_ms)
            action = OpenMarket(self.symbol, o.position_side, o.contracts, cid, key, reason)  # type: ignore[arg-type]
        self.last_order_ms = now_ms
        self.active = True
        await self._save()
        outcomes: list[Outcome] = await self.executor.run([action], now_ms)
        bad = [x for x in outcomes if not x.ok]
        self._status(now_ms, f"hedge {self.symbol}: {reason}: {o.kind} {o.contracts} contracts "
                             f"({o.notional:.2f} USDT){': ' + bad[0].status + ' ' + bad[0].detail if bad else ''}",
                     error=bool(bad))
        return True

    # -- the record ------------------------------------------------------------------------
    async def record_fills(self, snap: Any, now_ms: int, fetch: bool = True) -> None:
        """Fill events (profile "hedge": the log, the audit trail) for the hedge's fills since
        the last step whenever its size changed (its own orders, its stop, a liquidation); read
        only then, so a quiet hedge costs no request. Fills are for the record: a failed read
        is logged and trading goes on."""
        pos = snap.positions.get(self.symbol)
        contracts = pos.contracts if pos is not None else Decimal(0)
        since, self._fills_since = self._fills_since, now_ms
        if contracts == self._contracts_seen:
            return
        self._contracts_seen = contracts
        if not fetch or since is None:
            return
        try:
            # (5 min before the last step: a venue's fill time may lag its clock)
            fills = await self.exchange.fetch_fills([self.symbol], since - 300_000)
        except Exception as exc:
            log.warning("hedge fills unavailable: %s", exc)
            return
        new = False
        for f in sorted(fills, key=lambda f: (f.ts_ms, f.id)):
            if f.id in self._fills_seen:
                continue
            self._fills_seen[f.id] = None
            new = True
            known = await self.store.order_purpose_of_fill(f.client_order_id, f.order_id)
            self.bus.publish(FillEvent(f.ts_ms, PROFILE, f.symbol, f.side, f.price, f.amount, f.fee,
                                       known[1] if known else "unknown"))
        while len(self._fills_seen) > 200:
            self._fills_seen.pop(next(iter(self._fills_seen)))
        if new:
            await self._save_safe(now_ms)  # the ids seen, so a restart does not record a fill twice

    # -- views -----------------------------------------------------------------------------
    def publish(self, snap: Any) -> None:
        pos = snap.positions.get(self.symbol)
        views: tuple[PositionView, ...] = ()
        if pos is not None:
            price = _price(snap, self.symbol, pos) or pos.entry_price
            stops = [o for o in self._orders(snap) if o.kind == "stop_loss"]
            stop = stops[0].trigger_price if stops else None
            sign = 1 if pos.side == "long" else -1
            upnl = (price - pos.entry_price) * pos.contracts * self.market.contract_size * sign
            views = (PositionView(PROFILE, self.symbol, pos.side, pos.contracts, pos.entry_price, price,
                                  pos.contracts * self.market.contract_size * price, upnl, stop,
                                  float(abs(price - stop) / price) if stop and price else None, "hedge", 0,
                                  0, False, self.last_order_ms or snap.now_ms),)
        self.bus.publish(Positions(snap.now_ms, PROFILE, views))

    def _status(self, now_ms: int, message: str, *, error: bool = False) -> None:
        log.log(logging.ERROR if error else logging.INFO, "%s", message)
        if error:
            self.bus.publish(ErrorEvent(now_ms, "hedge", message, profile=PROFILE))
        else:
            self.say(message, now_ms)


def _price(snap: Any, symbol: str, pos: Position | None) -> Decimal | None:
    """The book's mid, else the mark price (as the profiles value positions); None: unknown."""
    book = snap.books.get(symbol)
    if book is not None and book.mid is not None:
        return book.mid
    if pos is not None and pos.mark_price is not None and pos.mark_price > 0:
        return pos.mark_price
    return None
