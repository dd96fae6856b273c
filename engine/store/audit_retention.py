"""Retention of the audit record: rotation by size and age, pruning, and the disk-space guard.

The writer rotates its files (the SQLite by ``db_max_bytes``, the CSV/JSONL files by
``CSV_ROTATE_MAX_BYTES``, every file by ``max_age_s``) into archive folders; ``prune`` then
deletes archived files whose newest row is older than ``keep_s`` and, oldest first, as many as
needed to bring the whole record under ``max_total_bytes``. Only archived files are deleted;
the current files stay.

``DiskGuard`` watches the free space of the file system holding the record. Below
``min_free_bytes`` (or after a write failed with "no space left") the record is "disk full":
the writer holds back the bulk streams (signals, cycles, account, premium) and keeps writing
the rows that matter for positions already open (trades, orders, stops, errors), and the engine
stops new entries and averaging while stops and exits go on: paper / live (engine.runtime.live)
and replay register ``AuditWriter.block_reason`` as an entry blocker of the Engine
(``Engine.entry_blockers``), so the engine's status says "new entries and averaging blocked
on both sides: audit record disk full (only N MB free on <folder>, ...)". The free space is
measured at every flush (live: after every step and every 2 s; replay: before every step,
``AuditWriter.check_disk``). It resumes when the free space is back above the floor plus a
margin (RESUME_MARGIN), and entries with it.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BULK_STREAMS", "DiskGuard", "RetentionPolicy", "free_bytes", "is_disk_full", "prune"]

log = logging.getLogger("crot.audit")

#: held back while the disk is full; the other streams (trades, diagnostics, macro) go on
BULK_STREAMS: frozenset[str] = frozenset(("signals", "cycles", "account", "external"))
_MIB = 1 << 20


@dataclass(frozen=True)
class RetentionPolicy:
    db_max_bytes: int = 256 * _MIB  # the SQLite is rotated beyond this
    max_age_s: float = 7 * 86400.0  # every file is rotated once written this long (0: size only)
    keep_s: float = 90 * 86400.0  # archives older than this are deleted (0: kept)
    max_total_bytes: int = 2048 * _MIB  # the whole record (0: no limit)
    min_free_bytes: int = 512 * _MIB  # free space floor of the disk (0: only an actual ENOSPC)
    prune_interval_s: float = 60.0

    @classmethod
    def guard_only(cls, min_free_bytes: int = 512 * _MIB) -> RetentionPolicy:
        """No rotation and no pruning (a replay's record stays one file), the disk guard only."""
        return cls(db_max_bytes=1 << 62, max_age_s=0.0, keep_s=0.0, max_total_bytes=0, min_free_bytes=min_free_bytes)

    @classmethod
    def from_settings(cls, glob: Any) -> RetentionPolicy:
        return cls(db_max_bytes=int(glob.audit_rotate_max_bytes),
                   max_age_s=float(glob.audit_rotate_max_age_hours) * 3600.0,
                   keep_s=float(glob.audit_retention_days) * 86400.0,
                   max_total_bytes=int(glob.audit_max_bytes),
                   min_free_bytes=int(glob.audit_min_free_bytes))


def _stat(p: Path) -> os.stat_result | None:
    try:
        return p.stat()
    except OSError:
        return None


def prune(archives: Iterable[Path], current_bytes: int, policy: RetentionPolicy, now: float) -> list[Path]:
    """Delete archived files by age and total size (see the module docstring); returns them."""
    files = []
    for p in set(archives):
        st = _stat(p)
        if st is not None:
            files.append((st.st_mtime, p, st.st_size))
    files.sort()
    deleted: list[Path] = []

    def drop(p: Path) -> bool:
        try:
            p.unlink()
        except FileNotFoundError:
            return True
        except OSError as exc:
            log.warning("audit: could not delete the archived %s: %s", p, exc)
            return False
        deleted.append(p)
        return True

    kept = []
    for mtime, p, size in files:
        if policy.keep_s > 0 and now - mtime > policy.keep_s and drop(p):
            continue
        kept.append((mtime, p, size))
    if policy.max_total_bytes > 0:
        total = current_bytes + sum(size for _, _, size in kept)
        for _, p, size in kept:
            if total <= policy.max_total_bytes:
                break
            if drop(p):
                total -= size
        if total > policy.max_total_bytes:
            log.warning("audit: the current audit files alone (%d bytes) exceed AUDIT_MAX_BYTES (%d); "
                        "they are rotated by size and pruned next time", total, policy.max_total_bytes)
    return deleted


def free_bytes(path: Path) -> int:
    """Free bytes (for this user) on the file system of ``path`` or its nearest existing parent.
    (One statvfs call when the path exists: the replay measures every step.)"""
    try:
        st = os.statvfs(path)
    except FileNotFoundError:
        p = Path(path).absolute()
        while not p.exists() and p.parent != p:
            p = p.parent
        return shutil.disk_usage(p).free
    return st.f_bavail * st.f_frsize


def is_disk_full(exc: BaseException) -> bool:
    """A write failed because the disk (or the quota) is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sqlite3.Error):
        return "disk is full" in str(exc).lower()  # SQLITE_FULL: "database or disk is full"
    return False


class DiskGuard:
    """The "disk full" state of the audit record (see the module docstring)."""

    RESUME_MARGIN = 64 * _MIB
    LOG_EVERY_S = 600.0

    def __init__(self, path: Path, min_free_bytes: int, clock: Callable[[], float],
                 free: Callable[[Path], int] | None = None):
        self.path = Path(path)
        self.min_free = int(min_free_bytes)
        self.clock = clock
        self.free = free  # None: this module's free_bytes, looked up at each check
        self.full = False
        self.reason = ""
        self.since: float | None = None
        self.free_now: int | None = None
        self._logged = 0.0

    def _enter(self, reason: str) -> None:
        now = self.clock()
        if not self.full:
            self.full, self.since = True, now
        self.reason = reason
        if now - self._logged >= self.LOG_EVERY_S or self._logged == 0.0:
            self._logged = now
            log.error("AUDIT DISK FULL: %s. Signals, cycles, account and premium rows are held back (bounded, the "
                      "oldest are dropped); trades, orders, stops and errors are still written; new entries and "
                      "averaging stop, stops and exits go on. Free space on %s to resume.", reason, self.path)

    def check(self) -> bool:
        """Measure the free space; True while the record is "disk full"."""
        try:
            free = self._measure()
        except OSError as exc:
            log.warning("audit: cannot measure the free space of %s: %s", self.path, exc)
            return self.full
        self.free_now = free
        if self.full:
            if free >= self.min_free + self.RESUME_MARGIN:
                log.warning("audit: %d MB free on %s again; the audit record is complete again from now on",
                            free // _MIB, self.path)
                self.full, self.reason, self.since, self._logged = False, "", None, 0.0
            else:
                self._enter(self.reason)
        elif self.min_free > 0 and free < self.min_free:
            self._enter(f"only {free // _MIB} MB free on {self.path}, below AUDIT_MIN_FREE_BYTES "
                        f"({self.min_free // _MIB} MB)")
        return self.full

    def _measure(self) -> int:
        return (self.free or free_bytes)(self.path)

    def hit(self, exc: BaseException) -> None:
        """A write failed for lack of space."""
        try:
            free = self._measure()
            self.free_now = free
            where = f"; {free // _MIB} MB free on {self.path}"
        except OSError:
            where = f" on {self.path}"
        self._enter(f"a write failed: {exc}{where}")
