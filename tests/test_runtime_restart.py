"""Stopping and restarting (issue 17, item 3, and the restart rules the mutation check needs).

A clean stop cancels our resting entry orders and leaves the stops; a process killed mid-cycle
comes back and either finishes the interrupted cycle's write-ahead plan (same time) or adopts
what that cycle sent (later); a restart reconciles the fills that happened while it was down
before it sends anything; a restarted process derives the same client ids for the same intent.
"""

from __future__ import annotations

from decimal import Decimal as Dec
from types import SimpleNamespace as NS

import pytest

from engine.exchange.sim import _SimPosition
from engine.runtime.actions import PlaceEntry
from engine.runtime.crash import SimulatedCrash
from engine.runtime.engine import Engine, _entry_context
from engine.runtime.events import EngineStatus, EventBus, FillEvent
from engine.runtime.positions import MarketContext
from engine.runtime.profile import CycleInput, ProfileRunner
from engine.runtime.snapshot import read_snapshot
from engine.settings import Settings
from engine.settings.envfile import Assignment
from engine.settings.loader import settings_from_assignments
from engine.store.state import StateStore
from test_runtime_protection import A, B, C, D, T0, force_entries, market, new_sim, open_positions


def decision(symbol):
    return NS(symbol=symbol, side="long", score=1.0, valid=True, entry_valid=True, add_valid=True, gates=(),
              features=None, first_rejection="")


def select_unless_held(decs, ctx, p):
    """Chooses every decision whose symbol this side does not hold (and not while paused)."""
    decs = [d for d in decs if d is not None]
    chosen = () if ctx.entries_paused else tuple(d for d in decs if d.symbol not in ctx.held)
    return NS(decisions=decs, chosen=chosen, chosen_symbols=tuple(d.symbol for d in chosen))


async def cycle_input(ex, now, symbols, decisions):
    snap = await read_snapshot(ex, symbols, now)
    return CycleInput(snap, {s: market(s) for s in symbols}, decisions, {s: MarketContext() for s in symbols},
                      select_unless_held, _entry_context, set(), new_candle=True)


class CrashAtEntry:
    """The process dies at the n-th entry placement, after the venue carried it out."""

    def __init__(self, sim, n):
        self.sim, self.n, self.entries = sim, n, 0

    def __getattr__(self, name):
        return getattr(self.sim, name)

    async def place_post_only(self, *a, **kw):
        order = await self.sim.place_post_only(*a, **kw)
        self.entries += 1
        if self.entries == self.n:
            raise SimulatedCrash("killed after an entry reached the venue")
        return order


def runner_for(ex, store):
    s = Settings.defaults()
    return ProfileRunner("long", s.side("long"), ex, store, EventBus(), [C], s.glob)


async def entry_orders(sim, symbol=C):
    return [o for o in await sim.fetch_open_orders() if o.symbol == symbol and not o.reduce_only]


async def test_a_restarted_process_plans_the_same_order_ids(tmp_path):
    sim = new_sim()
    plans = []
    for name in ("a", "b"):  # two processes, same stored state, same account
        store = await StateStore.open(tmp_path / f"{name}.sqlite")
        runner = runner_for(sim, store)
        actions, *_ = await runner._plan(await cycle_input(sim, T0, [C], {C: decision(C)}))
        plans.append([a.client_order_id for a in actions if isinstance(a, PlaceEntry)])
        await store.close()
    assert len(plans[0]) == 2 and plans[0] == plans[1]


async def test_an_interrupted_cycle_finishes_its_plan_after_a_restart(tmp_path):
    sim = new_sim()
    db = tmp_path / "s.sqlite"
    store = await StateStore.open(db)
    try:
        await runner_for(CrashAtEntry(sim, 1), store).cycle(await cycle_input(sim, T0, [C], {C: decision(C)}))
        raise AssertionError("the crash did not happen")
    except SimulatedCrash:
        pass
    await store.close()
    assert len(await entry_orders(sim)) == 1  # the ladder's first rung went out, then the process died
    store = await StateStore.open(db)
    runner = runner_for(sim, store)
    result = await runner.cycle(await cycle_input(sim, T0, [C], {C: decision(C)}))
    assert "resumed the interrupted cycle's plan" in result.notes
    rungs = await entry_orders(sim)
    assert len(rungs) == 2  # the second rung too: the plan was finished, not planned anew
    assert sorted(runner.state.ladders[C].client_ids) == sorted(o.client_order_id for o in rungs)
    await store.close()


async def test_a_later_restart_adopts_the_ladder_a_crashed_cycle_sent(tmp_path):
    sim = new_sim()
    db = tmp_path / "s.sqlite"
    store = await StateStore.open(db)
    try:
        await runner_for(CrashAtEntry(sim, 2), store).cycle(await cycle_input(sim, T0, [C], {C: decision(C)}))
        raise AssertionError("the crash did not happen")
    except SimulatedCrash:
        pass
    await store.close()
    rungs = await entry_orders(sim)
    assert len(rungs) == 2
    store = await StateStore.open(db)
    runner = runner_for(sim, store)
    later = T0 + 900_000 + 4_321  # the process came back 15 minutes later
    await runner.cycle(await cycle_input(sim, later, [C], {}))
    ladder = runner.state.ladders.get(C)
    assert ladder is not None and sorted(ladder.client_ids) == sorted(o.client_order_id for o in rungs)
    async with store.db.execute("SELECT problem FROM repairs WHERE symbol=?", (C,)) as cur:
        assert "entry order without ladder state" in [r[0] async for r in cur]
    assert len([o for o in sim.all_orders(C) if not o.reduce_only]) == 2  # nothing sent twice
    await store.close()


