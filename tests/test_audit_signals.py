"""Signal decisions in the audit SQLite (schema 2): stored once, compactly, read back exactly.

The live JSONL file (``signal_files=("jsonl",)``) is the reference: what ``read_signals`` and
the schema-1 view give back must be the same records.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from decimal import Decimal

import numpy as np

from engine.runtime.events import CycleStats, Decisions
from engine.store.audit import AuditWriter
from engine.store.audit_rows import json_safe
from engine.store.audit_signals import read_signals
from engine.strategy.decision import HARD, INFO, PENALTY, Decision, GateResult
from engine.strategy.features import SymbolFeatures

from test_audit_writer import T0, read_jsonl

NAN, INF = math.nan, math.inf


def feats(ts: int, i: int) -> SymbolFeatures:
    f = SymbolFeatures.neutral_benchmark(ts, "A/B")
    return dataclasses.replace(f, close=100.0 + i / 7, chop=40.0 + i, pullback_cross="up" if i % 2 else "",
                               macro_ts_ms=ts - 3_600_000, warm=i % 3 != 0, spike_direction="down")


def gates_for(i: int) -> tuple[GateResult, ...]:
    """A run's gates: values of every kind, a gate added mid-run, an order change, a kind change."""
    g = [
        GateResult("macro_trend", 0.01 * i - 0.1, 0.0, i > 10, HARD, ">", score_delta=-0.018 if i <= 10 else 0.0),
        GateResult("chop", 40.0 + i, 61.8, True, HARD, "<="),
        GateResult("value_area", 20.0 + i / 3, 20.5 + i / 9, True, HARD, ">=",  # a threshold that moves
                   "outside the value area" if i % 2 else ""),
        GateResult("pullback_cross_age", INF if i % 4 == 0 else float(i), 180.0, i % 4 != 0, PENALTY, "<=",
                   f"last cross {i} candles ago: x{i / 3:.5f}", score_delta=NAN if i == 5 else -0.006),
        GateResult("spread", NAN if i == 3 else 0.5, NAN if i == 7 else 30.0, True, HARD, "<="),
        GateResult("ref_premium", -2.5 + i, 15.0, True, INFO if i % 5 == 0 else PENALTY, "" if i % 5 == 0 else "<=",
                   "HTX premium vs reference, bps", score_factor=0.5 if i == 9 else 1.0),
    ]
    if i >= 6:
        g.insert(2, GateResult("crowded_market", 0.0, 0.3, True, INFO, "<", "0/10 symbols signalling"))
    if i == 12:
        g[0], g[1] = g[1], g[0]  # another order
    if i == 13:  # odd value types (numpy, Decimal, int) are stored as numbers
        g.append(GateResult("min_score", np.float64(0.25), Decimal("0.03"), np.bool_(True), HARD, ">=",
                            score_delta=np.int64(0)))
    return tuple(g)


def decision(i: int, symbol: str = "A/B", side: str = "long", features: bool = True) -> Decision:
    ts = T0 + i * 300_000
    g = gates_for(i)
    return Decision(symbol, side, ts, 0.05 * i - 0.3 if i != 4 else NAN, 0.01 * i, True,
                    not any(x.blocks for x in g), i % 2 == 0, g, feats(ts, i) if features else None)


def write_run(path, n: int = 16, **kw) -> AuditWriter:
    w = AuditWriter(path, signal_files=("jsonl",), **kw)
    for i in range(n):
        side = "long" if i % 2 == 0 else "short"
        w(Decisions(T0 + i * 300_000 + 300_000, side,
                    (decision(i, side=side), decision(i, "C/B", side, features=i % 3 != 1)), ("A/B",)))
        if i % 4 == 3:
            w.flush()
    w.close()
    assert w.stats.failures == 0, w.stats.errors
    return w


def jsonl_records(path) -> list[dict]:
    out = []
    for side in ("long", "short"):
        p = path / side / "signal_analytics.jsonl"
        out += read_jsonl(p) if p.exists() else []
    return sorted(out, key=lambda r: (r["ts_ms"], r["symbol"]))


def as_jsonl(rec: dict) -> dict:
    """A read_signals record in the JSONL form (json_safe: NaN null, infinities as text)."""
    return json.loads(json.dumps(json_safe({**rec["values"], "gates": rec["gates"], "features": rec["features"]})))


