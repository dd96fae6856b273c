"""What the UI knows, built from engine events; coalesces bursts between refreshes.

`UiState.feed(event)` is cheap and synchronous: it keeps the latest Positions per profile, the
latest Decisions per profile, the latest Premium per symbol, the latest Account and so on, and
marks the panes whose content changed. The app's drain task calls `take_dirty()` at most a few
times per second and refreshes only those panes. Nothing here touches Textual, so the same
state can be tested (and reused) without a terminal.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from engine.runtime import events as ev

from .logsink import EventFormatter, LogLine

PANES = ("status", "positions", "stops", "rejections", "regime", "premium", "account", "log")
SIDES = ("long", "short")


@dataclass
class StopRow:
    """One stop-loss order the engine knows to be resting on the exchange (or missing)."""

    profile: str
    symbol: str
    client_order_id: int | None
    trigger: Decimal | None
    amount: Decimal | None
    status: str  # open | missing | emergency | derived
    reason: str = ""
    since_ms: int = 0

    @property
    def key(self) -> str:
        tail = self.client_order_id if self.client_order_id is not None else self.status
        return f"{self.profile}:{self.symbol}:{tail}"


@dataclass
class RegimeChange:
    ts_ms: int
    regime: str
    previous: str
    profiles: tuple[str, ...]
    reason: str = ""


@dataclass
class Progress:
    done: int = 0
    total: int = 0
    warming: bool = True
    speed: float = 0.0
    playback_paused: bool = False
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    def rate(self, window_s: float = 3.0) -> float | None:
        """Candles per second actually replayed over the last `window_s` seconds (None until
        two samples a quarter second apart exist)."""
        if len(self.samples) < 2:
            return None
        t1, d1 = self.samples[-1]
        t0, d0 = self.samples[0]
        for t, d in self.samples:
            if t1 - t <= window_s:
                t0, d0 = t, d
                break
        return (d1 - d0) / (t1 - t0) if t1 - t0 >= 0.25 else None


class EquityHistory:
    """A bounded equity series that keeps the whole run: when full, every other point is
    dropped and the sampling stride doubles."""

    def __init__(self, size: int = 240) -> None:
        self.size = size
        self.points: list[float] = []
        self.stride = 1
        self._n = 0
        self.latest: float | None = None

    @property
    def series(self) -> list[float]:
        """The sampled points, ending with the newest value."""
        if self.latest is None:
            return []
        if (self._n - 1) % self.stride == 0:
            return list(self.points)
        return [*self.points, self.latest]

    def add(self, value: float) -> None:
        self.latest = value
        if self._n % self.stride == 0:
            self.points.append(value)
            if len(self.points) >= self.size:
                self.points = self.points[::2]
                self.stride *= 2
        self._n += 1


EPISODE_EVENTS = 400  # per position
TRADE_LIMIT = 2000  # closed trades kept in memory
LOG_LIMIT = 5000  # event-log lines kept in memory
CHART_POINTS = 288  # closes per symbol for the price chart (a day of 5m candles)
HISTORY_KINDS = ("order", "fill", "stop", "trade", "repair")


@dataclass
class Episode:
    """What happened to one position of one profile and symbol: its orders, fills and stop
    moves in arrival order (bounded), the gate decision behind its first entry order, and the
    trade that closed it (None while it is open). An episode starts with the first order, fill
    or stop event after the previous trade of that profile and symbol closed."""

    profile: str
    symbol: str
    events: deque[ev.Event] = field(default_factory=lambda: deque(maxlen=EPISODE_EVENTS))
    decision: Any = None  # engine.strategy.decision.Decision at the entry order, if the UI saw it
    decision_ts: int = 0
    trade: ev.TradeClosed | None = None
    seq: int = 0  # 1, 2, ... in the order the trades closed (0 while open)
    dropped: int = 0  # events that fell off the bounded history
    history: bool = False  # read from the audit trail (closed before the app started)

    @property
    def key(self) -> tuple[str, str]:
        return self.profile, self.symbol

    def add(self, e: ev.Event) -> None:
        if self.events.maxlen is not None and len(self.events) >= self.events.maxlen:
            self.dropped += 1
        self.events.append(e)


@dataclass
class UiState:
    log_limit: int = LOG_LIMIT
    ring: int = 120
    status: ev.EngineStatus | None = None
    mode: str = ""
    enabled: dict[str, bool] = field(default_factory=lambda: {"long": True, "short": True})
    paused: bool = False
    progress: Progress = field(default_factory=Progress)
    finished: str = ""  # a message once the engine stopped
    sim_ms: int = 0
    positions: dict[str, tuple[ev.PositionView, ...]] = field(default_factory=lambda: {s: () for s in SIDES})
    stops: dict[str, StopRow] = field(default_factory=dict)
    exact_stops: set[str] = field(default_factory=set)  # profiles fed by a Stops snapshot event
    decisions: dict[str, ev.Decisions] = field(default_factory=dict)
    closes: dict[str, deque[tuple[int, float]]] = field(default_factory=dict)
    chart_points: int = CHART_POINTS
    # per symbol: (candle open ms, close, trigger EMA fast, trigger EMA slow), for the price chart
    bars: dict[str, deque[tuple[int, float, float, float]]] = field(default_factory=dict)
    regime: ev.Regime | None = None
    regimes: dict[str, ev.Regime] = field(default_factory=dict)  # latest per profile
    regime_history: deque[RegimeChange] = field(default_factory=lambda: deque(maxlen=50))
    premium: dict[str, ev.Premium] = field(default_factory=dict)
    account: ev.Account | None = None
    start_equity: Decimal | None = None
    equity: EquityHistory = field(default_factory=EquityHistory)
    trades: int = 0
    wins: int = 0
    realized: Decimal = Decimal(0)  # sum of closed trades' PnL (after fees)
    trade_fees: Decimal = Decimal(0)
    errors: int = 0
    log: deque[LogLine] = field(default_factory=deque)
    new_log: list[LogLine] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    log_seq: int = 0
    dirty: set[str] = field(default_factory=set)
    trade_limit: int = TRADE_LIMIT
    closed: deque[Episode] = field(default_factory=deque)  # closed trades, oldest first (bounded)
    episodes: dict[tuple[str, str], Episode] = field(default_factory=dict)  # open, per (profile, symbol)
    trade_seq: int = 0
    history_loaded: bool = False  # the audit trail's earlier trades were merged (add_history)

    def __post_init__(self) -> None:
        self.log = deque(maxlen=self.log_limit)
        self.closed = deque(maxlen=self.trade_limit)
        self._last_closed: dict[tuple[str, str], Episode] = {}
        self._fmt = EventFormatter()

    # -- feeding ----------------------------------------------------------------------------
    def feed(self, e: ev.Event) -> None:
        if e.ts_ms and e.ts_ms > self.sim_ms:
            self.sim_ms = e.ts_ms
        line = self._fmt(e)
        if line is not None:
            self.log_seq += 1
            line = replace(line, seq=self.log_seq)
            self.log.append(line)
            self.new_log.append(line)
            if len(self.new_log) > self.log_limit:
                del self.new_log[: len(self.new_log) - self.log_limit]
            self.dirty.add("log")
        if e.kind in HISTORY_KINDS:
            self._remember(e)
        handler = getattr(self, f"_on_{e.kind}", None)
        if handler is not None:
            handler(e)

    def _remember(self, e: Any) -> None:
        """Keep an order, fill, stop, repair or closed trade in its position's episode."""
        profile, symbol = getattr(e, "profile", ""), getattr(e, "symbol", "")
        if not symbol:
            return
        key = (profile, symbol)
        ep = self.episodes.get(key)
        if ep is None:
            last = self._last_closed.get(key)
            opening = getattr(e, "purpose", "") in ("entry", "add") or any(
                p.symbol == symbol for p in self.positions.get(profile, ()))
            if last is not None and not opening and e.kind != "trade":
                last.add(e)  # the clean-up after a close (its exits cancelled, ...)
                return
            if e.kind == "repair":
                return  # a repair of nothing we follow: the log has it
            ep = self.episodes[key] = Episode(profile, symbol)
        ep.add(e)
        if ep.decision is None and e.kind in ("order", "fill") and getattr(e, "purpose", "") == "entry":
            d = self.decision(symbol, profile)
            if d is not None:
                ep.decision, ep.decision_ts = d, getattr(d, "ts_ms", 0) or e.ts_ms
        if e.kind == "trade":
            ep.trade = e
            self.trade_seq += 1
            ep.seq = self.trade_seq
            self.closed.append(ep)
            self._last_closed[key] = ep
            del self.episodes[key]

    def _on_status(self, e: ev.EngineStatus) -> None:
        self.status = e
        self.mode = e.mode
        self.enabled = {s: s in e.enabled for s in SIDES}
        self.paused = e.paused
        self.dirty.add("status")

    def set_flags(self, enabled: dict[str, bool], paused: bool) -> None:
        """Mirror the engine's flags right after a command (the status event follows)."""
        self.enabled = dict(enabled)
        self.paused = paused
        self.dirty.add("status")

    def set_progress(self, done: int, total: int, warming: bool, now: float | None = None) -> None:
        self.progress.done, self.progress.total, self.progress.warming = done, total, warming
        self.progress.samples.append((time.monotonic() if now is None else now, done))
        self.dirty.add("status")

    def _on_decisions(self, e: ev.Decisions) -> None:
        self.decisions[e.profile] = e
        for d in e.decisions:
            f = getattr(d, "features", None)
            if f is None:
                continue
            ring = self.closes.get(d.symbol)
            if ring is None:
                ring = self.closes[d.symbol] = deque(maxlen=self.ring)
            if not ring or ring[-1][0] < f.ts_ms:
                ring.append((f.ts_ms, float(f.close)))
                bars = self.bars.get(d.symbol)
                if bars is None:
                    bars = self.bars[d.symbol] = deque(maxlen=self.chart_points)
                bars.append((f.ts_ms, float(f.close), float(f.trigger_fast), float(f.trigger_slow)))
            if d.symbol not in self.symbols:
                self.symbols.append(d.symbol)
        self.dirty.add("rejections")

    def _on_positions(self, e: ev.Positions) -> None:
        self.positions[e.profile] = e.positions
        self.dirty.add("positions")
        if e.profile in self.exact_stops:
            return
        held = {p.symbol: p for p in e.positions}
        changed = False
        for key, row in list(self.stops.items()):
            if row.profile != e.profile:
                continue
            if row.symbol not in held:
                del self.stops[key]  # closed (or its stop triggered): the stop is gone too
                changed = True
        for p in e.positions:
            mine = [r for r in self.stops.values() if r.profile == e.profile and r.symbol == p.symbol]
            if p.stop_price is not None and not mine:
                row = StopRow(e.profile, p.symbol, None, p.stop_price, p.contracts, "derived",
                              "from position", e.ts_ms)
                self.stops[row.key] = row
                changed = True
            elif p.stop_price is not None:
                for r in mine:
                    if r.status == "derived" and (r.trigger != p.stop_price or r.amount != p.contracts):
                        r.trigger, r.amount = p.stop_price, p.contracts
                        changed = True
        if changed:
            self.dirty.add("stops")

    def _on_order(self, e: ev.OrderEvent) -> None:
        if e.purpose != "stop" or e.profile in self.exact_stops:
            return
        if e.action in ("placed", "adopted"):
            # a real order replaces a row derived from the position or a 'missing' marker
            for key, row in list(self.stops.items()):
                if row.profile == e.profile and row.symbol == e.symbol and row.status in ("derived", "missing"):
                    del self.stops[key]
            row = StopRow(e.profile, e.symbol, e.client_order_id, e.price, e.amount, "open", e.reason, e.ts_ms)
            self.stops[row.key] = row
            self.dirty.add("stops")
        elif e.action == "cancelled":
            for key, row in list(self.stops.items()):
                if row.profile == e.profile and row.symbol == e.symbol and (
                        e.client_order_id is None or row.client_order_id == e.client_order_id):
                    del self.stops[key]
                    self.dirty.add("stops")

    def _on_stop(self, e: ev.StopEvent) -> None:
        if e.profile in self.exact_stops:
            return
        mine = [r for r in self.stops.values() if r.profile == e.profile and r.symbol == e.symbol]
        if e.action in ("missing", "emergency_close"):
            status = "missing" if e.action == "missing" else "emergency"
            row = StopRow(e.profile, e.symbol, None, e.trigger, e.amount, status, e.reason, e.ts_ms)
            self.stops[row.key] = row
        else:
            for r in mine:
                if r.status == "open":
                    r.reason = e.reason or e.action
        self.dirty.add("stops")

    def _on_stops(self, e: Any) -> None:
        """An exact snapshot of the stop orders on the exchange (if the engine publishes one):
        `Stops(profile, stops=(...objects with symbol, client_order_id, trigger, amount...))`."""
        profile = getattr(e, "profile", "")
        self.exact_stops.add(profile)
        for key, row in list(self.stops.items()):
            if row.profile == profile:
                del self.stops[key]
        for s in getattr(e, "stops", ()):
            trigger = getattr(s, "trigger", None)
            if trigger is None:
                trigger = getattr(s, "trigger_price", None)
            row = StopRow(profile, s.symbol, getattr(s, "client_order_id", None), trigger,
                          getattr(s, "amount", None), getattr(s, "status", "open") or "open",
                          getattr(s, "reason", ""), getattr(s, "placed_ms", 0) or e.ts_ms)
            self.stops[row.key] = row
        self.dirty.add("stops")

    def _on_regime(self, e: ev.Regime) -> None:
        profile = str(e.inputs.get("profile", "")) if isinstance(e.inputs, dict) else ""
        self.regime = e
        if profile:
            self.regimes[profile] = e
        reason = str(e.inputs.get("reason", "") or "") if isinstance(e.inputs, dict) else ""
        last = self.regime_history[-1] if self.regime_history else None
        if last is not None and last.ts_ms == e.ts_ms and last.regime == e.regime and last.previous == e.previous:
            if profile and profile not in last.profiles:
                last.profiles = (*last.profiles, profile)
        elif e.regime != e.previous:
            self.regime_history.append(RegimeChange(e.ts_ms, e.regime, e.previous,
                                                    (profile,) if profile else (), reason))
        self.dirty.add("regime")
        self.dirty.add("status")

    def _on_premium(self, e: ev.Premium) -> None:
        self.premium[e.symbol] = e
        self.dirty.add("premium")

    def _on_account(self, e: ev.Account) -> None:
        if self.start_equity is None:
            self.start_equity = e.equity
        self.account = e
        self.equity.add(float(e.equity))
        self.dirty.add("account")
        self.dirty.add("status")

    def _on_trade(self, e: ev.TradeClosed) -> None:
        self.trades += 1
        if e.pnl > 0:
            self.wins += 1
        self.realized += e.pnl
        self.trade_fees += e.fees
        self.dirty.add("account")

    def _on_error(self, e: ev.ErrorEvent) -> None:
        self.errors += 1
        self.dirty.add("status")

    # -- reading ----------------------------------------------------------------------------
    def take_dirty(self) -> set[str]:
        out, self.dirty = self.dirty, set()
        return out

    def take_log(self) -> list[LogLine]:
        out, self.new_log = self.new_log, []
        return out

    def all_positions(self) -> list[ev.PositionView]:
        return [p for s in (*SIDES, "hedge") for p in self.positions.get(s, ())]  # (the BTC hedge last)

    def decision(self, symbol: str, side: str) -> Any:
        d = self.decisions.get(side)
        if d is None:
            return None
        for x in d.decisions:
            if x.symbol == symbol:
                return x
        return None

    def selected(self, side: str) -> tuple[str, ...]:
        d = self.decisions.get(side)
        return d.selected if d is not None else ()

    def stop_trigger(self, side: str, symbol: str) -> Decimal | None:
        """The trigger of the newest resting stop order of a position, if the engine reported one."""
        best: StopRow | None = None
        for r in self.stops.values():
            if r.profile == side and r.symbol == symbol and r.status == "open" and r.trigger is not None:
                if best is None or r.since_ms >= best.since_ms:
                    best = r
        return best.trigger if best is not None else None

    def episode(self, profile: str, symbol: str) -> Episode | None:
        """The open position's history (orders, fills, stops so far), if any was seen."""
        return self.episodes.get((profile, symbol))

    def add_log_history(self, events: list[ev.Event]) -> int:
        """Put log lines for events read from the audit trail (oldest first) before the lines
        this app made itself; a line already shown (same time, kind and text) is not added
        twice, and the log stays bounded. Returns how many lines were added."""
        fmt_ = EventFormatter()
        have = {(x.ts_ms, x.kind, x.text) for x in self.log}
        old: list[LogLine] = []
        for e in events:
            line = fmt_(e)
            if line is None or (line.ts_ms, line.kind, line.text) in have:
                continue
            have.add((line.ts_ms, line.kind, line.text))
            old.append(line)
        if not old:
            return 0
        for i, line in enumerate(reversed(old), 1):
            old[-i] = replace(line, seq=-i)
        self.log = deque([*old, *self.log][-self.log_limit:], maxlen=self.log_limit)
        return len(old)

    def add_history(self, trades: list[ev.TradeClosed]) -> int:
        """Merge closed trades read from the audit trail (oldest first) before the ones this
        app saw; a trade the app already holds is not added twice. History trades get
        negative numbers (-1 the newest), so the numbers of the trades seen stay as they were.
        Returns how many were added."""
        seen = {(ep.profile, ep.symbol, ep.trade.opened_ms, ep.trade.ts_ms) for ep in self.closed
                if ep.trade is not None}
        old: list[Episode] = []
        for t in trades:
            key = (t.profile, t.symbol, t.opened_ms, t.ts_ms)
            if key in seen:
                continue
            seen.add(key)
            ep = Episode(t.profile, t.symbol, history=True)
            ep.add(t)
            ep.trade = t
            old.append(ep)
        self.history_loaded = True
        if not old:
            return 0
        for i, ep in enumerate(reversed(old), 1):
            ep.seq = -i
        merged = sorted([*old, *self.closed], key=lambda ep: (ep.trade.ts_ms if ep.trade else 0, ep.seq))
        self.closed = deque(merged[-self.trade_limit:], maxlen=self.trade_limit)
        self.dirty.add("account")
        return len(old)

    def next_symbol(self, current: str, delta: int) -> str | None:
        """The coin `delta` places after `current` in sorted order (wrapping); None: no coin."""
        symbols = sorted(self.symbols)
        if not symbols:
            return None
        i = symbols.index(current) if current in symbols else -1
        return symbols[(i + delta) % len(symbols)]

    def fills_of(self, symbol: str) -> list[ev.FillEvent]:
        """Every fill of `symbol` the app still holds (open positions and closed trades of
        both profiles), oldest first."""
        eps = [ep for ep in self.closed if ep.symbol == symbol]
        eps += [ep for (_, s), ep in self.episodes.items() if s == symbol]
        fills = [e for ep in eps for e in ep.events if e.kind == "fill"]
        return sorted(fills, key=lambda f: f.ts_ms)

    def closed_trade(self, seq: int) -> Episode | None:
        for ep in reversed(self.closed):
            if ep.seq == seq:
                return ep
        return None

    def margin_use(self) -> float | None:
        a = self.account
        if a is None or not a.equity:
            return None
        return float(a.used_margin / a.equity)
