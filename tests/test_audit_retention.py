"""Retention of the audit record: rotation by size and age, pruning by age and total size, the
"disk full" state (bulk rows held back, trades and orders still written, entries blocked)."""

from __future__ import annotations

import os
import sqlite3
from decimal import Decimal
from pathlib import Path

from engine.runtime.events import CycleStats, Decisions, OrderEvent, TradeClosed
from engine.settings import GlobalSettings, ProfileSettings, Settings
from engine.store.audit import AuditWriter, RetentionPolicy
from engine.store.audit_files import archived_files
from engine.store.audit_retention import DiskGuard, prune
from engine.store.audit_signals import read_signals

from test_audit_files import Clock
from test_audit_signals import decision
from test_audit_writer import T0, read_csv

MB = 1 << 20
ROOMY = RetentionPolicy(db_max_bytes=1 << 40, max_age_s=0, keep_s=0, max_total_bytes=1 << 40, min_free_bytes=0)


def policy(**kw) -> RetentionPolicy:
    return RetentionPolicy(**{**ROOMY.__dict__, **kw})


def decisions(i: int) -> Decisions:
    return Decisions(T0 + i * 300_000 + 1, "long", (decision(i % 16), decision(i % 16, "C/B")), ())


def segments(tmp_path: Path) -> list[Path]:
    db = tmp_path / "audit.sqlite"
    return [*archived_files(db, tmp_path / "audit_archive"), db]


def test_the_sqlite_rotates_by_size_and_every_segment_is_a_complete_record(tmp_path):
    w = AuditWriter(tmp_path, signal_files=(), retention=policy(db_max_bytes=150_000), clock=Clock())
    for i in range(300):
        w(decisions(i))
        w(CycleStats(T0 + i, "long", 2, 2, 0, 0, 0, 0, 1.0))
        if i % 10 == 9:
            w.flush()
    w.close()
    segs = segments(tmp_path)
    assert len(segs) >= 3
    ts = []
    for seg in segs:
        db = sqlite3.connect(seg)
        ts += [r["values"]["ts_ms"] for r in read_signals(db)]
        assert db.execute("SELECT count(*) FROM audit_signals").fetchone()[0] > 0  # the view of each segment
        assert db.execute("SELECT count(*) FROM audit_cycles").fetchone()[0] > 0
    expected = sorted(T0 + (i % 16) * 300_000 for i in range(300) for _ in range(2))
    assert sorted(ts) == expected  # nothing lost, nothing doubled
    assert w.stats.rotations >= len(segs) - 1


def test_every_file_rotates_by_age(tmp_path):
    clock = Clock()
    w = AuditWriter(tmp_path, signal_files=("csv",), retention=policy(max_age_s=3600), clock=clock)
    w(decisions(0))
    w(CycleStats(T0, "long", 1, 1, 0, 0, 0, 0, 1.0))
    w.flush()
    clock.t += 1800
    w(CycleStats(T0 + 1, "long", 1, 1, 0, 0, 0, 0, 1.0))
    w.flush()
    assert not (tmp_path / "audit_archive").exists()
    clock.t += 3600
    w(decisions(1))
    w(CycleStats(T0 + 2, "long", 1, 1, 0, 0, 0, 0, 1.0))
    w.flush()
    w.close()
    cur = tmp_path / "long" / "cycle_stats.csv"
    (old_cycles,) = archived_files(cur, tmp_path / "long" / "csv_archive")
    assert len(read_csv(old_cycles)[1]) == 2 and len(read_csv(cur)[1]) == 1
    assert len(archived_files(tmp_path / "long" / "signal_analytics.csv", tmp_path / "long" / "csv_archive")) == 1
    assert len(segments(tmp_path)) == 2  # the SQLite too (its age is kept in the file)


