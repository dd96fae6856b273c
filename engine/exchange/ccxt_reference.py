"""Public-data price reference over any ccxt exchange's USDT-margined linear perpetuals.

`CcxtReference("binance")` is a `ReferenceFeed` on `ccxt.async_support.binance` with
``defaultType: swap``: no keys, read only. `MexcReference` (``mexc``) is the subclass with
MEXC's own requests. Every result carries the venue timestamp and our receive time, so
staleness is decided by the caller; a symbol whose read fails is left out (logged), so one bad
symbol never blanks the others. Errors are the typed hierarchy of `errors`, after retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
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


@dataclass
class ReferenceConfig:
    timeout_ms: int = 5_000  # ccxt client timeout of each request (EXTERNAL_PRICE_REST_TIMEOUT_SEC)
    rate_limit_ms: float | None = None  # None keeps ccxt's default for the venue
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=2))
    clock_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000), repr=False)


def check_exchange_id(exchange_id: str) -> str:
    """`exchange_id` if ccxt has it with perpetual swaps; else a one-line ValueError."""
    if exchange_id not in ccxt_async.exchanges:
        raise ValueError(f"{exchange_id!r} is not a ccxt exchange id; expected a ccxt id of a venue with "
                         "USDT-margined perpetuals, e.g. mexc, binance, bybit, okx, gate, bitget")
    if not getattr(ccxt_async, exchange_id)().has.get("swap"):
        raise ValueError(f"{exchange_id!r} has no perpetual swaps in ccxt; expected a venue with "
                         "USDT-margined perpetuals, e.g. mexc, binance, bybit, okx, gate, bitget")
    return exchange_id


class CcxtReference:
    """`ReferenceFeed` over one ccxt exchange's public swap endpoints (`client`: tests inject one)."""

    def __init__(self, exchange_id: str, config: ReferenceConfig | None = None, *, client: Any = None):
        self.name = check_exchange_id(exchange_id) if client is None else exchange_id
        self.config = config or ReferenceConfig()
        self._ccxt = client if client is not None else self._build_client()
        self._markets: dict[str, Market] = {}
        self._markets_lock = asyncio.Lock()

    def _build_client(self) -> Any:
        settings: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": self.config.timeout_ms,
            "verbose": False,
            "logger": E.redacting_logger(f"engine.exchange.ccxt.{self.name}"),
            "options": {"defaultType": "swap"},
        }
        if self.config.rate_limit_ms is not None:
            settings["rateLimit"] = self.config.rate_limit_ms
        return getattr(ccxt_async, self.name)(settings)

    async def _read(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        async def once() -> T:
            error: E.ExchangeError
            try:
                return await call()
            except asyncio.CancelledError:
                raise
            except (ccxt.BaseError, asyncio.TimeoutError, OSError) as exc:
                error = map_ccxt_error(exc, self.name)
            raise error  # outside `except`: no chain keeps the ccxt exception

        return await retry_read(once, self.config.retry, what=f"{self.name} {what}")

    # -- venue specifics (overridden by subclasses) ------------------------------------------------
    async def _fetch_markets(self) -> list[dict[str, Any]]:
        return await self._ccxt.fetch_markets()

    async def _fetch_quotes(self, symbols: list[str]) -> Mapping[str, Mapping[str, Any]]:
        """Best bid/ask per symbol in as few requests as the venue allows (ccxt ticker shape)."""
        has = self._ccxt.has
        if has.get("fetchBidsAsks") is True:  # book tickers: bid/ask even where 24 h tickers lack them
            return await self._ccxt.fetch_bids_asks(symbols)
        if has.get("fetchTickers"):
            return await self._ccxt.fetch_tickers(symbols)
        tickers = await asyncio.gather(*(self._ccxt.fetch_ticker(s) for s in symbols))
        return dict(zip(symbols, tickers))

    # -- ReferenceFeed -------------------------------------------------------------------------------
    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        async with self._markets_lock:
            if self._markets and not reload:
                return self._markets
            raw = await self._read("markets", self._fetch_markets)
            usable = [m for m in raw if m.get("swap", True) and m.get("linear") and m.get("settle") == "USDT"]
            parsed = {m["symbol"]: market for m in usable if (market := self._parse_market(m)) is not None}
            if not parsed:
                raise E.ExchangeError("no USDT swap markets returned", venue=self.name)
            self._ccxt.set_markets([m for m in usable if m["symbol"] in parsed])
            self._markets = parsed
            return self._markets

    def _parse_market(self, m: Mapping[str, Any]) -> Market | None:
        """A `Market`, or None (logged) when the venue leaves out what the reference needs."""
        limits = m.get("limits") or {}
        precision = m.get("precision") or {}
        amount_step = self._step(precision.get("amount"))
        price_step = self._step(precision.get("price"))
        contract_size = D_or_none(m.get("contractSize"))
        if amount_step is None or price_step is None or contract_size is None or contract_size <= 0:
            log.debug("%s: market %s without contract size or precision, skipped", self.name, m.get("symbol"))
            return None
        return Market(
            symbol=m["symbol"],
            venue_id=m["id"],
            base=m["base"],
            quote=m["quote"],
            contract_size=contract_size,
            amount_step=amount_step,
            price_step=price_step,
            min_amount=D_or_none((limits.get("amount") or {}).get("min")) or amount_step,
            max_leverage=D_or_none((limits.get("leverage") or {}).get("max")),
            maker_fee=D_or_none(m.get("maker")),
            taker_fee=D_or_none(m.get("taker")),
            active=bool(m.get("active", True)),
        )

    def _step(self, value: object) -> Decimal | None:
        step = D_or_none(value)
        if step is not None and getattr(self._ccxt, "precisionMode", None) == ccxt.DECIMAL_PLACES:
            step = Decimal(1).scaleb(-int(step))  # digits after the point -> tick
        return step if step is not None and step > 0 else None

    def _known(self, symbols: Sequence[str]) -> list[str]:
        unknown = [s for s in symbols if s not in self._markets]
        if unknown:
            log.debug("%s: no market for %s", self.name, unknown)
        return [s for s in symbols if s in self._markets]

    async def fetch_best_prices(self, symbols: Sequence[str]) -> dict[str, BookTop]:
        """Best bid/ask of every known symbol, batched (sizes unknown: ticker endpoints)."""
        if not self._markets:
            await self.load_markets()
        known = self._known(symbols)
        if not known:
            return {}
        tickers = await self._read("tickers", lambda: self._fetch_quotes(known))
        received = self.config.clock_ms()
        result = {}
        for symbol in known:
            t = tickers.get(symbol)
            if not t:
                continue
            result[symbol] = BookTop(
                venue=self.name, symbol=symbol, bid=D_or_none(t.get("bid")), ask=D_or_none(t.get("ask")),
                bid_size=None, ask_size=None, venue_ts_ms=t.get("timestamp"), received_ms=received, levels=1,
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
                log.warning("%s book %s unavailable: %s", self.name, symbol, book)
                continue
            result[symbol] = self._book_top(symbol, book, depth, received)
        return result

    def _book_top(self, symbol: str, book: Mapping[str, Any], depth: int, received: int) -> BookTop:
        size = self._markets[symbol].contract_size  # book amounts are contracts
        bids = [(D(level[0]), D(level[1]) * size) for level in (book.get("bids") or [])[:depth]]
        asks = [(D(level[0]), D(level[1]) * size) for level in (book.get("asks") or [])[:depth]]
        return BookTop(
            venue=self.name,
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

    async def close(self) -> None:
        await self._ccxt.close()
