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
is left out of the result (logged), so one bad symbol never blanks the others. The reading
shared with other venues (market filter, tickers, books, retries) is `ccxt_reference`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import ccxt.async_support as ccxt_async

from . import errors as E
from .ccxt_reference import CcxtReference, ReferenceConfig

VENUE = "mexc"


@dataclass
class MexcConfig(ReferenceConfig):
    contract_url: str = "https://api.mexc.com/api/v1/contract"


class MexcReference(CcxtReference):
    """`ReferenceFeed` over `ccxt.async_support.mexc` public swap endpoints."""

    config: MexcConfig

    def __init__(self, config: MexcConfig | None = None, *, client: ccxt_async.mexc | None = None):
        super().__init__(VENUE, config or MexcConfig(), client=client)

    def _build_client(self) -> Any:
        client = super()._build_client()
        client.urls["api"]["contract"]["public"] = self.config.contract_url
        return client

    async def _fetch_markets(self) -> list[dict[str, Any]]:
        return await self._ccxt.fetch_swap_markets()  # spot and currencies are never loaded

    async def _fetch_quotes(self, symbols: list[str]) -> Mapping[str, Mapping[str, Any]]:
        return await self._ccxt.fetch_tickers(symbols)  # one request for all symbols

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
