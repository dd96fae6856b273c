"""`crot download`: recorded candles and funding for `crot replay`, fetched from the venues.

For a date range it fills a replay folder (layout: ``engine.runtime.replay_data``) with

    <BASE>_USDT_USDT-5m-futures.csv.gz          HTX USDT-M candles: the configured coins, BTC and
                                               the gold proxy (first GOLD_COINS coin HTX lists)
    <BASE>_USDT_USDT-8h-funding_rate.csv.gz     HTX funding events of the coins and BTC
    reference/<BASE>_USDT_USDT-5m-futures.csv.gz  the reference venue's (MEXC) candles
    .crot-download.json                         which time ranges each file already covers

Resume: a range a previous run fetched (even one where the venue had nothing, e.g. before a
listing) is never asked for again, so a second run over the same range sends no history
request; a run that stopped (error, Ctrl-C, kill) continues from its last saved page. Every
file is rewritten whole through a temporary file and a rename, data file first, then the
coverage file: a kill leaves complete files, at worst with a range fetched again next time.

Paging, within the venues' documented limits:

* HTX kline (GET /linear-swap-ex/market/history/kline): at most 2000 candles per request
  ("size [1,2000]", HTX USDT-margined swap API, "Get KLine Data",
  https://huobiapi.github.io/docs/usdt_swap/v1/en/#general-get-kline-data, the page ccxt
  4.5.90 cites in htx.fetch_ohlcv). We ask by window (from/to, 2000 slots) and never send
  `size`: with `size` HTX ignores from/to and serves the newest candles (ccxt's note).
* HTX funding (GET /v5/market/funding_rate_history, what ccxt 4.5.90's
  htx.fetch_funding_rate_history calls for USDT-M swaps): at most 100 rows per request (ccxt:
  "max 100"; the ccxt client sends `limit`, start_time and our end_time). HTX's older endpoint for the same history, GET
  /linear-swap-api/v1/swap_historical_funding_rate, pages by page_index / page_size with
  "page size.20 by default. 50 at most [1-50]" (HTX USDT-M API, "[General] Query historical
  funding rate", https://www.htx.com/en-us/opend/newApiPages/?id=8cb7ee4a-77b5-11ed-9966-0242ac110003;
  copy: rosssaunders/coincise docs/htx/endpoints/private/get_general_query_historical_funding_rate.md).
  The order of the rows is not documented, so each window is asked with start_time AND
  end_time, and a window whose page holds 50 rows or more (HTX_FUNDING_TRUSTED: a venue that
  serves 50 where 100 were asked, silently, as a page_size cap would, looks complete
  otherwise) is split in two and asked again, down to one hour: no event can fall between
  pages, and the pages cover the whole range.
* MEXC kline (GET /api/v1/contract/kline/{symbol}): at most 2000 candles per request (MEXC
  futures API, "Get candlestick data"; ccxt 4.5.90 mexc.fetch_ohlcv "maxLimit is 2000 for
  swap"). MEXC's `vol` is in contracts: it is written in coins (x contract size), like HTX's.

Only closed candles are written (open + timeframe <= now): the forming one both venues append
is dropped. Each symbol fails on its own: an unknown symbol or a venue error is one line in
`DownloadReport.errors` and the others still download.
"""

from __future__ import annotations

import difflib
import gzip
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.exchange import errors as E
from engine.market.candles import Candle, timeframe_ms
from engine.market.feeds import CSV_HEADER, FUNDING_HEADER, read_candles_csv, read_funding_csv
from engine.settings.envfile import atomic_write_bytes

__all__ = [
    "COVERAGE_FILE", "DownloadError", "DownloadReport", "SeriesResult", "download", "plan_symbols",
]

