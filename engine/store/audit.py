"""The audit trail: every engine event of interest, per profile, in SQLite and CSV/JSONL files.

``AuditWriter`` is a synchronous ``EventBus`` subscriber that never blocks the engine and never
raises into it: ``__call__`` only appends the (immutable) event to a bounded queue. ``flush()``
turns queued events into rows and writes them (files: append + fsync; SQLite: one
transaction); run it every few seconds with ``run_flusher`` and at shutdown with ``aclose``.
A sink that fails keeps its rows pending and is retried at the next flush; the others go on.

Default layout (``data_dir`` is chosen by the caller; the per-side ``*_FILE`` settings override
single files, a relative setting is taken under the profile directory)::

    <data_dir>/audit.sqlite                 every stream, tables audit_* (see audit_schema)
    <data_dir>/audit_archive/               rotated SQLite files
    <data_dir>/<profile>/trades.csv         fills and closed trades        CSV_LOG_FILE
                         cycle_stats.csv    per-cycle stats                CYCLE_STATS_CSV_FILE
                         signal_analytics.csv / .jsonl (``signal_files``)  SIGNAL_ANALYTICS_*_FILE
                         diagnostics.csv / .jsonl (orders, stops, repairs, errors, status)
                         account_pnl.csv    account equity and PnL         ACCOUNT_PNL_CSV_FILE
                         macro.csv          macro regime changes           MACRO_CSV_FILE
                         external_prices.csv  cross-exchange premium       EXTERNAL_PRICE_CSV_FILE
                         csv_archive/       rotated files                  CSV_ARCHIVE_DIR

Signal decisions are the bulk of a record (20 per 5-minute step for ten coins and two sides).
They are stored once, compactly, in SQLite (``audit_signals``); the signal CSV and JSONL files
are written live only for the formats in ``signal_files`` (``AUDIT_SIGNAL_FILES``; the
constructor's default writes both, the settings' default neither) and otherwise made on demand
from the SQLite by ``crot audit export`` (``audit_export``), in the same layout.

Global events (account, regime, premium, and errors/status without a profile) are written to
each profile in ``profiles`` (each folder is a complete record; a path shared by two profiles
is written once) and once to SQLite. Every text goes through ``scrub`` on its way out.

With a ``retention`` policy (``from_settings``) the files are rotated by size and age, archives
are pruned by age and total size, and a low disk makes the record "disk full"
(``disk_full`` / ``block_reason``, registered as an ``Engine.entry_blockers`` entry where the
writer is made: the engine stops new entries and averaging, stops and exits go on; see
``audit_retention``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.runtime.events import Decisions, Event
from engine.strategy.features import FEATURE_FIELDS

from .audit_db import AuditDb
from .audit_files import CsvSink, FileSink, JsonlSink, archived_files, dumps
from .audit_retention import BULK_STREAMS, DiskGuard, RetentionPolicy, is_disk_full, prune
from .audit_rows import AuditRow, json_safe, rows_for_event
from .audit_schema import (
    ARCHIVE_DIR_NAME,
    COLUMNS,
    DB_ARCHIVE_DIR_NAME,
    DB_NAME,
    FEATURE_COLUMNS,
    FILE_NAMES,
    GLOBAL_STREAMS,
    JSONL_STREAMS,
    SIGNAL_FILE_FORMATS,
)
from .audit_signals import PendingSignal, pending_signals
from .scrub import register_settings_secrets, scrub, scrub_obj, scrubber

__all__ = ["AuditPaths", "AuditStats", "AuditWriter", "RetentionPolicy", "SETTING_OF_FILE", "resolve_path"]

log = logging.getLogger("crot.audit")

#: file key (audit_schema.FILE_NAMES) -> per-side setting that overrides its path
SETTING_OF_FILE: dict[str, str] = {
    "trades": "csv_log_file",
    "cycles": "cycle_stats_csv_file",
    "signals": "signal_analytics_csv_file",
    "signals_jsonl": "signal_analytics_jsonl_file",
    "diagnostics": "diagnostics_csv_file",
    "diagnostics_jsonl": "diagnostics_jsonl_file",
    "account": "account_pnl_csv_file",
    "macro": "macro_csv_file",
    "external": "external_price_csv_file",
}


def resolve_path(value: str, base: Path, default: str) -> Path:
    """Empty -> ``base/default``; absolute (or ~) -> itself; relative -> under ``base``."""
    if not value:
        return base / default
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


@dataclass(frozen=True)
class AuditPaths:
    """Where one profile's audit files go."""

    profile_dir: Path
    files: dict[str, Path]
    archive_dir: Path

    @classmethod
    def default(cls, data_dir: str | Path, profile: str, archive_dir: str = "") -> AuditPaths:
        return cls.from_values(data_dir, profile, {}, archive_dir)

    @classmethod
    def from_values(cls, data_dir: str | Path, profile: str, values: Mapping[str, str],
                    archive_dir: str = "") -> AuditPaths:
        """``values`` maps a file key to a configured path ('' or missing = default)."""
        base = Path(data_dir) / profile
        files = {k: resolve_path(values.get(k, "") or "", base, name) for k, name in FILE_NAMES.items()}
        return cls(base, files, resolve_path(archive_dir, base, ARCHIVE_DIR_NAME))

    @classmethod
    def from_settings(cls, settings: Any, data_dir: str | Path, profile: str) -> AuditPaths:
        p = settings.side(profile)
        values = {k: str(getattr(p, attr, "") or "") for k, attr in SETTING_OF_FILE.items()}
        return cls.from_values(data_dir, profile, values, str(settings.glob.csv_archive_dir or ""))


