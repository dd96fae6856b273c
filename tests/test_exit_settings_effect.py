"""Per-side exit settings in effect (issue 18): each through plan_position or a ProfileRunner on
the simulated venue, each with a result that moves with the setting's value.

- EMA_BREAKEVEN_REPRICE_MINUTES: breakeven mode re-checks its exit every N minutes and re-places
  it where its price (entry + fees + buffer) or amount now differs; never more often.
- EMA_EXIT_RUNNER_USE_AGGRESSIVE_LIMIT: a runner trail hit closes the runner with a reduce-only
  limit at the current price (rounded toward filling), falling back to market one cycle later
  for what did not fill; off: a market close as before.
- HARD_TIME_EXIT_BYPASS_PROFIT_BANK: off, a loss-taking hard-time-exit step is sized to what the
  controlled-loss profit bank pays for, and withheld while the bank is empty.
- DYNAMIC_PROFIT_FLOOR_URGENT_MULTIPLIER: while the hard time exit runs, the rest of the position
  keeps its ladder, its profit floor x this multiplier (ENABLE_DYNAMIC_PROFIT_FLOOR).
"""

from __future__ import annotations

from decimal import Decimal as Dec

import pytest

from engine.exchange.sim import SimConfig, SimulatedExchange, _SimPosition
from engine.exchange.types import Order, Position, closing_side
from engine.exits.ladder import aggressive_close_price
from engine.runtime.actions import Cancel, CloseMarket, PlaceExit
from engine.runtime.events import EventBus, FillEvent, OrderEvent
from engine.runtime.executor import Executor
from engine.runtime.positions import MarketContext, plan_position, wants_bank
from engine.runtime.profile import CycleInput, ProfileRunner
from engine.runtime.snapshot import read_snapshot
from engine.settings import ProfileSettings, Settings
from engine.store.state import PositionMeta, StateStore

from test_runtime_protection import A, MARKETS, PRICES, T0, market

MIN = 60_000
M = market(A)  # contract size 1, amount step 1, tick 0.01


def pos(side="long", contracts="10", entry="100") -> Position:
    return Position(A, side, Dec(contracts), Dec(entry), None, Dec(0), Dec(5), None)


def resting(actions, orders=()) -> list[Order]:
    """The open orders after `actions` were carried out (placed exits rest, cancels go)."""
    gone = {a.order.client_order_id for a in actions if isinstance(a, Cancel)}
    out = [o for o in orders if o.client_order_id not in gone]
    for a in actions:
        if isinstance(a, PlaceExit):
            out.append(Order(str(a.client_order_id), a.client_order_id, a.symbol, closing_side(a.position_side),
                             "limit", a.price, None, a.amount, Dec(0), "open", True, False))
    return out


def cycle(p, position, meta, orders, price, t, ctx=None):
    plan = plan_position("long", p, position, meta, M, list(orders), Dec(price), t, ctx or MarketContext(),
                         protect=False)
    return plan, resting(plan.actions, orders)


# -- EMA_BREAKEVEN_REPRICE_MINUTES -----------------------------------------------------------------
BE = dict(ema_breakeven_after_hours=1.0, time_exit_after_minutes=0.0, exit_coverage_alert_minutes=0.0)


def breakeven_run(reprice_minutes: float, new_fee: float, at_minutes: list[float]):
    """A long 10 @ 100 under water enters breakeven mode (1 h); the taker fee setting changes
    right after (a fee tier change); the cycles at `at_minutes` after the start say what they
    do with the resting breakeven exit."""
    p = ProfileSettings(**BE, ema_breakeven_reprice_minutes=reprice_minutes)
    meta = PositionMeta(A, "long", T0, Dec(1000))
    start = T0 + 60 * MIN + 4_321
    plan, orders = cycle(p, pos(), meta, [], "99", start)
    [be] = [a for a in plan.actions if isinstance(a, PlaceExit)]
    assert be.tag == "be1" and be.amount == 10
    assert be.price == Dec("100.04")  # 100 x (1 + 0.0001 + 0.0001 + 0.0002)
    p = p.model_copy(update={"sell_fee_rate": new_fee})
    seen = []
    for m in at_minutes:
        plan, orders = cycle(p, pos(), meta, orders, "99", start + int(m * MIN) + 713)
        seen.append([(type(a).__name__, getattr(a, "price", None)) for a in plan.actions])
    return seen


