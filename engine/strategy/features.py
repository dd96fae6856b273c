"""Per-symbol strategy features: incremental for live/replay, vectorised for history.

``FeatureEngine`` keeps O(1) state per symbol and is fed CLOSED candles of the base timeframe
(the trigger timeframe, EMA_TRIGGER_TIMEFRAME, 5m by default). Higher layers (the macro 1h
layer, and the pullback layer when it is not on the base timeframe) are AGGREGATED
INTERNALLY from the base candles with ``engine.market.candles.Aggregator``: one data stream
per symbol, no risk of feeding a 1h candle twice, and a bucket with a missing 5m candle is
dropped (a visible hole) rather than built from partial data. Candles of any other timeframe
are refused.

``features_from_history`` computes the same features for every candle of a recorded series
with the vectorised indicators; tests check the two paths agree on the bundled real candles.

Conventions (both paths):
  * EMA periods are set in minutes and converted to candles of the layer's timeframe
    (``minutes_to_candles``: 2880 min on 1h = EMA48, 120 min on 5m = EMA24); EMAs are
    SMA-seeded (``engine.market.indicators``).
  * A 1h candle becomes visible at the base candle that completes its hour.
  * Returns are LOG returns over a span set in minutes, looked up by timestamp: the close
    exactly ``span`` earlier must exist, otherwise the value is NaN (never a return over a
    longer horizon across a gap). ``rs = own log return - benchmark log return`` at the same
    candle; with no benchmark symbol the quote currency IS the benchmark (BTC-quoted pairs)
    and rs is the pair's own return.
  * Pullback cross: the last time the pullback fast EMA crossed the slow one, ``up`` when
    (fast - slow) went from <= 0 to > 0, ``down`` when it went from >= 0 to < 0; its age is
    the time from that pullback candle to the newest pullback candle, in minutes (inf when no
    cross has been seen).
  * Volume spike: the largest single-candle volume among the last EMA_VOLUME_SPIKE_WINDOW
    base candles (the newest on ties) divided by the mean volume of the EMA_VOLUME_LONG_WINDOW
    candles before that window; direction of that candle: up (close > open), down, flat.
  * ``volatility``: sample std of per-candle log returns over VOLATILITY_WINDOW candles;
    ``daily_volatility``: the same over DAILY_VOLATILITY_WINDOW candles scaled to one day
    (x sqrt(candles per day)). Neither is needed for entries: both may be NaN while warm.
  * ``warm``: every value an entry gate reads has had enough candles (EMAs of all layers,
    chop, volume ratio, spike, value area, ATR, return windows). A warm feature set can still
    hold NaN (a return across a gap); gates treat NaN as failing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from engine.market.candles import (
    Aggregator,
    Candle,
    OhlcvArrays,
    candles_to_arrays,
    minutes_to_candles,
    timeframe_minutes,
    timeframe_ms,
)
from engine.market.indicators import (
    Atr,
    Choppiness,
    Ema,
    VolumeRatio,
    atr,
    choppiness,
    ema,
    volume_profile,
    volume_ratio,
)
from engine.settings import ProfileSettings

from ._profile import value_area_batch

__all__ = [
    "CROSS_DOWN",
    "CROSS_UP",
    "FeatureEngine",
    "FeatureParams",
    "SymbolFeatures",
    "features_at",
    "features_from_history",
    "frame_to_features",
]

NAN = math.nan
INF = math.inf
CROSS_UP = "up"
CROSS_DOWN = "down"
_MINUTE_MS = 60_000
_DAY_MINUTES = 1440


# ---------------------------------------------------------------------------------------
# The feature set
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SymbolFeatures:
    """Everything the signal reads about one symbol at one closed base candle.

    Prices are in the symbol's quote currency; gaps and returns are fractions. ``ts_ms`` is
    the OPEN time of the newest closed base candle.
    """

    symbol: str
    ts_ms: int
    close: float
    # macro layer (1h by default)
    macro_fast: float
    macro_slow: float
    macro_ts_ms: int  # open time of the newest macro candle included (-1: none)
    # pullback layer (5m by default)
    pullback_fast: float
    pullback_slow: float
    pullback_gap: float  # (fast - slow) / slow, long frame (mirror for shorts)
    pullback_cross: str  # CROSS_UP, CROSS_DOWN or "" (none seen)
    pullback_cross_age_min: float  # minutes since that cross (inf when none)
    # trigger layer (5m by default)
    trigger_fast: float
    trigger_slow: float
    # market structure (trigger candles)
    chop: float
    volume_ratio: float  # mean volume of the short window / of the long window
    volume_up_fraction: float  # share of short-window volume on up candles
    volume_down_fraction: float  # share of short-window volume on down candles
    spike_ratio: float
    spike_direction: str  # "up", "down" or "flat"
    va_low: float
    va_high: float
    va_poc: float
    # returns and relative strength (log, over RS_FAST_WINDOW / RS_SLOW_WINDOW minutes)
    ret30: float
    ret60: float
    rs30: float
    rs60: float
    # volatility
    atr: float
    atr_rate: float
    volatility: float
    daily_volatility: float
    warm: bool = True

    @classmethod
    def neutral_benchmark(cls, ts_ms: int, symbol: str = "") -> SymbolFeatures:
        """The benchmark as seen from pairs quoted in it (BTC priced in BTC): a constant 1.0,
        every return 0. Lets BTC-quoted data (the bundled demo candles) use the BTC filter."""
        return cls(
            symbol=symbol, ts_ms=ts_ms, close=1.0,
            macro_fast=1.0, macro_slow=1.0, macro_ts_ms=-1,
            pullback_fast=1.0, pullback_slow=1.0, pullback_gap=0.0,
            pullback_cross="", pullback_cross_age_min=INF,
            trigger_fast=1.0, trigger_slow=1.0,
            chop=NAN, volume_ratio=NAN, volume_up_fraction=NAN, volume_down_fraction=NAN,
            spike_ratio=NAN, spike_direction="flat", va_low=NAN, va_high=NAN, va_poc=NAN,
            ret30=0.0, ret60=0.0, rs30=0.0, rs60=0.0,
            atr=0.0, atr_rate=0.0, volatility=0.0, daily_volatility=0.0, warm=True,
        )

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


FEATURE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SymbolFeatures))


# ---------------------------------------------------------------------------------------
# Parameters derived from the settings
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FeatureParams:
    """Indicator lengths in candles, derived once from a profile's settings."""

    base_tf: str
    base_ms: int
    macro_tf: str
    pullback_tf: str
    macro_fast: int
    macro_slow: int
    pullback_fast: int
    pullback_slow: int
    trigger_fast: int
    trigger_slow: int
    chop_period: int
    volume_short: int
    volume_long: int
    spike_window: int
    profile_window: int
    profile_bins: int
    profile_value_area: float
    atr_period: int
    rs_fast_candles: int
    rs_slow_candles: int
    volatility_window: int
    daily_window: int
    day_scale: float

    @classmethod
    def from_settings(cls, p: ProfileSettings) -> FeatureParams:
        base = p.ema_trigger_timeframe
        base_ms = timeframe_ms(base)
        for name in ("ema_macro_timeframe", "ema_pullback_timeframe"):
            tf = getattr(p, name)
            ms = timeframe_ms(tf)
            if ms < base_ms or ms % base_ms:
                raise ValueError(
                    f"{name.upper()}={tf} must be the trigger timeframe {base} or a whole "
                    f"multiple of it (higher layers are aggregated from {base} candles)"
                )
        return cls(
            base_tf=base,
            base_ms=base_ms,
            macro_tf=p.ema_macro_timeframe,
            pullback_tf=p.ema_pullback_timeframe,
            macro_fast=minutes_to_candles(p.ema_macro_fast_minutes, p.ema_macro_timeframe),
            macro_slow=minutes_to_candles(p.ema_macro_slow_minutes, p.ema_macro_timeframe),
            pullback_fast=minutes_to_candles(p.ema_pullback_fast_minutes, p.ema_pullback_timeframe),
            pullback_slow=minutes_to_candles(p.ema_pullback_slow_minutes, p.ema_pullback_timeframe),
            trigger_fast=minutes_to_candles(p.ema_trigger_fast_minutes, base),
            trigger_slow=minutes_to_candles(p.ema_trigger_slow_minutes, base),
            chop_period=p.ema_chop_period,
            volume_short=p.ema_volume_short_window,
            volume_long=p.ema_volume_long_window,
            spike_window=p.ema_volume_spike_window,
            profile_window=p.ema_volume_profile_window,
            profile_bins=p.ema_volume_profile_bins,
            profile_value_area=p.ema_volume_profile_value_area,
            atr_period=p.ema_averaging_atr_period,
            rs_fast_candles=minutes_to_candles(p.rs_fast_window, base),
            rs_slow_candles=minutes_to_candles(p.rs_slow_window, base),
            volatility_window=p.volatility_window,
            daily_window=p.daily_volatility_window,
            day_scale=math.sqrt(_DAY_MINUTES / timeframe_minutes(base)),
        )

    @property
    def min_base_candles(self) -> int:
        """Base candles needed before the base-timeframe values are ready (the higher
        layers additionally need their own number of complete candles)."""
        return max(
            self.volume_long + self.spike_window,
            self.profile_window,
            self.rs_slow_candles + 1,
            self.rs_fast_candles + 1,
        )


