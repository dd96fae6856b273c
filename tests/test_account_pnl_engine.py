"""The account-PnL guard through the engine (issue 18): profit unload, account trailing stop,
averaging near a trough, the series shared by both profiles and kept across a restart.

The Engine runs on the simulator with an unaligned, jittered clock (steps 41..53 s apart); a
long on A (10 @ 100) and a short on B (20 @ 50) make the account's open PnL. Closes are
reduce-only market orders through the executor; the hard stop of every position stays and
follows the size after each step."""

from __future__ import annotations

from decimal import Decimal as Dec
from types import SimpleNamespace as NS

import pytest

from engine.exchange import errors as E
from engine.exchange.sim import _SimPosition
from engine.risk import account_pnl as ap
from engine.runtime.engine import ACCOUNT_PNL_KEY, Engine
from engine.runtime.events import EventBus, OrderEvent, Repair, TradeClosed
from engine.runtime.positions import MarketContext
from engine.runtime.profile import CycleInput
from engine.runtime.snapshot import read_snapshot
from engine.settings import Settings
from engine.store.state import ACCOUNT_KEY, StateStore

from test_runtime_protection import A, B, C, D, held_long_runner, market, new_sim, T0
from test_runtime_regressions import recovered_gates

MIN = 60_000
BASE = dict(hard_stop_loss_pct=0.08, hard_stop_loss_atr_enabled=False, hard_stop_loss_min_emergency_pct=0.12,
            enable_controlled_loss_exit=False, exit_coverage_alert_minutes=0.0, soft_defensive_exit_enabled=False)


def settings(**kw) -> Settings:
    s = Settings.defaults()
    return Settings(s.glob, {side: p.model_copy(update={**BASE, **kw}) for side, p in s.profiles.items()})


def ramp(t: int, points: list[tuple[float, float]]) -> float:
    """Piecewise-linear value at t (minutes from T0) through (minute, value) points."""
    m = (t - T0) / MIN
    if m <= points[0][0]:
        return points[0][1]
    for (m0, v0), (m1, v1) in zip(points, points[1:]):
        if m <= m1:
            return v0 + (v1 - v0) * (m - m0) / (m1 - m0)
    return points[-1][1]


async def assert_stops_follow(sim) -> None:
    """Every position has exactly one reduce-only stop of its size."""
    orders = [o for o in await sim.fetch_open_orders() if o.kind == "stop_loss"]
    for p in await sim.fetch_positions():
        stops = [o for o in orders if o.symbol == p.symbol]
        assert [o.amount for o in stops] == [p.contracts] and all(o.reduce_only for o in stops), (p, stops)


async def run(s: Settings, path_a, path_b, minutes: float, *, sim=None, store=None, t_start=T0, seen=None,
              close_store=True):
    """Steps of the engine while A and B follow their price paths; returns the sim, events,
    (t, A contracts, B contracts) per step and the engine."""
    if sim is None:
        sim = new_sim()
        sim._positions[A] = _SimPosition(Dec(10), Dec(100))
        sim._positions[B] = _SimPosition(Dec(-20), Dec(50))
    store = store or await StateStore.open(":memory:", inline=True)
    bus = EventBus()
    seen = [] if seen is None else seen
    bus.subscribe(seen.append)
    engine = Engine(s, sim, store, bus, symbols=[A, B, C, D])
    await engine.start()
    log = []
    t, i = t_start, 0
    while t < T0 + minutes * MIN:
        sim.set_price(A, f"{ramp(t, path_a):.2f}", t)
        sim.set_price(B, f"{ramp(t, path_b):.2f}", t)
        await engine.step(t, {})
        pos = {p.symbol: p.contracts for p in await sim.fetch_positions()}
        log.append((t, pos.get(A, Dec(0)), pos.get(B, Dec(0))))
        await assert_stops_follow(sim)
        i += 1
        t += 41_000 + (i * 7_919) % 12_000  # 41..53 s, jittered
    if close_store:
        await store.close()
    return sim, seen, log, engine


def closes(seen, prefix):
    return [e for e in seen if isinstance(e, OrderEvent) and e.purpose == "close" and e.action == "placed"
            and e.reason.startswith(prefix)]


UNLOAD = dict(account_profit_unload_enabled=True)
UP_A = [(0, 100.0), (10, 101.2), (40, 101.2)]  # the long gains 12 USDT over 10 minutes
FLAT_B = [(0, 50.0), (40, 50.0)]


