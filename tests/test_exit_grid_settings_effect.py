"""Exit settings in effect (issue 18): each changes the planned exit orders somewhere on a grid
of held positions.

Four price paths (a rally that activates and trails the runner, a flat hold through the decay,
breakeven and time exits, a losing hold, an averaged position in heavy mode), long and mirrored
short, go through `plan_position` cycle after cycle (the placed exits rest, cancels go); the
actions (kind, price or trigger, amount, tag) and the exit phase of every cycle, once with the
defaults and once with one setting changed, must differ somewhere.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as Dec

import pytest

from engine.exchange.types import Order, Position, closing_side
from engine.runtime.actions import Cancel, PlaceExit, PlaceStop
from engine.runtime.positions import MarketContext, plan_position
from engine.store.state import PositionMeta

from settings_effect import settings
from test_runtime_protection import A, T0, market

M = market(A)  # contract size 1, amount step 1, tick 0.01
HOUR = 3_600_000

#: (hours held, price) per cycle
RALLY = [(0.1, "100.2"), (0.3, "100.6"), (0.5, "101.2"), (0.7, "102.0"), (0.9, "103.1"), (1.1, "104.3"),
         (1.3, "103.6"), (1.5, "102.9"), (1.7, "102.2"), (1.9, "101.4"), (2.1, "100.9")]
FLAT = [(0.1, "100.1"), (6, "100.15"), (13, "100.1"), (26, "100.05"), (49, "100.1"), (73, "100.1"),
        (97, "100.05"), (105, "100.1"), (121, "100.1"), (145, "100.05"), (170, "100.1"), (200, "100.1"),
        (260, "100.1"), (400, "100.1")]
LOSING = [(0.1, "99.2"), (50, "98.6"), (97, "98.4"), (101, "98.2"), (109, "98.0"), (121, "97.9"), (150, "97.9"),
          (200, "97.8"), (400, "97.8")]


def _mirror(price: str, side: str) -> Dec:
    return Dec(price) if side == "long" else Dec(200) - Dec(price)


def _resting(actions, orders) -> list[Order]:
    gone = {a.order.client_order_id for a in actions if isinstance(a, Cancel)}
    gone |= {o.client_order_id for a in actions if isinstance(a, PlaceStop) for o in a.replaces}
    out = [o for o in orders if o.client_order_id not in gone]
    for a in actions:
        if isinstance(a, PlaceStop):
            out.append(Order(str(a.client_order_id), a.client_order_id, a.symbol, closing_side(a.position_side),
                             "stop_loss", None, a.trigger, a.amount, Dec(0), "open", True, False))
        if isinstance(a, PlaceExit):
            out.append(Order(str(a.client_order_id), a.client_order_id, a.symbol, closing_side(a.position_side),
                             "limit", a.price, None, a.amount, Dec(0), "open", True, False))
    return out


def _walk(p, side: str, path, contracts: str = "10", initial: str = "1000") -> list:
    pos = Position(A, side, Dec(contracts), Dec(100), None, Dec(0), Dec(5), None)  # type: ignore[arg-type]
    meta = PositionMeta(A, side, T0, Dec(initial), contracts=Dec(contracts), entry_price=Dec(100))
    orders: list[Order] = []
    out = []
    last = Dec(100)
    for hours, price in path:
        px = _mirror(price, side)
        t = T0 + int(hours * HOUR)
        hi, lo = max(px, last), min(px, last)
        ctx = MarketContext(atr_rate=0.004, last_candle=(t - t % 300_000 - 300_000, hi, lo, px))
        plan = plan_position("long" if side == "long" else "short", p, replace(pos, mark_price=px), meta, M,
                             list(orders), px, t, ctx, protect=True)
        orders = _resting(plan.actions, orders)
        out.append((hours, meta.exit_phase, meta.runner_active, meta.breakeven,
                    tuple((type(a).__name__, getattr(a, "price", None) or getattr(a, "trigger", None),
                           getattr(a, "amount", None), getattr(a, "tag", "") or getattr(a, "reason", ""))
                          for a in plan.actions if not isinstance(a, Cancel))))
        last = px
    return out


def _signature(key: str | None = None, value: str | None = None, base: tuple[tuple[str, str], ...] = ()) -> tuple:
    s = settings(**(dict(base) | ({} if key is None else {key: value})))
    out = []
    for side in ("long", "short"):
        p = s.side(side)
        for path in (RALLY, FLAT, LOSING):
            out.append(_walk(p, side, path))
        out.append(_walk(p, side, RALLY, contracts="30", initial="1000"))  # averaged: 3x the first notional
    return tuple(map(tuple, out))


_BASE: dict[tuple, tuple] = {}


def _defaults(base: tuple[tuple[str, str], ...] = ()) -> tuple:
    if base not in _BASE:
        _BASE[base] = _signature(base=base)
    return _BASE[base]


LEGACY = (("EMA_ADAPTIVE_EXIT_ENABLED", "false"),)  # the legacy ladder's own settings
NO_TRAILING = (("EMA_EXIT_TRAILING_ENABLED", "false"),)
NOT_HEAVY = (("EMA_EXIT_HEAVY_POSITION_RATIO", "3.5"),)  # the averaged 3x position uses the medium ladder


@pytest.mark.parametrize(("key", "value", "base"), [
    ("EMA_TAKE_PROFIT_MARKUP", "0.02", LEGACY),
    ("EMA_EXIT_LADDER_FRACTIONS", "0.3,0.7", LEGACY),
    ("EMA_ADAPTIVE_EXIT_ENABLED", "false", ()),
    ("EMA_EXIT_HEAVY_LADDER_MARKUPS", "0.001,0.002,0.003", ()),
    ("EMA_EXIT_DECAY_FIRST_MARKUP_AFTER_HOURS", "20", ()),
    ("EMA_EXIT_DECAY_FIRST_MARKUP_CAP", "0.0001", ()),
    ("EMA_EXIT_DECAY_MAX_MARKUP_AFTER_HOURS", "40", ()),
    ("EMA_EXIT_DECAY_MAX_MARKUP", "0.0001", ()),
    ("EMA_EXIT_RUNNER_TAKE_PROFIT_MARKUP", "0.03", (("EMA_EXIT_TRAILING_ENABLED", "false"),)),
    ("EMA_EXIT_TRAILING_FIXED_FRACTION", "0.02", ()),
    ("EMA_EXIT_TRAILING_PULLBACK", "0.02", ()),
    ("EMA_EXIT_TRAILING_ATR_MULTIPLIER", "6", ()),
    ("EMA_EXIT_TRAILING_MAX_PULLBACK", "0.0065", ()),
    ("EMA_EXIT_RUNNER_PROFIT_LOCK_ENABLED", "false", ()),
    ("EMA_BREAKEVEN_FEE_BUFFER", "0.01", ()),
    ("URGENT_TIME_EXIT_AFTER_MINUTES", "600", ()),
    ("HARD_TIME_EXIT_STEP_MINUTES", "120", ()),
    ("HARD_TIME_EXIT_FRACTION_STEP", "0.5", ()),
    ("HARD_TIME_EXIT_MAX_LOSS_ON_NOTIONAL", "0.001", ()),
    ("MIN_GROSS_PROFIT_FLOOR", "0.02", ()),
    ("EMA_BREAKEVEN_EXIT_FRACTIONS", "0.5,0.5", ()),
    ("EMA_EXIT_NORMAL_LADDER_FRACTIONS", "0.25,0.25,0.25,0.25", ()),
    ("EMA_EXIT_NORMAL_LADDER_MARKUPS", "0.004,0.01,0.02,0.04", ()),
    ("EMA_EXIT_HEAVY_LADDER_FRACTIONS", "0.4,0.3,0.3", ()),
    ("EMA_EXIT_HEAVY_POSITION_RATIO", "3.5", ()),  # the averaged 3x position is medium, not heavy
    ("EMA_EXIT_MEDIUM_LADDER_FRACTIONS", "0.25,0.25,0.25,0.25", NOT_HEAVY),
    ("EMA_EXIT_MEDIUM_LADDER_MARKUPS", "0.003,0.006,0.012,0.02", NOT_HEAVY),
    ("EMA_EXIT_MEDIUM_POSITION_RATIO", "3.2", NOT_HEAVY),  # the 3x position is normal again
    ("EMA_EXIT_RUNNER_ENABLED", "false", NO_TRAILING),  # (the runner serves when trailing is off)
    ("EMA_EXIT_RUNNER_ACTIVATION_MARKUP", "0.035", NO_TRAILING),
    ("EMA_EXIT_RUNNER_TRAILING_PULLBACK", "0.02", NO_TRAILING),
    ("EMA_EXIT_TRAILING_ACTIVATION_MARKUP", "0.035", ()),
    ("EMA_EXIT_TRAILING_MIN_PULLBACK", "0.015", ()),
    ("EMA_EXIT_TRAILING_TAKE_PROFIT_MARKUP", "0.02", ()),
    ("HARD_STOP_LOSS_ATR_MULTIPLIER", "10", ()),  # ATR 0.4% x 10: the stop widens from 2% to its 3% cap
    # ATR 0.4% x 10 = 4% widens the 2% stop to its 3% cap; a 2.5% cap moves every stop
    ("HARD_STOP_LOSS_ATR_MAX_PCT", "0.025", (("HARD_STOP_LOSS_ATR_ENABLED", "true"),
                                             ("HARD_STOP_LOSS_ATR_MULTIPLIER", "10"))),
])
def test_an_exit_setting_changes_the_planned_exits(key, value, base):
    changed = _signature(key, value, base)
    default = _defaults(base)
    differ = sum(1 for a, b in zip(default, changed) for x, y in zip(a, b) if x != y)
    assert differ > 0, f"{key}={value} changed no planned exit on the grid"
