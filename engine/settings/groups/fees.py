"""Settings group `fees`: Fees."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class FeesSettings(BaseModel):
    """Per-side `fees` settings."""

    buy_fee_rate: float = setting(
        0.0001,
        "Fee rate assumed for buy fills, used for profit floors and breakeven prices.",
        group="fees", unit="fraction", ge=0, le=0.01,
    )
    sell_fee_rate: float = setting(
        0.0001,
        "Fee rate assumed for sell fills, used for profit floors and breakeven prices.",
        group="fees", unit="fraction", ge=0, le=0.01,
    )
    min_gross_profit_floor: float = setting(
        0.0,
        "Minimum exit markup regardless of fees; the profit floor is the larger of this and the fee floor.",
        group="fees", unit="fraction of price", ge=0, le=1,
    )
    min_profit_fee_multiplier: float = setting(
        1.0,
        "Exit markups never go below (buy fee + sell fee) x this.",
        group="fees", unit="x", ge=0,
    )
