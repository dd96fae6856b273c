"""The controlled-loss exit (issue 18, forced and defensive exits).

Pure functions per setting (changing the value changes the decision, price or amount), then
the public interface: ProfileRunner cycles on the simulator with an unaligned clock, a zombie
long in drawdown and a profitable trade in the store. The reduce-only controlled-loss order
goes out, ramps toward the market, fills on a wick; the hard stop stays and follows the size;
the trade is recorded with the reason "controlled_loss"."""

from __future__ import annotations

from decimal import Decimal as Dec

import pytest

from engine.exchange.sim import _SimPosition
from engine.exits import controlled_loss as cl
from engine.runtime.events import EventBus, FillEvent, OrderEvent, TradeClosed
from engine.runtime.positions import MarketContext
from engine.runtime.profile import CycleInput, ProfileRunner
from engine.runtime.snapshot import read_snapshot
from engine.settings import Settings
from engine.store.state import StateStore

from test_runtime_protection import A, T0, market, new_sim

MIN = 60_000
M = market(A)  # price step 0.01, amount step 1


def prof(**kw):
    return Settings.defaults().side("long").model_copy(update=kw)


# -- pure functions --------------------------------------------------------------------------
def test_zombie_needs_time_drawdown_and_the_switch():
    p = prof(controlled_loss_after_zombie_minutes=180.0, controlled_loss_min_drawdown=0.025)
    assert cl.is_zombie(p, 180, 0.03)
    assert not cl.is_zombie(p, 179, 0.03)
    assert not cl.is_zombie(p, 180, 0.02)
    assert cl.is_zombie(prof(controlled_loss_after_zombie_minutes=60.0), 90, 0.03)
    assert cl.is_zombie(prof(controlled_loss_min_drawdown=0.01, controlled_loss_after_zombie_minutes=0.0), 1, 0.015)
    assert not cl.is_zombie(prof(enable_controlled_loss_exit=False), 1e6, 0.5)


def test_once_started_it_runs_while_the_position_is_under_water():
    p = prof(controlled_loss_after_zombie_minutes=180.0, controlled_loss_min_drawdown=0.025)
    assert not cl.active(p, 200, 0.01, started=False)
    assert cl.active(p, 200, 0.01, started=True)  # a bounce toward the entry keeps the order
    assert not cl.active(p, 200, 0.0, started=True)  # back at the entry: over
    assert not cl.active(prof(enable_controlled_loss_exit=False), 200, 0.03, started=True)


def test_drawdown_is_the_adverse_move_per_side():
    assert cl.drawdown("long", Dec(100), Dec(97)) == pytest.approx(0.03)
    assert cl.drawdown("short", Dec(100), Dec(103)) == pytest.approx(0.03)
    assert cl.drawdown("long", Dec(100), Dec(101)) < 0


def test_ramp_starts_at_the_min_move_and_reaches_the_market_after_the_ramp():
    p = prof(controlled_loss_min_move_fraction=0.1, controlled_loss_ramp_minutes=100.0)
    assert cl.ramp_fraction(p, 0) == pytest.approx(0.1)
    assert cl.ramp_fraction(p, 50) == pytest.approx(0.55)
    assert cl.ramp_fraction(p, 100) == 1.0 and cl.ramp_fraction(p, 500) == 1.0
    assert cl.ramp_fraction(prof(controlled_loss_min_move_fraction=0.3, controlled_loss_ramp_minutes=100.0),
                            0) == pytest.approx(0.3)
    assert cl.ramp_fraction(prof(controlled_loss_min_move_fraction=0.1, controlled_loss_ramp_minutes=200.0),
                            50) == pytest.approx(0.325)
    assert cl.ramp_fraction(prof(controlled_loss_ramp_minutes=0.0), 0) == 1.0


