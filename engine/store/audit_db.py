"""The audit trail in SQLite: one table per stream, one transaction per flush.

Plain ``sqlite3`` (the writer flushes from a worker thread, never on the event loop), WAL and
``synchronous=FULL``: a committed flush survives a crash, a failed one is rolled back and its
rows stay pending. Tables are prefixed ``audit_`` so the file may be shared with the trading
state store. Decimals are stored as exact text, NaN as NULL, structured parts as JSON text.

Signal decisions are the bulk of a record: they are stored compactly, one typed row per
decision (``audit_signals``, schema 2); the schema-1 shape stays readable as the view
``audit_signals``. A file written by schema 1 is moved to the archive folder when it is
opened, and a new file begun.

``rotate`` moves the file into the archive folder (``archive_name``) and the next write
starts a new one; the writer rotates by size and age (``audit_retention``).
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from .audit_files import archive_name, dumps, fsync_dir
from .audit_rows import AuditRow, json_safe
from .audit_schema import COLUMNS, JSON_COLUMNS, TABLES
from .audit_signals import MAX_LAYOUTS, IncompatibleSignals, PendingSignal, SignalTable, pending_signals
from .scrub import scrub, scrub_obj

__all__ = ["AuditDb", "SCHEMA_VERSION"]

log = logging.getLogger("crot.audit")

SCHEMA_VERSION = 2
_INTEGER = frozenset(("ts_ms", "cycle_ms", "opened_ms", "client_order_id", "reference_age_ms"))
_INDEXED = {"trades": ("profile", "ts_ms"), "diagnostics": ("profile", "ts_ms"), "cycles": ("profile", "ts_ms")}
_ROW_STREAMS = tuple(s for s in COLUMNS if s != "signals")


def _sql_value(value: Any, clean: bool = False) -> Any:
    if value is None or isinstance(value, int):  # bool is an int: stored 0/1
        return int(value) if isinstance(value, bool) else value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return value if clean else scrub(value)
    return scrub(str(json_safe(value)))


class AuditDb:
    """Pending rows per table, written together in one transaction by ``write_pending``.
    Rows are scrubbed on ``add`` unless ``trusted`` (already scrubbed and JSON-safe); signal
    decisions are scrubbed when they are encoded."""

    def __init__(self, path: str | Path, max_pending: int = 200_000, trusted: bool = False,
                 archive_dir: str | Path | None = None, clock: Callable[[], float] = time.time,
                 max_pending_signals: int | None = None):
        self.path = str(path)
        self.trusted = trusted
        self.max_pending = max_pending
        self.max_pending_signals = max_pending_signals or max_pending
        self.archive_dir = Path(archive_dir) if archive_dir else Path(self.path).parent / "audit_archive"
        self.clock = clock
        self.pending: dict[str, list[Any]] = {s: [] for s in COLUMNS}  # 'signals' holds PendingSignal
        self.dropped = 0
        self.rotations: list[Path] = []
        self.signals = SignalTable()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._created_ms = 0

    # -- connection and schema ------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(2):
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
            try:
                db.execute("PRAGMA page_size=16384")  # a new file: rows of ~0.8 KB pack better in big pages
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("PRAGMA busy_timeout=10000")
                reason = self._foreign(db)
                if reason is None:
                    self._create(db)
                    break
            except BaseException:
                db.close()
                raise
            db.close()  # written by another schema: archived whole, a new file begun
            target = self._move_aside()
            if target is None:
                raise sqlite3.OperationalError(f"{self.path} {reason} and cannot be moved aside now")
            log.warning("audit: %s %s; moved to %s, a new file begun", self.path, reason, target)
        else:  # pragma: no cover - the archived file came back
            raise sqlite3.OperationalError(f"{self.path}: could not start a new audit database")
        row = db.execute("SELECT value FROM audit_meta WHERE key='created_ms'").fetchone()
        self._created_ms = int(row[0]) if row and str(row[0]).isdigit() else int(self.clock() * 1000)
        self._db = db
        return db

    def _foreign(self, db: sqlite3.Connection) -> str | None:
        """Why an existing file cannot be appended to (None: it can, or it is new)."""
        kinds = dict(db.execute("SELECT name, type FROM sqlite_master WHERE name IN ('audit_signals', "
                                "'audit_signal_rows')"))
        if kinds.get("audit_signals") == "table":
            return "holds a schema-1 audit record"
        if "audit_signal_rows" in kinds:
            try:
                self.signals.load(db)
            except IncompatibleSignals as exc:
                return str(exc)
        return None

    def _create(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("INSERT OR IGNORE INTO audit_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            db.execute("INSERT OR IGNORE INTO audit_meta VALUES ('created_ms', ?)", (str(int(self.clock() * 1000)),))
            for stream in _ROW_STREAMS:
                table = TABLES[stream]
                cols = COLUMNS[stream] + JSON_COLUMNS.get(stream, ())
                decl = ", ".join(f'"{c}" INTEGER' if c in _INTEGER else f'"{c}"' for c in cols)
                db.execute(f'CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, {decl})')
                have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                for c in cols:  # an older file: add what this version writes
                    if c not in have:
                        db.execute(f'ALTER TABLE {table} ADD COLUMN "{c}"')
                idx = _INDEXED.get(stream, ("ts_ms",))
                db.execute(f"CREATE INDEX IF NOT EXISTS {table}_{'_'.join(idx)} ON {table} ({', '.join(idx)})")
            if not self.signals.loaded:
                self.signals.reset()
                self.signals.create(db)
                self.signals.loaded = True
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self.signals.reset()
            raise

    @property
    def created_ms(self) -> int | None:
        """When the open file was begun (wall clock ms); None while no file is open."""
        return self._created_ms if self._db is not None else None

    def size(self) -> int:
        """Bytes of the file and its write-ahead log."""
        total = 0
        for p in (self.path, self.path + "-wal"):
            try:
                total += os.stat(p).st_size
            except OSError:
                pass
        return total

    @property
    def layouts_full(self) -> bool:
        """The schema-1 view cannot take more layouts: the file should be rotated."""
        return len(self.signals.layouts) >= MAX_LAYOUTS

    # -- rows -----------------------------------------------------------------------------
    def add(self, row: AuditRow, encoded: Mapping[str, str] | None = None) -> None:
        """Queue a row; ``encoded`` may carry the JSON text of its extra parts (trusted only)."""
        if row.stream == "signals":
            raise ValueError("signal decisions are queued with add_decisions (they are stored compactly)")
        cols = COLUMNS[row.stream]
        clean = self.trusted
        values = [_sql_value(row.values.get(c), clean) for c in cols]
        for c in JSON_COLUMNS.get(row.stream, ()):
            if clean and encoded is not None and c in encoded:
                values.append(encoded[c])
                continue
            part = row.extra.get(c)
            if part is not None and not clean:
                part = scrub_obj(json_safe(part))
            values.append(None if part is None else dumps(part))
        pending = self.pending[row.stream]
        pending.append(tuple(values))
        if len(pending) > self.max_pending:
            excess = len(pending) - self.max_pending
            del pending[:excess]
            self.dropped += excess

    def add_decisions(self, ev: Any) -> None:
        """Queue the decisions of a ``Decisions`` event (raises on a malformed one, before
        anything is queued)."""
        self.queue_signals(pending_signals(ev))

    def queue_signals(self, items: list[PendingSignal]) -> None:
        """Queue decisions already made ready by ``pending_signals``."""
        pending = self.pending["signals"]
        pending.extend(items)
        if len(pending) > self.max_pending_signals:
            excess = len(pending) - self.max_pending_signals
            del pending[:excess]
            self.dropped += excess

    def write_pending(self, streams: Collection[str] | None = None) -> int:
        """Insert every pending row (of ``streams`` only, when given) in one transaction; on
        failure nothing is written and the rows stay pending."""
        batches = {s: list(rows) for s, rows in self.pending.items() if rows and (streams is None or s in streams)}
        if not batches:
            return 0
        with self._lock:
            db = self._connect()
            try:
                self._transaction(db, batches, normalize=False)
            except (sqlite3.InterfaceError, sqlite3.ProgrammingError):
                # a value of a type sqlite3 does not bind (numpy, Decimal ...): once more,
                # converting every signal cell
                self._transaction(db, batches, normalize=True)
        for stream, rows in batches.items():
            del self.pending[stream][:len(rows)]
        return sum(len(r) for r in batches.values())

    def _transaction(self, db: sqlite3.Connection, batches: dict[str, list[Any]], normalize: bool) -> None:
        sig = self.signals
        db.execute("BEGIN IMMEDIATE")
        try:
            for stream, rows in batches.items():
                if stream == "signals":
                    sig.write(db, sig.encode(rows, normalize))
                    continue
                cols = COLUMNS[stream] + JSON_COLUMNS.get(stream, ())
                names = ", ".join(f'"{c}"' for c in cols)
                marks = ", ".join("?" for _ in cols)
                db.executemany(f"INSERT INTO {TABLES[stream]} ({names}) VALUES ({marks})", rows)
            db.execute("COMMIT")
        except BaseException:
            sig.rollback()
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        sig.commit()

    # -- rotation -------------------------------------------------------------------------
    def _move_aside(self) -> Path | None:
        """Move the (closed) file into the archive folder; None when it cannot be moved whole."""
        src = Path(self.path)
        if self.path == ":memory:" or not src.exists():
            return None
        wal = Path(self.path + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            return None  # a reader kept the log from being checkpointed: moving the file would lose it
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        target = self.archive_dir / archive_name(src, self.clock())
        n = 0
        while target.exists():
            n += 1
            target = self.archive_dir / f"{target.stem.split('~')[0]}~{n}{src.suffix}"
        os.replace(src, target)
        for extra in (wal, Path(self.path + "-shm")):
            try:
                extra.unlink()
            except FileNotFoundError:
                pass
        fsync_dir(self.archive_dir)
        fsync_dir(src.parent)
        self.signals.reset()
        self.rotations.append(target)
        return target

    def rotate(self) -> Path | None:
        """Close the file and move it into the archive folder; the next write begins a new
        file. None when there is nothing to move or a reader holds the log (tried again later)."""
        with self._lock:
            self._close()
            return self._move_aside()

    def _close(self) -> None:
        if self._db is not None:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()
            self._db = None

    def close(self) -> None:
        with self._lock:
            self._close()
