"""Settings group `secrets`: API keys (secrets)."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class SecretsGlobalSettings(BaseModel):
    """Process-wide `secrets` settings."""

    htx_api_key: SecretStr = setting(
        SecretStr(""),
        "API key of the HTX trading account (futures trading permission, withdrawals disabled).",
        group="secrets", scope="global",
    )
    htx_api_secret: SecretStr = setting(
        SecretStr(""),
        "API secret of the HTX trading account; never logged or written to files.",
        group="secrets", scope="global",
    )
    htx_api_key_2: SecretStr = setting(
        SecretStr(""),
        "Optional API key of a second HTX account that trades the coins in COINS_2; empty = none.",
        group="secrets", scope="global",
    )
    htx_api_secret_2: SecretStr = setting(
        SecretStr(""),
        "API secret of the second HTX account; never logged or written to files.",
        group="secrets", scope="global",
    )
