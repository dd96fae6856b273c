"""Relative strength against BTC: the side's rs60 limit and the directional minimums."""

from __future__ import annotations

from ..decision import HARD, INFO, GateResult
from .base import Ctx, Gate, result, shortfall


def _rs_confirmation(c: Ctx) -> GateResult:
    q, rs60 = c.q, c.rs60
    if c.is_long:
        thr, op, ok = q.long_min_rs60, ">=", rs60 >= q.long_min_rs60
    else:
        thr, op, ok = q.short_max_rs60, "<=", rs60 <= q.short_max_rs60
    if q.use_rs:
        return result("rs_confirmation", rs60, thr, ok, HARD, op)
    return result("rs_confirmation", rs60, thr, True, INFO, op, "EMA_USE_RS_CONFIRMATION is off")


def _min_rs60(c: Ctx) -> GateResult:
    q, v = c.q, c.rs60_dir
    return result("min_rs60", v, q.min_rs60, v >= q.min_rs60, HARD, ">=", "",
                  -shortfall(q.min_rs60, v) * q.pen_rs60_mult)


def _min_rs30(c: Ctx) -> GateResult:
    q, v = c.q, c.rs30_dir
    return result("min_rs30", v, q.min_rs30, v >= q.min_rs30, HARD, ">=", "",
                  -shortfall(q.min_rs30, v) * q.pen_rs30_mult)


RS_CONFIRMATION = Gate(
    "rs_confirmation", "hard when `EMA_USE_RS_CONFIRMATION`, else info",
    "Relative strength vs BTC: rs60 (the coin's log return minus BTC's over `RS_SLOW_WINDOW` "
    "minutes) >= the long limit, or <= the short limit.",
    ("EMA_USE_RS_CONFIRMATION", "EMA_LONG_MIN_RS60", "EMA_SHORT_MAX_RS60", "RS_SLOW_WINDOW"),
    ("rs60",), _rs_confirmation)

MIN_RS60 = Gate(
    "min_rs60", "hard",
    "rs60 in the trade's direction (times -1 for a short) >= the minimum; the "
    "shortfall times its multiplier is subtracted from the score.",
    ("ENTRY_MIN_RS60_ABS", "ENTRY_RS60_SHORTFALL_PENALTY_MULTIPLIER", "RS_SLOW_WINDOW"),
    ("rs60",), _min_rs60)

MIN_RS30 = Gate(
    "min_rs30", "hard", "Likewise for rs30 (over `RS_FAST_WINDOW` minutes).",
    ("ENTRY_MIN_RS30_ABS", "ENTRY_RS30_SHORTFALL_PENALTY_MULTIPLIER", "RS_FAST_WINDOW"),
    ("rs30",), _min_rs30)
