"""Settings group `alerts`: notifications an operator must not miss (engine/alerts/).

The fields sit under the `monitoring` title of the settings file (GROUP below); the alert
URL is a secret like the API keys: redacted in `crot config show`, never logged.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, SecretStr

from ..fields import Str, _lower_list, setting

GROUP = "monitoring"

AlertKind = Literal[
    "engine_started", "engine_stopped", "engine_crashed", "engine_error",
    "exchange_unreachable", "exchange_recovered",
    "stop_missing", "stop_repaired", "protection_fired", "account_protection", "stop_filled",
    "repair", "trade_closed", "daily_summary",
]
ALERT_KINDS: tuple[str, ...] = AlertKind.__args__  # type: ignore[attr-defined]
DEFAULT_KINDS: tuple[str, ...] = tuple(k for k in ALERT_KINDS if k != "trade_closed")

AlertKindList = Annotated[tuple[AlertKind, ...], BeforeValidator(_lower_list)]
"""Comma-separated alert kinds, e.g. `stop_missing,engine_crashed`."""


class AlertsGlobalSettings(BaseModel):
    """Process-wide `alerts` settings."""

    alert_urls: SecretStr = setting(
        SecretStr(""),
        "Apprise URLs for alerts, comma separated (tgram://BOT_TOKEN/CHAT_ID, mailto://USER:PASS@gmail.com, "
        "ntfy://TOPIC, ...); empty = no alerts. Never logged.",
        group=GROUP, scope="global",
    )
    alert_kinds: AlertKindList = setting(
        DEFAULT_KINDS,
        "Which alerts are sent; every kind except trade_closed (one message per closed trade) by default.",
        group=GROUP, scope="global",
    )
    alert_rate_limit_count: int = setting(
        5,
        "At most this many alerts of one kind per ALERT_RATE_LIMIT_MINUTES; the rest are counted in the "
        "next one of that kind and in the daily summary.",
        group=GROUP, scope="global", unit="count", ge=1,
    )
    alert_rate_limit_minutes: float = setting(
        15.0,
        "The window of ALERT_RATE_LIMIT_COUNT.",
        group=GROUP, scope="global", unit="minutes", gt=0,
    )
    alert_unreachable_minutes: float = setting(
        5.0,
        "Alert when every step has failed for this long (no account read in between): the exchange "
        "is unreachable or failing; a second alert says when it answers again.",
        group=GROUP, scope="global", unit="minutes", gt=0,
    )
    alert_daily_summary_hour_utc: int = setting(
        8,
        "UTC hour of the daily summary (equity, trades, PnL, stops filled, protections, errors); "
        "-1 = no daily summary.",
        group=GROUP, scope="global", unit="hour", ge=-1, le=23,
    )
    alert_send_timeout_sec: float = setting(
        20.0,
        "A send that takes longer is given up and counted as failed (the engine never waits for it).",
        group=GROUP, scope="global", unit="seconds", gt=0,
    )
    alert_title_prefix: Str = setting(
        "CROT",
        "First word of every alert title, to tell several bots apart in one channel.",
        group=GROUP, scope="global",
    )
    alert_replay: bool = setting(
        False,
        "Also send alerts during replays and the demo (simulated time; off so a backtest does not "
        "flood the channel).",
        group=GROUP, scope="global",
    )
