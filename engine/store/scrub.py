"""Secret scrubbing for everything the audit trail writes.

The reference bot once leaked signed request URLs into its diagnostics. Every string that
reaches an audit file or table passes through ``scrub``: the exchange layer's ``redact``
(URL query strings, ``key=value`` credentials, values registered with ``register_secret``)
plus a few patterns it does not cover (URL-encoded signature parameters, ``sign=``,
Authorization / Bearer headers, exchange API-key headers).

``scrub_obj`` scrubs the string leaves (and keys) of a JSON-like structure, so a JSON document
stays well-formed: a whole-line regex could swallow a CSV separator or a closing quote.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from engine.exchange import errors as _errors
from engine.exchange.errors import REDACTED, redact, register_secret

__all__ = ["REDACTED", "register_secret", "register_settings_secrets", "scrub", "scrub_full", "scrub_obj",
           "scrubber"]

_EXTRA = (
    # URL-encoded signed parameters inside another parameter or a logged body
    re.compile(r"(?i)(?P<key>accesskeyid|signature|apikey|api_key)(?P<sep>%3[dD]|%3[aA])[^&\s'\",}]+"),
    # MEXC-style 'sign' / 'signature' query parameters, also without a URL scheme
    re.compile(r"(?i)(?P<key>[?&]sign)(?P<sep>=)[^&\s'\",}]+"),
    # HTTP auth headers
    re.compile(r"(?i)(?P<key>\bauthorization)(?P<sep>['\"]?\s*[:=]\s*['\"]?)[^'\",}\n]+"),
    re.compile(r"(?i)(?P<key>\bbearer)(?P<sep>\s+)[A-Za-z0-9._~+/=-]+"),
    # exchange API-key / signature headers (X-MBX-APIKEY, X-MEXC-APIKEY, ACCESS-SIGN, ...)
    re.compile(r"(?i)(?P<key>\b(?:x-[a-z0-9]+-)?(?:apikey|access-key|access-sign|access-passphrase))"
               r"(?P<sep>['\"]?\s*[:=]\s*['\"]?)[^&\s'\",}]+"),
)


def scrub_full(text: object) -> str:
    """The complete scrub: ``redact`` plus the extra patterns (no shortcut, no memo)."""
    out = redact(text)
    for pattern in _EXTRA:
        out = pattern.sub(lambda m: f"{m.group('key')}{m.group('sep')}{REDACTED}", out)
    return out


# Shortcut: every pattern above and in ``redact`` needs one of these words (or '://' for a URL
# query): a string with none of them and no registered secret in it comes out unchanged
# (gate details such as "ratio below minimum: 0.73" are common and need no regex pass).
# Results of short strings are memoised (gate names, kinds, symbols repeat on every row); the
# memo is dropped whenever the set of registered secrets grows (it only grows: there is no
# unregister).
_TRIGGER = re.compile(r"://|accesskeyid|sign|apikey|api_key|secret|passphrase|password|requestkey|access[_-]key|"
                      r"authorization|bearer", re.IGNORECASE)
_MEMO_MAX = 65_536
_MEMO_MAX_LEN = 256
_memo: dict[str, str] = {}
_known = {"count": -1, "secrets": ()}
_known_lock = threading.Lock()


def _registered() -> tuple[str, ...] | None:
    reg = getattr(_errors, "_REGISTERED", None)
    lock = getattr(_errors, "_REGISTERED_LOCK", None)
    if reg is None or lock is None:
        return None  # the registry changed shape: always take the full path
    if len(reg) != _known["count"]:
        with lock:
            secrets = tuple(reg)
        with _known_lock:
            _memo.clear()
            _known["secrets"] = secrets
            _known["count"] = len(secrets)
    return _known["secrets"]  # type: ignore[return-value]


def _scrub_str(s: str, secrets: tuple[str, ...] | None) -> str:
    if secrets is None:
        return scrub_full(s)
    hit = _memo.get(s)
    if hit is not None:
        return hit
    if _TRIGGER.search(s) is None and not any(x in s for x in secrets):
        out = s
    else:
        out = scrub_full(s)
    if len(s) <= _MEMO_MAX_LEN and secrets is _known["secrets"]:  # never memoise a stale answer
        if len(_memo) >= _MEMO_MAX:
            _memo.clear()
        _memo[s] = out
    return out


def scrub(text: object) -> str:
    """``text`` as a string with every known kind of credential replaced by ``<redacted>``."""
    return _scrub_str(text if isinstance(text, str) else str(text), _registered())


def scrubber() -> Callable[[str], str]:
    """``scrub`` for strings, bound to the secrets registered now: for scrubbing many strings
    in a row (the registry is read once instead of once per string)."""
    secrets = _registered()
    memo_get = _memo.get

    def sc(s: str) -> str:
        hit = memo_get(s)
        return hit if hit is not None else _scrub_str(s, secrets)

    return sc


_SENSITIVE_KEY = re.compile(
    r"(?i)^(?:x-[a-z0-9-]*?-?)?(?:api[-_]?key|secret(?:[-_]?key)?|api[-_]?secret|signature|sign|"
    r"password|passphrase|access[-_]?key(?:[-_]?id)?|authorization|(?:access[-_]?)?token)$"
)


def scrub_obj(value: Any, safe_keys: frozenset[str] = frozenset()) -> Any:
    """Scrub every string leaf and dict key of a JSON-like value; other leaves unchanged.
    The value under a credential-like key ('apiKey', 'secret', 'Signature', ...) is replaced
    whole, whatever it looks like. Keys in ``safe_keys`` (the audit schema's own field names)
    are known clean and skip the key checks."""
    return _walk(value, _registered(), safe_keys)


def _walk(value: Any, secrets: tuple[str, ...] | None, safe: frozenset[str]) -> Any:
    t = type(value)
    if t is float or t is int or t is bool or value is None:
        return value
    if isinstance(value, str):
        return _scrub_str(value, secrets)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in safe:
                out[k] = v if type(v) is float else _walk(v, secrets, safe)
                continue
            key = _scrub_str(k if isinstance(k, str) else str(k), secrets)
            out[key] = REDACTED if _SENSITIVE_KEY.match(key) and _present(v) else _walk(v, secrets, safe)
        return out
    if isinstance(value, (list, tuple)):
        return [_walk(v, secrets, safe) for v in value]
    return value


def _present(v: Any) -> bool:
    return v is not None and v != "" and not isinstance(v, bool)


def register_settings_secrets(settings: Any) -> int:
    """Register every SecretStr value of ``settings.glob`` (and of the per-side profiles),
    so they are scrubbed even if no exchange client registered them. Returns the count."""
    from pydantic import SecretStr

    count = 0
    models = [getattr(settings, "glob", None), *getattr(settings, "profiles", {}).values()]
    for model in models:
        if model is None:
            continue
        for name in type(model).model_fields:
            value = getattr(model, name, None)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                if secret:
                    register_secret(secret)
                    count += 1
    return count