def test_breakeven_exit_is_repriced_every_period_not_sooner():
    # the fee rises to 0.0010: entry + 0.0001 + 0.0010 + 0.0002 = 100.13
    seen = breakeven_run(15.0, 0.0010, [1, 7, 14.5, 15.2, 16, 29, 31])
    assert seen[:3] == [[], [], []]  # inside the first period: left alone
    assert seen[3] == [("Cancel", None), ("PlaceExit", Dec("100.13"))]  # the period passed
    assert seen[4:] == [[], [], []]  # now right: the next period does not churn it


def test_a_longer_reprice_period_waits_longer():
    seen = breakeven_run(30.0, 0.0010, [1, 15.2, 29, 31])
    assert seen[:3] == [[], [], []]
    assert seen[3] == [("Cancel", None), ("PlaceExit", Dec("100.13"))]


def test_an_unchanged_breakeven_exit_is_never_re_sent():
    seen = breakeven_run(15.0, 0.0001, [1, 15.2, 30.5, 45.1, 61])
    assert seen == [[], [], [], [], []]


def test_a_breakeven_exit_that_is_gone_is_put_back_at_once():
    p = ProfileSettings(**BE)
    meta = PositionMeta(A, "long", T0, Dec(1000))
    start = T0 + 60 * MIN + 4_321
    _, orders = cycle(p, pos(), meta, [], "99", start)
    plan, _ = cycle(p, pos(), meta, [], "99", start + 2 * MIN + 17)  # inside the period
    assert [type(a).__name__ for a in plan.actions] == ["PlaceExit"]


# -- DYNAMIC_PROFIT_FLOOR_URGENT_MULTIPLIER ---------------------------------------------------
#: a 2% fee floor (fees 0.1% x 20) over the 0.8% first markup; plain ladder (no breakeven mode)
URGENT = dict(buy_fee_rate=0.0005, sell_fee_rate=0.0005, min_profit_fee_multiplier=20.0,
              enable_dynamic_profit_floor=True, ema_breakeven_enabled=False, time_exit_after_minutes=0.0,
              hard_time_exit_after_minutes=600.0, exit_coverage_alert_minutes=0.0)


def urgent_ladder(minutes_held: float, **kw) -> dict[str, tuple[Dec, Dec]]:
    p = ProfileSettings(**{**URGENT, **kw})
    meta = PositionMeta(A, "long", T0, Dec(1000))
    plan, _ = cycle(p, pos(), meta, [], "99.5", T0 + int(minutes_held * MIN) + 2_909)
    return {a.tag: (a.price, a.amount) for a in plan.actions if isinstance(a, PlaceExit)}


def test_the_urgent_multiplier_lowers_the_floor_of_the_rest_while_the_hard_time_exit_runs():
    before = urgent_ladder(590)
    assert "time" not in before and before["tp1"][0] == Dec("102.00")  # the 2% floor binds
    during = urgent_ladder(610)  # the hard time exit runs: 25% at the market, the rest urgent
    assert during["time"] == (Dec("99.50"), Dec(2))
    assert during["tp1"][0] == Dec("100.80")  # 2% x 0.4 = 0.8% (the ladder's own markup)
    assert sum(am for _, am in during.values()) == 10  # the rest (8) keeps its ladder
    assert urgent_ladder(610, dynamic_profit_floor_urgent_multiplier=0.6)["tp1"][0] == Dec("101.20")
    assert urgent_ladder(610, dynamic_profit_floor_urgent_multiplier=0.9)["tp1"][0] == Dec("101.80")
    assert urgent_ladder(610, dynamic_profit_floor_urgent_multiplier=1.0)["tp1"][0] == Dec("102.00")
    # the dynamic floor off: the urgent multiplier does nothing
    assert urgent_ladder(610, enable_dynamic_profit_floor=False)["tp1"][0] == Dec("102.00")


