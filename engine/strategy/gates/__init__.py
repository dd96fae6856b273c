"""The signal's entry gates as data: one ordered pipeline of `Gate` objects.

Each gate is one object (name, kind, what it checks, the settings and features it reads, and
the function that produces its `GateResult`), defined in the module of its family (trend,
strength, benchmark, structure, pullback, score). `pipeline.SIGNAL_PIPELINE` is the one list
that fixes their order; `engine.strategy.signal.evaluate` runs it, inserts the runtime's extra
gates before the last one (`min_score`), and folds the decision. docs/STRATEGY.md reads the
descriptions from here. Adding a gate: a `Gate` in its family's module and one line in the
pipeline (and, for a new setting, the catalog).
"""

from __future__ import annotations

from .base import Ctx, Gate

__all__ = ["Ctx", "Gate"]