# ---------------------------------------------------------------------------------------
# Incremental engine
# ---------------------------------------------------------------------------------------
class _Stream:
    """EMAs of one timeframe of one symbol (the base one, or one aggregated from it)."""

    __slots__ = ("tf_ms", "agg", "emas", "ema_list", "last_ts", "track", "pf", "ps",
                 "prev_diff", "cross_dir", "cross_ts")

    def __init__(self, tf: str, base_tf: str, periods: Iterable[int], max_missing: int = 0):
        self.tf_ms = timeframe_ms(tf)
        self.agg = None if tf == base_tf else Aggregator(base_tf, tf, max_missing)
        self.emas: dict[int, Ema] = {n: Ema(n) for n in sorted(set(periods))}
        self.ema_list = list(self.emas.values())
        self.last_ts = -1
        self.track = False
        self.pf = self.ps = 0
        self.prev_diff: float | None = None
        self.cross_dir = ""
        self.cross_ts = -1

    def push(self, ts: int, close: float) -> None:
        for e in self.ema_list:
            e.push(close)
        self.last_ts = ts
        if self.track:
            f = self.emas[self.pf].value
            s = self.emas[self.ps].value
            if f == f and s == s:  # both ready
                d = f - s
                prev = self.prev_diff
                if prev is not None:
                    if prev <= 0.0 < d:
                        self.cross_dir, self.cross_ts = CROSS_UP, ts
                    elif prev >= 0.0 > d:
                        self.cross_dir, self.cross_ts = CROSS_DOWN, ts
                self.prev_diff = d


