"""Engine events -> audit rows (pure functions, no I/O).

An ``AuditRow`` holds the stream's fixed columns (``values``, see ``audit_schema``) plus, for
signals and diagnostics, the structured parts (``extra``: the gate list and features, or the
event's full record). The sinks decide how to lay them out: the signal CSV flattens the gates
into columns, JSONL merges everything, SQLite stores the structured parts as JSON text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.runtime.events import (
    Account,
    CycleStats,
    Decisions,
    EngineStatus,
    ErrorEvent,
    Event,
    FillEvent,
    OrderEvent,
    Premium,
    ProtectionEvent,
    Regime,
    Repair,
    StopEvent,
    TradeClosed,
)
from engine.strategy.decision import GateResult
from engine.strategy.features import FEATURE_FIELDS

from .scrub import scrub_obj, scrubber

__all__ = ["AuditRow", "iso_time", "json_safe", "rows_for_event"]


@dataclass(frozen=True, slots=True)
class AuditRow:
    stream: str
    profile: str  # "" for global streams (account, macro, external) and profile-less errors
    values: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    extra_clean: bool = False  # ``extra`` was built from scrubbed strings (signals)


def iso_time(ts_ms: int | None) -> str:
    """UTC ISO-8601 time of an epoch-ms timestamp ('' when unknown)."""
    if ts_ms is None:
        return ""
    try:
        dt = datetime.fromtimestamp(int(ts_ms) / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return ""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def json_safe(value: Any) -> Any:
    """JSON-friendly copy: Decimal -> str, NaN -> None, +-inf -> 'inf' / '-inf', tuples ->
    lists, objects with ``to_record`` -> their record, anything else unknown -> str."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    to_record = getattr(value, "to_record", None)
    if callable(to_record):
        return json_safe(to_record())
    try:  # numpy scalars
        return json_safe(value.item())
    except AttributeError:
        return str(value)


def _base(ev: Event) -> dict[str, Any]:
    return {"ts_ms": ev.ts_ms, "time": iso_time(ev.ts_ms)}


def _trade(ev: TradeClosed) -> AuditRow:
    sign = 1 if ev.side == "long" else -1
    try:
        ret = float(sign * (ev.exit_price / ev.entry_price - 1)) if ev.entry_price else None
    except (InvalidOperation, ZeroDivisionError):
        ret = None
    hold = (ev.ts_ms - ev.opened_ms) / 60_000 if ev.opened_ms else None
    return AuditRow("trades", ev.profile, {
        **_base(ev), "profile": ev.profile, "event": "close", "symbol": ev.symbol, "side": ev.side,
        "entry_price": ev.entry_price, "exit_price": ev.exit_price, "contracts": ev.contracts,
        "pnl": ev.pnl, "fees": ev.fees, "ret": ret, "opened_ms": ev.opened_ms, "hold_min": hold,
        "reason": ev.reason,
    })


def _fill(ev: FillEvent) -> AuditRow:
    return AuditRow("trades", ev.profile, {
        **_base(ev), "profile": ev.profile, "event": "fill", "symbol": ev.symbol, "side": ev.side,
        "purpose": ev.purpose, "price": ev.price, "amount": ev.amount, "fee": ev.fee,
    })


def _cycle(ev: CycleStats) -> AuditRow:
    return AuditRow("cycles", ev.profile, {
        **_base(ev), "profile": ev.profile, "symbols": ev.symbols, "evaluated": ev.evaluated,
        "entry_valid": ev.entry_valid, "selected": ev.selected, "orders_placed": ev.orders_placed,
        "positions": ev.positions, "duration_ms": ev.duration_ms,
    })


_FEATURES = tuple(n for n in FEATURE_FIELDS if n not in ("symbol", "ts_ms"))


def _num(x: Any) -> Any:
    if type(x) is float and x - x == 0.0:  # finite float: the common case, kept as is
        return x
    return json_safe(x)


def _gate_record(g: Any, sc: Callable[[str], str]) -> dict[str, Any]:
    """One gate as a JSON-safe dict with the GateResult field names, its texts scrubbed."""
    if type(g) is GateResult:  # the common case: unpack the named tuple in one step
        name, value, threshold, passed, kind, op, detail, delta, factor = g
    else:
        name, value, threshold, passed = g.name, g.value, g.threshold, g.passed
        kind, op, detail = getattr(g, "kind", ""), getattr(g, "op", ""), getattr(g, "detail", "")
        delta, factor = getattr(g, "score_delta", 0.0), getattr(g, "score_factor", 1.0)
    return {
        "name": sc(str(name)), "value": _num(value), "threshold": _num(threshold), "passed": bool(passed),
        "kind": sc(str(kind)), "op": sc(str(op)), "detail": sc(str(detail)),
        "score_delta": _num(delta), "score_factor": _num(factor),
    }