@dataclass
class AuditStats:
    events: int = 0
    rows_written: int = 0
    dropped_events: int = 0  # queue full, or published after close
    failures: int = 0
    last_error: str = ""
    skipped_rows: int = 0  # sampled away (account / premium throttles)
    bad_events: int = 0  # events that could not be turned into rows
    errors: list[str] = field(default_factory=list)  # the most recent failure texts
    rotations: int = 0  # files rotated into an archive folder
    pruned: int = 0  # archived files deleted by the retention policy


class AuditWriter:
    """EventBus subscriber writing the audit trail; see the module docstring."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        profiles: Iterable[str] = ("long", "short"),
        paths: Mapping[str, AuditPaths] | None = None,
        db: bool | str | Path = True,
        archive_dir: str = "",
        max_bytes: int = 1_048_576,
        account_sample_ms: int = 0,
        premium_sample_ms: int = 0,
        max_events: int = 100_000,
        max_pending_rows: int = 200_000,
        clock: Callable[[], float] = time.time,
        signal_files: Iterable[str] = SIGNAL_FILE_FORMATS,
        retention: RetentionPolicy | None = None,
        durable: bool = True,
    ):
        self.data_dir = Path(data_dir)
        if not durable:
            # a replay's record: the run is repeated, never resumed after a kill, so the
            # engine's per-fill durability barrier (EventBus.flush_durable) would only cost
            # fsyncs; the rows are written by the replay's daily flush and at the end
            self.durable_flush = None  # type: ignore[assignment]
        self.signal_files = tuple(signal_files)
        bad = [f for f in self.signal_files if f not in SIGNAL_FILE_FORMATS]
        if bad:
            raise ValueError(f"signal_files: {', '.join(bad)} is not one of {', '.join(SIGNAL_FILE_FORMATS)}")
        self.retention = retention
        self.guard = DiskGuard(self.data_dir, retention.min_free_bytes, clock) if retention else None
        self._last_prune: float | None = None
        self.profiles = tuple(profiles)
        self.paths: dict[str, AuditPaths] = dict(paths or {})
        self.archive_dir = archive_dir  # CSV_ARCHIVE_DIR, for profiles without configured paths
        self.max_bytes = int(max_bytes)
        self.account_sample_ms = int(account_sample_ms)
        self.premium_sample_ms = int(premium_sample_ms)
        self.max_pending_rows = max_pending_rows
        self.clock = clock
        self.stats = AuditStats()
        self._events: deque[Event] = deque(maxlen=max_events)
        self._signals: deque[PendingSignal] = deque(maxlen=max_pending_rows)
        self._sinks: dict[Path, FileSink] = {}
        self._flush_lock = threading.Lock()
        self._closed = False
        self._wake: asyncio.Event | None = None
        self._last_account_ms: int | None = None
        self._last_premium: dict[str, tuple[int, bool, str]] = {}
        if db is True:
            db_path: str | Path | None = self.data_dir / DB_NAME
        elif db is False:
            db_path = None
        else:
            db_path = db
        self.db = (AuditDb(db_path, max_pending=max_pending_rows, trusted=True, clock=clock,
                           archive_dir=Path(db_path).parent / DB_ARCHIVE_DIR_NAME)
                   if db_path is not None else None)

    @classmethod
    def from_settings(cls, settings: Any, data_dir: str | Path, **kw: Any) -> AuditWriter:
        """Paths, rotation size and the account sampling interval from the settings; the
        settings' secrets are registered for scrubbing. Global events go to the enabled
        profiles (both when none is enabled) unless ``profiles`` is given."""
        from engine.settings import SIDES

        register_settings_secrets(settings)
        g = settings.glob
        kw.setdefault("profiles", tuple(settings.enabled) or SIDES)
        kw.setdefault("signal_files", tuple(g.audit_signal_files))
        kw.setdefault("retention", RetentionPolicy.from_settings(g))
        kw.setdefault("max_bytes", settings.glob.csv_rotate_max_bytes)
        sample_s = max(float(settings.side(s).account_pnl_sample_interval_sec) for s in SIDES)
        kw.setdefault("account_sample_ms", int(sample_s * 1000))
        kw.setdefault("archive_dir", str(settings.glob.csv_archive_dir or ""))
        paths = {s: AuditPaths.from_settings(settings, data_dir, s) for s in SIDES}
        return cls(data_dir, paths=paths, **kw)

    # -- subscriber -----------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        """Queue an event; never raises, never blocks. Decisions bound only for SQLite are
        queued as flat tuples (``pending_signals``, a few microseconds a decision), so the
        engine's objects are not kept alive until the next flush."""
        try:
            if self._closed:
                self.stats.dropped_events += 1
                return
            if type(event) is Decisions and self.db is not None and not self.signal_files:
                try:
                    items = pending_signals(event)
                except Exception:  # malformed: _drain counts it
                    pass
                else:
                    if len(self._signals) + len(items) > self._signals.maxlen:  # type: ignore[operator]
                        self.stats.dropped_events += 1
                    self._signals.extend(items)
                    self.stats.events += 1
                    return
            if len(self._events) == self._events.maxlen:
                self.stats.dropped_events += 1
            self._events.append(event)
            self.stats.events += 1
        except Exception:  # pragma: no cover - defensive: never raise into the engine
            pass

    # -- routing --------------------------------------------------------------------------
    def paths_for(self, profile: str) -> AuditPaths:
        """Configured paths of a profile, or the default layout for one nobody configured."""
        if profile not in self.paths:
            self.paths[profile] = AuditPaths.default(self.data_dir, profile, self.archive_dir)
        return self.paths[profile]

    def _sink(self, key: str, paths: AuditPaths) -> FileSink:
        path = paths.files[key]
        sink = self._sinks.get(path)
        if sink is None:
            age = self.retention.max_age_s if self.retention else 0.0
            kw = dict(clock=self.clock, max_pending=self.max_pending_rows, trusted=True, max_age_s=age)
            if key.endswith("_jsonl"):
                sink = JsonlSink(path, paths.archive_dir, self.max_bytes, **kw)
            elif key == "signals":
                sink = CsvSink(path, paths.archive_dir, self.max_bytes, COLUMNS[key], FEATURE_COLUMNS, **kw)
            else:
                sink = CsvSink(path, paths.archive_dir, self.max_bytes, COLUMNS[key], **kw)
            sink.stream = key.removesuffix("_jsonl")  # type: ignore[attr-defined]
            self._sinks[path] = sink
        return sink

    def _keep(self, row: AuditRow) -> bool:
        """The account and premium throttles (a state change of a premium is always kept)."""
        ts = int(row.values.get("ts_ms") or 0)
        if row.stream == "account" and self.account_sample_ms > 0:
            last = self._last_account_ms
            if last is not None and ts - last < self.account_sample_ms:
                return False
            self._last_account_ms = ts
        elif row.stream == "external" and self.premium_sample_ms > 0:
            sym = str(row.values.get("symbol"))
            state = (bool(row.values.get("blocked")), str(row.values.get("reason") or ""))
            prev = self._last_premium.get(sym)
            if prev is not None and (prev[1], prev[2]) == state and ts - prev[0] < self.premium_sample_ms:
                return False
            self._last_premium[sym] = (ts, *state)
        return True

    def _file_keys(self, stream: str) -> list[str]:
        if stream == "signals":
            return [k for k, f in (("signals", "csv"), ("signals_jsonl", "jsonl")) if f in self.signal_files]
        return [stream] + ([f"{stream}_jsonl"] if stream in JSONL_STREAMS else [])

    def _route(self, row: AuditRow, to_db: bool = True) -> None:
        row = _scrubbed(row)  # once, before the row fans out to files and SQLite
        encoded = {k: dumps(v) for k, v in row.extra.items()}  # shared by JSONL and SQLite
        jsonl_line: str | None = None
        targets = [row.profile] if row.profile and row.stream not in GLOBAL_STREAMS else list(self.profiles)
        keys = self._file_keys(row.stream)
        seen: set[Path] = set()
        for profile in targets:
            paths = self.paths_for(profile)
            for key in keys:
                sink = self._sink(key, paths)
                if sink.path in seen:
                    continue
                seen.add(sink.path)
                if key.endswith("_jsonl"):
                    if jsonl_line is None:
                        jsonl_line = _jsonl_line(row, encoded)
                    sink.add(jsonl_line)  # type: ignore[arg-type]
                else:
                    sink.add(_csv_row(row))
        if to_db and self.db is not None:
            self.db.add(row, encoded)

    def _drain(self) -> None:
        if self._signals and self.db is not None:
            items = []
            while self._signals:
                items.append(self._signals.popleft())
            self.db.queue_signals(items)
        while self._events:
            ev = self._events.popleft()
            try:
                if isinstance(ev, Decisions):
                    # SQLite encodes the decisions itself (no per-gate dicts); the files, if
                    # any, get their rows as before
                    if self.db is not None:
                        self.db.add_decisions(ev)
                    if self.signal_files:
                        for row in rows_for_event(ev):
                            self._route(row, to_db=False)
                    continue
                for row in rows_for_event(ev):
                    if self._keep(row):
                        self._route(row)
                    else:
                        self.stats.skipped_rows += 1
            except Exception as exc:  # one malformed event must not stop the others
                self.stats.bad_events += 1
                self._error(f"event {getattr(ev, 'kind', '?')}: {exc!r}")

    # -- writing --------------------------------------------------------------------------
    def _error(self, text: str) -> None:
        text = scrub(text)
        self.stats.failures += 1
        self.stats.last_error = text
        self.stats.errors = (self.stats.errors + [text])[-20:]
        log.error("audit: %s", text)

    def flush(self) -> int:
        """Write everything queued; returns the rows written. Never raises: a failing sink
        keeps its rows for the next flush and the failure is in ``stats``. While the disk is
        full only the streams outside ``BULK_STREAMS`` are written."""
        with self._flush_lock:
            written = 0
            try:
                self._drain()
            except Exception as exc:  # pragma: no cover - defensive
                self._error(f"drain: {exc!r}")
            full = self.guard.check() if self.guard is not None else False
            if self.retention is not None:
                try:
                    self._rotate_db()  # before the batch, so the current file always holds the newest rows
                except Exception as exc:  # never let housekeeping stop the record
                    self._failed("rotation", exc)
            if full:
                self._hold()
            for sink in list(self._sinks.values()):
                if full and getattr(sink, "stream", "") in BULK_STREAMS:
                    continue
                try:
                    written += sink.write_pending()
                except Exception as exc:
                    self._failed(f"{sink.path}", exc)
            if self.db is not None:
                try:
                    written += self.db.write_pending(
                        [s for s in COLUMNS if s not in BULK_STREAMS] if full else None)
                except Exception as exc:
                    self._failed(f"sqlite {self.db.path}", exc)
            self.stats.rows_written += written
            if self.retention is not None:
                try:
                    self._prune()
                except Exception as exc:
                    self._failed("retention", exc)
            return written

    def _failed(self, where: str, exc: BaseException) -> None:
        if self.guard is not None and is_disk_full(exc):
            self.guard.hit(exc)
        self._error(f"{where}: {exc!r}")

    def _hold(self) -> None:
        """Disk full: the held-back bulk rows are kept up to a twentieth of the usual backlog
        (the oldest go first, counted in ``dropped_rows``)."""
        cap = max(1, self.max_pending_rows // 20)
        queues: list[tuple[list[Any], Any]] = [(s.pending, s) for s in self._sinks.values()
                                               if getattr(s, "stream", "") in BULK_STREAMS]
        if self.db is not None:
            queues += [(self.db.pending[s], self.db) for s in BULK_STREAMS]
        for pending, owner in queues:
            if len(pending) > cap:
                excess = len(pending) - cap
                del pending[:excess]
                owner.dropped += excess

    def _rotate_db(self) -> None:
        """Move the SQLite into its archive folder once it is over the size or age limit (or
        its schema-1 view is full); the batch then begins a new file."""
        pol, db = self.retention, self.db
        assert pol is not None
        if db is None or db.created_ms is None or not any(db.pending.values()):
            return
        old = pol.max_age_s > 0 and self.clock() - db.created_ms / 1000 > pol.max_age_s
        if db.size() > pol.db_max_bytes or old or db.layouts_full:
            target = db.rotate()
            if target is not None:
                log.info("audit: %s rotated to %s", db.path, target)

    def _prune(self) -> None:
        """Every ``prune_interval_s``, and after a rotation, delete archives by age and size."""
        pol, db = self.retention, self.db
        assert pol is not None
        now = self.clock()
        count = sum(len(s.rotations) for s in self._sinks.values()) + (len(db.rotations) if db is not None else 0)
        rotated = count != self.stats.rotations
        self.stats.rotations = count
        if not rotated and self._last_prune is not None and now - self._last_prune < pol.prune_interval_s:
            return
        self._last_prune = now
        archives, current = self._record_files()
        size = sum(p.stat().st_size for p in current if p.exists())
        gone = prune(archives, size, pol, now)
        if gone:
            self.stats.pruned += len(gone)
            log.info("audit: retention deleted %d archived file(s), oldest %s", len(gone), gone[0].name)

    def _record_files(self) -> tuple[list[Path], list[Path]]:
        """(archived files, current files) of every stream of every known profile."""
        archives: list[Path] = []
        current: list[Path] = []
        for profile in {*self.profiles, *self.paths}:
            paths = self.paths_for(profile)
            for path in paths.files.values():
                current.append(path)
                archives += archived_files(path, paths.archive_dir)
        if self.db is not None and self.db.path != ":memory:":
            p = Path(self.db.path)
            current += [p, Path(self.db.path + "-wal")]
            archives += archived_files(p, self.db.archive_dir)
        return archives, current

    # -- disk state (for the engine) ------------------------------------------------------
    @property
    def disk_full(self) -> bool:
        """True while the record is "disk full" (see ``audit_retention``): new entries must stop."""
        return self.guard is not None and self.guard.full

    def block_reason(self) -> str:
        """Why no new position may be opened because of the record ("" when none), in the
        style of the engine's other entry blocks: an ``Engine.entry_blockers`` entry (paper,
        live and replay register it). It reads the state of the last measure (every flush)."""
        if self.guard is None or not self.guard.full:
            return ""
        return f"audit record disk full ({self.guard.reason})"

    def check_disk(self) -> str:
        """Measure the free space now, as a flush does, and return ``block_reason()``: for a
        loop that steps more often than it flushes (the replay flushes once a simulated day)."""
        if self.guard is not None:
            with self._flush_lock:
                self.guard.check()
        return self.block_reason()

    @property
    def pending_rows(self) -> int:
        n = sum(len(s.pending) for s in self._sinks.values())
        if self.db is not None:
            n += sum(len(v) for v in self.db.pending.values())
        return n + len(self._events) + len(self._signals)

    @property
    def dropped_rows(self) -> int:
        """Rows lost because a sink stayed broken while max_pending_rows accumulated."""
        n = sum(s.dropped for s in self._sinks.values())
        return n + (self.db.dropped if self.db is not None else 0)

    #: the engine flushes a durable record before saving state that ends a fill's read window
    durable_flush = flush

    async def run_flusher(self, interval_s: float = 2.0) -> None:
        """Flush every ``interval_s`` seconds in a worker thread until ``aclose``."""
        self._wake = asyncio.Event()
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=interval_s)
            except asyncio.TimeoutError:
                pass
            if self._closed:
                return
            await asyncio.to_thread(self.flush)

    async def aclose(self) -> None:
        """Final flush, then close the database; later events are counted as dropped."""
        try:
            await asyncio.to_thread(self.flush)
        finally:
            self._closed = True
            if self._wake is not None:
                self._wake.set()
            await asyncio.to_thread(self._finish)

    def close(self) -> None:
        """Synchronous ``aclose`` (for scripts and tests without an event loop)."""
        try:
            self.flush()
        finally:
            self._closed = True
            self._finish()

    def _finish(self) -> None:
        self.flush()  # what was published while the first flush ran
        if self.db is not None:
            self.db.close()


