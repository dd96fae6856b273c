"""The audit trail in SQLite: one table per stream, one transaction per flush.

Plain ``sqlite3`` (the writer flushes from a worker thread, never on the event loop), WAL and
``synchronous=FULL``: a committed flush survives a crash, a failed one is rolled back and its
rows stay pending. Tables are prefixed ``audit_`` so the file may be shared with the trading
state store. Decimals are stored as exact text, NaN as NULL, structured parts as JSON text.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from .audit_files import dumps
from .audit_rows import AuditRow, json_safe
from .audit_schema import COLUMNS, JSON_COLUMNS, TABLES
from .scrub import scrub, scrub_obj

__all__ = ["AuditDb", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
_INTEGER = frozenset(("ts_ms", "cycle_ms", "opened_ms", "client_order_id", "reference_age_ms"))
_INDEXED = {"signals": ("profile", "ts_ms"), "trades": ("profile", "ts_ms"),
            "diagnostics": ("profile", "ts_ms"), "cycles": ("profile", "ts_ms")}


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
    Rows are scrubbed on ``add`` unless ``trusted`` (already scrubbed and JSON-safe)."""

    def __init__(self, path: str | Path, max_pending: int = 200_000, trusted: bool = False):
        self.path = str(path)
        self.trusted = trusted
        self.max_pending = max_pending
        self.pending: dict[str, list[tuple[Any, ...]]] = {s: [] for s in COLUMNS}
        self.dropped = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    # -- connection and schema ------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            self._create(db)
        except BaseException:
            db.close()
            raise
        self._db = db
        return db

    @staticmethod
    def _create(db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("INSERT OR IGNORE INTO audit_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            for stream, table in TABLES.items():
                cols = COLUMNS[stream] + JSON_COLUMNS.get(stream, ())
                decl = ", ".join(f'"{c}" INTEGER' if c in _INTEGER else f'"{c}"' for c in cols)
                db.execute(f'CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, {decl})')
                have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                for c in cols:  # an older file: add what this version writes
                    if c not in have:
                        db.execute(f'ALTER TABLE {table} ADD COLUMN "{c}"')
                idx = _INDEXED.get(stream, ("ts_ms",))
                db.execute(f"CREATE INDEX IF NOT EXISTS {table}_{'_'.join(idx)} ON {table} ({', '.join(idx)})")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- rows -----------------------------------------------------------------------------
    def add(self, row: AuditRow, encoded: Mapping[str, str] | None = None) -> None:
        """Queue a row; ``encoded`` may carry the JSON text of its extra parts (trusted only)."""
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

    def write_pending(self) -> int:
        """Insert every pending row in one transaction; on failure nothing is written and the
        rows stay pending."""
        batches = {s: list(rows) for s, rows in self.pending.items() if rows}
        if not batches:
            return 0
        with self._lock:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                for stream, rows in batches.items():
                    cols = COLUMNS[stream] + JSON_COLUMNS.get(stream, ())
                    names = ", ".join(f'"{c}"' for c in cols)
                    marks = ", ".join("?" for _ in cols)
                    db.executemany(f"INSERT INTO {TABLES[stream]} ({names}) VALUES ({marks})", rows)
                db.execute("COMMIT")
            except BaseException:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise
        for stream, rows in batches.items():
            del self.pending[stream][:len(rows)]
        return sum(len(r) for r in batches.values())

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                try:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error:
                    pass
                self._db.close()
                self._db = None
