"""The reference feed the settings ask for: venues, fallback order, request timeout, poll interval.

`reference_from_settings(settings.glob)` builds it (None when EXTERNAL_PRICE_ENABLED is off):
one `CcxtReference` per id of EXTERNAL_PRICE_REFERENCE_EXCHANGES (``mexc`` is `MexcReference`)
with EXTERNAL_PRICE_REST_TIMEOUT_SEC as the ccxt timeout; several ids are a `FallbackReference`;
the whole is a `PolledReference` that asks the venues at most once per
EXTERNAL_PRICE_REST_POLL_INTERVAL_SEC for best prices.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.exchange import errors as E
from engine.exchange.base import ReferenceFeed
from engine.exchange.ccxt_reference import CcxtReference, ReferenceConfig, check_exchange_id
from engine.exchange.mexc import MexcConfig, MexcReference
from engine.exchange.types import BookTop, Market

if TYPE_CHECKING:
    from engine.settings import GlobalSettings

__all__ = ["FallbackReference", "PolledReference", "reference_from_settings", "venue_reference"]

log = logging.getLogger(__name__)
SETTING = "EXTERNAL_PRICE_REFERENCE_EXCHANGES"


def _wall_ms() -> int:
    return int(time.time() * 1000)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, E.ExchangeError) else type(exc).__name__


class FallbackReference:
    """Several venues in order of preference: each symbol's top comes from the first venue that
    answered with a valid top for it in this read; a venue that fails (or lacks the symbol, or
    has an empty book) falls through to the next, which is only asked for what is still missing.
    A read raises only when no venue answered at all."""

    def __init__(self, feeds: Sequence[ReferenceFeed]):
        if not feeds:
            raise ValueError("a fallback reference needs at least one venue")
        self.feeds = tuple(feeds)
        self.name = ">".join(f.name for f in self.feeds)  # e.g. "mexc>binance": mexc first

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        """The union of the venues' markets (the first venue's wins); venues that fail are skipped."""
        markets: dict[str, Market] = {}
        failed = []
        for feed in self.feeds:
            try:
                for symbol, market in (await feed.load_markets(reload)).items():
                    markets.setdefault(symbol, market)
            except Exception as exc:  # noqa: BLE001 - one venue's failure must not end the read
                failed.append(f"{feed.name} ({_why(exc)})")
        if failed and not markets:
            raise E.ExchangeError(f"no reference venue answered: {', '.join(failed)}", venue=self.name)
        for what in failed:
            log.warning("reference markets of %s unavailable", what)
        return markets

    async def fetch_best_prices(self, symbols: Sequence[str]) -> dict[str, BookTop]:
        return await self._first_answers(symbols, lambda feed, wanted: feed.fetch_best_prices(wanted))

    async def fetch_book_tops(self, symbols: Sequence[str], depth: int = 5) -> dict[str, BookTop]:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        return await self._first_answers(symbols, lambda feed, wanted: feed.fetch_book_tops(wanted, depth))

    async def _first_answers(self, symbols: Sequence[str], read: Callable[[Any, list[str]], Any]) -> dict[str, BookTop]:
        result: dict[str, BookTop] = {}
        missing = list(dict.fromkeys(symbols))
        failed = []
        answered = False
        for feed in self.feeds:
            if not missing:
                break
            try:
                tops = await read(feed, missing)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a dead venue falls through to the next
                failed.append(f"{feed.name} ({_why(exc)})")
                log.warning("reference %s unavailable, falling through: %s", feed.name, _why(exc))
                continue
            answered = True
            for symbol in missing:
                top = tops.get(symbol)
                if top is not None and (top.valid or symbol not in result):
                    result[symbol] = top  # an invalid top only until a later venue has a valid one
            missing = [s for s in missing if not (s in result and result[s].valid)]
        if not answered and failed:
            raise E.ExchangeError(f"no reference venue answered: {', '.join(failed)}", venue=self.name)
        return result

    async def close(self) -> None:
        """Close every venue, even when one of them fails to close."""
        results = await asyncio.gather(*(f.close() for f in self.feeds), return_exceptions=True)
        for feed, r in zip(self.feeds, results):
            if isinstance(r, BaseException):
                log.warning("closing reference %s failed: %s", feed.name, _why(r))


class PolledReference:
    """Asks the wrapped feed for best prices at most once per ``interval_ms``.

    A best-prices read younger than the interval (failed reads count, so a dead venue is not
    hammered every step) is answered from the last result without a request; the tops keep
    their original ``received_ms``, so the staleness rules see their true age. Book-top reads
    (depth, needed once per candle close when entries are decided) always go to the venue, and
    their result counts as the latest best-prices poll."""

    def __init__(self, feed: ReferenceFeed, interval_ms: int, *, clock_ms: Callable[[], int] = _wall_ms):
        if interval_ms <= 0:
            raise ValueError("the poll interval must be > 0 ms")
        self.feed = feed
        self.name = feed.name
        self.interval_ms = interval_ms
        self.clock_ms = clock_ms
        self._asked_ms: int | None = None
        self._asked: frozenset[str] = frozenset()
        self._last: dict[str, BookTop] = {}

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        return await self.feed.load_markets(reload)

    async def fetch_best_prices(self, symbols: Sequence[str]) -> dict[str, BookTop]:
        now = self.clock_ms()
        if (self._asked_ms is not None and 0 <= now - self._asked_ms < self.interval_ms
                and self._asked.issuperset(symbols)):
            return {s: self._last[s] for s in symbols if s in self._last}
        self._asked_ms, self._asked = now, frozenset(symbols)
        return self._remember(await self.feed.fetch_best_prices(symbols))

    async def fetch_book_tops(self, symbols: Sequence[str], depth: int = 5) -> dict[str, BookTop]:
        now = self.clock_ms()
        tops = await self.feed.fetch_book_tops(symbols, depth)
        self._asked_ms, self._asked = now, frozenset(symbols)
        return self._remember(tops)

    def _remember(self, tops: Mapping[str, BookTop]) -> dict[str, BookTop]:
        self._last = dict(tops)
        return dict(tops)

    async def close(self) -> None:
        await self.feed.close()


def venue_reference(exchange_id: str, timeout_ms: int) -> ReferenceFeed:
    """The public-data feed of one ccxt venue (``mexc``: `MexcReference`)."""
    if exchange_id == "mexc":
        return MexcReference(MexcConfig(timeout_ms=timeout_ms))
    return CcxtReference(exchange_id, ReferenceConfig(timeout_ms=timeout_ms))


def checked_ids(glob: GlobalSettings) -> list[str]:
    """The reference venue ids of the settings, each checked (a bad one is a one-line
    ValueError naming it); empty when EXTERNAL_PRICE_ENABLED is off. Makes no client."""
    if not glob.external_price_enabled:
        return []
    ids = list(dict.fromkeys(glob.external_price_reference_exchanges))
    if not ids:
        raise ValueError(f"{SETTING} is empty while EXTERNAL_PRICE_ENABLED is on; "
                         "expected ccxt exchange ids, e.g. mexc")
    primary = glob.external_price_primary_exchange
    for exchange_id in ids:
        if exchange_id == primary:
            raise ValueError(f"{SETTING}: {exchange_id!r} is the primary exchange "
                             "(EXTERNAL_PRICE_PRIMARY_EXCHANGE); expected other venues, e.g. mexc")
        try:
            check_exchange_id(exchange_id)
        except ValueError as exc:
            raise ValueError(f"{SETTING}: {exc}") from None
    return ids


def reference_problem(glob: GlobalSettings) -> str | None:
    """`crot config check`: the one-line problem with the reference venues, or None."""
    try:
        checked_ids(glob)
    except ValueError as exc:
        return str(exc)
    return None


def reference_from_settings(glob: GlobalSettings, *, clock_ms: Callable[[], int] = _wall_ms,
                            make: Callable[[str, int], ReferenceFeed] = venue_reference) -> ReferenceFeed | None:
    """The reference feed of the global settings, None when EXTERNAL_PRICE_ENABLED is off.

    Every id is checked before any client is made (a bad one is a one-line ValueError naming
    it); `make(exchange_id, timeout_ms)` builds one venue (tests point it at loopback servers)."""
    ids = checked_ids(glob)
    if not ids:
        return None
    timeout_ms = max(1, round(glob.external_price_rest_timeout_sec * 1000))
    feeds = [make(exchange_id, timeout_ms) for exchange_id in ids]
    feed = feeds[0] if len(feeds) == 1 else FallbackReference(feeds)
    interval_ms = max(1, round(glob.external_price_rest_poll_interval_sec * 1000))
    return PolledReference(feed, interval_ms, clock_ms=clock_ms)
