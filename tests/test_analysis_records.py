"""Loading an audit record: SQLite and CSV (with rotated files and header changes) agree."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from engine.analysis.records import find_profile_dirs, load_run
from engine.runtime.events import Account, Decisions, Regime, TradeClosed
from engine.store.audit import AuditWriter
from engine.strategy.decision import HARD, PENALTY, GateResult

from test_audit_files import Clock
from test_audit_writer import T0, decision


def gates(i: int) -> tuple[GateResult, ...]:
    base = (GateResult("macro_trend", 0.01 * i, 0.0, True, HARD, ">"),
            GateResult("chop", 40.0 + i, 55.0, 40.0 + i <= 55.0, HARD, "<="))
    if i >= 20:  # a settings change adds a gate mid-run
        base += (GateResult("ref_premium", float(i), 30.0, i < 30, PENALTY, "<"),)
    if i % 7 == 0:
        base += (GateResult("pullback_cross_age", math.inf, 240.0, False, HARD, "<="),)
    return base


@pytest.fixture
def run(tmp_path):
    w = AuditWriter(tmp_path, max_bytes=4_000, clock=Clock())
    for i in range(40):
        side = "long" if i % 2 == 0 else "short"
        w(Decisions(T0 + i * 300_000 + 1, side,
                    (decision("A/B", side, T0 + i * 300_000, gates(i)),
                     decision("C/B", side, T0 + i * 300_000, gates(i), features=False)), ("A/B",)))
        w(Account(T0 + i, Decimal(1000 + i), Decimal(900), Decimal(100), Decimal(0), Decimal(i), Decimal(0)))
        if i % 5 == 4:
            w(TradeClosed(T0 + i * 300_000 + 7, side, "A/B", side, Decimal("1.5"), Decimal("1.53"),
                          Decimal(2), Decimal("0.04"), Decimal("0.001"), T0 + i * 300_000 + 2, "filled"))
        w.flush()
    w(Regime(T0, "risk_off", "neutral", {"x": 1}))
    w.close()
    return tmp_path


def test_csv_with_archives_reads_back_like_sqlite(run):
    assert (run / "long" / "csv_archive").is_dir()
    db = load_run(run / "audit.sqlite")
    dirs = find_profile_dirs(run)
    assert [d.name for d in dirs] == ["long", "short"]
    import shutil

    shutil.move(run / "audit.sqlite", run / "elsewhere.sqlite")  # force the CSV reader
    csv = load_run(run)
    assert csv.kind == "csv" and db.kind == "sqlite"
    assert len(db.signals) == len(csv.signals) == 80
    for rec in (db, csv):
        assert rec.gates[:2] == ("macro_trend", "chop")
        assert set(rec.gates) == {"macro_trend", "chop", "ref_premium", "pullback_cross_age"}
        s = rec.signals
        assert s["ref_premium_value"].isna().sum() == 40 and s["ref_premium_passed"].notna().sum() == 40
        assert s.loc[s["pullback_cross_age_value"].notna(), "pullback_cross_age_value"].eq(math.inf).all()
        assert s["selected"].sum() == 40 and s["valid"].all()
        assert rec.trades["pnl"].tolist() == [0.04] * 8
        assert rec.trades["ret"].tolist() == pytest.approx([0.02, -0.02] * 4)  # a short loses when price rises
        assert rec.trades["ts_ms"].is_monotonic_increasing
        assert len(rec.account) == 40  # written to both profile folders, read once
        assert len(rec.macro) == 1
        assert rec.profiles == ("long", "short")
    cols = ["ts_ms", "profile", "symbol", "side", "score", "chop_value", "chop_passed", "ref_premium_value",
            "f_close", "first_rejection"]
    a = db.signals[cols].sort_values(["ts_ms", "symbol"]).reset_index(drop=True)
    b = csv.signals[cols].sort_values(["ts_ms", "symbol"]).reset_index(drop=True)
    assert a.equals(b) or a.astype(str).equals(b.astype(str))
    assert csv.gate_kinds.get("chop") == "hard"


def test_missing_record(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path)


def test_a_record_with_trades_only_is_analysed(tmp_path):
    from engine.analysis.analyze import AnalysisOptions, analyze
    from engine.analysis.triple_barrier import Barriers

    w = AuditWriter(tmp_path, db=False)
    for i, (side, pnl, exit_) in enumerate([("long", "1", "1.6"), ("long", "-2", "1.4"), ("short", "1", "1.4")]):
        w(TradeClosed(T0 + i, side, "A/B", side, Decimal("1.5"), Decimal(exit_), Decimal(1), Decimal(pnl),
                      Decimal(0), T0 - 10 + i, "filled"))  # (profile, symbol, opened) is unique
    w.close()
    rec = load_run(tmp_path)
    assert rec.kind == "csv" and len(rec.signals) == 0 and rec.span_ms == (T0, T0 + 2)
    res = analyze(rec, {}, AnalysisOptions(barriers=(Barriers(0.01, 0.02, 60),)))
    t = res.trade_table.set_index("side")
    assert t.loc["long", "wins"] == 1 and t.loc["short", "win_rate"] == 1.0
    assert res.label_table.empty
    assert all(r.result is None for r in res.fm)
    assert any("no entry signal" in n for n in res.notes)


RECORD_FRAMES = ("signals", "trades", "fills", "cycles", "diagnostics", "account", "macro", "external")


def assert_same_record(a, b) -> None:
    """Two RunRecords hold the same frames (columns, dtypes, cells) and the same gates."""
    import pandas as pd

    assert a.gates == b.gates and a.gate_kinds == b.gate_kinds
    for name in RECORD_FRAMES:
        fa, fb = getattr(a, name), getattr(b, name)
        assert list(fa.columns) == list(fb.columns), name
        assert fa.dtypes.to_dict() == fb.dtypes.to_dict(), name
        pd.testing.assert_frame_equal(fa, fb, check_exact=True, obj=name)


async def test_the_fast_sqlite_load_equals_the_json_view_load_on_a_replay_record(tmp_path):
    """``load_run`` reads a schema-2 SQLite record through ``signals_frame`` (no JSON); the
    record is the one the schema-1 view gives, cell for cell, on a real replay's audit."""
    from engine.analysis.records import _load_sqlite
    from engine.runtime.replay import run_replay
    from engine.settings import Settings

    start = 1_722_816_000_000  # 2024-08-05 00:00 UTC: the crash, trades on both sides
    summary = await run_replay(Settings.defaults(), symbols=["BTC", "ETH", "SOL"], start_ms=start, max_steps=288,
                               audit_dir=tmp_path)
    db = tmp_path / "audit.sqlite"
    fast = load_run(tmp_path)
    slow = _load_sqlite(db, fast=False)
    assert fast.kind == slow.kind == "sqlite"
    assert len(fast.signals) == 288 * 3 * 2 and summary.trades == len(fast.trades) > 0
    assert fast.gates[:2] == ("strategy_enabled", "macro_trend") and fast.gate_kinds["macro_trend"] == "hard"
    assert_same_record(fast, slow)


def test_the_fast_sqlite_load_of_an_empty_record(tmp_path):
    from engine.analysis.records import _load_sqlite

    w = AuditWriter(tmp_path)
    w(Account(T0, Decimal(1000), Decimal(900), Decimal(100), Decimal(0), Decimal(0), Decimal(0)))
    w.close()
    fast, slow = load_run(tmp_path), _load_sqlite(tmp_path / "audit.sqlite", fast=False)
    assert len(fast.signals) == 0 and fast.gates == ()
    assert_same_record(fast, slow)


def test_the_fast_sqlite_load_on_gates_added_mid_run(run):
    from engine.analysis.records import _load_sqlite

    assert_same_record(load_run(run / "audit.sqlite"), _load_sqlite(run / "audit.sqlite", fast=False))
