"""Which engine events become alerts, and what they say.

Pure bookkeeping, no I/O: `AlertRules.on_event(ev)` returns the alerts one event causes and
`tick(now_ms)` the ones that come from time passing (the daily summary, an outage that has
lasted long enough). Time is the newest event time seen (or a tick's): in live mode that is
the wall clock, in a replay the simulated one, so the same rules test without waiting.

What the engine publishes, and what it means here (engine/runtime/live.py, profile.py):
- `EngineStatus` "<mode> mode: warm ..." = started; "stopped; ..." = a clean stop; "stopped by
  <Error>: ..." = the loop died (a crash).
- `ErrorEvent` where "step"/"start"/"snapshot": a step (or the start) failed to reach the
  exchange; consecutive ones with no `Account` in between are an outage. where "bug" or
  `fatal`: an engine error.
- `StopEvent` "missing" (repeated every cycle while a position has no confirmed stop),
  "emergency_close" (the reduce-only close of a position whose stop could not be confirmed).
- `Repair` "position without a confirmed stop" / "stop confirmed ..." = repaired; other repairs
  are reconciliation findings (adopted positions, foreign orders).
- `TradeClosed` reason "stop_loss" = the exchange stop filled; "stop_breached", "unprotected",
  "urgent_time_exit" = closed by a protection.
- `ProtectionEvent` "fired" = an account protection (drawdown lock, daily-loss halt, stop-loss
  streak) stopped new entries; "lifted..." = it ended.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from engine.runtime.events import (
    Account, CycleStats, EngineStatus, ErrorEvent, Event, Positions, ProtectionEvent, Repair, StopEvent,
    TradeClosed,
)

OUTAGE_WHERE = frozenset({"step", "start", "snapshot"})
PROTECTION_REASONS = frozenset({"stop_breached", "unprotected", "urgent_time_exit", "force_exit"})
NO_STOP = "position without a confirmed stop"
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# apprise's notify types
INFO, SUCCESS, WARNING, FAILURE = "info", "success", "warning", "failure"


@dataclass(frozen=True)
class Alert:
    kind: str
    level: str  # info | success | warning | failure (apprise NotifyType values)
    title: str
    body: str
    ts_ms: int


@dataclass(frozen=True)
class AlertConfig:
    """What the rules and the router need from the settings (see settings/groups/alerts.py)."""

    kinds: frozenset[str]
    rate_limit_count: int = 5
    rate_limit_ms: int = 15 * 60_000
    unreachable_ms: int = 5 * 60_000
    summary_hour_utc: int = 8  # -1 = none
    send_timeout_s: float = 20.0
    title_prefix: str = "CROT"
    mode: str = "live"

    @classmethod
    def from_settings(cls, g: Any, mode: str) -> "AlertConfig":
        return cls(kinds=frozenset(g.alert_kinds), rate_limit_count=g.alert_rate_limit_count,
                   rate_limit_ms=int(g.alert_rate_limit_minutes * 60_000),
                   unreachable_ms=int(g.alert_unreachable_minutes * 60_000),
                   summary_hour_utc=g.alert_daily_summary_hour_utc, send_timeout_s=g.alert_send_timeout_sec,
                   title_prefix=g.alert_title_prefix, mode=mode)


def utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _num(x: Decimal | float | None, places: int = 2) -> str:
    if x is None:
        return "-"
    return f"{float(x):,.{places}f}"


def _signed(x: Decimal | float) -> str:
    return f"{float(x):+,.2f}"


def _price(x: Decimal | None) -> str:
    return "-" if x is None else format(x.normalize(), "f") if isinstance(x, Decimal) else str(x)


def _minutes(ms: int) -> str:
    m = ms / 60_000
    return f"{m:.0f} min" if m < 120 else f"{m / 60:.1f} h"


def next_hour_ms(now_ms: int, hour: int) -> int:
    """The first `hour`:00 UTC strictly after `now_ms`."""
    day = now_ms - now_ms % DAY_MS
    at = day + hour * HOUR_MS
    return at if at > now_ms else at + DAY_MS


@dataclass
class _Period:
    """What the daily summary counts since the previous one."""

    start_ms: int
    start_equity: Decimal | None
    trades: int = 0
    wins: int = 0
    pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    reasons: Counter = field(default_factory=Counter)
    errors: int = 0
    outages: int = 0
    alerts: Counter = field(default_factory=Counter)


class AlertRules:
    def __init__(self, config: AlertConfig):
        self.cfg = config
        self.now_ms = 0
        self._missing: set[tuple[str, str]] = set()  # (profile, symbol) alerted as without a stop
        self._closing: set[tuple[str, str]] = set()  # ... alerted as emergency-closing
        self._outage_since: int | None = None
        self._outage_last = ""
        self._outage_alerted = False
        self._equity: Decimal | None = None
        self._positions: dict[str, int] = {}
        self._next_summary: int | None = None
        self._period: _Period | None = None

    # -- time ------------------------------------------------------------------------------
    def _advance(self, ts_ms: int) -> None:
        if ts_ms > self.now_ms:
            self.now_ms = ts_ms
        if self._period is None and self.now_ms > 0:
            self._period = _Period(self.now_ms, self._equity)
        if self._next_summary is None and self.now_ms > 0 and self.cfg.summary_hour_utc >= 0:
            self._next_summary = next_hour_ms(self.now_ms, self.cfg.summary_hour_utc)

    def tick(self, now_ms: int) -> list[Alert]:
        self._advance(now_ms)
        out: list[Alert] = []
        out += self._outage_check()
        if self._next_summary is not None and self.now_ms >= self._next_summary:
            out.append(self._summary())
            self._next_summary = next_hour_ms(self.now_ms, self.cfg.summary_hour_utc)
        return out

    def counted(self, kind: str) -> None:
        """The router says an alert of `kind` went out (or was suppressed: kind 'suppressed',
        'failed'); the summary reports it."""
        if self._period is not None:
            self._period.alerts[kind] += 1

    # -- events ----------------------------------------------------------------------------
    def on_event(self, ev: Event) -> list[Alert]:
        self._advance(ev.ts_ms)
        out: list[Alert] = []
        if isinstance(ev, EngineStatus):
            out += self._status(ev)
        elif isinstance(ev, ErrorEvent):
            out += self._error(ev)
        elif isinstance(ev, (Account, CycleStats)):
            if isinstance(ev, Account):
                self._equity = ev.equity
                if self._period is not None and self._period.start_equity is None:
                    self._period.start_equity = ev.equity
            out += self._reachable()
        elif isinstance(ev, StopEvent):
            out += self._stop(ev)
        elif isinstance(ev, Repair):
            out += self._repair(ev)
        elif isinstance(ev, TradeClosed):
            out += self._trade(ev)
        elif isinstance(ev, ProtectionEvent):
            who = ev.profile or "both profiles"
            if ev.action == "fired":
                out.append(self._alert("account_protection", WARNING,
                                       f"{ev.name.replace('_', ' ')}: new entries stopped ({who})",
                                       f"{ev.reason}; lifts at {utc(ev.until_ms)}"))
            else:
                out.append(self._alert("account_protection", INFO,
                                       f"{ev.name.replace('_', ' ')} {ev.action} ({who})", ev.reason))
        elif isinstance(ev, Positions):
            self._positions[ev.profile] = len(ev.positions)
            held = {(ev.profile, p.symbol) for p in ev.positions}
            self._missing = {k for k in self._missing if k[0] != ev.profile or k in held}
            self._closing = {k for k in self._closing if k[0] != ev.profile or k in held}
        return out + self.tick(self.now_ms)

    def _alert(self, kind: str, level: str, title: str, body: str) -> Alert:
        title = f"{self.cfg.title_prefix} {self.cfg.mode}: {title}".strip()
        return Alert(kind, level, title, f"{body}\n{utc(self.now_ms)}" if self.now_ms else body, self.now_ms)

    def _status(self, ev: EngineStatus) -> list[Alert]:
        msg = ev.message
        if msg.startswith("stopped by "):
            return [self._alert("engine_crashed", FAILURE, "engine stopped by an error", msg)]
        if msg.startswith("stopped"):
            return [self._alert("engine_stopped", WARNING, "engine stopped", msg)]
        if " mode: warm" in msg:  # the venue answered: whatever failed during the start is over
            return self._reachable() + [self._alert("engine_started", INFO, "engine started", msg)]
        return []

    def _error(self, ev: ErrorEvent) -> list[Alert]:
        if self._period is not None:
            self._period.errors += 1
        who = f" ({ev.profile})" if ev.profile else ""
        if ev.fatal:
            return [self._alert("engine_error", FAILURE, f"fatal error in {ev.where}{who}", ev.message)]
        if ev.where == "bug":
            return [self._alert("engine_error", FAILURE, "unexpected error in a step",
                                f"{ev.message}\nThe engine keeps running; stop-loss orders stay on the exchange.")]
        if ev.where in OUTAGE_WHERE:
            if self._outage_since is None:
                self._outage_since = self.now_ms
            self._outage_last = f"{ev.where}: {ev.message}"
            return self._outage_check()
        return []

    def _outage_check(self) -> list[Alert]:
        if self._outage_since is None or self._outage_alerted:
            return []
        lasted = self.now_ms - self._outage_since
        if lasted < self.cfg.unreachable_ms:
            return []
        self._outage_alerted = True
        if self._period is not None:
            self._period.outages += 1
        return [self._alert("exchange_unreachable", FAILURE, f"exchange unreachable for {_minutes(lasted)}",
                            f"Every step has failed since {utc(self._outage_since)}; last error: "
                            f"{self._outage_last}\nStop-loss orders already on the exchange stay there.")]

    def _reachable(self) -> list[Alert]:
        since, alerted = self._outage_since, self._outage_alerted
        self._outage_since, self._outage_alerted = None, False
        if since is None or not alerted:
            return []
        return [self._alert("exchange_recovered", SUCCESS, "exchange reachable again",
                            f"The account was read again after {_minutes(self.now_ms - since)} of failed steps.")]

    def _stop(self, ev: StopEvent) -> list[Alert]:
        key = (ev.profile, ev.symbol)
        if ev.action in ("placed", "moved"):
            self._missing.discard(key)
            return []
        if ev.action == "missing":
            if key in self._missing:
                return []  # repeated every cycle while it lasts: said once
            self._missing.add(key)
            return [self._alert("stop_missing", FAILURE, f"{ev.symbol} ({ev.profile}) has no stop-loss",
                                f"{ev.profile} {ev.symbol}, {_price(ev.amount)} contracts: {ev.reason}")]
        if ev.action == "emergency_close":
            self._missing.add(key)
            if key in self._closing:
                return []
            self._closing.add(key)
            return [self._alert("protection_fired", FAILURE, f"{ev.symbol} ({ev.profile}) closed at market",
                                f"{ev.profile} {ev.symbol}, {_price(ev.amount)} contracts: {ev.reason}")]
        return []

    def _repair(self, ev: Repair) -> list[Alert]:
        key = (ev.profile, ev.symbol)
        if ev.problem == NO_STOP:
            if ev.action.startswith("stop confirmed"):
                self._missing.discard(key)
                self._closing.discard(key)
                return [self._alert("stop_repaired", SUCCESS, f"{ev.symbol} ({ev.profile}) protected again",
                                    f"{ev.profile} {ev.symbol}: {ev.action}")]
            return []  # the StopEvent of the same finding says it
        return [self._alert("repair", INFO, f"repair on {ev.symbol} ({ev.profile})",
                            f"{ev.profile} {ev.symbol}: {ev.problem} -> {ev.action}")]

    def _trade(self, ev: TradeClosed) -> list[Alert]:
        key = (ev.profile, ev.symbol)
        self._missing.discard(key)
        self._closing.discard(key)
        p = self._period
        if p is not None:
            p.trades += 1
            p.wins += ev.pnl > 0
            p.pnl += ev.pnl
            p.fees += ev.fees
            p.reasons[ev.reason] += 1
        text = (f"{ev.side} {ev.symbol}: {_price(ev.contracts)} contracts, entry {_price(ev.entry_price)}, "
                f"exit {_price(ev.exit_price)}, PnL {_signed(ev.pnl)} USDT after {_num(ev.fees)} fees, "
                f"held {_minutes(max(0, ev.ts_ms - ev.opened_ms))}")
        if ev.reason == "stop_loss":
            return [self._alert("stop_filled", WARNING, f"stop-loss filled on {ev.symbol} ({ev.profile})", text)]
        if ev.reason in PROTECTION_REASONS:
            return [self._alert("protection_fired", WARNING, f"{ev.symbol} ({ev.profile}) closed by {ev.reason}",
                                text)]
        return [self._alert("trade_closed", SUCCESS if ev.pnl > 0 else INFO,
                            f"{ev.symbol} ({ev.profile}) closed: {ev.reason}", text)]

    # -- the daily summary -----------------------------------------------------------------
    def _summary(self) -> Alert:
        p = self._period or _Period(self.now_ms, self._equity)
        lines = [f"Since {utc(p.start_ms)}:"]
        if self._equity is not None:
            change = "" if p.start_equity is None else f" ({_signed(self._equity - p.start_equity)})"
            lines.append(f"equity {_num(self._equity)} USDT{change}")
        lines.append(f"trades closed {p.trades} ({p.wins} won, {p.trades - p.wins} lost or even), "
                     f"realised PnL {_signed(p.pnl)} USDT after {_num(p.fees)} fees")
        if p.reasons:
            lines.append("closed by: " + ", ".join(f"{r} {n}" for r, n in sorted(p.reasons.items())))
        if self._positions:
            lines.append("open positions: " + ", ".join(f"{s} {n}" for s, n in sorted(self._positions.items())))
        lines.append(f"errors {p.errors}, exchange outages {p.outages}")
        sent = sum(n for k, n in p.alerts.items() if k not in ("suppressed", "failed", "dropped"))
        lines.append(f"alerts sent {sent}, suppressed by the rate limit {p.alerts['suppressed']}, "
                     f"not delivered {p.alerts['failed'] + p.alerts['dropped']}")
        self._period = _Period(self.now_ms, self._equity)
        return self._alert("daily_summary", INFO, "daily summary", "\n".join(lines))
