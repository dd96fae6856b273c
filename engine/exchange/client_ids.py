"""Deterministic client order ids.

The same intent always maps to the same id, so a retry, a lost reply or a restart that re-derives
the intent can never place a second order: the venue (or our lookup) recognises the id.

Constraints that shape the id:

- HTX wants an integer (`client_order_id`, and `algo_client_order_id` for stop/TP orders).
- ccxt 4.5.90 reads the id with `int(float(x))`: anything above 2**53 is silently changed, and a
  non-numeric string is silently dropped. So ids are integers in [1, 2**53 - 1].

The caller owns uniqueness of the *intent key*: it must name the specific action, e.g.
``f"{position_id}:ladder:{stage}"`` or ``f"{position_id}:stop:v{n}"`` - a key reused for a
different action would be (correctly, from our side) treated as the same order.
"""

from __future__ import annotations

import hashlib

MAX_CLIENT_ORDER_ID = 2**53 - 1


def client_order_id(profile: str, symbol: str, purpose: str, intent_key: str | int) -> int:
    """Integer id in [1, 2**53 - 1] derived from SHA-256 of the four parts."""
    for name, part in (("profile", profile), ("symbol", symbol), ("purpose", purpose)):
        if not part or "|" in str(part):
            raise ValueError(f"{name} must be non-empty and must not contain '|': {part!r}")
    material = "|".join(("crot", "v1", profile, symbol, purpose, str(intent_key))).encode()
    digest = int.from_bytes(hashlib.sha256(material).digest()[:8], "big")
    return digest % MAX_CLIENT_ORDER_ID + 1


def is_valid_client_order_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_CLIENT_ORDER_ID
