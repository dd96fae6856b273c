"""Typed exchange errors and secret redaction.

The engine reacts to the *type* of an error, never to its text:

- `TransientError`: the request may succeed if repeated later (network, timeout, rate limit,
  maintenance). For an order *creation* it is also ambiguous: the order may exist. Retry only
  with the same client order id, after looking it up.
- `OrderRejected`: the exchange refused the order; repeating the same request will fail again.
  `ReduceOnlyFrozen` in particular means "the closeable amount is reserved by other close
  orders": wait for them to change, never re-send in a loop.
- `AuthError`, `OrderNotFound`, plain `ExchangeError`: not retried.

Messages are passed through `redact()` on construction, so a signed URL, an API key or a secret
that a library put into an exception text never reaches a log line, a file or the UI.
"""

from __future__ import annotations

import logging
import re
import threading
from decimal import Decimal
from typing import Any

# --------------------------------------------------------------------------- redaction

_QUERY_OF_URL = re.compile(r"(?P<base>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#'\"]+)\?[^\s'\"]*")
_SENSITIVE_PAIR = re.compile(
    r"(?i)(?P<key>accesskeyid|signature|apikey|api_key|secret|passphrase|password|x-mexc-apikey|"
    r"requestkey|access_key|secret_key)(?P<sep>['\"]?\s*[=:]\s*['\"]?)(?P<val>[^&\s'\",}]+)"
)
_REGISTERED: set[str] = set()
_REGISTERED_LOCK = threading.Lock()
REDACTED = "<redacted>"


def register_secret(*values: str | None) -> None:
    """Remember credential values so `redact()` removes them wherever they appear."""
    with _REGISTERED_LOCK:
        for value in values:
            if value and len(value) >= 4:
                _REGISTERED.add(value)


def redact(text: object) -> str:
    """Remove query strings of URLs, key=value credentials and registered secret values."""
    out = str(text)
    out = _QUERY_OF_URL.sub(lambda m: f"{m.group('base')}?{REDACTED}", out)
    out = _SENSITIVE_PAIR.sub(lambda m: f"{m.group('key')}{m.group('sep')}{REDACTED}", out)
    with _REGISTERED_LOCK:
        secrets = sorted(_REGISTERED, key=len, reverse=True)
    for secret in secrets:
        if secret in out:
            out = out.replace(secret, REDACTED)
    return out


_TRACEBACK_FORMATTER = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the formatted message and any traceback or stack attached
    to the record (`log.exception`, `exc_info=True`, `stack_info=True`).

    The traceback is formatted here, redacted and cached in `exc_text` (which every standard
    Formatter prints as is); `exc_info` is dropped so no later handler renders the raw one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            if not record.exc_text and record.exc_info[0] is not None:
                record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def redacting_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger


# --------------------------------------------------------------------------- hierarchy


class ExchangeError(Exception):
    """Base of every error an exchange adapter raises.

    `venue` names the exchange, `code` is the venue's own error code when known.
    """

    def __init__(self, message: str = "", *, venue: str | None = None, code: str | None = None):
        self.message = redact(message)
        self.venue = venue
        self.code = code
        super().__init__(self.message)

    def __str__(self) -> str:
        prefix = f"[{self.venue}{' ' + self.code if self.code else ''}] " if self.venue else ""
        return prefix + self.message


class TransientError(ExchangeError):
    """May succeed later. For order creation: outcome unknown until looked up by client id."""

    #: False only when the venue certainly did not act on the request (e.g. HTTP 429)
    may_have_executed: bool = True


class NetworkError(TransientError):
    pass


class ExchangeTimeout(TransientError):
    pass


class RateLimited(TransientError):
    may_have_executed = False


class OrderStateUnknown(TransientError):
    """Retries of a create call are exhausted and the order could not be found nor ruled out.

    The caller must keep the intent pending and reconcile with the *same* client order id later.
    """

    def __init__(self, message: str = "", *, client_order_id: int | None = None, **kw):
        super().__init__(message, **kw)
        self.client_order_id = client_order_id


class CancelNotConfirmed(TransientError):
    """A cancel was accepted but the order still reads as open: do not place a replacement yet."""

    may_have_executed = False


class OrderRejected(ExchangeError):
    """The exchange refused the order; the same request will be refused again."""


class PostOnlyWouldCross(OrderRejected):
    pass


class ReduceOnlyFrozen(OrderRejected):
    """Closeable amount is reserved by other close orders (or there is no position): wait."""


class PriceOutOfBand(OrderRejected):
    """Limit price outside the venue's price band; bounds are filled when the venue states them."""

    def __init__(
        self,
        message: str = "",
        *,
        max_buy_price: Decimal | None = None,
        min_sell_price: Decimal | None = None,
        **kw,
    ):
        super().__init__(message, **kw)
        self.max_buy_price = max_buy_price
        self.min_sell_price = min_sell_price


class InsufficientMargin(OrderRejected):
    pass


class InvalidOrder(OrderRejected):
    pass


class DuplicateClientOrderId(OrderRejected):
    """The client order id is already used: the order exists, look it up instead of re-sending."""


class MalformedResponse(ExchangeError):
    """The venue answered with data that cannot be right (missing, NaN or negative fields).

    Not transient and never guessed around: the step that read it does nothing, so no order is
    sent on numbers that cannot be trusted; the next poll reads again."""


class AuthError(ExchangeError):
    pass


class OrderNotFound(ExchangeError):
    pass


class OrderBan(OrderRejected):
    """HTX 1084: the venue disabled order placement for this API key for a while (too many
    cancels). `until_ms` is the end of the ban when the venue states it; until then entries
    are not sent, existing stops stay, and the UI says so."""

    def __init__(self, message: str = "", *, until_ms: int | None = None, **kw):
        super().__init__(message, **kw)
        self.until_ms = until_ms


class LeverageError(OrderRejected):
    """HTX 1206 (leverage tier not allowed for this size) / 1349 (order leverage differs from
    the position's): the account set-up must be fixed; the same order is refused again."""


class AccountSetupError(ExchangeError):
    """The account is not set up the way the bot trades (hedge mode, isolated margin,
    single-asset collateral for the v5 API): refuse to trade, naming the problem and the fix."""


__all__ = [
    "AccountSetupError",
    "LeverageError",
    "OrderBan",
    "AuthError",
    "CancelNotConfirmed",
    "DuplicateClientOrderId",
    "ExchangeError",
    "ExchangeTimeout",
    "InsufficientMargin",
    "InvalidOrder",
    "NetworkError",
    "OrderNotFound",
    "OrderRejected",
    "OrderStateUnknown",
    "PostOnlyWouldCross",
    "PriceOutOfBand",
    "RateLimited",
    "RedactingFilter",
    "ReduceOnlyFrozen",
    "TransientError",
    "redact",
    "redacting_logger",
    "register_secret",
]


def refuse_reuse(found: Any, symbol: str, side: str, kind: str, reduce_only: bool, client_order_id: int,
                 venue: str) -> None:
    """An order found under a client id that names another order (symbol, side, kind or
    reduce-only differ): a reuse. Handing it back would report e.g. a resting buy as the sell
    just asked for; it is refused with InvalidOrder as the simulator does and as HTX does for an
    active id ("Place Order": 1050 "Customer's order number is repeated"), so every Exchange
    answers a reuse the same way."""
    if found is not None and (found.symbol, found.side, found.kind, found.reduce_only) != (
            symbol, side, kind, reduce_only):
        raise InvalidOrder(f"client order id {client_order_id} already used by {found.kind} {found.side} "
                           f"{found.symbol}{' reduce-only' if found.reduce_only else ''}", venue=venue)
