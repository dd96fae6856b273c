"""Load a run's audit record (the SQLite file or the CSV folders) into pandas DataFrames.

Accepted paths: an audit SQLite file; a data directory holding ``audit.sqlite`` (preferred)
or profile folders (``long/``, ``short/``); a single profile folder. Both readers include the
rotated files, oldest first, so a long run with retention reads back whole: the SQLite files
the writer moved into ``audit_archive/`` next to ``audit.sqlite`` (``<dir>-audit.<UTC time>Z
.sqlite``), the CSV files of the archive folder (``csv_archive`` unless given). Every row is in
exactly one file (a rotation moves a whole file between two batches), so the files are read
one after the other and nothing is counted twice; the frames are then put in time order. An
archived SQLite file given as the path is read alone. Both sources give the same frames:
signals are wide (fixed columns, ``<gate>_value/_threshold/_passed``, ``f_<feature>``),
booleans are bool, numbers float.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from engine.store.audit_files import archived_files
from engine.store.audit_schema import (
    ARCHIVE_DIR_NAME,
    COLUMNS,
    DB_ARCHIVE_DIR_NAME,
    DB_NAME,
    FEATURE_COLUMNS,
    FILE_NAMES,
    GATE_SUFFIXES,
    GLOBAL_STREAMS,
    TABLES,
)
from engine.store.audit_signals import signal_tables, signals_frame

__all__ = ["RunRecord", "find_profile_dirs", "load_run", "sqlite_files"]

_BOOL = frozenset(("valid", "entry_valid", "add_valid", "selected", "reduce_only", "fatal", "blocked", "f_warm"))
_TEXT = frozenset(("time", "profile", "symbol", "side", "first_rejection", "rejections", "event", "purpose",
                   "reason", "kind", "action", "message", "regime", "previous", "inputs",
                   "f_pullback_cross", "f_spike_direction"))
_TRUE = {"true": True, "1": True, "false": False, "0": False}


@dataclass
class RunRecord:
    """Every stream of one run; ``gates`` lists the gate names in first-seen order and
    ``gate_kinds`` their kind (hard / penalty / info) where the record says it (JSON/SQLite)."""

    source: str
    kind: str  # 'sqlite' or 'csv'
    signals: pd.DataFrame
    trades: pd.DataFrame  # closed trades
    fills: pd.DataFrame
    cycles: pd.DataFrame
    diagnostics: pd.DataFrame
    account: pd.DataFrame
    macro: pd.DataFrame
    external: pd.DataFrame
    gates: tuple[str, ...] = ()
    gate_kinds: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # the SQLite files read, oldest first (archives, then the current one)

    @property
    def profiles(self) -> tuple[str, ...]:
        vals = pd.concat([self.signals.get("profile", pd.Series(dtype=object)),
                          self.trades.get("profile", pd.Series(dtype=object))])
        return tuple(sorted(v for v in vals.dropna().unique() if v))

    @property
    def span_ms(self) -> tuple[int, int] | None:
        parts = [f["ts_ms"].dropna() for f in (self.signals, self.trades, self.account, self.cycles) if len(f)]
        ts = pd.concat(parts) if parts else pd.Series(dtype=float)
        return (int(ts.min()), int(ts.max())) if len(ts) else None


def _bool(s: pd.Series) -> pd.Series:
    if s.dtype == bool:
        return s
    return s.map(lambda v: _TRUE.get(str(v).strip().lower()) if v is not None and v == v else None).astype(object)


def _coerce(df: pd.DataFrame) -> pd.DataFrame:
    """Typed columns: booleans (also every ``*_passed``), text, and numbers for the rest."""
    out = {}
    for c in df.columns:
        s = df[c]
        if c in _BOOL:
            out[c] = _bool(s).fillna(False).astype(bool)
        elif c.endswith("_passed"):
            out[c] = _bool(s)
        elif c in _TEXT:
            out[c] = s.astype(object).where(s.notna(), "").astype(str)
        else:
            out[c] = pd.to_numeric(s, errors="coerce")
    return pd.DataFrame(out, index=df.index)


def _empty(stream: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS[stream]})


def _gate_order(columns: list[str]) -> tuple[str, ...]:
    names: dict[str, None] = {}
    suffix = GATE_SUFFIXES[0]
    for c in columns:
        if c.endswith(suffix) and not c.startswith("f_"):
            names[c[: -len(suffix)]] = None
    return tuple(names)


# --------------------------------------------------------------------------- SQLite
def _read_table(db: sqlite3.Connection, stream: str) -> pd.DataFrame:
    try:
        return pd.read_sql_query(f"SELECT * FROM {TABLES[stream]} ORDER BY id", db).drop(columns=["id"])
    except (pd.errors.DatabaseError, sqlite3.Error):
        return _empty(stream)


def _expand_signals(df: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...], dict[str, str]]:
    rows = []
    order: dict[str, None] = {}
    kinds: dict[str, str] = {}
    for gates_text, feats_text in zip(df.get("gates", []), df.get("features", [])):
        row: dict[str, object] = {}
        for g in json.loads(gates_text) if gates_text else []:
            name = g["name"]
            order.setdefault(name, None)
            kinds.setdefault(name, g.get("kind", ""))
            row[f"{name}_value"] = g.get("value")
            row[f"{name}_threshold"] = g.get("threshold")
            row[f"{name}_passed"] = g.get("passed")
        for k, v in (json.loads(feats_text) if feats_text else {}).items():
            row[f"f_{k}"] = v
        rows.append(row)
    wide = pd.DataFrame(rows, index=df.index)
    gate_cols = [f"{n}{s}" for n in order for s in GATE_SUFFIXES]
    wide = wide.reindex(columns=gate_cols + list(FEATURE_COLUMNS))
    base = df.drop(columns=[c for c in ("gates", "features") if c in df.columns])
    return pd.concat([base, wide], axis=1), tuple(order), kinds


def _sqlite_parts(path: Path, fast: bool) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], tuple[str, ...],
                                                  dict[str, str]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        frames = {s: _read_table(db, s) for s in COLUMNS if s != "signals"}
        if fast and signal_tables(db):
            signals, gates, kinds = signals_frame(db)
        else:
            view = _read_table(db, "signals")
            signals, gates, kinds = _expand_signals(view) if len(view) else (_empty("signals"), (), {})
    finally:
        db.close()
    if not len(signals):  # as the view gives an empty table: the fixed columns, no gates
        signals, gates, kinds = _empty("signals"), (), {}
    return signals, frames, gates, kinds


def _load_sqlite(path: Path, *, fast: bool = True) -> RunRecord:
    """One SQLite file. Schema 2 (``audit_signal_rows``) is read through ``signals_frame``:
    the typed row table, without the JSON of the ``audit_signals`` view (the same record,
    several times faster); ``fast=False`` (and a schema-1 file) expands the view's JSON."""
    return _load_sqlite_files([path], str(path), fast=fast)


