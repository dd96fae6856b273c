"""Closed candles: the Candle value, timeframe arithmetic, a bounded store and aggregation.

Why this module is strict: every signal is computed on closed candles only. A forming candle,
a duplicate, an out-of-order row or a malformed price must never reach the indicators, and a
missing candle must be visible (recorded as a gap), never silently papered over.

Timestamps are candle OPEN times in UTC milliseconds, as ccxt and the recorded files use. A
candle opened at ``ts`` on timeframe ``tf`` is closed when ``now_ms >= ts + tf_ms``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = [
    "Aggregator",
    "Candle",
    "CandleStore",
    "Gap",
    "IngestReport",
    "OhlcvArrays",
    "SymbolCandles",
    "candles_to_arrays",
    "is_closed",
    "last_closed_open_ts",
    "minutes_to_candles",
    "timeframe_minutes",
    "timeframe_ms",
]

_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def timeframe_ms(timeframe: str) -> int:
    """Length of a ccxt-style timeframe ('1m', '5m', '15m', '30m', '1h', '4h', '1d') in ms.

    Only fixed-length units are accepted (m, h, d). Weeks and months are refused: weekly
    candles are not aligned to the epoch and months have no fixed length, so bucket and
    closed-candle arithmetic would be wrong for them.
    """
    if not isinstance(timeframe, str) or len(timeframe) < 2:
        raise ValueError(f"invalid timeframe {timeframe!r}")
    unit = timeframe[-1]
    number = timeframe[:-1]
    if unit not in _UNIT_MS or not number.isdigit():
        raise ValueError(f"invalid timeframe {timeframe!r}: expected <int><m|h|d>")
    count = int(number)
    if count <= 0:
        raise ValueError(f"invalid timeframe {timeframe!r}: length must be positive")
    return count * _UNIT_MS[unit]


def timeframe_minutes(timeframe: str) -> int:
    """Length of a timeframe in whole minutes."""
    return timeframe_ms(timeframe) // 60_000


def minutes_to_candles(minutes: int, timeframe: str, *, strict: bool = False) -> int:
    """Convert a period set in minutes into a number of candles of ``timeframe``.

    The settings give EMA and window lengths in minutes so that one value means the same
    time span on every layer: 2880 min on 1h = 48 candles, 120 min on 5m = 24 candles.
    A span that is not a whole number of candles is rounded to the nearest candle (half
    up) with a minimum of one; ``strict=True`` refuses it instead.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int | np.integer):
        raise TypeError(f"minutes must be an int, got {type(minutes).__name__}")
    if minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    per_candle = timeframe_minutes(timeframe)
    whole, rest = divmod(int(minutes), per_candle)
    if rest and strict:
        raise ValueError(f"{minutes} min is not a whole number of {timeframe} candles")
    if 2 * rest >= per_candle:
        whole += 1
    return max(1, whole)


def is_closed(open_ts_ms: int, tf_ms: int, now_ms: int) -> bool:
    """True when the candle opened at ``open_ts_ms`` has closed by ``now_ms``."""
    return now_ms >= open_ts_ms + tf_ms


