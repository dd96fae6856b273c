"""Signal decisions in the audit SQLite: one compact row per decision, one column per gate field.

A decision carries about 40 gates and 30 features. Schema 1 stored them as JSON text (about
7 KB a row, and the same again in the JSONL file and 1.5 KB in the CSV). Schema 2 stores each
decision once, as typed columns (about 0.8 KB a row):

``audit_signal_rows``
    ``id``, the fixed columns (``SIGNAL_COLUMNS`` without ``time``, which is ``ts_ms``;
    ``rejections`` is a text id), ``layout``, ``features`` (1 when the decision had features),
    ``f_<feature>`` (REAL / INTEGER / TEXT as the feature's type), then per gate, in order of
    first appearance: ``<g>_value``, ``<g>_threshold``, ``<g>_passed``, ``<g>_detail`` (a text
    id) and, from the first decision where the gate moved the score, ``<g>_score_delta`` /
    ``<g>_score_factor``.
``audit_layouts`` / ``audit_layout_gates``
    a layout is the ordered list of (name, kind, op) of a decision's gates, with the threshold
    that a NULL ``<g>_threshold`` of its rows stands for (the first one seen).
``audit_texts``
    gate details and rejection lists, which repeat on most rows.
``audit_gates``
    the gate names in order of first appearance (the column order).
``audit_signals`` (VIEW)
    the schema-1 shape (fixed columns, ``gates`` and ``features`` as JSON text) for readers of
    schema 1 (numbers with 17 significant digits: exact). ``read_signals`` returns the records
    directly, faster; ``signals_frame`` the wide table ``crot analyze`` reads (``load_run``).

Cells: NaN is NULL where NULL means nothing else (values, features, scores) and the text
'nan' where NULL stands for a default (threshold, score_delta, score_factor); infinities are
REAL infinities. Encoding runs at write time, inside the flush transaction: ids handed out
by a failed transaction are taken back (``rollback``), so the in-memory dictionaries always
match the database.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from itertools import chain, compress
from operator import attrgetter, itemgetter, ne, not_
from typing import Any, NamedTuple

from engine.strategy.decision import HARD, Decision, GateResult
from engine.strategy.features import SymbolFeatures

from .audit_rows import iso_time, json_safe
from .scrub import scrubber

__all__ = ["FEATURE_NAMES", "IncompatibleSignals", "MAX_LAYOUTS", "PendingSignal", "SignalTable", "pending_signals",
           "read_signals", "signal_tables", "signals_frame"]

ROWS = "audit_signal_rows"
VIEW = "audit_signals"
TEXTS = "audit_texts"
LAYOUTS = "audit_layouts"
LAYOUT_GATES = "audit_layout_gates"
GATES = "audit_gates"
#: the view has a branch per layout: beyond this many the file is rotated (its schema stays small)
MAX_LAYOUTS = 400
#: SQLite's default column limit is 2000
MAX_COLUMNS = 1900
TEXT_CACHE_MAX = 200_000

_TYPES = {"float": "REAL", "int": "INTEGER", "bool": "BOOL", "str": "TEXT"}
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SymbolFeatures)
                                       if f.name not in ("symbol", "ts_ms"))
FEATURE_TYPES: dict[str, str] = {f.name: _TYPES.get(str(f.type), "REAL") for f in dataclasses.fields(SymbolFeatures)
                                 if f.name in FEATURE_NAMES}
_get_features = attrgetter(*FEATURE_NAMES)
_PLAIN = frozenset((float, int, bool, str, type(None)))  # bound by sqlite3 as they are
_ONLY_GATES = frozenset((GateResult,))

#: the fixed columns of a row (after id), in table order
FIXED: tuple[tuple[str, str], ...] = (
    ("ts_ms", "INTEGER"), ("profile", "TEXT"), ("symbol", "TEXT"), ("side", "TEXT"), ("score", "REAL"),
    ("raw_score", "REAL"), ("valid", "INTEGER"), ("entry_valid", "INTEGER"), ("add_valid", "INTEGER"),
    ("first_rejection", "TEXT"), ("rejections", "INTEGER"), ("selected", "INTEGER"), ("cycle_ms", "INTEGER"),
    ("layout", "INTEGER"), ("features", "INTEGER"),
)
_N_FIXED = len(FIXED)
_I_REJ = 10  # index of `rejections` in FIXED
_I_LAYOUT = 13


class IncompatibleSignals(Exception):
    """An existing file's signal tables do not match this version's layout."""


def _plain(v: Any) -> Any:
    """A value sqlite3 can bind, as json_safe would write it (numpy scalars, Decimals ...)."""
    t = type(v)
    if t in _PLAIN:
        return v
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, Decimal):
        return float(v) if v.is_finite() else (math.nan if v.is_nan() else float(v))
    if isinstance(v, (int, float)):
        return float(v) if isinstance(v, float) else int(v)
    item = getattr(v, "item", None)
    if callable(item):
        return _plain(item())
    return str(json_safe(v))


def _nan_text(v: Any) -> Any:
    """For a column where NULL means a default: NaN is stored as the text 'nan'."""
    return "nan" if v != v else v


class PendingSignal(NamedTuple):
    """One decision as queued; texts are scrubbed and ids given at write time. Only flat
    tuples of plain values: the garbage collector stops tracking them at once, so a queue of
    decisions costs it nothing (the engine's heap is large; full collections walk it)."""

    fixed: tuple[Any, ...]  # ts_ms .. cycle_ms; first_rejection / rejections None: from the gates
    gates: tuple[Any, ...]  # the gates' 9 fields one after the other (name, value, threshold, passed, kind, ...)
    features: tuple[Any, ...] | None


def _gate(g: Any) -> GateResult:
    """A gate-like object as a GateResult (the strategy's own gates already are one)."""
    return GateResult(g.name, g.value, g.threshold, g.passed, getattr(g, "kind", ""), getattr(g, "op", ""),
                      getattr(g, "detail", ""), getattr(g, "score_delta", 0.0), getattr(g, "score_factor", 1.0))


def pending_signals(ev: Any) -> list[PendingSignal]:
    """The decisions of a ``Decisions`` event, ready for ``SignalTable.encode``; raises on a
    malformed decision (the writer counts the event as bad). Cheap: the gate tuples and
    features are kept as they are (the event is immutable); odd value types are converted
    at encode time, when binding them fails."""
    selected = set(ev.selected)
    profile, cycle = ev.profile, int(ev.ts_ms)
    out = []
    for d in ev.decisions:
        if d is None:
            continue
        gates = d.gates
        if not _ONLY_GATES.issuperset(map(type, gates)):
            gates = tuple(g if type(g) is GateResult else _gate(g) for g in gates)
        f = d.features
        if type(d) is Decision:  # its rejections are its failing hard gates: derived at encode time
            first, rejections = None, None
        else:
            first, rejections = d.first_rejection or "", ";".join(d.rejections)
        fixed = (int(d.ts_ms), profile, d.symbol, d.side, d.score, d.raw_score, bool(d.valid),
                 bool(d.entry_valid), bool(d.add_valid), first, rejections, d.symbol in selected, cycle)
        out.append(PendingSignal(fixed, tuple(chain.from_iterable(gates)),
                                 _get_features(f) if f is not None else None))
    return out


#: optional per-gate columns: field -> (_Gate attribute, SQL type); created at the first row
#: that needs one (a threshold other than the layout's, a detail, a score change)
_OPTIONAL = {"threshold": ("thr", "REAL"), "detail": ("det", "INTEGER"), "score_delta": ("delta", "REAL"),
             "score_factor": ("factor", "REAL")}


@dataclasses.dataclass
class _Gate:
    name: str  # as in the database (scrubbed)
    pos: int  # order of first appearance
    col: int  # index of <g>_value in the row; <g>_passed follows it
    thr: int = -1  # index of the optional columns, -1 while they do not exist
    det: int = -1
    delta: int = -1
    factor: int = -1


@dataclasses.dataclass
class _Layout:
    id: int
    gates: tuple[_Gate, ...]
    thresholds: tuple[Any, ...]  # the default threshold per gate (NaN allowed)
    spec: tuple[tuple[str, str, str], ...]  # (name, kind, op) as stored (scrubbed)
    ones: tuple[float, ...] = ()  # (1.0,) * gates: the default score factors
    idx: range = range(0)
    hard: tuple[int, ...] = ()  # positions of the hard gates (their failures are the rejections) ...
    hard_names: tuple[str, ...] = ()  # ... and their raw names
    runs: tuple[tuple[int, int, int], ...] = ()  # (row index, first gate, end gate): value/passed pairs in a row

    def __post_init__(self) -> None:
        n = len(self.gates)
        self.ones, self.idx = (1.0,) * n, range(n)
        runs: list[list[int]] = []
        for j, g in enumerate(self.gates):
            if runs and g.col == runs[-1][0] + 2 * (j - runs[-1][1]):
                runs[-1][2] = j + 1
            else:
                runs.append([g.col, j, j + 1])
        self.runs = tuple((r[0], r[1], r[2]) for r in runs)

    def set_hard(self, names: Sequence[str], kinds: Sequence[str]) -> None:
        self.hard = tuple(j for j, k in enumerate(kinds) if k == HARD)
        self.hard_names = tuple(names[j] for j in self.hard)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class SignalTable:
    """In-memory mirror of the signal tables of one database file, and the row encoder."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new or rotated database file)."""
        self.loaded = False
        self.columns: list[tuple[str, str]] = [("id", "INTEGER PRIMARY KEY"), *FIXED,
                                               *((f"f_{n}", FEATURE_TYPES[n]) for n in FEATURE_NAMES)]
        self.gates: dict[str, _Gate] = {}  # raw gate name -> columns
        self.layouts: dict[tuple[tuple[str, ...], ...], _Layout] = {}  # (names, kinds, ops) -> layout
        self.texts: dict[str, int] = {}
        self.next_text = 1
        self.next_layout = 1
        self.db_columns = len(self.columns)  # columns that exist in the database
        self.view_key: tuple[int, int] = (-1, -1)  # (layouts, columns) the view was built for
        self._new_texts: list[tuple[str, int, str]] = []  # raw, id, stored
        self._new_layouts: list[tuple[tuple[tuple[str, ...], ...], _Layout]] = []
        self._new_gates: list[str] = []
        self._undo_cols: list[tuple[_Gate, str]] = []  # optional columns added: (gate, attribute)
        self._cols_before = len(self.columns)

    # -- schema ---------------------------------------------------------------------------
    def create(self, db: sqlite3.Connection) -> None:
        """Create the tables of a new file (inside the caller's transaction)."""
        decl = ", ".join(f"{_ident(c)} {'INTEGER' if t == 'BOOL' else t}" for c, t in self.columns)
        db.execute(f"CREATE TABLE IF NOT EXISTS {ROWS} ({decl})")
        db.execute(f"CREATE INDEX IF NOT EXISTS {ROWS}_profile_ts_ms ON {ROWS} (profile, ts_ms)")
        db.execute(f"CREATE TABLE IF NOT EXISTS {TEXTS} (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
        db.execute(f"CREATE TABLE IF NOT EXISTS {GATES} (name TEXT PRIMARY KEY, pos INTEGER NOT NULL)")
        db.execute(f"CREATE TABLE IF NOT EXISTS {LAYOUTS} (id INTEGER PRIMARY KEY, gates TEXT NOT NULL)")
        db.execute(f"CREATE TABLE IF NOT EXISTS {LAYOUT_GATES} (layout INTEGER NOT NULL, pos INTEGER NOT NULL, "
                   "name TEXT NOT NULL, kind TEXT NOT NULL, op TEXT NOT NULL, threshold REAL, "
                   "PRIMARY KEY (layout, pos)) WITHOUT ROWID")

    def load(self, db: sqlite3.Connection) -> None:
        """Read back the dictionaries of an existing file; ``IncompatibleSignals`` when its
        row table was written by a version with other fixed or feature columns."""
        self.reset()
        have = [r[1] for r in db.execute(f"PRAGMA table_info({ROWS})")]
        base = [c for c, _ in self.columns]
        if have[:len(base)] != base:
            raise IncompatibleSignals(f"{ROWS} has other fixed or feature columns than this version writes")
        types = dict(self.columns)
        self.columns = [(c, types.get(c, "REAL")) for c in have]
        index = {c: i for i, c in enumerate(have)}
        for name, pos in db.execute(f"SELECT name, pos FROM {GATES} ORDER BY pos"):
            col = index.get(f"{name}_value", -1)
            if col < 0 or index.get(f"{name}_passed") != col + 1:
                raise IncompatibleSignals(f"gate {name!r} has no value/passed columns in {ROWS}")
            g = _Gate(name, pos, col)
            for fld, (attr, _t) in _OPTIONAL.items():
                setattr(g, attr, index.get(f"{name}_{fld}", -1))
            self.gates[name] = g
        self.db_columns = len(self.columns)
        specs: dict[int, list[tuple[Any, ...]]] = {}
        for lid, name, kind, op, thr in db.execute(
                f"SELECT layout, name, kind, op, threshold FROM {LAYOUT_GATES} ORDER BY layout, pos"):
            specs.setdefault(lid, []).append((name, kind, op, thr))
        for lid, in db.execute(f"SELECT id FROM {LAYOUTS} ORDER BY id"):
            entries = specs.get(lid, [])
            spec = tuple((n, k, o) for n, k, o, _ in entries)
            self.next_layout = max(self.next_layout, lid + 1)
            if any(n not in self.gates for n, _, _ in spec):
                continue  # not reusable; its rows stay readable
            thr = tuple(math.nan if t is None or t == "nan" else t for *_, t in entries)
            key = (tuple(n for n, _, _ in spec), tuple(k for _, k, _ in spec), tuple(o for _, _, o in spec))
            lay = _Layout(lid, tuple(self.gates[n] for n, _, _ in spec), thr, spec)
            lay.set_hard(key[0], key[1])
            self.layouts[key] = lay
        top = db.execute(f"SELECT max(id) FROM {TEXTS}").fetchone()[0]
        self.next_text = (top or 0) + 1
        for tid, text in db.execute(f"SELECT id, text FROM {TEXTS} ORDER BY id LIMIT {TEXT_CACHE_MAX // 2}"):
            self.texts.setdefault(text, tid)
        self.view_key = (len(self.layouts), len(self.columns))
        self._cols_before = len(self.columns)
        self.loaded = True

    def _add_gate(self, raw: str, sc: Callable[[str], str]) -> _Gate:
        if len(self.columns) + 2 > MAX_COLUMNS:
            raise sqlite3.OperationalError(f"audit: too many signal columns ({len(self.columns)}); "
                                           "rotate the audit database")
        name = sc(raw)
        if any(x.name == name for x in self.gates.values()):
            name = f"{name}~{len(self.gates)}"  # two raw names scrubbed alike: keep their columns apart
        g = _Gate(name, len(self.gates), len(self.columns))
        self.columns += [(f"{name}_value", "REAL"), (f"{name}_passed", "INTEGER")]
        self.gates[raw] = g
        self._new_gates.append(raw)
        return g

    def _optional(self, g: _Gate, fld: str, row: list[Any]) -> int:
        """The index of an optional column of ``g``, added (and ``row`` extended) the first
        time a row needs it."""
        attr, sql_type = _OPTIONAL[fld]
        idx = getattr(g, attr)
        if idx < 0:
            idx = len(self.columns)
            if idx >= MAX_COLUMNS:
                raise sqlite3.OperationalError(f"audit: too many signal columns ({idx}); rotate the audit database")
            self.columns.append((f"{g.name}_{fld}", sql_type))
            self._undo_cols.append((g, attr))
            setattr(g, attr, idx)
        if idx >= len(row):
            row += [None] * (idx + 1 - len(row))
        return idx

    # -- encoding -------------------------------------------------------------------------
    def _text(self, raw: str, sc: Callable[[str], str]) -> int:
        tid = self.texts.get(raw)
        if tid is None:
            if len(self.texts) >= TEXT_CACHE_MAX:
                self.texts.clear()  # a text seen again later gets a second id: harmless
            tid = self.next_text
            self.next_text += 1
            self.texts[raw] = tid
            self._new_texts.append((raw, tid, sc(raw)))
        return tid

    def _layout(self, key: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], thresholds: tuple[Any, ...],
                sc: Callable[[str], str]) -> _Layout:
        names, kinds, ops = key
        gl = tuple(self.gates.get(name) or self._add_gate(name, sc) for name in names)
        spec = tuple((g.name, sc(k), sc(o)) for g, k, o in zip(gl, kinds, ops))
        lay = _Layout(self.next_layout, gl, tuple(thresholds), spec)
        lay.set_hard(names, kinds)
        self.next_layout += 1
        self.layouts[key] = lay
        self._new_layouts.append((key, lay))
        return lay

    def encode(self, items: Sequence[PendingSignal], normalize: bool = False) -> list[list[Any]]:
        """Rows for ``items`` (lists as long as ``self.columns`` when they were encoded; the
        insert pads them). New texts, layouts and columns are remembered until ``commit`` /
        ``rollback``. ``normalize`` converts every cell to a type sqlite3 binds (the slow
        path, after a binding error)."""
        sc = scrubber()
        get_text = self.texts.get
        out = []
        for it in items:
            fixed = it.fixed
            gates = it.gates
            cols = tuple(gates[i::9] for i in range(9)) if gates else _NO_GATES  # names, values, ...
            # sqlite3 would store a numpy scalar (other than float64) as a BLOB, silently: such
            # a decision takes the converting path
            norm = normalize or not (_PLAIN.issuperset(map(type, fixed)) and _PLAIN.issuperset(
                map(type, chain(cols[1], cols[2], cols[3], cols[7], cols[8], it.features or ()))))
            if norm:
                fixed = tuple(_plain(v) for v in fixed)
            key = (cols[0], cols[4], cols[5])  # names, kinds, ops
            lay = self.layouts.get(key)
            if lay is None:
                lay = self._layout(key, cols[2], sc)
            first, rej = fixed[9], fixed[10]
            if rej is None:  # a Decision: its failing hard gates, in order
                failed = tuple(compress(lay.hard_names, map(not_, itemgetter(*lay.hard)(cols[3])))) \
                    if len(lay.hard) > 1 else tuple(n for n, i in zip(lay.hard_names, lay.hard) if not cols[3][i])
                first = failed[0] if failed else ""
                rej = ";".join(failed)
            row = [None, fixed[0], sc(fixed[1]), sc(fixed[2]), sc(fixed[3]), fixed[4], fixed[5], fixed[6], fixed[7],
                   fixed[8], sc(first), (get_text(rej) or self._text(rej, sc)) if rej else None, fixed[11],
                   fixed[12], lay.id, it.features is not None]
            feats = it.features
            if feats is not None:
                row += map(_plain, feats) if norm else feats
                for i in _TEXT_FEATURES:
                    if row[i] is not None:
                        row[i] = sc(row[i])
            else:
                row += _NO_FEATURES
            row += [None] * (len(self.columns) - len(row))
            if gates:
                self._gates_into(row, lay, cols, norm, sc)
            out.append(row)
        return out

    def _gates_into(self, row: list[Any], lay: _Layout, cols: tuple[tuple[Any, ...], ...], normalize: bool,
                    sc: Callable[[str], str]) -> None:
        _n, values, thresholds, passed, _k, _o, details, deltas, factors = cols
        if normalize:
            values, thresholds, deltas, factors = (tuple(map(_plain, x)) for x in (values, thresholds, deltas,
                                                                                  factors))
            passed = tuple(map(bool, passed))
        for start, j0, j1 in lay.runs:  # value and passed of consecutive gates: slice assignments
            stop = start + 2 * (j1 - j0)
            row[start:stop:2] = values[j0:j1]
            row[start + 1:stop:2] = passed[j0:j1]
        g = lay.gates
        n = len(row)  # an optional column created now makes it longer (and this row with it)
        if thresholds != lay.thresholds:
            defaults = lay.thresholds
            for j in compress(lay.idx, map(ne, thresholds, defaults)):
                t, d = thresholds[j], defaults[j]
                if t != t and d != d:
                    continue
                i = g[j].thr
                if i < 0 or i >= n:
                    i, n = self._optional(g[j], "threshold", row), len(row)
                row[i] = "nan" if t != t else t
        if any(details):
            get_text = self.texts.get
            for j in compress(lay.idx, details):
                d = details[j]
                i = g[j].det
                if i < 0 or i >= n:
                    i, n = self._optional(g[j], "detail", row), len(row)
                tid = get_text(d)
                row[i] = tid if tid is not None else self._text(d, sc)
        if any(deltas):
            for j in compress(lay.idx, deltas):
                x = deltas[j]
                i = g[j].delta
                if i < 0 or i >= n:
                    i, n = self._optional(g[j], "score_delta", row), len(row)
                row[i] = "nan" if x != x else x
        if factors != lay.ones:
            for j in compress(lay.idx, map(ne, factors, lay.ones)):
                x = factors[j]
                i = g[j].factor
                if i < 0 or i >= n:
                    i, n = self._optional(g[j], "score_factor", row), len(row)
                row[i] = "nan" if x != x else x

    # -- writing (inside the caller's transaction) ----------------------------------------
    def write(self, db: sqlite3.Connection, rows: list[list[Any]]) -> None:
        for name, decl in self.columns[self.db_columns:]:
            db.execute(f"ALTER TABLE {ROWS} ADD COLUMN {_ident(name)} {'INTEGER' if decl == 'BOOL' else decl}")
        if self._new_gates:
            db.executemany(f"INSERT INTO {GATES} (name, pos) VALUES (?, ?)",
                           [(self.gates[n].name, self.gates[n].pos) for n in self._new_gates])
        if self._new_texts:
            db.executemany(f"INSERT INTO {TEXTS} (id, text) VALUES (?, ?)", [(i, t) for _, i, t in self._new_texts])
        for _key, lay in self._new_layouts:
            db.execute(f"INSERT INTO {LAYOUTS} (id, gates) VALUES (?, ?)",
                       (lay.id, json.dumps([list(s) for s in lay.spec], ensure_ascii=False)))
            db.executemany(f"INSERT INTO {LAYOUT_GATES} (layout, pos, name, kind, op, threshold) VALUES (?,?,?,?,?,?)",
                           [(lay.id, i, n, k, o, None if t != t else _plain(t))
                            for i, ((n, k, o), t) in enumerate(zip(lay.spec, lay.thresholds))])
        if rows:
            width = len(self.columns)
            for r in rows:
                if len(r) < width:
                    r.extend([None] * (width - len(r)))
            names = ", ".join(_ident(c) for c, _ in self.columns)
            marks = ", ".join("?" * width)
            db.executemany(f"INSERT INTO {ROWS} ({names}) VALUES ({marks})", rows)
        if self.view_key != (len(self.layouts), len(self.columns)):
            db.execute(f"DROP VIEW IF EXISTS {VIEW}")
            db.execute(self.view_sql())

    def commit(self) -> None:
        self.db_columns = len(self.columns)
        self.view_key = (len(self.layouts), len(self.columns))
        self._new_texts.clear()
        self._new_layouts.clear()
        self._new_gates.clear()
        self._undo_cols.clear()
        self._cols_before = len(self.columns)

    def rollback(self) -> None:
        """The transaction failed: take back what it would have added."""
        for raw, tid, _ in self._new_texts:
            if self.texts.get(raw) == tid:
                del self.texts[raw]
        if self._new_texts:
            self.next_text = self._new_texts[0][1]
        for key, _ in self._new_layouts:
            self.layouts.pop(key, None)
        if self._new_layouts:
            self.next_layout = self._new_layouts[0][1].id
        for raw in self._new_gates:
            del self.gates[raw]
        for g, attr in self._undo_cols:
            setattr(g, attr, -1)
        del self.columns[self._cols_before:]
        self._new_texts.clear()
        self._new_layouts.clear()
        self._new_gates.clear()
        self._undo_cols.clear()

    # -- the schema-1 view ----------------------------------------------------------------
    def view_sql(self) -> str:
        """The schema-1 view: per layout (its gates, kinds and order are fixed) one branch of a CASE."""
        have = {c for c, _ in self.columns}
        feats = "json_object(" + ", ".join(
            f"{_lit(n)}, {_feature_sql('s.' + _ident('f_' + n), FEATURE_TYPES[n])}" for n in FEATURE_NAMES) + ")"
        head = ("SELECT s.id AS id, s.ts_ms AS ts_ms, strftime('%Y-%m-%dT%H:%M:%fZ', s.ts_ms / 1000.0, 'unixepoch') "
                f"AS time, s.profile AS profile, s.symbol AS symbol, s.side AS side, {_num_sql('s.score')} AS score, "
                f"{_num_sql('s.raw_score')} AS raw_score, s.valid AS valid, s.entry_valid AS entry_valid, "
                "s.add_valid AS add_valid, s.first_rejection AS first_rejection, "
                f"coalesce((SELECT text FROM {TEXTS} WHERE id = s.rejections), '') AS rejections, "
                "s.selected AS selected, s.cycle_ms AS cycle_ms, ")
        tail = f", CASE WHEN s.features THEN {feats} ELSE '{{}}' END AS features FROM {ROWS} s"
        branches = []
        for lay in sorted(self.layouts.values(), key=lambda x: x.id):
            objs = []
            for pos, (g, (name, kind, op)) in enumerate(zip(lay.gates, lay.spec)):
                def col(fld: str, g: _Gate = g) -> str:
                    return "s." + _ident(f"{g.name}_{fld}")

                def opt(fld: str, default: str, expr: Callable[[str], str], g: _Gate = g) -> str:
                    if f"{g.name}_{fld}" not in have:
                        return default
                    return f"CASE WHEN {col(fld)} IS NULL THEN {default} ELSE {expr(col(fld))} END"

                default = f"(SELECT {_num_sql('threshold')} FROM {LAYOUT_GATES} WHERE layout = {lay.id} AND pos = {pos})"
                detail = f"(SELECT text FROM {TEXTS} WHERE id = {col('detail')})"
                objs.append(
                    f"json_object('name', {_lit(name)}, 'value', {_num_sql(col('value'))}, "
                    f"'threshold', {opt('threshold', default, _num_sql)}, "
                    f"'passed', json(CASE WHEN {col('passed')} THEN 'true' ELSE 'false' END), "
                    f"'kind', {_lit(kind)}, 'op', {_lit(op)}, "
                    f"'detail', {opt('detail', chr(39) * 2, lambda c: f'coalesce({detail}, {chr(39) * 2})')}, "
                    f"'score_delta', {opt('score_delta', '0.0', _num_sql)}, "
                    f"'score_factor', {opt('score_factor', '1.0', _num_sql)})")
            gates = "'[' || " + " || ',' || ".join(objs) + " || ']'" if objs else "'[]'"
            branches.append(f"WHEN {lay.id} THEN {gates}")
        # one pass over the rows in id order; each row evaluates only its layout's branch
        gates_sql = f"CASE s.layout {' '.join(branches)} ELSE '[]' END" if branches else "'[]'"
        return f"CREATE VIEW {VIEW} AS {head}{gates_sql} AS gates{tail}"



_FEATURE_OFFSET = 1 + _N_FIXED
_TEXT_FEATURES = tuple(_FEATURE_OFFSET + i for i, n in enumerate(FEATURE_NAMES) if FEATURE_TYPES[n] == "TEXT")
_NO_FEATURES = (None,) * len(FEATURE_NAMES)
_NO_GATES: tuple[tuple[Any, ...], ...] = ((),) * 9


def _num_sql(x: str) -> str:
    """A REAL cell as schema 1 wrote it into JSON: infinities as 'inf' / '-inf', 'nan' as null,
    other reals with 17 significant digits (json_object alone writes 15: not exact)."""
    return (f"CASE typeof({x}) WHEN 'real' THEN CASE WHEN {x} = 9e999 THEN 'inf' WHEN {x} = -9e999 THEN '-inf' "
            f"ELSE json(printf('%!.17g', {x})) END WHEN 'text' THEN CASE WHEN {x} = 'nan' THEN NULL ELSE {x} END "
            f"ELSE {x} END")


def _feature_sql(x: str, kind: str) -> str:
    if kind == "BOOL":
        return f"json(CASE {x} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
    if kind == "REAL":
        return _num_sql(x)
    return x


def signal_tables(db: sqlite3.Connection) -> bool:
    """True when the file holds schema-2 signal tables."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (ROWS,)).fetchone() is not None


# --------------------------------------------------------------------------- reading
def _cell(v: Any) -> Any:
    return math.nan if v == "nan" else v


def read_signals(db: sqlite3.Connection, where: str = "", params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
    """Every decision of a schema-2 file with exact values, in id order, as the schema-1
    record: the ``SIGNAL_COLUMNS`` values, ``gates`` (dicts in evaluation order) and
    ``features`` (a dict; empty when the decision had none). ``where`` filters the rows
    (e.g. ``"profile = ?"``)."""
    texts = dict(db.execute(f"SELECT id, text FROM {TEXTS}"))
    layouts: dict[int, list[tuple[str, str, str, Any]]] = {}
    for lid, name, kind, op, thr in db.execute(
            f"SELECT layout, name, kind, op, threshold FROM {LAYOUT_GATES} ORDER BY layout, pos"):
        layouts.setdefault(lid, []).append((name, kind, op, math.nan if thr is None else thr))
    cur = db.execute(f"SELECT * FROM {ROWS}{' WHERE ' + where if where else ''} ORDER BY id", tuple(params))
    index = {d[0]: i for i, d in enumerate(cur.description)}
    plan = {}
    for lid, spec in layouts.items():
        plan[lid] = [(name, kind, op, thr, index.get(f"{name}_value"), index.get(f"{name}_threshold"),
                      index.get(f"{name}_passed"), index.get(f"{name}_detail"), index.get(f"{name}_score_delta"),
                      index.get(f"{name}_score_factor")) for name, kind, op, thr in spec]
    fcols = [(n, index[f"f_{n}"], FEATURE_TYPES[n]) for n in FEATURE_NAMES if f"f_{n}" in index]
    fixed = [c for c, _ in FIXED if c not in ("layout", "features")]
    fidx = [index[c] for c in fixed]
    bools = {"valid", "entry_valid", "add_valid", "selected"}
    for r in cur:
        values: dict[str, Any] = {}
        for c, i in zip(fixed, fidx):
            v = r[i]
            if c in bools:
                v = bool(v)
            elif c == "rejections":
                v = texts.get(v, "") if v is not None else ""
            elif c in ("score", "raw_score") and v is None:
                v = math.nan
            values[c] = v
        values["time"] = iso_time(values["ts_ms"])
        gates = []
        for name, kind, op, tdef, vi, ti, pi, di, si, fi in plan.get(r[index["layout"]], ()):
            t = r[ti] if ti is not None else None
            d = r[di] if di is not None else None
            s = r[si] if si is not None else None
            f = r[fi] if fi is not None else None
            v = r[vi] if vi is not None else None
            gates.append({"name": name, "value": math.nan if v is None else v,
                          "threshold": tdef if t is None else _cell(t), "passed": bool(r[pi]) if pi is not None else False,
                          "kind": kind, "op": op, "detail": texts.get(d, "") if d is not None else "",
                          "score_delta": 0.0 if s is None else _cell(s), "score_factor": 1.0 if f is None else _cell(f)})
        feats: dict[str, Any] = {}
        if r[index["features"]]:
            for n, i, kind in fcols:
                v = r[i]
                if kind == "BOOL" and v is not None:
                    v = bool(v)
                elif kind == "REAL" and v is None:
                    v = math.nan
                feats[n] = v
        yield {"values": values, "gates": gates, "features": feats}


def signals_frame(db: sqlite3.Connection) -> tuple[Any, tuple[str, ...], dict[str, str]]:
    """The wide signal table of ``crot analyze`` straight from a schema-2 file, without JSON:
    (frame, gate names in order of first appearance, gate kind by name). The frame has the
    columns of ``records._expand_signals`` (``SIGNAL_COLUMNS``, ``<gate>_value`` /
    ``_threshold`` / ``_passed``, ``f_<feature>``), raw cells as that function gives them
    (the caller types them), in id order; a gate a decision did not have is empty."""
    import pandas as pd

    from .audit_schema import GATE_SUFFIXES, SIGNAL_COLUMNS

    rows = pd.read_sql_query(f"SELECT * FROM {ROWS} ORDER BY id", db)
    texts = dict(db.execute(f"SELECT id, text FROM {TEXTS}"))
    lg = db.execute(f"SELECT layout, name, kind, threshold FROM {LAYOUT_GATES} ORDER BY layout, pos").fetchall()
    order = tuple(n for n, in db.execute(f"SELECT name FROM {GATES} ORDER BY pos"))
    kinds: dict[str, str] = {}
    defaults: dict[str, dict[int, Any]] = {}
    for lid, name, kind, thr in lg:
        kinds.setdefault(name, kind)
        defaults.setdefault(name, {})[lid] = math.nan if thr is None else thr
    layout = rows["layout"]
    ts = rows["ts_ms"]
    stamp = pd.to_datetime(ts, unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    out: dict[str, Any] = {}
    for c in SIGNAL_COLUMNS:
        if c == "time":
            out[c] = stamp.str.slice(0, 23) + "Z"
        elif c == "rejections":
            out[c] = rows[c].map(lambda v: texts.get(v, "") if v == v and v is not None else "")
        else:
            out[c] = rows[c]
    for name in order:
        present = layout.isin(list(defaults.get(name, {})))
        for sfx in GATE_SUFFIXES:
            col = f"{name}{sfx}"
            if sfx == "_threshold":
                default = layout.map(defaults.get(name, {}))
                own = pd.to_numeric(rows[col], errors="coerce") if col in rows else None
                vals = default if own is None else own.where(rows[col].notna(), default)
                if own is not None:
                    vals = vals.where(~(rows[col] == "nan"), math.nan)
                out[col] = vals.where(present)
            elif sfx == "_passed":
                out[col] = rows[col].map({1: True, 0: False}).where(present, None) if col in rows else None
            else:
                out[col] = rows[col].where(present) if col in rows else math.nan
    for n in FEATURE_NAMES:
        col = rows[f"f_{n}"]
        out[f"f_{n}"] = col.map({1: True, 0: False}) if FEATURE_TYPES[n] == "BOOL" else col
    return pd.DataFrame(out, index=rows.index), order, kinds
