"""Chaos runs: a replay through an exchange that fails on purpose, checked for what matters.

Faults (seeded, reproducible): timeouts, network errors, rate limits, rejected orders and lost
replies from `FaultInjectingExchange`, behind the same retrying layer the live adapter uses;
process kills from `CrashingExchange`. After every step that saw no new fault (the system had
a chance to recover) the account must hold: every position has one exchange-side stop of its
size, no client order id was used twice, caps hold. `run_chaos` returns what happened;
bench/chaos_matrix.py prints the matrix of faults tried and survived.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.exchange.faults import FaultInjectingExchange, FaultRates
from engine.exchange.resilient import RetryingExchange
from engine.exchange.retry import RetryPolicy
from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.settings import Settings

from .events import ErrorEvent, EventBus
from .replay import DEMO_SYMBOLS, run_replay
from .snapshot import order_profile


@dataclass
class ChaosResult:
    name: str
    seed: int
    steps: int
    faults: int
    restarts: int
    errors: int
    checks: int
    violations: list[str] = field(default_factory=list)
    trades: int = 0

    @property
    def survived(self) -> bool:
        return not self.violations


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


async def check_account(sim: SimulatedExchange, p: Any) -> list[str]:
    """The invariants that protect money, as messages (empty when all hold)."""
    out: list[str] = []
    positions = {x.symbol: x for x in await sim.fetch_positions()}
    orders = [o for o in await sim.fetch_open_orders() if o.is_open]
    for symbol, pos in positions.items():
        stops = [o for o in orders if o.symbol == symbol and o.kind == "stop_loss"]
        if len(stops) != 1 or stops[0].amount != pos.contracts:
            out.append(f"{symbol}: position {pos.contracts} has stops {[s.amount for s in stops]}")
        closes = sum((o.remaining for o in orders if o.symbol == symbol and o.reduce_only and o.kind == "limit"),
                     Decimal(0))
        if closes > pos.contracts:
            out.append(f"{symbol}: close orders {closes} exceed position {pos.contracts}")
    for symbol in {o.symbol for o in orders}:
        sides = {order_profile(o) for o in orders if o.symbol == symbol and not o.reduce_only}
        if len(sides) > 1:
            out.append(f"{symbol}: entry orders of both sides")
    ids = [o.client_order_id for o in sim.all_orders()]
    if len(ids) != len(set(ids)):
        out.append("a client order id was used for two orders")
    return out


async def run_chaos(settings: Settings, *, name: str, rates: FaultRates, seed: int, db_path: str | Path,
                    kills: int = 0, steps: int = 2000, symbols: list[str] | None = None) -> ChaosResult:
    """One chaos replay. `kills` process kills fall on random order-changing calls (seeded); a
    replay of ~2000 steps makes roughly 200-300 of them."""
    box: dict[str, Any] = {}
    bus = EventBus()
    errors = {"n": 0}
    bus.subscribe(lambda ev: errors.__setitem__("n", errors["n"] + 1) if isinstance(ev, ErrorEvent) else None)

    def wrap(sim: SimulatedExchange) -> Any:
        box["sim"] = sim
        faulty = FaultInjectingExchange(sim, seed=seed, rates=rates)
        box["faulty"] = faulty
        return RetryingExchange(faulty, RetryPolicy(max_attempts=4, seed=seed, sleep=_no_sleep))

    result = ChaosResult(name, seed, 0, 0, 0, 0, 0)
    last_faults = {"n": 0}

    async def on_step(done: int, total: int) -> None:
        result.steps = done
        injected = len(box["faulty"].injected)
        if injected == last_faults["n"]:  # a calm step: the system must be whole again
            result.checks += 1
            for v in await check_account(box["sim"], settings.side("long")):
                if len(result.violations) < 20:
                    result.violations.append(f"step {done}: {v}")
        last_faults["n"] = injected

    rng = random.Random(seed)
    crash_at = set(rng.sample(range(1, 250), kills)) if kills else None
    summary = await run_replay(settings, symbols=symbols or DEMO_SYMBOLS[:6], max_steps=steps, bus=bus,
                               db_path=db_path, exchange_wrapper=wrap, on_step=on_step,
                               sim_config=SimConfig(initial_wallet=Decimal("1000"), stops_reserve_closeable=False),
                               crash_at=crash_at, crash_writes_only=True)
    result.faults = len(box["faulty"].injected)
    result.restarts = summary.restarts
    result.errors = errors["n"]
    result.trades = summary.trades
    return result


#: scenario -> (fault rates, number of process kills)
SCENARIOS: dict[str, tuple[FaultRates, int]] = {
    "timeouts": (FaultRates(timeout=0.05), 0),
    "network errors": (FaultRates(network=0.05), 0),
    "rate limits": (FaultRates(rate_limit=0.05), 0),
    "rejected orders": (FaultRates(reject=0.2), 0),
    "lost replies": (FaultRates(lost_response=0.2), 0),
    "process kills": (FaultRates(), 25),
    "everything at once": (FaultRates(timeout=0.03, network=0.03, rate_limit=0.03, reject=0.1,
                                      lost_response=0.1), 15),
}
