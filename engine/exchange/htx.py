"""HTX USDT-M linear perpetual swaps (cross margin, one-way mode) over `ccxt.async_support.htx`.

What ccxt 4.5.90 actually sends (verified by tests against a loopback server):

| operation | request |
|---|---|
| markets | GET  /linear-swap-api/v1/swap_contract_info?business_type=all |
| balance | GET  /v5/account/balance |
| positions (all) | GET  /v5/trade/position/opens |
| open orders (all) | GET  /v5/trade/order/opens?limit=N |
| open stop / TP orders | GET  /v5/algo/order/opens?limit=N&type=sl (and type=tp) |
| post-only entry | POST /v5/trade/order {type: post_only, price, volume, side, client_order_id, margin_mode: cross} |
| reduce-only limit | POST /v5/trade/order {type: limit, reduce_only: 1, ...} |
| reduce-only market close | POST /v5/trade/order {type: market, reduce_only: 1, ...} |
| stop-loss | POST /v5/algo/order {type: sl, sl_trigger_price, volume, side, algo_client_order_id} |
| order by client id | GET  /v5/trade/order?client_order_id=&contract_code=&margin_mode=cross |
| stop by client id | GET  /v5/algo/order?algo_client_order_id=&type=sl |
| cancel | POST /v5/trade/cancel_order {order_id, contract_code} |
| cancel stop | POST /v5/algo/cancel_orders [{contract_code, algo_id}] (per-item codes checked) |
| fills | GET  /v5/trade/order/details?contract_code=&start_time=&limit= (one per symbol) |
| funding | GET  /v5/market/funding_rate (all; per symbol with contract_code as fallback) |
| leverage | GET  /v5/position/lever?contract_code=&margin_mode=cross |
| book top (all) | GET  /linear-swap-ex/market/detail/batch_merged?business_type=swap |
| candle history page | GET  /linear-swap-ex/market/history/kline?contract_code=&period=&from=&to= (no `size`) |
| funding history page | GET  /v5/market/funding_rate_history?contract_code=&start_time=&end_time=&limit= |

ccxt traps this adapter guards against:

- numbers in `params` must be `str`/`float`: a `Decimal` `stopLossPrice` is silently ignored and
  the "stop" becomes a plain market order on /v5/trade/order. We always pass formatted strings.
- client order ids go through `int(float(x))`: ids above 2**53 change, strings vanish
  (see `client_ids`).
- ccxt ignores v5 error replies whose `code` is not in its table and returns an order with no
  id; `_StrictHtx` raises on every v5 reply whose code is not 200, and algo replies are checked
  item by item (`_item_error`).
- ccxt logs signed URLs at DEBUG and puts them into timeout messages: we give it a redacting
  logger and redact every error (see `errors.redact`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async

from . import errors as E
from .base import amend_by_cancel_replace
from .ccxt_errors import map_ccxt_error
from .client_ids import is_valid_client_order_id
from .precision import (
    D,
    D_or_none,
    attached_stop_trigger,
    check_minimums,
    fmt,
    round_amount,
    round_limit_price,
    round_stop_trigger,
)
from .markets_cache import MarketsCache
from .retry import RetryPolicy, place_idempotent, retry_read
from .validate import check_balance, check_order, check_position
from .types import (
    ALGO_KINDS,
    Balance,
    BookTop,
    Fill,
    FundingRate,
    Market,
    Order,
    OrderKind,
    OrderStatus,
    Position,
    PositionSide,
    Side,
    closing_side,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

VENUE = "htx"
# ccxt params that route a call to the algo (stop / take-profit / trigger) endpoints
_ALGO_FLAG: dict[str, str] = {"stop_loss": "stopLoss", "take_profit": "takeProfit", "trigger": "trigger"}
_KIND_BY_HTX_TYPE: dict[str, OrderKind] = {
    "limit": "limit",
    "post_only": "limit",
    "ioc": "limit",
    "fok": "limit",
    "market": "market",
    "optimal_5": "market",
    "optimal_10": "market",
    "optimal_20": "market",
    "sl": "stop_loss",
    "tp": "take_profit",
    "trigger": "trigger",
}
_STATUS: dict[str, OrderStatus] = {
    "open": "open",
    "canceling": "open",  # may still fill until the cancel lands
    "closed": "filled",
    "filled": "filled",
    "triggered": "filled",  # an algo order that fired is no longer a resting stop
    "canceled": "canceled",
    "rejected": "rejected",
    "expired": "expired",
}


@dataclass(frozen=True)
class AccountSetup:
    """The account set-up as HTX reports it (see `HtxExchange.fetch_account_setup`)."""

    assets_mode: int | None  # 0 single-asset collateral, 1 multi-assets collateral
    position_mode: str | None  # single_side (one-way) | dual_side (hedge)
    leverage: dict[str, Decimal | None]  # traded symbol -> cross leverage
    position_margin_modes: dict[str, str]  # symbol with an open position -> cross | isolated


class _StrictHtx(ccxt_async.htx):
    """ccxt's HTX client with one stricter rule: a v5 reply whose `code` is not 200 is an error.

    Stock ccxt only raises for codes in its table; any other code yields an "order" with no id.
    """

    def handle_errors(self, httpCode, reason, url, method, headers, body, response, requestHeaders, requestBody):
        super().handle_errors(httpCode, reason, url, method, headers, body, response, requestHeaders, requestBody)
        if isinstance(response, dict) and "status" not in response and "code" in response:
            if str(response.get("code")) != "200":
                raise ccxt.ExchangeError(self.id + " " + str(body))
        return None


@dataclass
class HtxConfig:
    api_key: str
    secret: str
    hostnames: tuple[str, ...] = ("api.hbdm.vn", "api.hbdm.com")
    scheme: str = "https"  # tests point the client at http://127.0.0.1:port
    timeout_ms: int = 10_000
    rate_limit_ms: float | None = None  # None keeps ccxt's HTX default (100 ms x endpoint cost)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    failover_after: int = 3  # consecutive network failures before switching hostname
    open_orders_page: int = 50
    algo_kinds: tuple[OrderKind, ...] = ("stop_loss", "take_profit")
    # GET /v5/trade/order/details ("Get Execution Details (last 3 days)"): `limit` "defaults to
    # 10, with a maximum limit of 100"; start/end default to now-48h..now (HTX v5 docs).
    fills_limit: int = 100
    fills_max_lookback_ms: int = 47 * 3600 * 1000  # HTX serves at most ~48 h per query
    fills_max_pages: int = 20  # per symbol and poll; more means the bot polls far too rarely
    # v5 sl_trigger_price_type: "last" (HTX's default) or "mark"
    stop_trigger_price_type: str = "last"
    # read a new stop back and check size and trigger; read a post-only entry back, since HTX
    # accepts a crossing post-only order and then cancels it ("limit maker order cancelation")
    confirm_orders: bool = True
    # read the symbol's recent fills before its first order of the process, so an id that
    # already filled (HTX then accepts it again as a new order) is never traded twice
    check_filled_ids: bool = True
    clock_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000), repr=False)
    # MARKET_LOAD_RETRIES: transient failures of one markets load retried this many times
    # (the retry policy's growing pause between them) before the typed error leaves
    market_load_retries: int = 4
    # MARKETS_CACHE_FILE / MARKETS_CACHE_MAX_AGE_SEC (engine/exchange/markets_cache.py):
    # None = no cache; max age 0 = never read the file (it is still rewritten)
    markets_cache_file: str | None = None
    markets_cache_max_age_sec: int = 604_800

    def __repr__(self) -> str:  # never print credentials
        return f"HtxConfig(hostnames={self.hostnames}, scheme={self.scheme!r}, timeout_ms={self.timeout_ms})"


def _as_int_id(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


def _venue_order_id(o: Mapping[str, Any], is_algo: bool) -> str:
    """The id HTX accepts back for cancels and reads: `algo_id` for algo orders, `order_id`
    (or `order_id_str`) for normal ones.

    ccxt's parsed `id` prefers the row's `id` field, which in v5 order rows is HTX's "Query
    ID" (a paging cursor, not the order id): a cancel sent with it is answered 1061 and the
    real order stays on the book."""
    info = o.get("info") or {}
    keys = ("algo_id",) if is_algo else ("order_id_str", "order_id")
    for key in keys:
        value = info.get(key)
        if value not in (None, ""):
            return str(value)
    value = o.get("id")
    if value in (None, "", "None"):
        raise KeyError("order row without order_id")
    return str(value)


def _item_error(info: Any) -> E.ExchangeError | None:
    """HTX answers batch-style algo calls with per-item codes inside a 200 reply; ccxt does not
    look at them, so a refused cancel or stop would otherwise read as a success."""
    if not isinstance(info, Mapping) or info.get("code") in (None, "", 200, "200"):
        return None
    return map_ccxt_error(ccxt.ExchangeError("htx " + json.dumps(dict(info), default=str)), VENUE)


def _parsed(what: str, parse: Callable[[Any], T], raw: Any) -> T:
    """Run a parser on one venue record; a record it cannot read is a typed error, not a crash."""
    try:
        return parse(raw)
    except (ArithmeticError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise E.MalformedResponse(f"unreadable {what} record ({type(exc).__name__})", venue=VENUE) from None


def _first(info: Mapping[str, Any], *keys: str) -> Decimal | None:
    for key in keys:
        value = D_or_none(info.get(key))
        if value is not None:
            return value
    return None



def _usdt_linear_swap(m: Mapping[str, Any]) -> bool:
    """A ccxt market dict of a USDT-margined linear perpetual (what the bot trades on HTX)."""
    return bool(m.get("swap") and m.get("linear") and m.get("settle") == "USDT")

class HtxExchange:
    """`Exchange` for HTX linear swaps. Construct, `await load_markets()`, use, `await close()`."""

    name = VENUE

    def __init__(self, config: HtxConfig, *, client: ccxt_async.htx | None = None):
        if not config.hostnames:
            raise ValueError("at least one hostname is required")
        self.config = config
        E.register_secret(config.api_key, config.secret)
        self._policy = config.retry
        self._ccxt = client or self._build_client(config)
        self._host_index = 0
        self._set_hostname(0)
        self._network_failures = 0
        self._markets: dict[str, Market] = {}
        self._markets_lock = asyncio.Lock()
        self._cid_locks: dict[int, asyncio.Lock] = {}
        self._placed: OrderedDict[int, Order] = OrderedDict()  # client id -> order, this process
        # client ids with a fill before this process placed anything on the symbol (see _place)
        self._filled_before: dict[str, set[int]] = {}
        self._cid_by_order_id: OrderedDict[str, int] = OrderedDict()
        #: end of an HTX 1084 order ban (venue ms); entries are not sent before it
        self.ban_until_ms: int | None = None
        self.truncated_fills: list[str] = []  # symbols whose fills did not fit the page budget

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _build_client(config: HtxConfig) -> ccxt_async.htx:
        settings: dict[str, Any] = {
            "apiKey": config.api_key,
            "secret": config.secret,
            "enableRateLimit": True,
            "timeout": config.timeout_ms,
            "verbose": False,
            "logger": E.redacting_logger("engine.exchange.ccxt.htx"),
            "options": {
                "defaultType": "swap",
                "defaultSubType": "linear",
                "fetchMarkets": {"types": {"spot": False, "linear": True, "inverse": False}},
            },
        }
        if config.rate_limit_ms is not None:
            settings["rateLimit"] = config.rate_limit_ms
        client = _StrictHtx(settings)
        if config.scheme != "https":
            client.urls["api"]["contract"] = f"{config.scheme}://{{hostname}}"
        return client

    @property
    def hostname(self) -> str:
        return self._ccxt.urls["hostnames"]["contract"]

    def _set_hostname(self, index: int) -> None:
        self._host_index = index % len(self.config.hostnames)
        self._ccxt.urls["hostnames"]["contract"] = self.config.hostnames[self._host_index]

    def _note_network_failure(self) -> None:
        self._network_failures += 1
        if len(self.config.hostnames) > 1 and self._network_failures >= self.config.failover_after:
            previous = self.hostname
            self._set_hostname(self._host_index + 1)
            self._network_failures = 0
            log.warning("htx: %s unreachable, switching to %s", previous, self.hostname)

    async def _once(self, call: Callable[[], Awaitable[T]]) -> T:
        """One request; every failure leaves as a typed, redacted error without a cause chain."""
        error: E.ExchangeError
        try:
            result = await call()
        except asyncio.CancelledError:
            raise
        except (ccxt.BaseError, asyncio.TimeoutError, OSError) as exc:
            error = map_ccxt_error(exc, VENUE)
            if isinstance(error, E.OrderBan):
                # 1084 states when it ends; without a time, HTX's documented ban is 5 minutes
                self.ban_until_ms = error.until_ms or self.config.clock_ms() + 5 * 60_000
                log.warning("htx: order placement banned until %s (1084)", self.ban_until_ms)
        except Exception as exc:  # a parser crash after the request went out: outcome unknown
            log.error("htx: unexpected %s while handling a reply", type(exc).__name__)
            error = E.NetworkError(f"unexpected {type(exc).__name__}: {exc}", venue=VENUE)
        else:
            self._network_failures = 0
            return result
        if isinstance(error, (E.NetworkError, E.ExchangeTimeout)):
            self._note_network_failure()
        raise error

    async def _read(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        return await retry_read(lambda: self._once(call), self._policy, what=f"htx {what}")

    async def _ensure_markets(self) -> None:
        if not self._markets:
            await self.load_markets()

    # ------------------------------------------------------------------ markets

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        async with self._markets_lock:
            if self._markets and not reload:
                return self._markets
            cache = self._markets_cache()
            cached = cache.read() if cache is not None and not reload else None
            parsed = self._use_cached(cached) if cached is not None else None
            if parsed is None:
                policy = replace(self._policy, max_attempts=max(0, self.config.market_load_retries) + 1)
                raw = await retry_read(lambda: self._once(self._ccxt.fetch_markets), policy, what="htx load markets")
                usable = [m for m in raw if _usdt_linear_swap(m)]
                if not usable:
                    raise E.ExchangeError("no USDT-margined linear swap markets returned", venue=VENUE)
                # set only our markets: ccxt then never lazily loads spot markets or currencies
                self._ccxt.set_markets(usable)
                parsed = {m["symbol"]: self._parse_market(m) for m in usable}
                if cache is not None:
                    await asyncio.to_thread(cache.write, usable)
            self._markets = parsed
            return self._markets

    def _markets_cache(self) -> MarketsCache | None:
        if not self.config.markets_cache_file:
            return None
        return MarketsCache(self.config.markets_cache_file, venue=VENUE, clock_ms=self.config.clock_ms,
                            max_age_ms=self.config.markets_cache_max_age_sec * 1000)

    def _use_cached(self, cached: list[dict[str, Any]]) -> dict[str, Market] | None:
        """Cached markets set on the ccxt client and parsed as ours, or None (one warning) when
        one of them does not read as a USDT-margined linear swap: they are then fetched again,
        never half used."""
        try:
            if not all(_usdt_linear_swap(m) for m in cached):
                raise ValueError("a market that is not a USDT linear swap")
            parsed = {m["symbol"]: self._parse_market(m) for m in cached}
            if not all(m.contract_size > 0 and m.amount_step > 0 and m.price_step > 0 for m in parsed.values()):
                raise ValueError("a market without a positive contract size or step")
            self._ccxt.set_markets(cached)
            return parsed
        except (ArithmeticError, ValueError, TypeError, KeyError, AttributeError) as exc:
            reason = str(exc).splitlines()[0][:120] if isinstance(exc, ValueError) and str(exc) else type(exc).__name__
            log.warning("markets cache %s ignored (%s); loading markets from htx", self.config.markets_cache_file,
                        reason)
            return None

    @staticmethod
    def _parse_market(m: Mapping[str, Any]) -> Market:
        amount_step = D(m["precision"]["amount"])
        return Market(
            symbol=m["symbol"],
            venue_id=m["id"],
            base=m["base"],
            quote=m["quote"],
            contract_size=D(m["contractSize"]),
            amount_step=amount_step,
            price_step=D(m["precision"]["price"]),
            # ccxt 4.5.90 sets limits.amount.min to the contract size for linear swaps (a coin
            # quantity, not contracts); the real minimum is one amount step (1 contract).
            min_amount=amount_step,
            min_notional=D_or_none((m.get("limits") or {}).get("cost", {}).get("min")),
            max_leverage=None,  # the contract info endpoint does not state it
            maker_fee=D_or_none(m.get("maker")),
            taker_fee=D_or_none(m.get("taker")),
            active=bool(m.get("active", True)),
        )

    def market(self, symbol: str) -> Market:
        try:
            return self._markets[symbol]
        except KeyError:
            raise E.InvalidOrder(f"unknown or unloaded market {symbol}", venue=VENUE) from None

    # ------------------------------------------------------------------ account reads

    async def fetch_balance(self) -> Balance:
        await self._ensure_markets()
        raw = await self._read("balance", self._ccxt.fetch_balance)
        info = raw.get("info") or {}
        data = info.get("data") or {}
        detail: Mapping[str, Any] = {}
        for row in data.get("details") or []:
            if str(row.get("currency", "")).upper() == "USDT":
                detail = row
                break
        source = detail or data
        equity = _first(source, "equity")
        if equity is None:
            raise E.MalformedResponse("balance without equity", venue=VENUE)
        return check_balance(Balance(
            equity=equity,
            free=_first(source, "available_margin", "available") or Decimal(0),
            used_margin=_first(source, "initial_margin") or Decimal(0),
            unrealized_pnl=_first(source, "profit_unreal") or Decimal(0),
            currency="USDT",
            ts_ms=_as_int_id(info.get("ts")),
        ))

    async def fetch_positions(self, symbols: Sequence[str] | None = None) -> list[Position]:
        await self._ensure_markets()
        raw = await self._read("positions", lambda: self._ccxt.fetch_positions(None))
        wanted = set(symbols) if symbols is not None else None
        result = []
        for p in raw:
            position = _parsed("position", self._parse_position, p)
            if position is None or (wanted is not None and position.symbol not in wanted):
                continue
            if position.symbol not in self._markets:
                log.warning("htx: position on %s, a market this adapter does not trade", position.symbol)
                continue
            result.append(check_position(position))
        return result

    @staticmethod
    def _parse_position(p: Mapping[str, Any]) -> Position | None:
        info = p.get("info") or {}
        contracts = _first(info, "volume") or D_or_none(p.get("contracts")) or Decimal(0)
        if contracts <= 0 or p.get("symbol") is None:
            return None
        side = p.get("side")
        if side not in ("long", "short"):
            side = "long" if info.get("direction") == "buy" else "short"
        liquidation = _first(info, "liquidation_price")
        return Position(
            symbol=p["symbol"],
            side=side,
            contracts=contracts,
            entry_price=_first(info, "open_avg_price", "cost_open") or D(p.get("entryPrice") or 0),
            mark_price=_first(info, "mark_price"),
            unrealized_pnl=_first(info, "profit_unreal") or Decimal(0),
            leverage=_first(info, "lever_rate"),
            liquidation_price=liquidation if liquidation is not None and liquidation > 0 else None,
            closeable=_first(info, "available"),
            margin_mode=str(info.get("margin_mode") or p.get("marginMode") or "cross"),
            ts_ms=p.get("timestamp"),
        )

    async def fetch_open_orders(self, symbols: Sequence[str] | None = None) -> list[Order]:
        await self._ensure_markets()
        families: list[OrderKind | None] = [None, *self.config.algo_kinds]
        pages = await asyncio.gather(*(self._open_orders(kind, symbols) for kind in families))
        wanted = set(symbols) if symbols is not None else None
        seen: dict[str, Order] = {}
        for page in pages:
            for raw in page:
                if raw.get("symbol") not in self._markets:
                    continue  # e.g. a dated linear future: not a market this adapter trades
                order = check_order(_parsed("order", self._parse_order, raw))
                if wanted is not None and order.symbol not in wanted:
                    continue
                seen[f"{order.is_algo}:{order.id}"] = order
        return [o for o in seen.values() if o.is_open]

    async def _open_orders(self, kind: OrderKind | None, symbols: Sequence[str] | None) -> list[dict]:
        """One batched page; per-symbol pages only if the batch might be truncated."""
        limit = self.config.open_orders_page
        params = {_ALGO_FLAG[kind]: True} if kind else {}
        what = f"open orders ({kind or 'normal'})"
        page = await self._read(what, lambda: self._ccxt.fetch_open_orders(None, None, limit, dict(params)))
        if len(page) < limit:
            return page
        if not symbols:
            raise E.ExchangeError(
                f"{what}: {len(page)} orders fill a whole page; pass symbols to read them per symbol",
                venue=VENUE,
            )
        log.warning("htx %s: batch page full, reading %d symbols one by one", what, len(symbols))
        result: list[dict] = []
        for symbol in symbols:
            rows = await self._read(
                what, lambda s=symbol: self._ccxt.fetch_open_orders(s, None, limit, dict(params))
            )
            if len(rows) >= limit:
                raise E.ExchangeError(f"{what} for {symbol}: more than {limit - 1} open orders", venue=VENUE)
            result.extend(rows)
        return result

    def _parse_order(self, o: Mapping[str, Any]) -> Order:
        info = o.get("info") or {}
        raw_type = str(info.get("type") or o.get("type") or "").lower()
        kind: OrderKind = _KIND_BY_HTX_TYPE.get(raw_type, "other")
        is_algo = kind in ALGO_KINDS or "algo_id" in info
        if kind == "stop_loss":
            trigger = _first(info, "sl_trigger_price")
            price = _first(info, "sl_order_price")
        elif kind == "take_profit":
            trigger = _first(info, "tp_trigger_price")
            price = _first(info, "tp_order_price")
        else:
            trigger = _first(info, "trigger_price")
            price = _first(info, "price", "order_price") or D_or_none(o.get("price"))
        if price is not None and price <= 0:
            price = None  # HTX reports "0" for market-at-trigger
        raw_reduce = info.get("reduce_only")
        reduce_only = kind in ("stop_loss", "take_profit") or raw_reduce in (True, 1, "1", "true")
        raw_status = str(o.get("status") or info.get("state") or "").lower()
        status: OrderStatus = _STATUS.get(raw_status, "unknown")
        client_id = _as_int_id(info.get("algo_client_order_id") if is_algo else info.get("client_order_id"))
        if client_id is None:
            client_id = _as_int_id(o.get("clientOrderId"))
        average = _first(info, "trade_avg_price")
        return Order(
            id=_venue_order_id(o, is_algo),
            client_order_id=client_id,
            symbol=o["symbol"],
            side=o.get("side") or info.get("side"),
            kind=kind,
            price=price,
            trigger_price=trigger,
            amount=_first(info, "volume") or D(o.get("amount") or 0),
            filled=_first(info, "trade_volume") or D_or_none(o.get("filled")) or Decimal(0),
            status=status,
            reduce_only=reduce_only,
            post_only=raw_type == "post_only",
            ts_ms=o.get("timestamp"),
            average_price=average if average is not None and average > 0 else None,
        )

    async def fetch_order(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        client_order_id: int | None = None,
        kind: OrderKind = "limit",
    ) -> Order | None:
        await self._ensure_markets()
        return await retry_read(
            lambda: self._fetch_order_once(symbol, order_id, client_order_id, kind),
            self._policy,
            what="htx fetch order",
        )

    async def _fetch_order_once(
        self, symbol: str, order_id: str | None, client_order_id: int | None, kind: OrderKind
    ) -> Order | None:
        if (order_id is None) == (client_order_id is None):
            raise E.InvalidOrder("pass exactly one of order_id and client_order_id", venue=VENUE)
        params: dict[str, Any] = {}
        if client_order_id is not None:
            params["clientOrderId"] = client_order_id
        if kind in _ALGO_FLAG:
            params[_ALGO_FLAG[kind]] = True
        try:
            raw = await self._once(lambda: self._ccxt.fetch_order(order_id, symbol, params))
        except E.OrderNotFound:
            return None
        except E.InvalidOrder:
            if client_order_id is None:
                raise
            # HTX: a client_order_id "becomes invalid once the order is fully filled or
            # canceled" (a lookup by it is answered 1067). The venue no longer knows the id:
            # an order this process placed under it is read by its venue id; else None.
            known = self._placed.get(client_order_id)
            if known is None or not known.id:
                return None
            by_id = await self._fetch_order_once(symbol, known.id, None, kind)
            return replace(by_id, client_order_id=client_order_id) if by_id is not None else None
        if not raw or not raw.get("id") or raw.get("id") == "None" or not raw.get("symbol"):
            return None  # HTX answers "data": null / [] for an unknown id
        return self._parse_order(raw)

    # ------------------------------------------------------------------ order placement

    async def place_post_only(
        self, symbol: str, side: Side, amount: Decimal, price: Decimal, client_order_id: int,
        *, stop_loss: Decimal | None = None,
    ) -> Order:
        market = self._checked(symbol, client_order_id)
        amount = round_amount(amount, market.amount_step)
        price = round_limit_price(side, price, market.price_step)
        check_minimums(market, amount, price)
        attached = None
        if stop_loss is not None:
            # HTX v5 "Place Order" (POST /v5/trade/order): sl_trigger_price / sl_type "market"
            # (the default) / sl_trigger_price_type on the order itself; ccxt 4.5.90 maps its
            # `stopLoss: {triggerPrice, type}` param to those fields for linear swaps.
            attached = attached_stop_trigger(side, stop_loss, price, market.price_step)
            if attached is None:
                raise E.InvalidOrder(f"attached stop {stop_loss} is not beyond the {side} price {price}", venue=VENUE)
        order = await self._place(
            symbol,
            client_order_id,
            kind="limit",
            create=lambda: self._create(
                symbol, "limit", side, amount, price, None, client_order_id, post_only=True, reduce_only=False,
                attached_stop=attached,
            ),
            what=f"post-only {side} {symbol}",
            side=side,
            reduce_only=False,
        )
        if self.config.confirm_orders:
            order = await self._confirm_post_only(order)
        return order

    async def _confirm_post_only(self, order: Order) -> Order:
        """HTX accepts a post-only order that would take liquidity and then cancels it (its
        v1/v5 docs: "if not, the maker order will be cancelled"; cancel_reason "Order
        cancelation by system", which includes "limit maker order cancelation"); there is no
        error code. Read it back at once: cancelled with nothing filled is the rejection the
        ladder rules re-price on."""
        try:
            back = await self.fetch_order(order.symbol, order_id=order.id, kind="limit")
        except E.TransientError:
            return order  # the next snapshot shows it either way
        if back is None:
            return order
        if back.status in ("canceled", "rejected") and back.filled == 0:
            self._placed.pop(order.client_order_id or 0, None)
            raise E.PostOnlyWouldCross(f"post-only {order.side} {order.symbol} at {order.price} was cancelled "
                                       f"by htx (would have taken liquidity)", venue=VENUE)
        return replace(back, client_order_id=order.client_order_id)

    async def place_reduce_only_limit(
        self,
        symbol: str,
        position_side: PositionSide,
        amount: Decimal,
        price: Decimal,
        client_order_id: int,
    ) -> Order:
        market = self._checked(symbol, client_order_id)
        side = closing_side(position_side)
        amount = round_amount(amount, market.amount_step)
        price = round_limit_price(side, price, market.price_step)
        check_minimums(market, amount, None)  # a close may be below min notional
        return await self._place(
            symbol,
            client_order_id,
            kind="limit",
            create=lambda: self._create(
                symbol, "limit", side, amount, price, None, client_order_id, post_only=False, reduce_only=True
            ),
            what=f"reduce-only limit {side} {symbol}",
            side=side,
            reduce_only=True,
        )

    async def close_reduce_only_market(
        self, symbol: str, position_side: PositionSide, amount: Decimal, client_order_id: int
    ) -> Order:
        return await self._market(symbol, closing_side(position_side), amount, client_order_id, reduce_only=True)

    async def open_market(self, symbol: str, side: Side, amount: Decimal, client_order_id: int) -> Order:
        # HTX v5 "Place Order" (POST /v5/trade/order): type=market without reduce_only opens or
        # adds; the venue fills it against the book at once (price protection is its own)
        return await self._market(symbol, side, amount, client_order_id, reduce_only=False)

    async def _market(self, symbol: str, side: Side, amount: Decimal, client_order_id: int, *,
                      reduce_only: bool) -> Order:
        market = self._checked(symbol, client_order_id)
        amount = round_amount(amount, market.amount_step)
        check_minimums(market, amount, None)
        if not reduce_only:
            self._check_ban("limit")  # new risk: not even sent during a 1084 ban
        return await self._place(
            symbol,
            client_order_id,
            kind="market",
            create=lambda: self._create(
                symbol, "market", side, amount, None, None, client_order_id, post_only=False, reduce_only=reduce_only
            ),
            what=f"{'reduce-only ' if reduce_only else ''}market {side} {symbol}",
            side=side,
            reduce_only=reduce_only,
        )

    async def place_stop_loss(
        self,
        symbol: str,
        position_side: PositionSide,
        amount: Decimal,
        trigger_price: Decimal,
        client_order_id: int,
    ) -> Order:
        market = self._checked(symbol, client_order_id)
        side = closing_side(position_side)
        amount = round_amount(amount, market.amount_step)
        trigger = round_stop_trigger(position_side, trigger_price, market.price_step)
        check_minimums(market, amount, None)
        order = await self._place(
            symbol,
            client_order_id,
            kind="stop_loss",
            create=lambda: self._create(
                symbol, "market", side, amount, None, trigger, client_order_id, post_only=False, reduce_only=True
            ),
            what=f"stop-loss {side} {symbol}",
            side=side,
            reduce_only=True,
        )
        if self.config.confirm_orders:
            await self._confirm_stop(order, amount, trigger)
        return order

    async def _confirm_stop(self, order: Order, amount: Decimal, trigger: Decimal) -> None:
        """Read a new stop back: the venue must hold it, open, of the size and trigger sent.
        A stop that is not there is reported (the next cycle places it again); a wrong one is
        an error the caller sees."""
        try:
            back = await self.fetch_order(order.symbol, order_id=order.id, kind="stop_loss")
        except E.TransientError as exc:
            log.warning("htx: stop %s not confirmed yet (%s)", order.id, exc)
            return
        if back is None:
            raise E.NetworkError(f"stop {order.id} on {order.symbol} is not on htx after placing", venue=VENUE)
        if back.status == "open" and (back.amount != amount or back.trigger_price != trigger):
            raise E.InvalidOrder(f"stop {order.id} on {order.symbol} reads back as {back.amount} @ "
                                 f"{back.trigger_price}, sent {amount} @ {trigger}", venue=VENUE)

    def _checked(self, symbol: str, client_order_id: int) -> Market:
        if not is_valid_client_order_id(client_order_id):
            raise E.InvalidOrder(f"client order id must be an int in [1, 2**53): {client_order_id!r}")
        return self.market(symbol)

    async def _place(
        self,
        symbol: str,
        client_order_id: int,
        *,
        kind: OrderKind,
        create: Callable[[], Awaitable[Order]],
        what: str,
        side: Side,
        reduce_only: bool,
    ) -> Order:
        def same(found: Order | None) -> Order | None:
            """An order found under this client id must be this order (a reuse is refused)."""
            E.refuse_reuse(found, symbol, side, kind, reduce_only, client_order_id, VENUE)
            return found

        async def lookup() -> Order | None:
            return same(await self._lookup_placed(symbol, client_order_id, kind))

        lock = self._cid_locks.setdefault(client_order_id, asyncio.Lock())
        async with lock:
            known = self._placed.get(client_order_id)
            if known is not None:
                return same(known)  # type: ignore[return-value]
            if (self.config.check_filled_ids and kind not in ALGO_KINDS
                    and client_order_id in await self._filled_earlier(symbol, kind, reduce_only)):
                # HTX: a client_order_id "becomes invalid once the order is fully filled or
                # canceled", and the venue then accepts it again as a NEW order. An id that
                # filled before this process started (a restart re-planning a crashed cycle)
                # is that order: answer with it, never trade twice.
                found = await lookup()
                if found is not None:
                    self._remember(found)
                    return found
            self._check_ban(kind)
            order = await place_idempotent(
                create,
                lookup,
                self._policy,
                client_order_id=client_order_id,
                what=f"htx {what}",
            )
            self._remember(order)
        if len(self._cid_locks) > 1_000:  # drop idle locks; a later call re-creates one
            for cid in [c for c, lk in self._cid_locks.items() if not lk.locked()]:
                del self._cid_locks[cid]
        return order

    def _check_ban(self, kind: OrderKind) -> None:
        """During an HTX 1084 ban new risk is not even sent; stops and closes still are (an
        attempt costs nothing, and the ban may end earlier than stated)."""
        until = self.ban_until_ms
        if until is None:
            return
        if self.config.clock_ms() >= until:
            self.ban_until_ms = None
            return
        if kind == "limit":
            raise E.OrderBan(f"order placement banned by htx until {until} (1084)", venue=VENUE,
                             code="1084", until_ms=until)

    async def _lookup_placed(self, symbol: str, client_order_id: int, kind: OrderKind) -> Order | None:
        """Find an order whose create reply was lost, without trusting the client id lookup
        alone: HTX documents that a `client_order_id` "becomes invalid once the order is fully
        filled or canceled" (and is valid at most 8 hours otherwise), and an expired id may be
        answered 1067. So: by client id; then the open orders; then, for normal orders, the
        fills of the whole window HTX serves (fill rows carry `client_order_id`; a client id
        names one intent, and the venue's fill time need not match our clock) and the order
        they name.
        None means the venue has no trace of it: safe to send again with the same id."""
        try:
            found = await self._fetch_order_once(symbol, None, client_order_id, kind)
        except E.InvalidOrder:
            found = None  # 1067: an expired / unknown client id, not a verdict on the order
        if found is not None:
            return found
        params = {_ALGO_FLAG[kind]: True} if kind in _ALGO_FLAG else {}
        for raw in await self._once(lambda: self._ccxt.fetch_open_orders(symbol, None, 100, dict(params))):
            order = _parsed("order", self._parse_order, raw)
            if order.client_order_id == client_order_id:
                return order
        if kind in ALGO_KINDS:
            return None
        since = self.config.clock_ms() - self.config.fills_max_lookback_ms
        for t in await self._fills_page(symbol, since, self.config.clock_ms()):
            info = t.get("info") or {}
            if _as_int_id(info.get("client_order_id")) == client_order_id:
                order_id = str(info.get("order_id") or t.get("order") or "")
                if order_id:
                    by_id = await self._fetch_order_once(symbol, order_id, None, kind)
                    if by_id is not None:
                        return replace(by_id, client_order_id=client_order_id)
        return None

    async def _filled_earlier(self, symbol: str, kind: OrderKind, reduce_only: bool = True) -> set[int]:
        """Client ids of the fills of `symbol` in the window HTX serves, read once per process
        and symbol, at its first order (one paged fills read; later fills of this process's
        own orders are known from `_placed`)."""
        seen = self._filled_before.get(symbol)
        if seen is None:
            now = self.config.clock_ms()
            try:
                rows = await self._fills_page(symbol, now - self.config.fills_max_lookback_ms, now)
            except E.ExchangeError:
                if kind != "market" or not reduce_only:
                    raise  # an entry, exit or the hedge's market open waits for the check (next step)
                log.warning("htx: fills of %s unreadable before a reduce-only close; sent unchecked", symbol)
                return set()  # a close must not wait (reduce-only: it can only shrink the position)
            seen = {cid for t in rows if (cid := _as_int_id((t.get("info") or {}).get("client_order_id")))}
            self._filled_before[symbol] = seen
        return seen

    def _remember(self, order: Order) -> None:
        if order.client_order_id is not None:
            self._placed[order.client_order_id] = order
            self._cid_by_order_id[order.id] = order.client_order_id
        for cache in (self._placed, self._cid_by_order_id):
            while len(cache) > 10_000:
                cache.popitem(last=False)

    async def _create(
        self,
        symbol: str,
        order_type: str,
        side: Side,
        amount: Decimal,
        price: Decimal | None,
        trigger: Decimal | None,
        client_order_id: int,
        *,
        post_only: bool,
        reduce_only: bool,
        attached_stop: Decimal | None = None,
    ) -> Order:
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        if attached_stop is not None:
            params["stopLoss"] = {"triggerPrice": fmt(attached_stop), "type": "market"}
            params["sl_trigger_price_type"] = self.config.stop_trigger_price_type
        kind: OrderKind = "market" if order_type == "market" else "limit"
        if trigger is not None:
            params["stopLossPrice"] = fmt(trigger)  # str on purpose: see module docstring
            params["sl_trigger_price_type"] = self.config.stop_trigger_price_type
            kind = "stop_loss"
        else:
            if post_only:
                params["postOnly"] = True
            if reduce_only:
                params["reduceOnly"] = True
        price_arg = fmt(price) if price is not None else None
        raw = await self._once(
            lambda: self._ccxt.create_order(symbol, order_type, side, fmt(amount), price_arg, params)
        )
        rejected = _item_error((raw or {}).get("info"))
        if rejected is not None:
            raise rejected
        info = (raw or {}).get("info") or {}
        if isinstance(info, list):  # algo replies: one item per order
            info = info[0] if info and isinstance(info[0], Mapping) else {}
        try:
            order_id = _venue_order_id({"info": info, "id": (raw or {}).get("id")}, trigger is not None)
        except KeyError:
            order_id = None
        if not order_id:
            # a 200 reply without an id: treat as "outcome unknown" so the id gets looked up
            raise E.NetworkError("order reply without an order id", venue=VENUE)
        return Order(
            id=str(order_id),
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            kind=kind,
            price=price,
            trigger_price=trigger,
            amount=amount,
            filled=Decimal(0),
            status="open",
            reduce_only=reduce_only,
            post_only=post_only,
            ts_ms=self.config.clock_ms(),
        )

    # ------------------------------------------------------------------ cancel / amend

    async def cancel_order(self, order: Order) -> Order:
        await self._ensure_markets()
        params = {_ALGO_FLAG[order.kind]: True} if order.kind in _ALGO_FLAG else {}
        gone = False
        try:
            reply = await self._read(
                f"cancel {order.id}", lambda: self._ccxt.cancel_order(order.id, order.symbol, dict(params))
            )
            refused = _item_error((reply or {}).get("info"))
            if refused is not None:
                raise refused
        except E.OrderNotFound:
            gone = True  # already filled or cancelled (or the retry of a cancel that landed)
        final = await self.fetch_order(order.symbol, order_id=order.id, kind=order.kind)
        if final is None:
            if gone:
                raise E.OrderNotFound(f"order {order.id} unknown to htx", venue=VENUE)
            return replace(order, status="canceled")
        return final  # the venue's word, even if it still says "open" (cancel in flight)

    async def amend_order(
        self,
        order: Order,
        *,
        new_client_order_id: int,
        price: Decimal | None = None,
        amount: Decimal | None = None,
    ) -> Order | None:
        return await amend_by_cancel_replace(
            self, order, new_client_order_id=new_client_order_id, price=price, amount=amount
        )

    # ------------------------------------------------------------------ fills, funding, leverage, book

    async def fetch_fills(self, symbols: Sequence[str], since_ms: int) -> list[Fill]:
        await self._ensure_markets()
        floor = self.config.clock_ms() - self.config.fills_max_lookback_ms
        since = max(since_ms, floor)
        if since != since_ms:
            log.warning("htx fills: since %d is older than the venue serves, reading from %d", since_ms, since)
        per_symbol = await asyncio.gather(*(self._fills_for(symbol, since) for symbol in symbols))
        fills = [fill for chunk in per_symbol for fill in chunk]
        fills.sort(key=lambda f: (f.ts_ms, f.id))
        return fills

    async def _fills_for(self, symbol: str, since: int) -> list[Fill]:
        raw = await self._fills_page(symbol, since, self.config.clock_ms())
        return [self._parse_fill(t) for t in raw]

    async def _fills_page(self, symbol: str, since: int, until: int) -> list[dict]:
        """Every fill of `symbol` in [since, until], within HTX's page limit of 100.

        A full page means more rows exist; whatever order the venue returns them in, the rows
        not returned lie before the oldest or after the newest returned one, so both remaining
        windows are read (rows are de-duplicated by trade id). Bounded by `fills_max_pages`:
        past it the fills are truncated and a warning says so."""
        limit = self.config.fills_limit
        rows: dict[str, dict] = {}
        windows = [(since, until)]
        pages = 0
        while windows:
            lo, hi = windows.pop()
            if pages >= self.config.fills_max_pages:
                log.warning("htx fills %s: more than %d pages of %d since %d; truncated, poll more often",
                            symbol, pages, limit, since)
                self.truncated_fills.append(symbol)
                break
            pages += 1
            page = await self._read(f"fills {symbol}", lambda lo=lo, hi=hi: self._ccxt.fetch_my_trades(
                symbol, lo, limit, {"until": hi}))
            fresh = 0
            for t in page:
                key = str(t.get("id") or (t.get("info") or {}).get("trade_id"))
                if key not in rows:
                    rows[key] = t
                    fresh += 1
            if len(page) >= limit and fresh:
                stamps = [int(t.get("timestamp") or 0) for t in page]
                first, last = min(stamps), max(stamps)
                if last < hi:
                    windows.append((last, hi))
                if first > lo:
                    windows.append((lo, first))
                if first == last == lo == hi:
                    log.warning("htx fills %s: over %d fills in one millisecond; truncated", symbol, limit)
        return sorted(rows.values(), key=lambda t: (int(t.get("timestamp") or 0), str(t.get("id"))))

    def _parse_fill(self, t: Mapping[str, Any]) -> Fill:
        info = t.get("info") or {}
        order_id = str(t.get("order") or info.get("order_id") or "")
        # v5 reports the fee as a positive amount paid (ccxt negates it: we read the raw field)
        fee = _first(info, "trade_fee")
        if fee is None:
            ccxt_fee = (t.get("fee") or {}).get("cost")
            fee = -D(ccxt_fee) if ccxt_fee is not None else Decimal(0)
        return Fill(
            id=str(t.get("id")),
            order_id=order_id,
            client_order_id=self._cid_by_order_id.get(order_id) or _as_int_id(info.get("client_order_id")),
            symbol=t["symbol"],
            side=t.get("side"),
            price=_first(info, "trade_price") or D(t["price"]),
            amount=_first(info, "trade_volume") or D(t["amount"]),
            fee=fee,
            fee_currency=str(info.get("fee_currency") or (t.get("fee") or {}).get("currency") or "USDT"),
            maker=str(info.get("role") or t.get("takerOrMaker") or "").lower() == "maker",
            ts_ms=int(t.get("timestamp") or 0),
            realized_pnl=_first(info, "profit", "real_profit"),
        )

    async def fetch_funding_rates(self, symbols: Sequence[str]) -> dict[str, FundingRate]:
        await self._ensure_markets()
        result: dict[str, FundingRate] = {}
        try:
            response = await self._read("funding (all)", lambda: self._ccxt.contractPublicGetV5MarketFundingRate({}))
        except E.TransientError:
            raise
        except E.ExchangeError as exc:  # the venue may insist on contract_code: read per symbol
            log.warning("htx funding batch refused (%s), reading per symbol", exc)
            response = {}
        for row in response.get("data") or []:
            parsed = self._ccxt.parse_funding_rate(row)
            if parsed.get("symbol") in symbols:
                result[parsed["symbol"]] = self._funding(parsed)
        missing = [s for s in symbols if s not in result]
        if missing:
            singles = await asyncio.gather(
                *(self._read(f"funding {s}", lambda s=s: self._ccxt.fetch_funding_rate(s)) for s in missing)
            )
            for symbol, parsed in zip(missing, singles):
                if parsed.get("fundingRate") is not None:
                    result[symbol] = self._funding(parsed, symbol)
        return result

    @staticmethod
    def _funding(parsed: Mapping[str, Any], symbol: str | None = None) -> FundingRate:
        info = parsed.get("info") or {}
        return FundingRate(
            symbol=symbol or parsed["symbol"],
            rate=_first(info, "funding_rate") or D(parsed["fundingRate"]),
            funding_time_ms=parsed.get("fundingTimestamp"),
            next_funding_time_ms=parsed.get("nextFundingTimestamp"),
            interval=parsed.get("interval"),
        )

    # ------------------------------------------------------------------ history (crot download)

    async def fetch_candles_page(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> list[list[float]]:
        """One request for the candles of ``symbol`` opening in [since_ms, until_ms), as rows
        ``[open_ms, open, high, low, close, volume_in_coins]``, oldest first, as the venue
        served them (the forming candle included when the window reaches it).

        Asked by window (from / to), never with `size`: with `size` HTX ignores from/to and
        serves the newest candles. HTX serves at most 2000 per request ("size [1,2000]"), so
        a window is at most 2000 slots. `to` is ``until_ms - 1 s`` (HTX counts in seconds):
        the last slot is in whether HTX's `to` is inclusive or not, the next one is not.
        Retries, redacted typed errors and hostname failover as every read of this adapter."""
        await self._ensure_markets()
        raw = await self._read(f"candles {symbol}", lambda: self._ccxt.fetch_ohlcv(
            symbol, timeframe, since=int(since_ms), params={"until": int(until_ms) - 1000}))
        return [list(r) for r in raw or ()]

    async def fetch_funding_history_page(self, symbol: str, since_ms: int, until_ms: int,
                                         limit: int) -> list[tuple[int, float]]:
        """One request for the funding events of ``symbol`` in [since_ms, until_ms), at most
        ``limit`` rows (HTX: at most 100), as ``(funding_time_ms, rate)`` in the venue's order
        (undocumented: the caller sorts). A page holding ``limit`` rows may be truncated: ask
        a narrower window. A rate that is not a finite number is a `MalformedResponse`."""
        await self._ensure_markets()
        raw = await self._read(f"funding history {symbol}", lambda: self._ccxt.fetch_funding_rate_history(
            symbol, since=int(since_ms), limit=int(limit), params={"end_time": int(until_ms) - 1}))
        out = []
        for r in raw or ():
            try:
                rate = float(r["fundingRate"])
                ts = int(r["timestamp"])
            except (TypeError, ValueError, KeyError):
                raise E.MalformedResponse(f"funding history {symbol}: unreadable row (rate "
                                          f"{r.get('fundingRate')!r})", venue=VENUE) from None
            if not math.isfinite(rate):
                raise E.MalformedResponse(f"funding rate {r['fundingRate']!r} is not a number", venue=VENUE)
            out.append((ts, rate))
        return out

    async def fetch_leverage(self, symbol: str) -> Decimal | None:
        await self._ensure_markets()
        market = self.market(symbol)
        response = await self._read(
            f"leverage {symbol}",
            lambda: self._ccxt.contractPrivateGetV5PositionLever(
                {"contract_code": market.venue_id, "margin_mode": "cross"}
            ),
        )
        data = response.get("data")
        rows = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        for row in rows:
            if row.get("contract_code") in (None, market.venue_id):
                value = _first(row, "lever_rate")
                if value is not None:
                    return value
        return None

    # ------------------------------------------------------------------ account set-up

    async def fetch_account_setup(self, symbols: Sequence[str]) -> AccountSetup:
        """What the bot relies on and HTX lets the user change: the collateral (asset) mode
        (GET /v5/account/asset_mode: 0 single-asset, 1 multi-assets; the v5 endpoints ccxt
        uses are documented for multi-assets accounts), the position mode (GET
        /v5/position/mode: single_side = one-way, dual_side = hedge), each traded contract's
        cross leverage, and the margin mode of open positions."""
        await self._ensure_markets()
        asset = await self._read("asset mode", lambda: self._ccxt.contractPrivateGetV5AccountAssetMode({}))
        mode = await self._read("position mode", lambda: self._ccxt.contractPrivateGetV5PositionMode({}))
        adata = asset.get("data") if isinstance(asset, Mapping) else None
        mdata = mode.get("data") if isinstance(mode, Mapping) else None
        assets_mode = _as_int_id((adata or {}).get("assets_mode", (adata or {}).get("asset_mode"))) \
            if isinstance(adata, Mapping) else None
        position_mode = str(mdata.get("position_mode")) if isinstance(mdata, Mapping) and mdata.get("position_mode") \
            else None
        levers = {s: await self.fetch_leverage(s) for s in symbols if s in self._markets}
        margins = {p.symbol: p.margin_mode for p in await self.fetch_positions()}
        return AccountSetup(assets_mode, position_mode, levers, margins)

    async def set_one_way_mode(self) -> None:
        """POST /v5/position/mode single_side (HTX refuses with 1493/1494 while orders or
        positions exist: the caller reports that)."""
        await self._once(lambda: self._ccxt.contractPrivatePostV5PositionMode({"position_mode": "single_side"}))

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """POST /v5/position/lever for one contract, cross margin."""
        market = self.market(symbol)
        await self._once(lambda: self._ccxt.contractPrivatePostV5PositionLever(
            {"contract_code": market.venue_id, "lever_rate": str(int(leverage)), "margin_mode": "cross"}))

    async def fetch_order_book_top(self, symbols: Sequence[str]) -> dict[str, BookTop]:
        await self._ensure_markets()
        if not symbols:
            return {}
        tickers = await self._read("book tops", lambda: self._ccxt.fetch_tickers(list(symbols)))
        received = self.config.clock_ms()
        result: dict[str, BookTop] = {}
        for symbol in symbols:
            ticker = tickers.get(symbol)
            if not ticker:
                continue
            size = self.market(symbol).contract_size
            bid, ask = D_or_none(ticker.get("bid")), D_or_none(ticker.get("ask"))
            bid_contracts, ask_contracts = D_or_none(ticker.get("bidVolume")), D_or_none(ticker.get("askVolume"))
            bid_size = bid_contracts * size if bid_contracts is not None else None
            ask_size = ask_contracts * size if ask_contracts is not None else None
            result[symbol] = BookTop(
                venue=VENUE,
                symbol=symbol,
                bid=bid,
                ask=ask,
                bid_size=bid_size,
                ask_size=ask_size,
                venue_ts_ms=ticker.get("timestamp"),
                received_ms=received,
                depth_bid_notional=bid * bid_size if bid is not None and bid_size is not None else None,
                depth_ask_notional=ask * ask_size if ask is not None and ask_size is not None else None,
            )
        return result

    async def close(self) -> None:
        await self._ccxt.close()
