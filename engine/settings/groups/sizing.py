"""Settings group `sizing`: Sizing, margin caps and cooldowns."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class SizingSettings(BaseModel):
    """Per-side `sizing` settings."""

    ema_position_budget_fraction: float = setting(
        0.02,
        "Margin budget per new position as a fraction of account equity.",
        group="sizing", unit="fraction of equity", gt=0, le=1,
    )
    min_quote_reserve: float = setting(
        15.0,
        "Free margin always kept untouched; no new orders when free margin is at or below it.",
        group="sizing", unit="USDT", ge=0,
    )
    max_active_positions: int = setting(
        50,
        "Maximum positions (or pending entry ladders) open at once per profile.",
        group="sizing", unit="count", ge=1,
    )
    ema_max_position_margin_fraction: float = setting(
        0.03,
        "Cap on one position's margin (incl. pending entries) as a fraction of equity.",
        group="sizing", unit="fraction of equity", gt=0, le=1,
    )
    ema_max_total_margin_fraction: float = setting(
        0.5,
        "Cap on the margin of all positions and pending entries together as a fraction of equity.",
        group="sizing", unit="fraction of equity", gt=0, le=1,
    )
    active_position_min_notional_for_slot: float = setting(
        10.0,
        "Positions smaller than this notional do not count toward MAX_ACTIVE_POSITIONS.",
        group="sizing", unit="USDT", ge=0,
    )
    dust_position_notional: float = setting(
        10.0,
        "A position at or below this notional is dust and may be closed reduce-only at market.",
        group="sizing", unit="USDT", ge=0,
    )
    dust_close_enabled: bool = setting(
        True,
        "Close dust positions (below DUST_POSITION_NOTIONAL) with a reduce-only market order.",
        group="sizing",
    )
    tiny_entry_close_enabled: bool = setting(
        True,
        "After an entry ladder times out, close a tiny partial fill reduce-only at market.",
        group="sizing",
    )
    tiny_entry_max_notional: float = setting(
        10.0,
        "A timed-out partial entry at or below this notional counts as tiny.",
        group="sizing", unit="USDT", ge=0,
    )
    tiny_entry_max_planned_fraction: float = setting(
        0.1,
        "A timed-out partial entry at or below this share of the planned notional counts as tiny.",
        group="sizing", unit="fraction", ge=0, le=1,
    )
    leverage: int = setting(
        30,
        "Leverage used for internal sizing and notional caps; does not change the exchange setting.",
        group="sizing", unit="x", ge=1, le=200,
    )
    account_leverage: int = setting(
        0,
        "Leverage actually set on the HTX account; 0 = read it from the exchange before ordering.",
        group="sizing", unit="x", ge=0, le=200,
    )
    cooldown_minutes_after_close: float = setting(
        10.0,
        "No new entry on a symbol for this long after its position closes.",
        group="sizing", unit="minutes", ge=0,
    )
    post_win_cooldown_minutes_after_close: float = setting(
        90.0,
        "Longer re-entry cooldown on a symbol after its position closed in profit.",
        group="sizing", unit="minutes", ge=0,
    )