# -- HARD_TIME_EXIT_BYPASS_PROFIT_BANK -----------------------------------------------------------
HARD = dict(hard_time_exit_after_minutes=600.0, exit_coverage_alert_minutes=0.0, hard_time_exit_close_fraction=0.5,
            ema_breakeven_after_hours=5.0, time_exit_after_minutes=300.0)


def time_step(bypass: bool, today: str, price="98", spent="0") -> tuple[Dec, Dec] | None:
    """The hard time exit's order for a long 10 @ 100 at `price`, with today's realized PnL."""
    p = ProfileSettings(**HARD, hard_time_exit_bypass_profit_bank=bypass)
    meta = PositionMeta(A, "long", T0, Dec(1000), cl_spent=Dec(spent))
    t = T0 + 611 * MIN + 1_234
    if Dec(price) < 100:
        assert wants_bank(p, pos(), meta, Dec(price), t) is (not bypass)
    plan, _ = cycle(p, pos(), meta, [], price, t, MarketContext(realized=(Dec(today), Dec(today))))
    step = [(a.price, a.amount) for a in plan.actions if isinstance(a, PlaceExit) and a.tag == "time"]
    return step[0] if step else None


def test_with_the_bypass_the_hard_time_exit_takes_its_loss_without_a_bank():
    assert time_step(True, "0") == (Dec("98.00"), Dec(5))


def test_without_the_bypass_a_losing_step_is_sized_to_the_profit_bank():
    # loss per contract at 98: 2 + 98 x 0.0001 = 2.0098; bank = 0.75 x today's PnL
    assert time_step(False, "8") == (Dec("98.00"), Dec(2))  # bank 6: 2 contracts
    assert time_step(False, "12") == (Dec("98.00"), Dec(4))  # bank 9: 4 contracts
    assert time_step(False, "100") == (Dec("98.00"), Dec(5))  # the step itself is the limit
    assert time_step(False, "100", spent="70") == (Dec("98.00"), Dec(2))  # bank 75 - 70 spent
    assert time_step(False, "0") is None  # no bank, no loss taken
    assert time_step(False, "6") is None  # bank 4.5 < CONTROLLED_LOSS_MIN_BANK_USDT (5)


def test_without_the_bypass_a_profitable_step_needs_no_bank():
    assert time_step(False, "0", price="100.5") == (Dec("100.50"), Dec(5))


def test_the_withheld_step_goes_out_once_the_bank_pays():
    p = ProfileSettings(**HARD, hard_time_exit_bypass_profit_bank=False)
    meta = PositionMeta(A, "long", T0, Dec(1000))
    t = T0 + 611 * MIN + 1_234
    plan, orders = cycle(p, pos(), meta, [], "98", t, MarketContext(realized=(Dec(0), Dec(0))))
    assert not any(isinstance(a, PlaceExit) and a.tag == "time" for a in plan.actions)
    assert any("profit bank" in n for n in plan.notes)
    plan, orders = cycle(p, pos(), meta, orders, "98", t + 3 * MIN, MarketContext(realized=(Dec(12), Dec(12))))
    assert [(a.price, a.amount) for a in plan.actions if isinstance(a, PlaceExit) and a.tag == "time"] == \
        [(Dec("98.00"), Dec(4))]
    # its fill is a loss the bank paid: counted as spent, so the next cycle sees a smaller bank
    plan, _ = cycle(p, pos(contracts="6"), meta, orders, "98", t + 6 * MIN, MarketContext(realized=(Dec(12), Dec(12))))
    assert meta.cl_spent == 4 * (Dec(2) + Dec("98.00") * Dec("0.0001"))


