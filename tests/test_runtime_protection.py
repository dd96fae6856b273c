"""Protection that holds under faults (issue 17, items 1, 2 and 5).

Faults are injected at the engine's own boundaries (the state store, one side's cycle, the
reference tracker, the venue refusing one symbol's stop), not only under the retry layer, so
the engine's error handling is what runs. After every faulty step each position of both sides
must have its stop; while one position lacks a confirmed stop no new risk is taken on either
side, and after HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC the position is closed reduce-only.
"""

from __future__ import annotations

import errno
from decimal import Decimal as Dec
from types import SimpleNamespace as NS

import pytest

from engine.exchange import errors as E
from engine.exchange.sim import SimConfig, SimulatedExchange, _SimPosition
from engine.exchange.types import Market
from engine.runtime import engine as engine_mod
from engine.runtime.engine import Engine
from engine.runtime.events import EngineStatus, ErrorEvent, EventBus, Repair, StopEvent, TradeClosed
from engine.runtime.positions import MarketContext
from engine.runtime.profile import CycleInput, ProfileRunner
from engine.runtime.snapshot import read_snapshot
from engine.settings import Settings
from engine.store.state import StateStore

A, B, C, D = "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT", "ADA/USDT:USDT"
PRICES = {A: "100", B: "50", C: "2", D: "0.5"}
# unaligned, jittered clock: 2024-08-01 plus a few odd seconds
T0 = 1_722_470_400_000 + 3_217


def market(symbol: str) -> Market:
    step = Dec("0.01") if Dec(PRICES[symbol]) >= 10 else Dec("0.0001")
    return Market(symbol, symbol.replace("/", "-"), symbol.split("/")[0], "USDT", contract_size=Dec(1),
                  amount_step=Dec(1), price_step=step, min_amount=Dec(1), min_notional=None)


MARKETS = [market(s) for s in (A, B, C, D)]


def new_sim(reserve: bool = False) -> SimulatedExchange:
    sim = SimulatedExchange(MARKETS, SimConfig(initial_wallet=Dec(100_000), stops_reserve_closeable=reserve),
                            start_ms=T0 - 60_000)
    for s, px in PRICES.items():
        sim.set_price(s, px, T0 - 60_000)
    return sim


def open_positions(sim: SimulatedExchange) -> None:
    """A long on A and a short on B, with no stop yet (e.g. filled while the bot was busy)."""
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    sim._positions[B] = _SimPosition(Dec(-20), Dec(50))


async def held_long_runner(s: Settings, contracts: int = 10, entry: int = 100
                           ) -> tuple[ProfileRunner, SimulatedExchange, StateStore, list]:
    """A long profile's runner on the simulator, the account holding a long `contracts` @
    `entry` on A (not yet known to the runner): (runner, sim, store, events seen)."""
    sim = new_sim()
    sim._positions[A] = _SimPosition(Dec(contracts), Dec(entry))
    store = await StateStore.open(":memory:")
    bus = EventBus()
    seen: list = []
    bus.subscribe(seen.append)
    return ProfileRunner("long", s.side("long"), sim, store, bus, [A], s.glob), sim, store, seen


async def assert_every_position_protected(sim: SimulatedExchange) -> None:
    positions = await sim.fetch_positions()
    assert {p.symbol for p in positions} == {A, B}
    orders = [o for o in await sim.fetch_open_orders() if o.kind == "stop_loss"]
    for p in positions:
        stops = [o for o in orders if o.symbol == p.symbol]
        assert len(stops) == 1 and stops[0].amount == p.contracts and stops[0].reduce_only, (p, stops)


class FullDisk(StateStore):
    """A state store on a full disk: the plan write (or every write) raises ENOSPC."""

    def __init__(self, db, every_write: bool):
        super().__init__(db)
        self.every_write = every_write
        self.raised = 0

    def _full(self) -> None:
        self.raised += 1
        raise OSError(errno.ENOSPC, "No space left on device")

    async def save_pending(self, *a, **k):
        self._full()

    async def save_profile(self, *a, **k):
        if self.every_write:
            self._full()
        return await super().save_profile(*a, **k)

    async def record_intent(self, **k):
        if self.every_write:
            self._full()
        return await super().record_intent(**k)

    async def update_order(self, *a, **k):
        if self.every_write:
            self._full()
        return await super().update_order(*a, **k)

    async def record_repair(self, *a, **k):
        if self.every_write:
            self._full()
        return await super().record_repair(*a, **k)


