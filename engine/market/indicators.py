"""Indicators in two forms that agree: vectorised over history, incremental for live.

Every indicator exists as
  * a function over 1-D numpy arrays (backtests, warm-up, analysis), returning an array
    aligned with its input, NaN during warm-up;
  * a class with ``update(candle)`` that costs O(1) per closed candle (the volume profile
    costs O(window * bins), see VolumeProfile) and returns the same value the function
    gives at that index (NaN during warm-up).
Tests check both forms against each other on the recorded candles and against values
worked out by hand.

Conventions (fixed here so that both forms and every caller agree):
  * EMA is SEEDED WITH THE SMA of its first ``period`` values (TA-Lib convention): the first
    value is at index ``period - 1``, then ``ema = (1 - a) * ema + a * x`` with
    ``a = 2 / (period + 1)``. Unlike seeding with the first price, no early value is biased
    by one arbitrary candle, and the warm-up is explicit.
  * Wilder smoothing (RSI, ATR) is the same recursion with ``a = 1 / period``, seeded with
    the SMA of the first ``period`` changes / true ranges (index 1..period, the first candle
    has no previous close). RSI and ATR therefore start at index ``period``.
  * The vectorised recursion runs in pandas' ``ewm(adjust=False)`` (compiled); the live
    form repeats its arithmetic ``(om * y + a * x) / (om + a)`` (skipped when ``y == x``),
    so the two match bit for bit today; the tests only rely on 1e-9 relative.
  * Indicators consume candles in sequence and do not look at timestamps, except returns
    and relative strength, which can check the window really spans ``period`` candles of
    time (NaN across a gap). Gap policy is the caller's: CandleStore reports gaps.
  * Inputs must be finite (Candle validates; the array functions raise on NaN/inf).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from engine.market.candles import Candle, minutes_to_candles, timeframe_ms

__all__ = [
    "Atr", "AtrRate", "Choppiness", "Ema", "Return", "RelativeStrength", "Rsi",
    "ValueArea", "VolumeProfile", "VolumeRatio", "VolumeSpike",
    "atr", "atr_rate", "btc_return", "candle_return", "choppiness", "ema",
    "relative_strength", "rsi", "true_range", "volume_profile", "volume_ratio",
    "volume_spike",
]

NAN = float("nan")


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _f64(x: Sequence[float] | np.ndarray, name: str = "input") -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _same_len(*arrays: np.ndarray) -> None:
    if len({len(a) for a in arrays}) > 1:
        raise ValueError(f"arrays differ in length: {[len(a) for a in arrays]}")


def _check_period(period: int, minimum: int = 1) -> int:
    if isinstance(period, bool) or not isinstance(period, int | np.integer) or period < minimum:
        raise ValueError(f"period must be an int >= {minimum}, got {period!r}")
    return int(period)


def _seeded_smoothing(x: np.ndarray, period: int, alpha: float, first: int = 0) -> np.ndarray:
    """SMA-seeded exponential recursion over ``x[first:]`` (NaN before the seed index)."""
    out = np.full(len(x), np.nan)
    seed_at = first + period - 1
    if len(x) <= seed_at:
        return out
    seed = math.fsum(x[first : seed_at + 1].tolist()) / period
    seq = np.concatenate(([seed], x[seed_at + 1 :]))
    out[seed_at:] = pd.Series(seq).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


class _Smoother:
    """Incremental twin of ``_seeded_smoothing`` (same seed, same arithmetic)."""

    __slots__ = ("period", "alpha", "_om", "_norm", "_seed", "value")

    def __init__(self, period: int, alpha: float):
        self.period = period
        self.alpha = alpha
        self._om = 1.0 - alpha
        self._norm = self._om + alpha
        self._seed: list[float] | None = []
        self.value = NAN

    def push(self, x: float) -> float:
        seed = self._seed
        if seed is not None:
            seed.append(x)
            if len(seed) == self.period:
                self.value = math.fsum(seed) / self.period
                self._seed = None
            return self.value
        v = self.value
        if v != x:
            self.value = (self._om * v + self.alpha * x) / self._norm
        return self.value

    @property
    def ready(self) -> bool:
        return self._seed is None


class _RollingSum:
    """Running window sum, O(1) per step, kept accurate to the CURRENT window.

    A plain running sum remembers rounding error proportional to the largest values that
    ever passed through it: after a 1e12 volume spike leaves a window of ~1.0 volumes the
    sum would be off by ~1e-4. So the sum is recomputed exactly (fsum over the window)
    whenever it has fallen far below the high-water mark of the values summed since the
    last refresh, and at least once per window length. Amortised O(1): a refresh follows a
    large value leaving the window; only adversarial alternating magnitudes cost
    O(window) per step (window <= a few dozen here).
    """

    __slots__ = ("window", "_q", "_sum", "_since", "_peak")

    def __init__(self, window: int):
        self.window = window
        self._q: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self._since = 0
        self._peak = 0.0

    def push(self, x: float) -> None:
        q = self._q
        if len(q) == self.window:
            self._sum -= q[0]
        q.append(x)
        self._sum += x
        self._since += 1
        peak = max(self._peak, abs(x), abs(self._sum))
        if self._since >= self.window or peak > 8.0 * abs(self._sum):
            self._sum = math.fsum(q)
            self._since = 0
            peak = max(abs(self._sum), max(q), -min(q))
        self._peak = peak

    @property
    def full(self) -> bool:
        return len(self._q) == self.window

    @property
    def sum(self) -> float:
        return self._sum


class _RollingExtreme:
    """Monotonic-deque rolling max (or min), amortised O(1) per step."""

    __slots__ = ("window", "_sign", "_q", "_i")

    def __init__(self, window: int, kind: str):
        self.window = window
        self._sign = 1.0 if kind == "max" else -1.0
        self._q: deque[tuple[int, float]] = deque()
        self._i = 0

    def push(self, x: float) -> float:
        key = self._sign * x
        q = self._q
        while q and self._sign * q[-1][1] <= key:
            q.pop()
        q.append((self._i, x))
        if q[0][0] <= self._i - self.window:
            q.popleft()
        self._i += 1
        return q[0][1]


def _window_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum of every full window, summed per window (no cumsum differences, whose error
    grows with the whole history's total and would swamp quiet windows after a spike)."""
    return sliding_window_view(x, window).sum(axis=1)


