"""Settings group `hedge`: BTC hedge."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class HedgeGlobalSettings(BaseModel):
    """Process-wide `hedge` settings."""

    btc_hedge_enabled: bool = setting(
        False,
        "Hold an opposite position on the hedge coin's perpetual to the net long-minus-short notional (own stop); "
        "off closes the hedge.",
        group="hedge", scope="global",
    )
    btc_hedge_coin: Str = setting(
        'btc',
        "Coin whose USDT-M perpetual is the hedge instrument (default btc); it must not be in COINS.",
        group="hedge", scope="global",
    )
    btc_hedge_ratio: float = setting(
        1.0,
        "Hedge notional as a multiple of the net long-minus-short exposure (1.0 = fully offset).",
        group="hedge", scope="global", unit="x", ge=0,
    )
    btc_hedge_min_rebalance_notional: float = setting(
        10.0,
        "Smallest hedge size change worth an order; smaller differences are left alone.",
        group="hedge", scope="global", unit="USDT", ge=0,
    )
    btc_hedge_max_notional: float = setting(
        0.0,
        "Upper limit on the hedge notional; 0 = no cap.",
        group="hedge", scope="global", unit="USDT", ge=0,
    )
    btc_hedge_max_spread_bps: float = setting(
        30.0,
        "The hedge is not opened or increased while its market's bid-ask spread is wider than this; reducing it always may.",
        group="hedge", scope="global", unit="bps", ge=0,
    )
    btc_hedge_cooldown_sec: float = setting(
        30.0,
        "Minimum time between two hedge rebalancing orders.",
        group="hedge", scope="global", unit="seconds", ge=0,
    )