def normalise(x):
    """Numbers compared as floats (SQLite's REAL column turns 0 and Decimal('0.03') into floats)."""
    if isinstance(x, dict):
        return {k: normalise(v) for k, v in x.items()}
    if isinstance(x, list):
        return [normalise(v) for v in x]
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    if isinstance(x, str):
        try:
            return float(Decimal(x)) if x not in ("inf", "-inf") else x
        except ArithmeticError:
            return x
    return x


def test_read_signals_gives_back_exactly_what_the_live_jsonl_holds(tmp_path):
    write_run(tmp_path)
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    stored = sorted((as_jsonl(r) for r in read_signals(db)), key=lambda r: (r["ts_ms"], r["symbol"]))
    live = jsonl_records(tmp_path)
    assert len(stored) == len(live) == 32
    for a, b in zip(stored, live):
        assert normalise(a) == normalise(b), (a["ts_ms"], a["symbol"])
    i12 = next(r for r in stored if r["ts_ms"] == T0 + 12 * 300_000)
    assert [g["name"] for g in i12["gates"][:3]] == ["chop", "macro_trend", "crowded_market"]  # its own order
    i5 = next(r for r in stored if r["ts_ms"] == T0 + 5 * 300_000)
    age = next(g for g in i5["gates"] if g["name"] == "pullback_cross_age")
    assert age["score_delta"] is None and age["detail"] == "last cross 5 candles ago: x1.66667"
    i7 = next(r for r in stored if r["ts_ms"] == T0 + 7 * 300_000)
    assert next(g for g in i7["gates"] if g["name"] == "spread")["threshold"] is None  # NaN, not the default 30
    i0 = next(r for r in stored if r["ts_ms"] == T0)
    assert next(g for g in i0["gates"] if g["name"] == "pullback_cross_age")["value"] == "inf"
    assert i0["features"]["warm"] is False and i0["features"]["pullback_cross"] == ""
    assert i0["rejections"] == "macro_trend" and i0["first_rejection"] == "macro_trend"


def test_the_schema1_view_reads_like_the_jsonl(tmp_path):
    write_run(tmp_path)
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    cols = [d[0] for d in db.execute("SELECT * FROM audit_signals").description]
    assert cols == ["id", "ts_ms", "time", "profile", "symbol", "side", "score", "raw_score", "valid",
                    "entry_valid", "add_valid", "first_rejection", "rejections", "selected", "cycle_ms", "gates",
                    "features"]
    rows = db.execute("SELECT * FROM audit_signals ORDER BY ts_ms, symbol").fetchall()
    live = jsonl_records(tmp_path)
    assert len(rows) == len(live)
    for r, j in zip(rows, live):
        rec = dict(zip(cols, r))
        assert rec["time"] == j["time"] and rec["rejections"] == j["rejections"]
        assert bool(rec["selected"]) == j["selected"]
        view_gates = json.loads(rec["gates"])
        assert [g["name"] for g in view_gates] == [g["name"] for g in j["gates"]]
        for a, b in zip(view_gates, j["gates"]):
            assert a["kind"] == b["kind"] and a["op"] == b["op"] and a["detail"] == b["detail"]
            assert a["passed"] is b["passed"]
            for k in ("value", "threshold", "score_delta", "score_factor"):
                assert normalise(a[k]) == normalise(b[k]), (k, a, b)  # exact (17 digits)
        assert normalise(json.loads(rec["features"])) == normalise(j["features"])


def test_stored_once_and_compact(tmp_path):
    """The SQLite holds each decision once, in far less space than the JSONL of the same run."""
    write_run(tmp_path, n=200)
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    assert db.execute("SELECT count(*) FROM audit_signal_rows").fetchone()[0] == 400
    tables = [n for n, in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert "audit_signals" not in tables  # a view now, no second copy
    page = db.execute("PRAGMA page_size").fetchone()[0]
    used = sum(n for n, in db.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'audit_signal_rows%' "
                                       "OR name LIKE 'audit_texts%'")) if page else 0
    jsonl = sum((tmp_path / s / "signal_analytics.jsonl").stat().st_size for s in ("long", "short"))
    assert used * 3 < jsonl