# ---------------------------------------------------------------------------------------
# EMA
# ---------------------------------------------------------------------------------------
def ema(values: Sequence[float] | np.ndarray, period: int) -> np.ndarray:
    """SMA-seeded EMA of ``values``; first value at index ``period - 1``."""
    period = _check_period(period)
    return _seeded_smoothing(_f64(values, "values"), period, 2.0 / (period + 1))


class Ema:
    """Incremental SMA-seeded EMA of candle closes (or raw values via ``push``)."""

    __slots__ = ("period", "_s")

    def __init__(self, period: int):
        self.period = _check_period(period)
        self._s = _Smoother(self.period, 2.0 / (self.period + 1))

    @classmethod
    def for_minutes(cls, minutes: int, timeframe: str) -> Ema:
        """EMA whose period is set in minutes (2880 min on 1h -> EMA48)."""
        return cls(minutes_to_candles(minutes, timeframe))

    def push(self, x: float) -> float:
        return self._s.push(float(x))

    def update(self, candle: Candle) -> float:
        return self._s.push(candle.close)

    @property
    def value(self) -> float:
        return self._s.value

    @property
    def ready(self) -> bool:
        return self._s.ready


# ---------------------------------------------------------------------------------------
# RSI (Wilder)
# ---------------------------------------------------------------------------------------
def _rsi_from_avgs(g: np.ndarray, lo: np.ndarray) -> np.ndarray:
    den = g + lo
    with np.errstate(invalid="ignore", divide="ignore"):
        r = 100.0 * (g / den)  # g / den <= 1 exactly, so RSI never exceeds 100
    # flat market (no gain, no loss): neutral 50 rather than a division by zero
    return np.where(den == 0.0, 50.0, r)


def _rsi1(g: float, lo: float) -> float:
    den = g + lo
    return 50.0 if den == 0.0 else 100.0 * (g / den)


