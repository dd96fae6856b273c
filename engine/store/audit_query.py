"""Read-only queries on the audit trail's SQLite file (written by ``audit.AuditWriter``).

For the views that show a position's or a trade's history when the events themselves were not
seen (a viewer that attached after the position opened): its orders, stops and repairs (from
``audit_diagnostics``, rebuilt from each row's full event record), its fills and the close
(from ``audit_trades``), and the signal decision behind its entry (``audit_signals``).

The file is opened with ``mode=ro`` (SQLite's read-only URI): nothing here can write to it,
create it or take a write lock; a missing, locked or foreign file gives empty answers, never an
exception into the caller.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.runtime import events as ev

from .audit_schema import DB_NAME

log = logging.getLogger("crot.audit")

__all__ = ["audit_db_path", "connect_readonly", "entry_decision", "position_events", "recent_events",
           "recent_trades"]

#: how far back a position's history is searched when no earlier close bounds it
LOOKBACK_MS = 7 * 24 * 3600 * 1000


def audit_db_path(data_dir: str | Path, mode: str) -> Path:
    """Where a live or paper bot writes its audit SQLite (engine/runtime/live.py)."""
    return Path(data_dir) / mode / DB_NAME


def connect_readonly(path: str | Path) -> sqlite3.Connection | None:
    p = Path(path)
    if not p.is_file():
        return None
    try:
        db = sqlite3.connect(f"{p.absolute().as_uri()}?mode=ro", uri=True, timeout=1.0)
        db.execute("PRAGMA query_only = ON")
        return db
    except sqlite3.Error as exc:
        log.warning("audit trail %s not readable: %s", p, exc)
        return None


def _dec(x: Any) -> Decimal | None:
    if x is None or x == "":
        return None
    try:
        return Decimal(str(x))
    except (InvalidOperation, ValueError):
        return None


def _event_from_record(rec: dict[str, Any]) -> ev.Event | None:
    kind = rec.get("kind")
    try:
        if kind == "order":
            return ev.OrderEvent(int(rec["ts_ms"]), rec["profile"], rec["symbol"], rec["action"], rec["purpose"],
                                 rec.get("client_order_id"), rec.get("side", ""), _dec(rec.get("price")),
                                 _dec(rec.get("amount")) or Decimal(0), bool(rec.get("reduce_only")),
                                 rec.get("reason", "") or "")
        if kind == "stop":
            return ev.StopEvent(int(rec["ts_ms"]), rec["profile"], rec["symbol"], rec["action"],
                                _dec(rec.get("trigger")), _dec(rec.get("amount")) or Decimal(0),
                                rec.get("reason", "") or "")
        if kind == "repair":
            return ev.Repair(int(rec["ts_ms"]), rec["profile"], rec["symbol"], rec.get("problem", ""),
                             rec.get("action", ""))
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _trade_row_event(row: sqlite3.Row) -> ev.Event | None:
    try:
        if row["event"] == "fill":
            return ev.FillEvent(int(row["ts_ms"]), row["profile"], row["symbol"], row["side"] or "",
                                _dec(row["price"]) or Decimal(0), _dec(row["amount"]) or Decimal(0),
                                _dec(row["fee"]) or Decimal(0), row["purpose"] or "")
        if row["event"] == "close":
            return ev.TradeClosed(int(row["ts_ms"]), row["profile"], row["symbol"], row["side"] or "",
                                  _dec(row["entry_price"]) or Decimal(0), _dec(row["exit_price"]) or Decimal(0),
                                  _dec(row["contracts"]) or Decimal(0), _dec(row["pnl"]) or Decimal(0),
                                  _dec(row["fees"]) or Decimal(0), int(row["opened_ms"] or 0), row["reason"] or "")
    except (IndexError, TypeError, ValueError):
        return None
    return None


def _history(db: sqlite3.Connection, where: str, args: tuple[Any, ...], limit: int) -> list[ev.Event]:
    """Orders, stops and repairs (audit_diagnostics) and fills and closes (audit_trades)
    matching `where` (an SQL condition on both tables' common columns with `args`), the newest
    `limit` of them, oldest first."""
    out: list[tuple[int, int, int, ev.Event]] = []
    for row in db.execute(f"SELECT id, record FROM audit_diagnostics WHERE {where} AND kind IN "
                          "('order', 'stop', 'repair') ORDER BY ts_ms DESC, id DESC LIMIT ?", (*args, limit)):
        try:
            rec = json.loads(row["record"] or "{}")
        except ValueError:
            continue
        e = _event_from_record(rec)
        if e is not None:
            out.append((e.ts_ms, 0, int(row["id"]), e))
    for row in db.execute(f"SELECT * FROM audit_trades WHERE {where} AND event IN ('fill', 'close') "
                          "ORDER BY ts_ms DESC, id DESC LIMIT ?", (*args, limit)):
        e = _trade_row_event(row)
        if e is not None:
            out.append((e.ts_ms, 1 if e.kind == "fill" else 2, int(row["id"]), e))
    out.sort(key=lambda x: x[:3])
    return [x[3] for x in out[-limit:]] if limit else []


def position_events(path: str | Path, profile: str, symbol: str, *, opened_ms: int,
                    until_ms: int | None = None, limit: int = 400) -> list[ev.Event]:
    """The orders, stops, repairs, fills and close of one position of `profile` on `symbol`
    that was opened at `opened_ms`: from just after the previous close of that symbol (at most
    `LOOKBACK_MS` back) to `until_ms` (its close; None = now), oldest first, at most `limit`
    (the newest ones)."""
    db = connect_readonly(path)
    if db is None:
        return []
    db.row_factory = sqlite3.Row
    try:
        prev = db.execute("SELECT MAX(ts_ms) FROM audit_trades WHERE profile = ? AND symbol = ? AND event = 'close' "
                          "AND ts_ms < ?", (profile, symbol, opened_ms)).fetchone()[0]
        since = int(prev) if prev is not None else opened_ms - LOOKBACK_MS
        until = until_ms if until_ms is not None else 2 ** 62
        return _history(db, "profile = ? AND symbol = ? AND ts_ms > ? AND ts_ms <= ?",
                        (profile, symbol, since, until), max(0, int(limit)))
    except sqlite3.Error as exc:
        log.warning("audit trail %s: %s", path, exc)
        return []
    finally:
        db.close()


def recent_events(path: str | Path, limit: int = 2500, before_ms: int | None = None) -> list[ev.Event]:
    """The newest `limit` orders, stops, repairs, fills and closes of the record (both
    profiles), older than `before_ms` when given, oldest first: the event log's history from
    before the app started."""
    db = connect_readonly(path)
    if db is None:
        return []
    db.row_factory = sqlite3.Row
    try:
        return _history(db, "ts_ms < ?", (before_ms if before_ms is not None else 2 ** 62,), max(0, int(limit)))
    except sqlite3.Error as exc:
        log.warning("audit trail %s: %s", path, exc)
        return []
    finally:
        db.close()


def recent_trades(path: str | Path, limit: int = 2000) -> list[ev.TradeClosed]:
    """The newest `limit` closed trades of the record (both profiles), oldest first: the
    trades screen's history from before the app started."""
    db = connect_readonly(path)
    if db is None:
        return []
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute("SELECT * FROM audit_trades WHERE event = 'close' ORDER BY ts_ms DESC, id DESC LIMIT ?",
                          (max(0, int(limit)),)).fetchall()
    except sqlite3.Error as exc:
        log.warning("audit trail %s: %s", path, exc)
        return []
    finally:
        db.close()
    out = [e for e in (_trade_row_event(r) for r in reversed(rows)) if isinstance(e, ev.TradeClosed)]
    return out


def entry_decision(path: str | Path, profile: str, symbol: str, at_ms: int, *,
                   window_ms: int = 3600 * 1000) -> Any:
    """The signal decision of `profile` on `symbol` behind an entry at `at_ms`: the newest one
    at or before it within `window_ms`, a selected one first. An object with the attributes of
    ``engine.strategy.decision.Decision`` the views read (score, raw_score, valid, entry_valid,
    add_valid, first_rejection, rejections, gates with name/kind/value/threshold/op/passed/detail,
    ts_ms, symbol, side), or None."""
    db = connect_readonly(path)
    if db is None:
        return None
    db.row_factory = sqlite3.Row
    try:
        row = db.execute("SELECT * FROM audit_signals WHERE profile = ? AND symbol = ? AND ts_ms <= ? AND ts_ms >= ? "
                         "ORDER BY selected DESC, ts_ms DESC LIMIT 1",
                         (profile, symbol, at_ms, at_ms - window_ms)).fetchone()
    except sqlite3.Error as exc:
        log.warning("audit trail %s: %s", path, exc)
        return None
    finally:
        db.close()
    if row is None:
        return None

    def num(x: Any) -> float:
        try:
            return float(x)
        except (TypeError, ValueError):
            return float("nan")

    try:
        gates_raw = json.loads(row["gates"] or "[]")
    except ValueError:
        gates_raw = []
    gates = tuple(SimpleNamespace(name=g.get("name", ""), kind=g.get("kind", ""), value=num(g.get("value")),
                                  threshold=num(g.get("threshold")), op=g.get("op", "") or "",
                                  passed=bool(g.get("passed")), detail=g.get("detail", "") or "")
                  for g in gates_raw if isinstance(g, dict))
    rejections = tuple(r for r in str(row["rejections"] or "").split(";") if r.strip())
    return SimpleNamespace(ts_ms=int(row["ts_ms"]), symbol=row["symbol"], side=row["side"],
                           score=num(row["score"]), raw_score=num(row["raw_score"]), valid=bool(row["valid"]),
                           entry_valid=bool(row["entry_valid"]), add_valid=bool(row["add_valid"]),
                           first_rejection=row["first_rejection"] or "", rejections=rejections,
                           selected=bool(row["selected"]), gates=gates, source="audit")
