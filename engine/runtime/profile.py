"""One profile (long or short) of the engine: protect, reconcile, exit, enter, persist.

Stops first: `protect` verifies and places the hard stop of every position from the snapshot
alone, before the cycle plans anything (the engine runs it for both sides at the start of each
step), so a failing plan write, decision or other side cannot leave a position unprotected.
A stop that cannot be confirmed is retried with backoff, reported (UI, alert, audit trail),
blocks new entries and averaging on both sides, and after HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC
the position is closed reduce-only at market.

A cycle is: compare the exchange snapshot with the stored state and repair differences, plan
every position's stop and exits, manage entry ladders, pick and size new entries and averaging
adds, execute the actions (stops first), and save the state in one transaction. Planning reads
only the snapshot and the state, so a cycle interrupted by a crash is simply planned again on
restart; the deterministic client ids make the repeated orders the same orders.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from decimal import ROUND_UP, Decimal
from typing import Any, Callable

from engine.exchange.base import Exchange
from engine.exchange.client_ids import client_order_id
from engine.exchange.precision import D, notional
from engine.exchange.types import Fill, Market, Order, Position
from engine.market.candles import timeframe_minutes
from engine.exits.hard_stop import emergency_breached, stop_distance, stop_trigger
from engine.risk import account_pnl as ap
from engine.risk.averaging import AveragingInput, add_notional, averaging_checks
from engine.risk.sizing import AccountView, effective_leverage, entry_budget, entry_ladder
from engine.risk.volatility import EntryScaling, entry_scaling
from engine.settings import GlobalSettings, ProfileSettings
from engine.store.state import LadderMeta, PositionMeta, ProfileState, StateStore
from engine.strategy.selection import cooldown_until
from engine.strategy.signal import PULLBACK_GATES

from .actions import Action, Cancel, CloseMarket, PlaceEntry, PlaceExit, PlaceStop
from .codec import decode_plan, encode_plan
from .events import (
    Decisions, ErrorEvent, EventBus, FillEvent, Positions, PositionView, Repair, StopEvent, Stops, StopView,
    TradeClosed,
)
from .executor import Executor, Outcome
from .positions import (
    MarketContext, is_covered, plan_position, realized_windows, signal_of, stop_action, unprotected_close, wants_bank,
)
from .snapshot import Snapshot, order_profile, read_snapshot

log = logging.getLogger("crot.profile")


@dataclass
class Overlay:
    """Effects of the macro regime and the cross-exchange reference on one profile."""

    budget_multiplier: float = 1.0
    ladder_multiplier: float = 1.0
    entries_allowed: bool = True
    averaging_allowed: bool = True
    time_multiplier: float = 1.0
    reason: str = ""


@dataclass
class CycleInput:
    snapshot: Snapshot
    markets: dict[str, Market]
    decisions: dict[str, Any]  # symbol -> strategy Decision (None when not warm)
    contexts: dict[str, MarketContext]
    select: Callable[..., Any]  # the strategy's select_entries
    entry_context: Callable[..., Any]  # builds the strategy's EntryContext
    claimed: set[str]  # symbols the other profile holds or just ordered
    overlay: Overlay = field(default_factory=Overlay)
    new_candle: bool = True  # entries are only considered on a new closed candle
    entries_enabled: bool = True  # profile on and not paused
    averaging_blocked: set[str] = field(default_factory=set)  # reference checks forbid adding
    # why no new risk may be taken this step (a position of either side lacks a confirmed
    # stop): no entries, no averaging, resting entry orders cancelled; "" when none
    risk_blocked: str = ""
    # the shared account open-PnL series (engine/risk/account_pnl.py); None = not tracked
    account: ap.AccountPnlSeries | None = None


@dataclass
class Unprotected:
    """A position of ours seen without a confirmed exchange stop, and the escalation so far."""

    since_ms: int
    attempts: int = 0
    next_try_ms: int = 0
    detail: str = ""
    closing: bool = False  # the bounded time ran out: a reduce-only close is being sent
    close_alerted: bool = False


#: intent-key tags of the account-PnL guard's closes (the trade's reason comes from them)
UNLOAD_TAG = "account_unload"
TRAILING_TAG = "account_trailing"
#: profile_kv row of the guard: symbol -> time of its last profit unload (the cooldown), and
#: symbol -> why, for the positions an account trailing stop that fired is still closing
GUARD_KEY = "account_guard"

#: retry delays for a stop that could not be placed (ms, doubling, capped); the close-out
#: after HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC bounds the whole episode
STOP_RETRY_BASE_MS = 1_000
STOP_RETRY_MAX_MS = 15_000


@dataclass
class CycleResult:
    actions: list[Action]
    outcomes: list[Outcome]
    selected: tuple[str, ...]
    notes: list[str]


class ProfileRunner:
    def __init__(self, side: str, settings: ProfileSettings, exchange: Exchange, store: StateStore,
                 bus: EventBus, symbols: list[str], glob: GlobalSettings | None = None):
        self.side = side
        self.p = settings
        self.glob = glob or GlobalSettings()
        self.exchange = exchange
        self.store = store
        self.bus = bus
        self.symbols = list(symbols)
        self.state = ProfileState()
        self.executor = Executor(exchange, store, bus, side)
        self._tiny: set[str] = set()  # tiny partial entries to close this cycle
        self._foreign_reported: set[str] = set()
        self._hidden_reported: set[str] = set()  # hidden close orders reported (id:action)
        self.last_decisions: dict[str, Any] = {}
        self._fills_seen: dict[str, None] = {}  # fill ids already published (insertion-ordered)
        # FETCH_FILL_DETAILS_ON_SYNC off: symbol -> the reduce-only orders of its position seen
        # this run (by id), read once at the close for the exit price
        self._close_orders: dict[str, dict[str, Order]] = {}
        self._closes_sent: dict[str, Order] = {}  # sent since the last snapshot was taken in
        self.unprotected: dict[str, Unprotected] = {}  # symbol -> escalation state
        self._unprotected_saved: dict[str, int] = {}  # what the state file holds of it
        self._protected_at: int | None = None  # now_ms of the last protection pass
        self._closing: set[str] = set()  # symbols the protection pass is closing this step
        self._adopted: set[str] = set()  # adopted by the protection pass, repair not yet recorded
        self._stop_seen: dict[str, str] = {}  # symbol -> id of the covering stop last announced
        self._fills_unsaved = False  # fill events published since the last state save
        self._btc_closes: dict[int, float] = {}  # benchmark close by candle time (BTC-risk return)
        # account-PnL guard: symbol -> time of its last profit unload (the cooldown), and the
        # positions an account trailing stop that fired is closing (both kept across restarts)
        self._unloaded_ms: dict[str, int] = {}
        self._trailing: dict[str, str] = {}  # symbol -> why
        self._guard_saved: dict[str, Any] = {}

    async def load(self) -> None:
        self.state = await self.store.load_profile(self.side)
        # the bounded close-out time of a position without a stop runs across restarts
        self.unprotected = {s: Unprotected(t) for s, t in (await self.store.load_unprotected(self.side)).items()}
        self._unprotected_saved = {s: u.since_ms for s, u in self.unprotected.items()}
        try:
            stored = await self.store._get(self.side, GUARD_KEY) or {}
            self._unloaded_ms = {str(k): int(v) for k, v in stored.get("unloaded_ms", {}).items()}
            self._trailing = {str(k): str(v) for k, v in stored.get("trailing", {}).items()}
        except Exception as exc:  # start without it, say so
            log.error("%s: stored account-guard state unreadable (%s)", self.side, exc)
            self._unloaded_ms, self._trailing = {}, {}
        self._guard_saved = self._guard_state()

    async def _save_unprotected(self) -> None:
        """Persist the unprotected timers when the set changed (never fails the protection)."""
        now = {s: u.since_ms for s, u in self.unprotected.items()}
        if now == self._unprotected_saved:
            return
        try:
            await self.store.save_unprotected(self.side, now)
            self._unprotected_saved = now
        except Exception as exc:  # a full disk must not stop the stops: retried next pass
            log.error("%s: could not save the unprotected timers (%s)", self.side, exc)

    # -- the cycle -------------------------------------------------------------------------
    async def cycle(self, ci: CycleInput) -> CycleResult:
        now = ci.snapshot.now_ms
        pre: list[Outcome] = []
        if self._protected_at != now:
            # run on its own (not through Engine.step, which protects both sides first)
            pre = await self.protect(ci)
            if pre:
                ci = replace(ci, snapshot=await self._reread(ci.snapshot))
        blocked = ci.risk_blocked or self.block_reason()
        if blocked != ci.risk_blocked:
            ci = replace(ci, risk_blocked=blocked)
        if self.state.last_cycle_ms >= now:
            return CycleResult([], pre, (), ["cycle already done (restart)"])
        pending = await self.store.load_pending(self.side)
        notes: list[str] = []
        frozen_keys: dict[str, str] = {}
        if pending is not None and pending[0] == now:
            # A crash interrupted this very cycle: finish its plan (every action is idempotent
            # by client order id) instead of planning again from a half-changed account.
            _, text, stored = pending
            self.state = self._merged(stored)
            actions, selected = decode_plan(text)
            notes.append("resumed the interrupted cycle's plan")
        else:
            if pending is not None:
                # a crashed cycle's plan from an earlier time (the restart came later): it is
                # not resumed on a changed account, but the ids it may have sent stay used
                self._take_counters(pending[2])
            try:
                actions, selected, frozen_keys, notes = await self._plan(ci)
                await self.store.save_pending(self.side, now, encode_plan(actions, selected), self.state)
            except BaseException:
                # Planning changes the in-memory state; if it cannot finish, forget those
                # changes so the retry plans from what is stored, as a restart would (the
                # protection pass's stop and close counters are kept: their ids are used).
                self.state = self._merged(await self.store.load_profile(self.side))
                raise
        skipped: list[Outcome] = []
        if blocked:
            # a resumed plan may hold entries planned before the stop went missing
            skipped = [Outcome(a, "skipped", detail=f"new risk blocked: {blocked}")
                       for a in actions if isinstance(a, PlaceEntry)]
            actions = [a for a in actions if not isinstance(a, PlaceEntry)]
        outcomes = pre + skipped + await self.executor.run(actions, now)
        self._apply(outcomes, frozen_keys)
        if any(o.ok for o in outcomes[len(pre):]):
            outcomes += await self._verify_stops(ci)
        if self._fills_unsaved:
            # The fills published this cycle are read from `last_cycle_ms` on: once the state
            # says this cycle is done they are never read again, so their audit rows reach
            # the disk first (a kill in between then repeats a row rather than losing it).
            await self.bus.flush_durable()
            self._fills_unsaved = False
        self.state.last_cycle_ms = now
        await self.store.save_profile(self.side, self.state)
        self._publish_positions(ci)
        return CycleResult(actions, outcomes, selected, notes)

    def block_reason(self) -> str:
        """Why this side forbids new risk on both sides right now ("" = it does not)."""
        if not self.unprotected:
            return ""
        return f"{self.side} position(s) without a confirmed stop: {', '.join(sorted(self.unprotected))}"

    def _merged(self, st: ProfileState) -> ProfileState:
        """`st` (stored, or a crashed cycle's write-ahead state) with what this process's
        protection pass already did kept: stop and close counters (their client ids went out)
        and positions it adopted."""
        for symbol, m in self.state.positions.items():
            other = st.positions.get(symbol)
            if other is None:
                if symbol in self._adopted or m.stop_version or m.close_seq:
                    st.positions[symbol] = m
                continue
            other.stop_version = max(other.stop_version, m.stop_version)
            other.close_seq = max(other.close_seq, m.close_seq)
            other.exit_version = max(other.exit_version, m.exit_version)
            if m.stop_entry is not None and other.stop_entry != m.stop_entry:
                other.stop_trigger, other.stop_entry = m.stop_trigger, m.stop_entry
        return st

    def _take_counters(self, src: ProfileState) -> None:
        """Raise this state's order counters to those of `src` (a state whose orders may have
        gone out), so no intent key - and no client id - is used a second time."""
        for symbol, m in self.state.positions.items():
            other = src.positions.get(symbol)
            if other is not None and other.opened_ms == m.opened_ms:
                m.stop_version = max(m.stop_version, other.stop_version)
                m.close_seq = max(m.close_seq, other.close_seq)
                m.exit_version = max(m.exit_version, other.exit_version)

    # -- protection: stops first -------------------------------------------------------------
    async def protect(self, ci: CycleInput, *, verify: bool = False) -> list[Outcome]:
        """Verify and place the hard stop of every position of this side.

        Runs before anything else in a step and needs nothing but the snapshot (no plan, no
        state write, no decision), so a failure elsewhere in the step cannot keep a position
        unprotected. A stop that cannot be confirmed is retried with backoff and reported as
        missing; the engine blocks new risk on both sides meanwhile; after
        HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC the position is closed reduce-only at market.
        `verify`: the pass after the cycle's own orders (sizes may have changed)."""
        snap, now = ci.snapshot, ci.snapshot.now_ms
        if not verify:
            self._protected_at = now
            self._closing = set()
        mine = {s: pos for s, pos in snap.positions.items() if pos.side == self.side and s in ci.markets}
        for symbol in [s for s in self.unprotected if s not in mine and s not in snap.unknown]:
            del self.unprotected[symbol]  # closed (stopped out, closed by us or by hand)
        if not self.p.hard_stop_loss_enabled:
            self.unprotected.clear()
            await self._save_unprotected()
            return []
        limit_ms = int(self.p.hard_stop_unprotected_close_after_sec * 1000)
        actions: list[Action] = []
        covered_before: dict[str, bool] = {}
        for symbol, pos in sorted(mine.items()):
            meta = self._adopt(ci, symbol, pos)
            market = ci.markets[symbol]
            orders = [o for o in snap.orders_of(self.side, symbol) if o.reduce_only]
            stops = [o for o in orders if o.kind == "stop_loss"]
            exits = [o for o in orders if o.kind == "limit"]
            covered = is_covered(pos, stops, market)
            covered_before[symbol] = covered
            u = self.unprotected.get(symbol)
            if u is not None and not covered:
                # the bounded time, or sooner: a placement failed and the price has moved
                # HARD_STOP_LOSS_MIN_EMERGENCY_PCT against the entry (checked before any backoff)
                moved = emergency_breached(self.p, pos.side, pos.entry_price, self._price(snap, symbol, pos))
                if now - u.since_ms >= limit_ms or moved:
                    u.closing = True
                    actions.append(unprotected_close(self.side, pos, meta, exits, stops))
                    self._closing.add(symbol)
                    if not u.close_alerted:
                        u.close_alerted = True
                        why = (f"{self.p.hard_stop_loss_min_emergency_pct:.1%} against its entry"
                               if now - u.since_ms < limit_ms else f"for {(now - u.since_ms) / 1000:.0f} s")
                        reason = (f"no confirmed stop, {why} "
                                  f"({u.attempts} attempt(s), last: {u.detail or 'not placed'}): "
                                  f"closing reduce-only at market")
                        log.error("%s %s: %s", self.side, symbol, reason)
                        self.bus.publish(StopEvent(now, self.side, symbol, "emergency_close", meta.stop_trigger,
                                                   pos.contracts, reason))
                        self.bus.publish(ErrorEvent(now, "protection", f"{symbol}: {reason}", profile=self.side))
                        await self._repair_safe(now, symbol, "position without a confirmed stop", reason)
                    continue
                if now < u.next_try_ms:
                    continue  # backing off; the position stays reported as unprotected
            ctx = ci.contexts.get(symbol, MarketContext())
            action = stop_action(self.side, self.p, pos, meta, market, stops, exits,
                                 self._price(snap, symbol, pos), ctx.atr_rate)
            if action is not None:
                actions.append(action)
                if isinstance(action, CloseMarket):
                    self._closing.add(symbol)
            elif covered:
                self._announce(now, symbol, pos, market, stops)
        outcomes = await self.executor.run(actions, now) if actions else []
        self._remember_closes(outcomes)
        for o in outcomes:
            if isinstance(o.action, PlaceStop) and o.ok and o.order is not None:
                self._stop_seen[o.action.symbol] = o.order.id  # the executor announced it
        # a close-out the venue refused or did not answer: a stop is still better than none
        retry: list[Action] = []
        for o in outcomes:
            a = o.action
            if isinstance(a, CloseMarket) and a.reason == "unprotected" and not o.ok \
                    and not covered_before.get(a.symbol):
                pos, meta = mine[a.symbol], self.state.positions[a.symbol]
                orders = [x for x in snap.orders_of(self.side, a.symbol) if x.reduce_only and x.kind == "stop_loss"]
                action = stop_action(self.side, self.p, pos, meta, ci.markets[a.symbol], orders, [],
                                     self._price(snap, a.symbol, pos),
                                     ci.contexts.get(a.symbol, MarketContext()).atr_rate)
                if isinstance(action, PlaceStop):
                    retry.append(action)
        if retry:
            outcomes += await self.executor.run(retry, now)
        await self._track(ci, mine, covered_before, outcomes)
        await self._save_unprotected()
        return outcomes

    def _announce(self, now: int, symbol: str, pos: Position, market: Market, stops: list[Order]) -> None:
        """Say once which stop protects a position when the bot did not place it this run: the
        stop attached to the entry order (activated by the venue at the fill), or one found on
        the exchange after a restart."""
        cover = next((o for o in stops if is_covered(pos, [o], market)), None)
        if cover is None or self._stop_seen.get(symbol) == cover.id:
            return
        self._stop_seen[symbol] = cover.id
        attached = cover.client_order_id is None and self.p.hard_stop_attach_to_entry
        how = "attached to the entry order" if attached else "found on the exchange"
        self.bus.publish(StopEvent(now, self.side, symbol, "placed", cover.trigger_price, cover.amount, how))

    async def _track(self, ci: CycleInput, mine: dict[str, Position], covered_before: dict[str, bool],
                     outcomes: list[Outcome]) -> None:
        """Update which positions lack a confirmed stop, and say so (UI, alert, audit)."""
        now = ci.snapshot.now_ms
        last: dict[str, Outcome] = {}
        for o in outcomes:  # per symbol: the outcome that protects it, else the last one
            sym = getattr(o.action, "symbol", "")
            if sym not in last or not _protects(last[sym]):
                last[sym] = o
        recheck = [s for s, o in last.items() if s in mine and not o.ok and covered_before.get(s)]
        fresh: list[Order] | None = None
        if recheck:
            # a failed move or resize of a stop that was there: is it still there?
            try:
                fresh = [o for o in await self.exchange.fetch_open_orders(None) if o.is_open]
            except Exception:
                fresh = []
        limit_ms = int(self.p.hard_stop_unprotected_close_after_sec * 1000)
        for symbol, pos in sorted(mine.items()):
            o = last.get(symbol)
            if o is None or isinstance(o.action, Cancel):  # (a cancel only removes an extra stop)
                ok = covered_before[symbol]
            elif isinstance(o.action, CloseMarket):
                gone = o.ok and o.order is not None and o.order.filled >= o.action.amount
                ok = gone or covered_before[symbol]  # the stop is kept through the attempt
            elif o.ok and o.order is not None and o.order.is_open:
                ok = is_covered(pos, [o.order], ci.markets[symbol]) or covered_before[symbol]
            elif symbol in recheck and fresh is not None:
                stops = [x for x in fresh if x.symbol == symbol and x.kind == "stop_loss" and x.reduce_only
                         and order_profile(x) == self.side]
                ok = is_covered(pos, stops, ci.markets[symbol])
            else:
                ok = False
            u = self.unprotected.get(symbol)
            if ok:
                if u is not None:
                    del self.unprotected[symbol]
                    await self._repair_safe(now, symbol, "position without a confirmed stop",
                                            f"stop confirmed after {u.attempts} attempt(s), "
                                            f"{(now - u.since_ms) / 1000:.0f} s unprotected")
                continue
            first = u is None
            if u is None:
                u = self.unprotected[symbol] = Unprotected(now)
            if o is not None:
                u.attempts += 1
                u.detail = o.detail or o.status
                u.next_try_ms = now + min(STOP_RETRY_BASE_MS * 2 ** (u.attempts - 1), STOP_RETRY_MAX_MS)
            left = max(0, limit_ms - (now - u.since_ms))
            reason = (f"no confirmed stop ({u.detail or 'not placed yet'}), attempt {u.attempts}; new entries and "
                      f"averaging blocked on both sides; "
                      + ("closing reduce-only at market" if u.closing else
                         f"closing reduce-only in {left / 1000:.0f} s unless a stop is confirmed"))
            meta = self.state.positions.get(symbol)
            self.bus.publish(StopEvent(now, self.side, symbol, "emergency_close" if u.closing else "missing",
                                       meta.stop_trigger if meta else None, pos.contracts, reason))
            if first:
                log.error("%s %s: %s", self.side, symbol, reason)
                self.bus.publish(ErrorEvent(now, "protection", f"{symbol}: {reason}", profile=self.side))
                await self._repair_safe(now, symbol, "position without a confirmed stop", reason)

    async def _exit_coverage(self, now: int, meta: PositionMeta) -> None:
        """Report once per episode a position whose exit orders have been missing for
        EXIT_COVERAGE_ALERT_MINUTES (the absolute force exit closes it later, if it is on)."""
        limit_ms = self.p.exit_coverage_alert_minutes * 60_000
        since = meta.exits_missing_since
        if since is None or meta.exits_reported or limit_ms <= 0 or now - since < limit_ms:
            return
        meta.exits_reported = True
        force = self.p.absolute_force_exit_after_minutes
        then = (f"closed at market after {force:g} min without exits (absolute force exit)"
                if self.p.enable_absolute_force_exit and force > 0 else "no force exit is set: check it by hand")
        await self._repair_safe(now, meta.symbol, f"exit orders missing for {(now - since) / 60_000:.0f} min", then)

    async def _repair_safe(self, now: int, symbol: str, problem: str, action: str) -> None:
        """A repair record that must not fail the protection pass (the state file may be full)."""
        self.bus.publish(Repair(now, self.side, symbol, problem, action))
        try:
            await self.store.record_repair(now, self.side, symbol, problem, action)
        except Exception as exc:
            log.error("repair record for %s not stored: %s", symbol, exc)

    def _adopt(self, ci: CycleInput, symbol: str, pos: Position) -> PositionMeta:
        """The stored meta of a position, or a new one for a position we have no state for."""
        st = self.state
        meta = st.positions.get(symbol)
        if meta is not None:
            return meta
        market = ci.markets[symbol]
        value = notional(pos.contracts, pos.entry_price, market)
        # A position from our ladder opened after the ladder went out: its fills (and fees)
        # are found from then on. One we did not open counts from now.
        ladder = st.ladders.get(symbol)
        # Size the adaptive exit mode against what the ladder meant to buy: rungs that fill on
        # different polls are one entry, not an average-down.
        initial = max(value, ladder.planned_notional) if ladder and ladder.purpose == "entry" else value
        meta = PositionMeta(symbol, self.side, ladder.created_ms if ladder else ci.snapshot.now_ms, initial,
                            planned_notional=ladder.planned_notional if ladder else value,
                            adopted=ladder is None)
        st.positions[symbol] = meta
        if ladder is None:
            self._adopted.add(symbol)
        return meta

    async def _reread(self, snap: Snapshot) -> Snapshot:
        fresh = await read_snapshot(self.exchange, self.symbols, snap.now_ms)
        fresh.leverage = snap.leverage
        return fresh

    async def _verify_stops(self, ci: CycleInput) -> list[Outcome]:
        """Re-read positions and stops after this cycle's orders: an exit that filled at once,
        or a market close, changes the size, and the stop must follow before the cycle ends."""
        if not self.p.hard_stop_loss_enabled:
            return []
        positions = {p.symbol: p for p in await self.exchange.fetch_positions(None) if p.contracts > 0}
        orders = list(await self.exchange.fetch_open_orders(None))
        s = ci.snapshot
        snap = Snapshot(s.now_ms, s.balance, positions, orders, s.books, s.leverage, s.balances, s.account_of)
        return await self.protect(replace(ci, snapshot=snap), verify=True)

    async def _plan(self, ci: CycleInput) -> tuple[list[Action], tuple[str, ...], dict[str, str], list[str]]:
        snap, st, now = ci.snapshot, self.state, ci.snapshot.now_ms
        notes: list[str] = []
        actions: list[Action] = await self._reconcile(ci)
        frozen_keys: dict[str, str] = {}

        # 0. the account-PnL guard: account trailing stop, profit unload (reduce-only closes;
        # a position it closes from gets nothing else this cycle, its ladder follows next)
        guard_actions, guarded = await self._account_guard(ci)
        actions.extend(guard_actions)

        # 1. positions: stop first, then exits
        for symbol, pos in sorted(snap.positions.items()):
            if pos.side != self.side or symbol not in ci.markets or symbol in self._closing or symbol in guarded:
                continue  # (a position the protection pass is closing gets nothing else)
            meta = st.positions[symbol]
            market = ci.markets[symbol]
            orders = [o for o in snap.orders_of(self.side, symbol) if o.reduce_only]
            price = self._price(snap, symbol, pos)
            if symbol in self._tiny:
                meta.close_seq += 1
                key = f"{meta.pos_id}:tiny:c{meta.close_seq}"
                actions.append(CloseMarket(symbol, self.side, pos.contracts,
                                           client_order_id(self.side, symbol, "close", key), key,
                                           "tiny_entry", tuple(o for o in orders if o.kind == "limit")))
                continue
            ctx = ci.contexts.get(symbol, MarketContext())
            ctx = replace(ctx, time_multiplier=ci.overlay.time_multiplier * ctx.time_multiplier,
                          signal=signal_of(ci.decisions.get(symbol)),
                          realized=realized_windows(await self.store.trades(self.side), now)
                          if wants_bank(self.p, pos, meta, price, now) else None)
            # The protection pass already placed what was missing at the start of the step; the
            # plan follows what planning changes (a runner that activates locks breakeven), in
            # the write-ahead plan. A stop that just failed waits for its backoff there.
            plan = plan_position(self.side, self.p, pos, meta, market, orders, price, now, ctx,
                                 protect=symbol not in self.unprotected)
            if symbol in self.unprotected:
                # the stop first: a new exit would reserve the closeable amount its stop needs
                held = [a for a in plan.actions if isinstance(a, PlaceExit)]
                if held:
                    notes.append(f"{symbol}: {len(held)} exit order(s) wait for the stop to be confirmed")
                plan.actions[:] = [a for a in plan.actions if not isinstance(a, PlaceExit)]
            actions.extend(plan.actions)
            notes.extend(f"{symbol}: {n}" for n in plan.notes)
            await self._exit_coverage(now, meta)
            if plan.frozen_key:
                frozen_keys[symbol] = plan.frozen_key
        self._tiny.clear()

        # 2. entry ladders: stale or invalid ones are cancelled
        for symbol, ladder in sorted(st.ladders.items()):
            open_rungs = [o for o in snap.orders_of(self.side, symbol) if not o.reduce_only]
            decision = ci.decisions.get(symbol)
            stale = (now - ladder.created_ms) >= self.glob.order_timeout_sec * 1000
            invalid = decision is not None and not decision.valid
            if open_rungs and (stale or invalid or ci.risk_blocked):
                why = "stale" if stale else "signal no longer valid" if invalid else f"new risk blocked: {ci.risk_blocked}"
                for o in open_rungs:
                    actions.append(Cancel(o, ladder.purpose, why))

        # 3. new entries and averaging
        selected: tuple[str, ...] = ()
        if ci.new_candle:
            entry_actions, selected, committed = self._entries(ci)
            actions.extend(entry_actions)
            actions.extend(self._averaging(ci, committed))

        # stops and emergency closes go out first
        actions.sort(key=lambda a: 0 if isinstance(a, (PlaceStop, CloseMarket)) else 1)
        return actions, selected, frozen_keys, notes

    # -- the account-PnL guard (engine/risk/account_pnl.py) -----------------------------------
    async def _account_guard(self, ci: CycleInput) -> tuple[list[Action], set[str]]:
        """The reduce-only closes of the account trailing stop and the profit unload, and the
        symbols they close from. Market closes through the executor like every other exit;
        the hard stop is never part of them (the protection pass resizes it to what is left,
        and cancels it once the position is gone)."""
        snap, st, now = ci.snapshot, self.state, ci.snapshot.now_ms
        series = ci.account
        mine = [(s, pos) for s, pos in sorted(snap.positions.items())
                if pos.side == self.side and s in ci.markets and s in st.positions
                and s not in self._closing and s not in self._tiny]
        held = {s for s, _ in mine}
        for symbol in [s for s in self._trailing if snap.position(s, self.side) is None]:
            del self._trailing[symbol]  # closed
        for symbol in [s for s in self._unloaded_ms if snap.position(s, self.side) is None]:
            del self._unloaded_ms[symbol]  # a later position there starts without a cooldown
        actions: list[Action] = []
        done: set[str] = set()
        view = series.view(ap.window_ms(self.p), self.side) if series is not None and self.p.account_pnl_enabled \
            else None
        why = ap.trailing_reason(self.p, view)
        if why and held:
            # fired: close every position of this profile; the stop disarms (its peak starts
            # again), and a close the venue refused is sent again until the position is gone
            series.disarm_trailing(self.side, now)  # type: ignore[union-attr]
            log.warning("%s: %s", self.side, why)
            for symbol in sorted(held):
                self._trailing[symbol] = why
                await self._repair_safe(now, symbol, "account PnL trailing stop", why)
        for symbol, pos in mine:
            if symbol in self._trailing:
                actions.append(self._guard_close(snap, symbol, pos, pos.contracts, TRAILING_TAG, self._trailing[symbol]))
                done.add(symbol)
        unload = ap.unload_decision(self.p, view)
        if unload is not None:
            dust = self.p.dust_position_notional if self.p.dust_close_enabled else 0.0
            for symbol, pos in mine:
                if symbol in done or symbol in st.ladders:
                    continue  # (a position still being entered is not unloaded)
                market = ci.markets[symbol]
                price = self._price(snap, symbol, pos)
                pnl, value = ap.position_pnl(pos, price, market)
                if not ap.position_unloadable(self.p, pnl, value, self._unloaded_ms.get(symbol), now):
                    continue
                amount = ap.unload_amount(pos.contracts, unload.fraction, price, market, dust)
                if amount <= 0:
                    continue
                reason = f"{unload.reason}; {symbol} PnL {pnl:+.2f} USDT: {amount} of {pos.contracts} contracts"
                actions.append(self._guard_close(snap, symbol, pos, amount, UNLOAD_TAG, reason))
                self._unloaded_ms[symbol] = now
                done.add(symbol)
        state = self._guard_state()
        if state != self._guard_saved:
            try:
                await self.store._put(self.side, GUARD_KEY, state)
                self._guard_saved = state
            except Exception as exc:  # tried again next cycle
                log.error("%s: could not save the account-guard state (%s)", self.side, exc)
        return actions, done

    def _guard_state(self) -> dict[str, Any]:
        return {"unloaded_ms": dict(self._unloaded_ms), "trailing": dict(self._trailing)}

    def _guard_close(self, snap: Snapshot, symbol: str, pos: Position, amount: Decimal, tag: str,
                     reason: str) -> CloseMarket:
        """A reduce-only market close of `amount` (exit limits cancelled first: they reserve
        the closeable amount; the ladder is planned again for what is left)."""
        meta = self.state.positions[symbol]
        meta.close_seq += 1
        key = f"{meta.pos_id}:{tag}:c{meta.close_seq}"
        exits = tuple(o for o in snap.orders_of(self.side, symbol) if o.reduce_only and o.kind == "limit")
        return CloseMarket(symbol, self.side, amount, client_order_id(self.side, symbol, "close", key), key,
                           reason, exits)

    # -- start and stop -----------------------------------------------------------------------
    async def reconcile_only(self, ci: CycleInput) -> None:
        """Reconcile with the exchange without sending anything (at start, before any step):
        fills seen, positions adopted or closed; orphan cancels wait for the first cycle.
        Not when the crashed cycle is being finished at its own time (its write-ahead plan is
        resumed as planned: nothing can have happened in between)."""
        pending = await self.store.load_pending(self.side)
        if pending is not None and pending[0] == ci.snapshot.now_ms:
            return
        await self._reconcile(ci)

    async def cancel_entries(self, snap: Snapshot, reason: str) -> list[Outcome]:
        """Cancel this side's resting entry and averaging orders that are ours (a clean stop)."""
        actions: list[Action] = []
        for o in snap.orders_of(self.side):
            if o.reduce_only or o.client_order_id is None:
                continue
            known = await self.store.order_purpose(o.client_order_id)
            if known is not None and known[0] == self.side and known[1] in ("entry", "add"):
                actions.append(Cancel(o, known[1], reason))
        outcomes = await self.executor.run(actions, snap.now_ms) if actions else []
        for o in outcomes:
            if o.ok:
                ladder = self.state.ladders.get(o.action.order.symbol)  # type: ignore[union-attr]
                if ladder is not None and o.action.order.client_order_id in ladder.client_ids:  # type: ignore[union-attr]
                    ladder.client_ids.remove(o.action.order.client_order_id)  # type: ignore[union-attr]
        return outcomes

    # -- reconciliation ---------------------------------------------------------------------
    async def _reconcile(self, ci: CycleInput) -> list[Action]:
        """Repair differences between the stored state and the exchange; returns the cancels
        of our orders that lost their purpose."""
        snap, st, now = ci.snapshot, self.state, ci.snapshot.now_ms
        actions: list[Action] = []
        await self._publish_fills(ci)
        for symbol, pos in snap.positions.items():
            if pos.side != self.side:
                continue
            market = ci.markets.get(symbol)
            if market is None:
                continue
            meta = self._adopt(ci, symbol, pos)
            if symbol in self._adopted:
                self._adopted.discard(symbol)
                await self._repair(now, symbol, "position without state",
                                   "adopted; stop from the fixed distance, ladder re-planned")
            meta.contracts, meta.entry_price = pos.contracts, pos.entry_price
        # state without position: the position was closed (stop, exits, liquidation, by hand)
        for symbol, meta in sorted(st.positions.items()):  # (sorted: the same order after a restart)
            if snap.position(symbol, self.side) is None:
                await self._closed(ci, meta)
                del st.positions[symbol]
        # ladders: finished when no rung is open any more
        for symbol, ladder in list(st.ladders.items()):
            open_rungs = [o for o in snap.orders_of(self.side, symbol) if not o.reduce_only]
            if not open_rungs and (now - ladder.created_ms) > 0:
                del st.ladders[symbol]
                pos = snap.position(symbol, self.side)
                market = ci.markets.get(symbol)  # (None: a symbol that is no market any more)
                if pos is not None and market is not None and ladder.purpose == "entry" \
                        and self.p.tiny_entry_close_enabled:
                    value = notional(pos.contracts, self._price(snap, symbol, pos), market)
                    tiny = value <= D(self.p.tiny_entry_max_notional) or \
                        value <= ladder.planned_notional * D(self.p.tiny_entry_max_planned_fraction)
                    if tiny:
                        await self._repair(now, symbol, "tiny partial entry", "closing at market")
                        self._tiny.add(symbol)
        # orders of ours that no longer have a purpose; foreign orders are reported once
        for o in snap.orders_of(self.side):
            if o.reduce_only and snap.position(o.symbol, self.side) is None:
                await self._repair(now, o.symbol, "close order without position", "cancelled")
                actions.append(Cancel(o, "exit", "orphan"))
            elif not o.reduce_only and o.symbol not in st.ladders and o.symbol in ci.markets:
                # (an order on another market, e.g. the BTC hedge's open, is never adopted as a ladder)
                known = o.client_order_id is not None and await self.store.order_purpose(o.client_order_id)
                if known:
                    # Placed by a cycle that did not finish (crash): adopt the whole ladder.
                    _, purpose, key = known
                    rungs = [r for r in snap.orders_of(self.side, o.symbol) if not r.reduce_only]
                    market = ci.markets.get(o.symbol)
                    planned = sum((notional(r.amount, r.price, market) for r in rungs
                                   if r.price is not None and market is not None), Decimal(0))
                    created = o.ts_ms or now
                    st.ladders[o.symbol] = LadderMeta(o.symbol, created, planned, purpose,
                                                      key.rsplit(":", 1)[0],
                                                      [r.client_order_id for r in rungs if r.client_order_id])
                    if purpose == "entry" and created not in st.ladder_times:
                        st.ladder_times.append(created)
                    await self._repair(now, o.symbol, "entry order without ladder state", "adopted")
                elif o.symbol not in self._foreign_reported:
                    self._foreign_reported.add(o.symbol)
                    await self._repair(now, o.symbol, "foreign entry order (not placed by CROT)",
                                       "left alone; symbol reserved")
        actions.extend(await self._hidden_closes(ci))
        if not self.glob.fetch_fill_details_on_sync:
            # no fill reads: the close orders resting on each position now (and those this
            # cycle sends, `_remember_closes`) are what prices its trade if it closes next
            self._close_orders = {}
            for o in [*snap.orders_of(self.side), *self._closes_sent.values()]:
                if o.reduce_only and snap.position(o.symbol, self.side) is not None:
                    self._close_orders.setdefault(o.symbol, {})[o.id] = o
            self._closes_sent = {}
        return actions

    async def _hidden_closes(self, ci: CycleInput) -> list[Action]:
        """Close orders on this side's positions that the bot neither placed nor manages: a
        reduce-only order of a kind the stop and exit logic do not handle (take-profit,
        trigger, market, other; never a stop-loss or a limit, which `plan_position` and
        `stop_action` own) with no client id of ours in the store.

        Such an order is unsafe when it can keep the position's own orders off the exchange:
        the position has no covering stop (the order may reserve the closeable amount the stop
        needs), or the bot's exit orders do not rest for the whole position (it may reserve
        what the ladder needs), or it is larger than the position. Unsafe ones are cancelled
        with CANCEL_UNSAFE_HIDDEN_CLOSE_ORDERS on, except one on the losing side of the price
        (it acts as a stop) while no stop covers the position: a position is never left
        without its stop. Every hidden order is reported once (Repair)."""
        snap, now = ci.snapshot, ci.snapshot.now_ms
        actions: list[Action] = []
        for symbol, pos in sorted(snap.positions.items()):
            market = ci.markets.get(symbol)
            if pos.side != self.side or market is None:
                continue
            orders = [o for o in snap.orders_of(self.side, symbol) if o.reduce_only]
            hidden = []
            for o in orders:
                if o.kind in ("stop_loss", "limit"):
                    continue
                known = o.client_order_id is not None and await self.store.order_purpose(o.client_order_id)
                if not known or known[0] != self.side:
                    hidden.append(o)
            if not hidden:
                continue
            covered = is_covered(pos, [o for o in orders if o.kind == "stop_loss"], market)
            exits = sum((o.remaining for o in orders if o.kind == "limit"), Decimal(0))
            price = self._price(snap, symbol, pos)
            for o in hidden:
                level = o.trigger_price if o.trigger_price is not None else o.price
                what = (f"hidden close order {o.id} ({o.kind} {o.side} {o.remaining}"
                        f"{f' @ {level}' if level is not None else ''}, not placed by CROT)")
                why = ("no stop covers the position: it may reserve the closeable amount the stop needs"
                       if not covered else
                       f"larger than the position ({pos.contracts})" if o.remaining > pos.contracts else
                       f"the exit orders rest for {exits} of {pos.contracts}: it may reserve what they need"
                       if exits < pos.contracts else "")
                protective = level is not None and (level < price if self.side == "long" else level > price)
                if not why:
                    action, cancel = "left alone (safe: the stop and the exit orders rest)", False
                elif not self.p.cancel_unsafe_hidden_close_orders:
                    action, cancel = "left alone (CANCEL_UNSAFE_HIDDEN_CLOSE_ORDERS off)", False
                elif protective and not covered:
                    action, cancel = "left alone: on the losing side it is the position's only stop", False
                else:
                    action, cancel = "cancelled", True
                if cancel:
                    actions.append(Cancel(o, "exit", "unsafe hidden close order"))
                key = f"{o.id}:{action}"
                if key not in self._hidden_reported:
                    self._hidden_reported.add(key)
                    await self._repair(now, symbol, f"{what}{': unsafe, ' + why if why else ''}", action)
        return actions

    def _remember_closes(self, outcomes: list[Outcome]) -> None:
        """FETCH_FILL_DETAILS_ON_SYNC off: keep the reduce-only orders just sent (a market close
        fills before the next snapshot could show it)."""
        if self.glob.fetch_fill_details_on_sync:
            return
        for o in outcomes:
            if o.ok and o.order is not None and o.order.reduce_only and o.order.id:
                self._close_orders.setdefault(o.order.symbol, {})[o.order.id] = o.order
                self._closes_sent[o.order.id] = o.order  # kept past the next snapshot's reset

    async def _publish_fills(self, ci: CycleInput) -> None:
        """Fill events for the symbols whose position changed since the last cycle (read only
        for those, so a quiet account costs no fill requests)."""
        snap, st = ci.snapshot, self.state
        changed = [s for s, m in st.positions.items()
                   if (p := snap.position(s, self.side)) is None or p.contracts != m.contracts]
        changed += [s for s, p in snap.positions.items()
                    if p.side == self.side and s not in st.positions and s in ci.markets]
        if not changed or not self.glob.fetch_fill_details_on_sync:
            return  # FETCH_FILL_DETAILS_ON_SYNC off: no fill reads, so no FillEvent either
        since = self._fill_window(snap.now_ms, st.last_cycle_ms)
        try:
            fills = await self.exchange.fetch_fills(sorted(set(changed)), since)
        except Exception as exc:  # fills are for the record; trading does not depend on them
            log.warning("fills unavailable: %s", exc)
            return
        for f in sorted(fills, key=lambda f: (f.ts_ms, f.id)):
            if f.id in self._fills_seen or f.ts_ms < since:
                continue
            self._fills_seen[f.id] = None
            self._fills_unsaved = True
            known = await self.store.order_purpose_of_fill(f.client_order_id, f.order_id)
            purpose = known[1] if known else "unknown"
            self.bus.publish(FillEvent(f.ts_ms, self.side, f.symbol, f.side, f.price, f.amount, f.fee, purpose))
        while len(self._fills_seen) > 5000:
            self._fills_seen.pop(next(iter(self._fills_seen)))

    async def _repair(self, now: int, symbol: str, problem: str, action: str) -> None:
        await self.store.record_repair(now, self.side, symbol, problem, action)
        self.bus.publish(Repair(now, self.side, symbol, problem, action))

    def _fill_window(self, now: int, since: int) -> int:
        """Where a fill read starts: at `since` (0: none, the first cycle ever), never before
        now - FILL_DETAIL_LOOKBACK_SEC. With no `since` the read covers the lookback window;
        a lookback of 0 sets no bound (the first cycle ever then reads the last hour)."""
        lookback = int(self.glob.fill_detail_lookback_sec) * 1000
        if since <= 0:
            return now - (lookback or 3_600_000)
        return max(since, now - lookback) if lookback > 0 else since

    async def _closed(self, ci: CycleInput, meta: PositionMeta) -> None:
        now = ci.snapshot.now_ms
        market = ci.markets.get(meta.symbol)
        size = market.contract_size if market else Decimal(1)
        close_side = "sell" if self.side == "long" else "buy"
        seen = self._close_orders.pop(meta.symbol, {})
        if self.glob.fetch_fill_details_on_sync:
            entry, exit_price, qty, fees, reason, note = await self._priced_from_fills(ci, meta, close_side)
        else:
            entry, exit_price, qty, fees, reason, note = await self._priced_without_fills(
                ci, meta, close_side, list(seen.values()), size)
        if note:
            log.info("%s %s trade opened %d: %s", self.side, meta.symbol, meta.opened_ms, note)
        sign = 1 if self.side == "long" else -1
        gross = (exit_price - entry) * qty * size * sign
        pnl = gross - fees
        if await self.store.record_trade(profile=self.side, symbol=meta.symbol, side=self.side,
                                         opened_ms=meta.opened_ms, closed_ms=now, entry_price=entry,
                                         exit_price=exit_price, contracts=qty, pnl=pnl, fees=fees,
                                         reason=reason):
            self.bus.publish(TradeClosed(now, self.side, meta.symbol, self.side, entry, exit_price, qty, pnl,
                                         fees, meta.opened_ms, reason))
        self.state.cooldown_until[meta.symbol] = cooldown_until(now, float(pnl), self.p)

    async def _priced_from_fills(self, ci: CycleInput, meta: PositionMeta, close_side: str
                                 ) -> tuple[Decimal, Decimal, Decimal, Decimal, str, str]:
        """A closed trade from its fills since the position opened (FILL_DETAIL_LOOKBACK_SEC
        bounds the sync reads, not this): (entry, exit, contracts, fees, reason, note). When the
        opening fills seen do not cover the size closed (e.g. an adopted position that was then
        averaged) the entry is the stored average entry price; the note says so."""
        since = meta.opened_ms  # the whole position (the lookback bounds the sync reads only)
        fills: list[Fill] = []
        note = ""
        try:
            fills = await self.exchange.fetch_fills([meta.symbol], since)
        except Exception as exc:  # the trade is still recorded, with what we know
            log.warning("fills for %s unavailable: %s", meta.symbol, exc)
            note = "fills unavailable"
        closing = [f for f in fills if f.side == close_side]
        qty = sum((f.amount for f in closing), Decimal(0))
        exit_price = (sum((f.price * f.amount for f in closing), Decimal(0)) / qty) if qty > 0 else meta.entry_price
        fees = sum((f.fee for f in fills), Decimal(0))
        opening = [f for f in fills if f.side != close_side]
        oq = sum((f.amount for f in opening), Decimal(0))
        entry = (sum((f.price * f.amount for f in opening), Decimal(0)) / oq) if oq > 0 else meta.entry_price
        if oq < qty and meta.entry_price > 0:
            entry = meta.entry_price
            note = f"opening fills seen ({oq}) do not cover the {qty} closed: entry {entry} from the stored state"
        return entry, exit_price, qty, fees, await self._close_reason(closing, meta), note

    async def _priced_without_fills(self, ci: CycleInput, meta: PositionMeta, close_side: str,
                                    seen: list[Order], size: Decimal
                                    ) -> tuple[Decimal, Decimal, Decimal, Decimal, str, str]:
        """A closed trade without fill reads (FETCH_FILL_DETAILS_ON_SYNC off): the size last
        seen at the stored average entry price; the exit at the average price of the reduce-only
        orders this run saw on the position that now read as filled (one order read each), else
        the last price; fees estimated from BUY_FEE_RATE / SELL_FEE_RATE, rounded up."""
        qty, entry = meta.contracts, meta.entry_price
        filled: list[Order] = []
        for o in seen:
            try:
                got = await self.exchange.fetch_order(meta.symbol, order_id=o.id, kind=o.kind)
            except Exception as exc:  # the trade is still recorded at the last price
                log.warning("order %s of %s unreadable: %s", o.id, meta.symbol, exc)
                continue
            if got is not None and got.side == close_side and got.filled > 0 and got.average_price:
                filled.append(got)
        done = sum((o.filled for o in filled), Decimal(0))
        if done > 0:
            exit_price = sum((o.average_price * o.filled for o in filled), Decimal(0)) / done  # type: ignore[operator]
            how = "the closing order's average price"
        else:
            exit_price = self._price(ci.snapshot, meta.symbol) or entry
            how = "the last price (no closing order read)"
        buy, sell = D(self.p.buy_fee_rate), D(self.p.sell_fee_rate)
        entry_rate, exit_rate = (buy, sell) if self.side == "long" else (sell, buy)
        fees = (qty * size * (entry * entry_rate + exit_price * exit_rate)).quantize(
            Decimal("0.00000001"), rounding=ROUND_UP)
        reason = "closed"
        if filled:
            last = max(filled, key=lambda o: (o.ts_ms or 0, o.id))
            reason = await self._reason_of(last.client_order_id, last.id, exit_price, meta)
        note = (f"fill details off: {qty} at the stored entry {entry}, exit {exit_price} from {how}, "
                f"fees {fees} estimated from the fee rates")
        return entry, exit_price, qty, fees, reason, note

    async def _close_reason(self, closing: list[Fill], meta: PositionMeta | None = None) -> str:
        """Why the position closed, from the order behind its last closing fill (found by its
        client id or, after a restart, by the venue order id stored with our orders)."""
        if not closing:
            return "closed"  # no closing fill visible (e.g. liquidation or closed by hand long ago)
        last = max(closing, key=lambda f: (f.ts_ms, f.id))
        return await self._reason_of(last.client_order_id, last.order_id, last.price, meta)

    async def _reason_of(self, client_order_id: int | None, order_id: str, price: Decimal,
                         meta: PositionMeta | None) -> str:
        """Why the position closed, from the order that closed it (filled at `price`)."""
        known = await self.store.order_purpose_of_fill(client_order_id, order_id)
        if known is None:
            # A venue may fill a triggered stop under a new order id of its own: a closing
            # fill at or through our stop's trigger is that stop.
            trig = meta.stop_trigger if meta is not None else None
            if trig is not None and (price <= trig if self.side == "long" else price >= trig):
                return "stop_loss"
            return "external"  # not our order: closed by hand, or by the venue
        _, purpose, key = known
        if purpose == "stop":
            return "stop_loss"
        if purpose == "exit":
            tag = key.rsplit(":", 1)[-1]
            return {"runner": "runner_take_profit", "time": "time_exit"}.get(
                tag, "breakeven" if tag.startswith("be") else "take_profit")
        if purpose == "close":
            for reason in ("stop_breached", "runner", "dust", "tiny", "urgent_time_exit", "unprotected",
                           "force_exit", "manual", UNLOAD_TAG, TRAILING_TAG):
                if f":{reason}:" in key:
                    return {"runner": "runner_trailing", "tiny": "tiny_entry", UNLOAD_TAG: "account_profit_unload",
                            TRAILING_TAG: "account_pnl_trailing"}.get(reason, reason)
        return purpose

    # -- entries ---------------------------------------------------------------------------
    def _account(self, ci: CycleInput, symbol: str, leverage: Decimal) -> AccountView:
        snap = ci.snapshot
        bal = snap.balance_for(symbol)  # (two accounts: the one that trades the symbol)
        symbol_margin = Decimal(0)
        pos = snap.positions.get(symbol)
        market = ci.markets[symbol]
        if pos is not None:
            symbol_margin += notional(pos.contracts, pos.entry_price, market) / leverage
        for o in snap.orders:
            if o.symbol == symbol and o.is_open and not o.reduce_only and o.price is not None:
                symbol_margin += notional(o.remaining, o.price, market) / leverage
        active = 0
        for s, p in snap.positions.items():
            m = ci.markets.get(s)
            if p.side == self.side and m is not None and \
                    notional(p.contracts, p.entry_price, m) >= D(self.p.active_position_min_notional_for_slot):
                active += 1
        return AccountView(bal.equity, bal.free, bal.used_margin, symbol_margin, active)

    def _entries(self, ci: CycleInput) -> tuple[list[Action], tuple[str, ...], Decimal]:
        snap, st, now = ci.snapshot, self.state, ci.snapshot.now_ms
        decisions = [d for d in ci.decisions.values() if d is not None]
        held = snap.symbols_held_by(self.side) | set(st.ladders)
        unhealthy = self._unhealthy(ci)
        ctx = ci.entry_context(
            now_ms=now, held=frozenset(held), reserved_by_other=frozenset(ci.claimed),
            cooldown_until=dict(st.cooldown_until), recent_ladders_ms=tuple(st.ladder_times),
            unhealthy_positions=unhealthy,
            entries_paused=not (ci.entries_enabled and ci.overlay.entries_allowed) or bool(ci.risk_blocked),
            allowed_symbols=frozenset(self.symbols))
        selection = ci.select(decisions, ctx, self.p)
        self.bus.publish(Decisions(now, self.side, tuple(selection.decisions), selection.chosen_symbols))
        self.last_decisions = {d.symbol: d for d in selection.decisions}
        btc_return = self._btc_return(decisions)  # every candle, so the history has no holes
        if ci.risk_blocked:
            return [], (), Decimal(0)  # a position lacks its stop: no new risk on either side
        actions: list[Action] = []
        chosen: list[str] = []
        extra_margin = Decimal(0)
        extra_active = 0
        for d in selection.chosen:
            symbol = d.symbol
            market = ci.markets.get(symbol)
            book = snap.books.get(symbol)
            if market is None or book is None or not book.valid:
                continue
            leverage = effective_leverage(self.p, snap.leverage.get(symbol))
            acct = self._account(ci, symbol, leverage)
            acct = AccountView(acct.equity, acct.free_margin - extra_margin, acct.used_margin + extra_margin,
                               acct.symbol_margin, acct.active_positions + extra_active)
            scaling = self._scaling(d, btc_return)
            multiplier = ci.overlay.budget_multiplier * self._quality_multiplier(d.score) * scaling.budget
            budget = entry_budget(self.p, acct, leverage, multiplier)
            ref = book.bid if self.side == "long" else book.ask
            rungs = entry_ladder(self.side, market, budget.notional, ref, self.p.ema_ladder_fractions,
                                 self.p.ema_ladder_offsets, ci.overlay.ladder_multiplier, scaling.ladder)
            if not rungs:
                continue
            key = f"{symbol}:entry:{now}"
            ids = []
            atr = ci.contexts.get(symbol, MarketContext()).atr_rate
            for r in rungs:
                cid = client_order_id(self.side, symbol, "entry", f"{key}:{r.index}")
                ids.append(cid)
                actions.append(PlaceEntry(symbol, self.side, r.price, r.amount, cid, f"{key}:{r.index}",
                                          stop_trigger=self._attached_stop(market, r.price, atr),
                                          reason=scaling.reason()))
            planned = sum((r.notional(market) for r in rungs), Decimal(0))
            st.ladders[symbol] = LadderMeta(symbol, now, planned, "entry", key, ids)
            st.ladder_times.append(now)
            extra_margin += planned / leverage
            extra_active += 1
            chosen.append(symbol)
            ci.claimed.add(symbol)
        window_ms = int(self.p.entry_rate_limit_window_minutes * 60_000)
        st.ladder_times = [t for t in st.ladder_times if now - t < window_ms]
        return actions, tuple(chosen), extra_margin

    def _btc_return(self, decisions: list[Any]) -> float | None:
        """BTC's log return over BTC_RISK_RETURN_WINDOW candles, from the benchmark the
        decisions carry (None when unknown). The benchmark's RS_FAST_WINDOW / RS_SLOW_WINDOW
        returns are used when the window spans the same minutes; otherwise the benchmark
        closes seen at earlier candles (kept for the window; none right after a restart)."""
        if not self.p.enable_btc_risk_multiplier:
            return None
        btc = next((d.benchmark for d in decisions if getattr(d, "benchmark", None) is not None), None)
        if btc is None:
            return None
        step_min = timeframe_minutes(self.p.ema_trigger_timeframe)
        span_min = self.p.btc_risk_return_window * step_min
        closes = self._btc_closes
        if btc.close > 0:
            closes[btc.ts_ms] = btc.close
        cut = btc.ts_ms - int(span_min * 60_000)
        for ts in [t for t in closes if t < cut]:
            del closes[ts]
        if span_min == self.p.rs_fast_window:
            return btc.ret30
        if span_min == self.p.rs_slow_window:
            return btc.ret60
        past = closes.get(cut)
        if past is None or past <= 0 or btc.close <= 0:
            return None
        return math.log(btc.close / past)

    def _scaling(self, d: Any, btc_return: float | None) -> EntryScaling:
        """The volatility and BTC-risk multipliers of an entry on decision `d`."""
        f, btc = d.features, getattr(d, "benchmark", None)
        return entry_scaling(self.p, self.side, getattr(f, "volatility", None), getattr(f, "daily_volatility", None),
                             btc_return, getattr(btc, "volatility", None))

    def _attached_stop(self, market: Market, price: Decimal, atr_rate: float | None) -> Decimal | None:
        """The hard stop an entry order carries (HARD_STOP_ATTACH_TO_ENTRY): the trigger the
        protection pass computes for a position entered at `price`, so a fill of one rung is
        protected by the venue at once and the next poll finds the stop it would place."""
        if not (self.p.hard_stop_loss_enabled and self.p.hard_stop_attach_to_entry):
            return None
        return stop_trigger(self.side, price, stop_distance(self.p, atr_rate), market)

    def _quality_multiplier(self, score: float) -> float:
        ref = self.p.entry_quality_budget_reference
        if ref <= 0:
            return 1.0
        q = max(self.p.entry_quality_budget_min_multiplier, min(1.0, score / ref))
        if self.p.enable_signal_size_scaling:
            r = max(0.0, min(1.0, score / max(self.p.signal_score_reference, 1e-12)))
            q *= self.p.signal_budget_min_multiplier + \
                (self.p.signal_budget_max_multiplier - self.p.signal_budget_min_multiplier) * r
        return q

    def _unhealthy(self, ci: CycleInput) -> int:
        """Positions whose signal is gone or that are down by at least one averaging step."""
        count = 0
        for symbol, pos in ci.snapshot.positions.items():
            if pos.side != self.side or symbol not in ci.markets:
                continue  # (a position on another market, the BTC hedge's, is not this side's)
            d = ci.decisions.get(symbol)
            price = self._price(ci.snapshot, symbol, pos)
            move = float((price - pos.entry_price) / pos.entry_price) * (1 if self.side == "long" else -1)
            if (d is not None and not d.valid) or move <= -self.p.ema_averaging_min_drawdown_step:
                count += 1
        return count

    def _averaging(self, ci: CycleInput, committed: Decimal = Decimal(0)) -> list[Action]:
        """Averaging adds; `committed` is margin already planned this cycle (new ladders), and
        each add's margin is counted for the next, so the caps see the whole cycle."""
        snap, st, now = ci.snapshot, self.state, ci.snapshot.now_ms
        actions: list[Action] = []
        if ci.risk_blocked or not (ci.entries_enabled and self.p.ema_averaging_enabled):
            return actions
        # ACCOUNT_AVERAGING_*: the shared account-PnL series through this profile's window
        account = ci.account.view(ap.window_ms(self.p), self.side) if ci.account is not None else None
        for symbol, pos in sorted(snap.positions.items()):
            if pos.side != self.side or symbol in st.ladders or symbol in ci.averaging_blocked:
                continue
            meta, market, d = st.positions.get(symbol), ci.markets.get(symbol), ci.decisions.get(symbol)
            book = snap.books.get(symbol)
            if meta is None or market is None or d is None or book is None or not book.valid:
                continue
            orders = snap.orders_of(self.side, symbol)
            price = self._price(snap, symbol, pos)
            ctx = ci.contexts.get(symbol, MarketContext())
            a = AveragingInput(
                side=self.side, entry_price=pos.entry_price, price=price,
                position_notional=notional(pos.contracts, price, market), stages_done=meta.stages_done,
                opened_ms=meta.opened_ms, last_add_ms=meta.last_add_ms, now_ms=now,
                has_entry_orders=any(not o.reduce_only for o in orders),
                has_exit_ladder=any(o.reduce_only and o.kind == "limit" for o in orders),
                in_breakeven=meta.breakeven, add_valid=bool(d.add_valid),
                pullback_recovered=all(_gate_passed(d, g) for g in PULLBACK_GATES),
                macro_allows=ci.overlay.averaging_allowed, atr_rate=ctx.atr_rate,
                daily_volatility=getattr(d.features, "daily_volatility", None) if d.features else None,
                account=account, cost_notional=notional(pos.contracts, pos.entry_price, market),
                initial_notional=meta.initial_notional)
            checks = averaging_checks(self.p, a)
            if not all(c.passed for c in checks):
                continue
            leverage = effective_leverage(self.p, snap.leverage.get(symbol))
            wanted = add_notional(self.p, a) / leverage
            acct = self._account(ci, symbol, leverage)
            acct = AccountView(acct.equity, acct.free_margin - committed, acct.used_margin + committed,
                               acct.symbol_margin, acct.active_positions)
            budget = entry_budget(self.p, acct, leverage, wanted_margin=wanted)
            ref = book.bid if self.side == "long" else book.ask
            rungs = entry_ladder(self.side, market, budget.notional, ref, (1.0,), (0.0,))
            if not rungs:
                continue
            stage = meta.stages_done + 1
            key = f"{meta.pos_id}:add{stage}"
            r = rungs[0]
            cid = client_order_id(self.side, symbol, "add", key)
            # the add's own stop at the position's current trigger: the resize follows at the next poll
            attached = self._attached_stop(market, r.price, ctx.atr_rate)
            if attached is not None and meta.stop_trigger is not None and (
                    meta.stop_trigger < r.price if self.side == "long" else meta.stop_trigger > r.price):
                attached = meta.stop_trigger
            actions.append(PlaceEntry(symbol, self.side, r.price, r.amount, cid, key, purpose="add",
                                      stop_trigger=attached))
            st.ladders[symbol] = LadderMeta(symbol, now, r.notional(market), "add", key, [cid])
            committed += r.notional(market) / leverage
            meta.stages_done, meta.last_add_ms = stage, now
        return actions

    # -- after execution ----------------------------------------------------------------------
    def _apply(self, outcomes: list[Outcome], frozen_keys: dict[str, str]) -> None:
        st = self.state
        self._remember_closes(outcomes)
        frozen = {getattr(o.action, "symbol", None) for o in outcomes if o.status == "frozen"}
        for symbol, key in frozen_keys.items():
            if symbol in st.positions:
                # Remember a refused ladder so it is not re-sent until size or orders change.
                st.positions[symbol].frozen_signature = key if symbol in frozen else ""
                if symbol in frozen:
                    st.positions[symbol].exit_phase = ""
        for o in outcomes:
            a = o.action
            if isinstance(a, PlaceEntry) and o.status != "done" and a.symbol in st.ladders:
                ladder = st.ladders[a.symbol]
                if a.client_order_id in ladder.client_ids:
                    ladder.client_ids.remove(a.client_order_id)
                if not ladder.client_ids:
                    del st.ladders[a.symbol]
                    if a.purpose == "add" and a.symbol in st.positions:
                        meta = st.positions[a.symbol]
                        meta.stages_done = max(0, meta.stages_done - 1)

    # -- views -------------------------------------------------------------------------------
    @staticmethod
    def _price(snap: Snapshot, symbol: str, pos: Position | None = None) -> Decimal:
        book = snap.books.get(symbol)
        if book is not None and book.mid is not None:
            return book.mid
        if pos is not None and pos.mark_price:
            return pos.mark_price
        return pos.entry_price if pos is not None else Decimal(0)

    def _publish_positions(self, ci: CycleInput) -> None:
        snap = ci.snapshot
        views = []
        for symbol, pos in sorted(snap.positions.items()):
            if pos.side != self.side or symbol not in ci.markets:
                continue
            meta = self.state.positions.get(symbol)
            market = ci.markets[symbol]
            price = self._price(snap, symbol, pos)
            stops = [o for o in snap.orders_of(self.side, symbol) if o.kind == "stop_loss"]
            # the stop resting on the exchange is the truth; the planned trigger until it is read
            stop_price = stops[0].trigger_price if stops else (meta.stop_trigger if meta else None)
            dist = float(abs(price - stop_price) / price) if stop_price and price else None
            exits = [o for o in snap.orders_of(self.side, symbol) if o.kind == "limit" and o.reduce_only]
            sign = 1 if self.side == "long" else -1
            upnl = (price - pos.entry_price) * pos.contracts * market.contract_size * sign
            views.append(PositionView(self.side, symbol, self.side, pos.contracts, pos.entry_price, price,
                                      notional(pos.contracts, price, market), upnl, stop_price, dist,
                                      meta.exit_phase.split("|")[0] if meta and meta.exit_phase else "normal",
                                      meta.stages_done if meta else 0, len(exits),
                                      bool(meta and meta.runner_active), meta.opened_ms if meta else ci.snapshot.now_ms,
                                      snap.account_of(symbol) if snap.account_of is not None else ""))
        self.bus.publish(Positions(ci.snapshot.now_ms, self.side, tuple(views)))
        stops = tuple(StopView(o.symbol, o.client_order_id, o.trigger_price, o.amount, o.side, o.ts_ms or 0)
                      for o in snap.orders_of(self.side) if o.kind == "stop_loss" and o.symbol in ci.markets)
        self.bus.publish(Stops(ci.snapshot.now_ms, self.side, stops))


def _protects(o: Outcome) -> bool:
    """The outcome left its position protected: a resting stop, or a close that filled."""
    if not o.ok or o.order is None:
        return False
    if isinstance(o.action, CloseMarket):
        return o.order.filled >= o.action.amount
    return isinstance(o.action, PlaceStop) and o.order.is_open


def _gate_passed(decision: Any, name: str) -> bool:
    for g in getattr(decision, "gates", ()):
        if g.name == name:
            return bool(g.passed)
    return False