_SAFE_KEYS = frozenset(("name", "value", "threshold", "passed", "kind", "op", "detail", "score_delta",
                        "score_factor", "gates", "features", "record", *FEATURE_FIELDS))


def _scrubbed(row: AuditRow) -> AuditRow:
    """Every text of the row scrubbed (signal extras are built from scrubbed texts already);
    extra parts are JSON-safe (audit_rows)."""
    sc = scrubber()
    values = {k: sc(v) if isinstance(v, str) else v for k, v in row.values.items()}
    extra = row.extra if row.extra_clean else scrub_obj(row.extra, _SAFE_KEYS)
    return AuditRow(row.stream, row.profile, values, extra, True)


def _flat_gates(gates: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for g in gates:
        name = g["name"]
        out[f"{name}_value"] = g.get("value")
        out[f"{name}_threshold"] = g.get("threshold")
        out[f"{name}_passed"] = g.get("passed")
    return out


def _csv_row(row: AuditRow) -> dict[str, Any]:
    if row.stream != "signals":
        return row.values
    feats = {f"f_{k}": v for k, v in row.extra.get("features", {}).items()}
    return {**row.values, **_flat_gates(row.extra.get("gates", [])), **feats}


def _jsonl_line(row: AuditRow, encoded: Mapping[str, str]) -> str:
    """The JSONL record: the fixed columns, then the encoded extra parts (keys are ours)."""
    head = dumps(json_safe(row.values))
    tail = "".join(f',"{k}":{v}' for k, v in encoded.items())
    return head[:-1] + tail + "}"
