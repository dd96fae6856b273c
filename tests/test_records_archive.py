"""`load_run` (and so `crot analyze`) reads a rotated run whole: the archived SQLite files of
``audit_archive/`` oldest first, then the current ``audit.sqlite``, each row once.

The rotated run is made by the real AuditWriter with a small rotation size; the same events
written without rotation are the reference: both records must be equal, frame for frame.
"""

from __future__ import annotations

import argparse
import math
import re
from decimal import Decimal
from pathlib import Path

import pytest

from engine.analysis.records import _load_sqlite, load_run, sqlite_files
from engine.runtime.events import Account, CycleStats, Decisions, OrderEvent, Regime, TradeClosed
from engine.store.audit import AuditWriter, RetentionPolicy
from engine.strategy.decision import HARD, PENALTY, GateResult

from test_analysis_records import RECORD_FRAMES, assert_same_record
from test_audit_files import Clock
from test_audit_writer import T0, decision

ROOMY = RetentionPolicy(db_max_bytes=1 << 40, max_age_s=0, keep_s=0, max_total_bytes=0, min_free_bytes=0)
SMALL = RetentionPolicy(db_max_bytes=60_000, max_age_s=0, keep_s=0, max_total_bytes=0, min_free_bytes=0)
N = 120


def gates(i: int) -> tuple[GateResult, ...]:
    base = (GateResult("macro_trend", 0.01 * i, 0.0, True, HARD, ">"),
            GateResult("chop", 40.0 + i % 30, 55.0, 40.0 + i % 30 <= 55.0, HARD, "<="))
    if i >= 70:  # a settings change adds a gate late in the run: only the newer files have it
        base += (GateResult("ref_premium", float(i), 30.0, i < 90, PENALTY, "<"),)
    if i % 7 == 0:
        base += (GateResult("pullback_cross_age", math.inf, 240.0, False, HARD, "<="),)
    return base


def write_run(folder: Path, retention: RetentionPolicy) -> AuditWriter:
    w = AuditWriter(folder, signal_files=(), retention=retention, clock=Clock())
    for i in range(N):
        side = "long" if i % 2 == 0 else "short"
        ts = T0 + i * 300_000
        w(Decisions(ts + 1, side, (decision("A/B", side, ts, gates(i)),
                                   decision("C/B", side, ts, gates(i), features=False)), ("A/B",)))
        w(CycleStats(ts + 2, side, 2, 2, i % 3, 0, 0, 0, 1.5))
        w(Account(ts + 3, Decimal(1000 + i), Decimal(900), Decimal(100), Decimal(0), Decimal(i), Decimal(0)))
        w(OrderEvent(ts + 4, side, "A/B", "placed", "stop", 1000 + i, "sell", Decimal(1), Decimal(2), True, "hard"))
        if i % 5 == 4:
            w(TradeClosed(ts + 7, side, "A/B", side, Decimal("1.5"), Decimal("1.53"), Decimal(2), Decimal("0.04"),
                          Decimal("0.001"), ts + 2, "filled"))
        if i == 60:
            w(Regime(ts, "risk_off", "neutral", {"x": 1}))
        if i % 4 == 3:
            w.flush()
    w.close()
    return w


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    rotated, plain = tmp_path_factory.mktemp("rotated"), tmp_path_factory.mktemp("plain")
    w = write_run(rotated, SMALL)
    write_run(plain, ROOMY)
    assert w.stats.rotations >= 3
    return rotated, plain


def test_a_rotated_run_reads_back_whole_in_time_order_each_row_once(runs):
    rotated, plain = runs
    files = sqlite_files(rotated / "audit.sqlite")
    assert len(files) >= 4 and files[-1] == rotated / "audit.sqlite"
    assert all(f.parent.name == "audit_archive" for f in files[:-1])
    current_only = _load_sqlite(rotated / "audit.sqlite")
    assert len(current_only.signals) < 2 * N  # the current file alone has lost the older rows

    whole, reference = load_run(rotated), load_run(plain)
    assert whole.kind == "sqlite" and whole.files == tuple(str(f) for f in files)
    assert len(whole.signals) == 2 * N and len(whole.cycles) == N and len(whole.account) == N
    assert len(whole.trades) == N // 5 and len(whole.macro) == 1
    assert len(whole.diagnostics) == len(reference.diagnostics) >= N
    for name in RECORD_FRAMES:  # time order, and no row twice
        frame = getattr(whole, name)
        if len(frame):
            assert frame["ts_ms"].is_monotonic_increasing, name
            assert not frame.duplicated().any(), name
    assert whole.gates == reference.gates and "ref_premium" in whole.gates
    assert_same_record(whole, reference)
    assert_same_record(load_run(rotated / "audit.sqlite"), reference)  # the file path reads its archives too


def test_an_archived_file_given_as_the_path_is_read_alone(runs):
    rotated, _ = runs
    first = sqlite_files(rotated / "audit.sqlite")[0]
    alone = load_run(first)
    assert alone.files == (str(first),)
    assert 0 < len(alone.signals) < 2 * N


def test_a_run_whose_current_file_is_gone_reads_its_archives(tmp_path):
    write_run(tmp_path, SMALL)
    archives = sqlite_files(tmp_path / "audit.sqlite")[:-1]
    (tmp_path / "audit.sqlite").unlink()
    rec = load_run(tmp_path)
    assert rec.files == tuple(str(p) for p in archives)
    assert 0 < len(rec.signals) < 2 * N


def test_crot_analyze_reads_the_archives(runs, tmp_path, capsys):
    """The command's report on the rotated run equals the one on the run written without rotation."""
    from engine.analysis.cli import add_analyze_parser

    rotated, plain = runs
    env = tmp_path / "none.env"
    env.write_text("")
    outs = []
    for run in (rotated, plain):
        parser = argparse.ArgumentParser(prog="crot")
        add_analyze_parser(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(["analyze", "--run", str(run), "--env", str(env), "--no-files",
                                  "--signals", "all"])
        code = args.func(args)
        out, _ = capsys.readouterr()
        assert code == 0
        outs.append(re.sub(r"[\s\u2500-\u257f]+", " ", out.replace(str(run), "RUN")))  # rich boxes: widths differ
    assert outs[0] == outs[1]
    assert f"signals {2 * N} decisions" in outs[0] and f"closed trades {N // 5} " in outs[0]