# -- profit unload -------------------------------------------------------------------------------
async def test_profit_unload_closes_a_share_of_the_winner_reduce_only_and_keeps_its_stop():
    sim, seen, log, _ = await run(settings(**UNLOAD), UP_A, FLAT_B, minutes=25)
    unloads = closes(seen, "account profit unload")
    assert unloads and {e.symbol for e in unloads} == {A}  # B is flat: not in profit
    assert unloads[0].amount == Dec(2)  # 25% of 10, rounded down to the contract step
    assert all(e.reduce_only for e in unloads)
    # the account PnL reached ACCOUNT_PROFIT_UNLOAD_MIN_PNL_QUOTE (5) at 100.5, ~4 min in
    assert 4 * MIN <= unloads[0].ts_ms - T0 < 6 * MIN
    # ACCOUNT_PROFIT_UNLOAD_COOLDOWN_SEC: at least 300 s between two unloads of A
    assert all(b.ts_ms - a.ts_ms >= 300_000 for a, b in zip(unloads, unloads[1:])) and len(unloads) >= 2
    sizes = [a for _, a, _ in log]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < 10 and sizes[-1] > 0
    assert all(b == -20 or b == 20 for _, _, b in log)
    assert not [e for e in seen if isinstance(e, TradeClosed)]  # partial: no trade closed
    # the stop was never cancelled by the unload (only resized by the protection pass)
    assert not [e for e in seen if isinstance(e, OrderEvent) and e.action == "cancelled" and e.purpose == "stop"
                and "account" in e.reason]


@pytest.mark.parametrize("kw", [{"account_profit_unload_enabled": False}, {"account_pnl_enabled": False},
                                {"account_profit_unload_min_pnl_quote": 20.0},
                                {"account_profit_unload_min_position_pnl_quote": 20.0}],
                         ids=["off", "pnl-off", "min-pnl", "min-position-pnl"])
async def test_no_profit_unload_without_its_conditions(kw):
    sim, seen, log, _ = await run(settings(**{**UNLOAD, **kw}), UP_A, FLAT_B, minutes=25)
    assert not closes(seen, "account profit unload") and log[-1][1] == 10


async def test_no_unload_while_the_account_pnl_is_not_at_the_top_of_its_range():
    # up to +12 then back to +6: above the minimums, below the 75th percentile of the window
    down = [(0, 100.0), (10, 101.2), (12, 101.2), (14, 100.6), (40, 100.6)]
    s = settings(**UNLOAD, account_profit_unload_min_pnl_quote=13.0)  # nothing on the way up
    sim, seen, log, _ = await run(s, down, FLAT_B, minutes=30)
    assert not closes(seen, "account profit unload")
    s = settings(**UNLOAD, account_profit_unload_min_pnl_quote=5.5, account_profit_unload_percentile=0.0,
                 account_profit_unload_cooldown_sec=3600.0)
    sim, seen, log, _ = await run(s, down, FLAT_B, minutes=30)
    assert closes(seen, "account profit unload")  # the percentile rule was what held it back


async def test_both_profiles_share_one_account_series():
    # A +3 and B +3: neither alone reaches the 5 USDT minimum, the account does
    a3 = [(0, 100.0), (6, 100.3), (30, 100.3)]
    b3 = [(0, 50.0), (6, 49.85), (30, 49.85)]
    s = settings(**UNLOAD, account_profit_unload_min_position_pnl_rate=0.0)
    sim, seen, log, engine = await run(s, a3, b3, minutes=15)
    assert {e.symbol for e in closes(seen, "account profit unload")} == {A, B}
    assert engine.account_pnl is not None and 5.0 <= max(x.pnl for x in engine.account_pnl.samples) <= 6.5
    sim, seen, log, _ = await run(s, a3, FLAT_B, minutes=15)
    assert not closes(seen, "account profit unload")


async def test_the_full_unload_level_closes_the_whole_position():
    s = settings(**UNLOAD, account_profit_unload_full_pnl_quote=8.0)
    sim, seen, log, _ = await run(s, UP_A, FLAT_B, minutes=25)
    unloads = closes(seen, "account profit unload")
    # 2 of 10 at +5; after the cooldown the account PnL (+9.6) is past the full level: the rest
    assert [e.amount for e in unloads] == [Dec(2), Dec(8)] and log[-1][1] == 0
    [trade] = [e for e in seen if isinstance(e, TradeClosed)]
    assert trade.symbol == A and trade.reason == "account_profit_unload"


