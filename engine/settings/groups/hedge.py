"""Settings group `hedge`: BTC hedge."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class HedgeGlobalSettings(BaseModel):
    """Process-wide `hedge` settings."""

    btc_hedge_enabled: bool = setting(
        False,
        "Offset net long-minus-short altcoin notional with an opposite BTC perpetual position; needs both profiles.",
        group="hedge", planned=True, scope="global",
    )
    btc_hedge_coin: Str = setting(
        'btc',
        "Coin whose USDT-M perpetual is used as the hedge instrument (default btc).",
        group="hedge", planned=True, scope="global",
    )
    btc_hedge_ratio: float = setting(
        1.0,
        "Hedge notional as a multiple of the net long-minus-short exposure (1.0 = fully offset).",
        group="hedge", planned=True, scope="global", unit="x", ge=0,
    )
    btc_hedge_min_rebalance_notional: float = setting(
        10.0,
        "Smallest hedge size change worth an order; smaller differences are left alone.",
        group="hedge", planned=True, scope="global", unit="USDT", ge=0,
    )
    btc_hedge_max_notional: float = setting(
        0.0,
        "Upper limit on hedge notional; 0 = no cap (inferred)",
        group="hedge", planned=True, scope="global", unit="USDT", ge=0,
    )
    btc_hedge_max_spread_bps: float = setting(
        30.0,
        "Skip opening or increasing the hedge while the hedge market's bid-ask spread is wider than this (inferred)",
        group="hedge", planned=True, scope="global", unit="bps", ge=0,
    )
    btc_hedge_cooldown_sec: float = setting(
        30.0,
        "Minimum time between two hedge rebalancing orders.",
        group="hedge", planned=True, scope="global", unit="seconds", ge=0,
    )
