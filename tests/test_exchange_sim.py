"""SimulatedExchange: matching, reduce-only, stops, cross margin, liquidation, funding, idempotency."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.exchange import errors as E
from engine.exchange.base import Exchange
from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.exchange.types import Market

SYM = "TST/USDT:USDT"
TST = Market(SYM, "TST-USDT", "TST", "USDT", contract_size=Decimal("1"), amount_step=Decimal("1"), price_step=Decimal("0.1"), min_amount=Decimal("1"))
OTHER = Market("OTH/USDT:USDT", "OTH-USDT", "OTH", "USDT", Decimal("10"), Decimal("1"), Decimal("0.01"), Decimal("1"))
H8 = 8 * 3600 * 1000
M5 = 300_000


def d(x) -> Decimal:
    return Decimal(str(x))


def make(**kw) -> SimulatedExchange:
    sim = SimulatedExchange([TST, OTHER], SimConfig(**kw), start_ms=M5)
    sim.set_price(SYM, "100")
    sim.set_price(OTHER.symbol, "5")
    return sim


async def open_long(sim: SimulatedExchange, contracts=10, price="99", cid=1, ts=M5):
    order = await sim.place_post_only(SYM, "buy", d(contracts), d(price), cid)
    sim.on_candle(SYM, ts, "100", "100", d(price) - 1, "100")
    return order


def test_implements_the_interface():
    assert isinstance(make(), Exchange)


# --------------------------------------------------------------------------- post-only and limits


async def test_post_only_rejected_when_it_would_cross():
    sim = make()  # bid 100.0, ask 100.1
    with pytest.raises(E.PostOnlyWouldCross):
        await sim.place_post_only(SYM, "buy", d(1), d("100.1"), 1)
    with pytest.raises(E.PostOnlyWouldCross):
        await sim.place_post_only(SYM, "sell", d(1), d("100"), 2)
    buy = await sim.place_post_only(SYM, "buy", d(1), d("100.05"), 3)  # rounds down to 100.0
    sell = await sim.place_post_only(SYM, "sell", d(1), d("100.05"), 4)  # rounds up to 100.1
    assert (buy.price, sell.price) == (d("100"), d("100.1"))
    assert len(await sim.fetch_open_orders()) == 2


async def test_resting_limit_fills_only_when_traded_through_at_its_price_with_maker_fee():
    sim = make()
    await sim.place_post_only(SYM, "buy", d(10), d(99), 1)
    sim.on_candle(SYM, M5, "100", "100.5", "99", "99.5")  # touches 99: no fill
    assert await sim.fetch_positions() == []
    sim.on_candle(SYM, 2 * M5, "99.5", "99.8", "98.9", "99.2")
    (position,) = await sim.fetch_positions()
    assert (position.side, position.contracts, position.entry_price) == ("long", d(10), d(99))
    (fill,) = await sim.fetch_fills([SYM], 0)
    assert fill.maker and fill.fee == d(10) * d(99) * d("0.0002") and fill.ts_ms == 3 * M5 - 1


async def test_fill_on_touch_option():
    sim = make(fill_on_touch=True)
    await sim.place_post_only(SYM, "buy", d(10), d(99), 1)
    sim.on_candle(SYM, M5, "100", "100.5", "99", "99.5")
    assert (await sim.fetch_positions())[0].contracts == d(10)


async def test_partial_fills_per_candle():
    sim = make(partial_fill_fraction=d("0.3"))
    order = await sim.place_post_only(SYM, "buy", d(10), d(99), 1)
    filled = []
    for i in range(4):
        sim.on_candle(SYM, (i + 1) * M5, "99.5", "99.6", "98", "99")
        filled.append((await sim.fetch_order(SYM, order_id=order.id)).filled)
    assert filled == [d(3), d(6), d(9), d(10)]
    assert (await sim.fetch_order(SYM, client_order_id=1)).status == "filled"


async def test_entry_needs_free_margin():
    sim = make(initial_wallet=d(100), default_leverage=d(5))
    await sim.place_post_only(SYM, "buy", d(5), d(99), 1)  # 99 margin of 100
    with pytest.raises(E.InsufficientMargin):
        await sim.place_post_only(SYM, "buy", d(1), d(99), 2)


# --------------------------------------------------------------------------- reduce-only


async def test_reduce_only_never_opens_a_position():
    sim = make()
    with pytest.raises(E.ReduceOnlyFrozen):
        await sim.place_reduce_only_limit(SYM, "long", d(1), d(105), 1)
    with pytest.raises(E.ReduceOnlyFrozen):
        await sim.close_reduce_only_market(SYM, "short", d(1), 2)
    await open_long(sim)
    with pytest.raises(E.ReduceOnlyFrozen):  # wrong side: this is a long
        await sim.place_reduce_only_limit(SYM, "short", d(1), d(95), 3)


async def test_closeable_amount_is_reserved_by_open_close_orders():
    sim = make()
    await open_long(sim, contracts=10)
    await sim.place_reduce_only_limit(SYM, "long", d(6), d(105), 2)
    (position,) = await sim.fetch_positions()
    assert position.closeable == d(4)
    with pytest.raises(E.ReduceOnlyFrozen):
        await sim.place_stop_loss(SYM, "long", d(10), d(95), 3)  # the ladder reserves 6
    await sim.place_stop_loss(SYM, "long", d(4), d(95), 4)
    with pytest.raises(E.ReduceOnlyFrozen):
        await sim.close_reduce_only_market(SYM, "long", d(1), 5)


async def test_reduce_only_is_capped_at_fill_time_and_never_flips():
    sim = make(stops_reserve_closeable=False)
    await open_long(sim, contracts=10)
    await sim.place_reduce_only_limit(SYM, "long", d(10), d(105), 2)
    stop = await sim.place_stop_loss(SYM, "long", d(10), d(95), 3)
    sim.on_candle(SYM, 2 * M5, "100", "106", "94", "100")  # stop first (pessimistic), then the limit
    assert await sim.fetch_positions() == []
    assert (await sim.fetch_order(SYM, order_id=stop.id)).status == "filled"
    assert (await sim.fetch_order(SYM, client_order_id=2)).status == "canceled"  # nothing left to reduce
    assert await sim.fetch_open_orders() == []


async def test_marketable_reduce_only_limit_and_market_close_fill_as_taker():
    sim = make()
    await open_long(sim, contracts=10)
    order = await sim.place_reduce_only_limit(SYM, "long", d(4), d(99), 2)  # below the bid of 100
    assert order.status == "filled" and order.average_price == d(100)
    close = await sim.close_reduce_only_market(SYM, "long", d(6), 3)
    assert close.status == "filled"
    fills = await sim.fetch_fills([SYM], 0)
    assert [(f.maker, f.price, f.amount) for f in fills[1:]] == [(False, d(100), d(4)), (False, d(100), d(6))]
    assert fills[2].fee == d(6) * d(100) * d("0.0005")
    assert fills[2].realized_pnl == d(6) * (d(100) - d(99))
    assert await sim.fetch_positions() == []


async def test_going_flat_cancels_remaining_close_orders():
    sim = make(stops_reserve_closeable=False)
    await open_long(sim, contracts=10)
    await sim.place_reduce_only_limit(SYM, "long", d(4), d(110), 2)
    await sim.close_reduce_only_market(SYM, "long", d(6), 3)
    stop = await sim.place_stop_loss(SYM, "long", d(4), d(90), 4)
    sim.on_candle(SYM, 2 * M5, "100", "111", "99", "100")  # the ladder rung closes the rest
    assert await sim.fetch_positions() == []
    assert (await sim.fetch_order(SYM, order_id=stop.id)).status == "canceled"


# --------------------------------------------------------------------------- stops


async def test_stop_triggers_on_the_low_and_fills_at_the_trigger():
    sim = make()
    await open_long(sim, contracts=10)
    await sim.place_stop_loss(SYM, "long", d(10), d("95.04"), 2)  # rounds up to 95.1
    sim.on_candle(SYM, 2 * M5, "99", "100", "95.2", "96")
    assert len(await sim.fetch_positions()) == 1
    sim.on_candle(SYM, 3 * M5, "96", "97", "94", "96")
    fill = (await sim.fetch_fills([SYM], 0))[-1]
    assert (fill.price, fill.maker, fill.side) == (d("95.1"), False, "sell")
    assert fill.realized_pnl == d(10) * (d("95.1") - d(99))


async def test_stop_fills_at_the_open_when_the_candle_gaps_through():
    sim = make(slippage_ticks=2)
    await open_long(sim, contracts=10)
    await sim.place_stop_loss(SYM, "long", d(10), d(95), 2)
    sim.on_candle(SYM, 2 * M5, "90", "92", "89", "91")
    assert (await sim.fetch_fills([SYM], 0))[-1].price == d("89.8")  # open 90, 2 ticks worse


async def test_short_stop_triggers_on_the_high():
    sim = make()
    await sim.place_post_only(SYM, "sell", d(5), d(101), 1)
    sim.on_candle(SYM, M5, "100", "102", "100", "100")
    await sim.place_stop_loss(SYM, "short", d(5), d("104.96"), 2)  # rounds down to 104.9
    sim.on_candle(SYM, 2 * M5, "100", "105", "99", "104")
    assert (await sim.fetch_fills([SYM], 0))[-1].price == d("104.9")
    assert await sim.fetch_positions() == []


async def test_stop_already_crossed_is_refused():
    sim = make()
    await open_long(sim)
    with pytest.raises(E.InvalidOrder, match="already crossed"):
        await sim.place_stop_loss(SYM, "long", d(10), d(101), 2)


# --------------------------------------------------------------------------- account


async def test_cross_margin_accounting():
    sim = make(initial_wallet=d(10000), default_leverage=d(5))
    await open_long(sim, contracts=10, price="99")  # fee 0.198
    sim.on_candle(SYM, 2 * M5, "100", "111", "100", "110")
    balance = await sim.fetch_balance()
    wallet = d(10000) - d("0.198")
    assert balance.unrealized_pnl == d(10) * (d(110) - d(99))
    assert balance.equity == wallet + d(110)
    assert balance.used_margin == d(10) * d(110) / d(5)
    assert balance.free == balance.equity - balance.used_margin
    await sim.place_post_only(SYM, "buy", d(5), d(100), 2)  # open entry orders use margin too
    assert (await sim.fetch_balance()).used_margin == d(220) + d(5) * d(100) / d(5)


async def test_liquidation_price_and_liquidation():
    sim = make(initial_wallet=d(300), default_leverage=d(5), maintenance_margin_rate=d("0.005"))
    await open_long(sim, contracts=10, price="100", ts=M5)
    wallet = d(300) - d(10) * d(100) * d("0.0002")
    (position,) = await sim.fetch_positions()
    expected = (d(100) * d(10) - wallet) / (d("0.995") * d(10))
    assert position.liquidation_price == expected
    # at that price equity equals the maintenance margin
    assert wallet + d(10) * (expected - d(100)) == pytest.approx(d("0.005") * expected * d(10))
    sim.on_candle(SYM, 2 * M5, "90", "90", expected + d("0.1"), "85")  # above: survives
    assert len(await sim.fetch_positions()) == 1
    sim.on_candle(SYM, 3 * M5, "80", "80", "69", "75")
    assert await sim.fetch_positions() == []
    fill = (await sim.fetch_fills([SYM], 0))[-1]
    assert fill.price == expected and fill.order_id.startswith("sim-liquidation")
    assert sim.wallet >= 0


async def test_short_liquidation_price_formula():
    sim = make(initial_wallet=d(300), default_leverage=d(5))
    await sim.place_post_only(SYM, "sell", d(10), d(101), 1)
    sim.on_candle(SYM, M5, "100", "102", "100", "100")
    wallet = d(300) - d(10) * d(101) * d("0.0002")
    assert sim.liquidation_price(SYM) == (d(101) * d(10) + wallet) / (d("1.005") * d(10))


async def test_funding_at_funding_times():
    sim = make()
    await open_long(sim, contracts=10, price="99", ts=M5)
    sim.set_funding_rate(SYM, "0.0001")
    wallet = sim.wallet
    sim.on_candle(SYM, H8 - M5, "100", "100", "100", "100")  # ends at 8h: funding not inside
    assert sim.wallet == wallet
    sim.on_candle(SYM, H8, "100", "100", "100", "100")
    assert sim.wallet == wallet - d(10) * d(100) * d("0.0001")
    assert [(p.ts_ms, p.amount) for p in sim.funding_payments] == [(H8, d("-0.1"))]
    rates = await sim.fetch_funding_rates([SYM])
    assert rates[SYM].rate == d("0.0001") and rates[SYM].funding_time_ms == 2 * H8


async def test_a_short_receives_positive_funding():
    sim = make()
    await sim.place_post_only(SYM, "sell", d(10), d(101), 1)
    sim.on_candle(SYM, M5, "100", "102", "100", "100")
    sim.set_funding_rate(SYM, "0.0001")
    wallet = sim.wallet
    sim.on_candle(SYM, H8, "100", "100", "100", "100")
    assert sim.wallet == wallet + d("0.1")


# --------------------------------------------------------------------------- idempotency, amend, determinism


async def test_same_client_id_returns_the_existing_order():
    sim = make()
    first = await sim.place_post_only(SYM, "buy", d(1), d(99), 77)
    again = await sim.place_post_only(SYM, "buy", d(1), d(98), 77)
    assert again == first and len(sim.all_orders()) == 1 and sim.resubmissions == 1
    with pytest.raises(E.InvalidOrder):
        await sim.place_post_only(SYM, "sell", d(1), d(101), 77)  # same id, different order


async def test_amend_replaces_only_the_unfilled_rest():
    sim = make(partial_fill_fraction=d("0.4"))
    order = await sim.place_post_only(SYM, "buy", d(10), d(99), 1)
    sim.on_candle(SYM, M5, "99.5", "99.6", "98", "99.5")  # 4 of 10 filled
    new = await sim.amend_order(order, new_client_order_id=2, price=d("98.5"))
    assert (new.amount, new.price, new.client_order_id) == (d(6), d("98.5"), 2)
    assert (await sim.fetch_order(SYM, order_id=order.id)).status == "canceled"
    with pytest.raises(E.InvalidOrder):
        await sim.amend_order(new, new_client_order_id=2, price=d(98))


async def test_stop_amend_keeps_the_position_protected():
    sim = make(stops_reserve_closeable=False)
    await open_long(sim)
    stop = await sim.place_stop_loss(SYM, "long", d(10), d(95), 2)
    moved = await sim.amend_order(stop, new_client_order_id=3, price=d(97))
    assert moved.trigger_price == d(97)
    assert [o.client_order_id for o in await sim.fetch_open_orders()] == [3]
    ids = [o.client_order_id for o in sim.all_orders()]
    assert ids.index(3) > ids.index(2)  # placed after the old one; old cancelled afterwards


async def test_stop_amend_falls_back_to_cancel_first_when_size_is_reserved():
    sim = make(stops_reserve_closeable=True)
    await open_long(sim)
    stop = await sim.place_stop_loss(SYM, "long", d(10), d(95), 2)
    moved = await sim.amend_order(stop, new_client_order_id=3, price=d(97))
    assert moved.trigger_price == d(97) and [o.id for o in await sim.fetch_open_orders()] == [moved.id]


async def _scenario() -> list:
    sim = make(partial_fill_fraction=d("0.5"))
    await sim.place_post_only(SYM, "buy", d(7), d(99), 1)
    for i, (o, h, lo, c) in enumerate([(100, 101, 98, 99), (99, 100, 97, 98), (98, 104, 98, 103), (103, 106, 96, 97)]):
        sim.on_candle(SYM, (i + 1) * M5, o, h, lo, c)
        if i == 1:
            await sim.place_stop_loss(SYM, "long", d(6), d("96.5"), 2)  # 6 of 7 filled by now
    return [(f.id, f.price, f.amount, f.fee, f.ts_ms) for f in await sim.fetch_fills([SYM], 0)] + [sim.wallet]


async def test_deterministic():
    first, second = await _scenario(), await _scenario()
    assert first == second and len(first) > 3


async def test_fetch_fills_since_and_symbols():
    sim = make()
    await open_long(sim, ts=M5)
    assert len(await sim.fetch_fills([SYM], 0)) == 1
    assert await sim.fetch_fills([SYM], 2 * M5) == []
    assert await sim.fetch_fills([OTHER.symbol], 0) == []
    tops = await sim.fetch_order_book_top([SYM])
    assert (tops[SYM].bid, tops[SYM].ask) == (d(100), d("100.1"))
