"""Triple-barrier labels of signals (take-profit, stop, time), long and short.

A signal at candle ``ts_ms`` (the OPEN time of the closed candle the decision was made on)
enters at that candle's close. The path is the candles that follow, up to the time barrier:
candles opening in ``[ts_ms + tf, ts_ms + tf + horizon)`` (by time, so a gap in the data
shortens the path instead of stretching it).

Long: take-profit when a high reaches entry x (1 + tp), stop when a low reaches
entry x (1 - stop); short mirrors it (low <= entry x (1 - tp), high >= entry x (1 + stop)).

  label +1  take-profit first; return +tp (a resting limit fills at its price)
  label -1  stop first; return -stop, or worse when the candle OPENS beyond the stop (a
            stop-market order fills at the open of a gap)
  label  0  neither within the horizon; return = signed close of the last path candle
  NaN       neither, and the data ends before the horizon ('open'), or no entry candle

Same-candle ambiguity (one candle reaches both barriers; OHLC cannot tell which came first)
is resolved pessimistically: the stop. ``fwd_ret`` is the signed close-to-close return over
the full horizon whatever the barriers did (NaN when the data ends first), a second outcome
for the regressions.

``complete`` is True when the data covers the whole horizon. A signal in the last horizon of
the data keeps its label when a barrier was hit, but such signals are only kept when they hit
one (the others stay open), so win rates must count complete signals only
(``risk_reward.label_win_rates`` does and reports the others apart).

Candles must be clean: a NaN price or two candles with one open time raise ``ValueError``
(naming the symbol and the first bad time) instead of a silently wrong label.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.market.candles import Candle, OhlcvArrays, candles_to_arrays
from engine.market.feeds import FileFeed

__all__ = ["Barriers", "LABEL_COLUMNS", "label_one", "load_candles", "triple_barrier"]

LABEL_COLUMNS: tuple[str, ...] = ("entry_price", "label", "hit", "exit_ts_ms", "exit_ret", "bars", "fwd_ret",
                                  "complete")


@dataclass(frozen=True)
class Barriers:
    """Barrier widths as fractions of the entry price, and the holding time."""

    take_profit: float
    stop: float
    horizon_minutes: float
    name: str = ""

    def __post_init__(self) -> None:
        if not (self.take_profit > 0 and self.stop > 0 and self.horizon_minutes > 0):
            raise ValueError(f"barriers must be > 0: {self}")

    @classmethod
    def from_settings(cls, p: Any, take_profit: str = "first", horizon_minutes: float | None = None) -> Barriers:
        """From a ProfileSettings: the stop is HARD_STOP_LOSS_PCT, the time barrier
        HARD_TIME_EXIT_AFTER_MINUTES; the take-profit is the first normal exit markup
        (``"first"``) or the fraction-weighted mean of the normal ladder (``"ladder"``)."""
        markups = [float(m) for m in p.ema_exit_normal_ladder_markups]
        if take_profit == "first":
            tp = markups[0]
        elif take_profit == "ladder":
            fr = [float(f) for f in p.ema_exit_normal_ladder_fractions][: len(markups)]
            tp = sum(f * m for f, m in zip(fr, markups)) / sum(fr)
        else:
            raise ValueError(f"take_profit must be 'first' or 'ladder', got {take_profit!r}")
        horizon = float(horizon_minutes if horizon_minutes is not None else p.hard_time_exit_after_minutes)
        return cls(tp, float(p.hard_stop_loss_pct), horizon, name=f"{take_profit}_markup")

    @property
    def label(self) -> str:
        return self.name or f"tp{self.take_profit:g}_sl{self.stop:g}"


def label_one(side: str, entry: float, open_: np.ndarray, high: np.ndarray, low: np.ndarray,
              close: np.ndarray, tp: float, stop: float, complete: bool) -> tuple[float, str, int, float]:
    """Label one path: (label, hit, index of the exit candle or -1, exit return)."""
    if side == "long":
        tp_px, sl_px = entry * (1 + tp), entry * (1 - stop)
        hit_tp, hit_sl = high >= tp_px, low <= sl_px
    elif side == "short":
        tp_px, sl_px = entry * (1 - tp), entry * (1 + stop)
        hit_tp, hit_sl = low <= tp_px, high >= sl_px
    else:
        raise ValueError(f"side must be long or short, got {side!r}")
    n = len(close)
    k_tp = int(np.argmax(hit_tp)) if n and hit_tp.any() else n
    k_sl = int(np.argmax(hit_sl)) if n and hit_sl.any() else n
    if k_sl < n and k_sl <= k_tp:  # stop first, or both in one candle: pessimistic
        if side == "long":
            px = min(float(open_[k_sl]), sl_px)
            return -1.0, "stop", k_sl, px / entry - 1
        px = max(float(open_[k_sl]), sl_px)
        return -1.0, "stop", k_sl, 1 - px / entry
    if k_tp < n:
        return 1.0, "tp", k_tp, tp
    if not complete or n == 0:
        return math.nan, "open", -1, math.nan
    r = float(close[-1]) / entry - 1
    return 0.0, "time", n - 1, r if side == "long" else -r


def _arrays(data: pd.DataFrame | OhlcvArrays | Sequence[Candle], symbol: str = "?") -> OhlcvArrays:
    if isinstance(data, OhlcvArrays):
        a = data
    elif isinstance(data, pd.DataFrame):
        ts_col = "ts_ms" if "ts_ms" in data.columns else "timestamp_ms"
        a = OhlcvArrays(*(data[c].to_numpy() for c in (ts_col, "open", "high", "low", "close")),
                        data["volume"].to_numpy() if "volume" in data.columns else np.zeros(len(data)))
    else:
        a = candles_to_arrays(list(data))
    raw_ts = np.asarray(a.ts, dtype=float)
    if np.isnan(raw_ts).any():
        raise ValueError(f"candles of {symbol}: {int(np.isnan(raw_ts).sum())} without an open time (NaN)")
    order = np.argsort(np.asarray(a.ts, dtype=np.int64), kind="stable")
    out = OhlcvArrays(*(np.asarray(c)[order] for c in a))
    ts = np.asarray(out.ts, dtype=np.int64)
    dup = np.flatnonzero(np.diff(ts) == 0)
    if dup.size:
        raise ValueError(f"candles of {symbol}: {dup.size} duplicate open time(s), first at ts_ms={int(ts[dup[0]])}; "
                         "expected one candle per open time")
    prices = np.column_stack([np.asarray(c, dtype=float) for c in (out.open, out.high, out.low, out.close)])
    bad = np.flatnonzero(~np.isfinite(prices).all(axis=1))
    if bad.size:
        raise ValueError(f"candles of {symbol}: {bad.size} with a NaN or infinite price, first at "
                         f"ts_ms={int(ts[bad[0]])}; expected finite open/high/low/close")
    return out


def load_candles(directory: str | Path, timeframe: str = "5m",
                 symbols: Sequence[str] | None = None) -> dict[str, OhlcvArrays]:
    """Recorded trade candles of ``directory`` (file naming of engine.market.feeds), as arrays;
    ``symbols`` not recorded there are left out."""
    feed = FileFeed.from_directory(directory, timeframe=timeframe)
    wanted = set(symbols) if symbols is not None else None
    return {s: candles_to_arrays(feed.history(s)) for s in feed.symbols if wanted is None or s in wanted}


def triple_barrier(signals: pd.DataFrame, candles: Mapping[str, Any], barriers: Barriers,
                   timeframe_ms: int | None = None) -> pd.DataFrame:
    """``signals`` (columns ts_ms, symbol, side) with ``LABEL_COLUMNS`` added, same index.

    ``candles`` maps a symbol to its candles (OhlcvArrays, a DataFrame with ts_ms/open/high/
    low/close, or Candle objects). ``timeframe_ms`` defaults to the median candle spacing.
    Signals of symbols without candles, or whose candle is missing, get NaN labels and hit
    'no_data'. Raises ``ValueError`` for NaN prices or duplicate candle times.
    """
    keep = [c for c in signals.columns if c not in LABEL_COLUMNS]
    out = signals[keep].copy()
    n = len(out)
    cols = {c: np.full(n, np.nan) for c in ("entry_price", "label", "exit_ts_ms", "exit_ret", "bars", "fwd_ret")}
    hits = np.full(n, "no_data", dtype=object)
    done = np.zeros(n, dtype=bool)
    horizon_ms = int(round(barriers.horizon_minutes * 60_000))
    pos = np.arange(n)
    for symbol, idx in out.groupby("symbol", sort=False).indices.items():
        if symbol not in candles:
            continue
        a = _arrays(candles[symbol], str(symbol))
        ts = np.asarray(a.ts, dtype=np.int64)
        if ts.size == 0:
            continue
        tf = int(timeframe_ms or (np.median(np.diff(ts)) if ts.size > 1 else 300_000))
        last_open = int(ts[-1])
        sig_ts = out["ts_ms"].to_numpy()[idx].astype(np.int64)
        sides = out["side"].to_numpy()[idx]
        at = np.searchsorted(ts, sig_ts, side="left")
        ends = np.searchsorted(ts, sig_ts + tf + horizon_ms, side="left")
        for j, row in enumerate(pos[idx]):
            i = int(at[j])
            if i >= ts.size or ts[i] != sig_ts[j]:
                continue
            entry = float(a.close[i])
            s, e = i + 1, int(ends[j])
            complete = last_open >= int(sig_ts[j]) + horizon_ms  # the last path candle exists
            label, hit, k, ret = label_one(str(sides[j]), entry, a.open[s:e], a.high[s:e], a.low[s:e],
                                           a.close[s:e], barriers.take_profit, barriers.stop, complete)
            done[row] = complete
            cols["entry_price"][row] = entry
            cols["label"][row] = label
            hits[row] = hit
            cols["exit_ret"][row] = ret
            if k >= 0:
                cols["exit_ts_ms"][row] = float(ts[s + k] + tf)
                cols["bars"][row] = k + 1
            if complete and e > s:
                r = float(a.close[e - 1]) / entry - 1
                cols["fwd_ret"][row] = r if sides[j] == "long" else -r
    for c, v in cols.items():
        out[c] = v
    out["hit"] = hits
    out["complete"] = done
    return out[keep + list(LABEL_COLUMNS)]
