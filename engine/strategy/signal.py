"""The EMA-pullback signal of one symbol for one side: gates, score and flags.

``evaluate`` is pure: features in, ``Decision`` out. The short side mirrors every
inequality of the long side: a directional quantity is the long-frame value times +1 (long)
or -1 (short), and settings given "in the trade direction" (ENTRY_MIN_RS60_ABS, ...) compare
with it; settings given per side (EMA_LONG_MIN_RS60 / EMA_SHORT_MAX_RS60, the BTC limits)
compare with the raw value with the inequality flipped.

Score (the raw score, then the gates' penalties in order, see ``decision.fold_score``)::

    macro_gap    = dir * (macro_fast - macro_slow) / close
    trigger_gap  = dir * (trigger_fast - trigger_slow) / close
    pullback_dep = dir * (pullback_fast - pullback_slow) / close
    rs_dir60     = dir * rs60
    raw_score    = SIGNAL_EMA_GAP_WEIGHT * (macro_gap + trigger_gap)
                   * max(0.01, 1 + pullback_dep) * max(0.01, 1 + rs_dir60)

A pullback or relative strength against the trade multiplies the score down. Then each
failing gate subtracts its penalty (ENTRY_*_PENALTY; the BTC penalty grows by
ENTRY_BTC_RETURN_PENALTY_MULTIPLIER per unit of BTC return beyond its limit; the rs30/rs60
shortfall below ENTRY_MIN_RS*_ABS costs ENTRY_RS*_SHORTFALL_PENALTY_MULTIPLIER per unit).
A penalty shared by several gates (market structure, volume, pullback recovery) is charged
once, on the first failing gate it concerns. Extra gates from elsewhere (the cross-exchange
impulse bonus, the reference score factor) act on the score the same way, before min_score.

The gates themselves are data: `engine/strategy/gates/` holds one `Gate` object per gate (in
the module of its family) and `gates/pipeline.py` the one ordered list this module runs.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.settings import ProfileSettings

from .decision import HARD, Decision, GateResult, Side, fold_score, validate_gates
from .features import SymbolFeatures
from .gates.base import Ctx
from .gates.params import SignalParams, signal_params
from .gates.pipeline import SIGNAL_PIPELINE
from .gates.score import min_score_of, raw_score

__all__ = ["PULLBACK_GATES", "SIGNAL_GATES", "STRUCTURE_GATES", "SignalParams", "evaluate"]

#: Gate names produced by ``evaluate``, in order (extra gates go before ``min_score``).
SIGNAL_GATES: tuple[str, ...] = tuple(g.name for g in SIGNAL_PIPELINE)
#: the gates that together say "the pullback has recovered" (averaging reads them too)
PULLBACK_GATES: tuple[str, ...] = tuple(g.name for g in SIGNAL_PIPELINE if g.pullback)
#: Market-structure gates: they gate entry_valid and add_valid, never valid.
STRUCTURE_GATES: frozenset[str] = frozenset(g.name for g in SIGNAL_PIPELINE if g.structure)

_BEFORE_SCORE = tuple(g.run for g in SIGNAL_PIPELINE[:-1])
assert SIGNAL_PIPELINE[-1].name == "min_score", "min_score must be the pipeline's last gate"


def evaluate(
    side: Side,
    f: SymbolFeatures,
    btc: SymbolFeatures | None,
    p: ProfileSettings,
    extra_gates: Iterable[GateResult] = (),
) -> Decision:
    """Evaluate the long or short signal of one symbol into a Decision with every gate.

    ``btc`` is the benchmark's features at the same candle (``FeatureEngine.benchmark``);
    None, or features of another candle, fails the BTC risk filter when it is enabled.
    ``extra_gates`` (macro regime, cross-exchange checks, ...) are inserted before the final
    ``min_score`` gate, in the given order, and act on the score and on ``entry_valid``.
    """
    if side == "long":
        d = 1.0
    elif side == "short":
        d = -1.0
    else:
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    q = signal_params(p)
    c = Ctx(d, f, btc, q)
    gates: list[GateResult] = [run(c) for run in _BEFORE_SCORE]
    extra = tuple(extra_gates)
    gates.extend(extra)
    raw = raw_score(c)
    score = fold_score(raw, gates)
    gates.append(min_score_of(score, c))

    all_gates = tuple(gates)
    if extra:
        validate_gates(all_gates)
    structure_ok = True
    entry_ok = True
    for g in all_gates:
        if g.kind == HARD and not g.passed:
            entry_ok = False
            if g.name in STRUCTURE_GATES:
                structure_ok = False
    valid = c.macro_ok and (c.trigger_ok or c.recovered)
    return Decision(
        symbol=f.symbol,
        side=side,
        ts_ms=f.ts_ms,
        score=score,
        raw_score=raw,
        valid=valid,
        entry_valid=entry_ok,
        add_valid=valid and q.enabled and structure_ok,
        gates=all_gates,
        features=f,
        benchmark=btc,
    )
