"""Macro regime overlay: gold (XAUT/PAXG) vs BTC RSI -> per-side budget, ladder, averaging,
entry and time-exit effects. Pure classification in ``regime``, incremental state in
``tracker``, gold symbol lookup in ``symbols``."""

from .regime import REGIMES, MacroContext, MacroInputs, classify, decide, macro_gate, neutral, overlay_for
from .symbols import MacroSymbols, resolve_symbols
from .tracker import MacroTracker

__all__ = [
    "REGIMES", "MacroContext", "MacroInputs", "MacroSymbols", "MacroTracker", "classify", "decide",
    "macro_gate", "neutral", "overlay_for", "resolve_symbols",
]
