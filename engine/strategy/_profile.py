"""Value area of many symbols' volume profiles in one numpy pass (private helper).

The live engine needs the value area of every symbol after each closed candle. Rebuilding it
one symbol at a time (``engine.market.indicators.VolumeProfile``) costs tens of microseconds
per symbol, too much for hundreds of symbols; here all windows are stacked as rows and done
together.

Definition (the same as ``engine.market.indicators.volume_profile``; a test checks that both
give the same numbers on the recorded candles, so the two cannot drift apart silently):
  * the bins split [min low, max high] of the window evenly;
  * a candle's volume is spread over the bins in proportion to how much of its [low, high]
    range each bin covers; a candle with low == high puts all its volume in the bin holding
    its price;
  * the point of control (POC) is the busiest bin (the first one on ties);
  * the value area grows from the POC one bin at a time towards the busier neighbour (both
    when equal) until it holds ``value_area`` of the volume;
  * results: POC = centre of the POC bin, VAL = lower edge of the first bin, VAH = upper edge
    of the last bin; NaN where the window traded nothing.
"""

from __future__ import annotations

import threading

import numpy as np

from engine.market.indicators import value_area_rows


_LOCAL = threading.local()  # scratch buffers per thread (numpy releases the GIL)


def _buffers(rows: int, window: int, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Two (rows, window, bins) work arrays, reused between calls of the same shape."""
    cache = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {}
    key = (rows, window, bins)
    buf = cache.get(key)
    if buf is None:
        if len(cache) > 8:
            cache.clear()
        buf = cache[key] = (np.empty(key), np.empty(key))
    return buf


def value_area_batch(
    low: np.ndarray, high: np.ndarray, volume: np.ndarray, bins: int, value_area: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(poc, val, vah) per row of the (rows, window) arrays ``low``, ``high``, ``volume``."""
    rows, window = low.shape
    if rows == 0:
        empty = np.empty(0)
        return empty, empty.copy(), empty.copy()
    lo = low.min(axis=1)
    hi = high.max(axis=1)
    width = (hi - lo) / bins
    edges = lo[:, None] + width[:, None] * np.arange(bins + 1)
    edges[:, -1] = hi
    span = high - low
    # overlap of each candle's [low, high] with each bin, in reused scratch buffers
    overlap, scratch = _buffers(rows, window, bins)
    np.minimum(high[:, :, None], edges[:, None, 1:], out=overlap)
    np.maximum(low[:, :, None], edges[:, None, :-1], out=scratch)
    np.subtract(overlap, scratch, out=overlap)
    np.maximum(overlap, 0.0, out=overlap)
    flat = span <= 0.0
    per_unit = volume / np.where(flat, 1.0, span)
    per_unit[flat] = 0.0
    hist = np.einsum("rib,ri->rb", overlap, per_unit)
    if flat.any():
        safe = np.where(width > 0.0, width, 1.0)
        slot = np.clip(np.floor((low - lo[:, None]) / safe[:, None]).astype(np.int64), 0, bins - 1)
        row_of = np.broadcast_to(np.arange(rows)[:, None], low.shape)
        np.add.at(hist, (row_of[flat], slot[flat]), volume[flat])
    total = hist.sum(axis=1)

    poc, first, last = value_area_rows(hist, total, value_area)
    r = np.arange(rows)

    poc_price = (edges[r, poc] + edges[r, poc + 1]) / 2.0
    val = edges[r, first]
    vah = edges[r, last + 1]
    empty = ~(total > 0.0)
    if empty.any():
        poc_price[empty] = np.nan
        val[empty] = np.nan
        vah[empty] = np.nan
    return poc_price, val, vah
