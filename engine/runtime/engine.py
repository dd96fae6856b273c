"""The engine: shared market data, both profiles, commands, and one step per closed candle.

The same `Engine` runs live (HTX), paper (simulated fills on live data) and replay (recorded
candles on the simulated exchange): only the exchange, the feed and the clock differ. The UI
and the headless logger talk to it through `EngineCommands` and the event bus; the engine never
imports either.
"""

from __future__ import annotations

import logging
import math
import time
from decimal import Decimal
from typing import Any, Callable

from engine.exchange.base import Exchange, ReferenceFeed
from engine.exchange.errors import redact
from engine.macro import MacroSymbols, MacroTracker
from engine.exchange.precision import D
from engine.exchange.types import Market
from engine.market.candles import Candle, last_closed_open_ts, timeframe_ms
from engine.reference import ReferenceTracker
from engine.risk import account_pnl as ap
from engine.risk.hedge import HedgeParams
from engine.risk.protections import AccountProtections, Lock, ProtectionParams
from engine.settings import Settings
from engine.store.state import ACCOUNT_KEY, StateStore
from engine.strategy import EntryContext, FeatureEngine, FeatureParams, GateResult, evaluate, select_entries

from .commands import EngineCommands, EngineFlags
from .events import Account, CycleStats, ErrorEvent, EventBus, ProtectionEvent, TradeClosed
from .hedge import HedgeRunner
from .manual import ManualRequest, manual_actions, set_limit_close
from .positions import MarketContext
from .profile import CycleInput, Overlay, ProfileRunner
from .snapshot import read_snapshot

log = logging.getLogger("crot.engine")

ACCOUNT_PNL_KEY = "account_pnl"  # profile_kv row of the account-PnL guard's series


