"""Settings group `profiles`: Profiles and coins."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import CoinList, ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class ProfilesGlobalSettings(BaseModel):
    """Process-wide `profiles` settings."""

    bot_profiles: ProfileList = setting(
        ("long", "short"),
        "Comma list of sides to run in one process; each one of: long, short.",
        group="profiles", scope="global",
    )
    coins: CoinList = setting(
        (),
        "Comma list of coins to trade, e.g. btc,eth,xrp; empty = none.",
        group="profiles", scope="global",
    )
    coins_2: CoinList = setting(
        (),
        "Optional comma list of coins traded on a second HTX account (HTX_API_KEY_2); not in COINS.",
        group="profiles", scope="global",
    )
