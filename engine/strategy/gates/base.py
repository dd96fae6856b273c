"""What a gate is, and the context one evaluation shares between the gates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..decision import GateResult
from ..features import CROSS_DOWN, CROSS_UP, SymbolFeatures

if TYPE_CHECKING:
    from .params import SignalParams

INF = math.inf
NAN = math.nan

_new = tuple.__new__


def result(name: str, value: float, threshold: float, passed: bool, kind: str, op: str,
           detail: str = "", delta: float = 0.0) -> GateResult:
    """GateResult without the namedtuple constructor's keyword handling (hot path)."""
    return _new(GateResult, (name, value, threshold, passed, kind, op, detail, delta, 1.0))


def fmt(x: float) -> str:
    return f"{x:.6g}"


def shortfall(threshold: float, value: float) -> float:
    """max(0, threshold - value); 0 when value is NaN (the hard gate already fails)."""
    d = threshold - value
    return d if d > 0.0 else 0.0


@dataclass(frozen=True)
class Gate:
    """One entry gate of the signal.

    `kind` and `checks` are the reader's description (docs/STRATEGY.md); `settings` the
    catalog keys it reads; `reads` the `SymbolFeatures` fields; `run(ctx)` its verdict."""

    name: str
    kind: str
    checks: str
    settings: tuple[str, ...]
    reads: tuple[str, ...]
    run: Callable[[Ctx], GateResult]
    structure: bool = False  # a market-structure gate: gates entry_valid and add_valid, never valid
    pullback: bool = False  # one of the gates that say "the pullback has recovered" (averaging reads them)


class Ctx:
    """The inputs of one evaluation (one symbol, one side, one candle), each computed once,
    and the penalty pools that the first failing gate of a group empties."""

    __slots__ = (
        "d", "is_long", "f", "btc", "q", "close",
        "macro_gap", "macro_ok", "trigger_gap", "trigger_ok", "rs60", "rs60_dir", "rs30_dir",
        "structure_pen", "volume_pen",
        "dir_frac", "dir_ok", "spike", "spike_dir", "aligned", "adverse_val", "adverse",
        "ratio", "ratio_ok", "broken", "recovered",
    )

    def __init__(self, d: float, f: SymbolFeatures, btc: SymbolFeatures | None, q: SignalParams) -> None:
        self.d = d
        is_long = self.is_long = d > 0.0
        self.f = f
        self.btc = btc
        self.q = q
        close = self.close = f.close
        self.macro_gap = d * (f.macro_fast - f.macro_slow) / close
        self.macro_ok = self.macro_gap > 0.0
        self.trigger_gap = d * (f.trigger_fast - f.trigger_slow) / close
        self.trigger_ok = self.trigger_gap > 0.0
        self.rs60 = f.rs60
        self.rs60_dir = d * f.rs60
        self.rs30_dir = d * f.rs30
        self.structure_pen = q.pen_structure  # charged once, on the first failing structure gate
        self.volume_pen = q.pen_volume  # charged once, on the first failing volume gate
        aligned_dir, adverse_dir = ("up", "down") if is_long else ("down", "up")
        self.dir_frac = f.volume_up_fraction if is_long else f.volume_down_fraction
        self.dir_ok = self.dir_frac >= q.vol_min_dir
        spike = self.spike = f.spike_ratio
        spike_dir = self.spike_dir = f.spike_direction
        self.aligned = (q.spike_on and q.spike_min > 0.0 and spike_dir == aligned_dir
                        and spike >= q.spike_min)
        self.adverse_val = spike if spike_dir == adverse_dir else 0.0
        self.adverse = q.spike_on and q.adverse_min > 0.0 and self.adverse_val >= q.adverse_min
        self.ratio = f.volume_ratio
        self.ratio_ok = self.ratio >= q.vol_min_ratio
        self.broken = close < f.va_low if is_long else close > f.va_high
        self.recovered = False  # set by the pullback gates

    def pullback_cross_ok(self) -> bool:
        return self.f.pullback_cross == (CROSS_UP if self.is_long else CROSS_DOWN)

    def charge_structure(self, own: float) -> float:
        """A failing structure gate's penalty: its own plus the structure pool, once."""
        pen = -(own + self.structure_pen)
        self.structure_pen = 0.0
        return pen

    def charge_volume(self) -> float:
        """A failing volume gate's penalty: the volume and structure pools, each once."""
        pen = -(self.volume_pen + self.structure_pen)
        self.volume_pen = self.structure_pen = 0.0
        return pen