def last_closed_open_ts(now_ms: int, tf_ms: int) -> int:
    """Open time of the most recent candle that is closed at ``now_ms`` (epoch-aligned)."""
    return (now_ms // tf_ms) * tf_ms - tf_ms


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle; ``ts_ms`` is its open time (UTC ms).

    Construction validates the values, so a Candle that exists is usable: finite positive
    prices, ``low <= min(open, close) <= max(open, close) <= high``, finite volume >= 0.
    A corrupt row therefore fails loudly at the edge (feed) instead of skewing indicators.
    """

    ts_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def __post_init__(self) -> None:
        ts = self.ts_ms
        if isinstance(ts, bool) or not isinstance(ts, int | np.integer) or ts < 0:
            raise ValueError(f"candle ts_ms must be a non-negative int, got {ts!r}")
        o, h, lo, c, v = self.open, self.high, self.low, self.close, self.volume
        for name, value in (("open", o), ("high", h), ("low", lo), ("close", c)):
            if not (isinstance(value, float | int) and math.isfinite(value) and value > 0):
                raise ValueError(f"candle {ts}: {name} must be finite and > 0, got {value!r}")
        if not (isinstance(v, float | int) and math.isfinite(v) and v >= 0):
            raise ValueError(f"candle {ts}: volume must be finite and >= 0, got {v!r}")
        if not (lo <= min(o, c) and max(o, c) <= h):
            raise ValueError(f"candle {ts}: inconsistent OHLC o={o} h={h} l={lo} c={c}")

    @classmethod
    def from_ohlcv(cls, row: Sequence[object]) -> Candle:
        """Build from a ccxt-shaped row ``[ts, open, high, low, close, volume]``.

        A missing volume (``None``, as on mark-price candles) becomes 0.0; a missing price
        is an error.
        """
        if len(row) < 6:
            raise ValueError(f"OHLCV row needs 6 fields, got {len(row)}: {row!r}")
        ts, o, h, lo, c, v = row[:6]
        if ts is None or o is None or h is None or lo is None or c is None:
            raise ValueError(f"OHLCV row has a missing field: {row!r}")
        ts_f = float(ts)  # type: ignore[arg-type]
        if not ts_f.is_integer():
            raise ValueError(f"OHLCV timestamp is not an integer millisecond: {ts!r}")
        return cls(
            int(ts_f),
            float(o),  # type: ignore[arg-type]
            float(h),  # type: ignore[arg-type]
            float(lo),  # type: ignore[arg-type]
            float(c),  # type: ignore[arg-type]
            0.0 if v is None else float(v),  # type: ignore[arg-type]
        )

    def to_ohlcv(self) -> list[float | int]:
        """The ccxt row shape ``[ts, open, high, low, close, volume]``."""
        return [self.ts_ms, self.open, self.high, self.low, self.close, self.volume]


class OhlcvArrays(NamedTuple):
    """Column arrays of a candle series (ts int64, prices and volume float64)."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def candles_to_arrays(candles: Sequence[Candle]) -> OhlcvArrays:
    """Copy a candle sequence into column arrays for the vectorised indicators."""
    n = len(candles)
    ts = np.fromiter((c.ts_ms for c in candles), dtype=np.int64, count=n)
    data = np.array(
        [(c.open, c.high, c.low, c.close, c.volume) for c in candles], dtype=np.float64
    ).reshape(n, 5)
    return OhlcvArrays(ts, *(np.ascontiguousarray(data[:, i]) for i in range(5)))


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing candles between two consecutive stored candles."""

    symbol: str
    timeframe: str
    prev_ts_ms: int
    next_ts_ms: int
    missing: int


@dataclass(slots=True)
class IngestReport:
    """What one ``CandleStore.ingest`` call did with its batch."""

    accepted: list[Candle] = field(default_factory=list)
    forming: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    misaligned: int = 0
    gaps: list[Gap] = field(default_factory=list)


class CandleStore:
    """Bounded history of CLOSED candles for one symbol and one timeframe.

    Memory is a fixed ring of ``capacity`` candles. Each column is written twice (at ``i``
    and ``i + capacity``) so the newest ``n`` values are always one contiguous slice: the
    numpy views cost nothing and appending is O(1). Views are read-only and show the store
    as of the call; a later ingest may overwrite them, so copy a view you want to keep.

    Rules on ingest: the forming candle (not closed at ``now_ms``) is dropped; a candle not
    aligned to the timeframe is dropped; a timestamp equal to the newest stored one is a
    duplicate and older ones are out of order -- both ignored (the first closed version
    wins, the indicators have already consumed it). A jump of more than one step is a gap:
    the candle is kept and the gap (with its missing count) is recorded.
    """

    __slots__ = (
        "symbol", "timeframe", "tf_ms", "capacity", "_ts", "_px", "_w", "_n", "_last_ts",
        "_gaps", "_since_gap", "_totals",
    )

    def __init__(self, symbol: str, timeframe: str, capacity: int = 2048, max_gaps: int = 256):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.symbol = symbol
        self.timeframe = timeframe
        self.tf_ms = timeframe_ms(timeframe)
        self.capacity = capacity
        self._ts = np.zeros(2 * capacity, dtype=np.int64)
        self._px = np.zeros((5, 2 * capacity), dtype=np.float64)  # open, high, low, close, volume
        self._w = 0
        self._n = 0
        self._last_ts: int | None = None
        self._gaps: deque[Gap] = deque(maxlen=max_gaps)
        self._since_gap = 0
        self._totals = {"accepted": 0, "forming": 0, "duplicates": 0, "out_of_order": 0,
                        "misaligned": 0, "missing": 0}

    # -- ingest -----------------------------------------------------------------------
    def ingest(self, candles: Iterable[Candle], now_ms: int) -> IngestReport:
        """Store the closed candles of ``candles`` (any order) as of ``now_ms``."""
        report = IngestReport()
        tf = self.tf_ms
        for candle in sorted(candles, key=lambda c: c.ts_ms):
            ts = candle.ts_ms
            if now_ms < ts + tf:
                report.forming += 1
            elif ts % tf:
                report.misaligned += 1
            elif self._last_ts is not None and ts <= self._last_ts:
                if ts == self._last_ts:
                    report.duplicates += 1
                else:
                    report.out_of_order += 1
            else:
                gap = self._append(candle)
                if gap is not None:
                    report.gaps.append(gap)
                report.accepted.append(candle)
        t = self._totals
        t["accepted"] += len(report.accepted)
        t["forming"] += report.forming
        t["duplicates"] += report.duplicates
        t["out_of_order"] += report.out_of_order
        t["misaligned"] += report.misaligned
        return report

    def _append(self, c: Candle) -> Gap | None:
        gap = None
        if self._last_ts is not None:
            missing = (c.ts_ms - self._last_ts) // self.tf_ms - 1
            if missing > 0:
                gap = Gap(self.symbol, self.timeframe, self._last_ts, c.ts_ms, missing)
                self._gaps.append(gap)
                self._totals["missing"] += missing
                self._since_gap = 0
        w, cap = self._w, self.capacity
        row = (c.open, c.high, c.low, c.close, c.volume)
        self._ts[w] = self._ts[w + cap] = c.ts_ms
        self._px[:, w] = row
        self._px[:, w + cap] = row
        self._w = (w + 1) % cap
        if self._n < cap:
            self._n += 1
        self._since_gap += 1
        self._last_ts = c.ts_ms
        return gap

    # -- reads ------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def last_ts(self) -> int | None:
        """Open time of the newest stored candle, None when empty."""
        return self._last_ts

    @property
    def gaps(self) -> tuple[Gap, ...]:
        """Recorded gaps, oldest first (bounded by ``max_gaps``)."""
        return tuple(self._gaps)

    @property
    def contiguous(self) -> int:
        """How many of the newest stored candles follow each other with no gap."""
        return min(self._since_gap, self._n)

    @property
    def stats(self) -> dict[str, int]:
        """Running totals: accepted, forming, duplicates, out_of_order, misaligned, missing."""
        return dict(self._totals)

    def _slice(self, n: int | None) -> slice:
        k = self._n if n is None else max(0, min(n, self._n))
        end = (self._w - self._n) % self.capacity + self._n
        return slice(end - k, end)

    def _view(self, row: int, n: int | None) -> np.ndarray:
        v = self._px[row, self._slice(n)]
        v.flags.writeable = False
        return v

    def ts(self, n: int | None = None) -> np.ndarray:
        """Open times of the newest ``n`` (default all) candles, oldest first."""
        v = self._ts[self._slice(n)]
        v.flags.writeable = False
        return v

    def open(self, n: int | None = None) -> np.ndarray:
        return self._view(0, n)

    def high(self, n: int | None = None) -> np.ndarray:
        return self._view(1, n)

    def low(self, n: int | None = None) -> np.ndarray:
        return self._view(2, n)

    def close(self, n: int | None = None) -> np.ndarray:
        return self._view(3, n)

    def volume(self, n: int | None = None) -> np.ndarray:
        return self._view(4, n)

    def arrays(self, n: int | None = None) -> OhlcvArrays:
        """All columns of the newest ``n`` candles as read-only views."""
        return OhlcvArrays(self.ts(n), self.open(n), self.high(n), self.low(n),
                           self.close(n), self.volume(n))

    def candles(self, n: int | None = None) -> list[Candle]:
        """The newest ``n`` candles as Candle objects (a copy), oldest first."""
        a = self.arrays(n)
        return [
            Candle(int(t), float(o), float(h), float(lo), float(c), float(v))
            for t, o, h, lo, c, v in zip(a.ts, a.open, a.high, a.low, a.close, a.volume)
        ]

    @property
    def latest(self) -> Candle | None:
        """Newest stored candle, None when empty."""
        return self.candles(1)[0] if self._n else None


class Aggregator:
    """Builds higher-timeframe candles (e.g. 1h) from closed lower ones (e.g. 5m).

    Buckets are aligned to the epoch (UTC), like exchange 1h/4h candles. The aggregated
    candle takes the first open, max high, min low, last close and summed volume, and is
    emitted only once its bucket is finished: on the arrival of its last sub-candle or of
    the first candle of a later bucket. Both events imply the bucket has closed.

    Missing sub-candles: by default (``max_missing=0``) a bucket with any missing
    sub-candle is DROPPED, which leaves a visible gap in the higher-timeframe store. A
    partial bucket would carry a wrong high/low/volume and silently bias EMA, ATR and
    volume filters; a missing hour is explicit. ``max_missing=k`` accepts buckets missing
    at most ``k`` sub-candles (only useful for gappy replay data); ``dropped`` and
    ``partial`` count both outcomes. Input must be closed candles in increasing time order
    (what CandleStore.ingest returns as ``accepted``); older input is ignored.
    """

    __slots__ = ("source_tf", "target_tf", "src_ms", "dst_ms", "per_bucket", "max_missing",
                 "_bucket", "_o", "_h", "_l", "_c", "_v", "_count", "_last_ts",
                 "dropped", "partial", "emitted")

    def __init__(self, source_tf: str, target_tf: str, max_missing: int = 0):
        self.source_tf = source_tf
        self.target_tf = target_tf
        self.src_ms = timeframe_ms(source_tf)
        self.dst_ms = timeframe_ms(target_tf)
        if self.dst_ms <= self.src_ms or self.dst_ms % self.src_ms:
            raise ValueError(f"{target_tf} is not a whole multiple of {source_tf}")
        self.per_bucket = self.dst_ms // self.src_ms
        if not 0 <= max_missing < self.per_bucket:
            raise ValueError(f"max_missing must be in [0, {self.per_bucket - 1}]")
        self.max_missing = max_missing
        self._bucket: int | None = None
        self._o = self._h = self._l = self._c = self._v = 0.0
        self._count = 0
        self._last_ts: int | None = None
        self.dropped = 0
        self.partial = 0
        self.emitted = 0

    def update(self, candle: Candle) -> list[Candle]:
        """Feed one closed source candle; returns the higher candles it finished (0..2)."""
        ts = candle.ts_ms
        if ts % self.src_ms:
            raise ValueError(f"{ts} is not aligned to {self.source_tf}")
        if self._last_ts is not None and ts <= self._last_ts:
            return []
        self._last_ts = ts
        out: list[Candle] = []
        bucket = ts - ts % self.dst_ms
        if self._bucket is not None and bucket != self._bucket:
            self._finish(out)
        if self._bucket is None:
            self._bucket = bucket
            self._o, self._h, self._l = candle.open, candle.high, candle.low
            self._v = 0.0
            self._count = 0
        else:
            self._h = max(self._h, candle.high)
            self._l = min(self._l, candle.low)
        self._c = candle.close
        self._v += candle.volume
        self._count += 1
        if ts + self.src_ms == bucket + self.dst_ms:  # last slot of the bucket has arrived
            self._finish(out)
        return out

    def _finish(self, out: list[Candle]) -> None:
        assert self._bucket is not None
        missing = self.per_bucket - self._count
        if missing <= self.max_missing:
            out.append(Candle(self._bucket, self._o, self._h, self._l, self._c, self._v))
            self.emitted += 1
            if missing:
                self.partial += 1
        else:
            self.dropped += 1
        self._bucket = None


class SymbolCandles:
    """One symbol's base-timeframe store plus stores aggregated from it (e.g. 5m -> 1h).

    ``ingest`` returns the newly closed candles per timeframe, in time order, so the caller
    can feed the incremental indicators of each layer.
    """

    def __init__(
        self,
        symbol: str,
        base_timeframe: str = "5m",
        derived: Sequence[str] = ("1h",),
        capacity: int | dict[str, int] = 2048,
        max_missing: int = 0,
    ):
        def cap(tf: str) -> int:
            return capacity.get(tf, 2048) if isinstance(capacity, dict) else capacity

        self.symbol = symbol
        self.base = CandleStore(symbol, base_timeframe, cap(base_timeframe))
        self.derived: dict[str, CandleStore] = {}
        self._aggs: dict[str, Aggregator] = {}
        for tf in derived:
            self._aggs[tf] = Aggregator(base_timeframe, tf, max_missing)
            self.derived[tf] = CandleStore(symbol, tf, cap(tf))

    def store(self, timeframe: str) -> CandleStore:
        """The store of ``timeframe`` (base or derived)."""
        if timeframe == self.base.timeframe:
            return self.base
        return self.derived[timeframe]

    def ingest(self, candles: Iterable[Candle], now_ms: int) -> dict[str, list[Candle]]:
        """Ingest base candles; returns newly closed candles for every timeframe."""
        report = self.base.ingest(candles, now_ms)
        out: dict[str, list[Candle]] = {self.base.timeframe: report.accepted}
        for tf, agg in self._aggs.items():
            built = [h for c in report.accepted for h in agg.update(c)]
            out[tf] = self.derived[tf].ingest(built, now_ms).accepted
        return out
