"""Risk/reward settings against realised win rates.

A trade that wins ``tp`` or loses ``stop`` (fractions of the entry price) breaks even at the
win rate p* solving p (tp - fee_win) = (1 - p)(stop + fee_loss):

    p* = (stop + fee_loss) / (tp - fee_win + stop + fee_loss)

where the fees are round-trip fee rates (entry + exit). With tp = 0.8 % and stop = 2 % the
strategy must win about 72 % of the trades that reach a barrier. Realised win rates come from
triple-barrier labels (take-profits over take-profits + stops; time-outs reported apart) or
from closed trades (pnl > 0); each gets a Wilson 95 % interval and a verdict: 'above' or
'below' when the whole interval is on one side of p*, else 'inconclusive'.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["break_even_win_rate", "label_win_rates", "round_trip_fee", "trade_win_rates", "verdict",
           "wilson_interval"]


def break_even_win_rate(take_profit: float, stop: float, fee_win: float = 0.0, fee_loss: float = 0.0) -> float:
    """The win rate at which the expected return per trade is zero (after fees)."""
    if take_profit <= 0 or stop <= 0:
        raise ValueError("take_profit and stop must be > 0")
    win, loss = take_profit - fee_win, stop + fee_loss
    if win <= 0:
        return 1.0  # fees eat the whole take-profit: no win rate breaks even
    return loss / (win + loss)


def round_trip_fee(p: Any) -> float:
    """Entry plus exit fee rate from a ProfileSettings (BUY_FEE_RATE + SELL_FEE_RATE)."""
    return float(p.buy_fee_rate) + float(p.sell_fee_rate)


def wilson_interval(wins: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (nan, nan) for n = 0."""
    if n <= 0:
        return math.nan, math.nan
    p = wins / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def verdict(lo: float, hi: float, break_even: float) -> str:
    if math.isnan(lo) or math.isnan(hi):
        return "n/a"
    if lo > break_even:
        return "above"
    if hi < break_even:
        return "below"
    return "inconclusive"


def label_win_rates(labels: pd.DataFrame, take_profit: float, stop: float, fee: float = 0.0,
                    by: str = "side") -> pd.DataFrame:
    """Per ``by`` group of triple-barrier labels: counts, realised win rate with its Wilson
    interval, the break-even win rate, the edge, the mean net return per resolved signal
    (time-outs included at their return, fees subtracted) and the verdict.

    Only signals whose horizon the data covers count (column ``complete``; all count when it
    is absent). A signal in the last horizon is labelled only when it hits a barrier, so
    counting those would bias the win rate; they are reported apart, as ``late_tp`` /
    ``late_stop`` (and within ``open`` with the late signals that hit nothing)."""
    be = break_even_win_rate(take_profit, stop, fee, fee)
    rows = []
    for key, g in labels.groupby(by, sort=True):
        complete = (g["complete"].astype(bool) if "complete" in g.columns
                    else pd.Series(True, index=g.index))
        lab = g["label"].where(complete)
        late = g["label"].where(~complete)
        tp_n, sl_n = int((lab == 1).sum()), int((lab == -1).sum())
        to_n, open_n = int((lab == 0).sum()), int(lab.isna().sum())
        n = tp_n + sl_n
        lo, hi = wilson_interval(tp_n, n)
        resolved = g.loc[lab.notna(), "exit_ret"].astype(float)
        rows.append({
            by: key, "signals": len(g), "tp": tp_n, "stop": sl_n, "timeout": to_n, "open": open_n,
            "late_tp": int((late == 1).sum()), "late_stop": int((late == -1).sum()),
            "take_profit": take_profit, "stop_pct": stop, "fee": fee,
            "win_rate": tp_n / n if n else math.nan, "ci_low": lo, "ci_high": hi,
            "break_even": be, "edge": (tp_n / n - be) if n else math.nan,
            "mean_net_ret": float((resolved - fee).mean()) if len(resolved) else math.nan,
            "verdict": verdict(lo, hi, be),
        })
    return pd.DataFrame(rows)


def trade_win_rates(trades: pd.DataFrame, take_profit: float, stop: float, fee: float = 0.0,
                    by: str = "side") -> pd.DataFrame:
    """Per ``by`` group of closed trades (columns pnl, ret): wins (pnl > 0), win rate with
    its Wilson interval against the settings' break-even, the average winning and losing
    price return, and the break-even win rate those realised payoffs imply
    (avg loss / (avg win + avg loss))."""
    be = break_even_win_rate(take_profit, stop, fee, fee)
    rows = []
    for key, g in trades.groupby(by, sort=True):
        pnl = pd.to_numeric(g["pnl"], errors="coerce")
        ret = pd.to_numeric(g["ret"], errors="coerce") if "ret" in g else pd.Series(np.nan, index=g.index)
        n = int(pnl.notna().sum())
        wins = int((pnl > 0).sum())
        lo, hi = wilson_interval(wins, n)
        avg_win = float(ret[pnl > 0].mean()) if wins else math.nan
        avg_loss = float(-ret[pnl <= 0].mean()) if n - wins else math.nan
        realised_be = (avg_loss / (avg_win + avg_loss)
                       if avg_win > 0 and avg_loss > 0 else math.nan)
        rows.append({
            by: key, "trades": n, "wins": wins, "win_rate": wins / n if n else math.nan,
            "ci_low": lo, "ci_high": hi, "break_even": be, "avg_win_ret": avg_win,
            "avg_loss_ret": avg_loss, "realised_break_even": realised_be,
            "pnl": float(pnl.sum()), "verdict": verdict(lo, hi, be),
        })
    return pd.DataFrame(rows)