# -- item 3 ----------------------------------------------------------------------------------------

async def test_a_clean_stop_cancels_resting_entries_and_keeps_the_stops(monkeypatch):
    sim = new_sim()
    open_positions(sim)
    store = await StateStore.open(":memory:")
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    engine = Engine(Settings.defaults(), sim, store, bus, symbols=[A, B, C, D])
    await engine.start()
    force_entries(monkeypatch, engine)
    await engine.step(T0, {}, new_candle=True)
    assert await entry_orders(sim, C) and await entry_orders(sim, D)
    foreign = await sim.place_post_only(A, "buy", Dec(1), Dec(90), 777)  # placed by hand: not ours
    sim._positions[C] = _SimPosition(Dec(50), Dec(2))  # a rung filled after the last step
    await engine.shutdown(T0 + 2_345)
    left = [o for o in await sim.fetch_open_orders() if not o.reduce_only]
    assert [o.client_order_id for o in left] == [foreign.client_order_id]
    stops = {o.symbol: o.amount for o in await sim.fetch_open_orders() if o.kind == "stop_loss"}
    assert stops == {A: Dec(10), B: Dec(20), C: Dec(50)}  # kept, and the late fill protected
    assert any(isinstance(e, EngineStatus) and "entry orders cancelled" in e.message for e in seen)
    await store.close()


@pytest.mark.parametrize("attach", [False, True])
async def test_a_restart_reconciles_the_fills_of_its_downtime_before_sending_anything(monkeypatch, tmp_path, attach):
    """Without an attached stop the first order after the restart is the position's stop; with
    one (HARD_STOP_ATTACH_TO_ENTRY) the venue already holds it and no order goes out before it."""
    sim = new_sim()
    db = tmp_path / "s.sqlite"
    store = await StateStore.open(db)
    settings = settings_from_assignments([Assignment("HARD_STOP_ATTACH_TO_ENTRY", str(attach).lower(), 1)])
    engine = Engine(settings, sim, store, EventBus(), symbols=[A, B, C, D])
    await engine.start()
    force_entries(monkeypatch, engine)
    await engine.step(T0, {}, new_candle=True)
    rung = max((o for o in await entry_orders(sim, C)), key=lambda o: o.price)
    await store.close()  # killed; while it is down the price trades through the first rung
    t = T0 + 600_000
    sim.on_candle(C, t - 300_000, rung.price, rung.price, rung.price - Dec("0.01"), rung.price)
    assert {p.symbol for p in await sim.fetch_positions()} == {C}

    log = []

    class Recorder:
        def __getattr__(self, name):
            attr = getattr(sim, name)
            if name.startswith(("place_", "cancel_", "close_")):
                async def call(*a, **k):
                    stops = [o for o in sim.all_orders(C) if o.kind == "stop_loss" and o.is_open]
                    log.append(("order", name, a[0] if a else None, bool(stops)))
                    return await attr(*a, **k)
                return call
            return attr

    bus = EventBus()
    bus.subscribe(lambda e: log.append(("fill", e.symbol)) if isinstance(e, FillEvent) else None)
    bus.subscribe(lambda e: log.append(("repair", e.symbol)) if e.kind == "repair" else None)
    store = await StateStore.open(db)
    engine2 = Engine(settings, Recorder(), store, bus, symbols=[A, B, C, D])
    await engine2.start()
    await engine2.step(t + 1_234, {})
    first_order = next(i for i, e in enumerate(log) if e[0] == "order")
    assert ("fill", C) in log[:first_order]  # the downtime's fill was reconciled first
    if attach:
        assert log[first_order][3]  # the attached stop protected it while the bot was down
        assert all(e[1] != "place_stop_loss" for e in log if e[0] == "order")
    else:
        assert log[first_order] == ("order", "place_stop_loss", C, False)  # protected before anything else
    meta = engine2.profiles["long"].state.positions[C]
    assert not meta.adopted  # known as our ladder's position, not a foreign one
    await store.close()


# -- item 11: restart bookkeeping ----------------------------------------------------------------

class FillsWithout:
    """A venue whose fill records carry no client id (and, with `order_ids=False`, a triggered
    stop fills under a new order id of the venue's own): what a restarted process sees."""

    def __init__(self, sim, order_ids=True):
        self.sim, self.order_ids = sim, order_ids

    def __getattr__(self, name):
        return getattr(self.sim, name)

    async def fetch_fills(self, symbols, since_ms):
        from dataclasses import replace as dc_replace

        fills = await self.sim.fetch_fills(symbols, since_ms)
        return [dc_replace(f, client_order_id=None, order_id=f.order_id if self.order_ids else f"venue-{f.id}")
                for f in fills]


