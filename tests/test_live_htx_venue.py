"""The LIVE path end to end, offline: `run_live` -> Engine -> HtxExchange -> ccxt's real `htx`
client (signing, routing, parsing) -> HTTP -> `FakeHtxVenue` on 127.0.0.1 -> SimulatedExchange.

The candles come from the venue too (`CcxtFeed` over the same ccxt client reads
/linear-swap-ex/market/history/kline), so the engine sees exactly what the venue trades on.

Simulated time: the live loop pauses between steps with `stop.wait()`; the `Pauses` double
passed as `stop` is where time passes: it checks the protection invariant on the venue, then
lets the venue trade one more 5m candle (resting orders and stops fill during it), and the
loop's next `clock_ms()` reads the venue clock. No wall-clock pause, no network (deny_network).
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import pytest

from engine.exchange import errors as E
from engine.exchange.htx import HtxExchange
from engine.exchange.precision import fmt
from engine.exchange.retry import RetryPolicy
from engine.exchange.testing import deny_network
from engine.exchange.types import Position
from engine.exits.hard_stop import stop_trigger
from engine.market.feeds import CcxtFeed
from engine.runtime.events import ErrorEvent, Event, EventBus, OrderEvent, TradeClosed
from engine.runtime.live import BENCHMARK, LiveParts, run_live
from engine.settings import Settings
from engine.settings.envfile import Assignment
from engine.settings.loader import settings_from_assignments

from fake_htx_venue import BROKER, BTC, CONTRACTS, ETH, XRP, Fault, FakeHtxVenue, Reply, VenueRequest

API_KEY = "AKfake-5e0c1d2b-live-venue-key"
SECRET = "SKfake-9f8e7d6c-live-venue-secret"
SYMBOLS = [BTC, ETH, XRP]
WARMUP = 200  # candles served at start; the tuned EMAs below are warm after ~90
STOP_PCT = Decimal("0.006")

# Short EMAs and loose gates so a ~100-candle run trades; everything else is the defaults.
TUNED = {
    "COINS": "btc,eth,xrp",
    "EXTERNAL_PRICE_ENABLED": "false",  # no MEXC reference feed in this test
    "ENABLE_GOLD_BTC_RSI_OVERLAY": "false",  # no gold candles either
    "EMA_MACRO_TIMEFRAME": "15m",
    "EMA_MACRO_FAST_MINUTES": "180",
    "EMA_MACRO_SLOW_MINUTES": "450",
    "EMA_PULLBACK_FAST_MINUTES": "60",
    "EMA_PULLBACK_SLOW_MINUTES": "150",
    "EMA_TRIGGER_FAST_MINUTES": "60",
    "EMA_TRIGGER_SLOW_MINUTES": "150",
    "EMA_USE_RS_CONFIRMATION": "false",
    "EMA_USE_BTC_RISK_FILTER": "false",
    "EMA_CHOP_FILTER_ENABLED": "false",
    "EMA_VOLUME_CONFIRMATION_ENABLED": "false",
    "ENTRY_MIN_RS60_ABS": "0",
    "ENTRY_MIN_RS30_ABS": "0",
    "ENTRY_MIN_SCORE": "0",
    "HARD_STOP_LOSS_ATR_ENABLED": "false",  # fixed distance: the exact trigger can be asserted
    "HARD_STOP_LOSS_PCT": str(STOP_PCT),
}


def live_settings(key: str = API_KEY, secret: str = SECRET, **overrides: str) -> Settings:
    values = {**TUNED, "HTX_API_KEY": key, "HTX_API_SECRET": secret, **overrides}
    return settings_from_assignments([Assignment(k, v, i + 1) for i, (k, v) in enumerate(values.items())])


def fast_policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, reconcile_delay=0.01, seed=7)


class Pauses(asyncio.Event):
    """The `stop` event of `run_live`: its `wait()` is the pause between two steps.

    Each pause checks the protection invariant on the venue (after the step that just ran),
    runs the callback planned for this step if any, lets the venue trade one candle, and
    records the positions the next step will see. It never sets the event: `max_steps` or an
    exception ends the loop."""

    def __init__(self, venue: FakeHtxVenue, at_step: dict[int, Callable[[], None]] | None = None):
        super().__init__()
        self.venue = venue
        self.at_step = at_step or {}
        self.steps = 0
        self.problems: list[tuple[int, int, list[str]]] = []  # (step, venue ms, problems)
        self.seen: dict[int, dict[str, Position]] = {}  # step time -> venue positions at its start
        self.left: dict[int, dict[str, Position]] = {}  # step time -> venue positions at its end

    async def positions(self) -> dict[str, Position]:
        return {p.symbol: p for p in await self.venue.sim.fetch_positions()}

    async def snapshot(self) -> None:
        self.seen[self.venue.now_ms] = await self.positions()

    async def check(self) -> None:
        self.left[self.venue.now_ms] = await self.positions()
        problems = await self.venue.protection_problems()
        if problems:
            self.problems.append((self.steps, self.venue.now_ms, problems))

    async def wait(self) -> bool:
        self.steps += 1
        await self.check()
        action = self.at_step.get(self.steps)
        if action is not None:
            action()
        self.venue.advance()
        await self.snapshot()
        return True


@dataclass
class LiveRun:
    venue: FakeHtxVenue
    pauses: Pauses
    events: list[Event] = field(default_factory=list)
    steps: int = 0
    error: Exception | None = None

    def orders(self, action: str, purpose: str) -> list[OrderEvent]:
        return [e for e in self.events if isinstance(e, OrderEvent) and e.action == action and e.purpose == purpose]

    def step_requests(self, now_ms: int) -> list[VenueRequest]:
        return [r for r in self.venue.requests if r.venue_ms == now_ms]


async def run_engine(venue: FakeHtxVenue, tmp_path: Path, *, steps: int, settings: Settings | None = None,
                     timeout_ms: int = 5_000, at_step: dict[int, Callable[[], None]] | None = None,
                     expect_error: type[Exception] | None = None) -> LiveRun:
    settings = settings or live_settings()
    assert settings.glob.htx_api_key.get_secret_value() == venue.api_key
    exchange = HtxExchange(venue.htx_config(timeout_ms=timeout_ms, retry=fast_policy()))
    feed = CcxtFeed(exchange._ccxt, list(dict.fromkeys([*SYMBOLS, BENCHMARK])), "5m", warmup_candles=WARMUP,
                    by_window=True)
    parts = LiveParts(exchange, feed, None, None, (exchange,))
    bus = EventBus()
    pauses = Pauses(venue, at_step)
    run = LiveRun(venue, pauses)
    bus.subscribe(run.events.append)
    await pauses.snapshot()
    try:
        run.steps = await run_live(settings, bus=bus, parts=parts, clock_ms=lambda: venue.now_ms, max_steps=steps,
                                   stop=pauses, db_path=tmp_path / "live.sqlite")
    except Exception as exc:  # the secrets test inspects the error that ended the loop
        if expect_error is None or not isinstance(exc, expect_error):
            raise
        run.error = exc
    await pauses.check()  # after the last step too
    return run


@pytest.fixture
async def venue():
    with deny_network() as refused:
        async with FakeHtxVenue(api_key=API_KEY, secret=SECRET, start_candles=WARMUP) as v:
            yield v
    assert refused == [], f"something tried to reach the internet: {refused}"


# --------------------------------------------------------------------------- the venue itself


async def test_the_venue_speaks_what_the_adapter_sends(venue):
    """Every adapter call round-trips through ccxt and the venue; a wrong secret is refused."""
    htx = HtxExchange(venue.htx_config(retry=fast_policy()))
    try:
        markets = await htx.load_markets()
        for c in CONTRACTS:
            m = markets[c.symbol]
            assert (m.venue_id, m.contract_size, m.price_step, m.amount_step) == (
                c.code, c.contract_size, c.price_tick, Decimal(1))
        assert set(markets) == set(SYMBOLS)  # the dated future is dropped
        assert (await htx.fetch_balance()).equity == Decimal(10000)
        assert await htx.fetch_leverage(XRP) == Decimal(5)
        assert (await htx.fetch_funding_rates([BTC, XRP]))[XRP].rate == Decimal("0.0001")
        top = (await htx.fetch_order_book_top([XRP]))[XRP]
        assert top.ask - top.bid == Decimal("0.0001")
        entry = await htx.place_post_only(XRP, "buy", Decimal(40), top.bid, 101)
        with pytest.raises(E.PostOnlyWouldCross):
            await htx.place_post_only(XRP, "buy", Decimal(40), top.ask + Decimal("0.01"), 102)
        assert await htx.fetch_order(XRP, client_order_id=101) == entry
        while not await htx.fetch_positions():
            venue.advance()
        (pos,) = await htx.fetch_positions()
        assert (pos.side, pos.contracts, pos.entry_price) == ("long", Decimal(40), entry.price)
        stop = await htx.place_stop_loss(XRP, "long", pos.contracts, pos.entry_price * Decimal("0.99"), 103)
        exit_ = await htx.place_reduce_only_limit(XRP, "long", Decimal(10), pos.entry_price * Decimal("1.02"), 104)
        assert {o.id for o in await htx.fetch_open_orders()} == {stop.id, exit_.id}
        assert (await htx.cancel_order(exit_)).status == "canceled"
        assert (await htx.cancel_order(stop)).status == "canceled"
        await htx.close_reduce_only_market(XRP, "long", pos.contracts, 105)
        assert await htx.fetch_positions() == []
        fills = await htx.fetch_fills([XRP], venue.now_ms - 3_600_000)
        assert [(f.side, f.amount, f.maker, f.client_order_id) for f in fills] == [
            ("buy", Decimal(40), True, 101), ("sell", Decimal(40), False, 105)]
    finally:
        await htx.close()
    assert venue.unexpected == [] and venue.auth_failures == [] and venue.duplicate_client_ids == []
    assert all(r.signed for r in venue.requests if r.path.startswith("/v5/") and "/market/" not in r.path)

    wrong = HtxExchange(replace(venue.htx_config(retry=fast_policy()), secret="SKwrong-secret-0000"))
    try:
        await wrong.load_markets()  # public: fine
        with pytest.raises(E.AuthError):
            await wrong.fetch_balance()
    finally:
        await wrong.close()
    assert [r.path for r in venue.auth_failures] == ["/v5/account/balance"]


# --------------------------------------------------------------------------- 1. the live loop trades


def stop_body(symbol: str, pos: Position, cid: int, trigger: Decimal) -> dict:
    code = next(c.code for c in CONTRACTS if c.symbol == symbol)
    return {"contract_code": code, "volume": fmt(pos.contracts), "margin_mode": "cross",
            "side": "sell" if pos.side == "long" else "buy", "time_in_force": "gtc",
            "algo_client_order_id": cid, "type": "sl", "sl_trigger_price": fmt(trigger), "channel_code": BROKER,
            "sl_trigger_price_type": "last"}  # HTX v5: "last" (default) or "mark"


@pytest.mark.parametrize("attach", [False, True])
async def test_live_loop_trades_through_ccxt_and_keeps_every_position_stopped(venue, tmp_path, attach):
    """With HARD_STOP_ATTACH_TO_ENTRY off, each step that finds a new or changed position sends
    its stop; on, a rung that filled completely is already protected by the stop it carried."""
    run = await run_engine(venue, tmp_path, steps=110,
                           settings=live_settings(HARD_STOP_ATTACH_TO_ENTRY=str(attach).lower()))
    assert run.steps == 110
    assert venue.unexpected == [] and venue.auth_failures == [] and venue.duplicate_client_ids == []
    assert not [e for e in run.events if isinstance(e, ErrorEvent)]
    # the invariant, after every step: each venue position has one stop of its full size
    assert run.pauses.problems == []

    # after warm-up, entries are post-only limit orders on /v5/trade/order (never reduce-only)
    posts = venue.calls("POST", "/v5/trade/order")
    entries = [r for r in posts if r.body["type"] == "post_only"]
    assert len(entries) >= 6
    first_step = min(venue.calls("GET", "/v5/account/balance"), key=lambda r: r.venue_ms).venue_ms
    assert all(r.venue_ms > first_step for r in entries)  # the warm-up step opens nothing
    attached_keys = {"sl_trigger_price", "sl_type", "sl_trigger_price_type"} if attach else set()
    for r in entries:
        assert set(r.body) == {"contract_code", "volume", "margin_mode", "side", "time_in_force",
                               "client_order_id", "price", "type", "channel_code"} | attached_keys
        assert (r.body["margin_mode"], r.body["time_in_force"], r.body["channel_code"]) == ("cross", "gtc", BROKER)
        if not attach:
            continue
        assert (r.body["sl_type"], r.body["sl_trigger_price_type"]) == ("market", "last")
        assert Decimal(r.body["sl_trigger_price"]) < Decimal(r.body["price"]) if r.body["side"] == "buy" \
            else Decimal(r.body["sl_trigger_price"]) > Decimal(r.body["price"])
    assert {r.body["client_order_id"] for r in entries} == {e.client_order_id for e in run.orders("placed", "entry")}

    markets = {c.symbol: c.market() for c in CONTRACTS}
    stop_cids = {(e.symbol, e.client_order_id) for e in run.orders("placed", "stop")}
    opened = {"long": 0, "short": 0}
    protected_at_fill = 0
    times = sorted(run.pauses.seen)
    for before, now in zip(times, times[1:]):
        step = run.step_requests(now)
        for symbol, pos in run.pauses.seen[now].items():
            old = run.pauses.left[before].get(symbol)  # as the previous step left it
            if old is not None and (old.side, old.contracts, old.entry_price) == (pos.side, pos.contracts,
                                                                                pos.entry_price):
                continue  # unchanged position: nothing to send
            code = markets[symbol].venue_id
            stops = [i for i, r in enumerate(step) if r.method == "POST" and r.path == "/v5/algo/order"
                     and r.body["contract_code"] == code]
            closes = [r for r in step if r.method == "POST" and r.path == "/v5/trade/order"
                      and r.body["contract_code"] == code and r.body["type"] == "market"]
            came_with_stop = [sid for sid, t in venue.stop_active_ms.items() if sid in venue.sim.attached_from
                              and before < t <= now and venue.sim.all_orders(symbol)
                              and any(o.id == sid for o in venue.sim.all_orders(symbol))]
            if not stops and came_with_stop:
                assert attach
                if old is None:
                    opened[pos.side] += 1
                    protected_at_fill += 1
                continue  # the venue activated the stop the filled rung carried
            if not stops:
                # the market went through the stop level within the fill candle: closed at market
                assert closes and closes[0].body["volume"] == fmt(pos.contracts), (now, symbol, pos, step)
                continue
            # this very step protected the new size with an exchange-side stop-loss
            i = stops[0]
            body = step[i].body
            if old is None:  # a new position: the exact request, trigger at the fixed distance
                trigger = stop_trigger(pos.side, pos.entry_price, float(STOP_PCT), markets[symbol])
                assert body == stop_body(symbol, pos, body["algo_client_order_id"], trigger)
                assert (trigger < pos.entry_price) if pos.side == "long" else (trigger > pos.entry_price)
                opened[pos.side] += 1
            else:
                assert (body["type"], body["volume"], body["side"]) == (
                    "sl", fmt(pos.contracts), "sell" if pos.side == "long" else "buy")
            assert (symbol, body["algo_client_order_id"]) in stop_cids
            assert step[i].reply["data"][0]["algo_id"]
            # the exit ladder of a new position: reduce-only limits, after the stop, on the profit side
            exits = [(j, r) for j, r in enumerate(step) if r.method == "POST" and r.path == "/v5/trade/order"
                     and r.body["contract_code"] == code and r.body["type"] == "limit"]
            if old is None:
                assert exits, (now, symbol, "no exit ladder")
                for j, r in exits:
                    assert j > i  # the stop goes out first
                    assert set(r.body) == {"contract_code", "volume", "margin_mode", "side", "time_in_force",
                                           "client_order_id", "price", "reduce_only", "type", "channel_code"}
                    assert (r.body["reduce_only"], r.body["side"], r.body["margin_mode"]) == (
                        1, "sell" if pos.side == "long" else "buy", "cross")
                    price = Decimal(r.body["price"])
                    assert price > pos.entry_price if pos.side == "long" else price < pos.entry_price
                assert sum(Decimal(r.body["volume"]) for _, r in exits) <= pos.contracts
    assert opened["long"] >= 1 and sum(opened.values()) >= 3, opened
    assert (protected_at_fill > 0) == attach, protected_at_fill
    # some of those stops fired on the venue, and the engine recorded the closed trades
    assert [o for o in venue.sim.all_orders() if o.kind == "stop_loss" and o.status == "filled"]
    assert any(isinstance(e, TradeClosed) for e in run.events)
    assert venue.calls("GET", "/v5/trade/order/details")  # closed trades read their fills
    assert venue.calls("GET", "/linear-swap-ex/market/history/kline")  # the candles came from the venue


# --------------------------------------------------------------------------- 2. lost replies


def _is(kind: str, reduce_only: bool) -> Callable[[VenueRequest], bool]:
    return lambda r: isinstance(r.body, dict) and r.body.get("type") == kind and \
        bool(r.body.get("reduce_only")) == reduce_only


async def test_lost_replies_and_failed_sends_never_duplicate_an_order(venue, tmp_path):
    timeout_ms = 600
    lost_entry = venue.inject(Fault("POST", "/v5/trade/order", _is("post_only", False), execute=True, delay=1.5,
                                    name="entry created, reply lost"))
    lost_stop = venue.inject(Fault("POST", "/v5/algo/order", execute=True, delay=1.5, name="stop created, reply lost"))
    failed_exit = venue.inject(Fault("POST", "/v5/trade/order", _is("limit", True), execute=False,
                                     reply=Reply(status=502, text="<html>502 Bad Gateway</html>"),
                                     name="exit not created, 502"))
    run = await run_engine(venue, tmp_path, steps=70, timeout_ms=timeout_ms)
    assert run.steps == 70
    for fault in (lost_entry, lost_stop, failed_exit):
        assert len(fault.hits) == 1, fault.name
    assert venue.duplicate_client_ids == [] and venue.unexpected == [] and venue.auth_failures == []
    assert run.pauses.problems == []
    assert not [e for e in run.events if isinstance(e, ErrorEvent)]  # handled inside the adapter

    def same_cid(path: str, key: str, cid: int) -> list[VenueRequest]:
        return [r for r in venue.requests if r.path == path and (
            (isinstance(r.body, dict) and r.body.get(key) == cid) or r.query.get(key) == str(cid))]

    # entry: sent once, reply lost; the same client id was looked up and the order adopted
    cid = lost_entry.hits[0].body["client_order_id"]
    trail = same_cid("/v5/trade/order", "client_order_id", cid)
    assert [r.method for r in trail][:2] == ["POST", "GET"] and [r.method for r in trail].count("POST") == 1
    assert trail[1].reply["data"]["client_order_id"] == str(cid)  # the lookup found it
    assert venue.bot_client_ids().count(cid) == 1
    assert [e.client_order_id for e in run.orders("placed", "entry")].count(cid) == 1

    # stop: the same on the algo endpoints
    cid = lost_stop.hits[0].body["algo_client_order_id"]
    posts = same_cid("/v5/algo/order", "algo_client_order_id", cid)
    assert [r.method for r in posts][:2] == ["POST", "GET"] and [r.method for r in posts].count("POST") == 1
    assert posts[1].query["type"] == "sl" and posts[1].reply["data"][0]["algo_client_order_id"] == str(cid)
    assert venue.bot_client_ids().count(cid) == 1
    assert [e.client_order_id for e in run.orders("placed", "stop")].count(cid) == 1

    # exit: the 502 came before the venue acted; a negative lookup allowed ONE resend, same id
    cid = failed_exit.hits[0].body["client_order_id"]
    trail = same_cid("/v5/trade/order", "client_order_id", cid)
    assert [r.method for r in trail][:3] == ["POST", "GET", "POST"]
    assert trail[1].reply["data"] is None and "order_id" in trail[2].reply["data"]
    assert venue.bot_client_ids().count(cid) == 1


# --------------------------------------------------------------------------- 3. secrets


async def test_credentials_never_reach_events_logs_or_errors(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    key, secret = "AKsecret-31d4c0ffee-unique-key", "SKsecret-8badf00d-unique-secret"
    with deny_network() as refused:
        async with FakeHtxVenue(api_key=key, secret=secret, start_candles=WARMUP) as v:
            # mid-run: a read whose replies are lost until the retries give up (ccxt's timeout
            # text holds the signed URL), a gateway page, then the key is revoked: the loop stops
            plan = {
                15: lambda: v.inject(Fault("GET", "/v5/account/balance", delay=1.0, times=3, name="timeouts")),
                25: lambda: v.inject(Fault("GET", "/v5/trade/position/opens", execute=False, name="502")),
                40: v.revoke_key,
            }
            run = await run_engine(v, tmp_path, steps=60, settings=live_settings(key, secret), timeout_ms=400,
                                   at_step=plan, expect_error=E.AuthError)
    assert refused == []
    assert isinstance(run.error, E.AuthError) and run.pauses.steps == 40
    assert run.orders("placed", "entry") and run.orders("placed", "stop")  # it did trade
    assert v.revoked_at_ms is not None and [r.path for r in v.auth_failures] == ["/v5/account/balance"]
    assert all(r.venue_ms >= v.revoked_at_ms for r in v.auth_failures)  # the key worked until it was revoked
    assert any(r.signed and r.venue_ms < v.revoked_at_ms for r in v.calls("POST", "/v5/trade/order"))
    assert all(f.times == 0 for f in v.faults)

    errors = [e for e in run.events if isinstance(e, ErrorEvent)]
    assert any(e.where == "step" and "Timeout" in e.message for e in errors)
    assert errors[-1].fatal and errors[-1].where == "auth"

    forbidden = (key, secret, "Signature=", "AccessKeyId=")
    events_text = "\n".join(json.dumps(e.to_record(), default=str) for e in run.events)
    exc = run.error
    error_text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc.args)
    # (the fake venue's own aiohttp server logs are not the bot's)
    records = [r for r in caplog.records if not r.name.startswith(("aiohttp.server", "aiohttp.access", "aiohttp.web"))]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logs_text = "\n".join(formatter.format(r) for r in records)
    assert any("/v5/account/balance" in r.getMessage() for r in records)  # ccxt logged its requests
    db = (tmp_path / "live.sqlite").read_bytes()
    for text, where in ((events_text, "events"), (error_text, "exception"), (logs_text, "logs")):
        for s in forbidden:
            assert s not in text, f"{s!r} leaked into {where}"
    assert key.encode() not in db and secret.encode() not in db


# --------------------------------------------------------------------------- engine findings (fixed)


async def test_trade_record_includes_the_entry_fill(venue, tmp_path):
    run = await run_engine(venue, tmp_path, steps=30)
    trade = next(e for e in run.events if isinstance(e, TradeClosed))
    fills = [f for f in await venue.sim.fetch_fills([trade.symbol], 0) if f.ts_ms < trade.ts_ms]
    opening = [f for f in fills if f.side == ("buy" if trade.side == "long" else "sell")]
    assert opening and len(fills) > len(opening)  # the venue has the entry and the exit fills
    entry = sum(f.price * f.amount for f in opening) / sum(f.amount for f in opening)
    assert (trade.fees, trade.entry_price) == (sum(f.fee for f in fills), entry)


async def test_feed_warm_up_longer_than_one_page(tmp_path):
    """HTX ignores from/to when `size` is sent (ccxt 4.5.90's comment; the venue's default): the
    feed must page by window or a warm-up longer than one page silently shrinks to 999 candles."""
    from fake_htx_venue import XRP_CSV
    from engine.market.feeds import read_candles_csv

    with deny_network():
        series = {XRP: read_candles_csv(XRP_CSV)}
        async with FakeHtxVenue(api_key=API_KEY, secret=SECRET, series=series, start_candles=1900) as v:
            htx = HtxExchange(v.htx_config(retry=fast_policy()))
            try:
                await htx.load_markets()
                feed = CcxtFeed(htx._ccxt, [XRP], "5m", warmup_candles=1500, by_window=True)
                history = await feed.poll(v.now_ms)
            finally:
                await htx.close()
    assert len(history[XRP]) == 1500


async def test_live_start_refuses_a_single_asset_account_before_any_order(venue, tmp_path):
    """Account set-up is read at live start (issue "live real world", defect 7): a single-asset
    collateral account is refused with a message naming the fix, before the first order, and the
    status says the engine stopped (not "entries running")."""
    from engine.runtime.events import EngineStatus

    venue.assets_mode = 0
    run = await run_engine(venue, tmp_path, steps=5, expect_error=E.AccountSetupError)
    assert run.error is not None and "Multi-Assets" in str(run.error)
    assert venue.calls("POST", "/v5/trade/order") == [] and venue.calls("POST", "/v5/algo/order") == []
    last = [e for e in run.events if isinstance(e, EngineStatus)][-1]
    assert last.message.startswith("stopped by AccountSetupError") and last.paused and last.enabled == ()


async def _another_bot_rests_an_order(venue: FakeHtxVenue, cid: int = 424_242) -> None:
    """A second program on the same keys (another machine, or a CROT with another DATA_DIR)."""
    other = HtxExchange(venue.htx_config(timeout_ms=5_000, retry=fast_policy()))
    try:
        await other.load_markets()
        price = venue.sim._symbol(XRP).last * Decimal("0.8")  # far below: it rests
        await other.place_post_only(XRP, "buy", Decimal(10), price, cid)
    finally:
        await other.close()


async def test_live_start_refuses_an_account_another_bot_trades(venue, tmp_path):
    """One bot per account (issue 17, item 7): the lock cannot see a bot on another machine or
    with another DATA_DIR; its open orders, carrying client ids this state never issued, can."""
    from engine.runtime.events import EngineStatus

    await _another_bot_rests_an_order(venue)
    run = await run_engine(venue, tmp_path, steps=3, expect_error=E.AccountSetupError)
    assert run.error is not None and "never issued" in str(run.error) and "FOREIGN_ORDERS_ON_START" in str(run.error)
    assert [r for r in venue.calls("POST", "/v5/trade/order") if r.body["client_order_id"] != 424_242] == []
    last = [e for e in run.events if isinstance(e, EngineStatus)][-1]
    assert last.message.startswith("stopped by AccountSetupError")


async def test_live_start_with_foreign_orders_allowed_warns_and_leaves_them(venue, tmp_path):
    from engine.runtime.events import EngineStatus

    await _another_bot_rests_an_order(venue)
    run = await run_engine(venue, tmp_path, steps=3, settings=live_settings(FOREIGN_ORDERS_ON_START="warn"))
    assert run.steps == 3
    said = [e.message for e in run.events if isinstance(e, EngineStatus)]
    assert any("never issued" in m and "left alone" in m for m in said), said
    assert [o for o in await venue.sim.fetch_open_orders(None) if o.price is not None and o.amount == 10]


async def test_a_restart_does_not_take_its_own_orders_for_foreign_ones(venue, tmp_path):
    run = await run_engine(venue, tmp_path, steps=40)  # stops in place mid-run (positions from step 8)
    assert run.steps == 40
    mine = [o for o in await venue.sim.fetch_open_orders(None) if o.is_open]
    assert mine, "the first run must leave its stops on the exchange for this test to mean anything"
    again = await run_engine(venue, tmp_path, steps=2)  # same DATA_DIR: its own stops are known
    assert again.steps == 2


async def test_the_btc_hedge_trades_through_ccxt_and_keeps_its_stop(venue, tmp_path):
    """BTC_HEDGE_ENABLED on the live path: an XRP long already on the account (adopted) is
    hedged by a BTC short sent as HTX v5 `type=market` without reduce_only, whose algo stop
    (`type=sl`) is on the venue by the end of the same step; every step ends with every
    position stopped (the venue's own check), and the venue saw nothing it does not document."""
    from engine.exchange.sim import _SimPosition

    xrp_price = venue.sim._symbol(XRP).last
    venue.sim._positions[XRP] = _SimPosition(Decimal(400), xrp_price)  # 400 x 10 XRP, ~2000 USDT
    settings = live_settings(COINS="eth,xrp", BTC_HEDGE_ENABLED="true", BTC_HEDGE_COOLDOWN_SEC="0")
    run = await run_engine(venue, tmp_path, steps=3, settings=settings)
    assert run.error is None and run.pauses.problems == []
    btc = (await run.pauses.positions()).get(BTC)
    assert btc is not None and btc.side == "short"
    mark = venue.sim._symbol(BTC).last
    hedge_notional = btc.contracts * Decimal("0.001") * mark
    xrp_notional = Decimal(400) * 10 * venue.sim._symbol(XRP).last
    assert xrp_notional - Decimal("60") <= hedge_notional <= xrp_notional + Decimal("60")  # within a contract or so
    opens = [r for r in venue.requests if r.method == "POST" and r.path == "/v5/trade/order"
             and r.body.get("type") == "market"
             and r.body.get("reduce_only") in (None, 0, "0", False)]
    assert opens and all(r.body["contract_code"] == "BTC-USDT" and r.body["side"] == "sell" for r in opens)
    placed = [e for e in run.events if isinstance(e, OrderEvent) and e.profile == "hedge" and e.action == "placed"]
    assert {e.purpose for e in placed} >= {"hedge", "stop"}
    assert venue.unexpected == [] and venue.duplicate_client_ids == []


class BothVenues(Pauses):
    """The pause of a bot on two accounts: the second venue trades the same candle too."""

    def __init__(self, venue: FakeHtxVenue, second: FakeHtxVenue):
        super().__init__(venue)
        self.second = second
        self.problems_2: list[tuple[int, list[str]]] = []

    async def wait(self) -> bool:
        problems = await self.second.protection_problems()
        if problems:
            self.problems_2.append((self.steps, problems))
        self.second.advance()
        return await super().wait()


async def test_coins_2_trade_on_the_second_account_through_ccxt(venue, tmp_path):
    """COINS_2 on the live path: two HTX accounts (two loopback venues, two key pairs). The
    XRP position of the second account gets its stop there, signed with the second key; the
    first account sees no XRP order; each account's setup is checked; every step ends with every
    position of both accounts stopped."""
    from engine.exchange.accounts import SplitAccounts
    from engine.exchange.sim import _SimPosition

    key2, secret2 = "AKfake-second-account-key-77", "SKfake-second-account-secret-77"
    async with FakeHtxVenue(api_key=key2, secret=secret2, start_candles=WARMUP) as second:
        second.now_ms = venue.now_ms
        second.sim._positions[XRP] = _SimPosition(Decimal(300), second.sim._symbol(XRP).last)
        venue.sim._positions[ETH] = _SimPosition(Decimal(20), venue.sim._symbol(ETH).last)
        settings = live_settings(COINS="eth", COINS_2="xrp", HTX_API_KEY_2=key2, HTX_API_SECRET_2=secret2)
        first_ex = HtxExchange(venue.htx_config(retry=fast_policy()))
        second_ex = HtxExchange(second.htx_config(retry=fast_policy()))
        exchange = SplitAccounts(first_ex, second_ex, [XRP])
        feed = CcxtFeed(first_ex._ccxt, list(dict.fromkeys([ETH, XRP, BENCHMARK])), "5m", warmup_candles=WARMUP,
                        by_window=True)
        parts = LiveParts(exchange, feed, None, None, (exchange,))
        bus = EventBus()
        events: list[Event] = []
        bus.subscribe(events.append)
        pauses = BothVenues(venue, second)
        steps = await run_live(settings, bus=bus, parts=parts, clock_ms=lambda: venue.now_ms, max_steps=3,
                               stop=pauses, db_path=tmp_path / "live.sqlite")
        await pauses.check()
        assert steps == 3 and pauses.problems == [] and pauses.problems_2 == []
        assert await second.protection_problems() == []
        stops_2 = [o for o in await second.sim.fetch_open_orders() if o.kind == "stop_loss"]
        assert [(o.symbol, o.side, o.amount) for o in stops_2] == [(XRP, "sell", Decimal(300))]
        assert not [o for o in await venue.sim.fetch_open_orders() if o.symbol == XRP]
        assert [o.symbol for o in await venue.sim.fetch_open_orders() if o.kind == "stop_loss"] == [ETH]
        for v in (venue, second):
            assert v.unexpected == [] and v.auth_failures == [] and v.duplicate_client_ids == []
        assert any(r.path == "/v5/algo/order" and r.method == "POST" for r in second.requests)
        said = " ".join(getattr(e, "message", "") for e in events)
        assert "account 2: account: multi-assets collateral" in said
