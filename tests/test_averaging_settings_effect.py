"""Per-stage averaging lists in effect (issue 18): AVERAGING_DRAWDOWN_STEPS and
AVERAGING_BUDGET_FRACTIONS, set in a .env, replace the flat step and fraction stage by stage
(one value per stage), on the runner scenario of tests/test_averaging_power.py (a long 10 @ 100 falling to
97 and 96.9; by default 1% per stage and half the notional per add)."""

from __future__ import annotations

import pytest

from engine.settings import SettingsError
from settings_effect import settings
from test_averaging_power import adds


def lists(**env: str) -> dict:
    p = settings(**env).side("long")
    return {"averaging_drawdown_steps": p.averaging_drawdown_steps,
            "averaging_budget_fractions": p.averaging_budget_fractions}


async def test_averaging_drawdown_steps_set_the_drawdown_of_each_listed_stage():
    assert (await adds(1.0))[0] == [5, 7]
    assert (await adds(1.0, **lists(AVERAGING_DRAWDOWN_STEPS="0.02,0.05")))[0] == [5]  # stage 2 needs 5%
    assert (await adds(1.0, **lists(AVERAGING_DRAWDOWN_STEPS="0.04,0.05")))[0] == []  # stage 1 needs 4%


async def test_averaging_budget_fractions_set_the_size_of_each_listed_stage():
    # 10 x 97 x 0.25 = 242.5 USDT -> 2 contracts; stage 2 at 0.5: 12 x 96.9 x 0.5 -> 6
    assert (await adds(1.0, **lists(AVERAGING_BUDGET_FRACTIONS="0.25,0.5")))[0] == [2, 6]
    assert (await adds(1.0, **lists(AVERAGING_BUDGET_FRACTIONS="0.5,0.1")))[0] == [5, 1]


async def test_max_buy_stages_counts_the_entry_and_caps_the_adds():
    assert (await adds(1.0, max_buy_stages=2))[0] == [5]  # the entry and one add
    assert (await adds(1.0, max_buy_stages=1))[0] == []
    with pytest.raises(SettingsError, match="EMA_MAX_AVERAGING_STAGES.*MAX_BUY_STAGES|MAX_BUY_STAGES.*EMA_MAX"):
        settings(MAX_BUY_STAGES=2)  # a .env with two averaging stages is refused at load, naming both