# -- EMA_EXIT_RUNNER_USE_AGGRESSIVE_LIMIT ------------------------------------------------------------
def test_the_aggressive_price_rounds_toward_filling():
    assert aggressive_close_price("long", Dec("101.937"), M) == Dec("101.93")  # a sell: down
    assert aggressive_close_price("short", Dec("97.601"), M) == Dec("97.61")  # a buy: up


RUNNER = dict(hard_stop_loss_pct=0.05, hard_stop_loss_atr_enabled=False, hard_stop_loss_min_emergency_pct=0.08,
              exit_coverage_alert_minutes=0.0)


def settings(**kw) -> Settings:
    s = Settings.defaults()
    return Settings(s.glob, {side: p.model_copy(update=kw) for side, p in s.profiles.items()})


async def runner_run(side: str, aggressive: bool, path: list[tuple[str, tuple[str, str, str] | None]],
                     spread_ticks: int = 1, reserve: bool = False):
    """A position 10 @ 100 on the simulated venue, one ProfileRunner cycle per (price, candle)
    step ~2.3 min apart (a candle (high, low, close) closed just before it, or none). `reserve`:
    the stop reserves the closeable amount too (replay and paper mode do not model that)."""
    s = settings(**RUNNER, ema_exit_runner_use_aggressive_limit=aggressive)
    sim = SimulatedExchange(MARKETS, SimConfig(initial_wallet=Dec(100_000), spread_ticks=spread_ticks,
                                                      stops_reserve_closeable=reserve),
                            start_ms=T0 - 60_000)
    for symbol, px in PRICES.items():
        sim.set_price(symbol, px, T0 - 60_000)
    sim._positions[A] = _SimPosition(Dec(10) if side == "long" else Dec(-10), Dec(100))
    store = await StateStore.open(":memory:", inline=True)
    bus = EventBus()
    seen: list = []
    bus.subscribe(seen.append)
    runner = ProfileRunner(side, s.side(side), sim, store, bus, [A], s.glob)
    t, log = T0, []
    for price, candle in path:
        sim.set_price(A, price, t)
        ctx = MarketContext()
        if candle is not None:
            ctx = MarketContext(last_candle=(t - 61_000 - t % 7_000, Dec(candle[0]), Dec(candle[1]), Dec(candle[2])))
        snap = await read_snapshot(sim, [A], t)
        await runner.cycle(CycleInput(snap, {A: M}, {}, {A: ctx}, None, None, set(), new_candle=False))
        positions = await sim.fetch_positions()
        orders = await sim.fetch_open_orders()
        log.append((positions[0].contracts if positions else Dec(0), orders))
        t += 137_911
    await store.close()
    return sim, seen, log


def _runner_closes(sim):
    return [o for o in sim.all_orders(A) if o.reduce_only and o.kind in ("limit", "market")
            and o.side == "sell" and o.price != Dec("100.80") and o.price != Dec("105.00")]


LONG_PATH = [("100", None), ("103", ("103.5", "102.9", "103")), ("101.937", ("102", "101.8", "101.937")),
             ("101.937", None), ("101.95", None)]


async def test_a_runner_trail_hit_closes_the_runner_with_a_limit_at_the_current_price():
    sim, seen, log = await runner_run("long", True, LONG_PATH)
    [close] = _runner_closes(sim)
    assert close.kind == "limit" and not close.post_only and close.reduce_only
    assert close.price == Dec("101.93") and close.filled == 7 and close.status == "filled"
    fills = [e for e in seen if isinstance(e, FillEvent) and e.amount == 7]
    assert fills and fills[0].price == Dec("101.93")
    assert log[2][0] == 3  # the fixed part (tp1) is left, the runner closed
    # it filled: the next cycles send no market close
    assert not any(o.kind == "market" for o in sim.all_orders(A))
    # the stop stays, sized to the position, after every cycle
    for contracts, orders in log:
        assert [o.amount for o in orders if o.kind == "stop_loss"] == [contracts]


