"""JSON encoding of planned actions, for the write-ahead plan of a cycle.

Only our own frozen dataclasses (actions and the orders they carry) are encoded, each tagged
with its class name; Decimals keep their exact digits. No pickle: the state file may be
copied between machines and must never execute anything when read.
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from decimal import Decimal
from typing import Any

from engine.exchange.types import Order

from .actions import Cancel, CloseMarket, PlaceEntry, PlaceExit, PlaceStop

_TYPES: dict[str, type] = {c.__name__: c for c in (Order, Cancel, CloseMarket, PlaceEntry, PlaceExit, PlaceStop)}


def _enc(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return {"$d": format(obj, "f")}
    if is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if name not in _TYPES:
            raise TypeError(f"cannot encode {name}")
        return {"$t": name, **{f.name: _enc(getattr(obj, f.name)) for f in fields(obj)}}
    if isinstance(obj, (list, tuple)):
        return [_enc(v) for v in obj]
    return obj


def _dec(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_dec(v) for v in obj)
    if isinstance(obj, dict):
        if set(obj) == {"$d"}:
            return Decimal(obj["$d"])
        if "$t" in obj:
            cls = _TYPES[obj["$t"]]
            return cls(**{k: _dec(v) for k, v in obj.items() if k != "$t"})
    return obj


def encode_plan(actions: list[Any], selected: tuple[str, ...]) -> str:
    return json.dumps({"actions": _enc(actions), "selected": list(selected)}, separators=(",", ":"))


def decode_plan(text: str) -> tuple[list[Any], tuple[str, ...]]:
    d = json.loads(text)
    return list(_dec(d["actions"])), tuple(d["selected"])