async def new_engine(ex, store, bus=None, settings=None) -> Engine:
    e = Engine(settings or Settings.defaults(), ex, store, bus or EventBus(), symbols=[A, B, C, D])
    await e.start()
    return e


@pytest.mark.parametrize("every_write", [False, True], ids=["plan-write", "every-write"])
async def test_a_full_disk_does_not_keep_any_position_without_its_stop(every_write):
    sim = new_sim()
    open_positions(sim)
    base = await StateStore.open(":memory:")
    store = FullDisk(base.db, every_write)
    bus = EventBus()
    errors = []
    bus.subscribe(lambda ev: errors.append(ev) if isinstance(ev, ErrorEvent) else None)
    engine = await new_engine(sim, store, bus)
    with pytest.raises(OSError):  # the step still reports its failure to the loop
        await engine.step(T0, {})
    assert store.raised > 0
    await assert_every_position_protected(sim)
    assert any("No space left" in e.message for e in errors)
    await base.close()


async def test_one_sides_cycle_raising_leaves_both_sides_protected(monkeypatch):
    sim = new_sim()
    open_positions(sim)
    store = await StateStore.open(":memory:")
    engine = await new_engine(sim, store)
    calls = {"n": 0}

    async def broken(ci):
        calls["n"] += 1
        raise RuntimeError("a bug in the long cycle")

    monkeypatch.setattr(engine.profiles["long"], "cycle", broken)
    with pytest.raises(RuntimeError):
        await engine.step(T0, {})
    assert calls["n"] == 1
    await assert_every_position_protected(sim)
    # the short side's cycle still ran (its exit ladder went out)
    assert any(o.kind == "limit" and o.reduce_only and o.symbol == B for o in await sim.fetch_open_orders())
    await store.close()


async def test_one_sides_protection_raising_does_not_stop_the_other_side(monkeypatch):
    sim = new_sim()
    open_positions(sim)
    store = await StateStore.open(":memory:")
    engine = await new_engine(sim, store)
    real = engine.profiles["long"].protect
    state = {"fail": True}

    async def flaky(ci, **kw):
        if state["fail"]:
            state["fail"] = False
            raise RuntimeError("protection bug")
        return await real(ci, **kw)

    monkeypatch.setattr(engine.profiles["long"], "protect", flaky)
    with pytest.raises(RuntimeError):
        await engine.step(T0, {})
    stops = {o.symbol for o in await sim.fetch_open_orders() if o.kind == "stop_loss"}
    assert B in stops  # the short side was protected in the same step
    await engine.step(T0 + 2_917, {})
    await assert_every_position_protected(sim)
    await store.close()


async def test_the_reference_feed_or_tracker_raising_does_not_stop_the_stops(monkeypatch):
    sim = new_sim()
    open_positions(sim)
    store = await StateStore.open(":memory:")

    class DeadFeed:
        name = "mexc"

        async def fetch_book_tops(self, symbols, depth=5):
            raise E.NetworkError("mexc unreachable")

        async def fetch_best_prices(self, symbols):
            raise RuntimeError("feed bug")

    engine = Engine(Settings.defaults(), sim, store, EventBus(), symbols=[A, B, C, D], reference_feed=DeadFeed())
    await engine.start()

    def tracker_bug(*a, **k):
        raise ValueError("reference tracker bug")

    monkeypatch.setattr(engine.reference, "update", tracker_bug)
    with pytest.raises(ValueError):
        await engine.step(T0, {})
    await assert_every_position_protected(sim)
    await store.close()


# -- item 1: a stop that cannot be placed blocks new risk and escalates ---------------------------

class RefusesStops:
    """The venue refuses every stop on one symbol (e.g. a trigger rule it enforces); counts."""

    def __init__(self, sim, symbol):
        self.sim, self.symbol, self.stop_calls, self.entries = sim, symbol, [], []

    def __getattr__(self, name):
        return getattr(self.sim, name)

    async def place_stop_loss(self, symbol, position_side, amount, trigger, cid):
        if symbol == self.symbol:
            self.stop_calls.append(self.sim.now_ms)
            raise E.InvalidOrder("stop refused: trigger rule", venue="sim")
        return await self.sim.place_stop_loss(symbol, position_side, amount, trigger, cid)

    async def place_post_only(self, symbol, side, amount, price, cid, **kw):
        self.entries.append(symbol)
        return await self.sim.place_post_only(symbol, side, amount, price, cid, **kw)


