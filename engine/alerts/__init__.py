"""Alerts: the engine events an operator must not miss, sent through Apprise.

`start_alerts(settings, bus)` subscribes an `AlertRouter` to the engine's event bus (None when
ALERT_URLS is empty); the rules are in `rules.py`, delivery in `sender.py`.
"""

from .router import AlertRouter, AlertStats, RateLimiter, check_alerts, start_alerts
from .rules import Alert, AlertConfig, AlertRules
from .sender import AlertsError, AppriseSender

__all__ = ["Alert", "AlertConfig", "AlertRouter", "AlertRules", "AlertStats", "AlertsError", "AppriseSender",
           "RateLimiter", "check_alerts", "start_alerts"]
