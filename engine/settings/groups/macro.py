"""Settings group `macro`: Macro regime overlay (gold/BTC RSI)."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import CoinList, ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class MacroSettings(BaseModel):
    """Per-side `macro` settings."""

    enable_gold_btc_rsi_overlay: bool = setting(
        True,
        "Enable the gold (XAUT) vs BTC RSI macro overlay that adjusts budgets, ladders and exits.",
        group="macro",
    )
    gold_coins: CoinList = setting(
        ('xaut',),
        "Comma list of gold-proxy coins to use as macro input (first found is used); never traded.",
        group="macro",
    )
    gold_timeframe: Timeframe = setting(
        '4h',
        "Candle timeframe for the gold and BTC RSI; one of: 1m, 5m, 15m, 30m, 1h, 4h, 1d.",
        group="macro",
    )
    gold_rsi_period: int = setting(
        14,
        "RSI period for gold and BTC; also the window of the gold/BTC ratio return.",
        group="macro", unit="candles", ge=1,
    )
    gold_min_candles: int = setting(
        80,
        "Minimum candles of history needed before the macro overlay is computed.",
        group="macro", unit="candles", ge=1,
    )
    gold_cache_ttl_sec: int = setting(
        900,
        "How long a computed macro context is reused before recomputing.",
        group="macro", unit="seconds", ge=0,
    )
    use_direct_gold_btc_pair: bool = setting(
        False,
        "Use a direct gold/BTC market for the ratio return instead of gold/USDT divided by BTC/USDT.",
        group="macro",
    )
    direct_gold_btc_symbol: Str = setting(
        '',
        "Symbol of the direct gold/BTC market; empty = computed (looked up) from GOLD_COINS and BTC.",
        group="macro",
    )
    gold_strong_rsi: float = setting(
        60.0,
        "Gold RSI at or above which gold counts as strong.",
        group="macro", unit="RSI points", ge=0, le=100,
    )
    gold_weak_rsi: float = setting(
        40.0,
        "Gold RSI at or below which gold counts as weak.",
        group="macro", unit="RSI points", ge=0, le=100,
    )
    btc_strong_rsi: float = setting(
        60.0,
        "BTC RSI at or above which BTC counts as strong.",
        group="macro", unit="RSI points", ge=0, le=100,
    )
    btc_weak_rsi: float = setting(
        40.0,
        "BTC RSI at or below which BTC counts as weak.",
        group="macro", unit="RSI points", ge=0, le=100,
    )
    rsi_spread_threshold: float = setting(
        15.0,
        "Gold RSI minus BTC RSI at or above which crypto counts as underperforming gold (risk-off).",
        group="macro", unit="RSI points", ge=0, le=100,
    )
    risk_off_long_budget_multiplier: float = setting(
        0.55,
        "Long budget multiplier in the risk-off regime (crypto underperforms gold).",
        group="macro", unit="fraction", ge=0, le=1,
    )
    risk_off_short_budget_multiplier: float = setting(
        0.85,
        "Short budget multiplier in the risk-off regime.",
        group="macro", unit="x", ge=0,
    )
    risk_off_ladder_multiplier: float = setting(
        1.25,
        "Multiplier on entry ladder offsets in the risk-off regime (>1 widens).",
        group="macro", unit="x", ge=0,
    )
    risk_off_disable_averaging: bool = setting(
        True,
        "Disable averaging in the risk-off regime.",
        group="macro",
    )
    risk_off_time_exit_multiplier: float = setting(
        0.75,
        "Multiplier on time-exit ages in the risk-off regime (<1 exits sooner).",
        group="macro", unit="fraction", ge=0, le=1,
    )
    enable_gold_directional_bias: bool = setting(
        True,
        "Shift budget between long and short by a directional gold/BTC score.",
        group="macro",
    )
    gold_directional_bias_strength: float = setting(
        0.3,
        "How strongly the directional score changes side budgets (multiplier = 1 +/- strength x score).",
        group="macro", unit="fraction", ge=0, le=1,
    )
    gold_directional_bias_min_multiplier: float = setting(
        0.5,
        "Lowest side budget multiplier from the directional bias.",
        group="macro", unit="fraction", ge=0, le=1,
    )
    gold_directional_bias_max_multiplier: float = setting(
        1.25,
        "Highest side budget multiplier from the directional bias.",
        group="macro", unit="x", ge=1,
    )
    gold_btc_ratio_return_reference: float = setting(
        0.03,
        "Gold/BTC ratio return that counts as a full-strength move in the directional score.",
        group="macro", unit="fraction", gt=0,
    )
    panic_disable_new_entries: bool = setting(
        True,
        "Block new entries in the deleveraging regime (BTC and gold both weak).",
        group="macro",
    )
    stale_macro_max_age_sec: int = setting(
        3600,
        "Macro context older than this is ignored (treated as neutral); 0 = never stale.",
        group="macro", unit="seconds", ge=0,
    )