def force_entries(monkeypatch, engine):
    """Every step proposes a long entry on C and a short entry on D, and a selection that
    ignores the pause flag: only the engine's own risk block can stop them."""

    def decisions(side, extra, now_ms, new_candles=None, *, redo=False):
        sym = C if side == "long" else D
        d = NS(symbol=sym, side=side, score=1.0, valid=True, entry_valid=True, add_valid=True, gates=(),
               features=None, first_rejection="")
        return {s: (d if s == sym else None) for s in engine.symbols}

    def select(decs, ctx, p):
        decs = [d for d in decs if d is not None]
        return NS(decisions=decs, chosen=tuple(decs), chosen_symbols=tuple(d.symbol for d in decs))

    monkeypatch.setattr(engine, "_decisions", decisions)
    monkeypatch.setattr(engine_mod, "select_entries", select)


@pytest.mark.parametrize("reserve", [False, True], ids=["plain", "htx-reserve"])
async def test_a_stop_that_cannot_be_placed_blocks_new_risk_then_closes_the_position(monkeypatch, reserve):
    sim = new_sim(reserve)
    open_positions(sim)
    ex = RefusesStops(sim, A)
    store = await StateStore.open(":memory:")
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    engine = await new_engine(ex, store, bus)
    force_entries(monkeypatch, engine)
    limit = engine.settings.side("long").hard_stop_unprotected_close_after_sec
    assert limit == 60

    t = T0
    await engine.step(t, {}, new_candle=True)
    assert ex.entries == []  # no entry on either side while A has no stop
    assert engine.risk_blocked() and A in engine.risk_blocked()
    missing = [e for e in seen if isinstance(e, StopEvent) and e.action == "missing" and e.symbol == A]
    assert missing and "blocked" in missing[-1].reason
    assert any(isinstance(e, ErrorEvent) and e.where == "protection" and A in e.message for e in seen)
    assert any(isinstance(e, EngineStatus) and "blocked" in e.message for e in seen)
    async with store.db.execute("SELECT problem, action FROM repairs WHERE symbol=?", (A,)) as cur:
        rows = [r async for r in cur]
    assert rows and "without a confirmed stop" in rows[0][0]  # the audit trail names it

    # polls every ~1.3 s: the stop is retried with backoff (not at every poll), still no entries
    while t < T0 + 55_000:
        t += 1_313
        sim.set_price(A, "99.9", t)
        await engine.step(t, {}, new_candle=True)
        assert ex.entries == []
    attempts = len(ex.stop_calls)
    assert 4 <= attempts < 20, attempts  # retried, and backed off
    assert await sim.fetch_positions() and A in {p.symbol for p in await sim.fetch_positions()}

    # past the bounded time: closed reduce-only at market, the reason named everywhere
    t = T0 + int(limit * 1000) + 1_111
    sim.set_price(A, "99.9", t)
    await engine.step(t, {}, new_candle=True)
    assert A not in {p.symbol for p in await sim.fetch_positions()}
    assert any(isinstance(e, StopEvent) and e.action == "emergency_close" and e.symbol == A for e in seen)
    t += 2_003
    await engine.step(t, {}, new_candle=True)  # the close is reconciled as a trade
    trades = [e for e in seen if isinstance(e, TradeClosed) and e.symbol == A]
    assert trades and trades[0].reason == "unprotected"
    assert any(isinstance(e, Repair) and e.symbol == A for e in seen)
    # every position has its stop again: new risk is allowed, on both sides
    assert engine.risk_blocked() == ""
    t += 2_111
    await engine.step(t, {}, new_candle=True)
    assert C in ex.entries and D in ex.entries
    await store.close()


async def test_entries_go_out_when_every_stop_is_confirmed(monkeypatch):
    """The control for the test above: the same steps with stops accepted do enter."""
    sim = new_sim()
    open_positions(sim)
    ex = RefusesStops(sim, "NONE/USDT:USDT")
    store = await StateStore.open(":memory:")
    engine = await new_engine(ex, store)
    force_entries(monkeypatch, engine)
    await engine.step(T0, {}, new_candle=True)
    assert engine.risk_blocked() == ""
    assert set(ex.entries) == {C, D}
    await store.close()


