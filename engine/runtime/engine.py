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
from typing import Any

from engine.exchange.base import Exchange, ReferenceFeed
from engine.macro import MacroSymbols, MacroTracker
from engine.exchange.precision import D
from engine.exchange.types import Market
from engine.market.candles import Candle, timeframe_ms
from engine.reference import ReferenceTracker
from engine.settings import Settings
from engine.store.state import StateStore
from engine.strategy import EntryContext, FeatureEngine, FeatureParams, GateResult, evaluate, select_entries

from .commands import EngineCommands, EngineFlags
from .events import Account, CycleStats, ErrorEvent, EventBus, TradeClosed
from .positions import MarketContext
from .profile import CycleInput, Overlay, ProfileRunner
from .snapshot import read_snapshot

log = logging.getLogger("crot.engine")


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
        await self.refresh_leverage()
        for runner in self.profiles.values():
            runner.symbols = list(self.symbols)
            await runner.load()
        self._status("started")

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

    # -- commands (the UI's and the CLI's only way in) -------------------------------------------
    # -- one step ----------------------------------------------------------------------------
    async def step(self, now_ms: int, new_candles: dict[str, list[Candle]], *,
                   new_candle: bool | None = None) -> None:
        """Ingest newly closed candles, then run both profiles' cycles on a fresh snapshot.

        `new_candle` says whether entries are evaluated this step (default: when candles came
        in); a restart after a crash passes True to finish the interrupted step."""
        t0 = time.perf_counter()
        self._feed_macro(new_candles)
        for symbol, candles in new_candles.items():
            if symbol not in self.markets and symbol != self.benchmark:
                continue
            for fe in self._feature_engines():
                fe.on_candles(symbol, self.base_tf, candles)
            if candles:
                self.last_candles[symbol] = candles[-1]
        if new_candle is None:
            new_candle = any(new_candles.values())
        snapshot = await read_snapshot(self.exchange, self.symbols, now_ms)
        snapshot.leverage = self.leverage
        self.reference.update(snapshot.books, await self._reference_tops(new_candle), now_ms)
        claimed_by = {s: snapshot.symbols_held_by(s) for s in ("long", "short")}
        for side in ("long", "short"):
            runner = self.profiles[side]
            other = "short" if side == "long" else "long"
            p = self.settings.side(side)
            regime = self.macro[side].update(now_ms)
            if regime is not None:
                self.bus.publish(regime)
            self.overlays[side] = self.macro[side].overlay(side)
            extra = self._extra_gates(side, now_ms, snapshot.books) if new_candle else {}
            decisions = self._decisions(side, extra, now_ms - self.step_ms) if new_candle else {}
            contexts = self._contexts(side, now_ms)
            no_averaging = {s for s in self.symbols if not self.reference.averaging_allowed(side, s, now_ms, p)[0]}
            ci = CycleInput(snapshot=snapshot, markets=self.markets, decisions=decisions, contexts=contexts,
                            select=select_entries, entry_context=_entry_context,
                            claimed=claimed_by[other], overlay=self.overlays[side], new_candle=new_candle,
                            entries_enabled=self.flags.enabled[side] and not self.flags.paused,
                            averaging_blocked=no_averaging)
            result = await runner.cycle(ci)
            claimed_by[side] |= set(result.selected)
            if side == "long":
                # the short profile must see what the long profile just ordered
                claimed_by["long"] |= {getattr(a, "symbol", "") for a in result.actions}
                snapshot = await read_snapshot(self.exchange, self.symbols, now_ms)
                snapshot.leverage = self.leverage
            self.bus.publish(CycleStats(now_ms, side, len(self.symbols), len(decisions),
                                        sum(1 for d in decisions.values() if d is not None and d.entry_valid),
                                        len(result.selected), sum(1 for o in result.outcomes if o.ok),
                                        sum(1 for p in snapshot.positions.values() if p.side == side),
                                        (time.perf_counter() - t0) * 1000))
        bal = snapshot.balance
        self.bus.publish(Account(now_ms, bal.equity, bal.free, bal.used_margin, bal.unrealized_pnl,
                                 self.realized, self.fees))
        self.cycles += 1

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

    def _decisions(self, side: str, extra: dict[str, tuple[Any, ...]], candle_ts: int) -> dict[str, Any]:
        """Decisions for the symbols whose candle opening at `candle_ts` has closed; a symbol
        whose candle is missing (a gap) is not evaluated on stale features."""
        fe = self.features[side]
        p = self.settings.side(side)
        fresh = fe.features_all(self.symbols, ts_ms=candle_ts)
        btc = fe.benchmark(candle_ts)  # neutral when the pairs are quoted in BTC (the demo data)
        return {symbol: (evaluate(side, fresh[symbol], btc, p, extra.get(symbol, ())) if symbol in fresh else None)
                for symbol in self.symbols}

    def _contexts(self, side: str, now_ms: int) -> dict[str, MarketContext]:
        fe = self.features[side]
        p = self.settings.side(side)
        out = {}
        for symbol in self.symbols:
            f = fe.features(symbol)
            c = self.last_candles.get(symbol)
            last = None if c is None else (c.ts_ms, D(c.high), D(c.low), D(c.close))
            out[symbol] = MarketContext(atr_rate=None if f is None else f.atr_rate, last_candle=last,
                                        tighten=self.reference.tighten_for(side, symbol, now_ms, p))
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