class _RollingVar:
    """Sample std of the last ``n`` values: running sums over a numpy ring (no per-value
    Python objects), refreshed exactly once per window so rounding cannot accumulate."""

    __slots__ = ("n", "buf", "i", "count", "s1", "s2", "since")

    def __init__(self, n: int):
        self.n = n
        self.buf = np.zeros(n)
        self.i = 0
        self.count = 0
        self.s1 = 0.0
        self.s2 = 0.0
        self.since = 0

    def push(self, x: float) -> None:
        i = self.i
        if self.count == self.n:
            old = float(self.buf[i])
            self.s1 -= old
            self.s2 -= old * old
        else:
            self.count += 1
        self.buf[i] = x
        self.i = i + 1 if i + 1 < self.n else 0
        self.s1 += x
        self.s2 += x * x
        self.since += 1
        if self.since >= self.n:
            vals = self.buf[: self.count].tolist()
            self.s1 = math.fsum(vals)
            self.s2 = math.fsum(v * v for v in vals)
            self.since = 0

    def std(self) -> float:
        n = self.n
        if self.count < n:
            return NAN
        var = (self.s2 - self.s1 * self.s1 / n) / (n - 1)
        return math.sqrt(var) if var > 0.0 else 0.0


class _SymbolState:
    __slots__ = (
        "symbol", "row", "pos", "n", "ts", "close", "base", "macro", "pullback", "trigger",
        "derived", "chop", "vr", "atr", "closes", "close_ts", "ret30", "ret60", "prev_close",
        "vol", "dvol", "warm", "batch_ts", "batch", "cache_key", "cache",
    )

    def __init__(self, symbol: str, row: int, fp: FeatureParams, max_missing: int = 0):
        self.symbol = symbol
        self.row = row
        self.pos = 0
        self.n = 0
        self.ts = -1
        self.close = NAN
        periods: dict[str, set[int]] = {fp.base_tf: {fp.trigger_fast, fp.trigger_slow}}
        periods.setdefault(fp.pullback_tf, set()).update((fp.pullback_fast, fp.pullback_slow))
        periods.setdefault(fp.macro_tf, set()).update((fp.macro_fast, fp.macro_slow))
        streams = {tf: _Stream(tf, fp.base_tf, ps, max_missing) for tf, ps in periods.items()}
        self.base = streams[fp.base_tf]
        self.trigger = self.base
        self.macro = streams[fp.macro_tf]
        self.pullback = streams[fp.pullback_tf]
        self.pullback.track = True
        self.pullback.pf, self.pullback.ps = fp.pullback_fast, fp.pullback_slow
        # derived streams in increasing timeframe order (deterministic)
        self.derived = [s for tf, s in sorted(streams.items(), key=lambda kv: kv[1].tf_ms)
                        if tf != fp.base_tf]
        self.chop = Choppiness(fp.chop_period)
        self.vr = VolumeRatio(fp.volume_short, fp.volume_long)
        self.atr = Atr(fp.atr_period)
        self.closes: dict[int, float] = {}
        self.close_ts: deque[int] = deque()
        self.ret30 = NAN
        self.ret60 = NAN
        self.prev_close: float | None = None
        self.vol = _RollingVar(fp.volatility_window)
        self.dvol = _RollingVar(fp.daily_window)
        self.warm = False
        self.batch_ts = -1
        # (spike ratio, spike direction, up fraction, down fraction, poc, val, vah)
        self.batch: tuple[float, str, float, float, float, float, float] | None = None
        self.cache_key: tuple[int, int] | None = None
        self.cache: SymbolFeatures | None = None


_DIRS = ("flat", "up", "down")  # indexed by the candle sign (0, +1, -1)


