"""Typed decisions: every gate with its measured value, threshold and verdict.

A ``Decision`` is what the strategy says about one symbol, one side, one closed candle. Its
``gates`` tuple lists every gate in evaluation order, so the UI and the audit trail can show
exactly why a coin was accepted or rejected; nothing is decided outside a gate.

Kinds of gate:
  * ``hard``    -- failing blocks the new entry (``entry_valid`` is False);
  * ``penalty`` -- failing only lowers the score (``score_delta`` < 0);
  * ``info``    -- measured and recorded, never blocks (a disabled filter, a component).
Any gate may carry a ``score_delta`` (added to the running score) and a ``score_factor``
(multiplies the running score when it is positive). The score is the fold of the gates over
the raw score, in order: ``s = raw; for g in gates: s += g.score_delta; s *= g.score_factor
if s > 0``. ``Decision.score`` is always that fold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from .features import FEATURE_FIELDS, SymbolFeatures

__all__ = [
    "Decision", "GateResult", "HARD", "INFO", "PENALTY", "Kind", "Side", "fold_score",
    "validate_gates",
]

Side = Literal["long", "short"]
Kind = Literal["hard", "penalty", "info"]
HARD: Kind = "hard"
PENALTY: Kind = "penalty"
INFO: Kind = "info"
_KINDS = frozenset((HARD, PENALTY, INFO))


class GateResult(NamedTuple):
    """One gate's verdict. ``op`` is the comparison ``value op threshold`` that passes
    ('>=', '<=', '>', '<'); ``detail`` says what the numbers alone do not (disabled, which
    spike, why a passing value still failed, ...)."""

    name: str
    value: float
    threshold: float
    passed: bool
    kind: Kind
    op: str = ""
    detail: str = ""
    score_delta: float = 0.0
    score_factor: float = 1.0

    @property
    def blocks(self) -> bool:
        """True when this gate rejects a new entry (a failing hard gate)."""
        return self.kind == HARD and not self.passed


def fold_score(start: float, gates: Iterable[GateResult]) -> float:
    """Apply the gates' score deltas and factors to ``start`` in order."""
    s = start
    for g in gates:
        if g.score_delta:
            s += g.score_delta
        if g.score_factor != 1.0 and s > 0.0:
            s *= g.score_factor
    return s


def validate_gates(gates: tuple[GateResult, ...]) -> None:
    """Raise ValueError on an unknown kind or a repeated gate name (names are columns of
    the audit record, so they must be unique within a decision)."""
    seen: set[str] = set()
    for g in gates:
        if g.kind not in _KINDS:
            raise ValueError(f"gate {g.name!r}: unknown kind {g.kind!r}")
        if g.name in seen:
            raise ValueError(f"duplicate gate name {g.name!r}")
        seen.add(g.name)


def _jsonable(x: object) -> object:
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    return x


@dataclass(frozen=True, slots=True)
class Decision:
    """The strategy's verdict on one symbol and side at one closed candle.

    ``valid``: a coherent directional signal exists (keeps exits managed); ``entry_valid``:
    every hard gate passed (a new entry may be placed); ``add_valid``: healthy enough to
    average an open position. ``raw_score`` is the signal score before the gates' penalties
    and bonuses, ``score`` after them.
    """

    symbol: str
    side: Side
    ts_ms: int
    score: float
    raw_score: float
    valid: bool
    entry_valid: bool
    add_valid: bool
    gates: tuple[GateResult, ...]
    features: SymbolFeatures | None = None
    benchmark: SymbolFeatures | None = None  # BTC at the same candle (BTC-risk sizing reads it)

    # -- queries ----------------------------------------------------------------------
    @property
    def failed_gates(self) -> tuple[GateResult, ...]:
        """Every gate that did not pass, of any kind, in order."""
        return tuple(g for g in self.gates if not g.passed)

    @property
    def first_rejection(self) -> str | None:
        """Name of the first failing hard gate, None when nothing blocks."""
        for g in self.gates:
            if g.kind == HARD and not g.passed:
                return g.name
        return None

    @property
    def rejections(self) -> tuple[str, ...]:
        """Names of every failing hard gate, in order."""
        return tuple(g.name for g in self.gates if g.kind == HARD and not g.passed)

    def gate(self, name: str) -> GateResult | None:
        for g in self.gates:
            if g.name == name:
                return g
        return None

    def passed(self, name: str) -> bool:
        """Whether the named gate passed (KeyError if the decision has no such gate)."""
        g = self.gate(name)
        if g is None:
            raise KeyError(name)
        return g.passed

    @property
    def gate_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.gates)

    # -- derivation -------------------------------------------------------------------
    def with_gates(self, extra: Iterable[GateResult], *, check: bool = True) -> Decision:
        """A copy with ``extra`` gates appended: the score continues the fold and
        ``entry_valid`` also requires the new hard gates. ``check=False`` skips the
        name/kind validation (for callers whose gate names are known to be unique)."""
        extra = tuple(extra)
        gates = self.gates + extra
        if check:
            validate_gates(gates)
        blocked = False
        for g in extra:
            if g.kind == HARD and not g.passed:
                blocked = True
                break
        return Decision(
            self.symbol, self.side, self.ts_ms, fold_score(self.score, extra), self.raw_score,
            self.valid, self.entry_valid and not blocked, self.add_valid, gates, self.features,
            self.benchmark,
        )

    # -- audit ------------------------------------------------------------------------
    def to_record(self) -> dict[str, object]:
        """Flat, JSON-safe dict for the CSV/JSONL audit: the verdict, every feature
        (``f_<name>``) and every gate (``g_<name>`` = passed, plus ``_value``,
        ``_threshold``, ``_kind``, ``_op``, ``_delta``, ``_factor``, ``_detail``).
        NaN becomes None, infinities the strings 'inf' / '-inf'."""
        rec: dict[str, object] = {
            "symbol": self.symbol,
            "side": self.side,
            "ts_ms": self.ts_ms,
            "score": _jsonable(self.score),
            "raw_score": _jsonable(self.raw_score),
            "valid": self.valid,
            "entry_valid": self.entry_valid,
            "add_valid": self.add_valid,
            "first_rejection": self.first_rejection or "",
            "rejections": ";".join(self.rejections),
        }
        f = self.features
        for name in FEATURE_FIELDS:
            if name in ("symbol", "ts_ms"):
                continue
            rec[f"f_{name}"] = _jsonable(getattr(f, name)) if f is not None else None
        for g in self.gates:
            k = f"g_{g.name}"
            rec[k] = g.passed
            rec[f"{k}_value"] = _jsonable(g.value)
            rec[f"{k}_threshold"] = _jsonable(g.threshold)
            rec[f"{k}_kind"] = g.kind
            rec[f"{k}_op"] = g.op
            rec[f"{k}_delta"] = _jsonable(g.score_delta)
            rec[f"{k}_factor"] = _jsonable(g.score_factor)
            rec[f"{k}_detail"] = g.detail
        return rec
