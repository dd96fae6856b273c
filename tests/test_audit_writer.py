"""AuditWriter: rows of every event type in CSV, JSONL and SQLite; routing; sampling; API."""

from __future__ import annotations

import asyncio
import csv
import json
import math
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from engine.runtime.events import (
    Account,
    CycleStats,
    Decisions,
    EngineStatus,
    ErrorEvent,
    EventBus,
    FillEvent,
    OrderEvent,
    PositionView,
    Positions,
    Premium,
    Regime,
    Repair,
    StopEvent,
    TradeClosed,
)
from engine.settings import GlobalSettings, ProfileSettings, Settings
from engine.store.audit import AuditPaths, AuditWriter
from engine.store.audit_schema import (
    ACCOUNT_COLUMNS,
    CYCLE_COLUMNS,
    DIAGNOSTIC_COLUMNS,
    EXTERNAL_COLUMNS,
    FEATURE_COLUMNS,
    MACRO_COLUMNS,
    SIGNAL_COLUMNS,
    TRADE_COLUMNS,
)
from engine.strategy.decision import HARD, INFO, PENALTY, Decision, GateResult
from engine.strategy.features import SymbolFeatures

T0 = 1_700_000_000_000


def decision(symbol="ETH/USDT", side="long", ts=T0, gates=None, features=True) -> Decision:
    gates = gates if gates is not None else (
        GateResult("macro_trend", 0.012, 0.0, True, HARD, ">"),
        GateResult("chop", 61.5, 55.0, False, HARD, "<=", "choppy"),
        GateResult("pullback_gap", math.nan, 0.001, False, PENALTY, ">=", score_delta=-0.01),
        GateResult("min_score", math.inf, 0.03, True, INFO, ">="),
    )
    f = SymbolFeatures.neutral_benchmark(ts, symbol) if features else None
    return Decision(symbol, side, ts, 0.05, 0.06, True, not any(g.blocks for g in gates), True,
                    tuple(gates), f)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as fh:
        r = csv.DictReader(fh)
        rows = list(r)
        return list(r.fieldnames or []), rows


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def all_events():
    d1 = decision()
    d2 = decision("XRP/USDT", features=False)
    return [
        Decisions(T0 + 300_000, "long", (d1, d2), ("ETH/USDT",)),
        OrderEvent(T0 + 1, "long", "ETH/USDT", "placed", "entry", 42, "buy", Decimal("1850.5"),
                   Decimal("3"), False, "ladder rung 1"),
        FillEvent(T0 + 2, "long", "ETH/USDT", "buy", Decimal("1850.5"), Decimal("3"), Decimal("0.01"), "entry"),
        StopEvent(T0 + 3, "long", "ETH/USDT", "placed", Decimal("1813.49"), Decimal("3"), "hard stop"),
        Repair(T0 + 4, "short", "XRP/USDT", "stop missing", "placed stop"),
        ErrorEvent(T0 + 5, "markets", "XYZ is not a market"),
        ErrorEvent(T0 + 6, "cycle", "boom", profile="short", fatal=True),
        EngineStatus(T0 + 7, "replay", ("long", "short"), False, "started"),
        TradeClosed(T0 + 3_600_000, "long", "ETH/USDT", "long", Decimal("1850"), Decimal("1887"),
                    Decimal("3"), Decimal("0.9"), Decimal("0.02"), T0, "filled"),
        CycleStats(T0 + 8, "long", 10, 10, 2, 1, 2, 1, 12.5),
        Account(T0 + 9, Decimal("1000.5"), Decimal("900"), Decimal("100.5"), Decimal("-1.25"),
                Decimal("3.5"), Decimal("0.2")),
        Regime(T0 + 10, "risk_off", "neutral", {"rsi": 31.2, "gold": "XAUT/USDT"}),
        Premium(T0 + 11, "ETH/USDT", 12.5, None, 800, True, "premium too high"),
        Positions(T0 + 12, "long", (PositionView("long", "ETH/USDT", "long", Decimal(3), Decimal(1850), None,
                                                 Decimal(5550), Decimal(0), None, None, "normal", 0, 0, False, T0),)),
    ]