class FeatureEngine:
    """Incremental features of many symbols for one profile's settings.

    Feed every closed base-timeframe candle with ``on_candle`` (in time order per symbol;
    duplicates and older candles are ignored), then read ``features(symbol)`` or
    ``features_all()``. The window statistics (volume spike, directional volume, value area)
    of every symbol with a new candle are computed together in one numpy pass, on the first
    read after the candles arrived. Not thread-safe: one engine per task.

    ``benchmark_symbol`` names the symbol whose returns are subtracted to get relative
    strength (BTC/USDT:USDT in live trading); it must be fed like any other symbol. ``None``
    means the pairs are quoted in the benchmark itself (BTC-quoted data): rs is then the
    pair's own return and ``benchmark()`` is the neutral constant series.

    Both sides can share one engine: the features are side-independent; the signal mirrors
    them. An engine needs one instance per distinct set of indicator settings.
    """

    def __init__(self, profile_settings: ProfileSettings, benchmark_symbol: str | None = None,
                 *, max_missing: int = 0):
        self.params = FeatureParams.from_settings(profile_settings)
        self.benchmark_symbol = benchmark_symbol
        self.max_missing = max_missing
        fp = self.params
        # one ring per symbol row holding the last R candles' low/high/volume/sign, written
        # twice so the newest R are always one contiguous slice
        self._ring = max(fp.profile_window, fp.volume_long + fp.spike_window, fp.volume_short)
        self._rs_fast_ms = fp.rs_fast_candles * fp.base_ms
        self._rs_slow_ms = fp.rs_slow_candles * fp.base_ms
        self._keep_ms = max(self._rs_fast_ms, self._rs_slow_ms)
        self._states: dict[str, _SymbolState] = {}
        cap = 16
        self._lo = np.zeros((cap, 2 * self._ring))
        self._hi = np.zeros((cap, 2 * self._ring))
        self._vo = np.zeros((cap, 2 * self._ring))
        self._sg = np.zeros((cap, 2 * self._ring), dtype=np.int8)
        self._bench_rets: dict[int, tuple[float, float]] = {}
        self._bench_ts: deque[int] = deque()
        self._bench_last_ts = -1

    # -- feeding ----------------------------------------------------------------------
    @property
    def base_timeframe(self) -> str:
        return self.params.base_tf

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._states)

    def _state(self, symbol: str) -> _SymbolState:
        st = self._states.get(symbol)
        if st is None:
            row = len(self._states)
            if row >= self._lo.shape[0]:
                grow = self._lo.shape[0]
                self._lo = np.vstack([self._lo, np.zeros_like(self._lo[:grow])])
                self._hi = np.vstack([self._hi, np.zeros_like(self._hi[:grow])])
                self._vo = np.vstack([self._vo, np.zeros_like(self._vo[:grow])])
                self._sg = np.vstack([self._sg, np.zeros_like(self._sg[:grow])])
            st = _SymbolState(symbol, row, self.params, self.max_missing)
            self._states[symbol] = st
        return st

    def on_candle(self, symbol: str, timeframe: str, candle: Candle) -> bool:
        """Consume one CLOSED candle of the base timeframe; False if it was ignored
        (not newer than the last one)."""
        if timeframe != self.params.base_tf:
            raise ValueError(
                f"feed {self.params.base_tf} candles only; {timeframe} layers are aggregated "
                f"internally from them"
            )
        st = self._state(symbol)
        ts = candle.ts_ms
        if ts <= st.ts:
            return False
        if ts % self.params.base_ms:
            raise ValueError(f"{symbol}: candle {ts} is not aligned to {timeframe}")
        c = candle.close
        st.ts = ts
        st.close = c
        st.n += 1
        # EMAs of the base stream, then the aggregated layers
        st.base.push(ts, c)
        for s in st.derived:
            for built in s.agg.update(candle):  # type: ignore[union-attr]
                s.push(built.ts_ms, built.close)
        # structure indicators
        st.chop.update(candle)
        st.vr.update(candle)
        st.atr.update(candle)
        # window ring (volume profile, spike, directional volume)
        w = self._ring
        row, pos = st.row, st.pos
        o = candle.open
        sign = 1 if c > o else (-1 if c < o else 0)
        self._lo[row, pos] = self._lo[row, pos + w] = candle.low
        self._hi[row, pos] = self._hi[row, pos + w] = candle.high
        self._vo[row, pos] = self._vo[row, pos + w] = candle.volume
        self._sg[row, pos] = self._sg[row, pos + w] = sign
        st.pos = pos + 1 if pos + 1 < w else 0
        # returns by timestamp
        closes = st.closes
        closes[ts] = c
        cts = st.close_ts
        cts.append(ts)
        cut = ts - self._keep_ms
        while cts[0] < cut:
            del closes[cts.popleft()]
        ref = closes.get(ts - self._rs_fast_ms)
        st.ret30 = math.log(c / ref) if ref is not None else NAN
        ref = closes.get(ts - self._rs_slow_ms)
        st.ret60 = math.log(c / ref) if ref is not None else NAN
        prev = st.prev_close
        if prev is not None:
            r = math.log(c / prev)
            st.vol.push(r)
            st.dvol.push(r)
        st.prev_close = c
        if symbol == self.benchmark_symbol:
            self._bench_rets[ts] = (st.ret30, st.ret60)
            self._bench_ts.append(ts)
            self._bench_last_ts = ts
            while len(self._bench_ts) > 4096:
                self._bench_rets.pop(self._bench_ts.popleft(), None)
        if not st.warm:
            st.warm = self._check_warm(st)
        return True

    def on_candles(self, symbol: str, timeframe: str, candles: Iterable[Candle]) -> int:
        """Feed many candles (warm-up); returns how many were used."""
        return sum(self.on_candle(symbol, timeframe, c) for c in candles)

    # -- reading ----------------------------------------------------------------------
    def _check_warm(self, st: _SymbolState) -> bool:
        """Warm-up is monotone: once every value has had enough candles it stays so."""
        fp = self.params
        if st.n < fp.min_base_candles:
            return False
        for stream, a, b in ((st.macro, fp.macro_fast, fp.macro_slow),
                             (st.pullback, fp.pullback_fast, fp.pullback_slow),
                             (st.trigger, fp.trigger_fast, fp.trigger_slow)):
            if not (stream.emas[a].ready and stream.emas[b].ready):
                return False
        return st.chop.ready and st.vr.ready and st.atr.ready

    def is_warm(self, symbol: str) -> bool:
        st = self._states.get(symbol)
        return st is not None and st.warm

    def _bench_key(self) -> int:
        return self._bench_last_ts if self.benchmark_symbol is not None else 0

    def _compute_windows(self, states: Sequence[_SymbolState]) -> None:
        """Spike, directional volume and value area of every symbol in ``states`` whose
        newest candle has not been processed yet, in one vectorised pass."""
        todo = [st for st in states if st.batch_ts != st.ts]
        if not todo:
            return
        fp = self.params
        R = self._ring
        rows = np.fromiter((st.row for st in todo), dtype=np.int64, count=len(todo))
        start = np.fromiter((st.pos for st in todo), dtype=np.int64, count=len(todo))
        r = rows[:, None]
        idx = start[:, None] + np.arange(R)
        vol = self._vo[r, idx]
        sgn = self._sg[r, idx]
        P, W, L, S = fp.profile_window, fp.spike_window, fp.volume_long, fp.volume_short
        poc, val, vah = value_area_batch(self._lo[r, idx[:, R - P:]], self._hi[r, idx[:, R - P:]],
                                         vol[:, R - P:], fp.profile_bins, fp.profile_value_area)
        spike, sdir = _spike_rows(vol[:, R - W - L:], sgn[:, R - W - L:], W, L)
        upf, dnf = _direction_rows(vol[:, R - S:], sgn[:, R - S:])
        for st, *vals in zip(todo, spike.tolist(), sdir.tolist(), upf.tolist(), dnf.tolist(),
                             poc.tolist(), val.tolist(), vah.tolist()):
            vals[1] = _DIRS[vals[1]]
            st.batch = tuple(vals)  # type: ignore[assignment]
            st.batch_ts = st.ts

    def _build(self, st: _SymbolState) -> SymbolFeatures:
        fp = self.params
        ts = st.ts
        if self.benchmark_symbol is None:
            b30 = b60 = 0.0
        else:
            b30, b60 = self._bench_rets.get(ts, (NAN, NAN))
        spike, spike_dir, upf, dnf, poc, val, vah = st.batch  # type: ignore[misc]
        pb = st.pullback
        age = (pb.last_ts - pb.cross_ts) / _MINUTE_MS if pb.cross_dir else INF
        pf = pb.emas[fp.pullback_fast].value
        ps = pb.emas[fp.pullback_slow].value
        a = st.atr.value
        c = st.close
        macro = st.macro
        trig = st.trigger.emas
        return SymbolFeatures(
            st.symbol, ts, c,
            macro.emas[fp.macro_fast].value, macro.emas[fp.macro_slow].value, macro.last_ts,
            pf, ps, (pf - ps) / ps, pb.cross_dir, age,
            trig[fp.trigger_fast].value, trig[fp.trigger_slow].value,
            st.chop.value, st.vr.value, upf, dnf, spike, spike_dir, val, vah, poc,
            st.ret30, st.ret60, st.ret30 - b30, st.ret60 - b60,
            a, a / c, st.vol.std(), st.dvol.std() * fp.day_scale, True,
        )

    def features(self, symbol: str) -> SymbolFeatures | None:
        """Features at the symbol's newest closed candle; None until warm (or unknown)."""
        st = self._states.get(symbol)
        if st is None or not st.warm:
            return None
        key = (st.ts, self._bench_key())
        if st.cache_key == key:
            return st.cache
        if st.batch_ts != st.ts:
            # one vectorised pass for every warm symbol with a new candle: a cycle that
            # reads the symbols one by one pays for the batch once
            self._compute_windows([s for s in self._states.values()
                                   if s.warm and s.batch_ts != s.ts])
        f = self._build(st)
        st.cache_key, st.cache = key, f
        return f

    def features_all(self, symbols: Iterable[str] | None = None, *, ts_ms: int | None = None
                     ) -> dict[str, SymbolFeatures]:
        """Features of every warm symbol (or of the warm ones among ``symbols``).

        With ``ts_ms``, only symbols whose newest candle opened at ``ts_ms``: a symbol whose
        candle of this cycle is missing must not be evaluated on stale features (its
        benchmark check would compare different candles and fail anyway)."""
        bkey = self._bench_key()
        if symbols is None:
            states = [st for st in self._states.values() if st.warm]
        else:
            states = []
            for name in symbols:
                st = self._states.get(name)
                if st is not None and st.warm:
                    states.append(st)
        if ts_ms is not None:
            states = [st for st in states if st.ts == ts_ms]
        self._compute_windows(states)
        out: dict[str, SymbolFeatures] = {}
        for st in states:
            key = (st.ts, bkey)
            if st.cache_key != key:
                st.cache_key, st.cache = key, self._build(st)
            out[st.symbol] = st.cache  # type: ignore[assignment]
        return out

    def benchmark(self, ts_ms: int | None = None) -> SymbolFeatures | None:
        """Benchmark features for the BTC filter: the benchmark symbol's features, or, when
        the pairs are quoted in the benchmark, the neutral series at ``ts_ms`` (default: the
        newest candle time seen)."""
        if self.benchmark_symbol is not None:
            return self.features(self.benchmark_symbol)
        if ts_ms is None:
            ts_ms = max((st.ts for st in self._states.values()), default=-1)
            if ts_ms < 0:
                return None
        return SymbolFeatures.neutral_benchmark(ts_ms)


