"""JSON encoding of engine events for the control socket (engine/runtime/control.py).

An attached viewer must rebuild the very events the engine published (the dashboard's state
is a fold over them), so the encoding is exact: Decimals keep their digits, floats keep NaN
and infinity, tuples stay tuples and every dataclass or named tuple comes back as its own
class. Only the classes registered here are decoded: a line from the socket can never name
an arbitrary class or execute anything (no pickle).
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from decimal import Decimal
from typing import Any

from engine.strategy.decision import Decision, GateResult
from engine.strategy.features import SymbolFeatures

from . import events as ev


def _registry() -> dict[str, type]:
    classes: list[type] = [Decision, GateResult, SymbolFeatures, ev.PositionView, ev.StopView]
    classes += [c for c in vars(ev).values()
                if isinstance(c, type) and issubclass(c, ev.Event) and c is not ev.Event]
    return {c.__name__: c for c in classes}


TYPES: dict[str, type] = _registry()


class WireError(ValueError):
    """A line that is not a well-formed encoded event (named in one line)."""


def _enc(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return {"$d": format(obj, "f")}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a named tuple (GateResult)
        name = type(obj).__name__
        if name not in TYPES:
            raise TypeError(f"cannot encode {name}")
        return {"$t": name, **{k: _enc(v) for k, v in zip(obj._fields, obj)}}
    if is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if name not in TYPES:
            raise TypeError(f"cannot encode {name}")
        return {"$t": name, **{f.name: _enc(getattr(obj, f.name)) for f in fields(obj)}}
    if isinstance(obj, (list, tuple)):
        return [_enc(v) for v in obj]
    if isinstance(obj, dict):
        return {"$m": {str(k): _enc(v) for k, v in obj.items()}}
    if isinstance(obj, (set, frozenset)):
        return [_enc(v) for v in sorted(obj, key=str)]
    return obj


def _dec(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_dec(v) for v in obj)
    if isinstance(obj, dict):
        if "$d" in obj:
            return Decimal(obj["$d"])
        if "$m" in obj:
            return {k: _dec(v) for k, v in obj["$m"].items()}
        name = obj.get("$t")
        cls = TYPES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise WireError(f"unknown encoded type {name!r}")
        kwargs = {k: _dec(v) for k, v in obj.items() if k != "$t"}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise WireError(f"{name}: {exc}") from None
    return obj


def encode(obj: Any) -> Any:
    """A JSON-ready structure for an event (or any registered value)."""
    return _enc(obj)


def decode(data: Any) -> Any:
    """The value `encode` was given; WireError for anything not made by `encode`."""
    try:
        return _dec(data)
    except (ArithmeticError, AttributeError) as exc:
        raise WireError(f"bad encoded value: {exc}") from None


def dumps(msg: dict[str, Any]) -> bytes:
    """One protocol line (JSON, newline-terminated)."""
    return json.dumps(msg, separators=(",", ":"), allow_nan=True).encode() + b"\n"


def loads(line: bytes) -> dict[str, Any]:
    try:
        msg = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"not a JSON line: {exc}") from None
    if not isinstance(msg, dict):
        raise WireError("a protocol line must be a JSON object")
    return msg


__all__ = ["TYPES", "WireError", "decode", "dumps", "encode", "loads"]