def test_every_event_type_lands_in_its_files_and_tables(tmp_path):
    w = AuditWriter(tmp_path)
    for ev in all_events():
        w(ev)
    assert w.flush() > 0
    w.close()
    assert w.stats.failures == 0, w.stats.errors
    long_dir, short_dir = tmp_path / "long", tmp_path / "short"

    header, rows = read_csv(long_dir / "signal_analytics.csv")
    assert header[:len(SIGNAL_COLUMNS)] == list(SIGNAL_COLUMNS)
    assert header[-len(FEATURE_COLUMNS):] == list(FEATURE_COLUMNS)
    assert header[len(SIGNAL_COLUMNS):len(SIGNAL_COLUMNS) + 6] == [
        "macro_trend_value", "macro_trend_threshold", "macro_trend_passed",
        "chop_value", "chop_threshold", "chop_passed"]
    assert [r["symbol"] for r in rows] == ["ETH/USDT", "XRP/USDT"]
    eth = rows[0]
    assert eth["ts_ms"] == str(T0) and eth["cycle_ms"] == str(T0 + 300_000)
    assert eth["time"] == "2023-11-14T22:13:20.000Z"
    assert eth["selected"] == "true" and rows[1]["selected"] == "false"
    assert eth["first_rejection"] == "chop" and eth["entry_valid"] == "false"
    assert eth["chop_value"] == "61.5" and eth["chop_threshold"] == "55.0" and eth["chop_passed"] == "false"
    assert eth["pullback_gap_value"] == "" and eth["min_score_value"] == "inf"
    assert eth["f_close"] == "1.0" and rows[1]["f_close"] == ""

    js = read_jsonl(long_dir / "signal_analytics.jsonl")
    assert [g["name"] for g in js[0]["gates"]] == ["macro_trend", "chop", "pullback_gap", "min_score"]
    assert js[0]["gates"][1] == {"name": "chop", "value": 61.5, "threshold": 55.0, "passed": False,
                                 "kind": "hard", "op": "<=", "detail": "choppy", "score_delta": 0.0,
                                 "score_factor": 1.0}
    assert js[0]["gates"][2]["value"] is None and js[0]["features"]["close"] == 1.0
    assert js[1]["features"] == {}

    header, rows = read_csv(long_dir / "trades.csv")
    assert header == list(TRADE_COLUMNS)
    assert [r["event"] for r in rows] == ["fill", "close"]
    close = rows[1]
    assert close["pnl"] == "0.9" and close["entry_price"] == "1850" and close["hold_min"] == "60.0"
    assert float(close["ret"]) == pytest.approx(1887 / 1850 - 1)

    header, rows = read_csv(long_dir / "diagnostics.csv")
    assert header == list(DIAGNOSTIC_COLUMNS)
    kinds = [(r["kind"], r["profile"]) for r in rows]
    # profile-less error and status go to every profile's diagnostics
    assert kinds == [("order", "long"), ("stop", "long"), ("error", ""), ("status", "")]
    assert rows[0]["client_order_id"] == "42" and rows[0]["reduce_only"] == "false"
    _, short_rows = read_csv(short_dir / "diagnostics.csv")
    assert [(r["kind"], r["profile"]) for r in short_rows] == [
        ("repair", "short"), ("error", ""), ("error", "short"), ("status", "")]
    assert short_rows[2]["fatal"] == "true" and short_rows[2]["action"] == "cycle"
    djs = read_jsonl(long_dir / "diagnostics.jsonl")
    assert djs[0]["record"]["kind"] == "order" and djs[0]["record"]["price"] == "1850.5"

    assert read_csv(long_dir / "cycle_stats.csv")[0] == list(CYCLE_COLUMNS)
    for d in (long_dir, short_dir):  # global streams in both profiles
        h, acc = read_csv(d / "account_pnl.csv")
        assert h == list(ACCOUNT_COLUMNS) and acc[0]["total_pnl"] == "2.25"
        h, mac = read_csv(d / "macro.csv")
        assert h == list(MACRO_COLUMNS) and json.loads(mac[0]["inputs"]) == {"gold": "XAUT/USDT", "rsi": 31.2}
        h, ext = read_csv(d / "external_prices.csv")
        assert h == list(EXTERNAL_COLUMNS) and ext[0]["blocked"] == "true" and ext[0]["divergence_1m_bps"] == ""
    assert not (short_dir / "signal_analytics.csv").exists()

    db = sqlite3.connect(tmp_path / "audit.sqlite")
    count = lambda t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: E731
    assert {t: count(t) for t in ("audit_signals", "audit_trades", "audit_diagnostics", "audit_cycles",
                                  "audit_account", "audit_macro", "audit_external")} == {
        "audit_signals": 2, "audit_trades": 2, "audit_diagnostics": 6, "audit_cycles": 1,
        "audit_account": 1, "audit_macro": 1, "audit_external": 1}
    gates, feats, sel = db.execute(
        "SELECT gates, features, selected FROM audit_signals WHERE symbol='ETH/USDT'").fetchone()
    assert json.loads(gates)[1]["name"] == "chop" and json.loads(feats)["close"] == 1.0 and sel == 1
    assert db.execute("SELECT pnl FROM audit_trades WHERE event='close'").fetchone()[0] == "0.9"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_profile_paths_from_settings(tmp_path):
    absolute = tmp_path / "elsewhere" / "long_trades.csv"
    settings = Settings(
        GlobalSettings(csv_archive_dir="old", bot_profiles=("long",)),
        {"long": ProfileSettings(csv_log_file=str(absolute), signal_analytics_csv_file="sig/signals.csv"),
         "short": ProfileSettings()},
    )
    p = AuditPaths.from_settings(settings, tmp_path / "data", "long")
    assert p.files["trades"] == absolute
    assert p.files["signals"] == tmp_path / "data" / "long" / "sig" / "signals.csv"
    assert p.files["cycles"] == tmp_path / "data" / "long" / "cycle_stats.csv"
    assert p.archive_dir == tmp_path / "data" / "long" / "old"
    w = AuditWriter.from_settings(settings, tmp_path / "data")
    assert w.profiles == ("long",)
    assert w.account_sample_ms == 30_000 and w.max_bytes == 1_048_576
    w(TradeClosed(T0, "long", "A/B", "long", Decimal(1), Decimal(2), Decimal(1), Decimal(1), Decimal(0), T0 - 1, "x"))
    w(Account(T0, Decimal(1), Decimal(1), Decimal(0), Decimal(0), Decimal(0), Decimal(0)))
    w.close()
    assert absolute.exists()
    assert (tmp_path / "data" / "long" / "account_pnl.csv").exists()
    assert not (tmp_path / "data" / "short").exists()  # short is not enabled


