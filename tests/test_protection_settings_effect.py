"""Account protection windows in effect (issue 18): the drawdown lookback and the stop-loss
streak's lookback and cool-off, each changed in a .env, change whether a profile is blocked
after the same equity readings and the same closed trades."""

from __future__ import annotations

from engine.risk.protections import AccountProtections, ProtectionParams
from settings_effect import settings

H = 3_600_000
T0 = 1_722_816_000_000 + 7 * 60_000 + 13_457  # 2024-08-05 00:07:13.457 UTC, unaligned


def protections(**env: object) -> AccountProtections:
    return AccountProtections(ProtectionParams.from_settings(settings(**env).glob))


def drawdown_blocks(**env: object) -> bool:
    """1000 -> 900 after 30 h -> 840 after 48 h: 16% below the first peak, 6.7% below the second."""
    pr = protections(PROTECT_DAILY_LOSS=0, **env)
    for hours, equity in ((0, 1000.0), (30, 900.0), (48, 840.0)):
        pr.on_equity(T0 + hours * H, equity)
    return bool(pr.blocked("long", T0 + 48 * H + 1))


def streak_blocks(at_hours: float, **env: object) -> bool:
    """Three stop-loss exits of the long profile, 5 h apart; asked ``at_hours`` after the first."""
    pr = protections(PROTECT_STOPLOSS_STREAK=3, **env)
    for hours in (0, 5, 10):
        pr.on_trade(T0 + hours * H, "long", "stop_loss")
    return bool(pr.blocked("long", T0 + int(at_hours * H)))


def test_drawdown_lookback_decides_which_peak_counts():
    assert drawdown_blocks()  # default 72 h: the 1000 peak is inside the window
    assert not drawdown_blocks(PROTECT_MAX_DRAWDOWN_LOOKBACK_HOURS=24)  # only the 900 one is


def test_stop_loss_streak_lookback_decides_which_stops_count():
    assert streak_blocks(10.5)  # default 24 h: all three count
    assert not streak_blocks(10.5, PROTECT_STOPLOSS_STREAK_LOOKBACK_HOURS=8)  # the first is too old


def test_stop_loss_streak_cooloff_decides_when_the_pause_lifts():
    assert streak_blocks(12)  # default 240 min: paused until 14 h
    assert not streak_blocks(12, PROTECT_STOPLOSS_STREAK_COOLOFF_MINUTES=60)  # lifted at 11 h
    assert not streak_blocks(14.01)
