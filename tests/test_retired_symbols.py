"""A coin taken out of COINS while the bot holds a position or an entry ladder on it: after the
restart its position keeps its stop and exits and can be closed by the operator; it gets no
new entry or averaging, and its resting entry orders are cancelled. Unaligned clock."""

from __future__ import annotations

from decimal import Decimal as Dec

from engine.runtime.engine import Engine
from engine.runtime.events import EngineStatus, EventBus, OrderEvent
from engine.runtime.manual import ManualRequest
from engine.settings import Settings
from engine.store.state import StateStore

from test_runtime_protection import A, B, C, D, T0, force_entries, new_engine, new_sim, open_positions


async def _restarted_without(tmp_path, monkeypatch, dropped):
    """A bot on A..D with positions on A (long) and B (short) and entry ladders on C and D,
    restarted with `dropped` taken out of its symbols."""
    sim = new_sim()
    open_positions(sim)
    store = await StateStore.open(tmp_path / "s.sqlite")
    engine = await new_engine(sim, store)
    force_entries(monkeypatch, engine)
    await engine.step(T0, {}, new_candle=True)  # stops and exits on A and B, entry ladders on C and D
    assert {o.symbol for o in await sim.fetch_open_orders() if not o.reduce_only} == {C, D}
    await store.close()
    store = await StateStore.open(tmp_path / "s.sqlite")
    bus = EventBus()
    seen: list = []
    bus.subscribe(seen.append)
    kept = [s for s in (A, B, C, D) if s not in dropped]
    engine2 = Engine(Settings.defaults(), sim, store, bus, symbols=kept)
    await engine2.start()
    return sim, store, engine2, seen


async def _stops(sim, symbol):
    return [o for o in await sim.fetch_open_orders() if o.symbol == symbol and o.kind == "stop_loss"]


async def test_a_position_on_a_coin_taken_out_of_coins_keeps_its_stop_and_is_never_added_to(tmp_path, monkeypatch):
    sim, store, engine, seen = await _restarted_without(tmp_path, monkeypatch, {B, D})
    assert engine.retired == {B, D} and B in engine.symbols
    said = [e.message for e in seen if isinstance(e, EngineStatus) and "no longer in COINS" in e.message]
    assert any(m.startswith(B) for m in said) and any(m.startswith(D) for m in said)
    (stop,) = await _stops(sim, B)
    await sim.cancel_order(stop)  # the venue lost it: the protection pass must put it back
    force_entries(monkeypatch, engine)  # the strategy would enter on D (short) and C (long)
    sim.set_price(B, "50", T0 + 64_917)
    await engine.step(T0 + 64_917, {}, new_candle=True)
    assert [(o.amount, o.side) for o in await _stops(sim, B)] == [(Dec(20), "buy")]  # the short's stop again
    # D's entry ladder is cancelled and nothing new is placed on it; C (still configured) trades
    assert not [o for o in await sim.fetch_open_orders() if o.symbol == D and not o.reduce_only]
    placed = [e for e in seen if isinstance(e, OrderEvent) and e.action == "placed" and e.purpose in ("entry", "add")]
    assert not [e for e in placed if e.symbol in (B, D)]
    # and the operator can still close it
    engine.request_manual(ManualRequest("close", B))
    await engine.step(T0 + 125_431, {}, new_candle=False)
    assert B not in {p.symbol for p in await sim.fetch_positions()} and await _stops(sim, B) == []
    await store.close()


async def test_without_state_on_it_a_dropped_coin_is_simply_not_traded(tmp_path, monkeypatch):
    sim, store, engine, seen = await _restarted_without(tmp_path, monkeypatch, {"DOGE/USDT:USDT"})
    assert engine.retired == set() and engine.symbols == [A, B, C, D]
    await store.close()
