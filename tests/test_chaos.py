"""Chaos: replays through an exchange that fails on purpose (seeded) must stay whole.

After every calm step: each position has one exchange-side stop of its size, no client id was
used twice, no coin has both sides, close orders never exceed a position."""

import pytest

from engine.runtime.chaos import SCENARIOS, run_chaos
from engine.settings import Settings


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_chaos_scenario_survives(name, tmp_path):
    rates, kills = SCENARIOS[name]
    r = await run_chaos(Settings.defaults(), name=name, rates=rates, seed=7, db_path=tmp_path / "c.sqlite",
                        kills=kills, steps=1900)
    assert r.steps == 1900
    assert r.faults > 0 or r.restarts > 0, "the scenario injected nothing"
    assert r.checks > 100
    assert r.trades > 0
    assert r.violations == []
