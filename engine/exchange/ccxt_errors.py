"""Translate ccxt exceptions (and the venue error bodies inside them) into `errors` types.

Order of precedence: the venue's own error code (parsed from the JSON body ccxt puts into the
message), then well-known message phrases, then the ccxt exception class. The code comes first
because ccxt's own table is too coarse for trading decisions: HTX 1048 ("Insufficient close
amount available") is `InsufficientFunds` to ccxt but means "closeable amount reserved by other
close orders - wait" to us.

The returned error never wraps the ccxt exception (its message may hold a signed URL); callers
raise it outside the `except` block so no traceback chain keeps the original either.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import ccxt

from . import errors as E

# HTX USDT-M swap error codes (v1 `err_code` and v5 `code` use the same numbers).
HTX_CODES: dict[str, type[E.ExchangeError]] = {
    "1047": E.InsufficientMargin,  # Insufficient margin available.
    "1048": E.ReduceOnlyFrozen,  # Insufficient close amount available.
    "1039": E.PriceOutOfBand,  # Buy price must be lower than X. Sell price must exceed Y.
    "1050": E.DuplicateClientOrderId,  # Customer's order number is repeated.
    "1017": E.OrderNotFound,  # Order doesn't exist.
    "1061": E.OrderNotFound,  # The order does not exist.
    "1051": E.OrderNotFound,  # No orders to cancel.
    "1071": E.OrderNotFound,  # Repeated withdraw / order already cancelled.
    "1034": E.InvalidOrder,  # Incorrect field of order price type.
    "1036": E.InvalidOrder,
    "1041": E.InvalidOrder,  # order amount exceeds the limit
    "1067": E.InvalidOrder,  # "Illegal parameter {0}." (also an expired client_order_id lookup)
    "1084": E.OrderBan,  # "Your contract API is disabled, please try again after {0} (GMT+8)."
    "1206": E.LeverageError,  # high leverage not supported for this position tier
    "1349": E.LeverageError,  # "The leverage for new orders does not match current positions."
    "1492": E.ReduceOnlyFrozen,  # "Amount of Reduce Only order exceeds the amount available to close."
    "1094": E.InvalidOrder,
    "1461": E.InvalidOrder,  # position limit
    "1013": E.InvalidOrder,  # contract symbol does not exist
    "1066": E.InvalidOrder,
    "1003": E.AuthError,
    "403": E.AuthError,
    "1010": E.AuthError,
    "1220": E.AuthError,
    "1032": E.RateLimited,  # The number of access exceeded the limit.
    "1056": E.NetworkError,  # In settlement: orders cannot be placed right now.
    "1077": E.NetworkError,  # settlement / delivery in progress
    "1078": E.NetworkError,
    "1079": E.NetworkError,
    "1080": E.NetworkError,
    "api-signature-not-valid": E.AuthError,
    "api-signature-check-failed": E.AuthError,
    "base-request-exceed-frequency-limit": E.RateLimited,
    "rate-too-many-requests": E.RateLimited,
    "timeout": E.ExchangeTimeout,
    "gateway-internal-error": E.NetworkError,
    "system-maintenance": E.NetworkError,
}

VENUE_CODES: dict[str, dict[str, type[E.ExchangeError]]] = {"htx": HTX_CODES}

# (phrase in lower-case message, error type) - checked when the code is unknown
_PHRASES: tuple[tuple[str, type[E.ExchangeError]], ...] = (
    ("close amount", E.ReduceOnlyFrozen),
    ("closeable", E.ReduceOnlyFrozen),
    ("post-only", E.PostOnlyWouldCross),
    ("post only", E.PostOnlyWouldCross),
    ("post_only", E.PostOnlyWouldCross),
    ("price must be lower than", E.PriceOutOfBand),
    ("price must exceed", E.PriceOutOfBand),
    ("price limit", E.PriceOutOfBand),
    ("insufficient margin", E.InsufficientMargin),
    ("order number is repeated", E.DuplicateClientOrderId),
    ("client_order_id is repeated", E.DuplicateClientOrderId),
    ("duplicate", E.DuplicateClientOrderId),
    ("too many requests", E.RateLimited),
    ("too frequent", E.RateLimited),
    ("frequency", E.RateLimited),
    ("request limit", E.RateLimited),
    ("rate limit", E.RateLimited),
    ("number of access", E.RateLimited),
)

# ccxt class -> ours; ordered most specific first (isinstance walk)
_CCXT_CLASSES: tuple[tuple[type[BaseException], type[E.ExchangeError]], ...] = (
    (ccxt.RateLimitExceeded, E.RateLimited),
    (ccxt.DDoSProtection, E.RateLimited),
    (ccxt.RequestTimeout, E.ExchangeTimeout),
    (ccxt.NetworkError, E.NetworkError),  # ExchangeNotAvailable, OnMaintenance, InvalidNonce
    (ccxt.BadResponse, E.NetworkError),  # garbled / HTML gateway page: treat as transient
    (ccxt.OperationFailed, E.NetworkError),
    (ccxt.AuthenticationError, E.AuthError),
    (ccxt.OrderNotFound, E.OrderNotFound),
    (ccxt.DuplicateOrderId, E.DuplicateClientOrderId),
    (ccxt.OrderImmediatelyFillable, E.PostOnlyWouldCross),
    (ccxt.InsufficientFunds, E.InsufficientMargin),
    (ccxt.InvalidOrder, E.InvalidOrder),
    (ccxt.BadRequest, E.InvalidOrder),
    (ccxt.ArgumentsRequired, E.InvalidOrder),
)

_BAND = re.compile(r"lower than\s*([0-9.]+).*?exceed\s*([0-9.]+)", re.IGNORECASE | re.DOTALL)


_BAN_UNTIL = re.compile(r"after\s+(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?")


def ban_until_ms(message: str) -> int | None:
    """The end of an HTX 1084 order ban ("... try again after 2024-08-05 10:15:00 (GMT+8)"),
    as UTC ms; None when the message does not state it."""
    import datetime as _dt

    m = _BAN_UNTIL.search(message or "")
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(g or 0) for g in m.groups())
    try:
        local = _dt.datetime(y, mo, d, h, mi, sec, tzinfo=_dt.timezone(_dt.timedelta(hours=8)))
    except ValueError:
        return None
    return int(local.timestamp() * 1000)


def venue_error_body(message: str) -> dict | None:
    """The JSON object ccxt appends to its messages (`"htx {...}"`), if any."""
    start = message.find("{")
    end = message.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        body = json.loads(message[start : end + 1])
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _code_and_text(body: dict | None) -> tuple[str | None, str | None]:
    if not body:
        return None, None
    code = None
    for key in ("err_code", "err-code", "code"):
        if body.get(key) not in (None, ""):
            code = str(body[key])
            break
    text = None
    for key in ("err_msg", "err-msg", "message", "msg"):
        if body.get(key):
            text = str(body[key])
            break
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("errors"), list) and data["errors"]:
        first = data["errors"][0]
        if isinstance(first, dict):
            code = str(first.get("err_code", code))
            text = str(first.get("err_msg", text))
    return code, text


def map_ccxt_error(exc: BaseException, venue: str) -> E.ExchangeError:
    """Our typed, redacted error for a ccxt (or aiohttp/asyncio) exception."""
    if isinstance(exc, E.ExchangeError):
        return exc
    raw = str(exc)
    body = venue_error_body(raw)
    code, text = _code_and_text(body)
    if code == "200":
        code = None
    message = text or raw
    table = VENUE_CODES.get(venue, {})
    cls: type[E.ExchangeError] | None = table.get(code) if code else None
    if cls is None:
        lowered = (text or raw).lower()
        for phrase, candidate in _PHRASES:
            if phrase in lowered:
                cls = candidate
                break
    if cls is None:
        for ccxt_cls, candidate in _CCXT_CLASSES:
            if isinstance(exc, ccxt_cls):
                cls = candidate
                break
    if cls is None:
        import asyncio

        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            cls = E.ExchangeTimeout
        elif isinstance(exc, (ConnectionError, OSError)):
            cls = E.NetworkError
        else:
            cls = E.ExchangeError
    label = f"{type(exc).__name__}: {message}"
    if cls is E.OrderBan:
        return E.OrderBan(label, venue=venue, code=code, until_ms=ban_until_ms(message))
    if cls is E.PriceOutOfBand:
        match = _BAND.search(message)
        return E.PriceOutOfBand(
            label,
            venue=venue,
            code=code,
            max_buy_price=Decimal(match.group(1).rstrip(".")) if match else None,
            min_sell_price=Decimal(match.group(2).rstrip(".")) if match else None,
        )
    return cls(label, venue=venue, code=code)
