"""Audit files: size rotation, stable CSV headers, crash safety of files and SQLite."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from pathlib import Path

import pytest

from engine.runtime.events import CycleStats, Decisions
from engine.store import audit_files
from engine.store.audit import AuditWriter
from engine.store.audit_files import CsvSink, JsonlSink, archive_name, archived_files
from engine.strategy.decision import HARD, GateResult

from test_audit_writer import T0, decision, read_csv


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def cycle(i: int, profile: str = "long") -> CycleStats:
    return CycleStats(T0 + i, profile, 10, 10, i % 3, 0, 0, 0, 1.5)


def test_rotation_by_size_keeps_every_row_once_with_a_header_in_each_file(tmp_path):
    w = AuditWriter(tmp_path, max_bytes=600, clock=Clock(), db=False)
    for i in range(60):
        w(cycle(i))
        if i % 5 == 4:
            w.flush()
    w.close()
    current = tmp_path / "long" / "cycle_stats.csv"
    archived = archived_files(current, tmp_path / "long" / "csv_archive")
    assert len(archived) >= 5
    seen = []
    for path in [*archived, current]:
        header, rows = read_csv(path)
        assert header[0] == "ts_ms"
        seen += [int(r["ts_ms"]) for r in rows]
        if path != current:
            # rotated once over the limit: a file holds at most one batch beyond max_bytes
            assert path.stat().st_size > 600
            assert path.stat().st_size < 600 + 5 * 80
    assert seen == [T0 + i for i in range(60)]  # nothing lost, nothing doubled, in order
    assert archived[0].name.startswith("long-cycle_stats.20231114T")


def test_jsonl_rotates_too(tmp_path):
    w = AuditWriter(tmp_path, max_bytes=2_000, clock=Clock(), db=False)
    for i in range(12):
        w(Decisions(T0 + i, "long", (decision(ts=T0 + i),), ()))
        w.flush()
    w.close()
    cur = tmp_path / "long" / "signal_analytics.jsonl"
    files = [*archived_files(cur, tmp_path / "long" / "csv_archive"), cur]
    assert len(files) > 2
    ts = [json.loads(line)["ts_ms"] for f in files for line in f.read_text().splitlines()]
    assert ts == [T0 + i for i in range(12)]


def test_archive_name_collisions_get_a_counter(tmp_path):
    frozen = lambda: 1_700_000_000.5  # noqa: E731
    sink = CsvSink(tmp_path / "p" / "x.csv", tmp_path / "arch", 1, ("a",), clock=frozen)
    for i in range(4):  # every write after the first rotates the previous file
        sink.add({"a": i})
        sink.write_pending()
    names = sorted(p.name for p in (tmp_path / "arch").iterdir())
    assert names == ["p-x.20231114T221320500000Z.csv", "p-x.20231114T221320500000Z~1.csv",
                     "p-x.20231114T221320500000Z~2.csv"]
    assert sink.path.read_text() == "a\n3\n"
    assert archive_name(Path("d/p/x.csv"), 0.0) == "p-x.19700101T000000000000Z.csv"


def test_new_gate_starts_a_new_file_and_keeps_old_rows_under_their_header(tmp_path):
    w = AuditWriter(tmp_path, clock=Clock(), db=False)
    g1 = (GateResult("macro_trend", 1.0, 0.0, True, HARD), GateResult("chop", 50.0, 55.0, True, HARD))
    g_subset = (GateResult("chop", 60.0, 55.0, False, HARD),)
    g2 = g1 + (GateResult("mexc_impulse", 0.2, 0.0, True, HARD),)
    w(Decisions(T0, "long", (decision(ts=T0, gates=g1),), ()))
    w.flush()
    w(Decisions(T0 + 1, "long", (decision(ts=T0 + 1, gates=g_subset),), ()))  # subset: same file
    w.flush()
    cur = tmp_path / "long" / "signal_analytics.csv"
    assert not archived_files(cur, tmp_path / "long" / "csv_archive")
    w(Decisions(T0 + 2, "long", (decision(ts=T0 + 2, gates=g2),), ()))
    w.close()
    (old,) = archived_files(cur, tmp_path / "long" / "csv_archive")
    h_old, rows_old = read_csv(old)
    h_new, rows_new = read_csv(cur)
    assert "mexc_impulse_value" not in h_old and [r["ts_ms"] for r in rows_old] == [str(T0), str(T0 + 1)]
    assert rows_old[1]["macro_trend_value"] == "" and rows_old[1]["chop_value"] == "60.0"
    gate_cols = [c for c in h_new if c.endswith("_value")]
    assert gate_cols == ["macro_trend_value", "chop_value", "mexc_impulse_value"]
    assert [r["mexc_impulse_passed"] for r in rows_new] == ["true"]
    # a restart adopts the current header (gates included) and appends
    w2 = AuditWriter(tmp_path, clock=Clock(), db=False)
    w2(Decisions(T0 + 3, "long", (decision(ts=T0 + 3, gates=g1),), ()))
    w2.close()
    assert read_csv(cur)[0] == h_new and len(read_csv(cur)[1]) == 2
    assert len(archived_files(cur, tmp_path / "long" / "csv_archive")) == 1


def test_a_file_with_a_foreign_header_is_archived_not_appended(tmp_path):
    cur = tmp_path / "long" / "cycle_stats.csv"
    cur.parent.mkdir(parents=True)
    cur.write_text("ts,old_column\n1,2\n")
    w = AuditWriter(tmp_path, clock=Clock(), db=False)
    w(cycle(0))
    w.close()
    (old,) = archived_files(cur, tmp_path / "long" / "csv_archive")
    assert old.read_text() == "ts,old_column\n1,2\n"
    assert read_csv(cur)[0][0] == "ts_ms" and len(read_csv(cur)[1]) == 1


def test_a_torn_last_line_is_cut_on_open(tmp_path):
    w = AuditWriter(tmp_path, db=False)
    for i in range(3):
        w(cycle(i))
    w.close()
    cur = tmp_path / "long" / "cycle_stats.csv"
    good = cur.read_bytes()
    with open(cur, "ab") as fh:
        fh.write(b"1700000000099,2023-11-")  # the process died inside a write
    w = AuditWriter(tmp_path, db=False)
    w(cycle(3))
    w.close()
    assert cur.read_bytes().startswith(good)
    assert [r["ts_ms"] for r in read_csv(cur)[1]] == [str(T0 + i) for i in range(4)]


def test_failed_file_flush_leaves_previous_rows_intact_and_retries_once(tmp_path, monkeypatch):
    w = AuditWriter(tmp_path, db=False)
    w(cycle(0))
    w.flush()
    cur = tmp_path / "long" / "cycle_stats.csv"
    before = cur.read_bytes()

    real_fsync = os.fsync

    def broken_fsync(fd):  # the data reached the file but could not be made durable
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_files.os, "fsync", broken_fsync)
    w(cycle(1))
    w(cycle(2))
    assert w.flush() == 0
    assert w.stats.failures == 1 and "No space left" in w.stats.last_error
    assert cur.read_bytes() == before  # rolled back to the last complete flush
    monkeypatch.setattr(audit_files.os, "fsync", real_fsync)
    assert w.flush() == 2
    w.close()
    assert [r["ts_ms"] for r in read_csv(cur)[1]] == [str(T0 + i) for i in range(3)]


def test_failed_write_midway_is_truncated(tmp_path, monkeypatch):
    sink = JsonlSink(tmp_path / "p" / "d.jsonl", tmp_path / "arch", 1 << 20)
    sink.add({"a": 1})
    sink.write_pending()
    before = sink.path.read_bytes()

    class HalfFile:
        """Writes half of the data, then fails (disk full in the middle of a batch)."""

        def __init__(self, fh):
            self._fh = fh

        def write(self, data):
            self._fh.write(data[: len(data) // 2])
            self._fh.flush()
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._fh.__exit__(*exc)

    real_open = open
    monkeypatch.setattr(audit_files, "open", lambda *a, **k: HalfFile(real_open(*a, **k)), raising=False)
    sink.add({"a": 2, "b": "x" * 100})
    with pytest.raises(OSError):
        sink.write_pending()
    assert sink.path.read_bytes() == before and len(sink.pending) == 1
    monkeypatch.undo()
    assert sink.write_pending() == 1
    assert [json.loads(x)["a"] for x in sink.path.read_text().splitlines()] == [1, 2]


def test_sqlite_failure_keeps_rows_pending_and_files_unaffected(tmp_path):
    w = AuditWriter(tmp_path)
    w(cycle(0))
    w.flush()
    db_path = tmp_path / "audit.sqlite"
    lock = sqlite3.connect(db_path, timeout=0)
    lock.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    w.db._connect().execute("PRAGMA busy_timeout=50")
    w(cycle(1))
    w.flush()
    assert w.stats.failures == 1 and "locked" in w.stats.last_error
    assert len(read_csv(tmp_path / "long" / "cycle_stats.csv")[1]) == 2  # files went on
    lock.rollback()
    lock.close()
    w.close()
    db = sqlite3.connect(db_path)
    assert [r[0] for r in db.execute("SELECT ts_ms FROM audit_cycles ORDER BY id")] == [T0, T0 + 1]


def test_failed_rotation_on_a_new_column_keeps_the_rows_and_header_consistent(tmp_path, monkeypatch):
    sink = CsvSink(tmp_path / "p" / "s.csv", tmp_path / "arch", 1 << 20, ("a",))
    sink.add({"a": 1, "g_value": 1})
    sink.write_pending()

    def broken_replace(*a, **k):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(audit_files.os, "replace", broken_replace)
    sink.add({"a": 2, "h_value": 2})
    with pytest.raises(OSError):
        sink.write_pending()
    monkeypatch.undo()
    assert sink.write_pending() == 1
    with open(sink.path, newline="") as fh:
        assert list(csv.reader(fh)) == [["a", "g_value", "h_value"], ["2", "", "2"]]