def test_close_price_moves_from_entry_toward_market_bounded_by_max_loss_and_rounded_passively():
    p = prof(controlled_loss_max_loss_on_notional=0.06)
    assert cl.close_price(p, "long", Dec(100), Dec(97), 0.1, M) == Dec("99.70")
    assert cl.close_price(p, "long", Dec(100), Dec(97), 0.5, M) == Dec("98.50")
    assert cl.close_price(p, "short", Dec(100), Dec(103), 0.5, M) == Dec("101.50")
    # the max loss on notional caps the ramp
    assert cl.close_price(p, "long", Dec(100), Dec(90), 1.0, M) == Dec("94.00")
    assert cl.close_price(prof(controlled_loss_max_loss_on_notional=0.02), "long", Dec(100), Dec(90), 1.0,
                          M) == Dec("98.00")
    assert cl.close_price(p, "short", Dec(100), Dec(110), 1.0, M) == Dec("106.00")
    # a closing sell rounds up, a closing buy down (never a worse price than computed)
    assert cl.close_price(p, "long", Dec(100), Dec("97.001"), 1.0, M) == Dec("97.01")
    assert cl.close_price(p, "short", Dec(100), Dec("102.999"), 1.0, M) == Dec("102.99")


def test_profit_bank_takes_the_larger_window_and_needs_the_minimum():
    p = prof(controlled_loss_profit_bank_today_fraction=0.75, controlled_loss_profit_bank_7d_fraction=0.12,
             controlled_loss_min_bank_usdt=5.0)
    assert cl.profit_bank(p, Dec(20), Dec(50)) == Dec("15.00")
    assert cl.profit_bank(p, Dec(0), Dec(100)) == Dec("12.00")
    assert cl.profit_bank(p, Dec(20), Dec(50), spent=Dec(11)) == 0  # 4 left: below the minimum
    assert cl.profit_bank(prof(controlled_loss_profit_bank_today_fraction=0.5), Dec(20), Dec(0)) == Dec(10)
    assert cl.profit_bank(prof(controlled_loss_profit_bank_7d_fraction=0.5), Dec(0), Dec(100)) == Dec(50)
    assert cl.profit_bank(prof(controlled_loss_min_bank_usdt=20.0), Dec(20), Dec(50)) == 0
    assert cl.profit_bank(p, Dec(-30), Dec(-5)) == 0  # losing days fund nothing


def test_realized_windows_are_the_utc_day_and_the_last_seven_days():
    day = 86_400_000
    now = 20_000 * day + 5 * 3_600_000  # 05:00 UTC
    trades = [{"closed_ms": now - 3_600_000, "pnl": "10"},  # today
              {"closed_ms": now - 6 * 3_600_000, "pnl": "4"},  # yesterday
              {"closed_ms": now - 8 * day, "pnl": "100"},  # too old
              {"closed_ms": now - 2 * day, "pnl": "-3"}]
    assert cl.realized_windows(trades, now) == (Dec(10), Dec(11))


def test_close_order_is_a_fraction_of_the_position_within_the_bank():
    p = prof(controlled_loss_max_position_fraction=0.2, sell_fee_rate=0.0)
    o = cl.close_order(p, "long", Dec(100), Dec(97), Dec(50), M, 1.0, Dec(1000))
    assert (o.tag, o.price, o.amount) == ("controlled_loss", Dec("97.00"), Dec(10))
    assert cl.close_order(prof(controlled_loss_max_position_fraction=0.5, sell_fee_rate=0.0), "long", Dec(100),
                          Dec(97), Dec(50), M, 1.0, Dec(1000)).amount == Dec(25)
    # the bank pays 3 USDT a contract at 97: 20 USDT buys 6 contracts
    assert cl.close_order(p, "long", Dec(100), Dec(97), Dec(50), M, 1.0, Dec(20)).amount == Dec(6)
    # nearer break-even the same bank closes more
    assert cl.close_order(p, "long", Dec(100), Dec(97), Dec(50), M, 0.1, Dec(20)).amount == Dec(10)
    assert cl.close_order(p, "long", Dec(100), Dec(97), Dec(50), M, 1.0, Dec(0)) is None
    assert cl.close_order(p, "long", Dec(100), Dec(97), Dec(2), M, 1.0, Dec(1000)) is None  # 0.4 rounds to 0