class Engine(EngineCommands):
    def __init__(self, settings: Settings, exchange: Exchange, store: StateStore, bus: EventBus, *,
                 symbols: list[str], benchmark: str | None = None, mode: str = "replay",
                 reference_feed: ReferenceFeed | None = None, macro_symbols: MacroSymbols | None = None):
        self.settings = settings
        self.exchange = exchange
        self.store = store
        self.bus = bus
        self.mode = mode
        self.symbols = list(symbols)
        self.benchmark = benchmark
        self.markets: dict[str, Market] = {}
        self.flags = EngineFlags({s: s in settings.enabled for s in ("long", "short")})
        # Features are side-independent: both sides share one engine unless their indicator
        # settings differ (then each side keeps its own), so a candle is processed once.
        long_fe = FeatureEngine(settings.side("long"), benchmark)
        short_fe = long_fe if FeatureParams.from_settings(settings.side("short")) == long_fe.params \
            else FeatureEngine(settings.side("short"), benchmark)
        self.features = {"long": long_fe, "short": short_fe}
        self.profiles = {s: ProfileRunner(s, settings.side(s), exchange, store, bus, self.symbols, settings.glob)
                         for s in ("long", "short")}
        self.last_candles: dict[str, Candle] = {}
        # funding rates for the funding-aware exit and the dynamic profit floor: read at most
        # every FUNDING_CACHE_TTL_SEC (of the step clock); empty = unknown (no funding used)
        self.funding: dict[str, float] = {}
        self._funding_due_ms: int | None = None
        self.leverage: dict[str, Decimal | None] = {}
        self.overlays: dict[str, Overlay] = {"long": Overlay(), "short": Overlay()}
        # The macro overlay reads the gold proxy and BTC from the same closed-candle stream
        # (aggregated to GOLD_TIMEFRAME inside the tracker); the gold proxy is never traded.
        self.macro_symbols = macro_symbols
        self.base_tf = settings.side("long").ema_trigger_timeframe
        self.macro = {s: MacroTracker(settings.side(s), profile=s, source_timeframe=self.base_tf,
                                      gold_symbol=(macro_symbols.gold or "") if macro_symbols else "",
                                      btc_symbol=(macro_symbols.btc or "") if macro_symbols else "")
                      for s in ("long", "short")}
        self.reference = ReferenceTracker(settings.glob.external_price_enabled)
        self.reference_feed = reference_feed
        self.realized = Decimal(0)
        self.fees = Decimal(0)
        # per side: symbol -> open time of the newest candle already decided on, so a symbol
        # whose candle arrives a poll late is decided once, and a missed candle is reported
        self._decided: dict[str, dict[str, int]] = {"long": {}, "short": {}}
        self._blocked = ""  # the last announced risk block
        self._restarted = False  # started with stored positions or ladders: reconcile first
        self._protection_params = ProtectionParams.from_settings(settings.glob)
        self.protections = AccountProtections(self._protection_params)
        self._protections_dirty = False
        self._unannounced: list[Lock] = []
        self._manual: list[ManualRequest] = []  # the operator's requests, run by the next step
        self.frozen: set[str] = set()  # symbols with no new entry and no averaging
        # symbols no longer configured (COINS) on which the stored state still holds a position
        # or an entry ladder: managed until it is gone (stop, exits, manual actions), never
        # entered or averaged again (Engine.start)
        self.retired: set[str] = set()
        self._now_ms = 0
        # the account-PnL guard's shared series (both profiles); None: ACCOUNT_PNL_ENABLED off
        params = ap.series_params(settings.side(s) for s in ("long", "short"))
        self.account_pnl: ap.AccountPnlSeries | None = ap.AccountPnlSeries(*params) if params else None
        # the BTC hedge (BTC_HEDGE_*): built at start when it is on or a hedge of ours is open
        self.hedge_params = HedgeParams.from_settings(settings.glob)
        self.hedge: HedgeRunner | None = None
        bus.subscribe(self._on_event)
        self.cycles = 0

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        markets = await self.exchange.load_markets()
        self.markets = {s: markets[s] for s in self.symbols if s in markets}
        missing = [s for s in self.symbols if s not in markets]
        for s in missing:
            self.bus.publish(ErrorEvent(0, "markets", f"{s} is not a market on {self.exchange.name}; skipped"))
        self.symbols = [s for s in self.symbols if s in self.markets]
        for runner in self.profiles.values():
            await runner.load()
        self._retire(markets)
        await self._start_hedge(markets)
        await self.refresh_leverage()
        for runner in self.profiles.values():
            runner.symbols = list(self.symbols)
        self._restarted = any(r.state.positions or r.state.ladders for r in self.profiles.values())
        try:
            self.protections = AccountProtections.from_state(self._protection_params,
                                                             await self.store.load_protections())
        except Exception as exc:  # a lock must not be lost silently: say so, start without it
            log.error("account protections: stored state unreadable (%s); starting without locks", exc)
            self.bus.publish(ErrorEvent(0, "protections", f"stored protection state unreadable: {exc}"))
        for lk in self.protections.locks:
            self._announce_lock(lk, "in force after the restart", lk.since_ms)
        if self.account_pnl is not None:
            # the window, its trough and an armed trailing stop survive a restart (an empty
            # history would unload at once, average without the guard, or forget the peak)
            try:
                self.account_pnl = ap.AccountPnlSeries.from_state(
                    await self.store._get(ACCOUNT_KEY, ACCOUNT_PNL_KEY), self.account_pnl.window_ms,
                    self.account_pnl.interval_ms)
            except Exception as exc:
                self.bus.publish(ErrorEvent(0, "account-pnl", f"stored account-PnL series unreadable: {exc}"))
        await self._restore_controls()
        self._status("started")

    async def _start_hedge(self, markets: dict[str, Market]) -> None:
        """The hedge runner, when BTC_HEDGE_ENABLED is on or the state says a hedge of ours is
        open (turning the hedge off closes it, with its stop kept until it is gone)."""
        symbol = self.hedge_params.symbol
        if symbol in self.symbols:  # the settings rule refuses it; a caller passing symbols may not
            if self.hedge_params.enabled:
                self.bus.publish(ErrorEvent(0, "hedge", f"{symbol} is traded by the strategy: no hedge on it"))
            return
        market = markets.get(symbol)
        if market is None:
            if self.hedge_params.enabled:
                self.bus.publish(ErrorEvent(0, "hedge", f"BTC_HEDGE_COIN: {symbol} is not a market on "
                                                        f"{self.exchange.name}; no hedge"))
            return
        runner = HedgeRunner(self.hedge_params, market, self.exchange, self.store, self.bus, self.settings.side,
                             lambda message, now_ms: self._status(message, now_ms=now_ms))
        try:
            await runner.load()
        except Exception as exc:  # the counter and cooldown restart; the position is read anyway
            self.bus.publish(ErrorEvent(0, "hedge", f"stored hedge state unreadable: {exc}"))
        if runner.manages:
            self.hedge = runner
            p = self.hedge_params
            self._status(f"BTC hedge {'on' if p.enabled else 'off: the open hedge is closed'} on {symbol}: "
                         f"ratio {p.ratio}, cap {p.max_notional or 'none'} USDT, rebalance from "
                         f"{p.min_rebalance} USDT, at most every {p.cooldown_ms / 1000:g} s")

    def on_venue(self, symbol: str) -> bool:
        """Whether the bot trades `symbol`: a strategy market or the hedge's (a paper or replay
        simulator moves its prices from these candles)."""
        return symbol in self.markets or (self.hedge is not None and symbol == self.hedge.symbol)

    async def _hedge_step(self, snapshot: Any, now_ms: int, failed: Any) -> Any:
        """Rebalance the hedge (at most one order), then protect it at once; returns the
        snapshot the cycles plan from (read again when an order went out)."""
        hedge = self.hedge
        if hedge is None:
            return snapshot
        try:
            await hedge.record_fills(snapshot, now_ms, self.settings.glob.fetch_fill_details_on_sync)
            if await hedge.rebalance(snapshot, self.markets, now_ms, self.risk_blocked()):
                snapshot = await self._snapshot(now_ms)
                if await hedge.protect(snapshot, now_ms):
                    snapshot = await self._snapshot(now_ms)
            hedge.publish(snapshot)
        except Exception as exc:
            failed("hedge", exc, "hedge")
        return snapshot

    def _retire(self, markets: dict[str, Market]) -> None:
        """A symbol taken out of the configuration (COINS) while the stored state still holds a
        position or an entry ladder on it stays managed: its stop, exits, reconciliation and
        the manual actions go on until the position is gone; it gets no new entry and no
        averaging, and its resting entry orders are cancelled at the first step (through the
        executor, as a manual cancel). Without this, the position would lose its stop
        management the moment its coin left COINS."""
        held: dict[str, list[str]] = {}
        for side, runner in self.profiles.items():
            for s in [*runner.state.positions, *runner.state.ladders]:
                if s not in self.symbols:
                    held.setdefault(s, []).append(side)
        for s, sides in sorted(held.items()):
            if s not in markets:
                self.bus.publish(ErrorEvent(0, "markets", f"{s}: the stored state holds a {'/'.join(sides)} "
                                                          f"position or ladder, but it is not a market on "
                                                          f"{self.exchange.name}"))
                continue
            self.symbols.append(s)
            self.markets[s] = markets[s]
            self.retired.add(s)
            self._manual.append(ManualRequest("cancel_entries", s))
            self._status(f"{s} is no longer in COINS but the {'/'.join(sorted(set(sides)))} state holds a position "
                         "or entry ladder on it: its stop and exits stay managed until it is gone; no new entry "
                         "or averaging, its entry orders are cancelled")

    async def _reconcile_after_restart(self, snapshot: Any, failed: Any) -> None:
        """First thing after a restart, in the first step: fills that happened while the bot
        was down are read and reconciled (positions adopted or closed and recorded as trades,
        fill events published) before any order is sent."""
        self._restarted = False
        for side, runner in self.profiles.items():
            ci = CycleInput(snapshot=snapshot, markets=self.markets, decisions={}, contexts={},
                            select=select_entries, entry_context=_entry_context, claimed=set(), new_candle=False)
            try:
                await runner.reconcile_only(ci)
            except Exception as exc:
                failed("restart", exc, side)

    async def shutdown(self, now_ms: int) -> None:
        """A clean stop: cancel our resting entry orders (a fill after the bot stopped would be
        a position nobody protects), then protect every position once more (a rung may have
        filled since the last step). Stops and exits stay on the exchange."""
        failed = self._reporter(now_ms)
        snapshot = await self._snapshot(now_ms)
        for side, runner in self.profiles.items():
            try:
                await runner.cancel_entries(snapshot, "clean stop: resting entry orders are cancelled")
            except Exception as exc:
                failed("shutdown", exc, side)
        snapshot = await self._snapshot(now_ms)
        await self._protect_all(snapshot, {s: self._safe_contexts(s, now_ms) for s in ("long", "short")}, failed)
        self._status("entry orders cancelled; stop-loss orders stay on the exchange", now_ms=now_ms)

    def _reporter(self, now_ms: int, errors: list[Exception] | None = None) -> Callable[..., None]:
        """`failed(where, exc, profile="")`: log and publish a part's failure (redacted), and
        keep it in `errors` when given, so the rest of a step or a shutdown still runs."""

        def failed(where: str, exc: Exception, profile: str = "") -> None:
            if errors is not None:
                errors.append(exc)
            text = redact(exc)
            log.error("%s: %s: %s", where, type(exc).__name__, text)
            self.bus.publish(ErrorEvent(now_ms, where, f"{type(exc).__name__}: {text}", profile=profile))

        return failed

    async def _snapshot(self, now_ms: int) -> Any:
        """One read of the account and books, with the leverage read at start."""
        symbols = self.symbols if self.hedge is None else [*self.symbols, self.hedge.symbol]
        snapshot = await read_snapshot(self.exchange, symbols, now_ms)
        snapshot.leverage = self.leverage
        return snapshot

    def _safe_contexts(self, side: str, now_ms: int) -> dict[str, MarketContext]:
        try:
            return self._contexts(side, now_ms)
        except Exception:
            return {}

    async def refresh_leverage(self) -> None:
        """Read the account leverage per symbol (read only: the bot never changes it)."""
        for symbol in self.symbols:
            try:
                self.leverage[symbol] = await self.exchange.fetch_leverage(symbol)
            except Exception as exc:  # unknown leverage sizes at 1x (see effective_leverage)
                self.leverage[symbol] = None
                self.bus.publish(ErrorEvent(0, "leverage", f"{symbol}: leverage unreadable ({type(exc).__name__})"))

    def _feature_engines(self) -> list[FeatureEngine]:
        """Each distinct feature engine once (the sides usually share one)."""
        return list({id(fe): fe for fe in self.features.values()}.values())

    def _feed_macro(self, candles_by_symbol: dict[str, list[Candle]]) -> None:
        ms = self.macro_symbols
        if ms is None or not ms.usable:
            return
        gold, btc = candles_by_symbol.get(ms.gold or "", []), candles_by_symbol.get(ms.btc or "", [])
        if gold or btc:
            for tracker in self.macro.values():
                tracker.feed(gold=gold, btc=btc)

    def warm_up(self, history: dict[str, list[Candle]]) -> None:
        """Feed past closed candles to the indicators (start-up and restart)."""
        self._feed_macro(history)
        for symbol, candles in history.items():
            for fe in self._feature_engines():
                fe.on_candles(symbol, self.base_tf, candles)
            if candles:
                self.last_candles[symbol] = candles[-1]

    def _on_event(self, ev: Any) -> None:
        if isinstance(ev, TradeClosed):
            self.realized += ev.pnl
            self.fees += ev.fees
            # announced by the next step (publishing from inside a handler would put the
            # lock ahead of the trade that fired it for the other subscribers)
            self._unannounced.extend(self.protections.on_trade(ev.ts_ms, ev.profile, ev.reason))
            self._protections_dirty = True

    async def _restore_controls(self) -> None:
        """The operator's switches as they were stored (a profile BOT_PROFILES leaves out stays
        off); said at start so nobody wonders why a profile does not trade."""
        try:
            stored = await self.store.load_controls()
        except Exception as exc:
            self.bus.publish(ErrorEvent(0, "controls", f"stored profile switches unreadable: {exc}"))
            return
        if stored is None:
            return
        enabled, paused, frozen = stored
        self.frozen = {s for s in frozen if s in self.symbols}
        for side in ("long", "short"):
            self.flags.enabled[side] = self.flags.enabled[side] and enabled.get(side, True)
        self.flags.paused = paused
        on = [s for s in ("long", "short") if self.flags.enabled[s]]
        frozen = f"; frozen: {', '.join(sorted(self.frozen))}" if self.frozen else ""
        self._status(f"controls in force from the state file: profiles {', '.join(on) or 'none'} on; "
                     f"new entries {'PAUSED' if paused else 'allowed'}{frozen}")

    # -- manual actions (engine/runtime/manual.py) -------------------------------------------
    def request_manual(self, req: ManualRequest) -> str:
        """Queue an operator's action for the next step (freeze/unfreeze apply at once).
        A symbol that is not traded is refused with one line (ValueError)."""
        if req.kind != "flatten" and req.symbol not in self.symbols:
            raise ValueError(f"{req.symbol or '(no symbol)'} is not a traded symbol; expected one of "
                             f"{', '.join(self.symbols[:8])}{' ...' if len(self.symbols) > 8 else ''}")
        if req.kind in ("freeze", "unfreeze"):
            (self.frozen.add if req.kind == "freeze" else self.frozen.discard)(req.symbol)
            self._controls_changed()
            self._status(f"{req.symbol} {'frozen: no new entry or averaging' if req.kind == 'freeze' else 'unfrozen'}",
                         now_ms=self._now_ms)
            return req.describe()
        self._manual.append(req)
        if req.kind == "flatten":
            self.pause_entries(True)  # or the strategy opens the next position at once
        self._status(f"manual action queued for the next step: {req.describe()}", now_ms=self._now_ms)
        return req.describe()

    async def _run_manual(self, snapshot: Any, now_ms: int, failed: Any) -> bool:
        """Carry out the queued manual actions through each profile's executor; True when
        anything was sent."""
        requests, self._manual = self._manual, []
        sent = False
        for req in requests:
            limit = req.kind == "cancel_close" or (req.kind == "close" and req.price is not None)
            handled = False
            for side, runner in self.profiles.items():
                try:
                    metas = runner.state.positions
                    seq = {s: m.close_seq for s, m in metas.items()}
                    if limit:
                        # the exit planner places it in this step's cycle (positions.py)
                        said = set_limit_close(req, side, snapshot, metas, self.markets)
                        if said is not None:
                            handled = True
                            await runner.store.save_profile(side, runner.state)  # kept across a restart
                            self._status(f"manual {said}", now_ms=now_ms)
                        continue
                    actions = manual_actions(req, side, snapshot, seq, {s: m.pos_id for s, m in metas.items()}, metas)
                    for s, n in seq.items():
                        if s in metas:
                            metas[s].close_seq = n
                    if not actions:
                        continue
                    runner._closing |= {a.symbol for a in actions if getattr(a, "reason", "") == "manual"}
                    outcomes = await runner.executor.run(actions, now_ms)
                    sent = True
                    bad = [o for o in outcomes if not o.ok]
                    self._status(f"manual {req.describe()} ({side}): {len(outcomes) - len(bad)} of {len(outcomes)} "
                                 f"order call(s) done{'; ' + bad[0].detail if bad else ''}", now_ms=now_ms)
                except Exception as exc:
                    handled = True
                    failed("manual", exc, side)
            if limit and not handled:
                self._status(f"manual {req.describe()}: no open position on {req.symbol}, nothing done", now_ms=now_ms)
        return sent

    def lift_protections(self) -> int:
        """The operator lifts every account protection now; returns how many were lifted."""
        lifted = self.protections.lift()
        for lk in lifted:
            self._announce_lock(lk, "lifted by the operator", self._now_ms)
        self._protections_dirty = True
        return len(lifted)

    def _announce_lock(self, lk: Lock, action: str, now_ms: int) -> None:
        who = "both profiles" if not lk.profile else f"the {lk.profile} profile"
        self.bus.publish(ProtectionEvent(now_ms, lk.name, lk.profile, action, lk.reason, lk.until_ms))
        if action == "fired":
            self._status(f"protection {lk.name.replace('_', ' ')}: new entries and averaging stopped for {who} "
                         f"({lk.reason})", now_ms=now_ms)
        elif action.startswith("lifted"):
            self._status(f"protection {lk.name.replace('_', ' ')} {action}: {who} may enter again", now_ms=now_ms)

    async def _protections_step(self, now_ms: int, equity: Decimal, failed: Any) -> None:
        """Lift the locks whose cool-off is over, feed the equity, persist what changed. A
        failure is reported and never stops the step (stops come first, and ran already)."""
        try:
            for lk in self._unannounced:
                self._announce_lock(lk, "fired", lk.since_ms)
            self._unannounced.clear()
            for lk in self.protections.expire(now_ms):
                self._announce_lock(lk, "lifted", now_ms)
                self._protections_dirty = True
            before = len(self.protections.locks)
            for lk in self.protections.on_equity(now_ms, equity):
                self._announce_lock(lk, "fired", now_ms)
            if len(self.protections.locks) != before or self._protections_dirty \
                    or self.cycles % 20 == 0:
                await self.store.save_protections(self.protections.to_state())
                self._protections_dirty = False
        except Exception as exc:
            failed("protections", exc)

    def _observe_account_pnl(self, snapshot: Any, now_ms: int, failed: Any) -> None:
        """One reading of the account's open PnL (both profiles, at the books' mid) for the
        account-PnL guard; sampled by the series at its interval of the step clock."""
        if self.account_pnl is None:
            return
        try:
            prices = {s: ProfileRunner._price(snapshot, s, pos) for s, pos in snapshot.positions.items()}
            self.account_pnl.observe(now_ms, *ap.open_pnl(snapshot.positions.values(), prices, self.markets))
        except Exception as exc:
            failed("account-pnl", exc)

    async def _save_account_pnl(self, failed: Any) -> None:
        if self.account_pnl is None or not self.account_pnl.dirty:
            return
        try:
            await self.store._put(ACCOUNT_KEY, ACCOUNT_PNL_KEY, self.account_pnl.to_state())
        except Exception as exc:  # tried again at the next sample
            self.account_pnl.dirty = True
            failed("account-pnl", exc)

    def _blocked_for(self, side: str, now_ms: int) -> str:
        """What stops new risk of `side` now: a position without its stop (either side), or
        an account protection."""
        return "; ".join(r for r in (self.risk_blocked(), self.protections.blocked(side, now_ms)) if r)

    # -- commands (the UI's and the CLI's only way in) -------------------------------------------
    # -- one step ----------------------------------------------------------------------------
    async def step(self, now_ms: int, new_candles: dict[str, list[Candle]], *,
                   new_candle: bool | None = None) -> None:
        """Ingest newly closed candles, protect every position, then run both profiles' cycles.

        Stops first, isolated: after the one account read, the hard stop of every position of
        both sides is verified and placed before anything else, and a failure in any other
        part (the reference feed, the macro tracker, one side's cycle, the state file) is
        reported and does not stop the rest of the step; the first such error is raised at
        the end so the caller still sees the step as failed. While a position of either side
        lacks a confirmed stop, neither side takes new risk.

        `new_candle` says whether entries are evaluated this step (default: when candles came
        in); a restart after a crash passes True to finish the interrupted step."""
        t0 = time.perf_counter()
        errors: list[Exception] = []
        failed = self._reporter(now_ms, errors)

        try:
            self._feed_macro(new_candles)
        except Exception as exc:
            failed("macro", exc)
        for symbol, candles in new_candles.items():
            if symbol not in self.markets and symbol != self.benchmark:
                continue
            try:
                for fe in self._feature_engines():
                    fe.on_candles(symbol, self.base_tf, candles)
            except Exception as exc:
                failed("features", exc)
            if candles:
                self.last_candles[symbol] = candles[-1]
        redo = new_candle is True  # finishing an interrupted step: decide again
        if new_candle is None:
            new_candle = any(new_candles.values())
        snapshot = await self._snapshot(now_ms)  # nothing works without it
        if snapshot.unknown:
            await self._one_account_down(snapshot, now_ms, failed)
            self.cycles += 1
            if errors:
                raise errors[0]
            return
        if self._restarted:
            await self._reconcile_after_restart(snapshot, failed)
        try:
            self.reference.update(snapshot.books, await self._reference_tops(new_candle), now_ms)
        except Exception as exc:
            failed("reference", exc)
        contexts: dict[str, dict[str, MarketContext]] = {}
        for side in ("long", "short"):
            try:
                contexts[side] = self._contexts(side, now_ms)
            except Exception as exc:  # the stop then uses the fixed distance
                contexts[side] = {}
                failed("contexts", exc, side)

        # 1. stops first, both sides, each on its own
        sent = await self._protect_all(snapshot, contexts, failed)
        if sent:
            try:  # the cycles plan from what is on the exchange now
                snapshot = await self._snapshot(now_ms)
            except Exception as exc:
                failed("snapshot", exc)
                raise errors[0]
        blocked = self.risk_blocked()
        self._announce_block(now_ms, blocked)
        # funding only shapes exit prices: read after the stops (a slow read must not delay them)
        if await self._refresh_funding(now_ms):
            for side in ("long", "short"):
                try:
                    contexts[side] = self._contexts(side, now_ms)
                except Exception as exc:
                    failed("contexts", exc, side)
        self._now_ms = now_ms
        await self._protections_step(now_ms, snapshot.balance.equity, failed)
        self._observe_account_pnl(snapshot, now_ms, failed)
        await self.save_controls()
        if self._manual and await self._run_manual(snapshot, now_ms, failed):
            try:
                snapshot = await self._snapshot(now_ms)
            except Exception as exc:
                failed("snapshot", exc)
                raise errors[0]

        snapshot = await self._hedge_step(snapshot, now_ms, failed)

        # 2. the cycles, each side isolated from the other
        claimed_by = {s: snapshot.symbols_held_by(s) for s in ("long", "short")}
        cycle_failed = False
        for side in ("long", "short"):
            runner = self.profiles[side]
            other = "short" if side == "long" else "long"
            try:
                p = self.settings.side(side)
                regime = self.macro[side].update(now_ms)
                if regime is not None:
                    self.bus.publish(regime)
                self.overlays[side] = self.macro[side].overlay(side)
                extra = self._extra_gates(side, now_ms, snapshot.books) if new_candle else {}
                decisions = self._decisions(side, extra, now_ms, new_candles, redo=redo) if new_candle else {}
                # only a position of this side can be averaged (the check has no side effect)
                held = {s for s, pos in snapshot.positions.items() if pos.side == side} & set(self.symbols)
                no_averaging = {s for s in sorted(held)
                                if not self.reference.averaging_allowed(side, s, now_ms, p)[0]} | self.frozen \
                    | self.retired
                # a position the operator closes at a limit is not added to
                no_averaging |= {s for s, m in runner.state.positions.items() if m.manual_close_price is not None}
                decisions = {s: (None if s in self.frozen or s in self.retired else d) for s, d in decisions.items()}
                ci = CycleInput(snapshot=snapshot, markets=self.markets, decisions=decisions,
                                contexts=contexts[side], select=select_entries, entry_context=_entry_context,
                                claimed=claimed_by[other], overlay=self.overlays[side], new_candle=new_candle,
                                entries_enabled=self.flags.enabled[side] and not self.flags.paused,
                                averaging_blocked=no_averaging, risk_blocked=self._blocked_for(side, now_ms),
                                account=self.account_pnl)
                result = await runner.cycle(ci)
                claimed_by[side] |= set(result.selected)
                if side == "long":
                    # the short profile must see what the long profile just ordered
                    claimed_by["long"] |= {getattr(a, "symbol", "") for a in result.actions}
                    snapshot = await self._snapshot(now_ms)
                self.bus.publish(CycleStats(now_ms, side, len(self.symbols), len(decisions),
                                            sum(1 for d in decisions.values() if d is not None and d.entry_valid),
                                            len(result.selected), sum(1 for o in result.outcomes if o.ok),
                                            sum(1 for p in snapshot.positions.values() if p.side == side),
                                            (time.perf_counter() - t0) * 1000))
            except Exception as exc:
                cycle_failed = True
                failed("cycle", exc, side)
                if side == "long":
                    # the short side must not act on a view that misses what the long side did
                    try:
                        snapshot = await self._snapshot(now_ms)
                        claimed_by["long"] |= snapshot.symbols_held_by("long")
                    except Exception as again:
                        failed("snapshot", again)
                        break
        if cycle_failed:
            # a cycle that broke off may have left a size change behind (an exit that filled
            # at once, a close): protect again before the step ends
            try:
                snapshot = await self._snapshot(now_ms)
                await self._protect_all(snapshot, contexts, failed, verify=True)
            except Exception as exc:
                failed("snapshot", exc)
        await self._save_account_pnl(failed)
        bal = snapshot.balance
        accounts = tuple((name, b.equity, b.free, b.used_margin) for name, b in sorted(snapshot.balances.items()))
        self.bus.publish(Account(now_ms, bal.equity, bal.free, bal.used_margin, bal.unrealized_pnl,
                                 self.realized, self.fees, accounts))
        self.cycles += 1
        if errors:
            raise errors[0]

    async def _one_account_down(self, snapshot: Any, now_ms: int, failed: Any) -> None:
        """Two accounts (COINS_2) and one did not answer: the other account's positions get
        their protection pass (a stop re-placed, a bounded close-out), and nothing else happens
        this step. The silent account's positions and orders are unknown, not gone: no
        reconciliation (it would record them as closed), no cycle, no manual action, no hedge
        rebalancing and no equity reading for the protections (half the equity is missing);
        their stops rest on the exchange."""
        self._now_ms = now_ms
        contexts = {side: self._safe_contexts(side, now_ms) for side in ("long", "short")}
        await self._protect_all(snapshot, contexts, failed)
        self.bus.publish(ErrorEvent(now_ms, "accounts", f"{snapshot.unknown_why}: its coins are left as they are "
                                                        "(their stops rest on the exchange); the other account's "
                                                        "stops were checked; no other order this step"))

    async def _protect_all(self, snapshot: Any, contexts: dict[str, dict[str, MarketContext]], failed: Any,
                           *, verify: bool = False) -> bool:
        """The protection pass of both sides; True when it sent anything."""
        sent = False
        for side in ("long", "short"):
            ci = CycleInput(snapshot=snapshot, markets=self.markets, decisions={}, contexts=contexts.get(side, {}),
                            select=select_entries, entry_context=_entry_context, claimed=set(),
                            new_candle=False)
            try:
                outcomes = await self.profiles[side].protect(ci, verify=verify)
                sent = sent or bool(outcomes)
            except Exception as exc:
                failed("protection", exc, side)
        if self.hedge is not None:
            try:
                sent = await self.hedge.protect(snapshot, snapshot.now_ms) or sent
            except Exception as exc:
                failed("protection", exc, "hedge")
        return sent

    #: extra entry blockers, each returning "" or why no new entry / averaging may happen (stops
    #: and exits go on), e.g. the audit record's disk guard (``AuditWriter.block_reason``)
    entry_blockers: tuple[Callable[[], str], ...] = ()

    def risk_blocked(self) -> str:
        """Why no new risk may be taken on either side now ("" when every position of both
        sides has a confirmed stop and no entry blocker objects)."""
        reasons = [self.profiles[s].block_reason() for s in ("long", "short")] + [b() for b in self.entry_blockers]
        if self.hedge is not None:
            reasons.append(self.hedge.block_reason())
        return "; ".join(r for r in reasons if r)

    def _announce_block(self, now_ms: int, blocked: str) -> None:
        if blocked == self._blocked:
            return
        if blocked:
            self._status(f"new entries and averaging blocked on both sides: {blocked}", now_ms=now_ms)
        else:
            self._status(f"{_lifted(self._blocked)}: new entries and averaging allowed", now_ms=now_ms)
        self._blocked = blocked

    async def _reference_tops(self, with_depth: bool) -> dict[str, Any]:
        """MEXC tops keyed by our symbols (live); none in replay or when unreachable.

        Between candles one batched ticker read keeps the 30 s / 1 min history; at a candle
        close (when entries are decided) the order books are read too, because the depth
        check needs sizes that the ticker does not carry."""
        if self.reference_feed is None or not self.settings.glob.external_price_enabled:
            return {}
        try:
            if with_depth:
                return dict(await self.reference_feed.fetch_book_tops(self.symbols, depth=1))
            return dict(await self.reference_feed.fetch_best_prices(self.symbols))
        except Exception as exc:  # a missing reference is handled by the stale rules
            self.bus.publish(ErrorEvent(0, "reference", f"reference prices unavailable ({type(exc).__name__})"))
            return {}

    def _extra_gates(self, side: str, now_ms: int, books: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        """Spread, macro regime and cross-exchange reference gates, per symbol, for the decisions."""
        p = self.settings.side(side)
        macro_gate = self.macro[side].gate(side)
        out: dict[str, tuple[Any, ...]] = {}
        for symbol in self.symbols:
            r = self.reference.check(side, symbol, now_ms, p)
            ev = self.reference.event_if_changed(symbol, r, now_ms)
            if ev is not None:
                self.bus.publish(ev)
            out[symbol] = (spread_gate(p, books.get(symbol)), macro_gate, *r.gates)
        return out

    def _decisions(self, side: str, extra: dict[str, tuple[Any, ...]], now_ms: int,
                   new_candles: dict[str, list[Candle]] | None = None, *, redo: bool = False) -> dict[str, Any]:
        """Decisions on the last CLOSED candle at `now_ms` (the clock may read any time after
        its close: +0 ms in replay, seconds later live).

        Only symbols whose newest candle is that one are evaluated: a symbol whose candle is
        missing (a gap, or the venue has not published it yet) is not evaluated on stale
        features, and is decided when its candle arrives at a later poll. A symbol decided on
        this candle already is not decided again (unless `redo`: a restart finishing an
        interrupted step). When a poll comes after more than one candle closed, the latest
        is evaluated and the skipped ones are reported."""
        fe = self.features[side]
        p = self.settings.side(side)
        candle_ts = last_closed_open_ts(now_ms, self.step_ms)
        done = self._decided[side]
        wanted = self.symbols if redo else [s for s in self.symbols if done.get(s, -1) < candle_ts]
        fresh = fe.features_all(wanted, ts_ms=candle_ts)
        btc = fe.benchmark(candle_ts)  # neutral when the pairs are quoted in BTC
        skipped = 0
        for symbol in fresh:
            prev = done.get(symbol)
            if prev is not None:  # closed candles delivered together: all but the latest skipped
                skipped = max(skipped, sum(1 for c in (new_candles or {}).get(symbol, ())
                                           if prev < c.ts_ms < candle_ts))
            done[symbol] = candle_ts
        if skipped:
            msg = (f"{side}: {skipped} closed candle(s) were not evaluated (the poll came late); "
                   f"decided on the latest, opened at {candle_ts}")
            log.warning(msg)
            self.bus.publish(ErrorEvent(now_ms, "skipped-candle", msg))
        return {symbol: (evaluate(side, fresh[symbol], btc, p, extra.get(symbol, ())) if symbol in fresh else None)
                for symbol in self.symbols}

    def _funding_ttl_sec(self) -> int | None:
        """FUNDING_CACHE_TTL_SEC of the sides that use funding (the shortest); None: neither
        the funding-aware exit nor the dynamic profit floor is on, funding is not read."""
        ttls = [p.funding_cache_ttl_sec for p in (self.settings.side(s) for s in ("long", "short"))
                if p.enable_funding_aware_exit or p.enable_dynamic_profit_floor]
        return min(ttls) if ttls else None

    async def _refresh_funding(self, now_ms: int) -> bool:
        """Read the funding rates when the cached ones are older than FUNDING_CACHE_TTL_SEC;
        True when they were read (or the read failed). A failed read never stops the step: it
        is reported, no funding is used, and it is tried again after at most 30 s (or the TTL
        when shorter)."""
        ttl = self._funding_ttl_sec()
        if ttl is None:
            self.funding, self._funding_due_ms = {}, None
            return False
        if self._funding_due_ms is not None and now_ms < self._funding_due_ms:
            return False
        try:
            rates = await self.exchange.fetch_funding_rates(self.symbols)
            funding = {}
            for symbol, r in rates.items():
                value = float(r.rate)
                if math.isfinite(value):
                    funding[symbol] = value
            self.funding, self._funding_due_ms = funding, now_ms + ttl * 1000
        except Exception as exc:
            self.funding, self._funding_due_ms = {}, now_ms + min(ttl, 30) * 1000
            text = redact(exc)
            log.warning("funding: %s: %s", type(exc).__name__, text)
            self.bus.publish(ErrorEvent(now_ms, "funding", f"funding rates unavailable, none used "
                                                           f"({type(exc).__name__}: {text})"))
        return True

    def _contexts(self, side: str, now_ms: int) -> dict[str, MarketContext]:
        fe = self.features[side]
        p = self.settings.side(side)
        uses_funding = p.enable_funding_aware_exit or p.enable_dynamic_profit_floor
        out = {}
        for symbol in self.symbols:
            f = fe.features(symbol)
            c = self.last_candles.get(symbol)
            last = None if c is None else (c.ts_ms, D(c.high), D(c.low), D(c.close))
            gap = None if f is None or not f.macro_slow else (f.macro_fast - f.macro_slow) / f.macro_slow
            out[symbol] = MarketContext(atr_rate=None if f is None else f.atr_rate, last_candle=last,
                                        tighten=self.reference.tighten_for(side, symbol, now_ms, p),
                                        trend_gap=gap, macro_score=self.macro[side].context.direction_score,
                                        volatility=None if f is None else f.volatility,
                                        funding=self.funding.get(symbol) if uses_funding else None,
                                        daily_volatility=None if f is None else f.daily_volatility)
        return out

    @property
    def step_ms(self) -> int:
        return timeframe_ms(self.base_tf)


def spread_gate(p: Any, book: Any) -> GateResult:
    """ENTRY_SPREAD_FILTER_*: the HTX book's bid/ask spread in bps must be small enough to
    enter; an unreadable book blocks only with ENTRY_SPREAD_FILTER_BLOCK_IF_UNAVAILABLE."""
    limit = float(p.entry_spread_filter_max_bps)
    if book is None or not book.valid:
        passed = not (p.entry_spread_filter_enabled and p.entry_spread_filter_block_if_unavailable)
        return GateResult("spread", math.nan, limit, passed, "hard" if p.entry_spread_filter_enabled else "info",
                          "<=", "book unavailable")
    spread = float((book.ask - book.bid) / book.mid * 10_000)
    if not p.entry_spread_filter_enabled:
        return GateResult("spread", spread, limit, True, "info", "<=", "filter off")
    return GateResult("spread", spread, limit, spread <= limit, "hard", "<=")


def _entry_context(**kw: Any) -> EntryContext:
    return EntryContext(**kw)


def _lifted(was: str) -> str:
    """What ended a block, in the words of the block ("" when unknown)."""
    stops = "without a confirmed stop" in was
    disk = "disk full" in was
    if stops and not disk:
        return "every position has its stop again"
    if disk and not stops:
        return "the audit record's disk has room again"
    return "the block is over"

