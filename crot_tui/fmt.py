"""Number and time formatting shared by the panes and the headless log.

Everything here is pure and deterministic (no wall clock), so snapshots stay stable.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

DASH = "-"


def num(x: Any) -> float | None:
    """A float, or None for None / NaN / something that is not a number."""
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def price(x: Any, sig: int = 5) -> str:
    """A price with about `sig` significant digits and no exponent: 0.000045760 -> 0.00004576."""
    f = num(x)
    if f is None:
        return DASH
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if f == 0:
        return "0"
    exp = math.floor(math.log10(abs(f)))
    decimals = max(0, sig - 1 - exp)
    return f"{f:.{decimals}f}"


def money(x: Any, decimals: int = 2, sign: bool = False) -> str:
    f = num(x)
    if f is None:
        return DASH
    if 0 < abs(f) < 10 ** -decimals:  # tiny but not zero: show it rather than 0.00
        return price(f, 3) if not sign else ("+" if f > 0 else "") + price(f, 3)
    return f"{f:+,.{decimals}f}" if sign else f"{f:,.{decimals}f}"


def pct(x: Any, decimals: int = 2, sign: bool = False) -> str:
    """A fraction as a percentage: 0.0123 -> 1.23%."""
    f = num(x)
    if f is None:
        return DASH
    return f"{f * 100:+.{decimals}f}%" if sign else f"{f * 100:.{decimals}f}%"


def amount(x: Any) -> str:
    if x is None:
        return DASH
    if isinstance(x, Decimal):
        s = format(x.normalize(), "f")
        return s
    f = num(x)
    return DASH if f is None else f"{f:g}"


def gate_value(x: Any) -> str:
    """A gate's value or threshold: compact, NaN shown as '-', infinities spelled out."""
    f = num(x)
    if f is None:
        return DASH
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if f == 0:
        return "0"
    if f == int(f) and abs(f) < 1e9:
        return str(int(f))
    a = abs(f)
    if a >= 1000:
        return f"{f:,.0f}"
    if a >= 1:
        return f"{f:.3f}".rstrip("0").rstrip(".")
    return price(f, 4)


def bps(x: Any) -> str:
    f = num(x)
    return DASH if f is None else f"{f:+.1f}"


def ts(ms: int | None, *, date: bool = True) -> str:
    """An event time (UTC). Engine events carry the exchange/simulated clock, never wall time."""
    if not ms or ms <= 0:
        return ""
    d = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return d.strftime("%Y-%m-%d %H:%M") if date else d.strftime("%m-%d %H:%M")


def age_ms(ms: int | None) -> str:
    if ms is None:
        return DASH
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    return f"{ms / 60_000:.0f}m"


def duration_ms(ms: int | None) -> str:
    if ms is None or ms < 0:
        return DASH
    minutes = ms // 60_000
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}"
    return f"{hours // 24}d{hours % 24:02d}h"
