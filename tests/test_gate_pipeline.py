"""The signal's gates are data (engine/strategy/gates/): one ordered pipeline of Gate objects
that `evaluate` runs, that names every decision's gates, and that docs/STRATEGY.md reads."""

from __future__ import annotations

import dataclasses
import math

import pytest

from engine.settings import ProfileSettings, by_key
from engine.strategy import SymbolFeatures, evaluate
from engine.strategy.decision import GateResult
from engine.strategy.gates import Gate
from engine.strategy.gates import pipeline as pl
from engine.strategy.signal import PULLBACK_GATES, SIGNAL_GATES, STRUCTURE_GATES
from engine.settings import strategy_doc as sd

FEATURES = {f.name for f in dataclasses.fields(SymbolFeatures)}


def _features(**over) -> SymbolFeatures:
    base = SymbolFeatures.neutral_benchmark(1_700_000_123_457, "ETH/USDT:USDT")
    return dataclasses.replace(base, close=100.0, macro_fast=101.0, macro_slow=100.0, trigger_fast=100.5,
                               trigger_slow=100.0, **over)


def test_the_pipeline_names_every_decision_gate_in_order():
    names = tuple(g.name for g in pl.SIGNAL_PIPELINE)
    assert names == SIGNAL_GATES and len(set(names)) == len(names)
    assert names[-1] == "min_score"
    p = ProfileSettings()
    extra = GateResult("x_extra", 1.0, 0.0, True, "info", ">", "")
    d = evaluate("long", _features(), None, p, (extra,))
    assert d.gate_names == names[:-1] + ("x_extra", "min_score")  # extras go right before min_score
    assert STRUCTURE_GATES == {"chop", "volume_confirmation", "adverse_spike", "value_area"}
    assert PULLBACK_GATES == ("pullback_cross_age", "pullback_gap")


@pytest.mark.parametrize("gate", pl.SIGNAL_PIPELINE, ids=lambda g: g.name)
def test_every_gate_describes_itself_from_the_catalog(gate: Gate):
    keys = by_key()
    assert gate.kind and gate.checks.endswith(".") and gate.settings
    assert [k for k in gate.settings if k not in keys] == []  # real settings only
    assert [r for r in gate.reads if r.split(" ")[0] not in FEATURES] == []  # real feature fields
    assert sd.GATES[gate.name] == (gate.kind, gate.checks, gate.settings)  # the doc reads the object


def test_a_gate_is_one_object_and_one_line(monkeypatch):
    """A new gate: a Gate whose run() reads the shared context, placed in the pipeline list."""
    from engine.strategy import signal
    from engine.strategy.decision import HARD
    from engine.strategy.gates.base import result

    def run(c) -> GateResult:
        return result("close_above_100", c.close, 100.0, c.close > 100.0, HARD, ">")

    new = Gate("close_above_100", "hard", "Close above 100.", ("ENTRY_MIN_SCORE",), ("close",), run)
    runs = signal._BEFORE_SCORE[:3] + (new.run,) + signal._BEFORE_SCORE[3:]
    monkeypatch.setattr(signal, "_BEFORE_SCORE", runs)
    p = ProfileSettings()
    d = evaluate("long", _features(), None, p)
    assert d.gate_names[3] == "close_above_100" and not d.entry_valid  # a failing hard gate blocks
    assert d.gates[3].passed is False and math.isclose(d.gates[3].value, 100.0)
