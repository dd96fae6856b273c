"""Pullback recovery: the pullback EMAs crossed back in the trade's direction, recently and
with enough gap. Together they say "recovered" (valid without the trigger trend; averaging
reads them too)."""

from __future__ import annotations

from ..decision import HARD, PENALTY, GateResult
from .base import INF, Ctx, Gate, result


def _cross_age(c: Ctx) -> GateResult:
    q, f = c.q, c.f
    ok_dir = c.pullback_cross_ok()
    age = f.pullback_cross_age_min if ok_dir else INF
    ok = age <= q.pb_max_age
    c.recovered = ok  # and the gap (the next gate)
    note = f"last cross {f.pullback_cross or 'none'}" + ("" if ok_dir or not f.pullback_cross else " (against the trade)")
    return result("pullback_cross_age", age, q.pb_max_age, ok, HARD if q.pb_required else PENALTY, "<=", note,
                  0.0 if ok else -q.pen_pullback)


def _gap(c: Ctx) -> GateResult:
    q = c.q
    gap = c.d * c.f.pullback_gap
    if q.pb_gap > 0.0:
        ok, op = gap >= q.pb_gap, ">="
    else:
        ok, op = gap > 0.0, ">"
    age_ok = c.recovered
    c.recovered = age_ok and ok
    # charged only when the cross age passed: a missing recovery costs the penalty once
    pen = 0.0 if ok or not age_ok else -q.pen_pullback
    return result("pullback_gap", gap, q.pb_gap, ok, HARD if q.pb_required else PENALTY, op, "", pen)


CROSS_AGE = Gate(
    "pullback_cross_age", "penalty; hard when `EMA_ENTRY_REQUIRE_PULLBACK_RECOVERY`",
    "The pullback EMAs last crossed back in the trade's direction (fast over slow for a long) "
    "at most min(max cross age, lookback) minutes ago. A failure subtracts the pullback "
    "penalty.",
    ("EMA_PULLBACK_TIMEFRAME", "EMA_PULLBACK_FAST_MINUTES", "EMA_PULLBACK_SLOW_MINUTES",
     "EMA_PULLBACK_RECOVERY_MAX_CROSS_AGE_MINUTES", "EMA_PULLBACK_RECOVERY_LOOKBACK_MINUTES",
     "EMA_ENTRY_REQUIRE_PULLBACK_RECOVERY", "ENTRY_PULLBACK_INVALID_PENALTY"),
    ("pullback_cross", "pullback_cross_age_min"), _cross_age, pullback=True)

GAP = Gate(
    "pullback_gap", "penalty; hard when `EMA_ENTRY_REQUIRE_PULLBACK_RECOVERY`",
    "Directional pullback EMA gap (fast - slow) / slow >= the recovery gap (> 0 when the gap "
    "is set to 0). Its penalty is charged only when `pullback_cross_age` passed, so a missing "
    "recovery costs the pullback penalty once.",
    ("EMA_PULLBACK_RECOVERY_GAP", "EMA_ENTRY_REQUIRE_PULLBACK_RECOVERY", "ENTRY_PULLBACK_INVALID_PENALTY"),
    ("pullback_gap",), _gap, pullback=True)
