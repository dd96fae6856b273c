"""One `Exchange` contract, run against every implementation, so a venue cannot drift.

Implementations (the `venue` fixture's params):

- ``sim``: `SimulatedExchange` configured as paper mode and replay run it
  (`stops_reserve_closeable=False`, engine/runtime/live.py and replay.py);
- ``faults``: the same simulator behind `FaultInjectingExchange` (timeouts, network errors, rate
  limits and lost responses on a fixed seed) behind `RetryingExchange`: the contract must hold
  after the retry layer;
- ``htx-loopback``: `HtxExchange` through ccxt's real client, signing and HTTP against the
  loopback fake HTX v5 venue (tests/fake_htx_venue.py), network denied.

Every test uses only the public `Exchange` interface (engine/exchange/base.py) for what it
asserts; the market is moved by a candle on the book that backs the implementation (the
simulator's `on_candle`, the fake venue's `candle`), the one thing the interface cannot do.
Clocks start and stay off candle boundaries.

Drift found between the implementations is either fixed (engine/exchange/resilient.py: a client
id lookup that finds a *different* order) or marked xfail(strict=True) with the reason naming
it, so the mark fails the day the drift is fixed.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

import pytest

from engine.exchange import errors as E
from engine.exchange.base import Exchange
from engine.exchange.faults import FaultInjectingExchange, FaultRates
from engine.exchange.resilient import RetryingExchange
from engine.exchange.retry import RetryPolicy
from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.exchange.types import Market, Order

from fake_htx_venue import BTC, CONTRACTS, ETH, XRP

IMPLEMENTATIONS = ("sim", "faults", "htx-loopback")
START_MS = 1_637_000_123_457  # 2021-11-15, deliberately not on a 5 m boundary
OFF_BOUNDARY_MS = 1_234  # after every candle the clock moves this far into the next one
WALLET = Decimal("10000")
LEVERAGE = 5
FUNDING = Decimal("0.0001")
SIM_PRICES = {XRP: "1.0512", ETH: "3000.00", BTC: "60000.0"}
EXPECTED_MARKETS = {c.symbol: c for c in CONTRACTS}


def d(x: object) -> Decimal:
    return Decimal(str(x))


async def _no_sleep(_: float) -> None:
    return None


def fast_policy(attempts: int = 12) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, base_delay=0, reconcile_delay=0, seed=0, sleep=_no_sleep)


#: faults the retry layer must absorb (no `reject`: an injected refusal is a refusal, not a
#: fault to hide; no `delayed_fill`: fills are polled with overlap by the runtime, not here)
FAULTS = FaultRates(timeout=0.12, network=0.08, rate_limit=0.05, lost_response=0.15)


def xfail_on(name: str, reason: str):
    """Strict xfail for one implementation's drift (the others must pass)."""
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))