async def _close_after_restart(tmp_path, exit_first, order_ids):
    from engine.exchange.sim import _SimPosition as SimPos

    sim = new_sim()
    db = tmp_path / "s.sqlite"
    store = await StateStore.open(db)
    s = Settings.defaults()
    ex = FillsWithout(sim, order_ids)
    runner = ProfileRunner("long", s.side("long"), ex, store, EventBus(), [A], s.glob)
    sim._positions[A] = SimPos(Dec(10), Dec(100))
    snap = await read_snapshot(ex, [A], T0)
    await runner.cycle(CycleInput(snap, {A: market(A)}, {}, {A: MarketContext()}, None, None, set(), new_candle=False))
    await store.close()  # restart: the new process knows nothing but the state file
    orders = await sim.fetch_open_orders()
    stop = next(o for o in orders if o.kind == "stop_loss")
    t = T0 + 300_000
    if exit_first:  # the take-profit fills: the exit closes the position
        top = max(o.price for o in orders if o.kind == "limit")
        for o in orders:
            if o.kind == "limit" and o.price < top:
                await sim.cancel_order(o)
        sim._positions[A] = SimPos(next(o.amount for o in orders if o.price == top), Dec(100))
        sim.on_candle(A, t - 300_000, Dec(100), top + 1, Dec(100), top)
    else:  # the price falls through the stop
        sim.on_candle(A, t - 300_000, Dec(100), Dec(100), stop.trigger_price - 1, stop.trigger_price - 1)
    assert await sim.fetch_positions() == []
    store = await StateStore.open(db)
    bus = EventBus()
    trades = []
    bus.subscribe(lambda e: trades.append(e) if e.kind == "trade" else None)
    runner = ProfileRunner("long", s.side("long"), ex, store, bus, [A], s.glob)
    await runner.load()
    snap = await read_snapshot(ex, [A], t + 1_234)
    await runner.cycle(CycleInput(snap, {A: market(A)}, {}, {A: MarketContext()}, None, None, set(), new_candle=False))
    await store.close()
    return [tr.reason for tr in trades]


async def test_after_a_restart_a_stop_fill_is_not_recorded_as_external(tmp_path):
    assert await _close_after_restart(tmp_path, exit_first=False, order_ids=True) == ["stop_loss"]


async def test_a_stop_filled_under_a_venue_order_id_is_still_our_stop(tmp_path):
    assert await _close_after_restart(tmp_path, exit_first=False, order_ids=False) == ["stop_loss"]


async def test_after_a_restart_an_exit_fill_is_not_recorded_as_external(tmp_path):
    reasons = await _close_after_restart(tmp_path, exit_first=True, order_ids=True)
    assert reasons and reasons[0] != "external" and "take_profit" in reasons[0]


async def test_a_kill_right_after_the_state_save_loses_no_fill_row(tmp_path):
    """The state save ends a fill's read window; the audit flush ran before it, so a process
    killed right after the save (before its periodic audit flush) still has the row on disk."""
    from engine.store.audit import AuditWriter

    sim = new_sim()
    store = await StateStore.open(tmp_path / "s.sqlite")
    bus = EventBus()
    audit = AuditWriter.from_settings(Settings.defaults(), tmp_path / "audit")
    bus.subscribe(audit)
    s = Settings.defaults()
    runner = ProfileRunner("long", s.side("long"), sim, store, bus, [A], s.glob)
    real_save = store.save_profile
    saved = []

    async def save_then_die(profile, st):
        await real_save(profile, st)
        saved.append(st.last_cycle_ms)
        if len(saved) == 2:
            raise SimulatedCrash("killed after the state save, before the audit flush")

    store.save_profile = save_then_die
    await sim.place_post_only(A, "buy", Dec(10), Dec("99.5"), 4242)  # an entry of ours, resting
    await store.record_intent(client_order_id=4242, profile="long", symbol=A, purpose="entry",
                              intent_key="A:entry:1:0", side="buy", price=Dec("99.5"), amount=Dec(10), now_ms=T0)
    snap = await read_snapshot(sim, [A], T0)
    await runner.cycle(CycleInput(snap, {A: market(A)}, {}, {A: MarketContext()}, None, None, set(), new_candle=False))
    sim.on_candle(A, T0, Dec(100), Dec(100), Dec(99), Dec("99.2"))  # the entry fills
    snap = await read_snapshot(sim, [A], T0 + 300_000)
    try:
        await runner.cycle(CycleInput(snap, {A: market(A)}, {}, {A: MarketContext()}, None, None, set(),
                                      new_candle=False))
    except SimulatedCrash:
        pass
    assert len(saved) == 2  # the kill came after the save; the audit object is never flushed again
    rows = (tmp_path / "audit" / "long" / "trades.csv").read_text().splitlines()
    assert any("fill" in r and "99.5" in r for r in rows), rows
    await audit.aclose()
    await store.close()
