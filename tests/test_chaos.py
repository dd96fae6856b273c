"""Chaos: replays through an exchange that fails on purpose (seeded) must stay whole.

Faults come in under the retry layer and at the engine's own boundary; processes are killed
and (in some scenarios) come back candles later; some runs use HTX-like closeable reservation.
After every order call: no stop is cancelled while it is a position's only protection, no two
identical orders rest, no coin has entries of both sides, close orders stay within the
position, and no position goes without a covering stop past the bounded close-out time. On the
calls sent to the venue: no client id names two different orders. After every calm step: each
position has one exchange-side stop of its size."""

from decimal import Decimal

import pytest

from engine.exchange.sim import SimConfig, SimulatedExchange, _SimPosition
from engine.exchange.types import Market
from engine.runtime.chaos import SCENARIOS, SentLog, StepChecker, run_scenario
from engine.runtime.replay import DEMO_SYMBOLS
from engine.settings import Settings


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_chaos_scenario_survives(name, tmp_path):
    sc = SCENARIOS[name]
    # all ten demo perps: on the USDT-M demo six coins make only ~55 order calls in 1900 steps
    r = await run_scenario(Settings.defaults(), name, seed=7, db_path=tmp_path / "c.sqlite", steps=1900,
                           symbols=DEMO_SYMBOLS)
    assert r.steps == 1900
    assert r.faults > 0 or r.restarts > 0, "the scenario injected nothing"
    if sc.outer is not None:
        assert r.reached_engine > 0, "no fault reached the engine's own error handling"
    if sc.kills:
        assert r.restarts > 0
    assert r.order_calls > 100  # checked call by call
    assert r.checks > 100
    assert r.trades > 0
    assert r.violations == []
    assert r.beyond_bound == 0


M = Market("ETH/USDT:USDT", "ETH-USDT", "ETH", "USDT", contract_size=Decimal(1), amount_step=Decimal(1),
           price_step=Decimal("0.01"), min_amount=Decimal(1), min_notional=None)
SYM = M.symbol


def _sim(reserve=False):
    sim = SimulatedExchange([M], SimConfig(stops_reserve_closeable=reserve))
    sim.set_price(SYM, "100")
    sim._positions[SYM] = _SimPosition(Decimal(10), Decimal(100))
    return sim


async def test_the_client_id_check_sees_an_id_reused_for_another_order():
    """The simulator answers a known id with the existing order, so only the calls sent can
    show that an id was used for two different orders."""
    sim = _sim()
    sent = SentLog(sim)
    first = await sent.place_stop_loss(SYM, "long", Decimal(10), Decimal(98), 42)
    again = await sent.place_stop_loss(SYM, "long", Decimal(10), Decimal(98), 42)  # a retry: fine
    assert again.id == first.id and sent.violations == []
    other = await sent.place_stop_loss(SYM, "long", Decimal(5), Decimal(97), 42)  # another order, same id
    assert other.id == first.id  # what the simulator returns hides it ...
    assert sent.violations and "two different orders" in sent.violations[0]  # ... the log does not


async def test_the_step_checker_sees_a_stop_cancelled_before_its_replacement():
    sim = _sim()
    checker = StepChecker(sim, sim, reserve=False, bound_ms=360_000)
    old = await checker.place_stop_loss(SYM, "long", Decimal(10), Decimal(98), 1)
    assert checker.violations == []
    await checker.cancel_order(old)  # the wrong order: cancel first ...
    await checker.place_stop_loss(SYM, "long", Decimal(10), Decimal("98.5"), 2)  # ... then replace
    assert checker.violations and "only protection" in checker.violations[0]
    # on a reserving venue the cancel is allowed only when the very next call protects again
    sim2 = _sim(reserve=True)
    c2 = StepChecker(sim2, sim2, reserve=True, bound_ms=360_000)
    old2 = await c2.place_stop_loss(SYM, "long", Decimal(10), Decimal(98), 1)
    await c2.cancel_order(old2)
    await c2.place_stop_loss(SYM, "long", Decimal(10), Decimal("98.5"), 2)
    assert c2.violations == []
    old3 = (await sim2.fetch_open_orders())[0]
    await c2.cancel_order(old3)
    await c2.place_reduce_only_limit(SYM, "long", Decimal(5), Decimal(105), 3)  # not a protection
    assert c2.violations and "not one that protects" in c2.violations[0]
    # a replacement that fails may be followed by a restore; still naked at the step's end: caught
    sim3 = _sim(reserve=True)
    c3 = StepChecker(sim3, sim3, reserve=True, bound_ms=360_000)
    await c3.cancel_order(await c3.place_stop_loss(SYM, "long", Decimal(10), Decimal(98), 1))
    assert c3.violations == []
    c3.end_of_step()
    assert c3.violations and "end of the step" in c3.violations[0]


async def test_the_step_checker_bounds_the_time_without_a_stop():
    sim = _sim()
    checker = StepChecker(sim, sim, reserve=False, bound_ms=360_000)
    checker.end_of_step()
    assert checker.unprotected_steps == 1 and checker.violations == []
    sim.set_price(SYM, "100", 400_000)
    checker.end_of_step()
    assert checker.beyond_bound == 1 and checker.violations