# -- account trailing stop -----------------------------------------------------------------------
TRAIL = dict(account_pnl_trailing_enabled=True, account_pnl_trailing_activation_rate=0.04,
             account_pnl_trailing_stop_rate=0.025)
# both in profit up to 5% of the 2000 notional at 10 min, then back towards 1%
PEAK_A = [(0, 100.0), (10, 105.0), (20, 101.0), (40, 101.0)]
PEAK_B = [(0, 50.0), (10, 47.5), (20, 49.5), (40, 49.5)]


async def test_the_account_trailing_stop_closes_everything_when_the_rate_falls_back():
    sim, seen, log, _ = await run(settings(**TRAIL), PEAK_A, PEAK_B, minutes=30)
    fired = closes(seen, "account PnL trailing stop")
    assert {e.symbol for e in fired} == {A, B}
    # 2.5% of ~2000 = ~50 USDT: reached on the way down, ~15 min in
    assert all(13 * MIN <= e.ts_ms - T0 < 17 * MIN for e in fired)
    assert await sim.fetch_positions() == []
    trades = [e for e in seen if isinstance(e, TradeClosed)]
    assert {t.reason for t in trades} == {"account_pnl_trailing"} and len(trades) == 2
    assert all(t.pnl > 0 for t in trades)  # a profit lock
    assert [e for e in seen if isinstance(e, Repair) and e.problem == "account PnL trailing stop"]


@pytest.mark.parametrize("kw", [{"account_pnl_trailing_enabled": False},
                                {"account_pnl_trailing_activation_rate": 0.06},
                                {"account_pnl_trailing_stop_rate": 0.005},
                                {"account_pnl_trailing_min_pnl_quote": 60.0}],
                         ids=["off", "never-armed", "stop-lower", "min-pnl"])
async def test_no_account_trailing_stop_without_its_conditions(kw):
    sim, seen, log, _ = await run(settings(**{**TRAIL, **kw}), PEAK_A, PEAK_B, minutes=30)
    assert not closes(seen, "account PnL trailing stop") and log[-1][1:] == (10, 20)


async def test_the_armed_trailing_stop_survives_a_restart(tmp_path):
    """Killed after the peak, back at 3.5% (below the activation): the stored series still
    knows the 5% peak, so the fall to 2.5% closes everything. A fresh series would not."""
    db = tmp_path / "state.sqlite"
    sim = new_sim()
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    sim._positions[B] = _SimPosition(Dec(-20), Dec(50))
    seen: list = []
    await run(settings(**TRAIL), PEAK_A, PEAK_B, minutes=13, sim=sim, store=await StateStore.open(db), seen=seen)
    assert not closes(seen, "account PnL trailing stop")
    store = await StateStore.open(db)
    stored = await store._get(ACCOUNT_KEY, ACCOUNT_PNL_KEY)
    assert stored and max(p for _, p, _ in stored["samples"]) > 90
    sim2, seen, log, engine = await run(settings(**TRAIL), PEAK_A, PEAK_B, minutes=30, sim=sim, store=store,
                                        t_start=T0 + 13 * MIN + 2_711)
    assert {e.symbol for e in closes(seen, "account PnL trailing stop")} == {A, B}
    assert await sim.fetch_positions() == []


class RefusesCloses:
    """The venue refuses every market close while `refuse` is set."""

    def __init__(self, sim):
        self.sim, self.refuse, self.refused = sim, True, 0

    def __getattr__(self, name):
        return getattr(self.sim, name)

    async def close_reduce_only_market(self, *a, **k):
        if self.refuse:
            self.refused += 1
            raise E.InvalidOrder("close rejected", venue="sim")
        return await self.sim.close_reduce_only_market(*a, **k)


async def test_a_fired_trailing_stop_keeps_closing_until_done_even_across_a_restart(tmp_path):
    db = tmp_path / "state.sqlite"
    sim = new_sim()
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    sim._positions[B] = _SimPosition(Dec(-20), Dec(50))
    venue = RefusesCloses(sim)
    seen: list = []
    await run(settings(**TRAIL), PEAK_A, PEAK_B, minutes=19, sim=venue, store=await StateStore.open(db), seen=seen)
    assert venue.refused >= 4  # fired ~15 min in; both closes sent again at every step
    assert {p.symbol for p in await sim.fetch_positions()} == {A, B}
    venue.refuse = False  # killed; back a minute later, the venue accepts closes again
    sim2, seen, log, engine = await run(settings(**TRAIL), PEAK_A, PEAK_B, minutes=22, sim=venue,
                                        store=await StateStore.open(db), t_start=T0 + 20 * MIN + 1_907)
    assert {e.symbol for e in closes(seen, "account PnL trailing stop")} == {A, B}
    assert await sim.fetch_positions() == []


