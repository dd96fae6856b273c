"""MEXC USDT-M perpetual public data as a price reference (no keys, read only).

Requests ccxt 4.5.90 sends (contract host, `https://api.mexc.com/api/v1/contract`):

| read | request |
|---|---|
| markets | GET /api/v1/contract/detail (swap markets only; spot and currencies are never loaded) |
| best bid/ask, all symbols | GET /api/v1/contract/ticker (one symbol: ?symbol=BTC_USDT) |
| book with depth | GET /api/v1/contract/depth/{symbol}?limit=N (one per symbol, rate limited) |
| candle history page | GET /api/v1/contract/kline/{symbol}?interval=&start=&end= (at most 2000 candles) |

Every result carries the venue timestamp and our receive time, so staleness is decided by the
caller (EXTERNAL_PRICE_MAX_PRICE_AGE_MS) instead of being hidden here. A symbol whose read fails
is left out of the result (logged), so one bad symbol never blanks the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async

from . import errors as E
from .ccxt_errors import map_ccxt_error
from .precision import D, D_or_none
from .retry import RetryPolicy, retry_read
from .types import BookTop, Market

T = TypeVar("T")
log = logging.getLogger(__name__)
VENUE = "mexc"


@dataclass
class MexcConfig:
    contract_url: str = "https://api.mexc.com/api/v1/contract"
    timeout_ms: int = 5_000
    rate_limit_ms: float | None = None  # None keeps ccxt's MEXC default
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=2))
    clock_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000), repr=False)


class MexcReference:
    """`ReferenceFeed` over `ccxt.async_support.mexc` public swap endpoints."""

    name = VENUE

    def __init__(self, config: MexcConfig | None = None, *, client: ccxt_async.mexc | None = None):
        self.config = config or MexcConfig()
        self._ccxt = client or self._build_client(self.config)
        self._markets: dict[str, Market] = {}
        self._markets_lock = asyncio.Lock()

    @staticmethod
    def _build_client(config: MexcConfig) -> ccxt_async.mexc:
        settings: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": config.timeout_ms,
            "verbose": False,
            "logger": E.redacting_logger("engine.exchange.ccxt.mexc"),
            "options": {"defaultType": "swap"},
        }
        if config.rate_limit_ms is not None:
            settings["rateLimit"] = config.rate_limit_ms
        client = ccxt_async.mexc(settings)
        client.urls["api"]["contract"]["public"] = config.contract_url
        return client

    async def _read(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        async def once() -> T:
            error: E.ExchangeError
            try:
                return await call()
            except asyncio.CancelledError:
                raise
            except (ccxt.BaseError, asyncio.TimeoutError, OSError) as exc:
                error = map_ccxt_error(exc, VENUE)
            raise error

        return await retry_read(once, self.config.retry, what=f"mexc {what}")

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        async with self._markets_lock:
            if self._markets and not reload:
                return self._markets
            raw = await self._read("markets", self._ccxt.fetch_swap_markets)
            usable = [m for m in raw if m.get("linear") and m.get("settle") == "USDT"]
            if not usable:
                raise E.ExchangeError("no USDT swap markets returned", venue=VENUE)
            self._ccxt.set_markets(usable)
            self._markets = {m["symbol"]: self._parse_market(m) for m in usable}
            return self._markets

    @staticmethod
    def _parse_market(m: Mapping[str, Any]) -> Market:
        limits = m.get("limits") or {}
        amount_step = D(m["precision"]["amount"])
        return Market(
            symbol=m["symbol"],
            venue_id=m["id"],
            base=m["base"],
            quote=m["quote"],
            contract_size=D(m["contractSize"]),
            amount_step=amount_step,
            price_step=D(m["precision"]["price"]),
            min_amount=D_or_none((limits.get("amount") or {}).get("min")) or amount_step,
            max_leverage=D_or_none((limits.get("leverage") or {}).get("max")),
            maker_fee=D_or_none(m.get("maker")),
            taker_fee=D_or_none(m.get("taker")),
            active=bool(m.get("active", True)),
        )

    def _known(self, symbols: Sequence[str]) -> list[str]:
        unknown = [s for s in symbols if s not in self._markets]
        if unknown:
            log.debug("mexc: no market for %s", unknown)
        return [s for s in symbols if s in self._markets]

    async def fetch_best_prices(self, symbols: Sequence[str]) -> dict[str, BookTop]:
        """Best bid/ask for all symbols in one request (sizes unknown on this endpoint)."""
        if not self._markets:
            await self.load_markets()
        known = self._known(symbols)
        if not known:
            return {}
        tickers = await self._read("tickers", lambda: self._ccxt.fetch_tickers(known))
        received = self.config.clock_ms()
        result = {}
        for symbol in known:
            t = tickers.get(symbol)
            if not t:
                continue
            result[symbol] = BookTop(
                venue=VENUE,
                symbol=symbol,
                bid=D_or_none(t.get("bid")),
                ask=D_or_none(t.get("ask")),
                bid_size=None,
                ask_size=None,
                venue_ts_ms=t.get("timestamp"),
                received_ms=received,
                levels=1,
            )
        return result

    async def fetch_book_tops(self, symbols: Sequence[str], depth: int = 5) -> dict[str, BookTop]:
        """Top `depth` levels per symbol (one request each, concurrently under the rate limiter)."""
        if depth < 1:
            raise ValueError("depth must be >= 1")
        if not self._markets:
            await self.load_markets()
        known = self._known(symbols)
        books = await asyncio.gather(
            *(self._read(f"book {s}", lambda s=s: self._ccxt.fetch_order_book(s, depth)) for s in known),
            return_exceptions=True,
        )
        received = self.config.clock_ms()
        result: dict[str, BookTop] = {}
        for symbol, book in zip(known, books):
            if isinstance(book, BaseException):
                if not isinstance(book, E.ExchangeError):
                    raise book
                log.warning("mexc book %s unavailable: %s", symbol, book)
                continue
            result[symbol] = self._book_top(symbol, book, depth, received)
        return result

    def _book_top(self, symbol: str, book: Mapping[str, Any], depth: int, received: int) -> BookTop:
        size = self._markets[symbol].contract_size
        bids = [(D(level[0]), D(level[1]) * size) for level in (book.get("bids") or [])[:depth]]
        asks = [(D(level[0]), D(level[1]) * size) for level in (book.get("asks") or [])[:depth]]
        return BookTop(
            venue=VENUE,
            symbol=symbol,
            bid=bids[0][0] if bids else None,
            ask=asks[0][0] if asks else None,
            bid_size=bids[0][1] if bids else None,
            ask_size=asks[0][1] if asks else None,
            venue_ts_ms=book.get("timestamp"),
            received_ms=received,
            depth_bid_notional=sum((p * q for p, q in bids), Decimal(0)) if bids else None,
            depth_ask_notional=sum((p * q for p, q in asks), Decimal(0)) if asks else None,
            levels=min(len(bids), len(asks)),
        )

    async def fetch_candles_page(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> list[list[float]]:
        """One request for the candles of ``symbol`` opening in [since_ms, until_ms), as rows
        ``[open_ms, open, high, low, close, volume_in_coins]``, oldest first, as the venue
        served them (the forming candle included when the window reaches it). MEXC's `vol`
        counts contracts: it is multiplied by the market's contract size, so the volume is in
        coins as HTX's. At most 2000 candles per request (MEXC "Get candlestick data"; ccxt
        "maxLimit is 2000 for swap"): a window is at most 2000 slots. Retried and mapped to
        the typed errors as every read here; a volume that is not a number is a
        `MalformedResponse`."""
        if not self._markets:
            await self.load_markets()
        market = self._markets.get(symbol)
        if market is None:
            raise E.InvalidOrder(f"mexc: no USDT-M perpetual {symbol}", venue=VENUE)
        raw = await self._read(f"candles {symbol}", lambda: self._ccxt.fetch_ohlcv(
            symbol, timeframe, since=int(since_ms), params={"until": int(until_ms) - 1000}))
        out = []
        for r in raw or ():
            try:
                volume = float(Decimal(str(r[5])) * market.contract_size) if r[5] is not None else 0.0
            except (InvalidOperation, IndexError):
                raise E.MalformedResponse(f"candles {symbol}: volume {r[5:6]!r} is not a number",
                                          venue=VENUE) from None
            out.append([r[0], r[1], r[2], r[3], r[4], volume])
        return out

    async def close(self) -> None:
        await self._ccxt.close()
