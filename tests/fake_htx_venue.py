"""A fake HTX USDT-M swap venue on 127.0.0.1: ccxt's real `htx` client talks to it over HTTP.

`FakeHtxVenue` is an aiohttp server that answers exactly the requests ccxt 4.5.90 sends for what
`engine.exchange.htx.HtxExchange` (and `CcxtFeed`) do, with HTX-shaped JSON (the shapes of
tests/fixtures/htx/*.json), and keeps its state in an in-process `SimulatedExchange`: orders,
positions, fills, margin and stop triggers all follow the simulator's documented model. So a
test can run the engine's live loop through the real adapter, ccxt's real signing, routing and
parsing, and a real HTTP stack, without any network.

Served endpoints (method, path -> simulator call):

| request | what the venue does |
|---|---|
| GET  /linear-swap-api/v1/swap_contract_info | the contracts (BTC, ETH, XRP + a dated future ccxt must skip) |
| GET  /v5/account/balance | `sim.fetch_balance()` as the v5 cross-margin account |
| GET  /v5/trade/position/opens | `sim.fetch_positions()` (one-way mode: position_side "both") |
| GET  /v5/trade/order/opens | open normal orders (`limit`, optional `contract_code`) |
| GET  /v5/algo/order/opens?type=sl/tp | open stop-loss orders (type=tp: none, the bot places none) |
| POST /v5/trade/order | `type=post_only` -> place_post_only; `type=limit, reduce_only=1` -> place_reduce_only_limit; `type=market, reduce_only=1` -> close_reduce_only_market; `type=market` without reduce_only -> open_market (the BTC hedge); anything else is refused and logged in `unexpected` |
| GET  /v5/trade/order?order_id= / client_order_id= | one normal order in any state (`data: null` when unknown) |
| POST /v5/algo/order (type=sl) | place_stop_loss (market at trigger) |
| GET  /v5/algo/order?algo_id= / algo_client_order_id= | one stop in any state (`data: []` when unknown) |
| POST /v5/trade/cancel_order | cancel a normal order (1061 when unknown or no longer open) |
| POST /v5/algo/cancel_orders | cancel stops, per-item codes inside a 200 reply |
| GET  /v5/trade/order/details | the simulator's fills of one contract since `start_time` |
| GET  /v5/market/funding_rate | funding rows (all contracts, or `contract_code`) |
| GET  /v5/position/lever | the account leverage of a contract |
| GET  /linear-swap-ex/market/detail/batch_merged | book tops (bid = last price floored to the tick, ask = bid + 1 tick) |
| GET  /linear-swap-ex/market/history/kline | candles that closed by the venue clock, plus the forming one |
| GET  /ws/v5/notification (websocket) | HTX v5 order pushes: every fill the simulator makes is pushed (tests/fake_htx_ws.py) |

Strictness that catches client bugs: every private request must carry a valid HMAC-SHA256
signature of the configured secret (HTX signature v2, recomputed here) or it gets an auth error;
`margin_mode` must be `cross`; volumes must be whole contracts and prices on the tick; a client
order id may be used once (a second POST with it is refused with HTX 1050 and counted in
`duplicate_client_ids`), separately for normal and algo orders.

Documented HTX v5 behaviour this venue models (HTX API docs, "USDT-M" v5 pages:
"Place Order" POST /v5/trade/order, "Get Order Info" GET /v5/trade/order, "Get Execution
Details (last 3 days)" GET /v5/trade/order/details, "Get Position Mode" /v5/position/mode,
"Get Asset Mode" /v5/account/asset_mode; and HTX's 2025-05-08 announcement of the v5 API):

* order rows carry a "Query ID" in `id` that is not the `order_id` (ccxt's parsed `id` prefers
  it; a cancel sent with it is answered 1061);
* a post-only order that would take liquidity is ACCEPTED and then cancelled by the system
  (state `canceled`, cancel_reason "Order cancelation by system"), not rejected;
* a `client_order_id` "becomes invalid once the order is fully filled or canceled": a lookup
  by it is then answered 1067 ("Illegal parameter"), and the id may be used again (only an
  active order's id is refused as repeated, 1050);
* fills: `limit` defaults to 10, at most 100 (more is answered 1067), window
  start_time..end_time defaults to the last 48 h and may not be longer; newest first;
  fill rows carry `client_order_id`;
* `sl_trigger_price_type` is "last" (default) or "mark";
* an order may carry its own stop-loss ("Place Order": `sl_trigger_price`, `sl_order_price`,
  `sl_type` "market" by default, `sl_trigger_price_type`): HTX keeps it "Not Activated" until
  the order fills ("[Cross]Query Info Of Take-profit and Stop-loss Order That Related To
  Position Opening Order": status 1 "Not Activated", the TP/SL volume is the order's volume,
  `relation_order_id` -1 before it is triggered). It then lists as an `sl` algo order without
  an `algo_client_order_id`. What a PARTIAL fill does is not documented: this venue activates
  nothing until the order has filled completely, and an order cancelled part-filled takes its
  stop with it (the simulator's model, the less kind reading);
* account set-up: asset mode (the v5 API is for Multi-Assets Collateral accounts), position
  mode single_side / dual_side (switching is refused with 1493/1494 while orders/positions
  exist), leverage per contract (POST /v5/position/lever).

Rejections use HTX v5 replies (`{"code": N, "message": ...}`): 1047 insufficient margin, 1048
insufficient close amount (reduce-only frozen), 1050 duplicate client order id, 1061 order does
not exist, 1036 invalid order. A post-only order that would take liquidity is answered with code
1235 and HTX's message "Post-only order would be matched immediately"; that exact code is an
assumption (the adapter maps it by its message). Stop orders report errors per item inside a 200
reply, as the algo endpoints do.

Time: the venue has its own clock (`now_ms`). `advance_to(t)` / `advance()` let the recorded
series trade up to `t`: every candle that closed by then goes through `candle()`, which runs
`sim.on_candle` (resting orders and stops fill) and adds it to the klines served. Nothing reads
the wall clock except ccxt's signature timestamp.

Faults: `inject(Fault(...))` makes the next matching request(s) answer differently: delay the
reply after carrying the request out (a reply lost to a client timeout), or answer an error
without carrying it out. `revoke_key()` makes every private request fail authentication.

Market data: `recorded_series()` builds three aligned 5m series from the REAL recorded XRP
perpetual candles in tests/fixtures/market_2018/XRP_USDT_USDT-5m-futures.csv (2021-11-15 ..
2021-11-21): XRP uses the newest window as recorded; ETH and BTC use two earlier, non-overlapping
windows of the same XRP series, re-stamped onto the XRP window's timestamps and rescaled to
~3000 and ~60000 USDT (prices rounded to the contract tick, volume divided by the same factor).
Each leg therefore moves like a real market, and the three differ from one another.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from engine.exchange import errors as E
from engine.exchange.htx import HtxConfig
from engine.exchange.precision import D, fmt
from engine.exchange.retry import RetryPolicy
from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.exchange.types import Market, Order
from engine.market.candles import Candle, timeframe_ms
from engine.market.feeds import read_candles_csv

from fake_htx_ws import PATH as WS_PATH, FakeHtxOrderPush

ROOT = Path(__file__).resolve().parents[1]
XRP_CSV = ROOT / "tests" / "fixtures" / "market_2018" / "XRP_USDT_USDT-5m-futures.csv"

BTC, ETH, XRP = "BTC/USDT:USDT", "ETH/USDT:USDT", "XRP/USDT:USDT"
BROKER = "AA03022abc"  # ccxt's channel_code, sent with every order


@dataclass(frozen=True)
class Contract:
    symbol: str
    code: str
    contract_size: Decimal
    price_tick: Decimal

    @property
    def base(self) -> str:
        return self.code.split("-")[0]

    def market(self) -> Market:
        return Market(symbol=self.symbol, venue_id=self.code, base=self.base, quote="USDT",
                      contract_size=self.contract_size, amount_step=Decimal(1), price_step=self.price_tick,
                      min_amount=Decimal(1), min_notional=None)


# the same contracts as tests/fixtures/htx/swap_contract_info.json
CONTRACTS: tuple[Contract, ...] = (
    Contract(BTC, "BTC-USDT", Decimal("0.001"), Decimal("0.1")),
    Contract(ETH, "ETH-USDT", Decimal("0.01"), Decimal("0.01")),
    Contract(XRP, "XRP-USDT", Decimal("10"), Decimal("0.0001")),
)


# --------------------------------------------------------------------------- market data


def _rescaled(candles: list[Candle], stamps: list[int], factor: Decimal, tick: Decimal) -> list[Candle]:
    def px(value: float) -> float:
        return float((D(value) * factor).quantize(tick, rounding=ROUND_HALF_EVEN))

    return [Candle(ts, px(c.open), px(c.high), px(c.low), px(c.close), float(D(c.volume) / factor))
            for ts, c in zip(stamps, candles, strict=True)]


def recorded_series(length: int = 640, *, eth_offset: int = 0, btc_offset: int | None = None,
                    eth_price: str = "3000", btc_price: str = "60000") -> dict[str, list[Candle]]:
    """Three aligned 5m series from the real recorded XRP perpetual candles (see module doc)."""
    xrp = read_candles_csv(XRP_CSV)
    btc_offset = length if btc_offset is None else btc_offset
    if max(eth_offset, btc_offset) + length > len(xrp) - length:
        raise ValueError(f"{length} candles do not leave three separate windows in {len(xrp)}")
    own = xrp[len(xrp) - length:]
    stamps = [c.ts_ms for c in own]
    ticks = {c.symbol: c.price_tick for c in CONTRACTS}
    eth_src = xrp[eth_offset:eth_offset + length]
    btc_src = xrp[btc_offset:btc_offset + length]
    return {
        XRP: list(own),
        ETH: _rescaled(eth_src, stamps, D(eth_price) / D(eth_src[0].open), ticks[ETH]),
        BTC: _rescaled(btc_src, stamps, D(btc_price) / D(btc_src[0].open), ticks[BTC]),
    }


# --------------------------------------------------------------------------- requests and faults


@dataclass
class Reply:
    json: Any = None
    status: int = 200
    text: str | None = None  # raw body instead of JSON (e.g. an HTML gateway page)


@dataclass
class VenueRequest:
    method: str
    path: str
    query: dict[str, str]  # without the signature parameters
    body: Any  # parsed JSON body (None when empty)
    venue_ms: int  # the venue clock when it arrived
    signed: bool = False
    reply: Any = None  # the JSON the venue answered (after faults)
    fault: str = ""  # name of the fault that applied, if any


@dataclass
class Fault:
    """Change how the venue answers the next `times` requests that match."""

    method: str
    path: str
    match: Callable[[VenueRequest], bool] = lambda r: True
    execute: bool = True  # carry the request out (False: answer `reply` without doing anything)
    delay: float = 0.0  # seconds to hold the reply: beyond the client timeout = a lost reply
    reply: Reply | None = None  # replaces the venue's answer
    times: int = 1
    name: str = "fault"
    hits: list[VenueRequest] = field(default_factory=list)


_SIGNATURE_KEYS = ("AccessKeyId", "SignatureMethod", "SignatureVersion", "Timestamp", "Signature")
_PUBLIC = ("/linear-swap-api/v1/swap_contract_info", "/linear-swap-ex/", "/v5/market/")


def _ok(data: Any, ts: int) -> dict:
    return {"code": 200, "message": "Success", "data": data, "ts": ts}


def _err(code: int, message: str, ts: int) -> dict:
    return {"code": code, "message": message, "data": None, "ts": ts}


_SIM_ERRORS: tuple[tuple[type[E.ExchangeError], int, str], ...] = (
    (E.PostOnlyWouldCross, 1235, "Post-only order would be matched immediately"),
    (E.InsufficientMargin, 1047, "Insufficient margin available."),
    (E.ReduceOnlyFrozen, 1048, "Insufficient close amount available."),
    (E.InvalidOrder, 1036, "Invalid order"),
)


def _sim_error(exc: E.ExchangeError) -> tuple[int, str]:
    for cls, code, message in _SIM_ERRORS:
        if isinstance(exc, cls):
            return code, f"{message} ({exc.message})"
    return 1036, exc.message


class VenueProtocolError(Exception):
    """A request the venue refuses as malformed (answered with HTX code 1036 or similar)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- the venue


