"""The raw score and the final gate on the score after every penalty (the runtime's extra
gates included: they run between the signal's gates and this one)."""

from __future__ import annotations

from ..decision import HARD, GateResult, fold_score
from .base import Ctx, Gate, result


def raw_score(c: Ctx) -> float:
    q, f = c.q, c.f
    pullback_depth = c.d * (f.pullback_fast - f.pullback_slow) / c.close
    return (q.gap_weight * (c.macro_gap + c.trigger_gap)
            * max(0.01, 1.0 + pullback_depth) * max(0.01, 1.0 + c.rs60_dir))


def min_score_of(score: float, c: Ctx) -> GateResult:
    q = c.q
    return result("min_score", score, q.min_score, score >= q.min_score, HARD, ">=")


def _min_score(c: Ctx) -> GateResult:  # the pipeline runs it with the folded score (signal.evaluate)
    raise RuntimeError("min_score is folded by signal.evaluate after the extra gates")


MIN_SCORE = Gate(
    "min_score", "hard",
    "The score after every penalty, factor and bonus of the gates before it (the "
    "runtime's included) >= the minimum.",
    ("ENTRY_MIN_SCORE", "SIGNAL_EMA_GAP_WEIGHT"),
    ("macro_fast", "macro_slow", "trigger_fast", "trigger_slow", "pullback_fast", "pullback_slow", "rs60"),
    _min_score)

__all__ = ["MIN_SCORE", "fold_score", "min_score_of", "raw_score"]
