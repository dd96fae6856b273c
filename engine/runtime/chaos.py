"""Chaos runs: a replay through an exchange that fails on purpose, checked for what matters.

Faults (seeded, reproducible) come in at two places: under the retrying layer the live adapter
uses (`FaultInjectingExchange` behind `RetryingExchange`, mostly absorbed by it), and at the
engine's own boundary (a second injector above the retry layer, whose faults reach the engine
as they would when the retries run out), with process kills from `CrashingExchange` and, in
some scenarios, restarts that come back a few candles later (fills happen while the bot is
down), and HTX-like closeable reservation (a stop reserves the amount it closes).

What is checked, and where:

- after EVERY order call the engine makes (`StepChecker`, the layer the engine talks to): a
  stop is never cancelled while it is the only protection of a position that stays open (on a
  reserving venue: unless only stop placements and closes follow until the position is
  protected or closed again, within the same step); no two
  identical orders rest at once; no coin has entry orders of both sides; close orders never
  exceed the position; a position without a covering stop is tolerated only for the bounded
  close-out time (HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC) plus two steps (the close-out step
  and one retry of a refused close);
- on the calls SENT to the venue (`SentLog`, right above the simulator, below the retries):
  a client order id is never sent for two different orders (the simulator would answer the
  second with the first order, which is why the check cannot look at what it returns);
- after every step that saw no new fault: every position has one stop of its size (as before).

`run_chaos` returns what happened; bench/chaos_matrix.py prints the matrix.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.exchange.faults import FaultInjectingExchange, FaultRates
from engine.exchange.resilient import RetryingExchange
from engine.exchange.retry import RetryPolicy
from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.exchange.types import closing_side
from engine.settings import Settings

from .crash import Passthrough
from .events import ErrorEvent, EventBus
from .replay import DEMO_SYMBOLS, run_replay
from .snapshot import order_profile

ORDER_CALLS = ("place_", "cancel_", "close_", "amend_")


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
    faults_inner: int = 0  # under the retry layer
    faults_outer: int = 0  # at the engine's boundary
    reached_engine: int = 0  # injected faults the engine saw as exceptions
    order_calls: int = 0  # order calls checked one by one
    unprotected_steps: int = 0  # steps that ended with a position without a covering stop
    beyond_bound: int = 0  # ... of those, past the bounded close-out time
    down_steps: int = 0  # steps the killed process was down with a position unprotected
    reserve: bool = False

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
    return out


class SentLog(Passthrough):
    """Right above the venue: every placement as sent. A client order id sent a second time
    must name the same order (same symbol, kind, side, reduce-only, amount, price/trigger)."""

    def __init__(self, inner: Any):
        super().__init__(inner)
        self.first: dict[int, tuple[Any, ...]] = {}
        self.sent = 0
        self.violations: list[str] = []

    def _sent(self, cid: int, params: tuple[Any, ...]) -> None:
        self.sent += 1
        prev = self.first.setdefault(cid, params)
        if prev != params:
            self.violations.append(f"client id {cid} sent for two different orders: {prev} then {params}")

    async def place_post_only(self, symbol, side, amount, price, client_order_id, *, stop_loss=None):
        self._sent(client_order_id, ("limit", symbol, side, False, Decimal(amount), Decimal(price)))
        return await self._inner.place_post_only(symbol, side, amount, price, client_order_id, stop_loss=stop_loss)

    async def place_reduce_only_limit(self, symbol, position_side, amount, price, client_order_id):
        self._sent(client_order_id, ("limit", symbol, closing_side(position_side), True, Decimal(amount),
                                     Decimal(price)))
        return await self._inner.place_reduce_only_limit(symbol, position_side, amount, price, client_order_id)

    async def close_reduce_only_market(self, symbol, position_side, amount, client_order_id):
        self._sent(client_order_id, ("market", symbol, closing_side(position_side), True, Decimal(amount), None))
        return await self._inner.close_reduce_only_market(symbol, position_side, amount, client_order_id)

    async def open_market(self, symbol, side, amount, client_order_id):
        self._sent(client_order_id, ("market", symbol, side, False, Decimal(amount), None))
        return await self._inner.open_market(symbol, side, amount, client_order_id)

    async def place_stop_loss(self, symbol, position_side, amount, trigger_price, client_order_id):
        self._sent(client_order_id, ("stop_loss", symbol, closing_side(position_side), True, Decimal(amount),
                                     Decimal(trigger_price)))
        return await self._inner.place_stop_loss(symbol, position_side, amount, trigger_price, client_order_id)


class StepChecker(Passthrough):
    """The layer the engine talks to: the account is checked after every order call.

    `reserve`: the venue reserves the closeable amount for stops, so replacing a stop or
    closing at market may need the old stop cancelled first; then only stop placements and
    closes may follow until the position is protected or closed, within the same step. `bound_ms`: how long a position may go without a
    covering stop (the close-out time plus one step)."""

    def __init__(self, inner: Any, sim: SimulatedExchange, *, reserve: bool, bound_ms: int):
        super().__init__(inner)
        self.sim = sim
        self.reserve = reserve
        self.bound_ms = bound_ms
        self.calls = 0
        self.reached = 0
        self.since: dict[str, int] = {}  # symbol -> first time seen without a covering stop
        self.must_cover: dict[str, str] = {}  # symbol -> why the next order call must protect it
        self.after_restart: set[str] = set()  # ... and the process was killed before it did
        self.violations: list[str] = []
        self.unprotected_steps = 0
        self.beyond_bound = 0
        self.down_steps = 0  # steps the process was down with a position unprotected

    def __getattr__(self, item: str) -> Any:
        attr = getattr(self._inner, item)
        if not inspect.iscoroutinefunction(attr):
            return attr
        order_call = item.startswith(ORDER_CALLS)

        async def call(*args: Any, **kwargs: Any) -> Any:
            before = self.covered() if order_call else {}
            try:
                return await attr(*args, **kwargs)
            except Exception as exc:
                if "injected" in str(exc):
                    self.reached += 1
                raise
            finally:
                if order_call:
                    self.calls += 1
                    self.after_call(item, before)

        return call

    # -- the account as the venue has it (read directly: checking must not add faults)
    def covered(self) -> dict[str, bool]:
        out = {}
        for symbol, pos in self.sim._positions.items():
            need = abs(pos.contracts)
            out[symbol] = any(o.kind == "stop_loss" and o.reduce_only and o.status == "open" and o.remaining >= need
                              for o in self.sim._state[symbol].orders.values())
        return out

    def _violation(self, text: str) -> None:
        if len(self.violations) < 20:
            self.violations.append(f"t={self.sim.now_ms}: {text}")

    def after_call(self, item: str, before: dict[str, bool]) -> None:
        now = self.sim.now_ms
        cover = self.covered()
        for symbol, why in list(self.must_cover.items()):
            if cover.get(symbol, True):
                del self.must_cover[symbol]
            elif symbol in self.after_restart and item.startswith(("place_stop_loss", "close_reduce_only_market")):
                # the restarted process tried to protect it first; if the venue refused, the
                # engine backs off and the close-out bound (checked below) takes over
                del self.must_cover[symbol]
                self.after_restart.discard(symbol)
            elif not item.startswith(("cancel_", "place_stop_loss", "close_reduce_only_market")):
                self._violation(f"{symbol}: {why}, and the next order call ({item}) was not one that protects "
                                f"or closes it")
                del self.must_cover[symbol]
        if item.startswith("cancel_"):
            for symbol, was in before.items():
                if was and symbol in cover and not cover[symbol]:
                    why = "a stop was cancelled while it was the only protection of the open position"
                    if self.reserve:
                        self.must_cover[symbol] = why
                    else:
                        self._violation(f"{symbol}: {why}")
        for symbol, ok in cover.items():
            if ok:
                self.since.pop(symbol, None)
            else:
                start = self.since.setdefault(symbol, now)
                if now - start > self.bound_ms:
                    self._violation(f"{symbol}: without a covering stop for {(now - start) / 1000:.0f} s "
                                    f"(bound {self.bound_ms / 1000:.0f} s)")
        for symbol in [s for s in self.since if s not in cover]:
            del self.since[symbol]
        self._orders_sane()

    def _orders_sane(self) -> None:
        seen: set[tuple[Any, ...]] = set()
        for symbol, st in self.sim._state.items():
            orders = [o for o in st.orders.values() if o.status == "open"]
            for o in orders:
                if o.reduce_only and o.kind == "limit":
                    continue  # two exit tags may share a price after rounding: legitimate
                key = (o.symbol, o.kind, o.side, o.reduce_only, o.price, o.trigger_price, o.remaining)
                if key in seen:
                    self._violation(f"{symbol}: two identical {o.kind} orders rest at once ({o.side} {o.remaining})")
                seen.add(key)
            sides = {order_profile(o.snapshot()) for o in orders if not o.reduce_only}
            if len(sides) > 1:
                self._violation(f"{symbol}: entry orders of both sides")
            pos = self.sim._positions.get(symbol)
            closes = sum((o.remaining for o in orders if o.reduce_only and o.kind == "limit"), Decimal(0))
            if pos is not None and closes > abs(pos.contracts):
                self._violation(f"{symbol}: close orders {closes} exceed position {abs(pos.contracts)}")

    def end_of_step(self, running: bool = True) -> None:
        """Called between steps: count the steps that end with a position unprotected.
        `running=False`: the process was down this step (killed, not restarted yet); a fill
        meanwhile cannot be protected by anyone, so the bound counts from the restart. A kill
        between cancelling a stop (to make room on a reserving venue) and placing its
        replacement leaves the position bare while the process is down: then the restarted
        process's FIRST order call must be the one that protects it (checked in `after_call`)."""
        now = self.sim.now_ms
        cover = self.covered()
        naked = [s for s, ok in cover.items() if not ok]
        for symbol, why in list(self.must_cover.items()):
            if symbol in naked and not running:
                if symbol not in self.after_restart:
                    self.must_cover[symbol] = f"{why} when the process was killed, and after the restart"
                    self.after_restart.add(symbol)
                continue
            self.after_restart.discard(symbol)
            if symbol in naked:
                self._violation(f"{symbol}: {why}, and it was still without a stop at the end of the step")
            del self.must_cover[symbol]
        if not running:
            for s in naked:
                self.since[s] = now
            self.down_steps += bool(naked)
            return
        for s in naked:
            self.since.setdefault(s, now)
        if naked:
            self.unprotected_steps += 1
            late = [s for s in naked if now - self.since[s] > self.bound_ms]
            if late:
                self.beyond_bound += 1
                self._violation(f"{', '.join(late)}: a step ended past the close-out bound without a stop")


