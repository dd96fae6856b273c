"""`crot audit export`: the signal CSV / JSONL files made from the SQLite equal the live ones."""

from __future__ import annotations

import argparse
import json
import sqlite3

import pytest

from engine.analysis.records import load_run
from engine.store.audit_cli import add_audit_parser
from engine.store.audit_export import ExportError, export_signals
from engine.store.audit_files import archived_files

from test_audit_signals import jsonl_records, normalise, write_run
from test_audit_writer import read_csv, read_jsonl


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="crot")
    add_audit_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def live_csv_rows(run, side):
    cur = run / side / "signal_analytics.csv"
    rows = []
    for p in [*archived_files(cur, run / side / "csv_archive"), cur]:
        rows += read_csv(p)[1]
    return rows


def test_the_export_holds_the_live_files_rows(tmp_path):
    live = tmp_path / "live"
    w = write_run(live)  # writes the live JSONL; a second run writes the live CSV
    assert w.signal_files == ("jsonl",)
    from engine.store.audit import AuditWriter
    from test_audit_signals import decision
    from engine.runtime.events import Decisions
    from test_audit_writer import T0

    csv_run = tmp_path / "csv"
    w2 = AuditWriter(csv_run, signal_files=("csv",))
    for i in range(16):
        side = "long" if i % 2 == 0 else "short"
        w2(Decisions(T0 + i * 300_000 + 300_000, side,
                     (decision(i, side=side), decision(i, "C/B", side, features=i % 3 != 1)), ("A/B",)))
    w2.close()

    out = tmp_path / "out"
    written = export_signals(live / "audit.sqlite", out)
    assert {p.relative_to(out).as_posix(): n for p, n in written.items()} == {
        "long/signal_analytics.csv": 16, "long/signal_analytics.jsonl": 16,
        "short/signal_analytics.csv": 16, "short/signal_analytics.jsonl": 16}
    exported = sorted(read_jsonl(out / "long" / "signal_analytics.jsonl") +
                      read_jsonl(out / "short" / "signal_analytics.jsonl"), key=lambda r: (r["ts_ms"], r["symbol"]))
    assert normalise(exported) == normalise(jsonl_records(live))
    for side in ("long", "short"):
        header, rows = read_csv(out / side / "signal_analytics.csv")
        live_rows = live_csv_rows(csv_run, side)
        assert len(rows) == len(live_rows) == 16
        assert header[-1] == "f_warm" and "crowded_market_passed" in header
        for a, b in zip(rows, live_rows):
            for k, v in b.items():  # every live column, same text ('' where the live file had no gate)
                assert a[k] == v or float(a[k]) == float(v), (k, a[k], v)


def test_export_refuses_to_overwrite_and_reads_back_with_crot_analyze(tmp_path, capsys):
    write_run(tmp_path)  # the live JSONL is in place
    with pytest.raises(ExportError, match="exists"):
        export_signals(tmp_path, formats=("jsonl",))
    assert cli("audit", "export", "--run", str(tmp_path), "--format", "csv") == 0
    assert "long/signal_analytics.csv: 16 decisions" in capsys.readouterr().out
    (tmp_path / "audit.sqlite").rename(tmp_path / "elsewhere.sqlite")
    csv = load_run(tmp_path)  # the CSV reader of crot analyze takes the exported files
    db = load_run(tmp_path / "elsewhere.sqlite")
    assert csv.kind == "csv" and len(csv.signals) == len(db.signals) == 32
    assert csv.gates == db.gates
    cols = ["ts_ms", "symbol", "score", "chop_value", "value_area_threshold", "spread_value", "f_close"]
    a = csv.signals[cols].sort_values(["ts_ms", "symbol"]).reset_index(drop=True)
    b = db.signals[cols].sort_values(["ts_ms", "symbol"]).reset_index(drop=True)
    assert a.equals(b)  # exact: the view writes 17 significant digits


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    assert cli("audit", "export", "--run", str(tmp_path / "nope")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "no audit SQLite" in err
    (tmp_path / "audit.sqlite").write_bytes(b"not a database at all" * 50)
    assert cli("audit", "export", "--run", str(tmp_path)) == 2
    assert "not an SQLite file" in capsys.readouterr().err
    write_run(tmp_path / "r")
    assert cli("audit", "export", "--run", str(tmp_path / "r"), "--format", "xml") == 2
    assert "expected csv, jsonl" in capsys.readouterr().err


def test_a_schema1_file_exports_too(tmp_path):
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.execute("CREATE TABLE audit_signals (id INTEGER PRIMARY KEY, ts_ms INTEGER, time, profile, symbol, side, "
               "score, raw_score, valid, entry_valid, add_valid, first_rejection, rejections, selected, cycle_ms, "
               "gates, features)")
    gates = [{"name": "chop", "value": 61.5, "threshold": 55.0, "passed": False, "kind": "hard", "op": "<=",
              "detail": "", "score_delta": 0.0, "score_factor": 1.0}]
    db.execute("INSERT INTO audit_signals VALUES (1, 5, 't', 'long', 'A/B', 'long', 0.1, 0.1, 1, 0, 0, 'chop', "
               "'chop', 0, 6, ?, '{}')", (json.dumps(gates),))
    db.commit()
    export_signals(tmp_path, formats=("jsonl", "csv"))
    (rec,) = read_jsonl(tmp_path / "long" / "signal_analytics.jsonl")
    assert rec["gates"] == gates and rec["valid"] is True and rec["selected"] is False
    header, rows = read_csv(tmp_path / "long" / "signal_analytics.csv")
    assert rows[0]["chop_value"] == "61.5" and rows[0]["chop_passed"] == "false"


def test_size_lists_tables_and_files(tmp_path, capsys):
    write_run(tmp_path)
    assert cli("audit", "size", "--run", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "table audit_signal_rows: 32 rows" in out and "total" in out
    assert cli("audit", "size", "--run", str(tmp_path / "nope")) == 2
