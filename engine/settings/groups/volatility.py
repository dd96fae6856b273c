"""Settings group `volatility`: Volatility and BTC-risk scaling."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class VolatilitySettings(BaseModel):
    """Per-side `volatility` settings."""

    enable_volatility_adjusted_ladders: bool = setting(
        False,
        "Scale entry ladder offsets by recent volatility / VOLATILITY_REFERENCE within min/max.",
        group="volatility",
    )
    volatility_window: int = setting(
        60,
        "Candles for recent realized volatility (ladder scaling and BTC risk).",
        group="volatility", unit="candles", ge=2,
    )
    volatility_reference: float = setting(
        0.0012,
        "Per-candle volatility at which the ladder volatility multiplier is 1.",
        group="volatility", unit="fraction", gt=0,
    )
    daily_volatility_window: int = setting(
        1440,
        "Candles used for daily realized volatility (1440 = one day of 1m candles).",
        group="volatility", unit="candles", ge=2,
    )
    daily_volatility_reference: float = setting(
        0.035,
        "Daily volatility regarded as normal; volatility sizing and profit floors compare to it.",
        group="volatility", unit="fraction", gt=0,
    )
    enable_volatility_targeted_sizing: bool = setting(
        False,
        "Scale entry budget by reference / daily volatility, within the volatility budget multipliers.",
        group="volatility",
    )
    min_volatility_budget_multiplier: float = setting(
        0.65,
        "Lowest budget multiplier from volatility-targeted sizing.",
        group="volatility", unit="x", ge=0, le=1,
    )
    max_volatility_budget_multiplier: float = setting(
        1.5,
        "Highest budget multiplier from volatility-targeted sizing.",
        group="volatility", unit="x", ge=1,
    )
    enable_volatility_recovery_stages: bool = setting(
        False,
        "Widen averaging drawdown thresholds by daily volatility x AVERAGING_DRAWDOWN_DAILY_VOLATILITY_FRACTION.",
        group="volatility",
    )
    averaging_drawdown_daily_volatility_fraction: float = setting(
        0.18,
        "Daily-volatility share per stage used when volatility recovery stages are on.",
        group="volatility", unit="fraction", ge=0,
    )
    min_ladder_volatility_multiplier: float = setting(
        0.75,
        "Lowest multiplier on entry ladder offsets from volatility adjustment.",
        group="volatility", unit="x", gt=0,
    )
    max_ladder_volatility_multiplier: float = setting(
        2.5,
        "Highest multiplier on entry ladder offsets from volatility adjustment; not below the minimum.",
        group="volatility", unit="x", gt=0,
    )
    enable_btc_risk_multiplier: bool = setting(
        False,
        "Shrink budgets and widen entry ladders when BTC moves against the side or is very volatile.",
        group="volatility",
    )
    btc_risk_return_window: int = setting(
        30,
        "Candles over which the BTC return is measured for the BTC risk multiplier.",
        group="volatility", unit="candles", ge=1,
    )
    btc_risk_drop_threshold: float = setting(
        -0.004,
        "BTC return at or below which longs are cut (mirrored sign for shorts).",
        group="volatility", unit="fraction", ge=-1, le=1,
    )
    btc_risk_high_vol_threshold: float = setting(
        0.0018,
        "BTC per-candle volatility at or above which budgets are cut.",
        group="volatility", unit="fraction", ge=0,
    )
    btc_risk_drop_budget_multiplier: float = setting(
        0.7,
        "Budget multiplier when BTC moves against the side past the drop threshold.",
        group="volatility", unit="fraction", ge=0, le=1,
    )
    btc_risk_vol_budget_multiplier: float = setting(
        0.8,
        "Budget multiplier when BTC volatility is above the threshold.",
        group="volatility", unit="fraction", ge=0, le=1,
    )
    btc_risk_min_budget_multiplier: float = setting(
        0.55,
        "Lower bound on the combined BTC risk budget multiplier.",
        group="volatility", unit="fraction", ge=0, le=1,
    )
    btc_risk_max_ladder_multiplier: float = setting(
        1.8,
        "Cap on entry ladder widening from BTC risk (1 + budget cut).",
        group="volatility", unit="x", ge=1,
    )
