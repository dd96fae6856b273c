"""Settings group `signal`: Signal: EMA map, relative strength, market structure."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class SignalSettings(BaseModel):
    """Per-side `signal` settings."""

    timeframe: Timeframe = setting(
        '5m',
        "Base candle timeframe (the reference's key): sets EMA_TRIGGER_TIMEFRAME when that is not given; "
        "one of: 1m, 5m, 15m, 30m, 1h, 4h, 1d.",
        group="signal",
    )
    rs_fast_window: int = setting(
        30,
        "Short window for relative strength vs BTC (rs30) and the BTC 30-minute return.",
        group="signal", unit="minutes", gt=0,
    )
    rs_slow_window: int = setting(
        60,
        "Long window for relative strength vs BTC (rs60).",
        group="signal", unit="minutes", gt=0,
    )
    ema_strategy_enabled: bool = setting(
        True,
        "Enable the EMA-pullback strategy for this side; off = no new signals.",
        group="signal",
    )
    ema_macro_timeframe: Timeframe = setting(
        '1h',
        "Candle timeframe of the macro trend layer; one of: 1m, 5m, 15m, 30m, 1h, 4h, 1d.",
        group="signal",
    )
    ema_pullback_timeframe: Timeframe = setting(
        '5m',
        "Candle timeframe of the pullback layer; one of: 1m, 5m, 15m, 30m, 1h, 4h, 1d.",
        group="signal",
    )
    ema_trigger_timeframe: Timeframe = setting(
        '5m',
        "Candle timeframe of the trigger layer; one of: 1m, 5m, 15m, 30m, 1h, 4h, 1d.",
        group="signal",
    )
    ema_macro_fast_minutes: int = setting(
        2880,
        "Fast macro EMA period in minutes (2880 on 1h candles = EMA48).",
        group="signal", unit="minutes", gt=0,
    )
    ema_macro_slow_minutes: int = setting(
        7200,
        "Slow macro EMA period in minutes (7200 on 1h candles = EMA120); must exceed the fast one.",
        group="signal", unit="minutes", gt=0,
    )
    ema_pullback_fast_minutes: int = setting(
        120,
        "Fast pullback EMA period in minutes (120 on 5m candles = EMA24).",
        group="signal", unit="minutes", gt=0,
    )
    ema_pullback_slow_minutes: int = setting(
        360,
        "Slow pullback EMA period in minutes (360 on 5m candles = EMA72).",
        group="signal", unit="minutes", gt=0,
    )
    ema_pullback_recovery_lookback_minutes: int = setting(
        720,
        "How far back to look for the pullback (pullback EMAs against the trade) before recovery.",
        group="signal", unit="minutes", gt=0,
    )
    ema_pullback_recovery_max_cross_age_minutes: int = setting(
        180,
        "Maximum age of the pullback EMAs' recovery cross back in the trade direction.",
        group="signal", unit="minutes", gt=0,
    )
    ema_pullback_recovery_gap: float = setting(
        0.001,
        "Minimum gap between pullback EMAs (relative to slow EMA) to count as recovered.",
        group="signal", unit="fraction", ge=0, le=1,
    )
    ema_entry_require_pullback_recovery: bool = setting(
        False,
        "Make pullback recovery a hard entry gate; off = missing recovery only lowers the score.",
        group="signal",
    )
    ema_chop_filter_enabled: bool = setting(
        True,
        "Require non-choppy trigger candles (choppiness <= EMA_CHOP_MAX) for entries and averaging.",
        group="signal",
    )
    ema_chop_period: int = setting(
        14,
        "Choppiness index period on trigger candles.",
        group="signal", unit="candles", ge=2,
    )
    ema_chop_max: float = setting(
        61.8,
        "Maximum choppiness index allowed; higher values mean a sideways market.",
        group="signal", unit="percent-like index", ge=0, le=100,
    )
    ema_volume_confirmation_enabled: bool = setting(
        True,
        "Require recent volume confirmation (ratio, spike and profile checks) for entries and averaging.",
        group="signal",
    )
    ema_volume_short_window: int = setting(
        5,
        "Recent window of trigger candles whose average volume is compared with the base.",
        group="signal", unit="candles", ge=1,
    )
    ema_volume_long_window: int = setting(
        20,
        "Base window of trigger candles for the average volume; not shorter than the short window.",
        group="signal", unit="candles", ge=1,
    )
    ema_volume_min_ratio: float = setting(
        1.05,
        "Minimum recent/base average volume ratio for volume confirmation.",
        group="signal", unit="x", ge=0,
    )
    ema_volume_min_directional_fraction: float = setting(
        0.0,
        "Minimum share of recent volume on candles closing in the trade direction; 0 = no check.",
        group="signal", unit="fraction", ge=0, le=1,
    )
    ema_volume_spike_filter_enabled: bool = setting(
        True,
        "Evaluate single-candle volume spikes: aligned ones can confirm, adverse ones can block.",
        group="signal",
    )
    ema_volume_spike_window: int = setting(
        5,
        "Recent trigger candles searched for the largest single-candle volume spike.",
        group="signal", unit="candles", ge=1,
    )
    ema_volume_spike_min_ratio: float = setting(
        1.8,
        "Spike/base volume ratio at which a spike in the trade direction confirms recovery.",
        group="signal", unit="x", ge=0,
    )
    ema_volume_adverse_spike_min_ratio: float = setting(
        2.0,
        "Spike/base volume ratio at which a spike against the trade counts as adverse.",
        group="signal", unit="x", ge=0,
    )
    ema_volume_profile_filter_enabled: bool = setting(
        True,
        "Block when an adverse volume spike breaks the volume-profile value area against the trade.",
        group="signal",
    )
    ema_volume_profile_window: int = setting(
        60,
        "Trigger candles used to build the volume profile.",
        group="signal", unit="candles", ge=1,
    )
    ema_volume_profile_bins: int = setting(
        12,
        "Number of price bins in the volume profile.",
        group="signal", unit="count", ge=2,
    )
    ema_volume_profile_value_area: float = setting(
        0.7,
        "Share of profile volume around the point of control that forms the value area.",
        group="signal", unit="fraction", ge=0.1, le=1,
    )
    ema_trigger_fast_minutes: int = setting(
        120,
        "Fast trigger EMA period in minutes (120 on 5m candles = EMA24).",
        group="signal", unit="minutes", gt=0,
    )
    ema_trigger_slow_minutes: int = setting(
        360,
        "Slow trigger EMA period in minutes (360 on 5m candles = EMA72).",
        group="signal", unit="minutes", gt=0,
    )
    ema_use_rs_confirmation: bool = setting(
        True,
        "Require relative strength vs BTC over 60 min in the trade direction (EMA_LONG_MIN/SHORT_MAX_RS60).",
        group="signal",
    )
    ema_long_min_rs60: float = setting(
        0.0,
        "Long signals need rs60 (coin minus BTC log return over 60 min) at or above this.",
        group="signal", unit="fraction", ge=-1, le=1,
    )
    ema_short_max_rs60: float = setting(
        0.0,
        "Short signals need rs60 (coin minus BTC log return over 60 min) at or below this.",
        group="signal", unit="fraction", ge=-1, le=1,
    )
    ema_use_btc_risk_filter: bool = setting(
        True,
        "Require a BTC 30-minute return not strongly against the trade (EMA_BTC_*_RETURN_30M).",
        group="signal",
    )
    ema_btc_long_min_return_30m: float = setting(
        -0.0025,
        "Long signals need the BTC 30-minute return at or above this.",
        group="signal", unit="fraction", ge=-1, le=1,
    )
    ema_btc_short_max_return_30m: float = setting(
        0.0025,
        "Short signals need the BTC 30-minute return at or below this.",
        group="signal", unit="fraction", ge=-1, le=1,
    )
    signal_ema_gap_weight: float = setting(
        1.0,
        "Weight of the directional EMA gap in the signal score (inferred)",
        group="signal", unit="x", ge=0,
    )