async def test_with_the_setting_off_the_runner_is_closed_at_market():
    sim, _, log = await runner_run("long", False, LONG_PATH)
    [close] = _runner_closes(sim)
    assert close.kind == "market" and close.filled == 7
    assert log[2][0] == 3


SHORT_PATH = [("100", None), ("97", ("97.1", "96.5", "97")), ("97.6", ("97.7", "97.4", "97.6")),
              ("97.6", None)]


async def test_a_short_runner_closes_with_a_buy_limit_rounded_up():
    sim, seen, log = await runner_run("short", True, SHORT_PATH)
    [close] = [o for o in sim.all_orders(A) if o.side == "buy" and o.kind in ("limit", "market")
               and o.price not in (Dec("99.20"), Dec("95.00"))]
    # the engine sees the mid 97.605; a closing buy rounds up to 97.61, the ask: it fills
    assert close.kind == "limit" and close.price == Dec("97.61") and close.filled == 7
    assert log[2][0] == 3 and log[3][0] == 3


async def test_a_runner_limit_not_filled_in_one_cycle_is_closed_at_market():
    # a wide book (3 ticks): the mid 101.945 rounds down to 101.94, above the bid 101.93, so the
    # limit rests; one cycle later what is left is closed at market
    sim, seen, log = await runner_run("long", True, LONG_PATH, spread_ticks=3)
    limit = [o for o in sim.all_orders(A) if o.kind == "limit" and o.side == "sell" and o.price == Dec("101.94")]
    assert len(limit) == 1 and limit[0].status == "canceled" and limit[0].filled == 0
    assert log[2][0] == 10  # the cycle of the hit: the limit rests, nothing filled yet
    market_closes = [o for o in sim.all_orders(A) if o.kind == "market"]
    assert len(market_closes) == 1 and market_closes[0].filled == 7
    assert log[3][0] == 3 and log[4][0] == 3  # one cycle later the runner is gone; no more closes
    for contracts, orders in log:
        assert [o.amount for o in orders if o.kind == "stop_loss"] == [contracts]
    placed = [e for e in seen if isinstance(e, OrderEvent) and e.action == "placed" and e.purpose == "close"]
    assert [e.price for e in placed] == [Dec("101.94"), None]


async def test_a_runner_limit_refused_falls_back_to_market_next_cycle():
    p = settings(**RUNNER).side("long")
    meta = PositionMeta(A, "long", T0, Dec(1000))
    position = pos()
    plan, orders = cycle(p, position, meta, [], "100", T0 + 1_111)
    ctx = MarketContext(last_candle=(T0 + 60_000, Dec("103.5"), Dec("102.9"), Dec("103")))
    plan, orders = cycle(p, position, meta, orders, "103", T0 + 2 * MIN + 1_111, ctx)
    ctx = MarketContext(last_candle=(T0 + 3 * MIN, Dec("102"), Dec("101.8"), Dec("101.937")))
    plan, _ = cycle(p, position, meta, orders, "101.937", T0 + 4 * MIN + 1_111, ctx)
    assert [type(a).__name__ for a in plan.actions] == ["Cancel", "PlaceExit"]
    limit = plan.actions[1]
    assert limit.price == Dec("101.93") and limit.amount == 7 and limit.purpose == "close"
    # the venue refused it (nothing rests, nothing filled): the next cycle closes at market
    left = [o for o in orders if o.client_order_id != plan.actions[0].order.client_order_id]
    plan, _ = cycle(p, position, meta, left, "101.9", T0 + 6 * MIN + 1_111)
    [close] = plan.actions
    assert isinstance(close, CloseMarket) and close.amount == 7 and close.reason == "runner_trailing"