async def test_averaging_is_blocked_while_a_position_lacks_its_stop():
    from test_runtime_regressions import recovered_gates

    from engine.exchange.types import Balance, BookTop, Order, Position
    from engine.runtime.snapshot import Snapshot
    from engine.store.state import PositionMeta

    settings = Settings.defaults()
    store = await StateStore.open(":memory:")
    runner = ProfileRunner("long", settings.side("long"), None, store, EventBus(), [A], settings.glob)
    runner.state.positions[A] = PositionMeta(A, "long", 0, Dec(1000), contracts=Dec(10), entry_price=Dec(100))
    snap = Snapshot(30 * 3_600_000, Balance(Dec(10000), Dec(9000), Dec(1000), Dec(0)),
                    {A: Position(A, "long", Dec(10), Dec(100), Dec(97), Dec(0), None, None)},
                    [Order("x", 1, A, "sell", "limit", Dec(101), None, Dec(10), Dec(0), "open", True, False, 0)],
                    {A: BookTop("sim", A, Dec("96.99"), Dec("97.01"), None, None, 0, 0)}, {A: Dec(5)})
    d = NS(symbol=A, score=0.1, valid=True, entry_valid=True, add_valid=True,
           gates=recovered_gates(), features=None)
    mk = {A: market(A)}
    ci = CycleInput(snap, mk, {A: d}, {A: MarketContext(atr_rate=0.001)}, None, None, set())
    assert runner._averaging(ci, Dec(0))  # allowed normally
    blocked = CycleInput(snap, mk, {A: d}, {A: MarketContext(atr_rate=0.001)}, None, None, set(),
                         risk_blocked="short position(s) without a confirmed stop: XRP/USDT:USDT")
    assert runner._averaging(blocked, Dec(0)) == []
    await store.close()


# -- item 5: the emergency close keeps the stop until the position is gone ------------------------

class CloseFails:
    """The venue answers the market close with a timeout (nothing done) or a rejection."""

    def __init__(self, sim, how):
        self.sim, self.how, self.closes = sim, how, 0

    def __getattr__(self, name):
        return getattr(self.sim, name)

    async def close_reduce_only_market(self, symbol, position_side, amount, cid):
        self.closes += 1
        if self.how == "timeout":
            raise E.ExchangeTimeout("close timed out", venue="sim")
        if self.how == "reject":
            raise E.InvalidOrder("close rejected", venue="sim")
        return await self.sim.close_reduce_only_market(symbol, position_side, amount, cid)


@pytest.mark.parametrize("how", ["timeout", "reject", "fills"])
async def test_an_emergency_close_cancels_the_stop_only_after_the_position_is_gone(how):
    sim = new_sim()
    ex = CloseFails(sim, how)
    settings = Settings.defaults()
    store = await StateStore.open(":memory:")
    runner = ProfileRunner("long", settings.side("long"), ex, store, EventBus(), [A], settings.glob)

    async def cycle(now):
        snap = await read_snapshot(ex, [A], now)
        ci = CycleInput(snap, {A: market(A)}, {}, {A: MarketContext()}, None, None, set(), new_candle=False)
        return await runner.cycle(ci)

    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    await cycle(T0)
    stop = [o for o in await sim.fetch_open_orders() if o.kind == "stop_loss"]
    assert len(stop) == 1
    # the entry price moves (an averaging fill) so the stop's trigger must move up, but the
    # market already gapped below the new trigger: the plan is an emergency market close
    sim._positions[A] = _SimPosition(Dec(10), Dec(104))
    sim.set_price(A, "100.5", T0 + 3_001)
    await cycle(T0 + 3_001)
    assert ex.closes >= 1
    positions = await sim.fetch_positions()
    stops = [o for o in await sim.fetch_open_orders() if o.kind == "stop_loss"]
    if how == "fills":
        assert positions == [] and stops == []
    else:
        # the close failed: the old stop is still resting, the position is not naked
        assert positions and [s.client_order_id for s in stops] == [stop[0].client_order_id]
    await store.close()


# -- the stop follows the position; its replacement goes out before the old one is cancelled -----

async def _runner_on(ex, symbols=(A,)):
    settings = Settings.defaults()
    store = await StateStore.open(":memory:")
    runner = ProfileRunner("long", settings.side("long"), ex, store, EventBus(), list(symbols), settings.glob)

    async def cycle(now):
        snap = await read_snapshot(ex, list(symbols), now)
        ci = CycleInput(snap, {s: market(s) for s in symbols}, {}, {s: MarketContext() for s in symbols},
                        None, None, set(), new_candle=False)
        return await runner.cycle(ci)

    return runner, store, cycle


async def _stops(sim, symbol=A):
    return [o for o in await sim.fetch_open_orders() if o.kind == "stop_loss" and o.symbol == symbol]


