"""Cross-exchange reference price (MEXC book vs HTX book): pure checks in ``premium``,
history/cooldowns in ``tracker``, a candle-derived stand-in for replay in ``recorded``."""

from .premium import GATE_NAMES, Lookback, ReferenceResult, Tighten, bps, check_reference, tighten_for
from .recorded import RecordedReference
from .tracker import ReferenceTracker

__all__ = [
    "GATE_NAMES", "Lookback", "RecordedReference", "ReferenceResult", "ReferenceTracker", "Tighten", "bps",
    "check_reference", "tighten_for",
]