COVERAGE_FILE = ".crot-download.json"
REPLAY_FILE_MODE = 0o644  # replay data is not secret (atomic_write_bytes defaults to 0600)
REFERENCE_DIR = "reference"  # as engine.runtime.replay_data.REFERENCE_DIR
HTX_KLINE_PAGE = 2000
MEXC_KLINE_PAGE = 2000
HTX_FUNDING_PAGE = 100  # rows asked per funding request (v5 `limit`, at most 100)
HTX_FUNDING_TRUSTED = 50  # a page with fewer rows is the whole window (HTX documents 50 for v1 page_size)
FUNDING_WINDOW_MS = 16 * 86_400_000  # 48 events at 8 h: one request; denser ones (96 at 4 h) split
MIN_FUNDING_WINDOW_MS = 3_600_000
BTC = "BTC/USDT:USDT"

Kind = Literal["candles", "funding"]
Progress = Callable[[int, int, str], None]  # (done, total, what): units are candle slots / windows


class DownloadError(ValueError):
    """An input `crot download` cannot use (range, settings); the message is one line."""


@dataclass(frozen=True)
class _Series:
    venue: str  # "htx" | "mexc"
    symbol: str
    kind: Kind
    role: str  # coin | btc | gold | reference
    key: str  # path relative to the data folder, the coverage key


@dataclass
class SeriesResult:
    venue: str
    symbol: str
    kind: Kind
    role: str
    path: Path
    added: int = 0
    requests: int = 0
    rows: int = 0  # in the file afterwards
    first_ms: int | None = None
    last_ms: int | None = None
    error: str | None = None
    code: str | None = None  # the venue's error code, when it gave one


@dataclass
class DownloadReport:
    data_dir: Path
    start_ms: int
    end_ms: int  # after capping at the newest closed candle
    results: list[SeriesResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line each
    unknown: list[str] = field(default_factory=list)  # symbols HTX does not have (bad input)
    notes: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.results)


# --------------------------------------------------------------------------- symbols


def _coin_symbol(raw: str) -> str:
    """'eth', 'ETH', 'ETH-USDT', 'ethusdt', 'ETH/USDT:USDT' -> 'ETH/USDT:USDT'."""
    name = raw.strip().upper().replace(":USDT", "").replace("/", "").replace("-", "").replace("_", "")
    if name.endswith("USDT") and len(name) > 4:
        name = name[:-4]
    return f"{name}/USDT:USDT"


def plan_symbols(settings: Any, symbols: Iterable[str] | None = None) -> tuple[list[str], list[str]]:
    """(traded candidates: the coins or ``symbols``, then BTC; the GOLD_COINS candidates in
    order, empty when the macro overlay is off on every enabled side)."""
    coins = list(symbols) if symbols is not None else [*settings.glob.coins, *settings.glob.coins_2]
    traded = list(dict.fromkeys([_coin_symbol(c) for c in coins if c.strip()] + [BTC]))
    sides = [settings.side(s) for s in (settings.enabled or ("long",))]
    gold: list[str] = []
    if any(p.enable_gold_btc_rsi_overlay for p in sides):
        for p in sides:
            gold.extend(f"{c.upper()}/USDT:USDT" for c in p.gold_coins)
    return traded, list(dict.fromkeys(gold))


def _unknown(symbol: str, venue: str, listed: Iterable[str]) -> str:
    bases = {s.split("/")[0]: s for s in listed if s.endswith("/USDT:USDT")}
    near = [bases[b] for b in difflib.get_close_matches(symbol.split("/")[0], list(bases), n=3, cutoff=0.6)]
    hint = f"; close: {', '.join(near)}" if near else ""
    return f"{symbol}: {venue} lists no such USDT-M perpetual{hint}"


# --------------------------------------------------------------------------- intervals