def test_the_runner_limits_market_fallback_never_takes_the_stop_of_the_rest():
    """The fallback closes the runner part only; the executor cancels the stops a close is
    handed once it fills, so a stop handed to it would leave the rest of the position bare."""
    p = settings(**RUNNER).side("long")
    meta = PositionMeta(A, "long", T0, Dec(1000))
    position = pos()
    stop = Order("s1", 11, A, "sell", "stop_loss", None, Dec("95"), Dec(10), Dec(0), "open", True, False)
    plan, orders = cycle(p, position, meta, [stop], "100", T0 + 1_111)
    ctx = MarketContext(last_candle=(T0 + 60_000, Dec("103.5"), Dec("102.9"), Dec("103")))
    plan, orders = cycle(p, position, meta, orders, "103", T0 + 2 * MIN + 1_111, ctx)
    ctx = MarketContext(last_candle=(T0 + 3 * MIN, Dec("102"), Dec("101.8"), Dec("101.937")))
    plan, _ = cycle(p, position, meta, orders, "101.937", T0 + 4 * MIN + 1_111, ctx)
    [limit] = [a for a in plan.actions if isinstance(a, PlaceExit)]
    assert limit.fallback is not None and limit.fallback.amount == 7 < position.contracts
    assert not [o for o in limit.fallback.cancel_first if o.kind == "stop_loss"]
    assert stop not in [a.order for a in plan.actions if isinstance(a, Cancel)]


async def test_a_runner_limit_refused_for_the_reserved_amount_is_closed_at_market_at_once():
    # a venue where the stop reserves the closeable amount refuses the limit: the executor
    # closes at market in the same action (the stop cancelled only right before the second
    # attempt, as any market close does on such a venue)
    sim = SimulatedExchange(MARKETS, SimConfig(initial_wallet=Dec(100_000)), start_ms=T0 - 60_000)
    sim.set_price(A, "101.937", T0)
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    stop = await sim.place_stop_loss(A, "long", Dec(10), Dec("95"), 11)
    store = await StateStore.open(":memory:", inline=True)
    seen: list = []
    bus = EventBus()
    bus.subscribe(seen.append)
    fallback = CloseMarket(A, "long", Dec(7), 13, "k:runner:c2", "runner_trailing", (stop,))
    limit = PlaceExit(A, "long", Dec("101.93"), Dec(7), 12, "k:runner:c1", "runner_close", purpose="close",
                      fallback=fallback)
    [outcome] = await Executor(sim, store, bus, "long").run([limit], T0)
    await store.close()
    assert outcome.ok and outcome.order is not None and outcome.order.kind == "market"
    assert outcome.order.filled == 7 and (await sim.fetch_positions())[0].contracts == 3
    assert any(isinstance(e, OrderEvent) and e.action == "rejected" and "at market" in e.reason for e in seen)
    # without a fallback (any other exit) a refused limit waits, as before
    sim2 = SimulatedExchange(MARKETS, SimConfig(initial_wallet=Dec(100_000)), start_ms=T0 - 60_000)
    sim2.set_price(A, "101.937", T0)
    sim2._positions[A] = _SimPosition(Dec(10), Dec(100))
    await sim2.place_stop_loss(A, "long", Dec(10), Dec("95"), 11)
    store = await StateStore.open(":memory:", inline=True)
    [outcome] = await Executor(sim2, store, EventBus(), "long").run([PlaceExit(**{**limit.__dict__, "fallback": None})],
                                                                    T0)
    await store.close()
    assert outcome.status == "frozen" and (await sim2.fetch_positions())[0].contracts == 10


@pytest.mark.parametrize("aggressive", [True, False])
async def test_the_runner_close_is_a_close_whichever_order_carries_it(aggressive):
    sim, seen, log = await runner_run("long", aggressive, LONG_PATH[:4])
    fills = [e for e in seen if isinstance(e, FillEvent) and e.amount == 7]
    assert len(fills) == 1 and fills[0].purpose == "close" and fills[0].price == Dec("101.93")
