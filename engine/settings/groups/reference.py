"""Settings group `reference`: Cross-exchange reference price (MEXC by default)."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class ReferenceSettings(BaseModel):
    """Per-side `reference` settings."""

    external_price_max_price_age_ms: int = setting(
        3000,
        "A quote older than this is not valid for checks.",
        group="reference", unit="ms", gt=0, env="EXTERNAL_PRICE_MAX_PRICE_AGE_MS",
    )
    external_price_min_valid_bid_qty_usdt: float = setting(
        50.0,
        "Minimum best-bid depth notional for a book to count as valid.",
        group="reference", unit="USDT", ge=0, env="EXTERNAL_PRICE_MIN_VALID_BID_QTY_USDT",
    )
    external_price_min_valid_ask_qty_usdt: float = setting(
        50.0,
        "Minimum best-ask depth notional for a book to count as valid.",
        group="reference", unit="USDT", ge=0, env="EXTERNAL_PRICE_MIN_VALID_ASK_QTY_USDT",
    )
    external_price_max_internal_spread_bps: float = setting(
        30.0,
        "Maximum bid-ask spread within one exchange's book for it to count as valid.",
        group="reference", unit="bps", ge=0, env="EXTERNAL_PRICE_MAX_INTERNAL_SPREAD_BPS",
    )
    external_price_entry_filter_enabled: bool = setting(
        False,
        "Block entries on excessive HTX premium/discount vs the reference or 1-minute divergence.",
        group="reference", env="EXTERNAL_PRICE_ENTRY_FILTER_ENABLED",
    )
    external_price_score_penalty_multiplier: float = setting(
        0.5,
        "Score multiplier for candidates failing reference checks when the entry filter is off (inferred)",
        group="reference", unit="fraction", ge=0, le=1, env="EXTERNAL_PRICE_SCORE_PENALTY_MULTIPLIER",
    )
    external_price_max_htx_premium_for_long_bps: float = setting(
        15.0,
        "Longs are blocked when HTX trades above the reference by more than this.",
        group="reference", unit="bps", ge=0, env="EXTERNAL_PRICE_MAX_HTX_PREMIUM_FOR_LONG_BPS",
    )
    external_price_max_htx_discount_for_short_bps: float = setting(
        15.0,
        "Shorts are blocked when HTX trades below the reference by more than this.",
        group="reference", unit="bps", ge=0, env="EXTERNAL_PRICE_MAX_HTX_DISCOUNT_FOR_SHORT_BPS",
    )
    external_price_block_if_exchange_divergence_1m_bps: float = setting(
        50.0,
        "One-minute HTX vs reference divergence that puts the symbol into cooldown.",
        group="reference", unit="bps", ge=0, env="EXTERNAL_PRICE_BLOCK_IF_EXCHANGE_DIVERGENCE_1M_BPS",
    )
    external_price_block_duration_sec: int = setting(
        300,
        "Length of the symbol cooldown after a divergence block.",
        group="reference", unit="seconds", ge=0, env="EXTERNAL_PRICE_BLOCK_DURATION_SEC",
    )
    external_price_directional_1m_gate_enabled: bool = setting(
        True,
        "Block entries and averaging when the reference moved against the trade in the last minute.",
        group="reference", env="EXTERNAL_PRICE_DIRECTIONAL_1M_GATE_ENABLED",
    )
    external_price_directional_entry_1m_block_bps: float = setting(
        50.0,
        "Adverse one-minute reference move that blocks a new entry.",
        group="reference", unit="bps", ge=0, env="EXTERNAL_PRICE_DIRECTIONAL_ENTRY_1M_BLOCK_BPS",
    )
    external_price_directional_averaging_1m_block_bps: float = setting(
        50.0,
        "Adverse one-minute reference move that blocks averaging.",
        group="reference", unit="bps", ge=0, env="EXTERNAL_PRICE_DIRECTIONAL_AVERAGING_1M_BLOCK_BPS",
    )
    external_price_impulse_confirmation_enabled: bool = setting(
        True,
        "Give a score bonus when the reference leads HTX in the trade direction.",
        group="reference", env="EXTERNAL_PRICE_IMPULSE_CONFIRMATION_ENABLED",
    )
    external_price_mexc_lead_threshold_bps_30s: float = setting(
        5.0,
        "Reference move over 30 s, in the trade direction, needed for the impulse bonus.",
        group="reference", unit="bps", ge=0, env="EXTERNAL_PRICE_MEXC_LEAD_THRESHOLD_BPS_30S",
    )
    external_price_impulse_score_bonus: float = setting(
        0.02,
        "Score bonus added for a confirmed impulse.",
        group="reference", unit="score", ge=0, env="EXTERNAL_PRICE_IMPULSE_SCORE_BONUS",
    )
    external_price_require_same_direction: bool = setting(
        True,
        "Grant the impulse bonus only if HTX also moves in the trade direction (inferred)",
        group="reference", env="EXTERNAL_PRICE_REQUIRE_SAME_DIRECTION",
    )
    external_price_exit_adjustment_enabled: bool = setting(
        False,
        "Switch to the tightened exit ladder on an adverse HTX premium/discount vs the reference.",
        group="reference", env="EXTERNAL_PRICE_EXIT_ADJUSTMENT_ENABLED",
    )
    external_price_long_take_profit_tighten_if_htx_premium_bps: float = setting(
        20.0,
        "HTX premium over the reference above which long exits use the tightened ladder.",
        group="reference", unit="bps", ge=0, env="EXTERNAL_PRICE_LONG_TAKE_PROFIT_TIGHTEN_IF_HTX_PREMIUM_BPS",
    )
    external_price_short_take_profit_tighten_if_htx_discount_bps: float = setting(
        20.0,
        "HTX discount to the reference above which short exits use the tightened ladder.",
        group="reference", unit="bps", ge=0, env="EXTERNAL_PRICE_SHORT_TAKE_PROFIT_TIGHTEN_IF_HTX_DISCOUNT_BPS",
    )
    external_price_tightened_ladder_fractions: float_list(ge=0, le=1) = setting(
        (0.4, 0.3, 0.2, 0.1),
        "Comma list: position share per order of the tightened exit ladder (sum <= 1).",
        group="reference", unit="fraction", env="EXTERNAL_PRICE_TIGHTENED_LADDER_FRACTIONS",
    )
    external_price_tightened_ladder_markups: float_list(ge=0, le=1, optional_items=True) = setting(
        (0.005, 0.01, 0.02, None),
        "Comma list: markups of the tightened exit ladder; 'runner'/'none' = that part trails.",
        group="reference", unit="fraction of price", env="EXTERNAL_PRICE_TIGHTENED_LADDER_MARKUPS",
    )
    external_price_disable_trading_if_reference_stale: bool = setting(
        False,
        "Block new entries and averaging while the reference price is stale.",
        group="reference", env="EXTERNAL_PRICE_DISABLE_TRADING_IF_REFERENCE_STALE",
    )
    external_price_ignore_reference_if_stale: bool = setting(
        True,
        "Skip reference checks (instead of blocking) while the reference price is stale.",
        group="reference", env="EXTERNAL_PRICE_IGNORE_REFERENCE_IF_STALE",
    )
    external_price_stale_after_ms: int = setting(
        3000,
        "Reference data older than this counts as stale.",
        group="reference", unit="ms", gt=0, env="EXTERNAL_PRICE_STALE_AFTER_MS",
    )


class ReferenceGlobalSettings(BaseModel):
    """Process-wide `reference` settings."""

    external_price_enabled: bool = setting(
        True,
        "Enable the cross-exchange reference price feed (the venues of EXTERNAL_PRICE_REFERENCE_EXCHANGES).",
        group="reference", scope="global", env="EXTERNAL_PRICE_ENABLED",
    )
    external_price_primary_exchange: Literal["htx"] = setting(
        'htx',
        "Exchange whose prices are checked against the reference; one of: htx.",
        group="reference", scope="global", env="EXTERNAL_PRICE_PRIMARY_EXCHANGE",
    )
    external_price_reference_exchanges: WordList = setting(
        ('mexc',),
        "Comma list of ccxt ids of USDT-M perpetual venues used as price reference (public data), in order: each "
        "symbol's quote comes from the first that answers.",
        group="reference", scope="global", env="EXTERNAL_PRICE_REFERENCE_EXCHANGES",
    )
    external_price_rest_poll_interval_sec: float = setting(
        1.0,
        "Minimum time between reference best-price reads (a sooner read reuses the last quotes, with their true "
        "age); book reads at a candle close are fresh.",
        group="reference", scope="global", unit="seconds", gt=0, env="EXTERNAL_PRICE_REST_POLL_INTERVAL_SEC",
    )
    external_price_rest_timeout_sec: float = setting(
        3.0,
        "Timeout of each reference price request (per venue, per attempt).",
        group="reference", scope="global", unit="seconds", gt=0, env="EXTERNAL_PRICE_REST_TIMEOUT_SEC",
    )
