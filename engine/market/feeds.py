"""Candle feeds: one async interface, a recorded-file replay and a live ccxt poller.

Every feed answers ``poll(now_ms)`` with the candles that CLOSED by ``now_ms`` and were not
delivered before, per symbol, oldest first. The engine drives the clock, so live, paper
and replay modes run the same cycle code; only the feed and the clock differ.
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import heapq
import logging
import math
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from engine.market.candles import Candle, last_closed_open_ts, timeframe_ms

__all__ = [
    "CandleFeed",
    "CcxtFeed",
    "FileFeed",
    "OhlcvExchange",
    "RecordedFile",
    "merge_by_time",
    "parse_recorded_filename",
    "read_candles_csv",
    "read_funding_csv",
    "recorded_files",
]

log = logging.getLogger(__name__)

CSV_HEADER = ["timestamp_ms", "open", "high", "low", "close", "volume"]


@runtime_checkable
class CandleFeed(Protocol):
    """Source of newly closed candles for a fixed set of symbols on one timeframe."""

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def timeframe(self) -> str: ...

    async def poll(self, now_ms: int) -> dict[str, list[Candle]]:
        """Candles closed by ``now_ms`` not returned before; only symbols that have some."""
        ...


def merge_by_time(batch: Mapping[str, Sequence[Candle]]) -> list[tuple[str, Candle]]:
    """Flatten a poll result into one (symbol, candle) list ordered by (open time, symbol),
    so a replay updates every symbol at a given moment before moving on."""
    streams = ([(c.ts_ms, sym, c) for c in candles] for sym, candles in batch.items())
    return [(sym, c) for _, sym, c in heapq.merge(*streams, key=lambda t: (t[0], t[1]))]


# ---------------------------------------------------------------------------------------
# Recorded files
# ---------------------------------------------------------------------------------------
_FILE_RE = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)(?:_(?P<settle>[A-Za-z0-9]+))?"
    r"-(?P<tf>\d+[mhd])(?:-(?P<kind>[a-z_]+))?\.csv(?:\.gz)?$"
)
FUNDING_HEADER = ["timestamp_ms", "funding_rate"]


def _open_text(path: str | Path):
    """A recorded file for reading as text; ``.gz`` files are decompressed on the fly."""
    if str(path).endswith(".gz"):
        import gzip  # noqa: PLC0415

        return gzip.open(path, "rt", newline="")
    return open(path, newline="")


@dataclass(frozen=True, slots=True)
class RecordedFile:
    """What a recorded file name says: unified symbol, timeframe and kind of series."""

    path: Path
    symbol: str
    timeframe: str
    kind: str  # 'spot', 'futures', 'mark', 'funding_rate', ...


def parse_recorded_filename(path: str | Path) -> RecordedFile | None:
    """Map 'ETH_BTC-5m.csv' to ETH/BTC spot and 'XRP_USDT_USDT-5m-futures.csv' to
    XRP/USDT:USDT futures (freqtrade naming; a gzip copy 'X.csv.gz' reads the same); None
    for names that do not fit."""
    p = Path(path)
    m = _FILE_RE.match(p.name)
    if m is None:
        return None
    symbol = f"{m['base']}/{m['quote']}"
    if m["settle"]:
        symbol += f":{m['settle']}"
    kind = m["kind"] or ("futures" if m["settle"] else "spot")
    return RecordedFile(p, symbol, m["tf"], kind)


def read_candles_csv(path: str | Path) -> list[Candle]:
    """Read a recorded ``timestamp_ms,open,high,low,close,volume`` file.

    An empty volume field becomes 0.0 (mark-price files). Any malformed row raises with
    its line number: recorded data must be clean, a silent skip would hide a problem.
    """
    out: list[Candle] = []
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != CSV_HEADER:
            raise ValueError(f"{path}: expected header {','.join(CSV_HEADER)}, got {header}")
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                out.append(Candle.from_ohlcv([None if f.strip() == "" else f for f in row]))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{line_no}: {exc}") from exc
    return out


def read_funding_csv(path: str | Path) -> list[tuple[int, float]]:
    """Funding events ``(timestamp_ms, rate)`` of a recorded funding file, oldest first.

    Two layouts: ``timestamp_ms,funding_rate``, or freqtrade's candle layout with the rate in
    ``open``. Timestamps are the venue's funding times as recorded; a malformed row raises
    with its line number, like ``read_candles_csv``."""
    out: dict[int, float] = {}
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in (next(reader, None) or [])]
        if header == FUNDING_HEADER:
            col = 1
        elif header == CSV_HEADER:
            col = 1  # the rate is in 'open'
        else:
            raise ValueError(f"{path}: expected header {','.join(FUNDING_HEADER)}, got {header}")
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                ts, rate = int(row[0]), float(row[col])
            except (ValueError, IndexError) as exc:
                raise ValueError(f"{path}:{line_no}: {exc}") from exc
            if not math.isfinite(rate):
                raise ValueError(f"{path}:{line_no}: funding rate {row[col]!r} is not a number")
            out.setdefault(ts, rate)
    return sorted(out.items())


def recorded_files(directory: str | Path) -> list[RecordedFile]:
    """Every recorded file of ``directory`` (not its sub-folders), ``.csv`` and ``.csv.gz``,
    sorted by name."""
    paths = sorted([*Path(directory).glob("*.csv"), *Path(directory).glob("*.csv.gz")])
    return [f for f in map(parse_recorded_filename, paths) if f is not None]


class FileFeed:
    """Replays recorded candles: ``poll(now_ms)`` returns what has closed by ``now_ms``.

    Series are sorted and de-duplicated on load; gaps are kept as they are (the stores
    report them). The clock is the caller's: a replay advances ``now_ms`` by one timeframe
    per cycle (see ``replay``), as fast as the engine can process.
    """

    def __init__(self, series: Mapping[str, Sequence[Candle]], timeframe: str):
        self._timeframe = timeframe
        self._tf_ms = timeframe_ms(timeframe)
        self._series: dict[str, list[Candle]] = {}
        self._close_ts: dict[str, list[int]] = {}
        for symbol, candles in series.items():
            uniq: dict[int, Candle] = {}
            for c in candles:
                if c.ts_ms % self._tf_ms:
                    raise ValueError(f"{symbol}: candle {c.ts_ms} not aligned to {timeframe}")
                uniq.setdefault(c.ts_ms, c)
            ordered = [uniq[t] for t in sorted(uniq)]
            self._series[symbol] = ordered
            self._close_ts[symbol] = [c.ts_ms + self._tf_ms for c in ordered]
        self._cursor = dict.fromkeys(self._series, 0)

    @classmethod
    def from_directory(
        cls,
        directory: str | Path,
        timeframe: str = "5m",
        symbols: Iterable[str] | None = None,
        kinds: Iterable[str] = ("spot", "futures"),
    ) -> FileFeed:
        """Load every recorded file of ``timeframe`` and ``kinds`` (trade candles by
        default; mark price and funding files are not trade candles)."""
        wanted = set(symbols) if symbols is not None else None
        kinds = set(kinds)
        series: dict[str, list[Candle]] = {}
        for info in recorded_files(directory):
            if info.timeframe != timeframe or info.kind not in kinds:
                continue
            if wanted is not None and info.symbol not in wanted:
                continue
            if info.symbol in series:
                raise ValueError(f"two recorded files for {info.symbol} {timeframe}")
            series[info.symbol] = read_candles_csv(info.path)
        if wanted is not None and wanted - series.keys():
            raise FileNotFoundError(f"no recorded {timeframe} file for {sorted(wanted - series.keys())}")
        return cls(series, timeframe)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._series)

    @property
    def timeframe(self) -> str:
        return self._timeframe

    @property
    def start_ms(self) -> int:
        """Earliest moment at which some candle is closed."""
        return min((ts[0] for ts in self._close_ts.values() if ts), default=0)

    @property
    def end_ms(self) -> int:
        """Moment at which every recorded candle is closed."""
        return max((ts[-1] for ts in self._close_ts.values() if ts), default=0)

    @property
    def exhausted(self) -> bool:
        return all(self._cursor[s] >= len(self._series[s]) for s in self._series)

    def history(self, symbol: str) -> list[Candle]:
        """The full recorded series of ``symbol`` (a copy)."""
        return list(self._series[symbol])

    def reset(self) -> None:
        """Rewind to the beginning."""
        self._cursor = dict.fromkeys(self._series, 0)

    async def poll(self, now_ms: int) -> dict[str, list[Candle]]:
        out: dict[str, list[Candle]] = {}
        for symbol, closes in self._close_ts.items():
            start = self._cursor[symbol]
            stop = bisect.bisect_right(closes, now_ms, lo=start)
            if stop > start:
                out[symbol] = self._series[symbol][start:stop]
                self._cursor[symbol] = stop
        return out

    async def replay(self, step_ms: int | None = None, *, start_ms: int | None = None,
                     end_ms: int | None = None) -> AsyncIterator[tuple[int, dict[str, list[Candle]]]]:
        """Drive a simulated clock from ``start_ms`` to ``end_ms`` (default: the recording's)
        by ``step_ms`` (default one timeframe), yielding ``(now_ms, poll(now_ms))`` at every
        tick. The first poll returns everything closed by the start: a later start hands the
        earlier candles over at once, as warm-up."""
        step = step_ms or self._tf_ms
        now = self.start_ms if start_ms is None else start_ms
        last = self.end_ms if end_ms is None else end_ms
        while True:
            yield now, await self.poll(now)
            if now >= last:
                return
            now += step


# ---------------------------------------------------------------------------------------
# Live: ccxt
# ---------------------------------------------------------------------------------------
class OhlcvExchange(Protocol):
    """The part of a ccxt async exchange the feed uses."""

    async def fetch_ohlcv(
        self,
        symbol: str,
        timeframe: str = "1m",
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] = {},  # noqa: B006 - mirrors ccxt's signature
    ) -> list[list[Any]]: ...


_URL_RE = re.compile(r"https?://\S+")


def _safe_error(exc: BaseException) -> str:
    """Exception text with URLs removed (signed URLs carry the key id: never record them)."""
    return f"{type(exc).__name__}: {_URL_RE.sub('<url>', str(exc))}"[:300]


def _default_retryable() -> tuple[type[BaseException], ...]:
    try:
        import ccxt  # noqa: PLC0415 - optional at import time
        return (ccxt.BaseError, asyncio.TimeoutError, OSError)
    except ImportError:  # pragma: no cover
        return (asyncio.TimeoutError, OSError)


class CcxtFeed:
    """Polls closed OHLCV candles from a ccxt async exchange (HTX 'COIN/USDT:USDT' swaps).

    * Only symbols that can have a new closed candle are requested: a symbol whose newest
      delivered candle is the latest closed one costs no request. In steady state that is
      one small request per symbol per new candle, run concurrently (at most
      ``max_concurrency`` in flight; ccxt's own rate limiter still applies).
    * The first poll of a symbol loads ``warmup_candles`` of history in pages of
      ``page_limit`` (HTX pages at 1000).
    * Closed means ``now_ms >= open + timeframe`` AND the exchange agrees: either it already
      returned a later candle, or ``close_delay_ms`` more has passed -- a local clock running
      ahead of the exchange must not turn the forming candle into a "closed" one.
    * A failing symbol does not fail the poll: its error is kept in ``errors`` (URLs
      stripped) and it is retried from the same point next poll. Candles fetched before the
      failure are delivered. Malformed rows are dropped and counted in ``malformed``.
    """

    def __init__(
        self,
        exchange: OhlcvExchange,
        symbols: Sequence[str],
        timeframe: str = "5m",
        *,
        warmup_candles: int = 1000,
        page_limit: int = 1000,
        max_concurrency: int = 8,
        close_delay_ms: int = 2000,
        retryable: tuple[type[BaseException], ...] | None = None,
        by_window: bool = False,
    ):
        if len(set(symbols)) != len(symbols):
            raise ValueError("duplicate symbols")
        if warmup_candles < 1 or page_limit < 1 or max_concurrency < 1 or close_delay_ms < 0:
            raise ValueError("warmup_candles, page_limit, max_concurrency must be >= 1")
        self.exchange = exchange
        self._symbols = tuple(symbols)
        self._timeframe = timeframe
        self._tf_ms = timeframe_ms(timeframe)
        self.warmup_candles = warmup_candles
        self.page_limit = page_limit
        self.close_delay_ms = close_delay_ms
        self.by_window = by_window  # True for HTX contracts (see _poll_symbol)
        self._sem = asyncio.Semaphore(max_concurrency)
        self._retryable = retryable if retryable is not None else _default_retryable()
        self._last_ts: dict[str, int | None] = dict.fromkeys(self._symbols)
        self.errors: dict[str, str] = {}
        self.requests = 0
        self.malformed = 0

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def timeframe(self) -> str:
        return self._timeframe

    def last_ts(self, symbol: str) -> int | None:
        """Open time of the newest candle delivered for ``symbol``."""
        return self._last_ts[symbol]

    async def poll(self, now_ms: int) -> dict[str, list[Candle]]:
        target = last_closed_open_ts(now_ms, self._tf_ms)
        due = [s for s in self._symbols if (t := self._last_ts[s]) is None or t < target]
        results = await asyncio.gather(
            *(self._poll_symbol(s, now_ms, target) for s in due), return_exceptions=True
        )
        for r in results:
            if isinstance(r, BaseException):
                # an unexpected error (a bug, not a network/exchange error) -- raise it, but
                # only after every request finished, and commit nothing: the next poll
                # re-fetches the same candles, so none is lost or skipped
                raise r
        out: dict[str, list[Candle]] = {}
        for symbol, candles in zip(due, results):
            if candles:
                out[symbol] = candles  # type: ignore[assignment]
                self._last_ts[symbol] = candles[-1].ts_ms  # type: ignore[index]
        return out

    async def _poll_symbol(self, symbol: str, now_ms: int, target: int) -> list[Candle]:
        tf = self._tf_ms
        last = self._last_ts[symbol]
        first = last + tf if last is not None else target - (self.warmup_candles - 1) * tf
        rows: dict[int, Candle] = {}
        since = first
        max_pages = math.ceil(((target - first) // tf + 2) / self.page_limit) + 1
        pages = 0
        error: BaseException | None = None
        while since <= target and pages < max_pages:
            # +2: the forming candle (confirms the last closed one) and one spare
            limit = min(self.page_limit, (target - since) // tf + 2)
            try:
                async with self._sem:
                    self.requests += 1
                    if self.by_window:
                        # HTX contracts: with `size` the venue ignores from/to and returns the
                        # newest candles, so ask by window (ccxt sends from=since, to=until).
                        until = since + (limit - 1) * tf
                        page = await self.exchange.fetch_ohlcv(symbol, self._timeframe, since=since,
                                                               params={"until": until})
                    else:
                        page = await self.exchange.fetch_ohlcv(symbol, self._timeframe, since=since, limit=limit)
            except self._retryable as exc:
                error = exc
                break
            pages += 1
            newest = None
            for raw in page or ():
                try:
                    c = Candle.from_ohlcv(raw)
                except (ValueError, TypeError):
                    self.malformed += 1
                    continue
                if c.ts_ms % tf:
                    self.malformed += 1
                    continue
                if c.ts_ms >= first:
                    rows.setdefault(c.ts_ms, c)
                    newest = c.ts_ms if newest is None else max(newest, c.ts_ms)
            if newest is not None and newest >= target:
                break
            if newest is not None and len(page) >= limit:
                since = newest + tf  # a full page: continue right after it
            else:
                # short or empty page: a hole or the end of the exchange's data; move past
                # the requested window (HTX pages by from/to windows) -- bounded by max_pages
                since += limit * tf
        if error is not None:
            self.errors[symbol] = _safe_error(error)
            log.warning("ohlcv %s %s failed: %s", symbol, self._timeframe, self.errors[symbol])
        else:
            self.errors.pop(symbol, None)

        ordered = sorted(rows)
        out: list[Candle] = []
        for i, ts in enumerate(ordered):
            if ts > target:
                break
            confirmed = (i + 1 < len(ordered)) or now_ms >= ts + tf + self.close_delay_ms
            if not confirmed:
                break
            out.append(rows[ts])
        return out
