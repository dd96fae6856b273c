"""HTX order updates over the websocket (engine/exchange/htx_orders_ws.py), through ccxt.pro's
real htx client against the loopback venue's v5 order-push endpoint (tests/fake_htx_ws.py):
a pushed fill wakes the live loop so a partly filled entry is stopped before the next poll;
the stream survives drops; a dead endpoint leaves plain polling, with no error in the engine.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from engine.exchange.htx import HtxExchange
from engine.exchange.htx_orders_ws import OrderUpdates
from engine.exchange.sim import SimConfig
from engine.exchange.testing import deny_network
from engine.exchange.types import Order
from engine.market.feeds import CcxtFeed
from engine.runtime.events import ErrorEvent, EventBus
from engine.runtime.live import BENCHMARK, LiveParts, run_live

from fake_htx_venue import XRP, FakeHtxVenue
from test_live_htx_venue import SYMBOLS, WARMUP, fast_policy, live_settings

API_KEY = "AKfake-5e0c1d2b-live-venue-key"  # the keys live_settings() carries
SECRET = "SKfake-9f8e7d6c-live-venue-secret"
POLL_S = 120  # a poll this far away never comes during a test: only a wake can act


@pytest.fixture
async def venue():
    cfg = SimConfig(initial_wallet=Decimal("10000"), stops_reserve_closeable=False, candle_ms=300_000,
                    name="htx-sim", partial_fill_fraction=Decimal("0.5"))
    with deny_network() as refused:
        async with FakeHtxVenue(api_key=API_KEY, secret=SECRET, start_candles=WARMUP, sim_config=cfg) as v:
            v.advance_to(v.now_ms + 137_250)  # the venue clock is not on a 5-minute boundary
            yield v
    assert refused == [], refused


async def until(check, timeout: float, every: float = 0.005) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if await check():
            return True
        await asyncio.sleep(every)
    return False


def subscribed(venue: FakeHtxVenue, connections: int = 1):
    async def check() -> bool:
        return venue.ws.connections >= connections and any(c.topics for c in venue.ws.conns)
    return check


def fill_candle(venue: FakeHtxVenue, order: Order) -> None:
    """The next candle of `order.symbol` trades through its price (so half of it fills)."""
    t = venue.contracts[order.symbol].price_tick
    p = order.price
    ts = venue.klines[order.symbol][-1].ts_ms + venue.tf_ms
    if order.side == "buy":
        venue.candle(order.symbol, ts, p + 3 * t, p + 4 * t, p - 2 * t, p + t)
    else:
        venue.candle(order.symbol, ts, p - 3 * t, p + 2 * t, p - 4 * t, p - t)


async def bot_stops(venue: FakeHtxVenue, symbol: str) -> list[Order]:
    return [o for o in await venue.sim.fetch_open_orders([symbol])
            if o.kind == "stop_loss" and o.id not in venue.sim.attached_from]


# --------------------------------------------------------------------------- the stream itself


async def test_a_partial_fill_is_pushed_and_the_stream_survives_a_drop(venue):
    ex = HtxExchange(venue.htx_config(retry=fast_policy()))
    await ex.load_markets()
    venue.ws.ping_interval = 0.05  # HTX pings every 5 s; here 20 a second, each must be answered
    stream = OrderUpdates.for_exchange(ex, first_pause=0.05, seed=1).start()
    try:
        assert await until(subscribed(venue), 5)
        await asyncio.sleep(0.5)
        assert (venue.ws.connections, venue.ws.closed_for_pong) == (1, 0)  # ccxt answers every ping
        tick = venue.contracts[XRP].price_tick
        order = await ex.place_post_only(XRP, "buy", Decimal(40), Decimal(str(venue.klines[XRP][-1].close)) - 5 * tick,
                                         301)
        t0 = time.monotonic()
        fill_candle(venue, order)
        await asyncio.wait_for(stream.wake.wait(), 2)
        took = time.monotonic() - t0
        [push] = venue.ws.pushed
        assert (push["data"]["state"], push["data"]["trade_volume"], push["data"]["client_order_id"]) == \
            ("partially_filled", "20", "301")
        assert stream.fills == 1 and took < 1.0, took
        stream.wake.clear()

        await venue.ws.drop()  # a gateway restart: the stream dials again and subscribes again
        assert await until(subscribed(venue, connections=2), 10), (venue.ws.connections, stream.last_error)
        assert stream.wake.is_set()  # fills may have been missed while it was down: the loop polls
        stream.wake.clear()
        fill_candle(venue, order)  # the other half
        await asyncio.wait_for(stream.wake.wait(), 2)
        assert venue.ws.pushed[-1]["data"]["state"] == "filled" and stream.fills == 2
        assert stream.errors >= 1 and SECRET not in stream.last_error
    finally:
        await stream.close()
        await ex.close()


async def _raw(venue: FakeHtxVenue, frames: list[dict], read: int) -> list[dict]:
    out = []
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"ws://{venue.host}/ws/v5/notification") as ws:
            for f in frames:
                await ws.send_str(json.dumps(f))
            while len(out) < read:
                msg = await asyncio.wait_for(ws.receive(), 3)
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                out.append(json.loads(gzip.decompress(msg.data)))  # every frame is gzip
    return out


async def test_the_endpoint_is_as_strict_as_htx(venue):
    bad = {"op": "auth", "type": "api", "AccessKeyId": API_KEY, "SignatureMethod": "HmacSHA256",
           "SignatureVersion": "2", "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
           "Signature": "bm90IGEgc2lnbmF0dXJl"}
    assert [m.get("err-code", m["op"]) for m in await _raw(venue, [bad], 2)] == [2003, "close"]
    early = {"op": "sub", "cid": "1", "topic": "orders", "contract_code": "*"}
    assert [m.get("err-code", m["op"]) for m in await _raw(venue, [early], 2)] == [2002, "close"]

    venue.ws.ping_interval = 0.05  # a client that never answers pings is closed
    frames = await _raw(venue, [], 3)
    assert [m["op"] for m in frames] == ["ping", "ping", "close"] and venue.ws.closed_for_pong == 1


# --------------------------------------------------------------------------- the live loop


class Phases(asyncio.Event):
    """`stop` of run_live: each pause lets the venue trade one candle until an entry of the
    bot rests on the book; from then on a pause is real time (only `set()` or a wake ends it)."""

    def __init__(self, venue: FakeHtxVenue):
        super().__init__()
        self.venue = venue
        self.resting: Order | None = None
        self.armed = asyncio.Event()
        self.pauses = 0

    async def wait(self) -> bool:
        self.pauses += 1
        if self.resting is None:
            rest = [o for o in await self.venue.sim.fetch_open_orders()
                    if o.post_only and not o.reduce_only and o.filled == 0]
            if not rest:
                self.venue.advance()
                return True
            self.resting = rest[0]
            self.armed.set()
        return await super().wait()


async def _live(venue: FakeHtxVenue, tmp_path: Path, order_updates: bool, poll_s: int = POLL_S):
    exchange = HtxExchange(venue.htx_config(retry=fast_policy()))
    feed = CcxtFeed(exchange._ccxt, list(dict.fromkeys([*SYMBOLS, BENCHMARK])), "5m", warmup_candles=WARMUP,
                    by_window=True)
    bus = EventBus()
    events: list = []
    bus.subscribe(events.append)
    phases = Phases(venue)
    task = asyncio.create_task(run_live(
        live_settings(POLL_INTERVAL_SEC=str(poll_s)), bus=bus, parts=LiveParts(exchange, feed, None, None, (exchange,)),
        clock_ms=lambda: venue.now_ms, stop=phases, db_path=tmp_path / "live.sqlite", order_updates=order_updates))
    done, _ = await asyncio.wait([task, asyncio.ensure_future(phases.armed.wait())], timeout=120,
                                 return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    assert phases.resting is not None, "the bot placed no resting entry in 120 s"
    return task, phases, events


async def test_a_pushed_partial_fill_gets_its_stop_before_the_next_poll(venue, tmp_path):
    task, phases, events = await _live(venue, tmp_path, order_updates=True)
    try:
        assert await until(subscribed(venue), 10)
        order = phases.resting
        pauses = phases.pauses
        t0 = time.monotonic()
        fill_candle(venue, order)  # half fills: the attached stop is not active yet
        [held] = [p.contracts for p in await venue.sim.fetch_positions() if p.symbol == order.symbol]
        assert 0 < held < order.amount  # partly filled

        async def stopped() -> bool:
            return bool(await bot_stops(venue, order.symbol))

        assert await until(stopped, 10), "no stop: the pushed fill did not wake the loop"
        took = time.monotonic() - t0
        assert took < 2.0 < POLL_S, took  # the loop woke: the scheduled poll was 120 s away

        async def polled() -> bool:
            return phases.pauses > pauses

        assert await until(polled, 5) and phases.pauses == pauses + 1  # one poll: the woken one
        assert await venue.protection_problems() == []
    finally:
        phases.set()
        await asyncio.wait_for(task, 30)
    assert [e for e in events if isinstance(e, ErrorEvent)] == []


async def test_a_dead_websocket_leaves_polling_and_no_error_reaches_the_engine(venue, tmp_path, caplog):
    venue.ws.refuse = True  # the upgrade is answered 503, every time
    task, phases, events = await _live(venue, tmp_path, order_updates=True, poll_s=2)
    try:
        order = phases.resting
        t0 = time.monotonic()
        fill_candle(venue, order)

        async def stopped() -> bool:
            return bool(await bot_stops(venue, order.symbol))

        assert await until(stopped, 10), "polling did not place the stop either"
        took = time.monotonic() - t0
        assert took < 4.0, took  # at the next scheduled poll (every 2 s): no push can arrive
        assert await venue.protection_problems() == []
    finally:
        phases.set()
        await asyncio.wait_for(task, 30)
    assert venue.ws.connections == 0 and venue.ws.refused >= 1
    assert [e for e in events if isinstance(e, ErrorEvent)] == []
    assert any("order updates down" in r.getMessage() for r in caplog.records)
    assert all(SECRET not in r.getMessage() and API_KEY not in r.getMessage() for r in caplog.records)


async def test_the_rehearsal_with_order_updates_stops_every_partial_fill_at_once(tmp_path):
    """The paper rehearsal (tests/rehearsal.py, faults on) with fills mid-pause and the loop woken
    by their pushes: every position the bot's own stop protects (no attached stop here) gets
    it within a second of machine time, and the invariant holds after every poll."""
    from rehearsal import rehearse

    run = await rehearse(tmp_path, candles=150, factor=1500.0, seed=1, start=1900, partial_fill="0.5",
                         extra={"HARD_STOP_ATTACH_TO_ENTRY": "false"}, order_updates=True)
    placed = [ms for _, ms, how in run.fill_to_stop_real if how == "placed"]
    assert placed and max(placed) < 1000, run.fill_to_stop_real
    assert run.pushes >= len(placed) and run.ws_connections >= 1
    assert run.problems == [] and run.duplicates == 0 and run.executed_twice == 0
