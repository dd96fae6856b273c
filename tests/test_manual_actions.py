"""The operator's manual actions (issue 14): close one position, cancel a symbol's entries,
flatten, freeze. Each runs through the profile's executor at the next step (audit trail,
deterministic client ids) and never leaves a position without its stop. Unaligned clock."""

from __future__ import annotations

from decimal import Decimal as Dec

import pytest

from engine.runtime.events import EventBus, OrderEvent
from engine.runtime.manual import ManualRequest
from engine.store.state import StateStore

from test_runtime_protection import (A, B, C, D, T0, CloseFails, RefusesStops, assert_every_position_protected,
                                     force_entries, new_engine, new_sim, open_positions)


async def _setup(monkeypatch, ex=None, store=None):
    sim = new_sim()
    open_positions(sim)  # a long on A, a short on B
    ex = ex(sim) if ex else RefusesStops(sim, "NONE/USDT:USDT")
    store = store or await StateStore.open(":memory:")
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    engine = await new_engine(ex, store, bus)
    force_entries(monkeypatch, engine)
    await engine.step(T0, {}, new_candle=True)  # stops, exits and entry ladders on C and D
    await assert_every_position_protected(sim)
    return sim, ex, store, engine, seen


async def step(engine, sim, t, new_candle=False):
    for symbol in (A, B, C, D):  # the venue's clock moves with the engine's
        sim.set_price(symbol, {A: "100", B: "50", C: "2", D: "0.5"}[symbol], t)
    await engine.step(t, {}, new_candle=new_candle)


async def _kinds(sim, symbol):
    return sorted((o.kind, o.reduce_only) for o in await sim.fetch_open_orders() if o.symbol == symbol)


async def test_close_one_position_at_market_keeps_the_others_and_records_it(monkeypatch):
    sim, ex, store, engine, seen = await _setup(monkeypatch)
    engine.request_manual(ManualRequest("close", A))
    await step(engine, sim, T0 + 3_217, False)
    assert {p.symbol for p in await sim.fetch_positions()} == {B}
    assert await _kinds(sim, A) == []  # its exits and stop went with it
    closes = [e for e in seen if isinstance(e, OrderEvent) and e.symbol == A and e.purpose == "close"]
    assert closes and closes[0].reduce_only
    async with store.db.execute("SELECT intent_key FROM orders WHERE symbol=? AND purpose='close'", (A,)) as cur:
        keys = [r[0] async for r in cur]
    assert keys and ":manual:" in keys[0]  # the write-ahead intent, like the strategy's orders
    await step(engine, sim, T0 + 6_491, False)
    trades = [e for e in seen if getattr(e, "kind", "") == "trade" and e.symbol == A]
    assert trades and trades[0].reason == "manual"
    await store.close()


async def test_a_close_the_venue_rejects_leaves_the_stop_in_place(monkeypatch):
    sim, ex, store, engine, seen = await _setup(monkeypatch, ex=lambda s: CloseFails(s, "reject"))
    engine.request_manual(ManualRequest("close", A))
    await step(engine, sim, T0 + 3_217, False)
    assert ex.closes == 1 and A in {p.symbol for p in await sim.fetch_positions()}
    await assert_every_position_protected(sim)
    await store.close()


async def test_flatten_closes_everything_cancels_every_entry_and_pauses(monkeypatch):
    sim, ex, store, engine, seen = await _setup(monkeypatch)
    assert any(not o.reduce_only for o in await sim.fetch_open_orders())  # the entry ladders rest
    engine.request_manual(ManualRequest("flatten"))
    assert engine.flags.paused
    await step(engine, sim, T0 + 3_217, False)
    assert await sim.fetch_positions() == []
    assert [o for o in await sim.fetch_open_orders() if not o.reduce_only] == []
    assert engine.flags.paused  # the strategy does not open the next one at once
    await store.close()


async def test_cancel_entries_of_one_symbol_leaves_positions_and_other_ladders(monkeypatch):
    sim, ex, store, engine, seen = await _setup(monkeypatch)
    engine.pause_entries(True)
    engine.request_manual(ManualRequest("cancel_entries", C))
    await step(engine, sim, T0 + 3_217, False)
    assert [o for o in await sim.fetch_open_orders() if o.symbol == C] == []
    assert any(o.symbol == D and not o.reduce_only for o in await sim.fetch_open_orders())
    assert {p.symbol for p in await sim.fetch_positions()} == {A, B}
    await store.close()


async def test_a_frozen_symbol_gets_no_entry_and_stays_frozen_after_a_restart(monkeypatch, tmp_path):
    store = await StateStore.open(tmp_path / "s.sqlite")
    sim, ex, store, engine, seen = await _setup(monkeypatch, store=store)
    for o in await sim.fetch_open_orders():
        if not o.reduce_only:
            await sim.cancel_order(o)
    engine.request_manual(ManualRequest("freeze", C))
    ex.entries.clear()
    await step(engine, sim, T0 + 301_117, True)
    assert C not in ex.entries and D in ex.entries
    await store.close()
    store = await StateStore.open(tmp_path / "s.sqlite")
    engine2 = await new_engine(ex, store, EventBus())
    assert engine2.frozen == {C}
    engine2.request_manual(ManualRequest("unfreeze", C))
    assert engine2.frozen == set()
    await store.close()


@pytest.mark.parametrize("req", [ManualRequest("close", "NOPE/USDT:USDT"), ManualRequest("freeze", "")])
async def test_a_symbol_that_is_not_traded_is_refused_in_one_line(monkeypatch, req):
    sim, ex, store, engine, seen = await _setup(monkeypatch)
    with pytest.raises(ValueError) as info:
        engine.request_manual(req)
    assert "is not a traded symbol" in str(info.value) and "\n" not in str(info.value)
    await store.close()