async def test_the_window_setting_bounds_the_series():
    s = settings(account_pnl_window_minutes=5.0, account_pnl_sample_interval_sec=60.0)
    sim, seen, log, engine = await run(s, UP_A, FLAT_B, minutes=20)
    ts = [x.ts_ms for x in engine.account_pnl.samples]
    assert ts[-1] - ts[0] <= 5 * MIN and all(b - a >= 60_000 for a, b in zip(ts, ts[1:]))
    assert 3 <= len(ts) <= 6
    s = settings(account_pnl_sample_interval_sec=0.0)  # every step
    sim, seen, log, engine = await run(s, UP_A, FLAT_B, minutes=5)
    assert len(engine.account_pnl.samples) == len(log)


# -- averaging near a trough ---------------------------------------------------------------------
AVG = dict(account_averaging_enabled=True, account_averaging_min_samples=4, ema_averaging_interval_hours=0.0)


async def averaging_add(s: Settings, pnls: list[float] | None):
    """A long 10 @ 100 at 97 (3% down, an add is due); the account series holds `pnls` (the
    engine's readings, one every ~31 s); the cycle on the next candle plans the add or not.
    Returns the add's amount (None: no add)."""
    p = s.side("long")
    runner, sim, store, seen = await held_long_runner(s)
    series = ap.AccountPnlSeries(*ap.series_params([p])) if pnls is not None else None
    t = T0
    for i, v in enumerate(pnls or ()):
        series.observe(t + i * 31_013, v, 970.0)
    t = T0 + len(pnls or ()) * 31_013 + 1_337
    d = NS(symbol=A, ts_ms=t - 97_000, score=0.1, valid=True, entry_valid=True, add_valid=True,
           gates=recovered_gates(), features=None, benchmark=None)
    none = lambda decisions, ctx, prof: NS(decisions=[], chosen_symbols=(), chosen=[])  # noqa: E731
    for k, new_candle in enumerate((False, True)):  # the first cycle places the stop and the ladder
        now = t + k * 43_001
        sim.set_price(A, "97", now)
        snap = await read_snapshot(sim, [A], now)
        await runner.cycle(CycleInput(snap, {A: market(A)}, {A: d}, {A: MarketContext(atr_rate=0.001)}, none,
                                      lambda **kw: None, set(), new_candle=new_candle, account=series))
    await store.close()
    adds = [e for e in seen if isinstance(e, OrderEvent) and e.purpose == "add" and e.action == "placed"]
    return adds[0].amount if adds else None


async def test_averaging_is_unchanged_without_the_account_guard():
    assert await averaging_add(settings(ema_averaging_interval_hours=0.0), [0.0, -10.0, -20.0, -30.0]) is not None


async def test_averaging_waits_while_the_account_pnl_falls_and_adds_near_the_trough_once_it_bounces():
    falling = [0.0, -10.0, -20.0, -30.0, -31.0]
    bounced = [0.0, -10.0, -20.0, -30.0, -31.0, -29.5]
    far = [-31.0, -20.0, -10.0, 0.0, 5.0]
    assert await averaging_add(settings(**AVG), falling) is None
    assert await averaging_add(settings(**AVG), far) is None  # far above its trough
    assert await averaging_add(settings(**AVG), bounced) is not None
    # too few samples: the guard does not apply yet
    assert await averaging_add(settings(**{**AVG, "account_averaging_min_samples": 10}), falling) is not None


async def test_the_budget_scale_shrinks_the_add():
    bounced = [0.0, -10.0, -20.0, -30.0, -31.0, -29.5]
    full = await averaging_add(settings(ema_averaging_interval_hours=0.0), bounced)
    half = await averaging_add(settings(**AVG), bounced)  # ACCOUNT_AVERAGING_BUDGET_SCALE 0.5
    fifth = await averaging_add(settings(**AVG, account_averaging_budget_scale=0.2), bounced)
    assert full is not None and half is not None and fifth is not None
    assert fifth < half < full and half <= full / 2 + 1
