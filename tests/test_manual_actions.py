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


# -- a close at a limit (the exit planner keeps it) ------------------------------------------

async def _a_orders(sim, symbol=A):
    return [o for o in await sim.fetch_open_orders() if o.symbol == symbol]


async def test_a_limit_close_replaces_the_ladder_keeps_the_stop_and_fills_as_manual(monkeypatch):
    sim, ex, store, engine, seen = await _setup(monkeypatch)
    assert len([o for o in await _a_orders(sim) if o.kind == "limit"]) > 1  # A's exit ladder rests
    engine.request_manual(ManualRequest("close", A, Dec("103.333")))
    await step(engine, sim, T0 + 3_217)
    orders = await _a_orders(sim)
    limits = [o for o in orders if o.kind == "limit"]
    # one reduce-only limit for the whole long, its price rounded up (a sell: never below the ask)
    assert [(o.reduce_only, o.side, o.price, o.amount) for o in limits] == [(True, "sell", Dec("103.34"), Dec(10))]
    assert [o.amount for o in orders if o.kind == "stop_loss"] == [Dec(10)]  # the stop stays
    await assert_every_position_protected(sim)
    sent = [e for e in seen if isinstance(e, OrderEvent) and e.symbol == A]
    await step(engine, sim, T0 + 64_917)
    await step(engine, sim, T0 + 125_431, True)
    assert [e for e in seen if isinstance(e, OrderEvent) and e.symbol == A] == sent  # quiet: nothing re-sent
    assert [o.client_order_id for o in await _a_orders(sim) if o.kind == "limit"] == \
        [o.client_order_id for o in limits]
    sim.on_candle(A, T0 + 120_000, "100", "103.5", "99.8", "100.2")  # trades through it
    await step(engine, sim, T0 + 486_771)
    assert A not in {p.symbol for p in await sim.fetch_positions()}
    assert await _a_orders(sim) == []  # the stop went with the position
    trades = [e for e in seen if getattr(e, "kind", "") == "trade" and e.symbol == A]
    assert trades and trades[0].reason == "manual"
    await store.close()


async def test_a_limit_close_that_disappears_is_placed_again_and_survives_a_restart(monkeypatch, tmp_path):
    store = await StateStore.open(tmp_path / "s.sqlite")
    sim, ex, store, engine, seen = await _setup(monkeypatch, store=store)
    engine.request_manual(ManualRequest("close", B, Dec("48.005")))  # the short on B
    await step(engine, sim, T0 + 3_217)
    (limit,) = [o for o in await _a_orders(sim, B) if o.kind == "limit"]
    assert (limit.side, limit.price, limit.amount) == ("buy", Dec("48.00"), Dec(20))  # a buy rounds down
    await sim.cancel_order(limit)  # cancelled at the venue (by hand, or by the venue)
    await step(engine, sim, T0 + 64_917)
    again = [o for o in await _a_orders(sim, B) if o.kind == "limit"]
    assert [(o.price, o.amount) for o in again] == [(Dec("48.00"), Dec(20))]
    assert again[0].client_order_id != limit.client_order_id  # a new intent
    await store.close()
    store = await StateStore.open(tmp_path / "s.sqlite")
    engine2 = await new_engine(sim, store, EventBus())
    assert engine2.profiles["short"].state.positions[B].manual_close_price == Dec("48.00")
    await step(engine2, sim, T0 + 125_431, True)
    assert [(o.price, o.amount) for o in await _a_orders(sim, B) if o.kind == "limit"] == [(Dec("48.00"), Dec(20))]
    # withdrawn: the exit ladder returns
    engine2.request_manual(ManualRequest("cancel_close", B))
    await step(engine2, sim, T0 + 186_003)
    ladder = [o for o in await _a_orders(sim, B) if o.kind == "limit"]
    assert len(ladder) > 1 and all(o.price < Dec(50) for o in ladder)
    await assert_every_position_protected(sim)
    await store.close()


async def test_a_close_at_market_ends_a_limit_close(monkeypatch):
    sim, ex, store, engine, seen = await _setup(monkeypatch)
    engine.request_manual(ManualRequest("close", A, Dec("130")))
    await step(engine, sim, T0 + 3_217)
    engine.request_manual(ManualRequest("close", A))
    await step(engine, sim, T0 + 64_917)
    assert A not in {p.symbol for p in await sim.fetch_positions()} and await _a_orders(sim) == []
    await store.close()


async def test_a_limit_close_the_venue_cannot_rest_waits_with_the_stop_in_place(monkeypatch):
    # HTX refuses a reduce-only order when other close orders (here the stop) reserve the
    # closeable amount (../shared/spec/EXCHANGE.md): the limit waits; it never goes at market
    sim = new_sim(reserve=True)
    open_positions(sim)
    store = await StateStore.open(":memory:")
    seen = []
    bus = EventBus()
    bus.subscribe(seen.append)
    engine = await new_engine(sim, store, bus)
    await engine.step(T0, {}, new_candle=True)
    engine.request_manual(ManualRequest("close", A, Dec("101")))
    await step(engine, sim, T0 + 3_217)
    assert A in {p.symbol for p in await sim.fetch_positions()}
    await assert_every_position_protected(sim)
    refused = [e for e in seen if isinstance(e, OrderEvent) and e.symbol == A and e.purpose == "close"]
    assert refused and all(e.action == "rejected" and "reserved" in e.reason for e in refused)
    assert not [o for o in await _a_orders(sim) if o.kind == "limit"]
    await store.close()


async def test_a_limit_close_without_a_position_says_so(monkeypatch):
    sim, ex, store, engine, seen = await _setup(monkeypatch)
    engine.request_manual(ManualRequest("close", C, Dec("2.5")))  # C has entry orders, no position
    await step(engine, sim, T0 + 3_217)
    said = [e.message for e in seen if getattr(e, "message", "").startswith("manual close")]
    assert any("no open position on" in m for m in said)
    await store.close()


@pytest.mark.parametrize("text", ["-3", "0", "abc", "nan", "inf", "1e400000"])
def test_a_bad_limit_price_is_one_line(text):
    from engine.runtime.manual import limit_price

    with pytest.raises(ValueError) as info:
        limit_price(text)
    assert "expected a positive number" in str(info.value) and "\n" not in str(info.value)


def test_a_limit_price_is_for_a_close_only():
    with pytest.raises(ValueError, match="for a close only"):
        ManualRequest("flatten", "", Dec(1))
