"""Settings group `averaging`: Averaging."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class AveragingSettings(BaseModel):
    """Per-side `averaging` settings."""

    ema_averaging_enabled: bool = setting(
        True,
        "Allow adding to an open losing position (at most EMA_MAX_AVERAGING_STAGES times).",
        group="averaging",
    )
    ema_averaging_drawdown_step: float = setting(
        0.01,
        "Configured drawdown per averaging stage; stage k needs k times this (or its AVERAGING_DRAWDOWN_STEPS entry).",
        group="averaging", unit="fraction of price", ge=0, le=1,
    )
    ema_averaging_min_drawdown_step: float = setting(
        0.01,
        "Floor on the averaging drawdown: stage k needs at least k times this.",
        group="averaging", unit="fraction of price", ge=0, le=1,
    )
    ema_averaging_base_fraction: float = setting(
        0.5,
        "Add size per averaging stage as a fraction of the current position notional.",
        group="averaging", unit="fraction", ge=0, le=1,
    )
    ema_averaging_power: float = setting(
        1.0,
        "Legacy exponent on position growth (cost / initial notional, at least 1): each add is multiplied by "
        "growth^(power-1), within every cap; 1 = no effect.",
        group="averaging", unit="x", ge=0,
    )
    ema_averaging_interval_hours: float = setting(
        8.0,
        "Minimum time between two averaging adds on the same position.",
        group="averaging", unit="hours", ge=0,
    )
    ema_averaging_atr_enabled: bool = setting(
        False,
        "Also require drawdown of ATR rate x EMA_AVERAGING_ATR_MULTIPLIER x stage before averaging.",
        group="averaging",
    )
    ema_averaging_atr_period: int = setting(
        14,
        "ATR period used for the averaging drawdown thresholds.",
        group="averaging", unit="candles", ge=1,
    )
    ema_averaging_atr_multiplier: float = setting(
        1.0,
        "ATR multiple per stage for the optional ATR averaging threshold.",
        group="averaging", unit="x", ge=0,
    )
    ema_averaging_min_atr_multiplier: float = setting(
        1.0,
        "Always-on floor: stage k needs drawdown of at least ATR rate x this x k.",
        group="averaging", unit="x", ge=0,
    )
    ema_averaging_min_daily_volatility_fraction: float = setting(
        0.18,
        "Always-on floor: stage k needs drawdown of at least daily volatility x this x k.",
        group="averaging", unit="fraction", ge=0,
    )
    ema_averaging_require_pullback_recovery: bool = setting(
        True,
        "Average only when the pullback-recovery condition is valid, not on trigger alone.",
        group="averaging",
    )
    ema_max_averaging_stages: int = setting(
        2,
        "Maximum number of averaging adds per position (capped at 2).",
        group="averaging", unit="count", ge=0, le=2,
    )
    max_buy_stages: int = setting(
        3,
        "Maximum buy stages per position including the initial entry: at most this minus 1 averaging adds.",
        group="averaging", unit="count", ge=1, le=3,
    )
    averaging_drawdown_steps: float_list(ge=0, le=1) = setting(
        (),
        "Comma list: drawdown per averaging stage; empty = computed as max(min step, step) x stage number.",
        group="averaging", unit="fraction of price",
    )
    averaging_budget_fractions: float_list(ge=0, le=1) = setting(
        (),
        "Comma list: add size per stage; empty = computed as EMA_AVERAGING_BASE_FRACTION for every stage.",
        group="averaging", unit="fraction",
    )
    no_more_averaging_after_minutes: float = setting(
        2880.0,
        "No averaging once the position is older than this; 0 = no age limit (default = breakeven age).",
        group="averaging", unit="minutes", ge=0,
    )
