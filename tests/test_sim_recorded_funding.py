"""SimulatedExchange charged at recorded funding events (a replay's funding files): the
event times and rates as recorded, unaligned to any interval, sign per side."""

from __future__ import annotations

from decimal import Decimal

from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.exchange.types import Market

SYM = "TST/USDT:USDT"
TST = Market(SYM, "TST-USDT", "TST", "USDT", contract_size=Decimal("0.1"), amount_step=Decimal("1"),
             price_step=Decimal("0.1"), min_amount=Decimal("1"))
M5 = 300_000
T0 = 1_722_470_400_000 + 7 * M5  # an arbitrary candle, not on an 8h boundary
# recorded events: not on the fixed 8h grid, one 17 ms late (as Binance records them), mixed signs
EVENTS = [(T0 + 3 * M5 + 17, "0.0003"), (T0 + 9 * M5, "-0.0002"), (T0 + 40 * M5, "0.0001")]


def d(x) -> Decimal:
    return Decimal(str(x))


def flat(sim: SimulatedExchange, ts: int, px: str = "100") -> None:
    sim.on_candle(SYM, ts, px, px, px, px)


async def _opened(side: str) -> SimulatedExchange:
    sim = SimulatedExchange([TST], SimConfig(), start_ms=T0)
    sim.set_funding_events(SYM, [(T0 - 5 * M5, "0.5")] + EVENTS)  # the past event is never charged
    sim.set_funding_rate(SYM, "0.01")  # the fixed-rate schedule is not used once events are set
    sim.set_price(SYM, "101" if side == "long" else "99")
    if side == "long":
        await sim.place_post_only(SYM, "buy", d(10), d(100), 1)
        sim.on_candle(SYM, T0, "100.5", "100.5", "99.5", "100")
    else:
        await sim.place_post_only(SYM, "sell", d(10), d(100), 1)
        sim.on_candle(SYM, T0, "99.5", "100.5", "99.5", "100")
    assert sim.funding_payments == []
    return sim


async def test_a_long_pays_positive_and_receives_negative_funding_at_the_recorded_times():
    sim = await _opened("long")
    wallet = sim.wallet
    flat(sim, T0 + M5)
    flat(sim, T0 + 2 * M5)
    assert sim.wallet == wallet  # no event inside these candles
    flat(sim, T0 + 3 * M5, "200")  # the event at +17 ms settles at this candle's open
    assert sim.wallet == wallet - d(10) * d("0.1") * d(200) * d("0.0003")
    for k in range(4, 12):
        flat(sim, T0 + k * M5)
    assert [(p.ts_ms, p.rate, p.amount) for p in sim.funding_payments] == [
        (EVENTS[0][0], d("0.0003"), d("-0.06")), (EVENTS[1][0], d("-0.0002"), d("0.02"))]
    assert sim.wallet == wallet - d("0.06") + d("0.02")
    rates = await sim.fetch_funding_rates([SYM])
    assert rates[SYM].rate == d("0.0001") and rates[SYM].funding_time_ms == EVENTS[2][0]


async def test_a_short_receives_positive_funding_and_a_gap_settles_at_the_next_open():
    sim = await _opened("short")
    wallet = sim.wallet
    flat(sim, T0 + 20 * M5, "50")  # a data gap over both first events: settled here, at 50
    assert [p.amount for p in sim.funding_payments] == [d("0.015"), d("-0.01")]
    assert sim.wallet == wallet + d("0.015") - d("0.01")
    flat(sim, T0 + 60 * M5)
    assert len(sim.funding_payments) == 3
    rates = await sim.fetch_funding_rates([SYM])
    assert rates[SYM].rate == 0 and rates[SYM].funding_time_ms is None  # after the recording


async def test_no_position_no_payment():
    sim = SimulatedExchange([TST], SimConfig(), start_ms=T0)
    sim.set_funding_events(SYM, EVENTS)
    for k in range(50):
        flat(sim, T0 + k * M5)
    assert sim.funding_payments == []