async def test_the_stop_is_resized_when_the_position_grows():
    sim = new_sim()
    _, store, cycle = await _runner_on(sim)
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    await cycle(T0)
    assert [s.amount for s in await _stops(sim)] == [Dec(10)]
    sim._positions[A] = _SimPosition(Dec(15), Dec(100))  # an averaging rung filled at the same price
    await cycle(T0 + 3_001)
    assert [s.amount for s in await _stops(sim)] == [Dec(15)]
    await store.close()


async def test_the_trigger_is_recomputed_from_the_new_entry_after_averaging():
    from engine.exits.hard_stop import stop_distance, stop_trigger

    sim = new_sim()
    _, store, cycle = await _runner_on(sim)
    p = Settings.defaults().side("long")
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    await cycle(T0)
    first = stop_trigger("long", Dec(100), stop_distance(p, None), market(A))
    assert [s.trigger_price for s in await _stops(sim)] == [first]
    sim._positions[A] = _SimPosition(Dec(10), Dec(103))  # the entry moved (averaged)
    sim.set_price(A, "103", T0 + 3_001)
    await cycle(T0 + 3_001)
    want = stop_trigger("long", Dec(103), stop_distance(p, None), market(A))
    assert want != first
    assert [s.trigger_price for s in await _stops(sim)] == [want]
    await store.close()


async def test_a_moved_stop_is_never_cancelled_before_its_replacement_rests():
    from engine.runtime.chaos import StepChecker

    sim = new_sim()
    checker = StepChecker(sim, sim, reserve=False, bound_ms=360_000)
    _, store, cycle = await _runner_on(checker)
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    await cycle(T0)
    old = await _stops(sim)
    sim._positions[A] = _SimPosition(Dec(10), Dec(103))  # the entry moved: the trigger follows
    sim.set_price(A, "103", T0 + 3_001)
    await cycle(T0 + 3_001)
    new = await _stops(sim)
    assert len(new) == 1 and new[0].trigger_price > old[0].trigger_price
    assert checker.calls >= 4 and checker.violations == []
    sim._positions[A] = _SimPosition(Dec(14), Dec(103))  # and it grows: resized the same way
    await cycle(T0 + 6_007)
    assert [s.amount for s in await _stops(sim)] == [Dec(14)]
    assert checker.violations == []
    await store.close()


class TimesOutOn:
    """Stops on one symbol time out after the retries (a transient failure reaching the engine)."""

    def __init__(self, sim, symbol):
        self.sim, self.symbol = sim, symbol

    def __getattr__(self, name):
        return getattr(self.sim, name)

    async def place_stop_loss(self, symbol, position_side, amount, trigger, cid):
        if symbol == self.symbol:
            raise E.ExchangeTimeout("stop timed out", venue="sim")
        return await self.sim.place_stop_loss(symbol, position_side, amount, trigger, cid)


async def test_a_timeout_on_one_stop_does_not_skip_the_stops_after_it():
    sim = new_sim()
    _, store, cycle = await _runner_on(TimesOutOn(sim, A), symbols=(A, C))
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    sim._positions[C] = _SimPosition(Dec(100), Dec(2))
    await cycle(T0)  # A's stop (first in order) times out; C's stop must still go out
    assert await _stops(sim, A) == []
    assert [s.amount for s in await _stops(sim, C)] == [Dec(100)]
    await store.close()


async def test_the_unprotected_close_out_time_runs_across_a_restart(tmp_path):
    """A restart must not start the bounded time again: a bot that crash-loops every 50 s
    would otherwise leave a position without a stop for ever (issue 17, item 1)."""
    sim = new_sim()
    open_positions(sim)
    ex = RefusesStops(sim, A)
    db = tmp_path / "state.sqlite"
    store = await StateStore.open(db)
    engine = await new_engine(ex, store)
    limit_ms = int(engine.settings.side("long").hard_stop_unprotected_close_after_sec * 1000)
    await engine.step(T0, {}, new_candle=True)
    assert A in engine.risk_blocked()
    await store.close()  # killed; it comes back 40 s later, 3/4 of the way through the limit

    t = T0 + limit_ms * 3 // 4 + 977
    store = await StateStore.open(db)
    engine = await new_engine(ex, store)
    assert A in engine.risk_blocked()  # known to lack a stop before the first step
    sim.set_price(A, "99.9", t)
    await engine.step(t, {}, new_candle=True)
    assert A in {p.symbol for p in await sim.fetch_positions()}
    t = T0 + limit_ms + 1_231  # past the limit counted from the first sighting, not the restart
    sim.set_price(A, "99.9", t)
    await engine.step(t, {}, new_candle=True)
    assert A not in {p.symbol for p in await sim.fetch_positions()}
    await store.close()
