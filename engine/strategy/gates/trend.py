"""The strategy switch and the two trend gates (macro and trigger EMA gaps)."""

from __future__ import annotations

from ..decision import HARD, GateResult
from .base import Ctx, Gate, result


def _enabled(c: Ctx) -> GateResult:
    on = c.q.enabled
    return result("strategy_enabled", 1.0 if on else 0.0, 1.0, on, HARD, ">=",
                  "" if on else "EMA_STRATEGY_ENABLED is off")


def _macro(c: Ctx) -> GateResult:
    ok = c.macro_ok
    return result("macro_trend", c.macro_gap, 0.0, ok, HARD, ">", "", 0.0 if ok else -c.q.pen_macro)


def _trigger(c: Ctx) -> GateResult:
    ok = c.trigger_ok
    return result("trigger_trend", c.trigger_gap, 0.0, ok, HARD, ">", "", 0.0 if ok else -c.q.pen_trigger)


STRATEGY_ENABLED = Gate(
    "strategy_enabled", "hard",
    "The side's strategy switch is on (off also stops averaging: `add_valid` is false).",
    ("EMA_STRATEGY_ENABLED",), (), _enabled)

MACRO_TREND = Gate(
    "macro_trend", "hard",
    "Macro trend in the trade's direction: (macro fast EMA - macro slow EMA) / close > 0 "
    "for a long, < 0 for a short. A failure also subtracts its penalty from the score.",
    ("EMA_MACRO_TIMEFRAME", "EMA_MACRO_FAST_MINUTES", "EMA_MACRO_SLOW_MINUTES", "ENTRY_MACRO_INVALID_PENALTY"),
    ("macro_fast", "macro_slow", "close"), _macro)

TRIGGER_TREND = Gate(
    "trigger_trend", "hard",
    "Short-term momentum in the trade's direction: the trigger EMA gap, signed like "
    "`macro_trend`. A failure also subtracts its penalty.",
    ("EMA_TRIGGER_TIMEFRAME", "EMA_TRIGGER_FAST_MINUTES", "EMA_TRIGGER_SLOW_MINUTES",
     "ENTRY_TRIGGER_INVALID_PENALTY"),
    ("trigger_fast", "trigger_slow", "close"), _trigger)
