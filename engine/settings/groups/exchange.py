"""Settings group `exchange`: Exchange connection."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import AlwaysOn, ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class ExchangeGlobalSettings(BaseModel):
    """Process-wide `exchange` settings."""

    quote_currency: Literal["USDT"] = setting(
        'USDT',
        "Quote and margin currency of traded contracts; one of: USDT.",
        group="exchange", scope="global",
    )
    enable_rate_limit: AlwaysOn = setting(
        True,
        "Keep ccxt's built-in request rate limiter on (strongly recommended).",
        group="exchange", scope="global",
    )
    timeout_ms: int = setting(
        30000,
        "HTTP timeout for each exchange REST request.",
        group="exchange", scope="global", unit="ms", gt=0,
    )
    default_type: Literal["swap"] = setting(
        'swap',
        "ccxt market type used for trading; one of: swap.",
        group="exchange", scope="global",
    )
    set_position_mode_on_start: bool = setting(
        True,
        "At live start switch HTX from hedge to one-way position mode (refused by HTX while orders or positions exist); off = refuse to start in hedge mode.",
        group="exchange", scope="global",
    )
    set_leverage_on_start: bool = setting(
        False,
        "At live start set ACCOUNT_LEVERAGE (LEVERAGE if 0) on each traded HTX contract; off = never change it (a differing ACCOUNT_LEVERAGE refuses to start).",
        group="exchange", scope="global",
    )
    contract_hostnames: WordList = setting(
        ('api.hbdm.com', 'api.hbdm.vn'),
        "Comma list of HTX contract API hostnames to use, tried in order (e.g. api.hbdm.com).",
        group="exchange", scope="global",
    )
    market_load_retries: int = setting(
        4,
        "How often one markets load is retried on a network or exchange error (short growing pause) before the "
        "start reports it and tries again later.",
        group="exchange", scope="global", unit="count", ge=0,
    )
    markets_cache_max_age_sec: int = setting(
        604800,
        "Maximum age of the cached markets file before markets are reloaded from the exchange; 0 = never use "
        "the cache (fetched at every start).",
        group="exchange", scope="global", unit="seconds", ge=0,
    )
    foreign_orders_on_start: Literal["refuse", "warn"] = setting(
        'refuse',
        "Live start with open orders whose client ids this bot never issued (another bot on the keys): refuse to start, or warn; one of: refuse, warn.",
        group="exchange", scope="global",
    )
    stop_trigger_price_type: Literal["last", "mark"] = setting(
        'last',
        "Price that fires the exchange-side stop on HTX (sl_trigger_price_type): last trade (HTX default) or mark; one of: last, mark.",
        group="exchange", scope="global",
    )
    margin_mode: Literal["cross"] = setting(
        'cross',
        "Account margin mode the bot expects and trades with; one of: cross.",
        group="exchange", scope="global",
    )
    position_mode: Literal["one-way"] = setting(
        'one-way',
        "Account position mode the bot expects and trades with; one of: one-way.",
        group="exchange", scope="global",
    )
