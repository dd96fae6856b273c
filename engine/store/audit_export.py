"""The signal CSV / JSONL files, made on demand from the audit SQLite (``crot audit export``).

The record stores each decision once, in SQLite; the per-profile files the live writer can
also write (``AUDIT_SIGNAL_FILES``) are made from it in the same layout:
``<out>/<profile>/signal_analytics.csv`` (``SIGNAL_COLUMNS``, then ``<gate>_value`` /
``_threshold`` / ``_passed`` for every gate of the record in order of first appearance, then
``FEATURE_COLUMNS``) and ``signal_analytics.jsonl`` (the fixed columns, ``gates`` and
``features``). Values are exact (read from the rows, not from the schema-1 view); a schema-1
file exports too. Each file is written whole to a temporary name and then renamed, so a
crash leaves the previous file or the new one, and an existing file is only replaced with
``force``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .audit_files import csv_cell, dumps, fsync_dir
from .audit_rows import json_safe
from .audit_schema import DB_NAME, FEATURE_COLUMNS, FILE_NAMES, GATE_SUFFIXES, SIGNAL_COLUMNS, SIGNAL_FILE_FORMATS
from .audit_signals import GATES, read_signals, signal_tables
from .scrub import scrub_obj

__all__ = ["ExportError", "export_signals", "iter_signals"]

_BATCH = 5_000


class ExportError(Exception):
    """A one-line reason why the export cannot run."""


def _open(path: Path) -> sqlite3.Connection:
    if path.is_dir():
        path = path / DB_NAME
    if not path.is_file():
        raise ExportError(f"{path}: no audit SQLite there (expected a run folder holding {DB_NAME}, or the file)")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise ExportError(f"{path}: not an SQLite file ({exc})") from None
    return db


def _schema1(db: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    cur = db.execute("SELECT * FROM audit_signals ORDER BY id")
    names = [d[0] for d in cur.description]
    for r in cur:
        rec = dict(zip(names, r))
        values = {c: rec.get(c) for c in SIGNAL_COLUMNS}
        for c in ("valid", "entry_valid", "add_valid", "selected"):
            values[c] = bool(values[c])
        yield {"values": values, "gates": json.loads(rec.get("gates") or "[]"),
               "features": json.loads(rec.get("features") or "{}")}


def iter_signals(db: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Every decision of the file (schema 2 or 1) as {"values", "gates", "features"}."""
    if signal_tables(db):
        yield from read_signals(db)
    elif db.execute("SELECT 1 FROM sqlite_master WHERE name='audit_signals' AND type='table'").fetchone():
        yield from _schema1(db)


def _gate_order(db: sqlite3.Connection) -> list[str]:
    if signal_tables(db):
        return [n for n, in db.execute(f"SELECT name FROM {GATES} ORDER BY pos")]
    order: dict[str, None] = {}
    for rec in iter_signals(db):
        for g in rec["gates"]:
            order.setdefault(g["name"], None)
    return list(order)


class _Out:
    """One export file being written under a temporary name."""

    def __init__(self, path: Path, header: list[str] | None):
        self.path = path
        self.tmp = path.with_name(path.name + ".export-tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.tmp, "w", encoding="utf-8", newline="")
        self.rows = 0
        self.header = header
        self.buf: list[str] = []
        if header is not None:
            s = io.StringIO()
            csv.writer(s, lineterminator="\n").writerow(header)
            self.buf.append(s.getvalue())

    def add(self, text: str) -> None:
        self.buf.append(text)
        self.rows += 1
        if len(self.buf) >= _BATCH:
            self.fh.write("".join(self.buf))
            self.buf.clear()

    def finish(self) -> None:
        self.fh.write("".join(self.buf))
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)

    def abort(self) -> None:
        self.fh.close()
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


def _csv_line(rec: dict[str, Any], header: list[str], w: Any, s: io.StringIO) -> str:
    flat = dict(rec["values"])
    for g in rec["gates"]:
        name = g["name"]
        flat[f"{name}_value"], flat[f"{name}_threshold"], flat[f"{name}_passed"] = g["value"], g["threshold"], g["passed"]
    for k, v in rec["features"].items():
        flat[f"f_{k}"] = v
    s.seek(0)
    s.truncate()
    w.writerow([csv_cell(flat.get(h)) for h in header])
    return s.getvalue()


def _jsonl_line(rec: dict[str, Any]) -> str:
    obj = {**{c: rec["values"].get(c) for c in SIGNAL_COLUMNS}, "gates": rec["gates"], "features": rec["features"]}
    return dumps(scrub_obj(json_safe(obj), _SAFE)) + "\n"


_SAFE = frozenset(("name", "value", "threshold", "passed", "kind", "op", "detail", "score_delta", "score_factor",
                   "gates", "features", *SIGNAL_COLUMNS, *(c[2:] for c in FEATURE_COLUMNS)))


def export_signals(run: str | Path, out: str | Path | None = None, formats: Iterable[str] = SIGNAL_FILE_FORMATS,
                   force: bool = False) -> dict[Path, int]:
    """Write the signal files of the record at ``run`` (a folder holding the audit SQLite, or
    the file) into ``out`` (default: the record's folder); returns {file: rows}. Raises
    ``ExportError`` (one line) on bad input or an existing file without ``force``."""
    formats = tuple(formats)
    bad = [f for f in formats if f not in SIGNAL_FILE_FORMATS]
    if bad or not formats:
        raise ExportError(f"--format {','.join(formats)}: expected csv, jsonl or csv,jsonl")
    run = Path(run)
    db = _open(run)
    base = Path(out) if out is not None else (run if run.is_dir() else run.parent)
    try:
        gates = _gate_order(db)
        header = [*SIGNAL_COLUMNS, *(f"{g}{sfx}" for g in gates for sfx in GATE_SUFFIXES), *FEATURE_COLUMNS]
        profiles = [p for p, in db.execute(
            "SELECT DISTINCT profile FROM audit_signal_rows ORDER BY profile" if signal_tables(db) else
            "SELECT DISTINCT profile FROM audit_signals ORDER BY profile")] if _has_signals(db) else []
        targets = {(p, f): base / p / FILE_NAMES["signals" if f == "csv" else "signals_jsonl"]
                   for p in profiles for f in formats}
        existing = [t for t in targets.values() if t.exists()]
        if existing and not force:
            raise ExportError(f"{existing[0]} exists (use --force to replace the signal files)")
        outs: dict[tuple[str, str], _Out] = {}
        try:
            for key, path in targets.items():
                outs[key] = _Out(path, header if key[1] == "csv" else None)
            s = io.StringIO()
            w = csv.writer(s, lineterminator="\n")
            for rec in iter_signals(db):
                p = rec["values"]["profile"]
                if "csv" in formats:
                    outs[(p, "csv")].add(_csv_line(rec, header, w, s))
                if "jsonl" in formats:
                    outs[(p, "jsonl")].add(_jsonl_line(rec))
        except BaseException:
            for o in outs.values():
                o.abort()
            raise
        for o in outs.values():
            o.finish()
        return {o.path: o.rows for o in outs.values()}
    finally:
        db.close()


def _has_signals(db: sqlite3.Connection) -> bool:
    return signal_tables(db) or db.execute(
        "SELECT 1 FROM sqlite_master WHERE name='audit_signals' AND type='table'").fetchone() is not None