def sqlite_files(db: Path) -> list[Path]:
    """The SQLite files of a run whose current file is ``db``: its rotated files in
    ``audit_archive/`` next to it, oldest first, then ``db`` itself if it exists."""
    return [*archived_files(db, db.parent / DB_ARCHIVE_DIR_NAME), *([db] if db.is_file() else [])]


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if len(parts) == 1:
        return parts[0]
    full = [p for p in parts if len(p)]
    if not full:
        return parts[-1]
    return pd.concat(full, ignore_index=True, sort=False) if len(full) > 1 else full[0].reset_index(drop=True)


def _load_sqlite_files(paths: list[Path], source: str, *, fast: bool = True) -> RunRecord:
    """Several SQLite files of one run, oldest first: their rows one after the other (gates
    in first-seen order over the files), then typed and time-ordered as one record."""
    signals: list[pd.DataFrame] = []
    frames: dict[str, list[pd.DataFrame]] = {}
    order: dict[str, None] = {}
    kinds: dict[str, str] = {}
    for path in paths:
        sig, fr, gates, kd = _sqlite_parts(path, fast)
        signals.append(sig)
        for stream, frame in fr.items():
            frames.setdefault(stream, []).append(frame)
        order.update(dict.fromkeys(gates))
        for name, kind in kd.items():
            kinds.setdefault(name, kind)
    merged = {s: _concat(fs) for s, fs in frames.items()}
    sig = _concat(signals)
    if len(paths) > 1 and len(sig):  # the gate columns in the order of the union
        gate_cols = [f"{n}{suffix}" for n in order for suffix in GATE_SUFFIXES]
        known = set(gate_cols)
        rest = [c for c in sig.columns if c not in known and not c.startswith("f_")]
        feats = [c for c in sig.columns if c.startswith("f_")]
        sig = sig.reindex(columns=rest + gate_cols + feats)
    rec = _record(source, "sqlite", sig, merged, tuple(order), kinds)
    rec.files = tuple(str(p) for p in paths)
    return rec