def _merge(intervals: Iterable[Sequence[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in intervals if int(b) > int(a)):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _missing(lo: int, hi: int, covered: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    out, cursor = [], lo
    for a, b in _merge(covered):
        if b <= cursor or a >= hi:
            continue
        if a > cursor:
            out.append((cursor, min(a, hi)))
        cursor = max(cursor, b)
    if cursor < hi:
        out.append((cursor, hi))
    return out


def _windows(lo: int, hi: int, span: int) -> list[tuple[int, int]]:
    return [(a, min(a + span, hi)) for a in range(lo, hi, span)]


# --------------------------------------------------------------------------- files


def _file_for(data_dir: Path, stem: str) -> Path:
    """An existing ``stem.csv`` is extended in place (two files for one series would stop the
    replay); otherwise ``stem.csv.gz``."""
    plain = data_dir / f"{stem}.csv"
    return plain if plain.is_file() else data_dir / f"{stem}.csv.gz"


def _encode(path: Path, text: str) -> bytes:
    raw = text.encode("utf-8")
    return gzip.compress(raw, mtime=0) if path.name.endswith(".gz") else raw


def _candles_text(rows: Mapping[int, Candle]) -> str:
    lines = [",".join(CSV_HEADER)]
    lines += [f"{c.ts_ms},{c.open!r},{c.high!r},{c.low!r},{c.close!r},{c.volume!r}" for _, c in sorted(rows.items())]
    return "\n".join(lines) + "\n"


def _funding_text(rows: Mapping[int, float]) -> str:
    lines = [",".join(FUNDING_HEADER)] + [f"{t},{r!r}" for t, r in sorted(rows.items())]
    return "\n".join(lines) + "\n"


class _Coverage:
    """The folder's record of fetched ranges, ``{key: [[start_ms, end_ms), ...]}``, and how many
    rows each file held then (0: the venue had nothing there and no file was written)."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / COVERAGE_FILE
        self.ranges: dict[str, list[list[int]]] = {}
        self.rows: dict[str, int] = {}
        if self.path.is_file():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                self.ranges = {str(k): _merge(v) for k, v in (raw.get("covered") or {}).items()}
                self.rows = {str(k): int(v) for k, v in (raw.get("rows") or {}).items()}
            except (ValueError, TypeError, AttributeError):
                raise DownloadError(f"{self.path}: not a crot download record (delete it to fetch everything again)") \
                    from None

    def trusted(self, key: str, path: Path) -> list[list[int]]:
        """The recorded ranges of ``key``, unless its file was deleted since (then none)."""
        if path.is_file() or (key in self.ranges and self.rows.get(key) == 0):
            return list(self.ranges.get(key, []))
        return []

    def add(self, key: str, intervals: Iterable[Sequence[int]], rows: int) -> None:
        self.ranges[key] = _merge([*self.ranges.get(key, []), *intervals])
        self.rows[key] = rows

    def save(self) -> None:
        text = json.dumps({"version": 1, "note": "ranges [start_ms, end_ms) crot download has fetched",
                           "covered": self.ranges, "rows": self.rows}, indent=1, sort_keys=True) + "\n"
        atomic_write_bytes(self.path, text.encode("utf-8"), REPLAY_FILE_MODE)


# --------------------------------------------------------------------------- venues


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


class _HtxHistory:
    """HTX candle and funding pages through `HtxExchange`'s public history reads
    (`fetch_candles_page`, `fetch_funding_history_page`: retries, typed and redacted errors,
    hostname failover as every read of the adapter)."""

    name = "htx"

    def __init__(self, exchange: Any):
        self.ex = exchange

    async def markets(self) -> Mapping[str, Any]:
        return await self.ex.load_markets()

    async def candles(self, symbol: str, timeframe: str, lo: int, hi: int) -> list[Candle]:
        return [Candle.from_ohlcv(r) for r in await self.ex.fetch_candles_page(symbol, timeframe, lo, hi)]

    async def funding(self, symbol: str, lo: int, hi: int, limit: int) -> list[tuple[int, float]]:
        out = []
        for t, rate in await self.ex.fetch_funding_history_page(symbol, lo, hi, limit):
            if not math.isfinite(rate):  # the adapter checks it; a double might not
                raise ValueError(f"funding rate {rate!r} is not a number")
            out.append((int(t), float(rate)))
        return out

    async def close(self) -> None:
        await self.ex.close()


class _MexcHistory:
    """MEXC candle pages through `MexcReference.fetch_candles_page` (volume already in coins)."""

    name = "mexc"

    def __init__(self, reference: Any):
        self.ref = reference

    async def markets(self) -> Mapping[str, Any]:
        return await self.ref.load_markets()

    async def candles(self, symbol: str, timeframe: str, lo: int, hi: int) -> list[Candle]:
        return [Candle.from_ohlcv(r) for r in await self.ref.fetch_candles_page(symbol, timeframe, lo, hi)]

    async def close(self) -> None:
        await self.ref.close()


# --------------------------------------------------------------------------- the download


@dataclass
class _Job:
    series: _Series
    venue: Any
    path: Path
    missing: list[tuple[int, int]]
    result: SeriesResult

    def units(self, tf: int) -> int:
        if self.series.kind == "candles":
            return sum((b - a) // tf for a, b in self.missing)
        return sum(len(_windows(a, b, FUNDING_WINDOW_MS)) for a, b in self.missing)


def _stem(symbol: str, kind: Kind, timeframe: str) -> str:
    base = symbol.split("/")[0]
    return f"{base}_USDT_USDT-{timeframe}-futures" if kind == "candles" else f"{base}_USDT_USDT-8h-funding_rate"


def _read_existing(path: Path, kind: Kind) -> dict[int, Any]:
    if not path.is_file():
        return {}
    try:
        if kind == "candles":
            return {c.ts_ms: c for c in read_candles_csv(path)}
        return dict(read_funding_csv(path))
    except (ValueError, OSError, EOFError) as exc:
        raise DownloadError(f"{path}: cannot extend it ({_one_line(exc)}); move it away to download it again") \
            from None


class _Downloader:
    def __init__(self, data_dir: Path, timeframe: str, clock_ms: Callable[[], int], progress: Progress | None,
                 checkpoint_pages: int, funding_page: int):
        self.dir = data_dir
        self.tf_name = timeframe
        self.tf = timeframe_ms(timeframe)
        self.clock = clock_ms
        self.progress = progress
        self.checkpoint_pages = checkpoint_pages
        self.funding_page = funding_page
        self.coverage = _Coverage(data_dir)
        self.done = 0
        self.total = 0

    def job(self, series: _Series, venue: Any, lo: int, hi: int) -> _Job:
        folder = self.dir / REFERENCE_DIR if series.role == "reference" else self.dir
        path = _file_for(folder, _stem(series.symbol, series.kind, self.tf_name))
        key = path.relative_to(self.dir).as_posix()
        covered = self.coverage.trusted(key, path)
        if path.is_file() and not covered:  # a file from elsewhere (or an old record): trust its span
            rows = _read_existing(path, series.kind)
            if rows:
                covered = [[min(rows), max(rows) + (self.tf if series.kind == "candles" else 1)]]
        result = SeriesResult(series.venue, series.symbol, series.kind, series.role, path)
        return _Job(_Series(series.venue, series.symbol, series.kind, series.role, key), venue, path,
                    _missing(lo, hi, covered), result)

    def _tick(self, units: int, what: str) -> None:
        self.done += units
        if self.progress is not None:
            self.progress(self.done, self.total, what)

    def _flush(self, job: _Job, existing: dict[int, Any], new: dict[int, Any], fetched: list[tuple[int, int]]) -> None:
        rows = {**new, **existing}  # a row already recorded stays as it was
        text = _candles_text(rows) if job.series.kind == "candles" else _funding_text(rows)
        if rows or job.path.is_file():
            atomic_write_bytes(job.path, _encode(job.path, text), REPLAY_FILE_MODE)
        self.coverage.add(job.series.key, fetched, len(rows))
        self.coverage.save()

    async def run(self, job: _Job) -> None:
        r = job.result
        what = f"{job.series.venue} {job.series.symbol.split('/')[0]} {job.series.kind}"
        existing = _read_existing(job.path, job.series.kind)
        new: dict[int, Any] = {}
        fetched: list[tuple[int, int]] = []
        pages = 0
        try:
            if job.series.kind == "candles":
                page = HTX_KLINE_PAGE if job.series.venue == "htx" else MEXC_KLINE_PAGE
                for a, b in job.missing:
                    for lo, hi in _windows(a, b, page * self.tf):
                        r.requests += 1
                        now = self.clock()
                        for c in await job.venue.candles(job.series.symbol, self.tf_name, lo, hi):
                            if lo <= c.ts_ms < hi and c.ts_ms % self.tf == 0 and c.ts_ms + self.tf <= now \
                                    and c.ts_ms not in existing:
                                new[c.ts_ms] = c
                        fetched.append((lo, hi))
                        pages += 1
                        self._tick((hi - lo) // self.tf, what)
                        if pages % self.checkpoint_pages == 0:
                            self._flush(job, existing, new, fetched)
            else:
                for a, b in job.missing:
                    for lo, hi in _windows(a, b, FUNDING_WINDOW_MS):
                        for t, rate in await self._funding_window(job, lo, hi):
                            if t not in existing:
                                new[t] = rate
                        fetched.append((lo, hi))
                        pages += 1
                        self._tick(1, what)
                        if pages % self.checkpoint_pages == 0:
                            self._flush(job, existing, new, fetched)
        except (E.ExchangeError, ValueError, TypeError, KeyError) as exc:
            r.error = f"{job.series.symbol} {job.series.kind} ({job.series.venue}): {_one_line(exc)}"
            r.code = getattr(exc, "code", None)
        finally:  # also on cancellation (Ctrl-C): keep every page fetched so far
            if fetched:
                self._flush(job, existing, new, fetched)
        rows = {**new, **existing}
        r.added, r.rows = len(new), len(rows)
        r.first_ms, r.last_ms = (min(rows), max(rows)) if rows else (None, None)

    async def _funding_window(self, job: _Job, lo: int, hi: int) -> list[tuple[int, float]]:
        job.result.requests += 1
        rows = await job.venue.funding(job.series.symbol, lo, hi, self.funding_page)
        inside = [(t, rate) for t, rate in rows if lo <= t < hi and t <= self.clock()]
        if len(rows) < min(self.funding_page, HTX_FUNDING_TRUSTED):
            return inside  # fewer rows than any cap HTX documents: the window is complete
        if hi - lo <= MIN_FUNDING_WINDOW_MS:  # full even for one hour: the venue ignored the window
            raise E.MalformedResponse(f"funding history: a full page of {len(rows)} rows for one hour "
                                      f"from {lo}; the venue does not page by time", venue=job.series.venue)
        mid = lo + (hi - lo) // 2
        return await self._funding_window(job, lo, mid) + await self._funding_window(job, mid, hi)


async def download(
    settings: Any,
    data_dir: str | Path,
    start_ms: int,
    end_ms: int | None,
    *,
    symbols: Iterable[str] | None = None,
    reference: bool = True,
    funding: bool = True,
    htx_config: Any = None,
    mexc_config: Any = None,
    clock_ms: Callable[[], int] | None = None,
    progress: Progress | None = None,
    checkpoint_pages: int = 20,
    funding_page: int = HTX_FUNDING_PAGE,
    htx_exchange: Any = None,
    reference_feed: Any = None,
) -> DownloadReport:
    """Fill ``data_dir`` with the candles opening in [start_ms, end_ms) (end: None or in the
    future = up to the newest closed candle) and the funding events in that range; see the
    module doc. ``htx_config`` / ``mexc_config`` default to the settings' hosts (tests point
    them at loopback venues). ``htx_exchange`` / ``reference_feed``: adapters already built
    instead (`CandleHistory` and `FundingHistory` / `CandleHistory` of engine.exchange.base:
    only their public methods are used), closed when the download ends. Bad inputs raise
    DownloadError; per-symbol problems are in the report."""
    from engine.exchange.htx import HtxConfig, HtxExchange
    from engine.exchange.mexc import MexcConfig, MexcReference

    if not 1 <= funding_page <= HTX_FUNDING_PAGE:
        raise ValueError(f"funding_page must be 1..{HTX_FUNDING_PAGE}")
    g = settings.glob
    timeframe = settings.side("long").ema_trigger_timeframe
    tf = timeframe_ms(timeframe)
    if htx_config is None:
        htx_config = HtxConfig(api_key="", secret="", timeout_ms=g.timeout_ms,
                               hostnames=tuple(g.contract_hostnames) or ("api.hbdm.vn", "api.hbdm.com"))
    clock = clock_ms or htx_config.clock_ms
    now = clock()
    newest = now // tf * tf  # candles opening before this are closed
    lo = -(-int(start_ms) // tf) * tf
    hi = newest if end_ms is None else min(int(end_ms) // tf * tf, newest)
    if lo >= hi:
        raise DownloadError(f"--timerange starts at {_utc(lo)} UTC, but the newest closed {timeframe} candle "
                            f"opened at {_utc(newest - tf)} UTC: nothing to download")
    want_reference = reference and g.external_price_enabled
    if want_reference:
        names = [x.lower() for x in g.external_price_reference_exchanges]
        if "mexc" not in names:
            raise DownloadError(f"EXTERNAL_PRICE_REFERENCE_EXCHANGES={','.join(names)}: crot download reads the "
                                "reference venue from mexc only (set it to mexc, or use --no-reference)")
    traded, gold_candidates = plan_symbols(settings, symbols)
    folder = Path(data_dir)
    if folder.exists() and not folder.is_dir():
        raise DownloadError(f"--data {folder}: not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    report = DownloadReport(folder, lo, hi)
    if not want_reference:
        report.notes.append("reference venue: off (EXTERNAL_PRICE_ENABLED=false or --no-reference)")
    loader = _Downloader(folder, timeframe, clock, progress, max(1, checkpoint_pages), funding_page)
    htx = _HtxHistory(htx_exchange if htx_exchange is not None else HtxExchange(htx_config))
    mexc = None
    if want_reference:
        mexc = _MexcHistory(reference_feed if reference_feed is not None
                            else MexcReference(mexc_config or MexcConfig()))
    elif reference_feed is not None:
        await reference_feed.close()
    try:
        try:
            listed = await htx.markets()
        except E.ExchangeError as exc:
            raise DownloadError(f"HTX market list: {_one_line(exc)}") from None
        jobs: list[_Job] = []
        ok = []
        for s in traded:
            if s in listed:
                ok.append(s)
            else:
                report.unknown.append(s)
                report.errors.append(_unknown(s, "HTX", listed))
        gold = next((s for s in gold_candidates if s in listed), None)
        if gold_candidates and gold is None:
            coins = ",".join(s.split("/")[0].lower() for s in gold_candidates)
            report.unknown.append(f"GOLD_COINS={coins}")
            report.errors.append(f"gold proxy: none of GOLD_COINS={coins} has an HTX USDT-M perpetual "
                                 "(the macro overlay would be unavailable in the replay)")
        for s in ok:
            jobs.append(loader.job(_Series("htx", s, "candles", "btc" if s == BTC else "coin", ""), htx, lo, hi))
        if gold is not None and gold not in ok:
            jobs.append(loader.job(_Series("htx", gold, "candles", "gold", ""), htx, lo, hi))
        if funding:
            for s in ok:
                jobs.append(loader.job(_Series("htx", s, "funding", "btc" if s == BTC else "coin", ""), htx,
                                       lo, min(hi, now)))
        if mexc is not None:
            try:
                ref_listed = await mexc.markets()
            except E.ExchangeError as exc:
                report.errors.append(f"reference venue mexc: market list: {_one_line(exc)}")
                ref_listed = {}
            for s in ok:
                if s in ref_listed:
                    jobs.append(loader.job(_Series("mexc", s, "candles", "reference", ""), mexc, lo, hi))
                elif ref_listed:
                    report.notes.append(f"reference: {s} has no MEXC USDT-M perpetual (no reference for it)")
        loader.total = sum(j.units(tf) for j in jobs)
        for job in jobs:
            await loader.run(job)
            report.results.append(job.result)
            if job.result.error:
                report.errors.append(job.result.error)
                if job.result.code == "1013":  # HTX: "This contract symbol doesnt exist."
                    report.unknown.append(job.series.symbol)
    finally:
        await htx.close()
        if mexc is not None:
            await mexc.close()
    return report


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))
