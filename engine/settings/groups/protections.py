"""Settings group `protections`: account protections (drawdown lock, daily-loss halt, stop-loss streak)."""

from pydantic import BaseModel

from ..fields import setting


class ProtectionsGlobalSettings(BaseModel):
    """Process-wide `protections` settings (engine/risk/protections.py)."""

    protect_max_drawdown: float = setting(
        0.15,
        "Equity this fraction below its peak in the lookback stops new entries and averaging on both sides "
        "for the cool-off (0.15 = 15%); 0 = off.",
        group="protections", scope="global", unit="fraction", ge=0, le=0.9,
    )
    protect_max_drawdown_lookback_hours: float = setting(
        72.0,
        "How far back the equity peak of the max-drawdown lock is taken from.",
        group="protections", scope="global", unit="hours", gt=0, le=24 * 90,
    )
    protect_max_drawdown_cooloff_minutes: float = setting(
        720.0,
        "How long the max-drawdown lock lasts before it lifts by itself.",
        group="protections", scope="global", unit="minutes", ge=1,
    )
    protect_daily_loss: float = setting(
        0.06,
        "Equity this fraction below its first reading of the UTC day halts new entries and averaging "
        "until 00:00 UTC (0.06 = 6%); 0 = off.",
        group="protections", scope="global", unit="fraction", ge=0, le=0.9,
    )
    protect_stoploss_streak: int = setting(
        0,
        "This many stop-loss exits of one profile in a row (within the lookback) pause its new entries "
        "and averaging for the cool-off; 0 = off (try 4).",
        group="protections", scope="global", unit="trades", ge=0, le=100,
    )
    protect_stoploss_streak_lookback_hours: float = setting(
        24.0,
        "Stop-loss exits older than this do not count towards the streak.",
        group="protections", scope="global", unit="hours", gt=0,
    )
    protect_stoploss_streak_cooloff_minutes: float = setting(
        240.0,
        "How long the stop-loss-streak pause lasts before it lifts by itself.",
        group="protections", scope="global", unit="minutes", ge=1,
    )