def _touch(path: Path, size: int, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_prune_deletes_by_age_then_oldest_first_by_total_size(tmp_path):
    now = 1_700_000_000.0
    old = [_touch(tmp_path / f"a{i}", 100, now - 100 * 86400 + i) for i in range(2)]
    mid = [_touch(tmp_path / f"b{i}", 100, now - 10 * 86400 + i) for i in range(4)]
    gone = prune(old + mid, current_bytes=250, policy=policy(keep_s=90 * 86400, max_total_bytes=500), now=now)
    assert gone == old + mid[:2]  # by age, then the oldest until current + archives <= 500
    assert [p.exists() for p in mid] == [False, False, True, True]
    assert prune(mid[2:], current_bytes=10_000, policy=policy(max_total_bytes=500), now=now) == mid[2:]


def test_the_writer_prunes_its_archives_and_never_its_current_files(tmp_path):
    clock = Clock()
    w = AuditWriter(tmp_path, signal_files=(), max_bytes=300, clock=clock,
                    retention=policy(keep_s=86400, max_total_bytes=64 * MB))
    for i in range(30):
        w(CycleStats(T0 + i, "long", 1, 1, 0, 0, 0, 0, 1.0))
        w.flush()
    arch = tmp_path / "long" / "csv_archive"
    rotated = archived_files(tmp_path / "long" / "cycle_stats.csv", arch)
    assert len(rotated) >= 5
    for p in rotated[:3]:
        os.utime(p, (clock.t - 2 * 86400, clock.t - 2 * 86400))
    clock.t += 120  # past the prune interval
    w(CycleStats(T0 + 99, "long", 1, 1, 0, 0, 0, 0, 1.0))
    w.close()
    assert not any(p.exists() for p in rotated[:3]) and all(p.exists() for p in rotated[3:])
    assert w.stats.pruned == 3
    assert (tmp_path / "long" / "cycle_stats.csv").exists() and (tmp_path / "audit.sqlite").exists()


class Disk:
    def __init__(self, free: int) -> None:
        self.free = free

    def __call__(self, path: Path) -> int:
        return self.free


def test_disk_full_holds_bulk_rows_keeps_trades_and_orders_and_blocks_entries(tmp_path, caplog):
    w = AuditWriter(tmp_path, signal_files=("csv",), retention=policy(min_free_bytes=500 * MB), clock=Clock())
    disk = Disk(100 * MB)
    w.guard.free = disk
    assert w.block_reason() == ""
    w(decisions(0))
    w(CycleStats(T0, "long", 1, 1, 0, 0, 0, 0, 1.0))
    w(OrderEvent(T0, "long", "A/B", "placed", "stop", 7, "sell", Decimal(1), Decimal(1), True, "hard stop"))
    w(TradeClosed(T0, "long", "A/B", "long", Decimal(1), Decimal(2), Decimal(1), Decimal(1), Decimal(0), T0 - 1, "x"))
    w.flush()
    assert w.disk_full and "AUDIT_MIN_FREE_BYTES" in w.block_reason() and "100 MB free" in w.block_reason()
    assert any("AUDIT DISK FULL" in r.message for r in caplog.records)
    assert len(read_csv(tmp_path / "long" / "trades.csv")[1]) == 1
    assert len(read_csv(tmp_path / "long" / "diagnostics.csv")[1]) == 1
    assert not (tmp_path / "long" / "cycle_stats.csv").exists()
    assert not (tmp_path / "long" / "signal_analytics.csv").exists()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    assert db.execute("SELECT count(*) FROM audit_trades").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM audit_signal_rows").fetchone()[0] == 0
    assert w.pending_rows == 6  # two decisions and a cycle row, in SQLite and in the files, held back
    disk.free = 550 * MB  # above the floor, not above floor + margin: still full
    w.flush()
    assert w.disk_full
    disk.free = 2048 * MB
    w.flush()
    assert not w.disk_full and w.block_reason() == "" and w.pending_rows == 0
    assert len(read_csv(tmp_path / "long" / "cycle_stats.csv")[1]) == 1
    assert db.execute("SELECT count(*) FROM audit_signal_rows").fetchone()[0] == 2
    w.close()


def test_the_held_back_rows_are_bounded_while_the_disk_stays_full(tmp_path):
    w = AuditWriter(tmp_path, signal_files=(), max_pending_rows=200, retention=policy(min_free_bytes=MB))
    w.guard.free = Disk(0)
    for i in range(50):
        w(decisions(i))
        w(CycleStats(T0 + i, "long", 1, 1, 0, 0, 0, 0, 1.0))
        w.flush()
    assert w.disk_full and w.pending_rows <= 3 * 10  # a twentieth of 200 per bulk queue
    assert w.dropped_rows > 0


def test_a_write_failing_for_lack_of_space_makes_the_record_disk_full(tmp_path, monkeypatch):
    from engine.store import audit_files

    w = AuditWriter(tmp_path, db=False, retention=policy(min_free_bytes=0))
    w.guard.free = Disk(10 * MB)

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_files.os, "fsync", no_space)
    w(CycleStats(T0, "long", 1, 1, 0, 0, 0, 0, 1.0))
    w.flush()
    assert w.disk_full and "No space left" in w.block_reason()
    monkeypatch.undo()
    w.guard.free = Disk(DiskGuard.RESUME_MARGIN + MB)
    w.flush()  # space again: resumes and writes what was held back
    assert not w.disk_full
    assert len(read_csv(tmp_path / "long" / "cycle_stats.csv")[1]) == 1
    w.close()


def test_settings_choose_the_files_and_the_retention(tmp_path):
    settings = Settings(GlobalSettings(audit_signal_files=("jsonl",), audit_rotate_max_bytes=123_456,
                                       audit_rotate_max_age_hours=2.0, audit_retention_days=3.0,
                                       audit_max_bytes=9 * MB, audit_min_free_bytes=7 * MB),
                        {"long": ProfileSettings(), "short": ProfileSettings()})
    w = AuditWriter.from_settings(settings, tmp_path)
    assert w.signal_files == ("jsonl",)
    assert w.retention == RetentionPolicy(db_max_bytes=123_456, max_age_s=7200.0, keep_s=3 * 86400.0,
                                          max_total_bytes=9 * MB, min_free_bytes=7 * MB)
    w(decisions(0))
    w.close()
    assert (tmp_path / "long" / "signal_analytics.jsonl").exists()
    assert not (tmp_path / "long" / "signal_analytics.csv").exists()
    default = AuditWriter.from_settings(Settings(GlobalSettings(), {"long": ProfileSettings(),
                                                                    "short": ProfileSettings()}), tmp_path / "d")
    assert default.signal_files == () and default.retention == RetentionPolicy()
    default(decisions(0))
    default.close()
    assert not (tmp_path / "d" / "long" / "signal_analytics.jsonl").exists()
    assert sqlite3.connect(tmp_path / "d" / "audit.sqlite").execute(
        "SELECT count(*) FROM audit_signal_rows").fetchone()[0] == 2
