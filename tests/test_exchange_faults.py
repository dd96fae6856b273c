"""FaultInjectingExchange determinism, and idempotent placement under lost replies (vs the sim)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.exchange import errors as E
from engine.exchange.base import Exchange
from engine.exchange.client_ids import client_order_id
from engine.exchange.faults import FaultInjectingExchange, FaultRates
from engine.exchange.resilient import RetryingExchange
from engine.exchange.retry import RetryPolicy
from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.exchange.types import Market

SYM = "TST/USDT:USDT"
TST = Market(SYM, "TST-USDT", "TST", "USDT", Decimal("1"), Decimal("1"), Decimal("0.1"), Decimal("1"))
M5 = 300_000


def d(x) -> Decimal:
    return Decimal(str(x))


def sim() -> SimulatedExchange:
    exchange = SimulatedExchange([TST], SimConfig(initial_wallet=d(1_000_000)), start_ms=M5)
    exchange.set_price(SYM, "100")
    return exchange


async def _no_sleep(_: float) -> None:
    return None


def policy(attempts=4) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, base_delay=0, reconcile_delay=0, seed=0, sleep=_no_sleep)


async def run_calls(faulty: FaultInjectingExchange) -> list[str]:
    outcomes = []
    for i in range(80):
        try:
            if i % 2 == 0:
                await faulty.place_post_only(SYM, "buy", d(1), d(90) - i, 1000 + i)
            else:
                await faulty.fetch_open_orders()
            outcomes.append("ok")
        except E.ExchangeError as exc:
            outcomes.append(type(exc).__name__)
    return outcomes


def test_wrapper_implements_the_interface():
    assert isinstance(FaultInjectingExchange(sim(), seed=1, rates=FaultRates()), Exchange)
    assert isinstance(RetryingExchange(sim()), Exchange)
    with pytest.raises(ValueError):
        FaultRates(timeout=1.5)


async def test_same_seed_same_faults_other_seed_other_faults():
    rates = FaultRates(timeout=0.2, network=0.1, rate_limit=0.1, reject=0.2, lost_response=0.3)
    a = FaultInjectingExchange(sim(), seed=42, rates=rates)
    b = FaultInjectingExchange(sim(), seed=42, rates=rates)
    c = FaultInjectingExchange(sim(), seed=43, rates=rates)
    outcomes_a, outcomes_b, outcomes_c = await run_calls(a), await run_calls(b), await run_calls(c)
    assert outcomes_a == outcomes_b and a.injected == b.injected
    assert [o.client_order_id for o in a.inner.all_orders()] == [o.client_order_id for o in b.inner.all_orders()]
    assert a.injected != c.injected
    kinds = {fault for _, fault in a.injected + c.injected}
    assert kinds == {"timeout", "network", "rate_limit", "reject", "lost_response"}


async def test_pre_send_faults_do_nothing_and_lost_responses_do_everything():
    inner = sim()
    faulty = FaultInjectingExchange(inner, seed=1, rates=FaultRates(timeout=1.0))
    with pytest.raises(E.ExchangeTimeout):
        await faulty.place_post_only(SYM, "buy", d(1), d(90), 1)
    assert inner.all_orders() == []

    faulty = FaultInjectingExchange(inner, seed=1, rates=FaultRates(lost_response=1.0))
    with pytest.raises(E.ExchangeTimeout, match="executed"):
        await faulty.place_post_only(SYM, "buy", d(1), d(90), 2)
    assert [o.client_order_id for o in inner.all_orders()] == [2]
    assert (await faulty.fetch_open_orders())[0].client_order_id == 2  # reads never lose replies

    faulty = FaultInjectingExchange(inner, seed=1, rates=FaultRates(reject=1.0))
    assert len(await faulty.fetch_open_orders()) == 1  # rejections only hit placements
    with pytest.raises(E.InvalidOrder):
        await faulty.place_post_only(SYM, "buy", d(1), d(89), 3)


async def test_delayed_fills_appear_later_and_deterministically():
    async def polls(seed: int) -> list[list[str]]:
        inner = sim()
        faulty = FaultInjectingExchange(inner, seed=seed, rates=FaultRates(delayed_fill=1.0, max_fill_delay_polls=3))
        for i in range(3):
            await inner.place_post_only(SYM, "buy", d(1), d(99) - i, 10 + i)
        inner.on_candle(SYM, M5, "100", "100", "90", "95")
        return [[f.id for f in await faulty.fetch_fills([SYM], 0)] for _ in range(4)]

    seen = await polls(7)
    assert seen == await polls(7)
    assert seen[0] == []  # every fill is held for at least one poll
    assert sorted(seen[-1]) == ["sim-fill-1", "sim-fill-2", "sim-fill-3"]
    assert all(set(a) <= set(b) for a, b in zip(seen, seen[1:]))  # once shown, always shown


async def place_until_settled(exchange: Exchange, cid: int, price: Decimal) -> str:
    """What the runtime does: place; on an unsettled outcome reconcile by client id, then retry."""
    for _ in range(50):
        try:
            await exchange.place_post_only(SYM, "buy", d(1), price, cid)
            return "placed"
        except E.OrderRejected:
            return "rejected"
        except E.TransientError:
            try:
                if await exchange.fetch_order(SYM, client_order_id=cid) is not None:
                    return "placed"
            except E.TransientError:
                continue
    raise AssertionError("never settled")


async def test_idempotent_retry_never_duplicates_under_lost_replies():
    inner = sim()
    rates = FaultRates(timeout=0.15, network=0.1, rate_limit=0.05, lost_response=0.35)
    faulty = FaultInjectingExchange(inner, seed=2024, rates=rates)
    exchange = RetryingExchange(faulty, policy())
    cids = [client_order_id("long", SYM, "entry", f"pos{i}:0") for i in range(60)]
    results = [await place_until_settled(exchange, cid, d(90) - d(i) / 10) for i, cid in enumerate(cids)]

    assert results == ["placed"] * 60
    placed = [o.client_order_id for o in inner.all_orders()]
    assert sorted(placed) == sorted(cids)  # exactly one order per intent
    assert inner.resubmissions == 0  # no create was ever sent for an order that already existed
    assert sum(1 for _, fault in faulty.injected if fault == "lost_response") >= 10


async def test_a_naive_retry_would_resend_orders_that_exist():
    inner = sim()
    faulty = FaultInjectingExchange(inner, seed=2024, rates=FaultRates(lost_response=0.35))
    for i in range(60):
        for _ in range(10):
            try:
                await faulty.place_post_only(SYM, "buy", d(1), d(90) - d(i) / 10, 5000 + i)
                break
            except E.TransientError:
                continue
    assert inner.resubmissions > 0  # on a venue without client-id dedupe these are duplicates


async def test_retrying_wrapper_retries_reads_and_cancels():
    inner = sim()
    faulty = FaultInjectingExchange(inner, seed=5, rates=FaultRates(timeout=0.4, lost_response=0.5))
    exchange = RetryingExchange(faulty, RetryPolicy(max_attempts=12, base_delay=0, reconcile_delay=0, seed=1, sleep=_no_sleep))
    order = await exchange.place_post_only(SYM, "buy", d(1), d(90), 1)
    for _ in range(5):
        assert [o.id for o in await exchange.fetch_open_orders()] == [order.id]
    canceled = await exchange.cancel_order(order)
    assert canceled.status == "canceled" and await inner.fetch_open_orders() == []
