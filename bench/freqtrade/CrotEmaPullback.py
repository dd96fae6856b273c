"""A freqtrade strategy that approximates CROT's EMA-pullback entries, for a speed benchmark.

Used by ``bench/bench_vs_freqtrade.py``; freqtrade is not a CROT dependency, so this file is
only imported by a freqtrade interpreter (it is copied into a temporary user_data/strategies).

It mirrors the shape of CROT's default signal (``.env.example``), not its trades:

- macro trend on 1h candles, EMA48 vs EMA120 (EMA_MACRO_FAST/SLOW_MINUTES=2880/7200); the 1h
  frame is resampled from the 5m candles here and merged without look-ahead by freqtrade's
  ``merge_informative_pair`` (the 1h candle is used only once it has closed);
- pullback on 5m, EMA24 vs EMA72 (EMA_PULLBACK_FAST/SLOW_MINUTES=120/360): the pullback EMAs
  were against the trend within the last 720 minutes, crossed back within the last 180 minutes
  and are at least 0.1% apart (EMA_PULLBACK_RECOVERY_*);
- trigger on 5m: close on the trade side of EMA24, choppiness(14) <= 61.8, short-window volume
  above the long-window volume (EMA_CHOP_*, EMA_VOLUME_*);
- a 2% stop (HARD_STOP_LOSS_PCT) and a minimal ROI table standing in for the exit ladder
  (EMA_EXIT_NORMAL_LADDER_MARKUPS 0.8% / 1.6% / 3% / 5%); short entries mirror long ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas import DataFrame

from freqtrade.strategy import IStrategy, merge_informative_pair


def _ema(series: pd.Series, period: int) -> pd.Series:
    return series.ewm(span=period, adjust=False).mean()


class CrotEmaPullback(IStrategy):
    INTERFACE_VERSION = 3

    timeframe = "5m"
    can_short = True

    # CROT's exit ladder sells shares at +0.8%, +1.6%, +3% and +5%; freqtrade's ROI exits the
    # whole trade, so the table takes the far rungs first and the near ones as time passes.
    minimal_roi = {"0": 0.05, "60": 0.03, "120": 0.016, "240": 0.008}
    stoploss = -0.02
    trailing_stop = False

    process_only_new_candles = True
    use_exit_signal = False
    exit_profit_only = False
    ignore_roi_if_entry_signal = False

    # EMA120 on 1h needs 120 hourly candles = 1440 five-minute candles, plus some margin.
    startup_candle_count: int = 1500

    # Minutes from .env.example, in 5m candles.
    recovery_lookback = 720 // 5
    recovery_max_cross_age = 180 // 5
    recovery_gap = 0.001
    chop_period = 14
    chop_max = 61.8
    vol_short = 5
    vol_long = 20

    order_types = {
        "entry": "limit",
        "exit": "limit",
        "stoploss": "market",
        "stoploss_on_exchange": False,
    }

    def informative_pairs(self):
        return []

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # 1h frame resampled from the 5m candles (candle open time labels, like the exchange's).
        hourly = (
            dataframe.set_index("date")[["open", "high", "low", "close", "volume"]]
            .resample("1h", label="left", closed="left")
            .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
            .dropna()
            .reset_index()
        )
        hourly["ema_fast"] = _ema(hourly["close"], 48)
        hourly["ema_slow"] = _ema(hourly["close"], 120)
        dataframe = merge_informative_pair(
            dataframe, hourly[["date", "ema_fast", "ema_slow"]], self.timeframe, "1h", ffill=True
        )

        close = dataframe["close"]
        dataframe["ema24"] = _ema(close, 24)
        dataframe["ema72"] = _ema(close, 72)
        fast, slow = dataframe["ema24"], dataframe["ema72"]
        above = fast > slow
        below = fast < slow
        cross_up = above & ~above.shift(1, fill_value=False)
        cross_down = below & ~below.shift(1, fill_value=False)
        lb, age = self.recovery_lookback, self.recovery_max_cross_age
        dataframe["was_below"] = below.rolling(lb, min_periods=1).max().astype(bool)
        dataframe["was_above"] = above.rolling(lb, min_periods=1).max().astype(bool)
        dataframe["recent_cross_up"] = cross_up.rolling(age, min_periods=1).max().astype(bool)
        dataframe["recent_cross_down"] = cross_down.rolling(age, min_periods=1).max().astype(bool)
        dataframe["gap"] = (fast - slow) / slow

        # Choppiness index: 100 * log10(sum(TR, n) / (max(high, n) - min(low, n))) / log10(n).
        n = self.chop_period
        prev_close = close.shift(1)
        tr = pd.concat(
            [dataframe["high"] - dataframe["low"], (dataframe["high"] - prev_close).abs(),
             (dataframe["low"] - prev_close).abs()], axis=1,
        ).max(axis=1)
        rng = dataframe["high"].rolling(n).max() - dataframe["low"].rolling(n).min()
        dataframe["chop"] = 100 * np.log10(tr.rolling(n).sum() / rng.replace(0, np.nan)) / np.log10(n)

        vol = dataframe["volume"]
        dataframe["vol_ok"] = vol.rolling(self.vol_short).mean() > vol.rolling(self.vol_long).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        common = (dataframe["chop"] <= self.chop_max) & dataframe["vol_ok"] & (dataframe["volume"] > 0)
        trend_up = dataframe["ema_fast_1h"] > dataframe["ema_slow_1h"]
        trend_down = dataframe["ema_fast_1h"] < dataframe["ema_slow_1h"]
        long = (
            trend_up & dataframe["was_below"] & dataframe["recent_cross_up"]
            & (dataframe["gap"] >= self.recovery_gap) & (dataframe["close"] > dataframe["ema24"])
            & common
        )
        short = (
            trend_down & dataframe["was_above"] & dataframe["recent_cross_down"]
            & (dataframe["gap"] <= -self.recovery_gap) & (dataframe["close"] < dataframe["ema24"])
            & common
        )
        dataframe.loc[long, ["enter_long", "enter_tag"]] = (1, "ema_pullback_long")
        dataframe.loc[short, ["enter_short", "enter_tag"]] = (1, "ema_pullback_short")
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # Exits come from the ROI table and the stop, as CROT's come from its ladder and stop.
        return dataframe