def test_a_remainder_that_would_be_dust_is_closed_with_the_step_when_the_bank_pays():
    p = prof(controlled_loss_max_position_fraction=0.5, sell_fee_rate=0.0, dust_position_notional=300.0)
    assert cl.close_order(p, "long", Dec(100), Dec(97), Dec(5), M, 1.0, Dec(1000)).amount == Dec(5)  # 2 + 3 dust
    assert cl.close_order(p, "long", Dec(100), Dec(97), Dec(5), M, 1.0, Dec(9)).amount == Dec(3)  # bank: 3
    assert cl.close_order(p.model_copy(update={"dust_close_enabled": False}), "long", Dec(100), Dec(97), Dec(5), M,
                          1.0, Dec(1000)).amount == Dec(2)
    assert cl.close_order(p.model_copy(update={"dust_position_notional": 10.0}), "long", Dec(100), Dec(97), Dec(5),
                          M, 1.0, Dec(1000)).amount == Dec(2)


def test_macro_speed_follows_the_adverse_gap_and_score():
    p = prof(controlled_loss_macro_gap_reference=0.02, controlled_loss_macro_max_speed_multiplier=2.0)
    assert cl.macro_speed(p, "long", 0.01, 0.0) == pytest.approx(1.0)  # favourable trend
    assert cl.macro_speed(p, "long", -0.01, 0.0) == pytest.approx(1.5)
    assert cl.macro_speed(p, "long", -0.05, 0.0) == pytest.approx(2.0)  # capped
    assert cl.macro_speed(p, "short", 0.01, 0.0) == pytest.approx(1.5)
    assert cl.macro_speed(p, "long", None, -0.25) == pytest.approx(1.25)  # macro overlay against longs
    assert cl.macro_speed(prof(controlled_loss_macro_gap_reference=0.01), "long", -0.005, 0.0) == pytest.approx(1.5)
    assert cl.macro_speed(prof(controlled_loss_macro_max_speed_multiplier=3.0), "long", -0.01,
                          0.0) == pytest.approx(2.0)


def test_volatility_speed_starts_above_the_trigger_and_is_capped():
    p = prof(controlled_loss_volatility_reference=0.001, controlled_loss_volatility_trigger_multiplier=1.5,
             controlled_loss_volatility_exponent=2.0, controlled_loss_volatility_max_speed_multiplier=3.0)
    assert cl.volatility_speed(p, 0.0015) == 1.0  # at the trigger: no spike yet
    assert cl.volatility_speed(p, 0.0016) == pytest.approx(2.56)
    assert cl.volatility_speed(p, 0.005) == 3.0
    assert cl.volatility_speed(p, None) == 1.0 and cl.volatility_speed(p, float("nan")) == 1.0
    assert cl.volatility_speed(p.model_copy(update={"controlled_loss_volatility_exponent": 1.0}),
                               0.0016) == pytest.approx(1.6)
    assert cl.volatility_speed(p.model_copy(update={"controlled_loss_volatility_max_speed_multiplier": 2.0}),
                               0.0016) == 2.0
    assert cl.volatility_speed(p.model_copy(update={"controlled_loss_volatility_trigger_multiplier": 2.0}),
                               0.0016) == 1.0
    assert cl.volatility_speed(p.model_copy(update={"controlled_loss_volatility_speed_enabled": False}),
                               0.005) == 1.0
    # reference 0 = VOLATILITY_REFERENCE
    q = p.model_copy(update={"controlled_loss_volatility_reference": 0.0, "volatility_reference": 0.002})
    assert cl.volatility_reference(q) == 0.002 and cl.volatility_speed(q, 0.0032) == pytest.approx(2.56)
    # the larger speed-up wins, the two are not compounded
    assert cl.speed(p, "long", -0.05, 0.0, 0.0016) == (pytest.approx(2.56), True)
    assert cl.speed(p, "long", -0.05, 0.0, 0.001) == (pytest.approx(2.0), False)