# --------------------------------------------------------------------------- CSV
def find_profile_dirs(directory: Path) -> list[Path]:
    """The profile folders of a data directory (or the directory itself if it is one)."""
    names = set(FILE_NAMES.values())
    if any((directory / n).exists() for n in names):
        return [directory]
    return sorted(d for d in directory.iterdir() if d.is_dir() and any((d / n).exists() for n in names))


def _read_csvs(paths: list[Path]) -> pd.DataFrame:
    parts = [pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""]) for p in paths
             if p.exists() and p.stat().st_size > 0]
    parts = [p for p in parts if len(p.columns)]
    return pd.concat(parts, ignore_index=True, sort=False) if parts else pd.DataFrame()


def _jsonl_kinds(paths: list[Path]) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for p in paths:
        if not p.exists():
            continue
        with open(p, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                for g in rec.get("gates", []):
                    kinds.setdefault(g.get("name", ""), g.get("kind", ""))
                break  # the first record of each file names the gates of its period
    return kinds


def _load_csv(directory: Path, archive_dir: Path | None) -> RunRecord:
    frames: dict[str, list[pd.DataFrame]] = {s: [] for s in COLUMNS}
    kinds: dict[str, str] = {}
    for pdir in find_profile_dirs(directory):
        arch = archive_dir or pdir / ARCHIVE_DIR_NAME
        for stream in COLUMNS:
            cur = pdir / FILE_NAMES[stream]
            frames[stream].append(_read_csvs([*archived_files(cur, arch), cur]))
        jl = pdir / FILE_NAMES["signals_jsonl"]
        kinds.update(_jsonl_kinds([*archived_files(jl, arch), jl]))
    merged = {s: (pd.concat([f for f in fs if len(f.columns)], ignore_index=True, sort=False)
                  if any(len(f.columns) for f in fs) else _empty(s)) for s, fs in frames.items()}
    signals = merged["signals"]
    gates = _gate_order(list(signals.columns))
    return _record(str(directory), "csv", signals, merged, gates, kinds)


# --------------------------------------------------------------------------- common
def _record(source: str, kind: str, signals: pd.DataFrame, frames: dict[str, pd.DataFrame],
            gates: tuple[str, ...], kinds: dict[str, str]) -> RunRecord:
    typed = {s: _coerce(f) for s, f in frames.items() if s != "signals"}  # signals: typed below
    for s in GLOBAL_STREAMS:  # written once per profile folder
        typed[s] = typed[s].drop_duplicates(ignore_index=True)
    for s, f in typed.items():  # one time order, whatever the folder order was
        if len(f) and "ts_ms" in f:
            typed[s] = f.sort_values("ts_ms", kind="stable").reset_index(drop=True)
    sig = _coerce(signals)
    if len(sig):
        sig = (sig.drop_duplicates(subset=["profile", "symbol", "side", "ts_ms"], keep="last")
               .sort_values(["ts_ms", "profile", "symbol"], kind="stable").reset_index(drop=True))
    trades = typed["trades"]
    event = trades["event"] if "event" in trades else pd.Series("", index=trades.index)
    closed = trades[event == "close"].reset_index(drop=True)
    fills = trades[event == "fill"].reset_index(drop=True)
    if len(closed):
        closed = closed.drop_duplicates(subset=["profile", "symbol", "opened_ms"], keep="last").reset_index(drop=True)
    return RunRecord(source, kind, sig, closed, fills, typed["cycles"], typed["diagnostics"],
                     typed["account"], typed["macro"], typed["external"], gates, kinds)


def load_run(path: str | Path, archive_dir: str | Path | None = None) -> RunRecord:
    """Read a run's audit record; see the module docstring for the accepted paths."""
    p = Path(path)
    if p.is_file():  # the current file with its archives; an archived file alone
        return _load_sqlite_files(sqlite_files(p), str(p))
    if not p.is_dir():
        raise FileNotFoundError(f"no audit record at {p}")
    files = sqlite_files(p / DB_NAME)
    if files:
        return _load_sqlite_files(files, str(p / DB_NAME))
    if not find_profile_dirs(p):
        raise FileNotFoundError(f"{p}: neither {DB_NAME} nor audit CSV files found")
    return _load_csv(p, Path(archive_dir) if archive_dir else None)