class FakeHtxVenue:
    """Loopback HTX venue backed by a `SimulatedExchange`; see the module docstring."""

    NORMAL_BASE = 1_513_000_000_000_000_000
    ALGO_BASE = 1_512_800_000_000_000_000

    def __init__(
        self,
        *,
        api_key: str,
        secret: str,
        series: Mapping[str, list[Candle]] | None = None,
        start_candles: int = 200,
        contracts: Iterable[Contract] = CONTRACTS,
        sim_config: SimConfig | None = None,
        leverage: int = 5,
        funding_rate: str = "0.0001",
        timeframe: str = "5m",
        kline_size_wins: bool = True,
    ):
        self.api_key = api_key
        self.secret = secret
        self.contracts = {c.symbol: c for c in contracts}
        self.by_code = {c.code: c for c in self.contracts.values()}
        self.tf_ms = timeframe_ms(timeframe)
        self.period = {"1m": "1min", "5m": "5min", "15m": "15min", "30m": "30min", "1h": "60min"}[timeframe]
        #: HTX ignores from/to when `size` is given (as ccxt's comment says): serve the newest `size`
        self.kline_size_wins = kline_size_wins
        self.series = {s: list(c) for s, c in (series or recorded_series()).items() if s in self.contracts}
        start = min(c[0].ts_ms for c in self.series.values()) + start_candles * self.tf_ms
        cfg = sim_config or SimConfig(initial_wallet=Decimal("10000"), stops_reserve_closeable=False,
                                      candle_ms=self.tf_ms, name="htx-sim")
        self.sim = SimulatedExchange([c.market() for c in self.contracts.values()], cfg,
                                     start_ms=start - start_candles * self.tf_ms)
        for symbol in self.contracts:
            self.sim.set_leverage(symbol, leverage)
            self.sim.set_funding_rate(symbol, funding_rate)
        self.now_ms = self.sim.now_ms
        self.klines: dict[str, list[Candle]] = {s: [] for s in self.contracts}
        self._cursor = dict.fromkeys(self.series, 0)
        # id mapping: simulator id <-> venue id; client ids in use, per family
        self._vid: dict[str, str] = {}
        self._sim_id: dict[str, str] = {}
        self._cids: dict[tuple[str, int], str] = {}  # (family, venue client id) -> newest sim order id
        self._venue_cid: dict[str, int] = {}  # sim order id -> the client id the bot sent
        self._next_sim_cid = 1  # the simulator gets its own ids: the venue does not dedupe for it
        self._system_cancelled: dict[str, Order] = {}  # post-only orders the venue cancelled
        self.system_cancels: list[VenueRequest] = []
        self.reused_client_ids: list[VenueRequest] = []  # an expired id sent again: a second order
        self.executed_twice: list[VenueRequest] = []  # ... after the first one filled (or triggered)
        self.assets_mode = 1  # 1: multi-assets collateral (what the v5 endpoints serve)
        self.position_mode = "single_side"
        self.margin_mode = "cross"
        self.stop_trigger_types: dict[str, str] = {}  # sim stop id -> last | mark
        self._attached: dict[str, tuple[Decimal, str]] = {}  # sim order id -> its sl (trigger, type)
        self.fill_venue_ms: dict[str, int] = {}  # sim fill id -> venue time it happened
        self.stop_active_ms: dict[str, int] = {}  # sim stop id -> venue time it started resting
        self.fill_real_s: dict[str, float] = {}  # ... the same in the machine's monotonic time
        self.stop_active_real_s: dict[str, float] = {}
        #: the v5 order-push websocket (GET /ws/v5/notification): fills are pushed as they happen
        self.ws = FakeHtxOrderPush(api_key=api_key, secret=secret, contract_codes=lambda: set(self.by_code))
        self._pushed_filled: dict[str, Decimal] = {}  # sim order id -> filled volume last pushed
        self._website_cids = 0
        self.cancel_next_post_only = 0  # a fault: the next N post-only orders are system-cancelled
        self._fees: dict[str, Decimal] = {}
        self._levers: dict[str, Decimal | None] = {}
        self.requests: list[VenueRequest] = []
        self.faults: list[Fault] = []
        self.unexpected: list[VenueRequest] = []  # requests the bot should never send
        self.auth_failures: list[VenueRequest] = []
        self.duplicate_client_ids: list[VenueRequest] = []
        self.revoked_at_ms: int | None = None  # venue time of `revoke_key()`
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.advance_to(start)

    # ------------------------------------------------------------------ server lifecycle

    async def start(self) -> FakeHtxVenue:
        app = web.Application()
        app.router.add_get(WS_PATH, self.ws.handle)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        await self.ws.drop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeHtxVenue:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def host(self) -> str:
        assert self.port is not None, "venue not started"
        return f"127.0.0.1:{self.port}"

    def htx_config(self, *, timeout_ms: int = 5_000, retry: RetryPolicy | None = None, **kw: Any) -> HtxConfig:
        """An `HtxConfig` pointed at this venue, with the venue's clock."""
        return HtxConfig(api_key=self.api_key, secret=self.secret, hostnames=(self.host,), scheme="http",
                         timeout_ms=timeout_ms, rate_limit_ms=1,
                         retry=retry or RetryPolicy(max_attempts=3, base_delay=0.01, reconcile_delay=0.01, seed=1),
                         clock_ms=lambda: self.now_ms, **kw)

    # ------------------------------------------------------------------ driving the market

    def candle(self, symbol: str, ts_ms: int, o: Any, h: Any, low: Any, c: Any, volume: Any = 0) -> None:
        """One closed candle of `symbol`: it trades against resting orders and stops, and is served
        as a kline from now on."""
        served = self.klines[symbol]
        if served and ts_ms <= served[-1].ts_ms:
            raise ValueError(f"{symbol}: candle {ts_ms} is not after {served[-1].ts_ms}")
        fills, attached = len(self.sim._fills), len(self.sim.attached_from)
        self.sim.on_candle(symbol, ts_ms, D(o), D(h), D(low), D(c))
        served.append(Candle(ts_ms, float(o), float(h), float(low), float(c), float(volume)))
        self.now_ms = max(self.now_ms, ts_ms + self.tf_ms)
        now_s = time.monotonic()
        for f in self.sim._fills[fills:]:
            self.fill_venue_ms[f.id] = self.now_ms
            self.fill_real_s[f.id] = now_s
        for stop_id in list(self.sim.attached_from)[attached:]:
            self.stop_active_ms[stop_id] = self.now_ms
            self.stop_active_real_s[stop_id] = now_s
            self.stop_trigger_types[stop_id] = self._attached[self.sim.attached_from[stop_id]][1]
        self._push_fills({f.order_id for f in self.sim._fills[fills:]})

    def _push_fills(self, order_ids: set[str]) -> None:
        """Push the row of every order that filled (HTX v5 `orders` topic), in the order's state
        after the candle: partially_filled or filled, `trade_volume` the volume filled so far."""
        if not self.ws.conns or not order_ids:
            return
        for o in self.sim.all_orders():
            if o.id not in order_ids or self._pushed_filled.get(o.id) == o.filled:
                continue
            self._pushed_filled[o.id] = o.filled
            self._fees[o.id] = sum((f.fee for f in self.sim._fills if f.order_id == o.id), Decimal(0))
            row = self._order_row(o)
            if o.is_algo:  # a triggered stop: HTX pushes the market order it became
                row.update({"type": "market", "order_source": "tpsl", "reduce_only": True,
                            "state": "filled" if o.status == "filled" else row["state"]})
            self.ws.publish(self.contracts[o.symbol].code, row, self.now_ms)

    def advance_to(self, now_ms: int) -> None:
        """Let the recorded series trade until `now_ms`: every candle closed by then, in time order."""
        due: list[tuple[int, str, Candle]] = []
        for symbol, candles in self.series.items():
            i = self._cursor[symbol]
            while i < len(candles) and candles[i].ts_ms + self.tf_ms <= now_ms:
                due.append((candles[i].ts_ms, symbol, candles[i]))
                i += 1
            self._cursor[symbol] = i
        for _, symbol, c in sorted(due, key=lambda t: (t[0], t[1])):
            self.candle(symbol, c.ts_ms, c.open, c.high, c.low, c.close, c.volume)
        self.now_ms = max(self.now_ms, now_ms)

    def advance(self, candles: int = 1) -> None:
        self.advance_to(self.now_ms + candles * self.tf_ms)

    @property
    def exhausted(self) -> bool:
        return all(self._cursor[s] >= len(c) for s, c in self.series.items())

    def inject(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def revoke_key(self) -> None:
        """From now on every private request fails authentication (a revoked API key)."""
        self.revoked_at_ms = self.now_ms

    # ------------------------------------------------------------------ assertions helpers

    def calls(self, method: str | None = None, path: str | None = None) -> list[VenueRequest]:
        return [r for r in self.requests
                if (method is None or r.method == method.upper()) and (path is None or r.path == path)]

    def fill_to_stop(self, real: bool = False) -> list[tuple[str, Any, str]]:
        """For every position that opened: (symbol, venue ms from its opening fill to the first
        stop resting for it, "attached" | "placed"). A position that closed before any stop
        rested is reported with the ms it lived and "none". `real`: the same in the machine's
        monotonic clock (ms, float) instead of venue time."""
        return [(symbol, t1 - t0, how) for symbol, t0, t1, how in self.fill_to_stop_times(real)]

    def fill_to_stop_times(self, real: bool = False) -> list[tuple[str, Any, Any, str]]:
        """As `fill_to_stop`, with the two times: (symbol, opening fill, first stop (or the
        close), how)."""
        out: list[tuple[str, Any, Any, str]] = []
        if real:
            active: dict[str, Any] = {k: v * 1000 for k, v in self.stop_active_real_s.items()}
            fill_t: dict[str, Any] = {k: v * 1000 for k, v in self.fill_real_s.items()}
            end: Any = time.monotonic() * 1000
        else:
            active, fill_t, end = self.stop_active_ms, self.fill_venue_ms, self.now_ms
        stops = [(active[o.id], o) for o in self.sim.all_orders() if o.id in active]
        held: dict[str, Decimal] = {}
        opened: dict[str, Any] = {}
        for f in self.sim._fills:
            t = fill_t.get(f.id, end)
            before = held.get(f.symbol, Decimal(0))
            after = before + (f.amount if f.side == "buy" else -f.amount)
            held[f.symbol] = after
            if before == 0 and after != 0:
                opened[f.symbol] = t
            elif after == 0 and f.symbol in opened:
                t0 = opened.pop(f.symbol)
                first = min(((ts, o) for ts, o in stops if o.symbol == f.symbol and t0 <= ts <= t),
                            default=None, key=lambda x: x[0])
                out.append((f.symbol, t0, first[0] if first else t,
                            "none" if first is None else "attached" if first[1].id in self.sim.attached_from
                            else "placed"))
        for symbol, t0 in opened.items():
            first = min(((ts, o) for ts, o in stops if o.symbol == symbol and t0 <= ts),
                        default=None, key=lambda x: x[0])
            if first is not None:
                out.append((symbol, t0, first[0], "attached" if first[1].id in self.sim.attached_from else "placed"))
        return out

    async def protection_problems(self) -> list[str]:
        """Every open position must have exactly one open stop-loss, reduce-only, closing side,
        of the position's full size. Read from the simulator directly (not over HTTP)."""
        problems = []
        positions = {p.symbol: p for p in await self.sim.fetch_positions()}
        stops = [o for o in await self.sim.fetch_open_orders() if o.kind == "stop_loss"]
        for symbol, pos in positions.items():
            mine = [o for o in stops if o.symbol == symbol]
            closing = "sell" if pos.side == "long" else "buy"
            if len(mine) != 1:
                problems.append(f"{symbol} {pos.side} {pos.contracts}: {len(mine)} stops")
                continue
            stop = mine[0]
            if stop.amount != pos.contracts or stop.side != closing or not stop.reduce_only:
                problems.append(f"{symbol} {pos.side} {pos.contracts}: stop {stop.side} {stop.amount}")
        for stop in stops:
            if stop.symbol not in positions:
                problems.append(f"{stop.symbol}: stop without a position")
        return problems

    # ------------------------------------------------------------------ HTTP plumbing

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        raw_query = request.raw_path.partition("?")[2]
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        rec = VenueRequest(request.method, request.path, {k: v for k, v in query.items() if k not in _SIGNATURE_KEYS},
                           body, self.now_ms, signed="Signature" in query)
        self.requests.append(rec)
        fault = next((f for f in self.faults if f.times > 0 and f.method == rec.method and f.path == rec.path
                      and f.match(rec)), None)
        if fault is not None:
            fault.times -= 1
            fault.hits.append(rec)
            rec.fault = fault.name
        if fault is not None and not fault.execute:
            reply = fault.reply or Reply(status=502, text="<html>502 Bad Gateway</html>")
        else:
            reply = await self._answer(request, rec, raw_query, query)
            if fault is not None and fault.reply is not None:
                reply = fault.reply
        rec.reply = reply.json if reply.text is None else reply.text
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if reply.text is not None:
            return web.Response(text=reply.text, status=reply.status, content_type="text/html")
        return web.json_response(reply.json, status=reply.status)

    def _authentic(self, request: web.Request, raw_query: str, query: dict[str, str]) -> bool:
        auth, sep, signature_part = raw_query.rpartition("&Signature=")
        if not sep or query.get("AccessKeyId") != self.api_key or self.revoked_at_ms is not None:
            return False
        if query.get("SignatureMethod") != "HmacSHA256" or query.get("SignatureVersion") != "2":
            return False
        payload = "\n".join([request.method, request.host, request.path, auth])
        expected = base64.b64encode(hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).digest())
        return hmac.compare_digest(expected.decode(), query.get("Signature", ""))

    async def _answer(self, request: web.Request, rec: VenueRequest, raw_query: str,
                      query: dict[str, str]) -> Reply:
        handler = self._routes().get((rec.method, rec.path))
        if handler is None:
            self.unexpected.append(rec)
            return Reply({"status": "error", "err_code": 404, "err_msg": f"no route {rec.method} {rec.path}",
                          "ts": self.now_ms}, status=404)
        public = rec.path.startswith(_PUBLIC)
        if not public and not self._authentic(request, raw_query, query):
            self.auth_failures.append(rec)
            return Reply({"status": "error", "err_code": 403, "err_msg": "Incorrect Access key [Access key错误]",
                          "ts": self.now_ms})
        try:
            return Reply(await handler(rec))
        except VenueProtocolError as exc:
            self.unexpected.append(rec)
            return Reply(_err(exc.code, exc.message, self.now_ms))

    def _routes(self) -> dict[tuple[str, str], Callable[[VenueRequest], Any]]:
        return {
            ("GET", "/linear-swap-api/v1/swap_contract_info"): self._contract_info,
            ("GET", "/v5/account/balance"): self._balance,
            ("GET", "/v5/trade/position/opens"): self._positions,
            ("GET", "/v5/trade/order/opens"): self._open_orders,
            ("GET", "/v5/algo/order/opens"): self._open_algo_orders,
            ("POST", "/v5/trade/order"): self._place,
            ("GET", "/v5/trade/order"): self._order,
            ("POST", "/v5/algo/order"): self._place_algo,
            ("GET", "/v5/algo/order"): self._algo_order,
            ("POST", "/v5/trade/cancel_order"): self._cancel,
            ("POST", "/v5/algo/cancel_orders"): self._cancel_algo,
            ("GET", "/v5/trade/order/details"): self._fills,
            ("GET", "/v5/market/funding_rate"): self._funding,
            ("GET", "/v5/position/lever"): self._lever,
            ("POST", "/v5/position/lever"): self._set_lever,
            ("GET", "/v5/position/mode"): self._position_mode,
            ("POST", "/v5/position/mode"): self._set_position_mode,
            ("GET", "/v5/account/asset_mode"): self._asset_mode,
            ("GET", "/linear-swap-ex/market/detail/batch_merged"): self._batch_merged,
            ("GET", "/linear-swap-ex/market/history/kline"): self._kline,
        }

    # ------------------------------------------------------------------ helpers

    def _contract(self, code: str | None) -> Contract:
        contract = self.by_code.get(code or "")
        if contract is None:
            raise VenueProtocolError(1013, f"contract {code!r} does not exist")
        return contract

    def _venue_id(self, order: Order) -> str:
        vid = self._vid.get(order.id)
        if vid is None:
            n = int(order.id.rsplit("-", 1)[1])
            vid = str((self.ALGO_BASE if order.is_algo else self.NORMAL_BASE) + n)
            self._vid[order.id] = vid
            self._sim_id[vid] = order.id
        return vid

    def _sim_order(self, symbol: str | None, vid: str | None = None, cid: int | None = None,
                   family: str = "normal") -> Order | None:
        sim_id = self._sim_id.get(vid or "") if vid is not None else self._cids.get((family, cid or 0))
        if sim_id is None:
            return None
        found = self._system_cancelled.get(sim_id) or next((o for o in self.sim.all_orders() if o.id == sim_id), None)
        if found is None or (symbol is not None and found.symbol != symbol):
            return None
        if found.is_algo != (family == "algo"):
            return None
        return found

    @staticmethod
    def _volume(raw: Any) -> Decimal:
        try:
            volume = D(str(raw))
        except Exception:
            raise VenueProtocolError(1036, f"bad volume {raw!r}") from None
        if volume <= 0 or volume != volume.to_integral_value():
            raise VenueProtocolError(1036, f"volume must be a positive whole number of contracts: {raw!r}")
        return volume

    @staticmethod
    def _price(raw: Any, tick: Decimal) -> Decimal:
        try:
            price = D(str(raw))
        except Exception:
            raise VenueProtocolError(1036, f"bad price {raw!r}") from None
        if price <= 0 or price % tick != 0:
            raise VenueProtocolError(1036, f"price {raw!r} is not on the tick {fmt(tick)}")
        return price

    @staticmethod
    def _cid(raw: Any) -> int:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).isdigit():
            raise VenueProtocolError(1067, f"Illegal parameter client_order_id: {raw!r}")
        return int(raw)

    def _state(self, order: Order) -> str:
        if order.is_algo:
            return {"open": "active", "filled": "triggered"}.get(order.status, order.status)
        if order.status == "open":
            return "partially_filled" if order.filled > 0 else "new"
        if order.status == "canceled" and order.filled > 0:
            return "partially_canceled"
        return order.status

    async def _order_extras(self) -> None:
        """Fees per order and leverage per contract, read before building order rows."""
        self._fees = {}
        for f in await self.sim.fetch_fills(list(self.contracts), 0):
            self._fees[f.order_id] = self._fees.get(f.order_id, Decimal(0)) + f.fee
        self._levers = {s: await self.sim.fetch_leverage(s) for s in self.contracts}

    def _order_row(self, o: Order) -> dict:
        contract = self.contracts[o.symbol]
        vid = self._venue_id(o)
        avg = o.average_price
        fee = self._fees.get(o.id, Decimal(0))
        sl = self._attached.get(o.id)
        # HTX v5 order rows carry a "Query ID" in `id` (a paging cursor) that is NOT the order
        # id: ccxt's parsed `id` prefers it, and a cancel sent with it is answered 1061.
        return {
            "id": self._query_id(o), "side": o.side, "type": "post_only" if o.post_only else o.kind,
            "price": fmt(o.price) if o.price is not None else None, "volume": fmt(o.amount),
            "state": self._state(o), "profit": None, "contract_code": contract.code, "position_side": "both",
            "price_match": None, "order_id": vid, "client_order_id": self._bot_cid(o),
            "margin_mode": "cross", "lever_rate": int(self._levers.get(o.symbol) or 1), "order_source": "api",
            "reduce_only": o.reduce_only, "time_in_force": "gtc",
            "tp_trigger_price": "", "tp_order_price": "", "tp_type": "0", "tp_trigger_price_type": "",
            "sl_trigger_price": fmt(sl[0]) if sl else "", "sl_order_price": "",
            "sl_type": "market" if sl else "0", "sl_trigger_price_type": sl[1] if sl else "",
            "trade_avg_price": fmt(avg) if avg is not None else "0", "trade_volume": fmt(o.filled),
            "trade_turnover": fmt(o.filled * contract.contract_size * avg) if avg is not None else "0",
            "fee_currency": "USDT" if fee else "", "fee": fmt(fee), "price_protect": False,
            "contract_type": "swap", "created_time": str(o.ts_ms), "updated_time": str(self.now_ms),
            "cancel_reason": ("Order cancelation by system" if o.id in self._system_cancelled
                              else "Limit order cancelation by the client" if o.status == "canceled" else None),
            "self_match_prevent": "cancel_taker",
        }

    def bot_client_ids(self) -> list[int]:
        """The client id the bot sent with every order the venue accepted (one per order)."""
        return list(self._venue_cid.values())

    def _bot_cid(self, o: Order) -> str | None:
        cid = self._venue_cid.get(o.id)
        return str(cid) if cid is not None else None

    def _sim_cid(self) -> int:
        self._next_sim_cid += 1
        return self._next_sim_cid

    def _note_reuse(self, rec: VenueRequest, family: str, cid: int) -> None:
        """An expired client id sent again. HTX accepts it as a new order; it is the same intent
        executed twice when the earlier order filled anything (or was a stop that triggered)."""
        old = self._sim_order(None, cid=cid, family=family)
        rec.fault = rec.fault or f"reuses {family} id of {old.status if old else '?'} order filled {old.filled if old else '?'}"
        self.reused_client_ids.append(rec)
        if old is None or old.filled > 0 or old.status == "filled":
            self.executed_twice.append(rec)

    def _active(self, family: str, cid: int) -> Order | None:
        """The order that holds a client id: only an open one does (HTX: the id "becomes
        invalid once the order is fully filled or canceled")."""
        order = self._sim_order(None, cid=cid, family=family)
        return order if order is not None and order.is_open else None

    def _query_id(self, o: Order) -> str:
        return str(3_000_000_000 + int(o.id.rsplit("-", 1)[1]) * 7)

    def _algo_row(self, o: Order) -> dict:
        vid = self._venue_id(o)
        return {
            "id": str(160_000_000 + int(o.id.rsplit("-", 1)[1])), "volume": fmt(o.amount), "type": "sl",
            "state": self._state(o), "side": o.side, "algo_id": vid,
            "algo_client_order_id": self._bot_cid(o), "contract_code": self.contracts[o.symbol].code,
            "position_side": "both", "margin_mode": "cross", "created_time": str(o.ts_ms),
            "updated_time": str(self.now_ms),
            "sl_trigger_price": fmt(o.trigger_price), "sl_order_price": "0", "sl_type": "market",
            "sl_trigger_price_type": self.stop_trigger_types.get(o.id, "last"),
            "order_source": "api" if o.id in self._venue_cid or o.id in self.sim.attached_from else "web",
        }

    # ------------------------------------------------------------------ endpoints: reads

    async def _contract_info(self, rec: VenueRequest) -> dict:
        rows = [{"symbol": c.base, "contract_code": c.code, "contract_size": float(c.contract_size),
                 "price_tick": float(c.price_tick), "delivery_date": "", "delivery_time": "",
                 "create_date": "20201021", "contract_status": 1, "settlement_date": str(self.now_ms + 8 * 3600_000),
                 "support_margin_mode": "all", "business_type": "swap", "pair": c.code, "contract_type": "swap",
                 "trade_partition": "USDT"} for c in self.contracts.values()]
        rows.append({"symbol": "BTC", "contract_code": "BTC-USDT-260626", "contract_size": 0.001, "price_tick": 0.1,
                     "delivery_date": "20260626", "delivery_time": "1782460800000", "create_date": "20260313",
                     "contract_status": 1, "settlement_date": str(self.now_ms + 8 * 3600_000),
                     "support_margin_mode": "cross", "business_type": "futures", "pair": "BTC-USDT",
                     "contract_type": "quarter", "trade_partition": "USDT"})
        return {"status": "ok", "data": rows, "ts": self.now_ms}

    async def _balance(self, rec: VenueRequest) -> dict:
        b = await self.sim.fetch_balance()
        mmr = self.sim.config.maintenance_margin_rate
        maintenance = sum((p.contracts * self.contracts[p.symbol].contract_size * (p.mark_price or p.entry_price)
                           for p in await self.sim.fetch_positions()), Decimal(0)) * mmr
        detail = {"currency": "USDT", "equity": fmt(b.equity), "available": fmt(b.free),
                  "profit_unreal": fmt(b.unrealized_pnl), "initial_margin": fmt(b.used_margin),
                  "maintenance_margin": fmt(maintenance), "maintenance_margin_rate": fmt(mmr),
                  "initial_margin_rate": "0", "available_margin": fmt(b.free), "voucher": "0",
                  "voucher_value": "0", "withdraw_available": fmt(b.free), "created_time": self.now_ms,
                  "updated_time": self.now_ms, "isolated_equity": "0", "isolated_profit_unreal": "0"}
        data = {"state": "normal", "equity": fmt(b.equity), "initial_margin": fmt(b.used_margin),
                "maintenance_margin": fmt(maintenance), "maintenance_margin_rate": fmt(mmr),
                "profit_unreal": fmt(b.unrealized_pnl), "available_margin": fmt(b.free), "voucher_value": "0",
                "details": [detail], "created_time": self.now_ms, "updated_time": self.now_ms}
        return _ok(data, self.now_ms)

    async def _positions(self, rec: VenueRequest) -> dict:
        rows = []
        for p in await self.sim.fetch_positions():
            c = self.contracts[p.symbol]
            mark = p.mark_price or p.entry_price
            value = p.contracts * c.contract_size * mark
            margin = value / (p.leverage or Decimal(1))
            rows.append({
                "contract_code": c.code, "position_side": "both", "direction": "buy" if p.side == "long" else "sell",
                "margin_mode": self.margin_mode, "open_avg_price": fmt(p.entry_price), "volume": fmt(p.contracts),
                "available": fmt(p.closeable if p.closeable is not None else p.contracts),
                "lever_rate": int(p.leverage or 1), "adl_risk_percent": 1,
                "liquidation_price": fmt(p.liquidation_price) if p.liquidation_price is not None else None,
                "margin": fmt(margin), "initial_margin": fmt(margin),
                "maintenance_margin": fmt(value * self.sim.config.maintenance_margin_rate),
                "profit_unreal": fmt(p.unrealized_pnl),
                "profit_rate": fmt(p.unrealized_pnl / margin) if margin else "0",
                "margin_rate": "0", "mark_price": fmt(mark), "last_price": fmt(mark), "margin_currency": "USDT",
                "contract_type": "swap", "created_time": str(self.now_ms), "updated_time": str(self.now_ms),
            })
        return _ok(rows, self.now_ms)

    def _filtered_open(self, orders: list[Order], rec: VenueRequest) -> list[Order]:
        code = rec.query.get("contract_code")
        if code is not None:
            orders = [o for o in orders if self.contracts[o.symbol].code == code]
        limit = int(rec.query.get("limit") or 50)
        return sorted(orders, key=lambda o: int(o.id.rsplit("-", 1)[1]))[:limit]

    async def _open_orders(self, rec: VenueRequest) -> dict:
        await self._order_extras()
        orders = [o for o in await self.sim.fetch_open_orders() if not o.is_algo]
        return _ok([self._order_row(o) for o in self._filtered_open(orders, rec)], self.now_ms)

    async def _open_algo_orders(self, rec: VenueRequest) -> dict:
        kind = rec.query.get("type")
        if kind not in ("sl", "tp", "tpsl", "trigger", "trailing_stop"):
            raise VenueProtocolError(1036, f"type {kind!r} is not an algo order type")
        orders = [o for o in await self.sim.fetch_open_orders() if o.kind == "stop_loss"] if kind == "sl" else []
        return _ok([self._algo_row(o) for o in self._filtered_open(orders, rec)], self.now_ms)

    async def _order(self, rec: VenueRequest) -> dict:
        q = rec.query
        if q.get("margin_mode") != "cross":
            raise VenueProtocolError(1036, "margin_mode must be cross")
        contract = self._contract(q.get("contract_code"))
        if ("order_id" in q) == ("client_order_id" in q):
            raise VenueProtocolError(1036, "pass order_id or client_order_id")
        await self._order_extras()
        if "order_id" in q:
            order = self._sim_order(contract.symbol, vid=q["order_id"])
        else:
            cid = self._cid(q["client_order_id"])
            order = self._sim_order(contract.symbol, cid=cid)
            if order is not None and not order.is_open:
                return _err(1067, "Illegal parameter client_order_id", self.now_ms)  # expired with the order
        return _ok(self._order_row(order) if order is not None else None, self.now_ms)

    async def _algo_order(self, rec: VenueRequest) -> dict:
        q = rec.query
        if q.get("type") != "sl":
            raise VenueProtocolError(1036, f"algo type {q.get('type')!r}: the bot only places sl orders")
        if "algo_id" in q:
            order = self._sim_order(None, vid=q["algo_id"], family="algo")
        else:
            order = self._sim_order(None, cid=self._cid(q.get("algo_client_order_id")), family="algo")
            if order is not None and not order.is_open:
                order = None  # expired with the order: HTX answers an empty list
        return _ok([self._algo_row(order)] if order is not None else [], self.now_ms)

    async def _fills(self, rec: VenueRequest) -> dict:
        contract = self._contract(rec.query.get("contract_code"))
        limit = int(rec.query.get("limit") or 10)  # documented default 10
        if not 1 <= limit <= 100:
            return _err(1067, "Illegal parameter limit", self.now_ms)  # documented maximum 100
        until = int(rec.query.get("end_time") or self.now_ms)
        since = int(rec.query.get("start_time") or until - 48 * 3600_000)
        if until - since > 48 * 3600_000 or since < self.now_ms - 90 * 86_400_000:
            return _err(1067, "Illegal parameter start_time", self.now_ms)
        orders = {o.id: o for o in self.sim.all_orders(contract.symbol)}
        rows = []
        for f in await self.sim.fetch_fills([contract.symbol], since):
            if f.ts_ms > until:
                continue
            order = orders.get(f.order_id)
            vid = self._venue_id(order) if order is not None else str(1_514_000_000_000_000_000 + len(rows))
            otype = "market" if order is None or order.is_algo else ("post_only" if order.post_only else order.kind)
            fid = int(f.id.rsplit("-", 1)[1])
            rows.append({
                "id": str(1_513_834_754_679_000_000 + fid), "contract_code": contract.code, "order_id": vid,
                "trade_id": str(152_000_000 + fid), "side": f.side, "position_side": "both", "order_type": "1",
                "margin_mode": "cross", "type": otype, "role": "MAKER" if f.maker else "TAKER",
                "trade_price": fmt(f.price), "trade_volume": fmt(f.amount),
                "trade_turnover": fmt(f.price * f.amount * contract.contract_size),
                "created_time": str(f.ts_ms), "updated_time": str(f.ts_ms), "order_source": "api",
                "fee_currency": f.fee_currency, "trade_fee": fmt(f.fee), "deduction_price": "",
                "profit": fmt(f.realized_pnl if f.realized_pnl is not None else Decimal(0)), "contract_type": "swap",
                "client_order_id": self._bot_cid(order) if order is not None else None,
            })
        rows.sort(key=lambda r: (int(r["created_time"]), r["id"]), reverse=True)  # newest first
        return _ok(rows[:limit], self.now_ms)

    async def _funding(self, rec: VenueRequest) -> dict:
        code = rec.query.get("contract_code")
        wanted = [self._contract(code)] if code else list(self.contracts.values())
        rates = await self.sim.fetch_funding_rates([c.symbol for c in wanted])
        rows = [{"contract_code": c.code, "funding_rate": fmt(rates[c.symbol].rate),
                 "funding_time": str(rates[c.symbol].funding_time_ms),
                 "next_funding_time": str(rates[c.symbol].next_funding_time_ms),
                 "min_funding_rate": "-0.00375", "max_funding_rate": "0.00375"} for c in wanted]
        return _ok(rows, self.now_ms)

    async def _lever(self, rec: VenueRequest) -> dict:
        contract = self._contract(rec.query.get("contract_code"))
        if rec.query.get("margin_mode") != "cross":
            raise VenueProtocolError(1036, "margin_mode must be cross")
        lever = await self.sim.fetch_leverage(contract.symbol)
        return _ok([{"contract_code": contract.code, "margin_mode": "cross", "lever_rate": int(lever or 1)}],
                   self.now_ms)

    async def _set_lever(self, rec: VenueRequest) -> dict:
        body = rec.body if isinstance(rec.body, dict) else {}
        contract = self._contract(body.get("contract_code"))
        if body.get("margin_mode") != "cross":
            raise VenueProtocolError(1036, "margin_mode must be cross")
        try:
            lever = int(str(body.get("lever_rate")))
        except ValueError:
            raise VenueProtocolError(1067, "Illegal parameter lever_rate") from None
        if not 1 <= lever <= 200:
            return _err(1206, "high leverage is not supported for this position tier", self.now_ms)
        self.sim.set_leverage(contract.symbol, lever)
        return _ok([{"contract_code": contract.code, "margin_mode": "cross", "lever_rate": lever}], self.now_ms)

    async def _position_mode(self, rec: VenueRequest) -> dict:
        return _ok({"position_mode": self.position_mode}, self.now_ms)

    async def _set_position_mode(self, rec: VenueRequest) -> dict:
        body = rec.body if isinstance(rec.body, dict) else {}
        mode = body.get("position_mode")
        if mode not in ("single_side", "dual_side"):
            raise VenueProtocolError(1067, f"Illegal parameter position_mode: {mode!r}")
        if mode != self.position_mode:
            if [o for o in await self.sim.fetch_open_orders()]:
                return _err(1493, "Position mode cannot be adjusted for open orders", self.now_ms)
            if await self.sim.fetch_positions():
                return _err(1494, "Position mode cannot be adjusted for existing positions", self.now_ms)
        self.position_mode = mode
        return _ok({"position_mode": mode}, self.now_ms)

    async def _asset_mode(self, rec: VenueRequest) -> dict:
        return {"code": 200, "msg": "Success", "data": {"assets_mode": self.assets_mode}, "ts": self.now_ms}

    async def _batch_merged(self, rec: VenueRequest) -> dict:
        if rec.query.get("business_type") not in ("swap", "all"):
            raise VenueProtocolError(1036, "business_type")
        tops = await self.sim.fetch_order_book_top(list(self.contracts))
        ticks = []
        for symbol, top in tops.items():
            c = self.contracts[symbol]
            last = self.klines[symbol][-1] if self.klines[symbol] else None
            ticks.append({
                "id": self.now_ms // 1000, "ts": self.now_ms,
                "ask": [float(top.ask), 100], "bid": [float(top.bid), 100],
                "symbol": c.code, "contract_code": c.code, "business_type": "swap",
                "open": str(last.open if last else top.bid), "close": str(last.close if last else top.bid),
                "low": str(last.low if last else top.bid), "high": str(last.high if last else top.bid),
                "amount": str(last.volume if last else 0), "count": 100, "vol": "0", "trade_turnover": "0",
            })
        return {"status": "ok", "ticks": ticks, "ts": self.now_ms}

    async def _kline(self, rec: VenueRequest) -> dict:
        q = rec.query
        contract = self._contract(q.get("contract_code"))
        if q.get("period") != self.period:
            raise VenueProtocolError(1036, f"period {q.get('period')!r} is not served (only {self.period})")
        rows = list(self.klines[contract.symbol])
        series = self.series.get(contract.symbol, [])
        i = self._cursor.get(contract.symbol, 0)
        if i < len(series) and series[i].ts_ms <= self.now_ms < series[i].ts_ms + self.tf_ms:
            forming = series[i]  # only its open is known yet
            rows.append(Candle(forming.ts_ms, forming.open, forming.open, forming.open, forming.open, 0.0))
        size = int(q["size"]) if "size" in q else None
        if size is not None and not 1 <= size <= 2000:
            raise VenueProtocolError(1036, "invalid size, valid range: [1,2000]")
        if size is None and not ("from" in q and "to" in q):
            raise VenueProtocolError(1036, "either size or from and to are required")
        if size is not None and (self.kline_size_wins or "from" not in q):
            rows = rows[-size:]
        else:
            lo, hi = int(q["from"]) * 1000, int(q["to"]) * 1000
            rows = [r for r in rows if lo <= r.ts_ms <= hi][: size or 2000]
        data = [{"id": r.ts_ms // 1000, "open": r.open, "close": r.close, "low": r.low, "high": r.high,
                 "amount": r.volume, "vol": r.volume, "trade_turnover": r.volume * r.close, "count": 1}
                for r in rows]
        return {"ch": f"market.{contract.code}.kline.{self.period}", "status": "ok", "ts": self.now_ms, "data": data}

    # ------------------------------------------------------------------ endpoints: orders

    def _check_order_body(self, body: Any) -> tuple[Contract, str, Decimal]:
        if not isinstance(body, dict):
            raise VenueProtocolError(1036, "body must be a JSON object")
        if body.get("margin_mode") != "cross":
            raise VenueProtocolError(1036, "margin_mode must be cross")
        if body.get("channel_code") != BROKER:
            raise VenueProtocolError(1036, "channel_code missing")
        side = body.get("side")
        if side not in ("buy", "sell"):
            raise VenueProtocolError(1036, f"side {side!r}")
        return self._contract(body.get("contract_code")), side, self._volume(body.get("volume"))

    async def _place(self, rec: VenueRequest) -> dict:
        body = rec.body
        contract, side, volume = self._check_order_body(body)
        cid = self._cid(body.get("client_order_id"))
        kind = body.get("type")
        reduce_only = body.get("reduce_only") in (1, "1", True)
        if self._active("normal", cid) is not None:
            self.duplicate_client_ids.append(rec)
            return _err(1050, "Customer's order number is repeated. Please do not repeat submission.", self.now_ms)
        if ("normal", cid) in self._cids:
            self._note_reuse(rec, "normal", cid)  # HTX accepts it: the old order's id expired
        position_side = "long" if side == "sell" else "short"
        if body.get("position_side") not in (None, "both"):
            raise VenueProtocolError(1036, f"position_side {body.get('position_side')!r} in one-way mode")
        sim_cid = self._sim_cid()
        if any(k in body for k in ("tp_trigger_price", "tp_order_price", "tp_type", "sl_order_price")):
            raise VenueProtocolError(1036, f"the bot never sends a take-profit or a limit stop: {body}")
        sl_type, sl_price_type = body.get("sl_type", "market"), body.get("sl_trigger_price_type", "last")
        if sl_type != "market" or sl_price_type not in ("last", "mark"):
            return _err(1067, f"Illegal parameter sl_type/sl_trigger_price_type: {sl_type!r}/{sl_price_type!r}",
                        self.now_ms)
        stop = None
        if "sl_trigger_price" in body:
            if kind != "post_only" or reduce_only:
                raise VenueProtocolError(1036, f"the bot attaches stops to entries only: {body}")
            stop = self._price(body.get("sl_trigger_price"), contract.price_tick)
        try:
            if kind == "post_only" and not reduce_only:
                price = self._price(body.get("price"), contract.price_tick)
                try:
                    if self.cancel_next_post_only > 0:  # the book moved through it as it arrived
                        self.cancel_next_post_only -= 1
                        raise E.PostOnlyWouldCross("book moved")
                    order = await self.sim.place_post_only(contract.symbol, side, volume, price, sim_cid,
                                                           stop_loss=stop)
                    if stop is not None:
                        self._attached[order.id] = (stop, sl_price_type)
                except E.PostOnlyWouldCross:
                    order = self._cancel_by_system(rec, contract, side, volume, price, sim_cid)
            elif kind == "limit" and reduce_only:
                price = self._price(body.get("price"), contract.price_tick)
                order = await self.sim.place_reduce_only_limit(contract.symbol, position_side, volume, price, sim_cid)
            elif kind == "market" and reduce_only and "price" not in body:
                order = await self.sim.close_reduce_only_market(contract.symbol, position_side, volume, sim_cid)
            elif kind == "market" and not reduce_only and "price" not in body:
                order = await self.sim.open_market(contract.symbol, side, volume, sim_cid)
            else:
                raise VenueProtocolError(1036, f"the bot never sends type={kind!r} reduce_only={reduce_only}")
        except E.ExchangeError as exc:
            code, message = _sim_error(exc)
            return _err(code, message, self.now_ms)
        self._cids[("normal", cid)] = order.id
        self._venue_cid[order.id] = cid
        return _ok({"order_id": self._venue_id(order), "client_order_id": str(cid)}, self.now_ms)

    def _cancel_by_system(self, rec: VenueRequest, contract: Contract, side: str, volume: Decimal,
                          price: Decimal, sim_cid: int) -> Order:
        """HTX accepts a post-only order that would cross and cancels it itself."""
        n = 900_000 + len(self._system_cancelled)
        order = Order(id=f"sys-{n}", client_order_id=sim_cid, symbol=contract.symbol, side=side,  # type: ignore[arg-type]
                      kind="limit", price=price, trigger_price=None, amount=volume, filled=Decimal(0),
                      status="canceled", reduce_only=False, post_only=True, ts_ms=self.now_ms)
        self._system_cancelled[order.id] = order
        self.system_cancels.append(rec)
        return order

    async def place_website_stop(self, symbol: str, trigger: Any) -> Order:
        """A stop-loss the user placed on HTX's website for a position: no client id, and
        `order_source` "web" in its row."""
        pos = next(p for p in await self.sim.fetch_positions() if p.symbol == symbol)
        return await self.sim.place_stop_loss(symbol, pos.side, pos.contracts, D(trigger), self._sim_cid())

    async def _place_algo(self, rec: VenueRequest) -> dict:
        body = rec.body
        contract, side, volume = self._check_order_body(body)
        cid = self._cid(body.get("algo_client_order_id"))
        if body.get("type") != "sl" or "sl_order_price" in body or "tp_trigger_price" in body:
            raise VenueProtocolError(1036, f"the bot only places market-at-trigger sl orders: {body}")
        trigger = self._price(body.get("sl_trigger_price"), contract.price_tick)
        trigger_type = body.get("sl_trigger_price_type", "last")
        if trigger_type not in ("last", "mark"):
            raise VenueProtocolError(1067, f"Illegal parameter sl_trigger_price_type: {trigger_type!r}")
        if body.get("position_side") not in (None, "both"):
            raise VenueProtocolError(1036, f"position_side {body.get('position_side')!r} in one-way mode")
        if self._active("algo", cid) is not None:
            self.duplicate_client_ids.append(rec)
            item = {"algo_id": None, "algo_client_order_id": str(cid), "code": 1050,
                    "message": "Customer's order number is repeated. Please do not repeat submission."}
            return _ok([item], self.now_ms)
        if ("algo", cid) in self._cids:
            self._note_reuse(rec, "algo", cid)
        position_side = "long" if side == "sell" else "short"
        try:
            order = await self.sim.place_stop_loss(contract.symbol, position_side, volume, trigger, self._sim_cid())
        except E.ExchangeError as exc:
            code, message = _sim_error(exc)
            return _ok([{"algo_id": None, "algo_client_order_id": str(cid), "code": code, "message": message}],
                       self.now_ms)
        self._cids[("algo", cid)] = order.id
        self._venue_cid[order.id] = cid
        self.stop_trigger_types[order.id] = trigger_type
        self.stop_active_ms.setdefault(order.id, rec.venue_ms)
        self.stop_active_real_s.setdefault(order.id, time.monotonic())
        return _ok([{"algo_id": self._venue_id(order), "algo_client_order_id": str(cid)}], self.now_ms)

    async def _cancel(self, rec: VenueRequest) -> dict:
        body = rec.body if isinstance(rec.body, dict) else {}
        contract = self._contract(body.get("contract_code"))
        order = self._sim_order(contract.symbol, vid=str(body.get("order_id")))
        if order is None or not order.is_open:
            return _err(1061, "The order does not exist.", self.now_ms)
        await self.sim.cancel_order(order)
        return _ok({"order_id": self._venue_id(order), "client_order_id": self._bot_cid(order)}, self.now_ms)

    async def _cancel_algo(self, rec: VenueRequest) -> dict:
        if not isinstance(rec.body, list) or not rec.body:
            raise VenueProtocolError(1036, "body must be a list of {contract_code, algo_id}")
        items = []
        for item in rec.body:
            contract = self._contract(item.get("contract_code"))
            order = self._sim_order(contract.symbol, vid=str(item.get("algo_id")), family="algo")
            if order is None or not order.is_open:
                items.append({"algo_id": str(item.get("algo_id")), "code": 1061,
                              "message": "The order does not exist."})
                continue
            await self.sim.cancel_order(order)
            items.append({"algo_id": self._venue_id(order), "code": 200, "message": "Success"})
        return _ok(items, self.now_ms)