async def run_chaos(settings: Settings, *, name: str, rates: FaultRates, seed: int, db_path: str | Path,
                    kills: int = 0, steps: int = 2000, symbols: list[str] | None = None,
                    outer: FaultRates | None = None, reserve: bool = False,
                    restart_delay_steps: int = 0) -> ChaosResult:
    """One chaos replay. `kills` process kills fall on random order-changing calls (seeded); a
    replay of ~2000 steps makes roughly 200-300 of them. `outer`: faults at the engine's own
    boundary (above the retries). `reserve`: HTX-like closeable reservation by stops.
    `restart_delay_steps`: a killed process comes back that many candles later."""
    box: dict[str, Any] = {}
    bus = EventBus()
    errors = {"n": 0}
    bus.subscribe(lambda ev: errors.__setitem__("n", errors["n"] + 1) if isinstance(ev, ErrorEvent) else None)
    p = settings.side("long")
    step_ms = 300_000
    # The engine acts once per 5-minute step here (every few seconds live): the close-out
    # starts at the first step past the limit, and a close the venue refuses is sent again
    # (with a new stop attempt) at the next one.
    bound_ms = int(p.hard_stop_unprotected_close_after_sec * 1000) + 2 * step_ms

    def wrap(sim: SimulatedExchange) -> Any:
        box["sim"] = sim
        sent = SentLog(sim)
        faulty = FaultInjectingExchange(sent, seed=seed, rates=rates)
        retrying: Any = RetryingExchange(faulty, RetryPolicy(max_attempts=4, seed=seed, sleep=_no_sleep))
        top = retrying
        if outer is not None:
            top = FaultInjectingExchange(retrying, seed=seed + 10_007, rates=outer)
            box["outer"] = top
        checker = StepChecker(top, sim, reserve=reserve, bound_ms=bound_ms)
        box.update(sent=sent, faulty=faulty, checker=checker)
        return checker

    result = ChaosResult(name, seed, 0, 0, 0, 0, 0, reserve=reserve)
    last_faults = {"n": 0}

    def injected() -> int:
        return len(box["faulty"].injected) + (len(box["outer"].injected) if "outer" in box else 0)

    def on_engine(engine: Any) -> None:
        box["engine"], box["cycles"] = engine, engine.cycles

    async def on_step(done: int, total: int) -> None:
        result.steps = done
        engine = box.get("engine")
        running = engine is not None and engine.cycles != box["cycles"]
        if engine is not None:
            box["cycles"] = engine.cycles
        box["checker"].end_of_step(running)
        n = injected()
        if n == last_faults["n"] and running:  # a calm step: the system must be whole again
            result.checks += 1
            for v in await check_account(box["sim"], p):
                if len(result.violations) < 20:
                    result.violations.append(f"step {done}: {v}")
        last_faults["n"] = n

    rng = random.Random(seed)
    crash_at = set(rng.sample(range(1, 120), kills)) if kills else None
    extra: dict[str, Any] = {"restart_delay_steps": restart_delay_steps} if restart_delay_steps else {}
    summary = await run_replay(settings, symbols=symbols or DEMO_SYMBOLS[:6], max_steps=steps, bus=bus,
                               db_path=db_path, exchange_wrapper=wrap, on_step=on_step,
                               sim_config=SimConfig(initial_wallet=Decimal("1000"), stops_reserve_closeable=reserve),
                               crash_at=crash_at, crash_writes_only=True, on_engine=on_engine, **extra)
    checker: StepChecker = box["checker"]
    result.violations = (box["sent"].violations[:10] + checker.violations + result.violations)[:30]
    result.faults_inner = len(box["faulty"].injected)
    result.faults_outer = len(box["outer"].injected) if "outer" in box else 0
    result.faults = result.faults_inner + result.faults_outer
    result.reached_engine = checker.reached
    result.order_calls = checker.calls
    result.unprotected_steps = checker.unprotected_steps
    result.beyond_bound = checker.beyond_bound
    result.down_steps = checker.down_steps
    result.restarts = summary.restarts
    result.errors = errors["n"]
    result.trades = summary.trades
    return result