def rsi(close: Sequence[float] | np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder RSI = 100 * avg_gain / (avg_gain + avg_loss); 50 when both are zero."""
    period = _check_period(period)
    c = _f64(close, "close")
    d = np.zeros(len(c))
    d[1:] = c[1:] - c[:-1]
    gains = np.maximum(d, 0.0)
    losses = np.maximum(-d, 0.0)
    ag = _seeded_smoothing(gains, period, 1.0 / period, first=1)
    al = _seeded_smoothing(losses, period, 1.0 / period, first=1)
    return _rsi_from_avgs(ag, al)


class Rsi:
    """Incremental Wilder RSI of closes; first value after ``period + 1`` candles."""

    __slots__ = ("period", "_prev", "_g", "_l", "value")

    def __init__(self, period: int = 14):
        self.period = _check_period(period)
        self._prev: float | None = None
        self._g = _Smoother(self.period, 1.0 / self.period)
        self._l = _Smoother(self.period, 1.0 / self.period)
        self.value = NAN

    def update(self, candle: Candle) -> float:
        c = candle.close
        if self._prev is not None:
            d = c - self._prev
            g = self._g.push(max(d, 0.0))
            lo = self._l.push(max(-d, 0.0))
            if self._g.ready:
                self.value = _rsi1(g, lo)
        self._prev = c
        return self.value

    @property
    def ready(self) -> bool:
        return not math.isnan(self.value)


# ---------------------------------------------------------------------------------------
# True range, ATR (Wilder), ATR rate
# ---------------------------------------------------------------------------------------
def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """TR[i] = max(h-l, |h-prev_close|, |l-prev_close|); TR[0] = h-l (no previous close)."""
    h, lo, c = _f64(high, "high"), _f64(low, "low"), _f64(close, "close")
    _same_len(h, lo, c)
    tr = h - lo
    if len(c) > 1:
        pc = c[:-1]
        tr[1:] = np.maximum(np.maximum(tr[1:], np.abs(h[1:] - pc)), np.abs(lo[1:] - pc))
    return tr


def _tr_step(h: float, lo: float, prev_close: float) -> float:
    return max(max(h - lo, abs(h - prev_close)), abs(lo - prev_close))


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder ATR seeded with the mean of TR[1..period]; first value at index ``period``."""
    period = _check_period(period)
    return _seeded_smoothing(true_range(high, low, close), period, 1.0 / period, first=1)


def atr_rate(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """ATR / close: volatility as a fraction of price (stop and averaging distances)."""
    return atr(high, low, close, period) / _f64(close, "close")


class Atr:
    """Incremental Wilder ATR."""

    __slots__ = ("period", "_prev", "_s")

    def __init__(self, period: int = 14):
        self.period = _check_period(period)
        self._prev: float | None = None
        self._s = _Smoother(self.period, 1.0 / self.period)

    def update(self, candle: Candle) -> float:
        if self._prev is not None:
            self._s.push(_tr_step(candle.high, candle.low, self._prev))
        self._prev = candle.close
        return self._s.value

    @property
    def value(self) -> float:
        return self._s.value

    @property
    def ready(self) -> bool:
        return self._s.ready


class AtrRate:
    """Incremental ATR / close."""

    __slots__ = ("atr", "value")

    def __init__(self, period: int = 14):
        self.atr = Atr(period)
        self.value = NAN

    def update(self, candle: Candle) -> float:
        self.value = self.atr.update(candle) / candle.close
        return self.value

    @property
    def ready(self) -> bool:
        return self.atr.ready


# ---------------------------------------------------------------------------------------
# Choppiness index
# ---------------------------------------------------------------------------------------
def _chop_value(s: np.ndarray, r: np.ndarray, period: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        v = 100.0 * np.log10(s / r) / math.log10(period)
    # a perfectly flat window has no range: call it maximally choppy (fails CHOP <= max)
    return np.where(r > 0.0, v, 100.0)


def _chop1(s: float, r: float, period: int) -> float:
    return 100.0 * math.log10(s / r) / math.log10(period) if r > 0.0 else 100.0


def choppiness(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """CHOP = 100 * log10(sum TR / (max high - min low)) / log10(period).

    The window at index i is candles i-period+1..i, each with its own previous close (so
    the first value is at index ``period``). About 38 = trending, 61.8 = choppy; a flat
    window (zero range) gives 100.
    """
    period = _check_period(period, 2)
    h, lo, c = _f64(high, "high"), _f64(low, "low"), _f64(close, "close")
    tr = true_range(h, lo, c)
    out = np.full(len(c), np.nan)
    if len(c) <= period:
        return out
    sum_tr = _window_sum(tr[1:], period)
    rng = sliding_window_view(h[1:], period).max(axis=1) - sliding_window_view(lo[1:], period).min(axis=1)
    out[period:] = _chop_value(sum_tr, rng, period)
    return out


class Choppiness:
    """Incremental choppiness index (rolling TR sum + monotonic max/min: O(1) amortised)."""

    __slots__ = ("period", "_prev", "_tr", "_hi", "_lo", "value")

    def __init__(self, period: int = 14):
        self.period = _check_period(period, 2)
        self._prev: float | None = None
        self._tr = _RollingSum(self.period)
        self._hi = _RollingExtreme(self.period, "max")
        self._lo = _RollingExtreme(self.period, "min")
        self.value = NAN

    def update(self, candle: Candle) -> float:
        if self._prev is not None:
            self._tr.push(_tr_step(candle.high, candle.low, self._prev))
            hi = self._hi.push(candle.high)
            lo = self._lo.push(candle.low)
            if self._tr.full:
                self.value = _chop1(self._tr.sum, hi - lo, self.period)
        self._prev = candle.close
        return self.value

    @property
    def ready(self) -> bool:
        return not math.isnan(self.value)


# ---------------------------------------------------------------------------------------
# Volume ratio and volume spike
# ---------------------------------------------------------------------------------------
def _ratio(n: np.ndarray, d: np.ndarray, zero_den_value: float) -> np.ndarray:
    """n / d; where d == 0: ``zero_den_value`` if n > 0 else 0.0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = n / d
    return np.where(d > 0.0, r, np.where(n > 0.0, zero_den_value, 0.0))


def _ratio1(n: float, d: float, zero_den_value: float) -> float:
    if d > 0.0:
        return n / d
    return zero_den_value if n > 0.0 else 0.0


def volume_ratio(volume: np.ndarray, short: int = 5, long: int = 20) -> np.ndarray:
    """Mean volume of the last ``short`` candles / mean of the last ``long`` (both ending at
    the current candle). 0.0 when the long window traded nothing (fails a minimum gate)."""
    short, long = _check_period(short), _check_period(long)
    if short > long:
        raise ValueError("short window must not exceed the long window")
    v = _f64(volume, "volume")
    out = np.full(len(v), np.nan)
    if len(v) < long:
        return out
    s = _window_sum(v, short)[long - short :] / short
    lg = _window_sum(v, long) / long
    out[long - 1 :] = _ratio(s, lg, 0.0)
    return out


class VolumeRatio:
    """Incremental short/long mean volume ratio."""

    __slots__ = ("short", "long", "_s", "_l", "value")

    def __init__(self, short: int = 5, long: int = 20):
        self.short, self.long = _check_period(short), _check_period(long)
        if self.short > self.long:
            raise ValueError("short window must not exceed the long window")
        self._s = _RollingSum(self.short)
        self._l = _RollingSum(self.long)
        self.value = NAN

    def update(self, candle: Candle) -> float:
        self._s.push(candle.volume)
        self._l.push(candle.volume)
        if self._l.full:
            self.value = _ratio1(self._s.sum / self.short, self._l.sum / self.long, 0.0)
        return self.value

    @property
    def ready(self) -> bool:
        return not math.isnan(self.value)


def volume_spike(volume: np.ndarray, window: int = 5) -> np.ndarray:
    """Volume of each candle / mean volume of the ``window`` candles before it.

    inf when the previous window traded nothing but this candle did, 0.0 when neither did.
    """
    window = _check_period(window)
    v = _f64(volume, "volume")
    out = np.full(len(v), np.nan)
    if len(v) <= window:
        return out
    prev_mean = _window_sum(v[:-1], window) / window
    out[window:] = _ratio(v[window:], prev_mean, math.inf)
    return out


class VolumeSpike:
    """Incremental last-volume / previous-window mean volume."""

    __slots__ = ("window", "_prev", "value")

    def __init__(self, window: int = 5):
        self.window = _check_period(window)
        self._prev = _RollingSum(self.window)
        self.value = NAN

    def update(self, candle: Candle) -> float:
        if self._prev.full:
            self.value = _ratio1(candle.volume, self._prev.sum / self.window, math.inf)
        self._prev.push(candle.volume)
        return self.value

    @property
    def ready(self) -> bool:
        return not math.isnan(self.value)


# ---------------------------------------------------------------------------------------
# Volume profile with value area
# ---------------------------------------------------------------------------------------
class ValueArea(NamedTuple):
    """Point of control (centre of the busiest price bin) and value-area low/high edges."""

    poc: float
    val: float
    vah: float


def _profile_hist(
    low: np.ndarray, high: np.ndarray, vol: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Volume histogram of each row of (rows, window) arrays: (edges, hist, total).

    Bins split [min low, max high] of the row evenly. A candle's volume is spread over
    the bins in proportion to how much of its [low, high] range each bin covers (a
    candle with low == high puts it all in the bin holding its price).
    """
    rows = low.shape[0]
    lo = low.min(axis=1)
    hi = high.max(axis=1)
    width = (hi - lo) / bins
    edges = lo[:, None] + width[:, None] * np.arange(bins + 1)
    edges[:, -1] = hi
    span = high - low
    ov = np.minimum(high[:, :, None], edges[:, None, 1:]) - np.maximum(low[:, :, None], edges[:, None, :-1])
    np.clip(ov, 0.0, None, out=ov)
    point = span <= 0.0
    w = vol / np.where(point, 1.0, span)
    w[point] = 0.0
    hist = (ov * w[:, :, None]).sum(axis=1)
    if point.any():
        safe_width = np.where(width > 0.0, width, 1.0)
        pos = (low - lo[:, None]) / safe_width[:, None]
        idx = np.clip(np.floor(pos).astype(np.int64), 0, bins - 1)
        r_idx = np.broadcast_to(np.arange(rows)[:, None], low.shape)
        np.add.at(hist, (r_idx[point], idx[point]), vol[point])
    return edges, hist, hist.sum(axis=1)


def value_area_rows(hist: np.ndarray, total: np.ndarray, value_area: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value area of many rows at once: (poc bin, first bin, last bin).

    The area grows from the POC bin one bin at a time towards the busier neighbour (both
    when equal) until it holds ``value_area`` of the volume. ``_value_area_one`` is the
    same walk for one row in plain Python (the live path); tests check they agree.
    """
    rows, bins = hist.shape
    target = value_area * total
    r = np.arange(rows)
    poc = np.argmax(hist, axis=1)
    a = poc.copy()
    b = poc.copy()
    acc = hist[r, poc].copy()
    for _ in range(bins):
        room_dn = a > 0
        room_up = b < bins - 1
        active = (acc < target) & (room_dn | room_up)
        if not active.any():
            break
        up = np.where(room_up, hist[r, np.minimum(b + 1, bins - 1)], -1.0)
        dn = np.where(room_dn, hist[r, np.maximum(a - 1, 0)], -1.0)
        take_up = active & (up >= dn)
        take_dn = active & (dn >= up)
        acc = acc + np.where(take_up, up, 0.0) + np.where(take_dn, dn, 0.0)
        b = b + take_up
        a = a - take_dn
    return poc, a, b


def _value_area_one(hist: list[float], total: float, value_area: float) -> tuple[int, int, int]:
    bins = len(hist)
    target = value_area * total
    poc = hist.index(max(hist))
    a = b = poc
    acc = hist[poc]
    while True:
        room_dn = a > 0
        room_up = b < bins - 1
        if not (acc < target and (room_dn or room_up)):
            return poc, a, b
        up = hist[b + 1] if room_up else -1.0
        dn = hist[a - 1] if room_dn else -1.0
        take_up = up >= dn
        take_dn = dn >= up
        acc = acc + (up if take_up else 0.0) + (dn if take_dn else 0.0)
        b += take_up
        a -= take_dn


def _check_profile_args(window: int, bins: int, value_area: float) -> None:
    _check_period(window)
    _check_period(bins)
    if not 0.0 < value_area <= 1.0:
        raise ValueError(f"value_area must be in (0, 1], got {value_area}")


def volume_profile(
    high: np.ndarray,
    low: np.ndarray,
    volume: np.ndarray,
    window: int = 60,
    bins: int = 12,
    value_area: float = 0.7,
    chunk: int = 512,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(POC, VAL, VAH) arrays of the profile over the last ``window`` candles at each index.

    First value at index ``window - 1``; NaN where the window traded no volume.
    Memory is bounded by processing ``chunk`` windows at a time.
    """
    _check_profile_args(window, bins, value_area)
    h, lo, v = _f64(high, "high"), _f64(low, "low"), _f64(volume, "volume")
    _same_len(h, lo, v)
    n = len(h)
    outs = tuple(np.full(n, np.nan) for _ in range(3))
    if n < window:
        return outs
    wl, wh, wv = (sliding_window_view(a, window) for a in (lo, h, v))
    for start in range(0, len(wl), chunk):
        stop = min(start + chunk, len(wl))
        edges, hist, total = _profile_hist(wl[start:stop], wh[start:stop], wv[start:stop], bins)
        poc, a, b = value_area_rows(hist, total, value_area)
        r = np.arange(stop - start)
        res = ((edges[r, poc] + edges[r, poc + 1]) / 2.0, edges[r, a], edges[r, b + 1])
        for out, part in zip(outs, res):
            part[~(total > 0.0)] = np.nan
            out[window - 1 + start : window - 1 + stop] = part
    return outs


class VolumeProfile:
    """Incremental volume profile; O(window * bins) per update (the profile is rebuilt
    over the window each candle -- 60 x 12 by default, a few tens of microseconds)."""

    __slots__ = ("window", "bins", "value_area", "_l", "_h", "_v", "value")

    def __init__(self, window: int = 60, bins: int = 12, value_area: float = 0.7):
        _check_profile_args(window, bins, value_area)
        self.window, self.bins, self.value_area = window, bins, value_area
        self._l: deque[float] = deque(maxlen=window)
        self._h: deque[float] = deque(maxlen=window)
        self._v: deque[float] = deque(maxlen=window)
        self.value = ValueArea(NAN, NAN, NAN)

    def update(self, candle: Candle) -> ValueArea:
        self._l.append(candle.low)
        self._h.append(candle.high)
        self._v.append(candle.volume)
        if len(self._l) == self.window:
            edges, hist, total = _profile_hist(
                np.array(self._l)[None, :], np.array(self._h)[None, :],
                np.array(self._v)[None, :], self.bins,
            )
            tot = float(total[0])
            if not tot > 0.0:
                self.value = ValueArea(NAN, NAN, NAN)
            else:
                e = edges[0].tolist()
                poc, a, b = _value_area_one(hist[0].tolist(), tot, self.value_area)
                self.value = ValueArea((e[poc] + e[poc + 1]) / 2.0, e[a], e[b + 1])
        return self.value

    @property
    def ready(self) -> bool:
        return len(self._l) == self.window


# ---------------------------------------------------------------------------------------
# Returns, relative strength vs BTC, BTC return over minutes
# ---------------------------------------------------------------------------------------
def candle_return(
    close: np.ndarray,
    period: int,
    ts: np.ndarray | None = None,
    timeframe_ms: int | None = None,
) -> np.ndarray:
    """close[i] / close[i - period] - 1.

    With ``ts`` and ``timeframe_ms`` the window must span exactly ``period`` candles of
    time; across a gap the value is NaN rather than a return over a longer horizon.
    """
    period = _check_period(period)
    c = _f64(close, "close")
    out = np.full(len(c), np.nan)
    if len(c) <= period:
        return out
    out[period:] = c[period:] / c[:-period] - 1.0
    if ts is not None and timeframe_ms is not None:
        t = np.asarray(ts, dtype=np.int64)
        _same_len(t, c)
        bad = (t[period:] - t[:-period]) != period * timeframe_ms
        out[period:][bad] = np.nan
    return out


def btc_return(
    btc_close: np.ndarray,
    minutes: int = 30,
    timeframe: str = "5m",
    ts: np.ndarray | None = None,
) -> np.ndarray:
    """BTC return over ``minutes`` (30 min on 5m candles = 6 candles), gap-checked with ts."""
    return candle_return(btc_close, minutes_to_candles(minutes, timeframe), ts, timeframe_ms(timeframe))


def relative_strength(
    close: np.ndarray,
    period: int,
    ts: np.ndarray | None = None,
    btc_close: np.ndarray | None = None,
    btc_ts: np.ndarray | None = None,
    timeframe_ms: int | None = None,
) -> np.ndarray:
    """rs = symbol return - BTC return over the same ``period`` candles.

    ``btc_close=None`` means the pair is quoted in BTC, whose return against itself is 0:
    rs is then the pair's own return. With timestamps, BTC is matched by timestamp (NaN
    where BTC has no candle or its window spans a gap); without, arrays must be aligned.
    """
    own = candle_return(close, period, ts, timeframe_ms)
    if btc_close is None:
        return own
    bc = _f64(btc_close, "btc_close")
    if ts is None or btc_ts is None:
        _same_len(bc, own)
        return own - candle_return(bc, period)
    bt = np.asarray(btc_ts, dtype=np.int64)
    t = np.asarray(ts, dtype=np.int64)
    b_ret = candle_return(bc, period, bt, timeframe_ms)
    idx = np.searchsorted(bt, t)
    ok = idx < len(bt)
    ok[ok] = bt[idx[ok]] == t[ok]
    out = np.full(len(own), np.nan)
    out[ok] = own[ok] - b_ret[idx[ok]]
    return out


class Return:
    """Incremental return over ``period`` candles (gap-checked when given ``timeframe_ms``).

    ``last_ts`` is the open time of the candle the current ``value`` belongs to, so a
    consumer (RelativeStrength) can check it is reading BTC at the same moment.
    """

    __slots__ = ("period", "timeframe_ms", "_q", "value", "last_ts")

    def __init__(self, period: int, timeframe_ms: int | None = None):
        self.period = _check_period(period)
        self.timeframe_ms = timeframe_ms
        self._q: deque[tuple[int, float]] = deque(maxlen=self.period + 1)
        self.value = NAN
        self.last_ts: int | None = None

    @classmethod
    def over_minutes(cls, minutes: int, timeframe: str) -> Return:
        """Return over a span set in minutes, e.g. BTC 30m return on 5m candles."""
        return cls(minutes_to_candles(minutes, timeframe), timeframe_ms(timeframe))

    def update(self, candle: Candle) -> float:
        q = self._q
        q.append((candle.ts_ms, candle.close))
        self.last_ts = candle.ts_ms
        if len(q) <= self.period:
            self.value = NAN
        else:
            ref_ts, ref_close = q[0]
            if self.timeframe_ms is not None and candle.ts_ms - ref_ts != self.period * self.timeframe_ms:
                self.value = NAN
            else:
                self.value = candle.close / ref_close - 1.0
        return self.value

    @property
    def ready(self) -> bool:
        return not math.isnan(self.value)


class RelativeStrength:
    """Incremental rs = own return - BTC return over ``period`` candles.

    ``update(candle, btc)`` takes the shared BTC ``Return`` tracker (updated first in the
    cycle); NaN if it is not at the same candle time. ``btc=None``: BTC-quoted pair.
    """

    __slots__ = ("own", "value")

    def __init__(self, period: int, timeframe_ms: int | None = None):
        self.own = Return(period, timeframe_ms)
        self.value = NAN

    @classmethod
    def over_minutes(cls, minutes: int, timeframe: str) -> RelativeStrength:
        return cls(minutes_to_candles(minutes, timeframe), timeframe_ms(timeframe))

    def update(self, candle: Candle, btc: Return | None = None) -> float:
        r = self.own.update(candle)
        if btc is None:
            self.value = r
        elif btc.period != self.own.period:
            raise ValueError("BTC return tracker has a different period")
        elif btc.last_ts != candle.ts_ms:
            self.value = NAN
        else:
            self.value = r - btc.value
        return self.value

    @property
    def ready(self) -> bool:
        return not math.isnan(self.value)
