"""Settings group `account`: Account-PnL guard."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class AccountSettings(BaseModel):
    """Per-side `account` settings."""

    account_pnl_enabled: bool = setting(
        True,
        "Track the shared account open-PnL series (both profiles); off = no profit unload, account averaging guard or account trailing stop.",
        group="account",
    )
    account_pnl_window_minutes: float = setting(
        360.0,
        "Length of the rolling account-PnL history used for percentiles, peaks and troughs (kept across restarts).",
        group="account", unit="minutes", gt=0,
    )
    account_pnl_sample_interval_sec: float = setting(
        30.0,
        "Interval between account-PnL samples; 0 = sample every cycle.",
        group="account", unit="seconds", ge=0,
    )
    account_profit_unload_enabled: bool = setting(
        False,
        "Partly close profitable positions reduce-only at market when account PnL is near the top of its recent range.",
        group="account",
    )
    account_profit_unload_min_pnl_quote: float = setting(
        5.0,
        "Account open PnL must be at least this for a profit unload.",
        group="account", unit="USDT", ge=0,
    )
    account_profit_unload_min_pnl_rate: float = setting(
        0.002,
        "Account open PnL must be at least this fraction of open notional for a profit unload.",
        group="account", unit="fraction", ge=0, le=1,
    )
    account_profit_unload_percentile: float = setting(
        0.75,
        "Account PnL must be at or above this percentile of its window for a profit unload.",
        group="account", unit="fraction", ge=0, le=1,
    )
    account_profit_unload_fraction: float = setting(
        0.25,
        "Share of each qualifying position closed by a profit unload, rounded down to the contract step.",
        group="account", unit="fraction", ge=0, le=1,
    )
    account_profit_unload_drawdown_fraction: float = setting(
        0.5,
        "Larger share closed when account PnL has fallen from its peak by the peak-drawdown fraction.",
        group="account", unit="fraction", ge=0, le=1,
    )
    account_profit_unload_peak_drawdown_fraction: float = setting(
        0.25,
        "Drop from the account-PnL peak, as a fraction of the peak, that triggers the larger unload.",
        group="account", unit="fraction", ge=0, le=1,
    )
    account_profit_unload_full_pnl_quote: float = setting(
        0.0,
        "Account open PnL at which qualifying positions are closed fully; 0 = off.",
        group="account", unit="USDT", ge=0,
    )
    account_profit_unload_min_position_pnl_quote: float = setting(
        0.5,
        "A position is unloaded only if its own open PnL is at least this.",
        group="account", unit="USDT", ge=0,
    )
    account_profit_unload_min_position_pnl_rate: float = setting(
        0.001,
        "A position is unloaded only if its PnL is at least this fraction of its notional.",
        group="account", unit="fraction", ge=0, le=1,
    )
    account_profit_unload_cooldown_sec: float = setting(
        300.0,
        "Minimum time between two profit unloads on the same position.",
        group="account", unit="seconds", ge=0,
    )
    account_pnl_trailing_enabled: bool = setting(
        False,
        "Close the profile's positions at market when account PnL rate falls back to the stop rate after reaching the activation rate.",
        group="account",
    )
    account_pnl_trailing_activation_rate: float = setting(
        0.05,
        "Peak account PnL rate (PnL / open notional) that arms the account trailing stop.",
        group="account", unit="fraction", ge=0, le=1,
    )
    account_pnl_trailing_stop_rate: float = setting(
        0.035,
        "Once armed, close everything when account PnL rate drops to this; keep below activation.",
        group="account", unit="fraction", ge=0, le=1,
    )
    account_pnl_trailing_min_pnl_quote: float = setting(
        0.0,
        "Account trailing stop fires only while account open PnL is at least this.",
        group="account", unit="USDT", ge=0,
    )
    account_averaging_enabled: bool = setting(
        False,
        "Allow averaging only near an account-PnL trough after it stops falling, at a scaled size.",
        group="account",
    )
    account_averaging_min_samples: int = setting(
        6,
        "Account-PnL samples needed before the averaging guard applies.",
        group="account", unit="count", ge=1,
    )
    account_averaging_percentile: float = setting(
        0.25,
        "Averaging allowed while account PnL is at or below this percentile of its window (or near trough).",
        group="account", unit="fraction", ge=0, le=1,
    )
    account_averaging_near_trough_quote: float = setting(
        3.0,
        "Account PnL within this distance above the trough counts as near the trough.",
        group="account", unit="USDT", ge=0,
    )
    account_averaging_near_trough_fraction: float = setting(
        0.1,
        "Near-trough band as a fraction of the trough size (larger of this and the quote band).",
        group="account", unit="fraction", ge=0, le=1,
    )
    account_averaging_bounce_quote: float = setting(
        1.0,
        "While still falling, wait until account PnL is this far above the trough before averaging.",
        group="account", unit="USDT", ge=0,
    )
    account_averaging_falling_guard_quote: float = setting(
        1.0,
        "Block averaging while account PnL fell by more than this since the last sample.",
        group="account", unit="USDT", ge=0,
    )
    account_averaging_falling_guard_fraction: float = setting(
        0.05,
        "Falling guard as a fraction of current account PnL (larger of this and the quote guard).",
        group="account", unit="fraction", ge=0, le=1,
    )
    account_averaging_budget_scale: float = setting(
        0.5,
        "Multiplier on averaging add size when the account-averaging guard is enabled.",
        group="account", unit="fraction", ge=0, le=1,
    )