def test_shared_path_is_written_once(tmp_path):
    shared = str(tmp_path / "all_account.csv")
    paths = {s: AuditPaths.from_values(tmp_path, s, {"account": shared}) for s in ("long", "short")}
    w = AuditWriter(tmp_path, paths=paths, db=False)
    w(Account(T0, Decimal(1), Decimal(1), Decimal(0), Decimal(0), Decimal(0), Decimal(0)))
    w.close()
    assert len(read_csv(Path(shared))[1]) == 1
    assert not (tmp_path / "audit.sqlite").exists()


def test_account_and_premium_sampling(tmp_path):
    w = AuditWriter(tmp_path, profiles=("long",), account_sample_ms=30_000, premium_sample_ms=60_000, db=False)
    for i in range(10):  # one account sample every 10 s -> kept at 0, 30, 60, 90 s
        w(Account(T0 + i * 10_000, Decimal(i), Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0)))
    w(Premium(T0, "A", 1.0, 0.0, 10, False))
    w(Premium(T0 + 1_000, "A", 2.0, 0.0, 10, False))  # sampled away
    w(Premium(T0 + 2_000, "A", 99.0, 0.0, 10, True, "too high"))  # state change: kept
    w(Premium(T0 + 2_500, "B", 1.0, 0.0, 10, False))  # another symbol: kept
    w(Premium(T0 + 62_000, "A", 98.0, 0.0, 10, True, "too high"))  # interval passed: kept
    w.close()
    acc = read_csv(tmp_path / "long" / "account_pnl.csv")[1]
    assert [r["equity"] for r in acc] == ["0", "3", "6", "9"]
    ext = read_csv(tmp_path / "long" / "external_prices.csv")[1]
    assert [(r["symbol"], r["premium_bps"]) for r in ext] == [("A", "1.0"), ("A", "99.0"), ("B", "1.0"), ("A", "98.0")]
    assert w.stats.skipped_rows == 7


