"""One concise line per important engine event, for the event-log pane and for `--no-ui`.

Important = orders, fills, stops, closed trades, regime changes, repairs, errors, status and a
symbol's premium block starting or ending. Decisions, positions, account and cycle statistics
are not logged line by line (they arrive every candle and the panes show their latest state).
Every line passes through `redact()`: an API key or a signed URL never reaches a log or the
screen, even if some library put it in an error text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from engine.exchange.errors import redact
from engine.runtime import events as ev

from . import fmt


@dataclass(frozen=True)
class LogLine:
    ts_ms: int
    level: int  # logging level
    kind: str
    text: str  # without the time
    seq: int = 0  # position in the run's log (set by UiState)

    def render(self, *, date: bool = True) -> str:
        t = fmt.ts(self.ts_ms, date=date)
        return f"{t} {self.text}" if t else self.text


class EventFormatter:
    """Turns events into LogLines; stateful only to log premium blocks when they change."""

    def __init__(self) -> None:
        self._blocked: dict[str, bool] = {}
        self._last_regime: tuple[int, str, str] | None = None

    def __call__(self, e: ev.Event) -> LogLine | None:
        try:
            out = self._format(e)
        except Exception as exc:  # a formatting bug must never break the sink
            out = (logging.WARNING, f"(could not format a {e.kind} event: {type(exc).__name__})")
        if out is None:
            return None
        level, text = out
        return LogLine(e.ts_ms, level, e.kind, redact(text))

    def _format(self, e: ev.Event) -> tuple[int, str] | None:
        I, W, E = logging.INFO, logging.WARNING, logging.ERROR
        if isinstance(e, ev.OrderEvent):
            if e.purpose == "stop" and e.action == "placed":
                return None  # the StopEvent that follows says it (with the reason)
            px = f" @ {fmt.price(e.price)}" if e.price is not None else ""
            ro = " reduce-only" if e.reduce_only and e.purpose not in ("stop", "exit", "close") else ""
            why = f" ({e.reason})" if e.reason else ""
            level = W if e.action in ("rejected", "failed") else I
            return level, (f"order  {e.profile:<5} {e.symbol} {e.action} {e.purpose} {e.side} "
                           f"{fmt.amount(e.amount)}{px}{ro}{why}")
        if isinstance(e, ev.FillEvent):
            return I, (f"fill   {e.profile:<5} {e.symbol} {e.side} {fmt.amount(e.amount)} @ "
                       f"{fmt.price(e.price)} fee {fmt.price(e.fee, 3)} ({e.purpose})")
        if isinstance(e, ev.StopEvent):
            level = E if e.action in ("missing", "emergency_close") else I
            why = f" ({e.reason})" if e.reason else ""
            return level, (f"stop   {e.profile:<5} {e.symbol} {e.action} trigger {fmt.price(e.trigger)} "
                           f"x{fmt.amount(e.amount)}{why}")
        if isinstance(e, ev.TradeClosed):
            held = fmt.duration_ms(e.ts_ms - e.opened_ms) if e.opened_ms and e.ts_ms else fmt.DASH
            return I, (f"trade  {e.profile:<5} {e.symbol} closed pnl {fmt.money(e.pnl, 4, sign=True)} "
                       f"entry {fmt.price(e.entry_price)} exit {fmt.price(e.exit_price)} "
                       f"held {held} ({e.reason})")
        if isinstance(e, ev.Regime):
            if e.regime == e.previous:
                return None
            sig = (e.ts_ms, e.regime, e.previous)
            if sig == self._last_regime:  # the other profile's tracker saw the same change
                return None
            self._last_regime = sig
            was = f" (was {e.previous})" if e.previous else ""
            reason = e.inputs.get("reason") if isinstance(e.inputs, dict) else None
            extra = f": {reason}" if reason else ""
            return I, f"regime {e.regime}{was}{extra}"
        if isinstance(e, ev.ProtectionEvent):
            who = e.profile or "both"
            level = W if e.action == "fired" else I
            return level, f"protect {who:<5} {e.name} {e.action}: {e.reason}"
        if isinstance(e, ev.Repair):
            return W, f"repair {e.profile:<5} {e.symbol} {e.problem} -> {e.action}"
        if isinstance(e, ev.ErrorEvent):
            where = f"{e.profile} " if e.profile else ""
            return E, f"error  {where}{e.where}: {e.message}{' (fatal)' if e.fatal else ''}"
        if isinstance(e, ev.EngineStatus):
            sides = ",".join(e.enabled) or "none"
            paused = "paused" if e.paused else "running"
            msg = f"{e.message}; " if e.message else ""
            return I, f"status {e.mode}: {msg}profiles {sides}; entries {paused}"
        if isinstance(e, ev.Premium):
            was = self._blocked.get(e.symbol, False)
            self._blocked[e.symbol] = e.blocked
            if e.blocked == was:
                return None
            if e.blocked:
                return W, f"premium {e.symbol} blocked {fmt.bps(e.premium_bps)} bps ({e.reason})"
            return I, f"premium {e.symbol} unblocked"
        return None


def format_event(e: Any) -> LogLine | None:
    """Stateless convenience (premium changes are not tracked)."""
    return EventFormatter()(e)