def test_a_restart_appends_to_the_same_file_with_its_dictionaries(tmp_path):
    write_run(tmp_path, n=8)
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    layouts, texts = (db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("audit_layouts", "audit_texts"))
    db.close()
    w = AuditWriter(tmp_path, signal_files=())
    w(Decisions(T0 + 99, "long", (decision(3), decision(13)), ()))  # one known layout, one new
    w.close()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    assert db.execute("SELECT count(*) FROM audit_signal_rows").fetchone()[0] == 18
    assert db.execute("SELECT count(*) FROM audit_layouts").fetchone()[0] == layouts + 1
    assert db.execute("SELECT count(*) FROM audit_texts").fetchone()[0] >= texts
    last = list(read_signals(db))[-2:]
    assert [r["values"]["ts_ms"] for r in last] == [T0 + 3 * 300_000, T0 + 13 * 300_000]
    assert last[1]["gates"][-1]["name"] == "min_score" and last[1]["gates"][-1]["value"] == 0.25
    ids = [i for i, in db.execute("SELECT id FROM audit_texts")]
    assert len(ids) == len(set(ids))


def test_a_failed_flush_takes_back_its_new_ids_and_columns(tmp_path):
    w = AuditWriter(tmp_path, signal_files=())
    w(Decisions(T0, "long", (decision(0),), ()))
    w.flush()
    lock = sqlite3.connect(tmp_path / "audit.sqlite", timeout=0)
    lock.execute("BEGIN EXCLUSIVE")
    w.db._connect().execute("PRAGMA busy_timeout=50")
    w(Decisions(T0 + 1, "long", (decision(6), decision(13)), ()))  # new gates, layouts and texts
    w.flush()
    assert w.stats.failures == 1 and w.pending_rows == 2
    lock.rollback()
    lock.close()
    w(Decisions(T0 + 2, "long", (decision(7),), ()))
    w.close()
    assert w.stats.failures == 1
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    recs = list(read_signals(db))
    assert [len(r["gates"]) for r in recs] == [6, 7, 8, 7]
    assert recs[2]["gates"][-1]["threshold"] == 0.03
    assert db.execute("SELECT count(*), count(DISTINCT id), max(id) FROM audit_texts").fetchone()[:2] == \
        db.execute("SELECT count(*), count(*) FROM audit_texts").fetchone()


def test_a_schema1_file_is_archived_whole_and_a_new_one_begun(tmp_path):
    old = tmp_path / "audit.sqlite"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE audit_signals (id INTEGER PRIMARY KEY, ts_ms INTEGER, gates, features)")
    db.execute("INSERT INTO audit_signals VALUES (1, 5, '[]', '{}')")
    db.commit()
    db.close()
    w = AuditWriter(tmp_path, signal_files=())
    w(Decisions(T0, "long", (decision(1),), ()))
    w(CycleStats(T0, "long", 1, 1, 0, 0, 0, 0, 1.0))
    w.close()
    (archived,) = (tmp_path / "audit_archive").iterdir()
    assert sqlite3.connect(archived).execute("SELECT ts_ms FROM audit_signals").fetchall() == [(5,)]
    db = sqlite3.connect(old)
    assert db.execute("SELECT count(*) FROM audit_signal_rows").fetchone()[0] == 1
    assert db.execute("SELECT value FROM audit_meta WHERE key='schema_version'").fetchone()[0] == "2"


def test_decisions_without_gates_and_bad_decisions(tmp_path):
    w = AuditWriter(tmp_path, signal_files=())
    empty = Decision("A/B", "long", T0, 0.0, 0.0, False, False, False, (), None)
    w(Decisions(T0, "long", (empty, None), ()))
    w(Decisions(T0, "long", (object(),), ()))  # malformed: counted, nothing queued
    w.close()
    assert w.stats.bad_events == 1
    (rec,) = read_signals(sqlite3.connect(tmp_path / "audit.sqlite"))
    assert rec["gates"] == [] and rec["features"] == {} and rec["values"]["rejections"] == ""
    view = sqlite3.connect(tmp_path / "audit.sqlite").execute("SELECT gates, features FROM audit_signals").fetchall()
    assert view == [("[]", "{}")]


def test_signals_frame_is_the_analysis_table_without_json(tmp_path):
    """``signals_frame`` (the fast path for crot analyze) equals the table crot analyze builds
    from the schema-1 view, after the same typing."""
    import pandas as pd

    from engine.analysis import records
    from engine.store.audit_signals import signals_frame

    write_run(tmp_path)
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    frame, order, kinds = signals_frame(db)
    view = pd.read_sql_query("SELECT * FROM audit_signals ORDER BY id", db).drop(columns=["id"])
    expected, e_order, e_kinds = records._expand_signals(view)
    assert order == e_order and kinds == e_kinds and list(frame.columns) == list(expected.columns)
    a, b = records._coerce(frame), records._coerce(expected)
    for c in a.columns:
        assert a[c].equals(b[c]), c
    assert a["crowded_market_passed"].isna().sum() == 12  # decisions before the gate existed