def _spike_rows(vol: np.ndarray, sgn: np.ndarray, W: int, L: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of the last L+W volumes: (largest-of-last-W / mean of the L before, sign of
    that candle), the newest candle winning ties."""
    last = vol[:, L:]
    pick = W - 1 - np.argmax(last[:, ::-1], axis=1)
    r = np.arange(vol.shape[0])
    best = last[r, pick]
    base = vol[:, :L].sum(axis=1) / L
    ok = base > 0.0
    ratio = np.where(ok, best / np.where(ok, base, 1.0), np.where(best > 0.0, np.inf, 0.0))
    return ratio, sgn[:, L:][r, pick].astype(np.int64)


def _direction_rows(vol: np.ndarray, sgn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: share of the volume on up candles and on down candles (0 when no volume)."""
    tot = vol.sum(axis=1)
    up = np.where(sgn > 0, vol, 0.0).sum(axis=1)
    dn = np.where(sgn < 0, vol, 0.0).sum(axis=1)
    ok = tot > 0.0
    safe = np.where(ok, tot, 1.0)
    return np.where(ok, up / safe, 0.0), np.where(ok, dn / safe, 0.0)


# ---------------------------------------------------------------------------------------
# Vectorised history
# ---------------------------------------------------------------------------------------
def _as_arrays(data: Sequence[Candle] | OhlcvArrays) -> OhlcvArrays:
    if isinstance(data, OhlcvArrays):
        return data
    return candles_to_arrays(list(data))


def _clean(a: OhlcvArrays, base_ms: int) -> OhlcvArrays:
    """Keep strictly increasing, aligned candles (what the incremental engine accepts)."""
    ts = np.asarray(a.ts, dtype=np.int64)
    if len(ts) and ((ts % base_ms) != 0).any():
        raise ValueError("candle not aligned to the base timeframe")
    keep = np.ones(len(ts), dtype=bool)
    if len(ts) > 1:
        keep[1:] = ts[1:] > np.maximum.accumulate(ts)[:-1]
    if keep.all():
        return a
    return OhlcvArrays(*(np.asarray(col)[keep] for col in a))


def _layer(ts: np.ndarray, close: np.ndarray, base_ms: int, tf: str, max_missing: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aggregate base closes into complete ``tf`` buckets: (bucket ts, bucket close, index of
    the base row at which each bucket becomes visible)."""
    tf_ms = timeframe_ms(tf)
    per = tf_ms // base_ms
    bucket = ts - ts % tf_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    counts = ends - starts
    b_ts = bucket[starts]
    last_close = close[ends - 1]
    ok = per - counts <= max_missing
    b_ts, last_close = b_ts[ok], last_close[ok]
    visible = np.searchsorted(ts, b_ts + tf_ms - base_ms, side="left")
    seen = visible < len(ts)
    return b_ts[seen], last_close[seen], visible[seen]


def _lookup_log_return(ts: np.ndarray, close: np.ndarray, span_ms: int) -> np.ndarray:
    out = np.full(len(ts), np.nan)
    idx = np.searchsorted(ts, ts - span_ms)
    idx_c = np.minimum(idx, len(ts) - 1)
    ok = (idx < len(ts)) & (ts[idx_c] == ts - span_ms)
    # math.log, not np.log: the live engine uses math.log and the two may differ in the
    # last bit; identical returns keep backtest and live decisions identical at thresholds
    ratio = close[ok] / close[idx_c[ok]]
    out[ok] = np.fromiter((math.log(x) for x in ratio.tolist()), dtype=np.float64,
                          count=len(ratio))
    return out


def _rolling_std(r: np.ndarray, n: int) -> np.ndarray:
    """Sample std of the last ``n`` log returns at each candle (r[0] is NaN: no return)."""
    out = np.full(len(r), np.nan)
    if len(r) > n:
        out[1:] = pd.Series(r[1:]).rolling(n).std(ddof=1).to_numpy()
    return out


def _symbol_frame(a: OhlcvArrays, fp: FeatureParams, max_missing: int) -> pd.DataFrame:
    ts = np.asarray(a.ts, dtype=np.int64)
    o, h, lo, c, v = (np.asarray(x, dtype=np.float64) for x in a[1:])
    n = len(ts)
    base_ms = fp.base_ms
    if n == 0:
        cols = [f for f in FEATURE_FIELDS if f not in ("symbol", "rs30", "rs60")]
        return pd.DataFrame({name: [] for name in cols})

    def layer_emas(tf: str, fast: int, slow: int):
        if tf == fp.base_tf:
            return ema(c, fast), ema(c, slow), ts.copy(), None
        b_ts, b_close, visible = _layer(ts, c, base_ms, tf, max_missing)
        ef, es = ema(b_close, fast), ema(b_close, slow)
        k = np.searchsorted(visible, np.arange(n), side="right") - 1
        has = k >= 0
        kk = np.maximum(k, 0)
        fast_v = np.where(has, ef[kk] if len(ef) else np.nan, np.nan)
        slow_v = np.where(has, es[kk] if len(es) else np.nan, np.nan)
        last_ts = np.where(has, b_ts[kk] if len(b_ts) else -1, -1).astype(np.int64)
        return fast_v, slow_v, last_ts, (ef, es, b_ts, k)

    macro_f, macro_s, macro_ts, _ = layer_emas(fp.macro_tf, fp.macro_fast, fp.macro_slow)
    trig_f, trig_s = ema(c, fp.trigger_fast), ema(c, fp.trigger_slow)
    pb_f, pb_s, _, pb_layer = layer_emas(fp.pullback_tf, fp.pullback_fast, fp.pullback_slow)
    # pullback crosses, on the pullback layer's own candles
    if pb_layer is None:
        lf, ls, lts = pb_f, pb_s, ts
    else:
        lf, ls, lts = pb_layer[0], pb_layer[1], pb_layer[2]
    d = lf - ls
    prev = np.r_[np.nan, d[:-1]]
    both = np.isfinite(d) & np.isfinite(prev)
    up = both & (prev <= 0.0) & (d > 0.0)
    down = both & (prev >= 0.0) & (d < 0.0)
    event = up | down
    ev_idx = np.where(event, np.arange(len(d)), -1)
    last_ev = np.maximum.accumulate(ev_idx) if len(d) else ev_idx
    has_ev = last_ev >= 0
    le = np.maximum(last_ev, 0)
    layer_dir = np.where(has_ev, np.where(up[le], CROSS_UP, CROSS_DOWN), "")
    layer_age = np.where(has_ev, (lts - lts[le]) / _MINUTE_MS, np.inf) if len(d) else np.zeros(0)
    if pb_layer is None:
        cross_dir, cross_age = layer_dir, layer_age
    else:
        k = pb_layer[3]
        has = k >= 0
        kk = np.maximum(k, 0)
        cross_dir = np.where(has, layer_dir[kk] if len(d) else "", "")
        cross_age = np.where(has, layer_age[kk] if len(d) else np.inf, np.inf)

    chop = choppiness(h, lo, c, fp.chop_period)
    vr = volume_ratio(v, fp.volume_short, fp.volume_long)
    atr_v = atr(h, lo, c, fp.atr_period)

    # spike and directional volume: the same row helpers as the live engine, over
    # sliding windows
    W, L, S = fp.spike_window, fp.volume_long, fp.volume_short
    sign = np.sign(c - o).astype(np.int8)
    spike = np.full(n, np.nan)
    spike_dir = np.full(n, "flat", dtype=object)
    if n >= W + L:
        ratio, sd = _spike_rows(sliding_window_view(v, W + L), sliding_window_view(sign, W + L),
                                W, L)
        spike[W + L - 1:] = ratio
        spike_dir[W + L - 1:] = np.asarray(_DIRS, dtype=object)[sd]
    up_frac = np.full(n, np.nan)
    dn_frac = np.full(n, np.nan)
    if n >= S:
        up_frac[S - 1:], dn_frac[S - 1:] = _direction_rows(sliding_window_view(v, S),
                                                           sliding_window_view(sign, S))

    poc, val, vah = volume_profile(h, lo, v, fp.profile_window, fp.profile_bins,
                                   fp.profile_value_area)
    ret30 = _lookup_log_return(ts, c, fp.rs_fast_candles * base_ms)
    ret60 = _lookup_log_return(ts, c, fp.rs_slow_candles * base_ms)
    r = np.r_[np.nan, np.log(c[1:] / c[:-1])] if n else np.zeros(0)
    vol = _rolling_std(r, fp.volatility_window)
    dvol = _rolling_std(r, fp.daily_window) * fp.day_scale

    count = np.arange(1, n + 1)
    warm = (
        (count >= fp.min_base_candles)
        & np.isfinite(macro_f) & np.isfinite(macro_s)
        & np.isfinite(pb_f) & np.isfinite(pb_s)
        & np.isfinite(trig_f) & np.isfinite(trig_s)
        & np.isfinite(chop) & np.isfinite(vr) & np.isfinite(atr_v)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        pb_gap = (pb_f - pb_s) / pb_s
    return pd.DataFrame({
        "ts_ms": ts, "close": c,
        "macro_fast": macro_f, "macro_slow": macro_s, "macro_ts_ms": macro_ts,
        "pullback_fast": pb_f, "pullback_slow": pb_s, "pullback_gap": pb_gap,
        "pullback_cross": cross_dir, "pullback_cross_age_min": cross_age,
        "trigger_fast": trig_f, "trigger_slow": trig_s,
        "chop": chop, "volume_ratio": vr,
        "volume_up_fraction": up_frac, "volume_down_fraction": dn_frac,
        "spike_ratio": spike, "spike_direction": spike_dir,
        "va_low": val, "va_high": vah, "va_poc": poc,
        "ret30": ret30, "ret60": ret60,
        "atr": atr_v, "atr_rate": atr_v / c,
        "volatility": vol, "daily_volatility": dvol,
        "warm": warm,
    })


def features_from_history(
    history: Mapping[str, Sequence[Candle] | OhlcvArrays],
    p: ProfileSettings,
    benchmark_symbol: str | None = None,
    *,
    max_missing: int = 0,
) -> dict[str, pd.DataFrame]:
    """Features at every closed base candle of recorded series, vectorised.

    ``history`` maps a symbol to its base-timeframe candles (closed, any order; duplicates
    are dropped keeping the first, like the live store). Returns one DataFrame per symbol,
    one row per candle, with the ``SymbolFeatures`` columns (minus ``symbol``). Row ``i``
    equals what ``FeatureEngine`` reports after being fed rows ``0..i`` (``warm`` False where
    it would return None). ``benchmark_symbol`` must be a key of ``history`` when given.
    """
    fp = FeatureParams.from_settings(p)
    frames: dict[str, pd.DataFrame] = {}
    for symbol, data in history.items():
        a = _as_arrays(data)
        order = np.argsort(np.asarray(a.ts, dtype=np.int64), kind="stable")
        a = OhlcvArrays(*(np.asarray(col)[order] for col in a))
        frames[symbol] = _symbol_frame(_clean(a, fp.base_ms), fp, max_missing)
    if benchmark_symbol is not None:
        if benchmark_symbol not in frames:
            raise KeyError(f"benchmark {benchmark_symbol!r} is not in the history")
        b = frames[benchmark_symbol]
        b30 = pd.Series(b["ret30"].to_numpy(), index=b["ts_ms"].to_numpy())
        b60 = pd.Series(b["ret60"].to_numpy(), index=b["ts_ms"].to_numpy())
    for symbol, frame in frames.items():
        if benchmark_symbol is None:
            frame["rs30"] = frame["ret30"]
            frame["rs60"] = frame["ret60"]
        else:
            t = frame["ts_ms"].to_numpy()
            frame["rs30"] = frame["ret30"].to_numpy() - b30.reindex(t).to_numpy()
            frame["rs60"] = frame["ret60"].to_numpy() - b60.reindex(t).to_numpy()
        frame.insert(0, "symbol", symbol)
        cols = [name for name in FEATURE_FIELDS if name in frame.columns]
        frames[symbol] = frame[cols]
    return frames


def features_at(frame: pd.DataFrame, i: int) -> SymbolFeatures | None:
    """Row ``i`` of a ``features_from_history`` frame as SymbolFeatures (None if not warm)."""
    row = frame.iloc[i]
    if not bool(row["warm"]):
        return None
    return _row_features(row.to_dict())


def _row_features(d: Mapping[str, object]) -> SymbolFeatures:
    kw = {}
    for name in FEATURE_FIELDS:
        x = d[name]
        if name in ("ts_ms", "macro_ts_ms"):
            kw[name] = int(x)  # type: ignore[arg-type]
        elif name in ("symbol", "pullback_cross", "spike_direction"):
            kw[name] = str(x)
        elif name == "warm":
            kw[name] = bool(x)
        else:
            kw[name] = float(x)  # type: ignore[arg-type]
    return SymbolFeatures(**kw)


def frame_to_features(frame: pd.DataFrame) -> list[SymbolFeatures | None]:
    """Every row of a ``features_from_history`` frame (None where not warm)."""
    records = frame.to_dict("records")
    return [_row_features(r) if r["warm"] else None for r in records]
