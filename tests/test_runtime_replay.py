"""End-to-end replays of the real bundled candles through the simulated exchange.

After every step the account must satisfy the invariants that protect money: every position
has an exchange-side stop sized to it, no symbol has positions or orders of both sides, close
orders never exceed the position, and margin caps hold. A replay interrupted by crashes at
random points (before a call reaches the exchange, or after it was carried out but before the
reply arrived) and restarted from the state file must end exactly like the uninterrupted run.
"""

import random
from decimal import Decimal

import pytest

from engine.exchange.sim import SimConfig
from engine.runtime.events import EventBus, OrderEvent, TradeClosed
from engine.runtime.replay import DEMO_SYMBOLS, run_replay
from engine.runtime.snapshot import order_profile
from engine.settings import Settings

SYMBOLS = DEMO_SYMBOLS[:6]
STEPS = 2600  # ~9 days of 5m candles: past the 1h EMA120 warm-up (5 days) with trading after


def sim_config(settings: Settings) -> SimConfig:
    return SimConfig(initial_wallet=Decimal("1000"), stops_reserve_closeable=False)


class Invariants:
    def __init__(self, settings: Settings):
        self.p = settings.side("long")
        self.sim = None
        self.checked = 0
        self.max_positions = 0
        self.peak_equity = Decimal(0)

    def wrap(self, sim):
        self.sim = sim
        return sim

    async def __call__(self, step: int, total: int) -> None:
        sim = self.sim
        positions = {p.symbol: p for p in await sim.fetch_positions()}
        orders = [o for o in await sim.fetch_open_orders() if o.is_open]
        equity = sim.equity()
        self.peak_equity = max(self.peak_equity, equity)
        self.max_positions = max(self.max_positions, len(positions))
        lev = min(Decimal(self.p.leverage), sim.config.default_leverage)
        total_committed = Decimal(0)
        for symbol in {o.symbol for o in orders} | set(positions):
            pos = positions.get(symbol)
            mine = [o for o in orders if o.symbol == symbol]
            stops = [o for o in mine if o.kind == "stop_loss"]
            closes = [o for o in mine if o.reduce_only and o.kind == "limit"]
            entries = [o for o in mine if not o.reduce_only]
            market = sim.market(symbol)
            if pos is not None:
                # an exchange-side stop, sized to the position, on the losing side
                assert len(stops) == 1, (step, symbol, stops)
                assert stops[0].amount == pos.contracts, (step, symbol, stops[0], pos)
                assert stops[0].reduce_only
                assert order_profile(stops[0]) == pos.side
                assert sum(o.remaining for o in closes) <= pos.contracts
                assert all(order_profile(o) == pos.side for o in mine), (step, symbol, mine)
            else:
                assert not stops and not closes, (step, symbol, mine)
            # never both sides on one coin
            assert len({order_profile(o) for o in entries}) <= 1, (step, symbol, entries)
            committed = sum((o.remaining * o.price * market.contract_size for o in entries), Decimal(0))
            if pos is not None:
                committed += pos.contracts * pos.entry_price * market.contract_size
            margin = committed / lev
            assert margin <= self.peak_equity * Decimal(str(self.p.ema_max_position_margin_fraction)) * Decimal(
                "1.001"), (step, symbol, margin)
            total_committed += margin
        assert total_committed <= self.peak_equity * Decimal(str(self.p.ema_max_total_margin_fraction)) * Decimal(
            "1.001")
        self.checked += 1


async def test_replay_keeps_every_invariant_and_trades():
    settings = Settings.defaults()
    inv = Invariants(settings)
    bus = EventBus()
    seen = {"stop": 0, "entry": 0, "exit": 0, "trades": 0}

    def count(ev):
        if isinstance(ev, OrderEvent) and ev.action == "placed":
            seen[ev.purpose] = seen.get(ev.purpose, 0) + 1
        elif isinstance(ev, TradeClosed):
            seen["trades"] += 1

    bus.subscribe(count)
    summary = await run_replay(settings, symbols=SYMBOLS, max_steps=STEPS, bus=bus,
                               sim_config=sim_config(settings), exchange_wrapper=inv.wrap, on_step=inv)
    assert inv.checked == STEPS
    # the run is not trivially empty: it opened, protected and closed positions
    assert seen["entry"] > 10 and seen["stop"] > 10 and seen["exit"] > 10
    assert summary.trades == seen["trades"] > 5
    assert inv.max_positions >= 2
    assert sum(summary.rejections.values()) > 0


def _result(summary):
    return ([{k: v for k, v in t.items()} for t in summary.trade_rows], summary.end_equity)


@pytest.mark.parametrize("after_call", [False, True], ids=["crash-before-call", "crash-after-call"])
async def test_crash_and_restart_equals_uninterrupted_run(tmp_path, after_call):
    settings = Settings.defaults()
    base = await run_replay(settings, symbols=SYMBOLS, max_steps=STEPS, db_path=tmp_path / "a.sqlite",
                            sim_config=sim_config(settings))
    assert base.trades > 5
    rng = random.Random(1234 + after_call)
    # Crash at random order-changing calls (a run makes ~265 of them among ~21k reads).
    crash_at = set(rng.sample(range(1, 260), 25))
    crashed = await run_replay(settings, symbols=SYMBOLS, max_steps=STEPS, db_path=tmp_path / "b.sqlite",
                               sim_config=sim_config(settings), crash_at=crash_at, crash_after_call=after_call,
                               crash_writes_only=True)
    assert crashed.restarts >= 20  # the crashes really happened (a few may repeat mid-restart)
    assert _result(crashed) == _result(base)
