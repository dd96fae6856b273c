"""Settings group `exits`: Exits: hard stop, exit ladder, runner, breakeven, time exits."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class ExitsSettings(BaseModel):
    """Per-side `exits` settings."""

    ema_take_profit_markup: float = setting(
        0.01,
        "Single take-profit markup of the legacy exit ladder, used when adaptive exits are off.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    ema_exit_ladder_fractions: float_list(ge=0, le=1) = setting(
        (1.0,),
        "Comma list: legacy exit ladder fractions (adaptive exits off; also the controlled-loss ladder).",
        group="exits", unit="fraction",
    )
    ema_adaptive_exit_enabled: bool = setting(
        True,
        "Pick the normal, medium or heavy exit ladder by position notional / initial notional.",
        group="exits",
    )
    ema_exit_normal_ladder_fractions: float_list(ge=0, le=1) = setting(
        (0.35, 0.25, 0.25, 0.15),
        "Comma list: position share per exit order of the normal ladder (sum <= 1).",
        group="exits", unit="fraction",
    )
    ema_exit_normal_ladder_markups: float_list(ge=0, le=1) = setting(
        (0.008, 0.016, 0.03, 0.05),
        "Comma list: profit markup from entry price of each normal-ladder exit order.",
        group="exits", unit="fraction of price",
    )
    ema_exit_medium_ladder_fractions: float_list(ge=0, le=1) = setting(
        (0.45, 0.3, 0.15, 0.1),
        "Comma list: position share per exit order of the medium ladder (sum <= 1).",
        group="exits", unit="fraction",
    )
    ema_exit_medium_ladder_markups: float_list(ge=0, le=1) = setting(
        (0.004, 0.01, 0.02, 0.035),
        "Comma list: profit markup from entry price of each medium-ladder exit order.",
        group="exits", unit="fraction of price",
    )
    ema_exit_heavy_ladder_fractions: float_list(ge=0, le=1) = setting(
        (0.6, 0.25, 0.15),
        "Comma list: position share per exit order of the heavy ladder (sum <= 1).",
        group="exits", unit="fraction",
    )
    ema_exit_heavy_ladder_markups: float_list(ge=0, le=1) = setting(
        (0.003, 0.008, 0.015),
        "Comma list: profit markup from entry price of each heavy-ladder exit order.",
        group="exits", unit="fraction of price",
    )
    ema_exit_medium_position_ratio: float = setting(
        1.3,
        "Position/initial notional above which the medium exit ladder replaces the normal one.",
        group="exits", unit="x", ge=1,
    )
    ema_exit_heavy_position_ratio: float = setting(
        1.8,
        "Position/initial notional above which the heavy exit ladder is used; not below the medium ratio.",
        group="exits", unit="x", ge=1,
    )
    ema_exit_decay_first_markup_after_hours: float = setting(
        2.0,
        "After holding this long, the first exit markup is capped at EMA_EXIT_DECAY_FIRST_MARKUP_CAP.",
        group="exits", unit="hours", ge=0,
    )
    ema_exit_decay_first_markup_cap: float = setting(
        0.008,
        "Cap on the first exit markup once the first decay age is reached.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    ema_exit_decay_max_markup_after_hours: float = setting(
        6.0,
        "After holding this long, all exit markups are capped and the runner is no longer used.",
        group="exits", unit="hours", ge=0,
    )
    ema_exit_decay_max_markup: float = setting(
        0.03,
        "Cap on every exit markup once the max-markup decay age is reached.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    ema_exit_runner_enabled: bool = setting(
        True,
        "Keep the last part of the normal ladder as a runner that trails instead of a fixed order.",
        group="exits",
    )
    ema_exit_runner_activation_markup: float = setting(
        0.02,
        "Profit at which the runner starts trailing.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    ema_exit_runner_trailing_pullback: float = setting(
        0.01,
        "Pullback from the best price that closes an active runner.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    ema_exit_runner_take_profit_markup: float = setting(
        0.05,
        "Profit at which the runner is closed outright.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    ema_exit_trailing_enabled: bool = setting(
        True,
        "Trailing mode: a fixed fraction exits at the first markup, the rest trails (normal ladder only).",
        group="exits",
    )
    ema_exit_trailing_fixed_fraction: float = setting(
        0.3,
        "Share of the position taken at the first markup in trailing mode; the rest trails.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    ema_exit_trailing_activation_markup: float = setting(
        0.02,
        "Profit at which the trailing part starts trailing.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    ema_exit_trailing_pullback: float = setting(
        0.01,
        "Base pullback from the best price that closes the trailing part.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    ema_exit_trailing_atr_multiplier: float = setting(
        1.5,
        "Widen the trailing pullback to ATR rate times this, kept within the min/max pullback.",
        group="exits", unit="x", ge=0,
    )
    ema_exit_trailing_min_pullback: float = setting(
        0.006,
        "Lower bound of the ATR-widened trailing pullback.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    ema_exit_trailing_max_pullback: float = setting(
        0.03,
        "Upper bound of the ATR-widened trailing pullback; not below the minimum.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    ema_exit_trailing_take_profit_markup: float = setting(
        0.05,
        "Profit at which the trailing part is closed outright.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    ema_exit_runner_profit_lock_enabled: bool = setting(
        True,
        "Move the hard stop to breakeven (plus fees) once the runner has activated.",
        group="exits",
    )
    ema_exit_runner_use_aggressive_limit: bool = setting(
        True,
        "Close a hit runner with a reduce-only limit at the current price (rounded to fill) instead of market; "
        "unfilled by the next cycle: market.",
        group="exits",
    )
    ema_breakeven_enabled: bool = setting(
        True,
        "After EMA_BREAKEVEN_AFTER_HOURS, stop adding and replace the exit ladder by an exit at breakeven.",
        group="exits",
    )
    ema_breakeven_after_hours: float = setting(
        48.0,
        "Holding time after which the position switches to breakeven exit mode.",
        group="exits", unit="hours", ge=0,
    )
    ema_breakeven_reprice_minutes: float = setting(
        15.0,
        "How often the breakeven exit is re-checked: price (entry + fees + buffer) and size recomputed, "
        "re-placed only where they differ.",
        group="exits", unit="minutes", gt=0,
    )
    ema_breakeven_fee_buffer: float = setting(
        0.0002,
        "Markup over entry price (on top of fees) for the breakeven exit order.",
        group="exits", unit="fraction of price", ge=0, le=0.1,
    )
    ema_breakeven_exit_fractions: float_list(ge=0, le=1) = setting(
        (1.0,),
        "Comma list: position share per breakeven exit order (sum <= 1).",
        group="exits", unit="fraction",
    )
    time_exit_after_minutes: float = setting(
        2880.0,
        "Holding time after which the time exit (breakeven mode) begins, scaled by the macro overlay (inferred)",
        group="exits", unit="minutes", ge=0,
    )
    urgent_time_exit_after_minutes: float = setting(
        0.0,
        "Holding time after which the whole position is closed reduce-only at market; 0 = off.",
        group="exits", unit="minutes", ge=0,
    )
    hard_time_exit_after_minutes: float = setting(
        5760.0,
        "Holding time after which the bounded-loss hard time exit starts closing the position.",
        group="exits", unit="minutes", ge=0,
    )
    hard_time_exit_close_fraction: float = setting(
        0.25,
        "Share of the position closed when the hard time exit starts.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    hard_time_exit_step_minutes: float = setting(
        720.0,
        "Interval after which the hard time exit closes a further share.",
        group="exits", unit="minutes", ge=0,
    )
    hard_time_exit_fraction_step: float = setting(
        0.25,
        "Share added to the hard time exit at each step.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    hard_time_exit_max_loss_on_notional: float = setting(
        0.03,
        "Largest loss, as a fraction of notional, the hard time exit may accept.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    hard_time_exit_bypass_profit_bank: bool = setting(
        True,
        "On: the hard time exit takes its bounded loss without the profit bank; off: a losing step closes "
        "only what the bank pays for.",
        group="exits",
    )
    hard_stop_loss_enabled: bool = setting(
        True,
        "Place a reduce-only stop-loss order on the exchange as soon as a position exists.",
        group="exits",
    )
    hard_stop_attach_to_entry: bool = setting(
        True,
        "Send each entry and averaging order with its stop attached (HTX order-level SL), so the venue protects a fill before the next poll.",
        group="exits",
    )
    hard_stop_loss_pct: float = setting(
        0.02,
        "Fixed hard-stop distance from the average entry price, as a fraction (0.02 = 2%).",
        group="exits", unit="fraction of price", gt=0, le=1,
    )
    hard_stop_loss_min_emergency_pct: float = setting(
        0.04,
        "Adverse move from entry, as a fraction (0.04 = 4%), at which a position whose stop could not be "
        "placed is closed at market before the bounded time.",
        group="exits", unit="fraction of price", gt=0, le=1,
    )
    hard_stop_unprotected_close_after_sec: float = setting(
        60.0,
        "A position whose stop cannot be placed this long (retried with backoff meanwhile) is closed reduce-only at market.",
        group="exits", unit="seconds", ge=0,
    )
    hard_stop_loss_atr_enabled: bool = setting(
        True,
        "Widen the hard stop to ATR rate x multiplier when that is larger, capped by the ATR max.",
        group="exits",
    )
    hard_stop_loss_atr_multiplier: float = setting(
        2.0,
        "ATR multiple for the widened hard-stop distance.",
        group="exits", unit="x", ge=0,
    )
    hard_stop_loss_atr_max_pct: float = setting(
        0.03,
        "Cap on the ATR part of the hard-stop distance, as a fraction of price (0.03 = 3%).",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    soft_defensive_exit_enabled: bool = setting(
        True,
        "Exit step by step when the signal breaks, drawdown is large enough and BTC moves against the trade.",
        group="exits",
    )
    soft_defensive_exit_min_drawdown: float = setting(
        0.02,
        "Minimum adverse move from entry before a soft defensive exit can start.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    soft_defensive_exit_btc_against_return: float = setting(
        0.003,
        "BTC 30-minute move against the trade required for a soft defensive exit; 0 = not required.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    soft_defensive_exit_confirmations: int = setting(
        2,
        "Consecutive signal updates meeting the conditions before the soft defensive exit acts.",
        group="exits", unit="count", ge=1,
    )
    soft_defensive_exit_initial_fraction: float = setting(
        0.33,
        "Share of the position closed by the first soft defensive exit order.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    soft_defensive_exit_step_fraction: float = setting(
        0.33,
        "Share added at each soft defensive re-price while conditions persist.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    soft_defensive_exit_max_fraction: float = setting(
        1.0,
        "Largest total share the soft defensive exit may close.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    soft_defensive_exit_reprice_minutes: float = setting(
        6.0,
        "Interval between soft defensive exit re-prices and size increases.",
        group="exits", unit="minutes", ge=0,
    )
    enable_absolute_force_exit: bool = setting(
        True,
        "Close a position reduce-only at market when it has had no resting exit order (refused, or closeable "
        "amount reserved) for ABSOLUTE_FORCE_EXIT_AFTER_MINUTES.",
        group="exits",
    )
    absolute_force_exit_after_minutes: float = setting(
        720.0,
        "How long a position may go without any resting exit order before the absolute force exit closes it; "
        "0 = off.",
        group="exits", unit="minutes", ge=0,
    )
    exit_coverage_alert_minutes: float = setting(
        30.0,
        "Report a position whose exit orders have been missing this long (log, audit trail, alert); 0 = off.",
        group="exits", unit="minutes", ge=0,
    )
    enable_controlled_loss_exit: bool = setting(
        True,
        "Close stale losing positions gradually, funding the loss from recent realized profit.",
        group="exits",
    )
    controlled_loss_after_zombie_minutes: float = setting(
        180.0,
        "How long a stalled (zombie) position waits before the controlled-loss exit may start (inferred)",
        group="exits", unit="minutes", ge=0,
    )
    controlled_loss_min_drawdown: float = setting(
        0.025,
        "Minimum adverse move from entry for the controlled-loss exit to apply (inferred)",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    controlled_loss_max_loss_on_notional: float = setting(
        0.06,
        "Largest loss, as a fraction of notional, a controlled-loss exit may accept.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    controlled_loss_max_position_fraction: float = setting(
        0.2,
        "Largest share of a position closed per controlled-loss exit.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    controlled_loss_profit_bank_today_fraction: float = setting(
        0.75,
        "Share of today's realized profit available to fund controlled losses.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    controlled_loss_profit_bank_7d_fraction: float = setting(
        0.12,
        "Share of the last 7 days' realized profit available to fund controlled losses.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    controlled_loss_min_bank_usdt: float = setting(
        5.0,
        "Controlled-loss exits need a profit bank of at least this.",
        group="exits", unit="USDT", ge=0,
    )
    controlled_loss_min_move_fraction: float = setting(
        0.1,
        "Starting fraction of the way the close price moves from entry toward the market price.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    controlled_loss_ramp_minutes: float = setting(
        1440.0,
        "Time over which the controlled-loss close price ramps to the market price.",
        group="exits", unit="minutes", ge=0,
    )
    controlled_loss_reprice_minutes: float = setting(
        60.0,
        "Interval for re-placing a stale controlled-loss exit ladder.",
        group="exits", unit="minutes", ge=0,
    )
    controlled_loss_macro_gap_reference: float = setting(
        0.02,
        "Adverse trend EMA gap at which the controlled-loss ramp reaches its maximum speed-up.",
        group="exits", unit="fraction", gt=0, le=1,
    )
    controlled_loss_macro_max_speed_multiplier: float = setting(
        2.0,
        "Maximum ramp speed-up under an adverse trend or macro overlay.",
        group="exits", unit="x", ge=1,
    )
    controlled_loss_volatility_speed_enabled: bool = setting(
        True,
        "Speed up the controlled-loss ramp during adverse local volatility spikes.",
        group="exits",
    )
    controlled_loss_volatility_reference: float = setting(
        0.0,
        "Reference volatility for spike detection; 0 = use VOLATILITY_REFERENCE.",
        group="exits", unit="fraction", ge=0,
    )
    controlled_loss_volatility_trigger_multiplier: float = setting(
        1.5,
        "Volatility/reference ratio above which the spike speed-up starts.",
        group="exits", unit="x", ge=0,
    )
    controlled_loss_volatility_max_speed_multiplier: float = setting(
        3.0,
        "Maximum ramp speed-up from a volatility spike.",
        group="exits", unit="x", ge=1,
    )
    controlled_loss_volatility_exponent: float = setting(
        2.0,
        "Steepness of the exponential ramp used during a volatility spike.",
        group="exits", unit="x", ge=1,
    )
    controlled_loss_volatility_reprice_min_move_delta: float = setting(
        0.05,
        "Re-price early during a spike once the ramp fraction grew by at least this.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    cancel_unsafe_hidden_close_orders: bool = setting(
        True,
        "Cancel reduce-only TP/trigger orders the bot did not place when they can keep its stop or exits off "
        "the venue; off: left alone, reported once.",
        group="exits",
    )
    enable_dynamic_profit_floor: bool = setting(
        False,
        "Lower the fee-based profit floor in high volatility, adverse funding or urgent time exits.",
        group="exits",
    )
    dynamic_profit_floor_volatility_multiplier_threshold: float = setting(
        1.5,
        "Daily volatility / reference at or above which the high-volatility reduction applies.",
        group="exits", unit="x", ge=0,
    )
    dynamic_profit_floor_high_vol_multiplier: float = setting(
        0.7,
        "Profit-floor multiplier in high volatility.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    dynamic_profit_floor_adverse_funding_multiplier: float = setting(
        0.6,
        "Profit-floor multiplier when funding is adverse to the position.",
        group="exits", unit="fraction", ge=0, le=1,
    )
    dynamic_profit_floor_urgent_multiplier: float = setting(
        0.4,
        "Profit-floor multiplier for the exit ladder of the rest of the position while the hard time exit "
        "runs (ENABLE_DYNAMIC_PROFIT_FLOOR).",
        group="exits", unit="fraction", ge=0, le=1,
    )
    dynamic_profit_floor_min_rate: float = setting(
        0.0,
        "The dynamic profit floor never goes below this.",
        group="exits", unit="fraction of price", ge=0, le=1,
    )
    enable_funding_aware_exit: bool = setting(
        False,
        "Adjust exit markups by the current funding rate.",
        group="exits",
    )
    funding_cache_ttl_sec: int = setting(
        300,
        "How long a fetched funding rate is reused.",
        group="exits", unit="seconds", ge=0,
    )
    funding_positive_threshold: float = setting(
        0.0001,
        "Funding rate at or above which funding counts as positive (adverse for longs).",
        group="exits", unit="fraction", ge=-1, le=1,
    )
    funding_negative_threshold: float = setting(
        -0.0001,
        "Funding rate at or below which funding counts as negative (adverse for shorts).",
        group="exits", unit="fraction", ge=-1, le=1,
    )
    funding_positive_markup_multiplier: float = setting(
        0.75,
        "Exit markup multiplier when the position pays funding: a long at or above the positive "
        "threshold, a short at or below the negative one (inferred)",
        group="exits", unit="x", gt=0,
    )
    funding_negative_markup_multiplier: float = setting(
        1.15,
        "Exit markup multiplier when the position receives funding: a long at or below the "
        "negative threshold, a short at or above the positive one (inferred)",
        group="exits", unit="x", gt=0,
    )