def test_subscriber_never_raises_and_bounds_its_queue(tmp_path):
    bus = EventBus()
    w = AuditWriter(tmp_path, max_events=3, db=False)
    bus.subscribe(w)
    bad = Decisions(T0, "long", (object(),), ())  # not a Decision: the event is skipped, counted
    bus.publish(bad)
    for i in range(4):
        bus.publish(CycleStats(T0 + i, "long", 1, 1, 0, 0, 0, 0, 1.0))
    assert w.stats.dropped_events == 2  # queue of 3: the bad event and the first cycle row fell out
    w.flush()
    assert len(read_csv(tmp_path / "long" / "cycle_stats.csv")[1]) == 3
    w(bad)
    w.flush()
    assert w.stats.bad_events == 1 and w.stats.failures == 1
    w.close()
    w(CycleStats(T0, "long", 1, 1, 0, 0, 0, 0, 1.0))  # after close: dropped, no error
    assert w.stats.dropped_events == 3


async def test_run_flusher_and_aclose(tmp_path):
    w = AuditWriter(tmp_path)
    task = asyncio.create_task(w.run_flusher(0.01))
    w(CycleStats(T0, "long", 1, 1, 0, 0, 0, 0, 1.0))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if (tmp_path / "long" / "cycle_stats.csv").exists():
            break
    assert len(read_csv(tmp_path / "long" / "cycle_stats.csv")[1]) == 1
    w(CycleStats(T0 + 1, "long", 1, 1, 0, 0, 0, 0, 1.0))
    await w.aclose()
    await asyncio.wait_for(task, 1.0)
    assert len(read_csv(tmp_path / "long" / "cycle_stats.csv")[1]) == 2
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    assert db.execute("SELECT COUNT(*) FROM audit_cycles").fetchone()[0] == 2


def test_existing_files_are_appended_after_a_restart(tmp_path):
    for i in range(2):
        w = AuditWriter(tmp_path)
        w(Decisions(T0 + i, "long", (decision(ts=T0 + i),), ()))
        w(CycleStats(T0 + i, "long", 1, 1, 0, 0, 0, 0, 1.0))
        w.close()
    assert len(read_csv(tmp_path / "long" / "signal_analytics.csv")[1]) == 2
    assert len(read_csv(tmp_path / "long" / "cycle_stats.csv")[1]) == 2
    assert not (tmp_path / "long" / "csv_archive").exists()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    assert db.execute("SELECT COUNT(*) FROM audit_signals").fetchone()[0] == 2


@pytest.mark.parametrize("durable", [True, False], ids=["live", "replay"])
async def test_the_durability_barrier_is_kept_live_and_skipped_in_replay(tmp_path, durable):
    """Live and paper: before a cycle's state ends a fill's read window, the engine makes the
    record durable (EventBus.flush_durable). A replay's record (durable=False) is written by
    its daily flush and at the end only: the barrier would cost fsyncs for nothing."""
    from engine.runtime.events import EventBus

    bus = EventBus()
    w = AuditWriter(tmp_path, durable=durable)
    bus.subscribe(w)
    bus.publish(FillEvent(T0 + 2, "long", "ETH/USDT", "buy", Decimal("1850.5"), Decimal("3"), Decimal("0.01"),
                          "entry"))
    await bus.flush_durable()

    def fills() -> int:
        path = tmp_path / "audit.sqlite"
        if not path.exists():
            return 0
        db = sqlite3.connect(path)
        try:
            return db.execute("SELECT COUNT(*) FROM audit_trades WHERE event = 'fill'").fetchone()[0]
        except sqlite3.Error:
            return 0
        finally:
            db.close()

    assert fills() == (1 if durable else 0)
    w.flush()
    assert fills() == 1  # the replay's own flush writes it
    w.close()
