"""Settings group `entry`: Entry gates and ladders."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class EntrySettings(BaseModel):
    """Per-side `entry` settings."""

    ema_ladder_fractions: float_list(ge=0, le=1) = setting(
        (0.5, 0.5),
        "Comma list: share of the entry budget for each post-only ladder order (sum <= 1).",
        group="entry", unit="fraction",
    )
    ema_ladder_offsets: float_list(ge=0, le=1) = setting(
        (0.0, 0.01),
        "Comma list: distance of each entry order from market, below for longs, above for shorts.",
        group="entry", unit="fraction of price",
    )
    enable_signal_size_scaling: bool = setting(
        False,
        "Scale the entry budget by signal score between the min and max signal budget multipliers.",
        group="entry",
    )
    signal_budget_min_multiplier: float = setting(
        1.0,
        "Budget multiplier for a score of 0 when signal size scaling is on.",
        group="entry", unit="x", ge=0,
    )
    signal_budget_max_multiplier: float = setting(
        1.0,
        "Budget multiplier at or above SIGNAL_SCORE_REFERENCE; not below the minimum.",
        group="entry", unit="x", ge=0,
    )
    signal_score_reference: float = setting(
        1.0,
        "Score at which signal size scaling reaches the maximum multiplier.",
        group="entry", unit="score", gt=0,
    )
    entry_min_score: float = setting(
        0.03,
        "Minimum penalty-adjusted signal score for a new entry.",
        group="entry", unit="score", ge=0,
    )
    entry_min_rs60_abs: float = setting(
        0.002,
        "Minimum rs60 in the trade direction for a new entry; shortfall is penalised.",
        group="entry", unit="fraction", ge=0, le=1,
    )
    entry_min_rs30_abs: float = setting(
        0.001,
        "Minimum rs30 in the trade direction for a new entry; shortfall is penalised.",
        group="entry", unit="fraction", ge=0, le=1,
    )
    entry_macro_invalid_penalty: float = setting(
        0.018,
        "Score penalty when the macro EMA layer is not aligned (a very large value makes it a hard gate).",
        group="entry", unit="score", ge=0,
    )
    entry_pullback_invalid_penalty: float = setting(
        0.006,
        "Score penalty when pullback recovery is missing.",
        group="entry", unit="score", ge=0,
    )
    entry_trigger_invalid_penalty: float = setting(
        0.018,
        "Score penalty when the trigger EMA layer is not aligned.",
        group="entry", unit="score", ge=0,
    )
    entry_btc_invalid_penalty: float = setting(
        0.012,
        "Score penalty when the BTC 30-minute return filter fails.",
        group="entry", unit="score", ge=0,
    )
    entry_btc_return_penalty_multiplier: float = setting(
        4.0,
        "Extra score penalty per unit of BTC 30-minute return beyond the BTC filter threshold.",
        group="entry", unit="x", ge=0,
    )
    entry_market_structure_invalid_penalty: float = setting(
        0.02,
        "Score penalty when market structure (chop or volume) is invalid.",
        group="entry", unit="score", ge=0,
    )
    entry_volume_invalid_penalty: float = setting(
        0.012,
        "Score penalty when volume confirmation fails.",
        group="entry", unit="score", ge=0,
    )
    entry_chop_invalid_penalty: float = setting(
        0.012,
        "Score penalty when the choppiness filter fails.",
        group="entry", unit="score", ge=0,
    )
    entry_rs60_shortfall_penalty_multiplier: float = setting(
        12.0,
        "Score penalty per unit of rs60 below ENTRY_MIN_RS60_ABS.",
        group="entry", unit="x", ge=0,
    )
    entry_rs30_shortfall_penalty_multiplier: float = setting(
        24.0,
        "Score penalty per unit of rs30 below ENTRY_MIN_RS30_ABS.",
        group="entry", unit="x", ge=0,
    )
    entry_quality_budget_min_multiplier: float = setting(
        0.35,
        "Lowest entry budget multiplier for weak-scoring entries (quality budget scaling).",
        group="entry", unit="fraction", ge=0, le=1,
    )
    entry_quality_budget_reference: float = setting(
        0.06,
        "Score at or above which an entry gets the full budget; below it the budget shrinks.",
        group="entry", unit="score", gt=0,
    )
    entry_max_new_ladders_per_signal: int = setting(
        5,
        "Maximum new entry ladders opened per signal cycle (best scores first).",
        group="entry", unit="count", ge=1,
    )
    entry_rate_limit_ladders: int = setting(
        10,
        "Maximum new entry ladders per ENTRY_RATE_LIMIT_WINDOW_MINUTES.",
        group="entry", unit="count", ge=1,
    )
    entry_rate_limit_window_minutes: float = setting(
        60.0,
        "Rolling window for ENTRY_RATE_LIMIT_LADDERS.",
        group="entry", unit="minutes", gt=0,
    )
    entry_crowded_signal_fraction: float = setting(
        0.3,
        "Share of symbols signalling at once at which the market counts as crowded.",
        group="entry", unit="fraction", ge=0, le=1,
    )
    entry_crowded_min_signals: int = setting(
        12,
        "Minimum number of simultaneous signals before crowded mode can apply.",
        group="entry", unit="count", ge=1,
    )
    entry_crowded_max_new_ladders_per_signal: int = setting(
        3,
        "Maximum new entry ladders per signal cycle while the market is crowded.",
        group="entry", unit="count", ge=1,
    )
    entry_crowded_min_score: float = setting(
        0.04,
        "Minimum signal score for a new entry while the market is crowded.",
        group="entry", unit="score", ge=0,
    )
    entry_crowded_min_rs60_abs: float = setting(
        0.003,
        "Minimum directional rs60 for a new entry while the market is crowded.",
        group="entry", unit="fraction", ge=0, le=1,
    )
    entry_crowded_min_rs30_abs: float = setting(
        0.0015,
        "Minimum directional rs30 for a new entry while the market is crowded.",
        group="entry", unit="fraction", ge=0, le=1,
    )
    entry_spread_filter_enabled: bool = setting(
        True,
        "Block new entries when the HTX order-book bid-ask spread is too wide.",
        group="entry",
    )
    entry_spread_filter_max_bps: float = setting(
        30.0,
        "Maximum HTX bid-ask spread allowed for a new entry.",
        group="entry", unit="bps", ge=0,
    )
    entry_spread_filter_block_if_unavailable: bool = setting(
        False,
        "Block new entries when the HTX order book cannot be read; off = allow.",
        group="entry",
    )
    max_unhealthy_positions_for_new_entries: int = setting(
        2,
        "No new entries while more positions than this are unhealthy: signal no longer valid, or down by "
        "EMA_AVERAGING_MIN_DRAWDOWN_STEP or more.",
        group="entry", unit="count", ge=0,
    )
