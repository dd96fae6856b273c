"""Delivery through Apprise: one URL setting reaches Telegram, e-mail, Discord, Slack, ntfy and
the other services Apprise knows (https://appriseit.com/services/).

The URLs carry tokens, so before Apprise sees them (it logs what it cannot parse) the URL and
the token-like parts of it are registered as secrets: `redact()` and every RedactingFilter then
remove them, and Apprise's own loggers get that filter too. Nothing here ever logs a URL; a
service is named by its position and scheme ("service 2 (tgram)").
"""

from __future__ import annotations

import logging
import re
from typing import Protocol
from urllib.parse import unquote, urlsplit

from engine.exchange.errors import redacting_logger, register_secret

from .rules import Alert

log = redacting_logger("crot.alerts")

# loggers that may print a URL or a request line of a notification service
_LIBRARY_LOGGERS = ("apprise", "urllib3.connectionpool", "urllib3.util.retry", "requests")
_HOSTLIKE = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class AlertsError(ValueError):
    """The alert settings cannot work (a one-line message that never contains a URL)."""


class Sender(Protocol):
    services: int

    async def send(self, alert: Alert) -> bool: ...


def split_urls(text: str) -> list[str]:
    """The URLs of ALERT_URLS (comma or space separated; a comma inside a URL's query stays)."""
    try:
        from apprise.utils.parse import parse_urls
    except ImportError:  # no or an older Apprise: plain splitting
        return [u for u in re.split(r"[\s,]+", text) if u]
    return [u for u in parse_urls(text) if u]


def scheme_of(url: str) -> str:
    m = _SCHEME.match(url)
    return m.group(1).lower() if m else "?"


def register_url_secrets(url: str) -> None:
    """Register the URL and every part of it that may be a token (user, password, path
    segments, query values); host names and plain short words stay readable."""
    register_secret(url, unquote(url))
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    register_secret(password, unquote(password or ""))
    for piece in re.split(r"[/:@?&=,#;+\s]+", _SCHEME.sub("", url)):
        for p in {piece, unquote(piece)}:
            if len(p) < 6 or _HOSTLIKE.fullmatch(p.lower()):
                continue
            if len(p) >= 12 or any(c.isdigit() for c in p) or any(c.isupper() for c in p):
                register_secret(p)


def guard_library_logs() -> None:
    for name in _LIBRARY_LOGGERS:
        redacting_logger(name)


class AppriseSender:
    """Sends an alert to every service of ALERT_URLS; True when all of them took it."""

    def __init__(self, urls_text: str):
        urls = split_urls(urls_text)
        for url in urls:
            register_url_secrets(url)
        guard_library_logs()
        if not urls:
            raise AlertsError("ALERT_URLS: no URL found; expected e.g. tgram://BOT_TOKEN/CHAT_ID "
                              "(leave it empty for no alerts)")
        try:
            import apprise
        except ImportError:
            raise AlertsError("ALERT_URLS is set but the apprise package is not installed "
                              "(pip install apprise)") from None
        self._apprise = apprise.Apprise()
        self.schemes: list[str] = []
        quiet = logging.getLogger("apprise")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # its "Unparseable URL <url>" line is said here instead
        try:
            for i, url in enumerate(urls, start=1):
                if not self._apprise.add(url):
                    raise AlertsError(f"ALERT_URLS item {i} (scheme {scheme_of(url)!r}) is not a notification "
                                      "URL apprise understands; see https://appriseit.com/services/")
                self.schemes.append(scheme_of(url))
        finally:
            quiet.setLevel(level)
        self.services = len(self.schemes)

    async def send(self, alert: Alert) -> bool:
        # plain text: Apprise escapes it for services that take HTML or Markdown (Telegram would
        # read "<redacted>" as a tag and refuse the message)
        result = await self._apprise.async_notify(body=alert.body, title=alert.title, notify_type=alert.level,
                                                  body_format="text")
        if not result:
            # each service's name (JSON, Telegram, ...) and outcome; never its URL
            failed = [f"{getattr(r, 'name', '?')} {getattr(getattr(r, 'status', None), 'name', 'failed').lower()}"
                      for r in (result if _iterable(result) else ()) if not r]
            log.warning("alert %s not delivered%s", alert.kind, f" ({', '.join(failed)})" if failed else "")
        return bool(result)


def _iterable(result: object) -> bool:
    try:
        iter(result)  # type: ignore[call-overload]
    except TypeError:
        return False
    return True
