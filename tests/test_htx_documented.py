"""HTX v5 as documented, through ccxt's real client against the loopback venue.

Each test is a regression test for a defect of issue "live real world" that the old, kinder
fake could not show (see the docs cited in tests/fake_htx_venue.py's module docstring).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from engine.exchange import errors as E
from engine.exchange.htx import HtxExchange
from engine.exchange.retry import RetryPolicy
from engine.exchange.testing import deny_network
from engine.exchange.types import Fill
from engine.runtime.account_setup import prepare_account
from engine.runtime.events import ErrorEvent, EventBus
from engine.runtime.live import SteadyClock, until_reachable, wall_clock_ms
from engine.settings.envfile import Assignment
from engine.settings.loader import settings_from_assignments

from fake_htx_venue import ETH, XRP, Fault, FakeHtxVenue, Reply

API_KEY = "AKfake-0a1b2c3d-documented-key"
SECRET = "SKfake-4e5f6a7b-documented-secret"


def policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, reconcile_delay=0.01, seed=3)


@pytest.fixture
async def venue():
    with deny_network():
        async with FakeHtxVenue(api_key=API_KEY, secret=SECRET) as v:
            yield v


async def adapter(venue: FakeHtxVenue, **kw) -> HtxExchange:
    ex = HtxExchange(venue.htx_config(retry=policy(), **kw))
    await ex.load_markets()
    return ex


def price(venue: FakeHtxVenue, symbol: str) -> Decimal:
    return Decimal(str(venue.klines[symbol][-1].close))


async def open_long(venue: FakeHtxVenue, symbol: str = XRP, contracts: str = "5") -> None:
    """A filled long, made on the venue directly (a post-only bid, then a candle through it)."""
    p = price(venue, symbol)
    tick = venue.contracts[symbol].price_tick
    bid = p - 20 * tick
    await venue.sim.place_post_only(symbol, "buy", Decimal(contracts), bid, 999_001)
    ts = venue.klines[symbol][-1].ts_ms + venue.tf_ms
    venue.candle(symbol, ts, p, p, bid - tick, p)


async def test_orders_read_back_carry_the_order_id_not_the_query_id(venue):
    ex = await adapter(venue)
    try:
        p = price(venue, XRP) - 50 * venue.contracts[XRP].price_tick
        await ex.place_post_only(XRP, "buy", Decimal("3"), p, 7001)
        [read] = [o for o in await ex.fetch_open_orders([XRP]) if o.client_order_id == 7001]
        row = next(r for r in [venue._order_row(o) for o in venue.sim.all_orders(XRP)] if r["client_order_id"] == "7001")
        assert row["id"] != row["order_id"] and read.id == row["order_id"]
        await ex.cancel_order(read)
        assert not [o for o in await venue.sim.fetch_open_orders() if o.symbol == XRP]  # really gone
    finally:
        await ex.close()


async def test_a_crossing_post_only_is_accepted_then_cancelled_and_reported_as_crossing(venue):
    ex = await adapter(venue)
    try:
        through = price(venue, XRP) + 30 * venue.contracts[XRP].price_tick  # a bid above the ask
        with pytest.raises(E.PostOnlyWouldCross):
            await ex.place_post_only(XRP, "buy", Decimal("2"), through, 7002)
        assert len(venue.system_cancels) == 1  # the venue took it, then cancelled it itself
        assert venue.duplicate_client_ids == []
    finally:
        await ex.close()


async def test_a_filled_close_whose_reply_was_lost_is_found_by_its_fills_not_sent_again(venue):
    await open_long(venue, XRP, "5")
    ex = await adapter(venue, timeout_ms=400)
    try:
        lost = venue.inject(Fault("POST", "/v5/trade/order", lambda r: r.body.get("type") == "market",
                                  execute=True, delay=0.8, name="close filled, reply lost"))
        order = await ex.close_reduce_only_market(XRP, "long", Decimal("5"), 7003)
        assert len(lost.hits) == 1
        posts = [r for r in venue.calls("POST", "/v5/trade/order") if r.body.get("client_order_id") == 7003]
        assert len(posts) == 1, "a close that the venue filled must never be sent again"
        # the client-id lookup was answered 1067 (the id expired with the fill)
        lookups = [r for r in venue.calls("GET", "/v5/trade/order") if r.query.get("client_order_id") == "7003"]
        assert lookups and all(r.reply["code"] == 1067 for r in lookups)
        assert order.status == "filled" and order.client_order_id == 7003
        assert await venue.sim.fetch_positions() == []
        assert venue.reused_client_ids == []
    finally:
        await ex.close()


async def test_fills_are_paged_within_the_documented_limit_of_100(venue):
    ex = await adapter(venue)
    now = venue.now_ms
    fills = [Fill(id=f"fill-{i}", order_id="order-0", client_order_id=None, symbol=ETH, side="buy",
                  price=Decimal("3000"), amount=Decimal("1"), fee=Decimal("0.01"), fee_currency="USDT",
                  maker=True, ts_ms=now - 3_600_000 + i * 1000) for i in range(250)]

    async def fetch_fills(symbols, since):
        return [f for f in fills if f.symbol in symbols and f.ts_ms >= since]

    venue.sim.fetch_fills = fetch_fills  # type: ignore[method-assign]
    try:
        got = await ex.fetch_fills([ETH], now - 2 * 3_600_000)
        assert len(got) == 250 and len({f.id for f in got}) == 250
        limits = {int(r.query["limit"]) for r in venue.calls("GET", "/v5/trade/order/details")}
        assert limits == {100}
        assert ex.truncated_fills == []
    finally:
        await ex.close()


async def test_the_venue_refuses_a_fills_page_over_100(venue):
    ex = await adapter(venue)
    try:
        with pytest.raises(Exception, match="1067"):  # ccxt's own error: straight from the client
            await ex._ccxt.fetch_my_trades(ETH, venue.now_ms - 3_600_000, 500)
    finally:
        await ex.close()


async def test_stop_trigger_price_type_is_sent_and_the_stop_is_read_back(venue):
    await open_long(venue, XRP, "5")
    ex = await adapter(venue, stop_trigger_price_type="mark")
    try:
        trigger = price(venue, XRP) * Decimal("0.98")
        stop = await ex.place_stop_loss(XRP, "long", Decimal("5"), trigger, 7004)
        body = venue.calls("POST", "/v5/algo/order")[-1].body
        assert body["sl_trigger_price_type"] == "mark" and "position_side" not in body
        reads = [r for r in venue.calls("GET", "/v5/algo/order") if r.query.get("algo_id") == stop.id]
        assert reads, "a new stop is read back to confirm size and trigger"
    finally:
        await ex.close()


async def test_a_stop_the_venue_does_not_hold_after_placing_is_an_error(venue):
    await open_long(venue, XRP, "5")
    ex = await adapter(venue)
    try:
        venue.inject(Fault("GET", "/v5/algo/order", execute=False, reply=Reply(json={"code": 200, "data": [],
                                                                                  "ts": venue.now_ms}), times=9))
        with pytest.raises(E.TransientError):
            await ex.place_stop_loss(XRP, "long", Decimal("5"), price(venue, XRP) * Decimal("0.98"), 7005)
    finally:
        await ex.close()


async def test_a_stop_placed_on_the_website_is_seen(venue):
    await open_long(venue, XRP, "5")
    await venue.place_website_stop(XRP, price(venue, XRP) * Decimal("0.9"))
    ex = await adapter(venue)
    try:
        stops = [o for o in await ex.fetch_open_orders([XRP]) if o.kind == "stop_loss"]
        assert len(stops) == 1 and stops[0].client_order_id is None and stops[0].amount == 5
    finally:
        await ex.close()


async def test_order_ban_1084_holds_entries_until_it_ends_and_still_sends_stops(venue):
    await open_long(venue, XRP, "5")
    ex = await adapter(venue)
    message = "Your contract API is disabled, please try again after 2099-01-01 00:00:00 (GMT+8)."
    try:
        venue.inject(Fault("POST", "/v5/trade/order", execute=False,
                           reply=Reply(json={"code": 1084, "message": message, "data": None, "ts": venue.now_ms})))
        bid = price(venue, ETH) - 50 * venue.contracts[ETH].price_tick
        with pytest.raises(E.OrderBan) as caught:
            await ex.place_post_only(ETH, "buy", Decimal("1"), bid, 7006)
        assert caught.value.until_ms == 4070880000000 and ex.ban_until_ms == caught.value.until_ms
        sent = len(venue.calls("POST", "/v5/trade/order"))
        with pytest.raises(E.OrderBan):
            await ex.place_post_only(ETH, "buy", Decimal("1"), bid, 7007)
        assert len(venue.calls("POST", "/v5/trade/order")) == sent  # not even sent during the ban
        await ex.place_stop_loss(XRP, "long", Decimal("5"), price(venue, XRP) * Decimal("0.98"), 7008)
    finally:
        await ex.close()


def settings(**values: str):
    return settings_from_assignments([Assignment(k, v, i + 1) for i, (k, v) in enumerate(values.items())])


async def test_account_setup_single_asset_mode_is_refused(venue):
    venue.assets_mode = 0
    ex = await adapter(venue)
    try:
        with pytest.raises(E.AccountSetupError, match="Multi-Assets"):
            await prepare_account(ex, settings(), [XRP])
    finally:
        await ex.close()


async def test_account_setup_hedge_mode_is_switched_or_refused(venue):
    venue.position_mode = "dual_side"
    ex = await adapter(venue)
    try:
        with pytest.raises(E.AccountSetupError, match="SET_POSITION_MODE_ON_START"):
            await prepare_account(ex, settings(SET_POSITION_MODE_ON_START="false"), [XRP])
        report = await prepare_account(ex, settings(), [XRP])
        assert venue.position_mode == "single_side" and report.changed
        # with a position open HTX refuses the switch (1494): a clear refusal, not a crash
        venue.position_mode = "dual_side"
        await open_long(venue, XRP, "5")
        with pytest.raises(E.AccountSetupError, match="positions"):
            await prepare_account(ex, settings(), [XRP])
    finally:
        await ex.close()


async def test_account_setup_isolated_positions_and_leverage(venue):
    ex = await adapter(venue)
    try:
        report = await prepare_account(ex, settings(SET_LEVERAGE_ON_START="true", ACCOUNT_LEVERAGE="10"), [XRP, ETH])
        assert await venue.sim.fetch_leverage(XRP) == 10 and await venue.sim.fetch_leverage(ETH) == 10
        assert any("leverage" in line for line in report.changed)
        with pytest.raises(E.AccountSetupError, match="ACCOUNT_LEVERAGE"):
            await prepare_account(ex, settings(ACCOUNT_LEVERAGE="20"), [XRP])
        await open_long(venue, XRP, "5")
        venue.margin_mode = "isolated"
        with pytest.raises(E.AccountSetupError, match="isolated"):
            await prepare_account(ex, settings(), [XRP])
    finally:
        await ex.close()


def test_the_steady_clock_never_goes_back_and_reports_the_step():
    wall = {"t": 1_000_000}
    mono = {"t": 100.0}
    clock = SteadyClock(lambda: wall["t"], lambda: mono["t"])
    assert clock.now() == 1_000_000
    mono["t"] += 3.0
    wall["t"] = 1_000_000 - 3_600_000  # NTP stepped the clock back one hour
    now = clock.now()
    assert now == 1_003_000 and clock.jump_ms < -3_000_000
    mono["t"] += 3.0
    wall["t"] += 6_000
    assert clock.now() == 1_006_000 and clock.jump_ms == 0  # still on the monotonic time
    assert wall_clock_ms() > 1_600_000_000_000


async def test_an_unreachable_venue_at_start_is_retried_with_backoff_and_said():
    bus = EventBus()
    seen: list = []
    bus.subscribe(seen.append)
    waits: list[float] = []
    calls = {"n": 0}

    async def connect():
        calls["n"] += 1
        if calls["n"] < 5:
            raise E.NetworkError("connection refused", venue="htx")
        return "parts"

    async def wait(seconds):
        waits.append(seconds)
        await asyncio.sleep(0)

    got = await until_reachable(connect, what="connect to HTX", stop=asyncio.Event(), bus=bus,
                                clock_ms=lambda: 0, wait=wait)
    assert got == "parts" and waits == [2.0, 4.0, 8.0, 16.0]
    said = [e for e in seen if isinstance(e, ErrorEvent) and e.where == "start"]
    assert len(said) == 4 and "retrying" in said[0].message

    async def refused():
        raise E.AuthError("bad key", venue="htx")

    with pytest.raises(E.AuthError):
        await until_reachable(refused, what="connect", stop=asyncio.Event(), bus=bus, clock_ms=lambda: 0, wait=wait)