def test_reprice_every_interval_or_sooner_in_a_spike():
    p = prof(controlled_loss_reprice_minutes=60.0, controlled_loss_volatility_reprice_min_move_delta=0.05)
    assert cl.reprice_due(p, 0, None, 0.1, 0.0, False)
    assert not cl.reprice_due(p, 59 * MIN, 0, 0.2, 0.1, False)
    assert cl.reprice_due(p, 60 * MIN, 0, 0.2, 0.1, False)
    assert cl.reprice_due(prof(controlled_loss_reprice_minutes=30.0), 30 * MIN, 0, 0.2, 0.1, False)
    assert cl.reprice_due(p, 10 * MIN, 0, 0.16, 0.1, True)
    assert not cl.reprice_due(p, 10 * MIN, 0, 0.14, 0.1, True)
    assert not cl.reprice_due(p, 10 * MIN, 0, 0.16, 0.1, False)
    assert not cl.reprice_due(p.model_copy(update={"controlled_loss_volatility_reprice_min_move_delta": 0.1}),
                              10 * MIN, 0, 0.16, 0.1, True)


# -- through the public interface ------------------------------------------------------------
def settings(**kw) -> Settings:
    s = Settings.defaults()
    return Settings(s.glob, {side: p.model_copy(update=kw) for side, p in s.profiles.items()})


BASE = dict(hard_stop_loss_pct=0.05, hard_stop_loss_atr_enabled=False, hard_stop_loss_min_emergency_pct=0.08,
            controlled_loss_after_zombie_minutes=30.0, controlled_loss_min_drawdown=0.02,
            controlled_loss_ramp_minutes=60.0, controlled_loss_reprice_minutes=10.0,
            controlled_loss_min_move_fraction=0.1, exit_coverage_alert_minutes=0.0)


async def run(s, minutes, *, wick_at=(), bank_pnl="100", ctx=None, step_ms=137_911):
    """Cycles of a long 10 @ 100 with the price at 97; a candle with a high of 99.2 at each
    minute in `wick_at` (it fills a resting sell at or below that)."""
    sim = new_sim()
    sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    store = await StateStore.open(":memory:")
    if bank_pnl is not None:
        await store.record_trade(profile="long", symbol="SOL/USDT:USDT", side="long", opened_ms=T0 - 7_200_000,
                                 closed_ms=T0 - 3_600_000, entry_price=Dec(50), exit_price=Dec(51),
                                 contracts=Dec(10), pnl=Dec(bank_pnl), fees=Dec(0), reason="take_profit")
    bus = EventBus()
    seen: list = []
    bus.subscribe(seen.append)
    runner = ProfileRunner("long", s.side("long"), sim, store, bus, [A], s.glob)
    t, wicks, log = T0, sorted(wick_at), []
    while t < T0 + minutes * MIN:
        if wicks and t - T0 >= wicks[0] * MIN:
            wicks.pop(0)
            sim.on_candle(A, t - 60_000, "97", "99.2", "96.9", "97")
        sim.set_price(A, "97", t)
        snap = await read_snapshot(sim, [A], t)
        await runner.cycle(CycleInput(snap, {A: M}, {}, {A: ctx or MarketContext()}, None, None, set(),
                                      new_candle=False))
        orders = await sim.fetch_open_orders()
        pos = await sim.fetch_positions()
        log.append((t, pos[0].contracts if pos else Dec(0), orders))
        t += step_ms
    trades = await store.trades("long")
    await store.close()
    return sim, seen, log, trades


def _cl_orders(orders):
    return [o for o in orders if o.kind == "limit" and o.reduce_only and o.price is not None
            and o.price < Dec(100)]


