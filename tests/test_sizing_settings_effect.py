"""Sizing settings in effect (issue 18): each changes the entry ladders the engine places.

The engine on the simulated venue proposes a long entry on one coin and a short on another
(`force_entries`); the entry orders it places (coin, side, price, amount), once with the
defaults (or a stated base) and once with one setting changed, must differ. Unaligned clock.
"""

from __future__ import annotations

import pytest

from engine.runtime.engine import Engine
from engine.runtime.events import EventBus
from engine.store.state import StateStore

from settings_effect import settings
from test_runtime_protection import A, B, C, D, T0, force_entries, new_sim


async def _entries(monkeypatch, values: dict[str, str]) -> tuple:
    s = settings(**values)
    sim = new_sim()
    engine = Engine(s, sim, await StateStore.open(":memory:", inline=True), EventBus(), symbols=[A, B, C, D])
    await engine.start()
    force_entries(monkeypatch, engine)
    await engine.step(T0 + 13_877, {}, new_candle=True)
    await engine.store.close()
    return tuple(sorted((o.symbol, o.side, o.price, o.amount) for o in await sim.fetch_open_orders()
                        if not o.reduce_only))


SCALING = {"ENABLE_SIGNAL_SIZE_SCALING": "true", "SIGNAL_SCORE_REFERENCE": "4"}


@pytest.mark.parametrize(("key", "value", "base"), [
    ("ENABLE_SIGNAL_SIZE_SCALING", "true", {"SIGNAL_SCORE_REFERENCE": "4", "SIGNAL_BUDGET_MIN_MULTIPLIER": "0.5"}),
    ("SIGNAL_SCORE_REFERENCE", "4", {"ENABLE_SIGNAL_SIZE_SCALING": "true", "SIGNAL_BUDGET_MIN_MULTIPLIER": "0.5"}),
    ("SIGNAL_BUDGET_MAX_MULTIPLIER", "2.0", SCALING),
    ("ENTRY_QUALITY_BUDGET_REFERENCE", "10", {}),
    ("ENTRY_QUALITY_BUDGET_MIN_MULTIPLIER", "0.8", {"ENTRY_QUALITY_BUDGET_REFERENCE": "10"}),
    ("MIN_QUOTE_RESERVE", "99990", {}),
    ("LEVERAGE", "2", {}),  # sizes below the simulated account's 5x
    ("EMA_POSITION_BUDGET_FRACTION", "0.01", {}),
    ("EMA_LADDER_FRACTIONS", "0.7,0.3", {}),
    ("EMA_LADDER_OFFSETS", "0.002,0.02", {}),
])
async def test_a_sizing_setting_changes_the_entry_orders(monkeypatch, key, value, base):
    before = await _entries(monkeypatch, dict(base))
    after = await _entries(monkeypatch, {**base, key: value})
    assert before, "the scenario places entry orders"
    assert after != before, f"{key}={value} changed no entry order"
