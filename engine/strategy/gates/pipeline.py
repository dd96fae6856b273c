"""The order of the signal's gates: the one list `evaluate` runs (extra gates from the runtime
are inserted before the last one, `min_score`). A decision lists its gates in this order."""

from __future__ import annotations

from . import benchmark, pullback, score, strength, structure, trend
from .base import Gate

SIGNAL_PIPELINE: tuple[Gate, ...] = (
    trend.STRATEGY_ENABLED,
    trend.MACRO_TREND,
    trend.TRIGGER_TREND,
    strength.RS_CONFIRMATION,
    benchmark.BTC_RISK,
    structure.CHOP,
    structure.VOLUME_DIRECTION,
    structure.VOLUME_CONFIRMATION,
    structure.ADVERSE_SPIKE,
    structure.VALUE_AREA,
    pullback.CROSS_AGE,
    pullback.GAP,
    strength.MIN_RS60,
    strength.MIN_RS30,
    score.MIN_SCORE,  # last: it reads the score every gate before it (and the extra ones) folded
)

BY_NAME: dict[str, Gate] = {g.name: g for g in SIGNAL_PIPELINE}
