"""The BTC risk filter: the benchmark's 30-minute return not strongly against the trade."""

from __future__ import annotations

from ..decision import HARD, INFO, GateResult
from .base import NAN, Ctx, Gate, result, shortfall


def _btc_risk(c: Ctx) -> GateResult:
    q, f, btc = c.q, c.f, c.btc
    if btc is None:
        b30, note = NAN, "benchmark features missing"
    elif btc.ts_ms != f.ts_ms:
        b30, note = NAN, f"benchmark candle {btc.ts_ms} != symbol candle {f.ts_ms}"
    else:
        b30, note = btc.ret30, ""
    if c.is_long:
        thr, op, ok = q.btc_long_min, ">=", b30 >= q.btc_long_min
        beyond = shortfall(q.btc_long_min, b30)
    else:
        thr, op, ok = q.btc_short_max, "<=", b30 <= q.btc_short_max
        beyond = shortfall(-q.btc_short_max, -b30)
    if q.use_btc:
        pen = 0.0 if ok else -(q.pen_btc + beyond * q.pen_btc_mult)
        return result("btc_risk", b30, thr, ok, HARD, op, note, pen)
    return result("btc_risk", b30, thr, True, INFO, op, "EMA_USE_BTC_RISK_FILTER is off")


BTC_RISK = Gate(
    "btc_risk", "hard when `EMA_USE_BTC_RISK_FILTER`, else info",
    "BTC's log return over `RS_FAST_WINDOW` minutes is not strongly against the trade "
    "(long: >= the long limit; short: <= the short limit). Missing BTC features for the same "
    "candle fail it. A failure subtracts the BTC penalty plus the excess return times the "
    "multiplier.",
    ("EMA_USE_BTC_RISK_FILTER", "EMA_BTC_LONG_MIN_RETURN_30M", "EMA_BTC_SHORT_MAX_RETURN_30M",
     "RS_FAST_WINDOW", "ENTRY_BTC_INVALID_PENALTY", "ENTRY_BTC_RETURN_PENALTY_MULTIPLIER"),
    ("ts_ms", "ret30 (of BTC)"), _btc_risk)