async def test_a_zombie_gets_a_ramping_controlled_loss_order_and_keeps_its_resized_stop():
    s = settings(**BASE, controlled_loss_max_position_fraction=0.5)
    sim, seen, log, _ = await run(s, minutes=75, wick_at=(60,))
    placed = [e for e in seen if isinstance(e, OrderEvent) and e.purpose == "controlled_loss"
              and e.action == "placed"]
    assert placed, "no controlled-loss order went out"
    assert 30 * MIN <= placed[0].ts_ms - T0 < 33 * MIN  # once a zombie (30 min held, 3% down)
    # 10% of the way from 100 to the mid 97.005 (99.7005, a sell rounded up), half the size
    assert placed[0].price == Dec("99.71") and placed[0].amount == Dec(5)
    prices = [e.price for e in placed]
    assert prices == sorted(prices, reverse=True) and len(set(prices)) >= 3  # re-priced toward 97
    gaps = [b.ts_ms - a.ts_ms for a, b in zip(placed, placed[1:]) if b.ts_ms - T0 < 60 * MIN]
    assert all(g >= 10 * MIN for g in gaps)  # not more often than CONTROLLED_LOSS_REPRICE_MINUTES
    # before the fill: the controlled-loss order rests next to the stop for the whole position
    t, contracts, orders = next(x for x in log if x[0] - T0 > 45 * MIN)
    assert contracts == 10 and len(_cl_orders(orders)) == 1
    assert [o.amount for o in orders if o.kind == "stop_loss"] == [Dec(10)]
    # the wick filled it: half the position is left and the stop follows the size
    fills = [e for e in seen if isinstance(e, FillEvent) and e.purpose == "controlled_loss"]
    assert fills and sum(f.amount for f in fills) == Dec(5) and fills[0].price < Dec(100)
    t, contracts, orders = log[-1]
    assert contracts == 5
    assert [o.amount for o in orders if o.kind == "stop_loss"] == [Dec(5)]
    # after every cycle exactly one stop rests, sized to the position (never cancelled away)
    for t, contracts, orders in log:
        assert [o.amount for o in orders if o.kind == "stop_loss"] == [contracts], (t - T0) / MIN


async def test_the_whole_zombie_closed_by_the_controlled_loss_exit_is_recorded_with_its_reason():
    s = settings(**BASE, controlled_loss_max_position_fraction=1.0)
    sim, seen, log, trades = await run(s, minutes=70, wick_at=(55,))
    assert await sim.fetch_positions() == []
    [trade] = [e for e in seen if isinstance(e, TradeClosed)]
    assert trade.reason == "controlled_loss" and trade.pnl < 0
    assert trades[-1]["reason"] == "controlled_loss"
    # the loss stayed within the bank (0.75 x 100 today) and the max loss on notional
    assert -trade.pnl <= Dec(75) and trade.exit_price >= Dec(94)


async def test_no_bank_no_controlled_loss_and_the_switch_turns_it_off():
    for kw, pnl in ((BASE, None), (BASE, "4"), ({**BASE, "enable_controlled_loss_exit": False}, "100")):
        s = settings(**kw, controlled_loss_max_position_fraction=1.0)
        sim, seen, _, _ = await run(s, minutes=70, wick_at=(55,), bank_pnl=pnl)
        assert not any(isinstance(e, OrderEvent) and e.purpose == "controlled_loss" for e in seen)
        assert await sim.fetch_positions()


async def test_an_adverse_macro_trend_speeds_the_ramp_up():
    s = settings(**BASE, controlled_loss_max_position_fraction=0.5)
    _, slow, _, _ = await run(s, minutes=55)
    _, fast, _, _ = await run(s, minutes=55, ctx=MarketContext(trend_gap=-0.05))

    def last_price(seen):
        return [e.price for e in seen if isinstance(e, OrderEvent) and e.purpose == "controlled_loss"
                and e.action == "placed"][-1]

    assert last_price(fast) < last_price(slow)