def _feature(v: Any, sc: Callable[[str], str]) -> Any:
    return sc(v) if isinstance(v, str) else _num(v)


def _signal(ev: Decisions, d: Any, selected: set[str], sc: Callable[[str], str]) -> AuditRow:
    gates = [_gate_record(g, sc) for g in getattr(d, "gates", ())]
    f = getattr(d, "features", None)
    features = {name: _feature(getattr(f, name, None), sc) for name in _FEATURES} if f is not None else {}
    rejections = getattr(d, "rejections", ())
    first = getattr(d, "first_rejection", None)
    values = {
        "ts_ms": int(d.ts_ms), "time": iso_time(d.ts_ms), "profile": ev.profile,
        "symbol": d.symbol, "side": d.side, "score": json_safe(d.score),
        "raw_score": json_safe(d.raw_score), "valid": bool(d.valid),
        "entry_valid": bool(d.entry_valid), "add_valid": bool(d.add_valid),
        "first_rejection": first or "", "rejections": ";".join(rejections),
        "selected": d.symbol in selected, "cycle_ms": ev.ts_ms,
    }
    return AuditRow("signals", ev.profile, values, {"gates": gates, "features": features}, extra_clean=True)


def _diag(ev: Event, profile: str, **values: Any) -> AuditRow:
    return AuditRow("diagnostics", profile, {**_base(ev), "profile": profile, **values},
                    {"record": json_safe(ev.to_record())})


def rows_for_event(ev: Event) -> list[AuditRow]:
    """The audit rows one event produces (none for events the audit does not keep:
    ``Positions`` snapshots, which the state store and the UI already show)."""
    if isinstance(ev, Decisions):
        selected = set(ev.selected)
        sc = scrubber()
        return [_signal(ev, d, selected, sc) for d in ev.decisions if d is not None]
    if isinstance(ev, TradeClosed):
        return [_trade(ev)]
    if isinstance(ev, FillEvent):
        return [_fill(ev)]
    if isinstance(ev, CycleStats):
        return [_cycle(ev)]
    if isinstance(ev, OrderEvent):
        return [_diag(ev, ev.profile, kind="order", symbol=ev.symbol, action=ev.action,
                      purpose=ev.purpose, side=ev.side, price=ev.price, amount=ev.amount,
                      client_order_id=ev.client_order_id, reduce_only=ev.reduce_only,
                      message=ev.reason)]
    if isinstance(ev, StopEvent):
        return [_diag(ev, ev.profile, kind="stop", symbol=ev.symbol, action=ev.action,
                      purpose="stop", price=ev.trigger, amount=ev.amount, reduce_only=True,
                      message=ev.reason)]
    if isinstance(ev, Repair):
        return [_diag(ev, ev.profile, kind="repair", symbol=ev.symbol, action=ev.action,
                      message=ev.problem)]
    if isinstance(ev, ProtectionEvent):
        return [_diag(ev, ev.profile, kind="protection", symbol="", action=f"{ev.name} {ev.action}",
                      message=f"{ev.reason} (until {iso_time(ev.until_ms)})")]
    if isinstance(ev, ErrorEvent):
        return [_diag(ev, ev.profile, kind="error", action=ev.where, fatal=ev.fatal,
                      message=ev.message)]
    if isinstance(ev, EngineStatus):
        text = f"mode={ev.mode} enabled={','.join(ev.enabled)} paused={ev.paused}"
        return [_diag(ev, "", kind="status", action=ev.mode,
                      message=f"{text}: {ev.message}" if ev.message else text)]
    if isinstance(ev, Account):
        return [AuditRow("account", "", {
            **_base(ev), "equity": ev.equity, "free_margin": ev.free_margin,
            "used_margin": ev.used_margin, "unrealized_pnl": ev.unrealized_pnl,
            "realized_pnl": ev.realized_pnl, "fees": ev.fees,
            "total_pnl": ev.realized_pnl + ev.unrealized_pnl,
        })]
    if isinstance(ev, Regime):
        inputs = json.dumps(scrub_obj(json_safe(ev.inputs)), sort_keys=True, separators=(",", ":"))
        return [AuditRow("macro", "", {**_base(ev), "regime": ev.regime, "previous": ev.previous,
                                       "inputs": inputs})]
    if isinstance(ev, Premium):
        return [AuditRow("external", "", {
            **_base(ev), "symbol": ev.symbol, "premium_bps": ev.premium_bps,
            "divergence_1m_bps": ev.divergence_1m_bps, "reference_age_ms": ev.reference_age_ms,
            "blocked": ev.blocked, "reason": ev.reason,
        })]
    return []