@dataclass(frozen=True)
class Scenario:
    rates: FaultRates
    kills: int = 0
    outer: FaultRates | None = None  # faults at the engine's boundary
    reserve: bool = False  # HTX-like: stops reserve the closeable amount
    restart_delay_steps: int = 0  # killed processes come back this many candles later

    def __iter__(self):  # (rates, kills), as the scenario table used to be
        return iter((self.rates, self.kills))


_EDGE = FaultRates(timeout=0.01, network=0.01, reject=0.02, lost_response=0.02)

#: scenario name -> what is injected
SCENARIOS: dict[str, Scenario] = {
    "timeouts": Scenario(FaultRates(timeout=0.05)),
    "network errors": Scenario(FaultRates(network=0.05)),
    "rate limits": Scenario(FaultRates(rate_limit=0.05)),
    "rejected orders": Scenario(FaultRates(reject=0.2)),
    "lost replies": Scenario(FaultRates(lost_response=0.2)),
    "process kills": Scenario(FaultRates(), 25),
    "kills, later restarts": Scenario(FaultRates(), 15, restart_delay_steps=3),
    "faults at the engine": Scenario(FaultRates(), 0, outer=_EDGE),
    "engine faults, htx reserve": Scenario(FaultRates(timeout=0.02, lost_response=0.05), 0, outer=_EDGE,
                                           reserve=True),
    "everything at once": Scenario(FaultRates(timeout=0.03, network=0.03, rate_limit=0.03, reject=0.1,
                                              lost_response=0.1), 15, outer=_EDGE, restart_delay_steps=2),
    "everything, htx reserve": Scenario(FaultRates(timeout=0.03, network=0.03, rate_limit=0.03, reject=0.1,
                                                   lost_response=0.1), 15, outer=_EDGE, reserve=True,
                                        restart_delay_steps=1),
}


async def run_scenario(settings: Settings, name: str, *, seed: int, db_path: str | Path, steps: int,
                       symbols: list[str] | None = None) -> ChaosResult:
    sc = SCENARIOS[name]
    return await run_chaos(settings, name=name, rates=sc.rates, seed=seed, db_path=db_path, kills=sc.kills,
                           steps=steps, symbols=symbols, outer=sc.outer, reserve=sc.reserve,
                           restart_delay_steps=sc.restart_delay_steps)