@dataclass
class Venue:
    """One implementation under the contract, with the few test-only levers it needs."""

    name: str
    ex: Exchange
    book: SimulatedExchange  # the state behind it (the simulator, or the fake venue's one)
    reopen: Callable[[], Awaitable[Exchange]]  # a fresh client on the same venue (a restart)
    htx_venue: object | None = None  # the FakeHtxVenue for htx-loopback
    opened: list[Exchange] = field(default_factory=list)

    def tick(self, symbol: str) -> Decimal:
        return self.ex.market(symbol).price_step

    async def touch(self, symbol: str) -> tuple[Decimal, Decimal]:
        top = (await self.ex.fetch_order_book_top([symbol]))[symbol]
        assert top.valid, top
        return top.bid, top.ask

    async def trade(self, symbol: str, low: Decimal, high: Decimal) -> None:
        """One closed candle from the current bid, down to `low` and up to `high`, closing where
        it opened; resting orders and stops it reaches fill on the venue."""
        bid, _ = await self.touch(symbol)
        o = c = bid
        lo, hi = min(low, o), max(high, o)
        if self.htx_venue is not None:
            venue = self.htx_venue
            ts = venue.klines[symbol][-1].ts_ms + venue.tf_ms
            venue.candle(symbol, ts, o, hi, lo, c)
            venue.now_ms += OFF_BOUNDARY_MS
        else:
            step = self.book.config.candle_ms
            ts = -(-self.book.now_ms // step) * step  # the next candle that opens
            self.book.on_candle(symbol, ts, o, hi, lo, c)
            self.book.set_price(symbol, c, ts_ms=self.book.now_ms + OFF_BOUNDARY_MS)

    async def resting_bid(self, symbol: str, ticks: int = 20) -> Decimal:
        bid, _ = await self.touch(symbol)
        return bid - ticks * self.tick(symbol)

    async def resting_ask(self, symbol: str, ticks: int = 20) -> Decimal:
        _, ask = await self.touch(symbol)
        return ask + ticks * self.tick(symbol)

    async def open_position(self, symbol: str, side: str, contracts: str, cid: int) -> Order:
        """A post-only entry 5 ticks off the touch, then a candle through it: the fill."""
        if side == "long":
            price = await self.resting_bid(symbol, 5)
            order = await self.ex.place_post_only(symbol, "buy", d(contracts), price, cid)
            await self.trade(symbol, price - self.tick(symbol), price)
        else:
            price = await self.resting_ask(symbol, 5)
            order = await self.ex.place_post_only(symbol, "sell", d(contracts), price, cid)
            await self.trade(symbol, price, price + self.tick(symbol))
        return order


async def _sim_venue(markets: list[Market]) -> SimulatedExchange:
    sim = SimulatedExchange(markets, SimConfig(initial_wallet=WALLET, stops_reserve_closeable=False),
                            start_ms=START_MS)
    for symbol, price in SIM_PRICES.items():
        sim.set_price(symbol, price)
        sim.set_leverage(symbol, LEVERAGE)
        sim.set_funding_rate(symbol, FUNDING)
    return sim


@pytest.fixture(params=IMPLEMENTATIONS)
async def venue(request, fake_htx_markets, start_fake_htx_venue):
    name = request.param
    opened: list[Exchange] = []
    if name == "htx-loopback":
        from engine.exchange.htx import HtxExchange

        async with start_fake_htx_venue() as htx_venue:
            htx_venue.now_ms += OFF_BOUNDARY_MS  # the venue starts on a candle boundary: move off it

            async def reopen() -> Exchange:
                ex = HtxExchange(htx_venue.htx_config(retry=RetryPolicy(
                    max_attempts=3, base_delay=0.01, max_delay=0.05, reconcile_delay=0.01, seed=1)))
                await ex.load_markets()
                opened.append(ex)
                return ex

            try:
                yield Venue(name, await reopen(), htx_venue.sim, reopen, htx_venue, opened)
            finally:
                for ex in opened:
                    await ex.close()
        return
    sim = await _sim_venue(fake_htx_markets)
    # a fixed seed per test, different between tests; CROT_CONTRACT_SEED shifts them all (soak runs)
    base = (zlib.crc32(request.node.name.encode()) + int(os.environ.get("CROT_CONTRACT_SEED", "0"))) % 100_000
    seeds = iter(range(base, base + 1000))

    async def reopen() -> Exchange:
        if name == "sim":
            return sim
        return RetryingExchange(FaultInjectingExchange(sim, seed=next(seeds), rates=FAULTS), fast_policy())

    v = Venue(name, await reopen(), sim, reopen, None, opened)
    await v.ex.load_markets()
    yield v


async def open_orders(v: Venue, symbols=None) -> list[Order]:
    return await v.ex.fetch_open_orders(symbols)


def by_cid(orders: list[Order], cid: int) -> list[Order]:
    return [o for o in orders if o.client_order_id == cid]


# --------------------------------------------------------------------------- interface, markets


async def test_implements_the_interface(venue):
    assert isinstance(venue.ex, Exchange)


async def test_markets_state_contract_size_steps_and_minimum_alike(venue):
    markets = await venue.ex.load_markets()
    assert set(markets) == set(EXPECTED_MARKETS)  # USDT-M perpetuals only (no dated future)
    for symbol, contract in EXPECTED_MARKETS.items():
        m = markets[symbol]
        assert venue.ex.market(symbol) == m
        assert (m.venue_id, m.base, m.quote) == (contract.code, contract.base, "USDT")
        assert m.contract_size == contract.contract_size, symbol
        assert m.price_step == contract.price_tick, symbol
        assert (m.amount_step, m.min_amount) == (Decimal(1), Decimal(1)), symbol
        assert m.active
    with pytest.raises(E.InvalidOrder):
        venue.ex.market("NOPE/USDT:USDT")
    assert set(await venue.ex.load_markets(reload=True)) == set(EXPECTED_MARKETS)


async def test_leverage_funding_and_book_top(venue):
    assert await venue.ex.fetch_leverage(XRP) == LEVERAGE
    rates = await venue.ex.fetch_funding_rates([XRP, ETH])
    assert set(rates) == {XRP, ETH}
    assert all(r.rate == FUNDING and r.symbol == s for s, r in rates.items())
    tops = await venue.ex.fetch_order_book_top([XRP, ETH, BTC])
    for symbol, top in tops.items():
        tick = venue.tick(symbol)
        assert top.valid and top.symbol == symbol
        assert top.bid % tick == 0 and top.ask % tick == 0


# --------------------------------------------------------------------------- post-only entries


async def test_post_only_entry_rests_open_with_its_client_order_id(venue):
    price = await venue.resting_bid(XRP)
    placed = await venue.ex.place_post_only(XRP, "buy", d(3), price, 1001)
    assert (placed.status, placed.client_order_id, placed.symbol, placed.side) == ("open", 1001, XRP, "buy")
    assert (placed.kind, placed.post_only, placed.reduce_only) == ("limit", True, False)
    assert (placed.amount, placed.price, placed.filled) == (d(3), price, 0)
    [listed] = by_cid(await open_orders(venue, [XRP]), 1001)
    assert (listed.id, listed.status, listed.amount, listed.price) == (placed.id, "open", d(3), price)
    assert listed.post_only and not listed.reduce_only
    for found in (await venue.ex.fetch_order(XRP, client_order_id=1001),
                  await venue.ex.fetch_order(XRP, order_id=placed.id)):
        assert found is not None
        assert (found.id, found.client_order_id, found.status) == (placed.id, 1001, "open")


async def test_post_only_that_would_take_liquidity_is_refused_and_leaves_nothing_open(venue):
    _, ask = await venue.touch(XRP)
    with pytest.raises(E.PostOnlyWouldCross):
        await venue.ex.place_post_only(XRP, "buy", d(2), ask + 3 * venue.tick(XRP), 1002)
    bid, _ = await venue.touch(XRP)
    with pytest.raises(E.PostOnlyWouldCross):
        await venue.ex.place_post_only(XRP, "sell", d(2), bid, 1003)
    assert await open_orders(venue) == []
    assert await venue.ex.fetch_positions() == []


async def test_amounts_round_down_and_prices_to_the_passive_side(venue):
    tick = venue.tick(XRP)
    bid_price = await venue.resting_bid(XRP)
    buy = await venue.ex.place_post_only(XRP, "buy", d("3.9"), bid_price + tick * d("0.6"), 1004)
    assert (buy.amount, buy.price) == (d(3), bid_price)  # amount DOWN, buy price DOWN
    ask_price = await venue.resting_ask(XRP)
    sell = await venue.ex.place_post_only(XRP, "sell", d("2.999"), ask_price - tick * d("0.4"), 1005)
    assert (sell.amount, sell.price) == (d(2), ask_price)  # sell price UP
    listed = {o.client_order_id: o for o in await open_orders(venue, [XRP])}
    assert (listed[1004].amount, listed[1004].price) == (d(3), bid_price)
    assert (listed[1005].amount, listed[1005].price) == (d(2), ask_price)
    with pytest.raises(E.InvalidOrder):  # below one contract after rounding: refused, not sent
        await venue.ex.place_post_only(XRP, "buy", d("0.9"), bid_price, 1006)
    assert set(listed) == {o.client_order_id for o in await open_orders(venue)}


# --------------------------------------------------------------------------- cancel


async def test_cancel_then_cancel_again_then_cancel_unknown(venue):
    placed = await venue.ex.place_post_only(XRP, "buy", d(2), await venue.resting_bid(XRP), 1010)
    final = await venue.ex.cancel_order(placed)
    assert (final.id, final.status, final.filled) == (placed.id, "canceled", 0)
    assert by_cid(await open_orders(venue), 1010) == []
    again = await venue.ex.cancel_order(placed)  # already gone: its final state, no crash
    assert (again.id, again.status) == (placed.id, "canceled")
    by_id = await venue.ex.fetch_order(XRP, order_id=placed.id)
    assert by_id is not None and by_id.status == "canceled"
    with pytest.raises(E.OrderNotFound):
        await venue.ex.cancel_order(replace(placed, id="424242424242", client_order_id=None))


async def test_unknown_orders_read_as_none(venue):
    assert await venue.ex.fetch_order(XRP, client_order_id=987_654) is None
    assert await venue.ex.fetch_order(XRP, order_id="424242424242") is None
    assert await venue.ex.fetch_order(XRP, client_order_id=987_655, kind="stop_loss") is None


async def test_a_cancelled_order_can_still_be_read_by_client_id(venue):
    placed = await venue.ex.place_post_only(XRP, "buy", d(2), await venue.resting_bid(XRP), 1011)
    await venue.ex.cancel_order(placed)
    found = await venue.ex.fetch_order(XRP, client_order_id=1011)
    assert found is not None and (found.id, found.status) == (placed.id, "canceled")


async def test_open_orders_are_filtered_by_symbol(venue):
    xrp = await venue.ex.place_post_only(XRP, "buy", d(1), await venue.resting_bid(XRP), 1020)
    eth = await venue.ex.place_post_only(ETH, "buy", d(1), await venue.resting_bid(ETH), 1021)
    assert [o.id for o in await open_orders(venue, [XRP])] == [xrp.id]
    assert [o.id for o in await open_orders(venue, [ETH])] == [eth.id]
    assert {o.id for o in await open_orders(venue, [XRP, ETH])} == {xrp.id, eth.id}
    assert {o.id for o in await open_orders(venue)} == {xrp.id, eth.id}
    assert await open_orders(venue, [BTC]) == []


async def test_amend_moves_the_price_under_a_new_client_id(venue):
    tick = venue.tick(XRP)
    placed = await venue.ex.place_post_only(XRP, "buy", d(4), await venue.resting_bid(XRP, 30), 1030)
    moved = await venue.ex.amend_order(placed, new_client_order_id=1031, price=placed.price + 10 * tick)
    assert moved is not None
    assert (moved.client_order_id, moved.price, moved.amount) == (1031, placed.price + 10 * tick, d(4))
    assert [o.client_order_id for o in await open_orders(venue, [XRP])] == [1031]
    old = await venue.ex.fetch_order(XRP, order_id=placed.id)
    assert old is not None and old.status == "canceled"
    with pytest.raises(E.InvalidOrder):  # an amend needs a new client id
        await venue.ex.amend_order(moved, new_client_order_id=1031, price=placed.price)


# --------------------------------------------------------------------------- fills, positions, balance


@pytest.mark.parametrize("side", ["long", "short"])
async def test_a_fill_creates_the_position_with_side_contracts_and_entry_price(venue, side):
    order = await venue.open_position(XRP, side, "5", 1040)
    [pos] = await venue.ex.fetch_positions()
    assert (pos.symbol, pos.side, pos.contracts, pos.entry_price) == (XRP, side, d(5), order.price)
    assert pos.closeable == d(5) and pos.margin_mode == "cross" and pos.leverage == LEVERAGE
    assert [p.symbol for p in await venue.ex.fetch_positions([XRP])] == [XRP]
    assert await venue.ex.fetch_positions([ETH]) == []
    filled = await venue.ex.fetch_order(XRP, order_id=order.id)
    assert filled is not None and (filled.status, filled.filled, filled.average_price) == ("filled", d(5), order.price)
    assert by_cid(await open_orders(venue), 1040) == []
    gone = await venue.ex.cancel_order(order)  # cancelling a filled order: its final state
    assert (gone.id, gone.status, gone.filled) == (order.id, "filled", d(5))
    fills = [f for f in await venue.ex.fetch_fills([XRP], 0) if f.order_id == order.id]
    assert sum(f.amount for f in fills) == d(5)
    assert all(f.price == order.price and f.maker and f.client_order_id == 1040 for f in fills)


async def test_balance_equity_follows_fees_and_unrealized_pnl(venue):
    before = await venue.ex.fetch_balance()
    assert (before.equity, before.unrealized_pnl, before.used_margin, before.currency) == (WALLET, 0, 0, "USDT")
    assert before.free == WALLET
    resting = await venue.ex.place_post_only(ETH, "buy", d(10), await venue.resting_bid(ETH), 1050)
    with_order = await venue.ex.fetch_balance()
    assert with_order.used_margin > 0 and with_order.free < with_order.equity == WALLET  # entry margin held
    await venue.ex.cancel_order(resting)
    await venue.open_position(XRP, "long", "50", 1051)
    after = await venue.ex.fetch_balance()
    [pos] = await venue.ex.fetch_positions()
    fee = sum(f.fee for f in await venue.ex.fetch_fills([XRP], 0))
    assert fee > 0
    assert after.unrealized_pnl == pos.unrealized_pnl
    assert after.equity == WALLET - fee + pos.unrealized_pnl
    assert after.used_margin > 0 and after.free < after.equity


async def test_reduce_only_market_close_fills_at_the_touch_and_flattens(venue):
    entry = await venue.open_position(XRP, "long", "5", 1060)
    bid, _ = await venue.touch(XRP)
    part = await venue.ex.close_reduce_only_market(XRP, "long", d("2.9"), 1061)  # rounds DOWN to 2
    assert (part.kind, part.side, part.reduce_only, part.client_order_id) == ("market", "sell", True, 1061)
    assert part.amount == d(2)
    [pos] = await venue.ex.fetch_positions()
    assert (pos.side, pos.contracts) == ("long", d(3))
    rest = await venue.ex.close_reduce_only_market(XRP, "long", d(3), 1062)
    assert await venue.ex.fetch_positions() == []
    for order in (part, rest):
        read = await venue.ex.fetch_order(XRP, order_id=order.id, kind="market")
        assert read is not None and (read.status, read.filled) == ("filled", order.amount)
    closes = [f for f in await venue.ex.fetch_fills([XRP], 0) if f.side == "sell"]
    assert sum(f.amount for f in closes) == d(5)
    assert all(f.price == bid and not f.maker for f in closes)
    size = venue.ex.market(XRP).contract_size
    assert sum(f.realized_pnl or 0 for f in closes) == d(5) * size * (bid - entry.price)


async def test_market_open_fills_at_the_touch_adds_and_is_never_sent_twice(venue):
    """open_market (the BTC hedge's order; HTX v5 POST /v5/trade/order type=market, no
    reduce_only): fills at once at the touch, opens from flat and adds; the same client id
    again is the same order, never a second position."""
    bid, ask = await venue.touch(XRP)
    first = await venue.ex.open_market(XRP, "sell", d("4.7"), 1065)  # rounds DOWN to 4
    assert (first.kind, first.side, first.reduce_only, first.amount, first.client_order_id) == (
        "market", "sell", False, d(4), 1065)
    again = await venue.ex.open_market(XRP, "sell", d(4), 1065)
    assert again.id == first.id
    [pos] = await venue.ex.fetch_positions()
    assert (pos.side, pos.contracts, pos.entry_price) == ("short", d(4), bid)
    await venue.ex.open_market(XRP, "sell", d(2), 1066)
    [pos] = await venue.ex.fetch_positions()
    assert (pos.side, pos.contracts) == ("short", d(6))
    fills = [f for f in await venue.ex.fetch_fills([XRP], 0) if f.side == "sell"]
    assert sum(f.amount for f in fills) == d(6) and all(not f.maker for f in fills)
    with pytest.raises(E.InsufficientMargin):  # far beyond the wallet at 5x
        await venue.ex.open_market(BTC, "buy", d(10_000_000), 1067)
    assert {p.symbol for p in await venue.ex.fetch_positions()} == {XRP}


# --------------------------------------------------------------------------- reduce-only rules


async def test_reduce_only_without_a_position_is_refused(venue):
    price = await venue.resting_ask(XRP)
    with pytest.raises(E.ReduceOnlyFrozen):
        await venue.ex.place_reduce_only_limit(XRP, "long", d(2), price, 1070)
    with pytest.raises(E.ReduceOnlyFrozen):
        await venue.ex.close_reduce_only_market(XRP, "short", d(2), 1071)
    bid, _ = await venue.touch(XRP)
    with pytest.raises(E.ReduceOnlyFrozen):
        await venue.ex.place_stop_loss(XRP, "long", d(2), bid - 50 * venue.tick(XRP), 1072)
    assert await open_orders(venue) == [] and await venue.ex.fetch_positions() == []


async def test_reduce_only_bigger_than_the_position_or_on_the_wrong_side_is_refused(venue):
    """HTX 1048 "Insufficient close amount available" / 1492: refused, never capped at placement
    (the simulator's documented rule: reduce-only never more than the closeable amount)."""
    await venue.open_position(XRP, "long", "5", 1080)
    with pytest.raises(E.ReduceOnlyFrozen):
        await venue.ex.place_reduce_only_limit(XRP, "long", d(6), await venue.resting_ask(XRP), 1081)
    with pytest.raises(E.ReduceOnlyFrozen):
        await venue.ex.close_reduce_only_market(XRP, "long", d(6), 1082)
    with pytest.raises(E.ReduceOnlyFrozen):  # a short's close (a buy) against a long
        await venue.ex.close_reduce_only_market(XRP, "short", d(1), 1083)
    [pos] = await venue.ex.fetch_positions()
    assert (pos.side, pos.contracts) == ("long", d(5))
    assert await open_orders(venue) == []


async def test_resting_reduce_only_limits_reserve_the_closeable_amount(venue):
    await venue.open_position(XRP, "long", "5", 1090)
    take = await venue.ex.place_reduce_only_limit(XRP, "long", d(3), await venue.resting_ask(XRP), 1091)
    assert (take.status, take.side, take.reduce_only, take.post_only) == ("open", "sell", True, False)
    [pos] = await venue.ex.fetch_positions()
    assert (pos.contracts, pos.closeable) == (d(5), d(2))
    with pytest.raises(E.ReduceOnlyFrozen):
        await venue.ex.place_reduce_only_limit(XRP, "long", d(3), await venue.resting_ask(XRP, 30), 1092)
    second = await venue.ex.place_reduce_only_limit(XRP, "long", d(2), await venue.resting_ask(XRP, 30), 1093)
    listed = {o.client_order_id for o in await open_orders(venue, [XRP]) if o.reduce_only}
    assert listed == {1091, 1093} and second.amount == d(2)


# --------------------------------------------------------------------------- stops


async def test_a_reduce_only_stop_is_listed_read_back_and_cancelled(venue):
    await venue.open_position(XRP, "long", "5", 1100)
    tick = venue.tick(XRP)
    bid, _ = await venue.touch(XRP)
    trigger = bid - 40 * tick
    stop = await venue.ex.place_stop_loss(XRP, "long", d(5), trigger - tick * d("0.5"), 1101)
    # trigger rounded toward the market (a long's stop UP), amount the position's
    assert (stop.kind, stop.side, stop.reduce_only, stop.trigger_price, stop.amount) == (
        "stop_loss", "sell", True, trigger, d(5))
    assert stop.client_order_id == 1101 and stop.is_open
    [listed] = [o for o in await open_orders(venue, [XRP]) if o.kind == "stop_loss"]
    assert (listed.id, listed.client_order_id, listed.trigger_price, listed.amount, listed.reduce_only) == (
        stop.id, 1101, trigger, d(5), True)
    assert [o for o in await open_orders(venue, [ETH]) if o.kind == "stop_loss"] == []
    found = await venue.ex.fetch_order(XRP, client_order_id=1101, kind="stop_loss")
    assert found is not None and (found.id, found.status) == (stop.id, "open")
    final = await venue.ex.cancel_order(stop)
    assert (final.id, final.status) == (stop.id, "canceled")
    assert [o for o in await open_orders(venue) if o.kind == "stop_loss"] == []
    again = await venue.ex.cancel_order(stop)
    assert again.status == "canceled"
    with pytest.raises(E.OrderNotFound):
        await venue.ex.cancel_order(replace(stop, id="424242424242"))
    [pos] = await venue.ex.fetch_positions()
    assert pos.contracts == d(5)  # cancelling the stop left the position alone


async def test_a_stop_already_through_its_trigger_is_refused(venue):
    await venue.open_position(XRP, "long", "5", 1110)
    _, ask = await venue.touch(XRP)
    with pytest.raises(E.InvalidOrder):
        await venue.ex.place_stop_loss(XRP, "long", d(5), ask + 10 * venue.tick(XRP), 1111)
    assert [o for o in await open_orders(venue) if o.kind == "stop_loss"] == []


async def test_a_stop_larger_than_the_position_never_closes_more_than_the_position(venue):
    """Stops do not reserve the closeable amount in paper/replay and on the venue model
    (`stops_reserve_closeable=False`), so an oversized stop is accepted and capped when it
    triggers: it closes the position and never opens the other side. (With the simulator's
    `stops_reserve_closeable=True` it is refused with `ReduceOnlyFrozen` instead.)"""
    await venue.open_position(XRP, "long", "5", 1120)
    bid, _ = await venue.touch(XRP)
    trigger = bid - 30 * venue.tick(XRP)
    stop = await venue.ex.place_stop_loss(XRP, "long", d(8), trigger, 1121)
    assert stop.amount == d(8)
    await venue.trade(XRP, trigger - 5 * venue.tick(XRP), bid)
    assert await venue.ex.fetch_positions() == []
    assert await open_orders(venue) == []
    closes = [f for f in await venue.ex.fetch_fills([XRP], 0) if f.side == "sell"]
    assert sum(f.amount for f in closes) == d(5)


async def test_a_triggered_stop_closes_the_position_at_the_trigger(venue):
    await venue.open_position(XRP, "short", "4", 1130)
    _, ask = await venue.touch(XRP)
    trigger = ask + 30 * venue.tick(XRP)
    stop = await venue.ex.place_stop_loss(XRP, "short", d(4), trigger + venue.tick(XRP) * d("0.5"), 1131)
    assert (stop.side, stop.trigger_price) == ("buy", trigger)  # a short's stop rounds DOWN
    await venue.trade(XRP, ask, trigger + 5 * venue.tick(XRP))
    assert await venue.ex.fetch_positions() == []
    read = await venue.ex.fetch_order(XRP, order_id=stop.id, kind="stop_loss")
    assert read is not None and read.status == "filled"
    [close] = [f for f in await venue.ex.fetch_fills([XRP], 0) if f.side == "buy"]
    assert (close.amount, close.price, close.maker) == (d(4), trigger, False)


async def test_an_attached_stop_rests_after_the_entry_fills_for_the_entry_volume(venue):
    tick = venue.tick(XRP)
    price = await venue.resting_bid(XRP, 5)
    trigger = price - 40 * tick
    entry = await venue.ex.place_post_only(XRP, "buy", d(4), price, 1125, stop_loss=trigger - tick * d("0.5"))
    assert entry.is_open
    assert [o for o in await open_orders(venue) if o.kind == "stop_loss"] == []  # not activated yet
    with pytest.raises(E.InvalidOrder):  # a stop on the wrong side of the entry is refused
        await venue.ex.place_post_only(XRP, "buy", d(1), price, 1126, stop_loss=price + tick)
    await venue.trade(XRP, price - tick, price)
    [stop] = [o for o in await open_orders(venue, [XRP]) if o.kind == "stop_loss"]
    assert (stop.side, stop.amount, stop.trigger_price, stop.reduce_only, stop.client_order_id) == (
        "sell", d(4), trigger, True, None)
    final = await venue.ex.cancel_order(stop)  # an ordinary stop to cancel
    assert final.status == "canceled"
    assert [o for o in await open_orders(venue) if o.kind == "stop_loss"] == []


async def test_amending_a_stop_leaves_one_stop_at_the_new_trigger(venue):
    await venue.open_position(XRP, "long", "5", 1127)
    tick = venue.tick(XRP)
    bid, _ = await venue.touch(XRP)
    stop = await venue.ex.place_stop_loss(XRP, "long", d(5), bid - 40 * tick, 1128)
    moved = await venue.ex.amend_order(stop, new_client_order_id=1129, price=bid - 20 * tick)
    assert moved is not None and (moved.kind, moved.trigger_price, moved.amount) == ("stop_loss", bid - 20 * tick, d(5))
    stops = [o for o in await open_orders(venue) if o.kind == "stop_loss"]
    assert [(o.client_order_id, o.trigger_price) for o in stops] == [(1129, bid - 20 * tick)]


# --------------------------------------------------------------------------- client order ids


async def test_the_same_client_id_twice_is_one_order(venue):
    price = await venue.resting_bid(XRP)
    first = await venue.ex.place_post_only(XRP, "buy", d(2), price, 1140)
    second = await venue.ex.place_post_only(XRP, "buy", d(2), price, 1140)
    assert second.id == first.id and second.client_order_id == 1140
    assert len(by_cid(await open_orders(venue), 1140)) == 1


async def test_the_same_client_id_from_a_restarted_client_is_one_order(venue):
    """A restart forgets what this process placed; the venue must still refuse a second order
    (HTX 1050 "order number is repeated" -> look it up -> the existing order)."""
    price = await venue.resting_bid(XRP)
    first = await venue.ex.place_post_only(XRP, "buy", d(2), price, 1150)
    restarted = await venue.reopen()
    again = await restarted.place_post_only(XRP, "buy", d(2), price, 1150)
    assert again.id == first.id
    assert len(by_cid(await restarted.fetch_open_orders(), 1150)) == 1
    await venue.open_position(XRP, "long", "3", 1151)
    stop_price = (await venue.touch(XRP))[0] - 40 * venue.tick(XRP)
    stop = await venue.ex.place_stop_loss(XRP, "long", d(3), stop_price, 1152)
    stop_again = await (await venue.reopen()).place_stop_loss(XRP, "long", d(3), stop_price, 1152)
    assert stop_again.id == stop.id
    assert len([o for o in await open_orders(venue) if o.kind == "stop_loss"]) == 1


@pytest.mark.parametrize("venue", [
    "sim", "faults",
    "htx-loopback",  # HTX accepts an expired (filled) client id again: the adapter checks the fills first
], indirect=True)
async def test_a_restarted_client_resending_a_filled_orders_id_does_not_trade_again(venue):
    entry = await venue.open_position(XRP, "long", "5", 1155)
    close = await venue.ex.close_reduce_only_market(XRP, "long", d(2), 1156)
    restarted = await venue.reopen()
    again_entry = await restarted.place_post_only(XRP, "buy", d(5), entry.price, 1155)
    again_close = await restarted.close_reduce_only_market(XRP, "long", d(2), 1156)
    assert (again_entry.id, again_close.id) == (entry.id, close.id)
    [pos] = await restarted.fetch_positions()
    assert pos.contracts == d(3)
    assert await restarted.fetch_open_orders() == []


async def test_a_client_id_reused_for_a_different_order_is_refused(venue):
    first = await venue.ex.place_post_only(XRP, "buy", d(2), await venue.resting_bid(XRP), 1160)
    with pytest.raises(E.InvalidOrder):
        await venue.ex.place_post_only(XRP, "sell", d(2), await venue.resting_ask(XRP), 1160)
    assert [o.id for o in by_cid(await open_orders(venue), 1160)] == [first.id]


# --------------------------------------------------------------------------- the retry layer itself


class _TimeoutBeforeSend:
    """Delegates to the simulator; the first placement of each call name times out before it
    is sent (a pre-send timeout: the caller cannot tell it from a lost reply)."""

    def __init__(self, inner: SimulatedExchange):
        self.inner = inner
        self.name = inner.name
        self.timed_out: set[str] = set()

    def __getattr__(self, attr):
        target = getattr(self.inner, attr)
        if not attr.startswith("place_") and not attr.startswith("close_reduce"):
            return target

        async def call(*args, **kw):
            if attr not in self.timed_out:
                self.timed_out.add(attr)
                raise E.ExchangeTimeout(f"timeout before sending {attr}", venue=self.name)
            return await target(*args, **kw)

        return call


async def test_retry_layer_does_not_hand_back_a_different_order_found_by_client_id(fake_htx_markets):
    """After an ambiguous failure the retry layer looks the client id up; an order it finds
    that is not the one asked for (other side / kind / reduce-only) is the reuse the simulator
    refuses, not a success (fixed in engine/exchange/resilient.py)."""
    sim = await _sim_venue(fake_htx_markets)
    bid, ask = (await sim.fetch_order_book_top([XRP]))[XRP].bid, (await sim.fetch_order_book_top([XRP]))[XRP].ask
    first = await sim.place_post_only(XRP, "buy", d(2), bid - 10 * sim.market(XRP).price_step, 1170)
    ex = RetryingExchange(_TimeoutBeforeSend(sim), fast_policy(4))
    with pytest.raises(E.InvalidOrder):
        await ex.place_post_only(XRP, "sell", d(2), ask + 10 * sim.market(XRP).price_step, 1170)
    with pytest.raises(E.InvalidOrder):
        await ex.place_reduce_only_limit(XRP, "short", d(2), bid - 10 * sim.market(XRP).price_step, 1170)
    # the same order asked again is found and handed back, as before
    again = await ex.place_post_only(XRP, "buy", d(2), first.price, 1170)
    assert again.id == first.id
    assert [o.id for o in await sim.fetch_open_orders()] == [first.id]


async def test_faults_are_really_injected_and_absorbed(fake_htx_markets):
    """The `faults` implementation is not a no-op: over a short session faults of every kind
    fire, and the retry layer still leaves exactly the orders asked for."""
    sim = await _sim_venue(fake_htx_markets)
    faulty = FaultInjectingExchange(sim, seed=5, rates=FAULTS)
    ex = RetryingExchange(faulty, fast_policy())
    tick = sim.market(XRP).price_step
    bid = (await ex.fetch_order_book_top([XRP]))[XRP].bid
    placed = [await ex.place_post_only(XRP, "buy", d(1), bid - (10 + i) * tick, 2000 + i) for i in range(30)]
    for order in placed[:10]:
        await ex.cancel_order(order)
    open_ids = {o.id for o in await ex.fetch_open_orders()}
    assert open_ids == {o.id for o in placed[10:]}
    assert len(sim.all_orders()) == 30  # one order per client id, whatever was lost
    kinds = {fault for _, fault in faulty.injected}
    assert {"timeout", "network", "lost_response"} <= kinds
