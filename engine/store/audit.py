"""The audit trail: every engine event of interest, per profile, in CSV/JSONL files and SQLite.

``AuditWriter`` is a synchronous ``EventBus`` subscriber that never blocks the engine and never
raises into it: ``__call__`` only appends the (immutable) event to a bounded queue. ``flush()``
turns queued events into rows and writes them (files: append + fsync; SQLite: one
transaction); run it every few seconds with ``run_flusher`` and at shutdown with ``aclose``.
A sink that fails keeps its rows pending and is retried at the next flush; the others go on.

Default layout (``data_dir`` is chosen by the caller; the per-side ``*_FILE`` settings override
single files, a relative setting is taken under the profile directory)::

    <data_dir>/audit.sqlite                 every stream, tables audit_* (see audit_schema)
    <data_dir>/<profile>/trades.csv         fills and closed trades        CSV_LOG_FILE
                         cycle_stats.csv    per-cycle stats                CYCLE_STATS_CSV_FILE
                         signal_analytics.csv / .jsonl                     SIGNAL_ANALYTICS_*_FILE
                         diagnostics.csv / .jsonl (orders, stops, repairs, errors, status)
                         account_pnl.csv    account equity and PnL         ACCOUNT_PNL_CSV_FILE
                         macro.csv          macro regime changes           MACRO_CSV_FILE
                         external_prices.csv  cross-exchange premium       EXTERNAL_PRICE_CSV_FILE
                         csv_archive/       rotated files                  CSV_ARCHIVE_DIR

Global events (account, regime, premium, and errors/status without a profile) are written to
each profile in ``profiles`` (each folder is a complete record; a path shared by two profiles
is written once) and once to SQLite. Every text goes through ``scrub`` on its way out.
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

from engine.runtime.events import Event
from engine.strategy.features import FEATURE_FIELDS

from .audit_db import AuditDb
from .audit_files import CsvSink, FileSink, JsonlSink, dumps
from .audit_rows import AuditRow, json_safe, rows_for_event
from .audit_schema import (
    ARCHIVE_DIR_NAME,
    COLUMNS,
    DB_NAME,
    FEATURE_COLUMNS,
    FILE_NAMES,
    GLOBAL_STREAMS,
    JSONL_STREAMS,
)
from .scrub import register_settings_secrets, scrub, scrub_obj, scrubber

__all__ = ["AuditPaths", "AuditStats", "AuditWriter", "SETTING_OF_FILE", "resolve_path"]

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
    ):
        self.data_dir = Path(data_dir)
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
        self.db = AuditDb(db_path, max_pending=max_pending_rows, trusted=True) if db_path is not None else None

    @classmethod
    def from_settings(cls, settings: Any, data_dir: str | Path, **kw: Any) -> AuditWriter:
        """Paths, rotation size and the account sampling interval from the settings; the
        settings' secrets are registered for scrubbing. Global events go to the enabled
        profiles (both when none is enabled) unless ``profiles`` is given."""
        from engine.settings import SIDES

        register_settings_secrets(settings)
        kw.setdefault("profiles", tuple(settings.enabled) or SIDES)
        kw.setdefault("max_bytes", settings.glob.csv_rotate_max_bytes)
        sample_s = max(float(settings.side(s).account_pnl_sample_interval_sec) for s in SIDES)
        kw.setdefault("account_sample_ms", int(sample_s * 1000))
        kw.setdefault("archive_dir", str(settings.glob.csv_archive_dir or ""))
        paths = {s: AuditPaths.from_settings(settings, data_dir, s) for s in SIDES}
        return cls(data_dir, paths=paths, **kw)

    # -- subscriber -----------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        """Queue an event; O(1), never raises."""
        try:
            if self._closed:
                self.stats.dropped_events += 1
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
            kw = dict(clock=self.clock, max_pending=self.max_pending_rows, trusted=True)
            if key.endswith("_jsonl"):
                sink = JsonlSink(path, paths.archive_dir, self.max_bytes, **kw)
            elif key == "signals":
                sink = CsvSink(path, paths.archive_dir, self.max_bytes, COLUMNS[key], FEATURE_COLUMNS, **kw)
            else:
                sink = CsvSink(path, paths.archive_dir, self.max_bytes, COLUMNS[key], **kw)
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

    def _route(self, row: AuditRow) -> None:
        row = _scrubbed(row)  # once, before the row fans out to files and SQLite
        encoded = {k: dumps(v) for k, v in row.extra.items()}  # shared by JSONL and SQLite
        jsonl_line: str | None = None
        targets = [row.profile] if row.profile and row.stream not in GLOBAL_STREAMS else list(self.profiles)
        keys = [row.stream] + ([f"{row.stream}_jsonl"] if row.stream in JSONL_STREAMS else [])
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
        if self.db is not None:
            self.db.add(row, encoded)

    def _drain(self) -> None:
        while self._events:
            ev = self._events.popleft()
            try:
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
        keeps its rows for the next flush and the failure is in ``stats``."""
        with self._flush_lock:
            written = 0
            try:
                self._drain()
            except Exception as exc:  # pragma: no cover - defensive
                self._error(f"drain: {exc!r}")
            for sink in list(self._sinks.values()):
                try:
                    written += sink.write_pending()
                except Exception as exc:
                    self._error(f"{sink.path}: {exc!r}")
            if self.db is not None:
                try:
                    written += self.db.write_pending()
                except Exception as exc:
                    self._error(f"sqlite {self.db.path}: {exc!r}")
            self.stats.rows_written += written
            return written

    @property
    def pending_rows(self) -> int:
        n = sum(len(s.pending) for s in self._sinks.values())
        if self.db is not None:
            n += sum(len(v) for v in self.db.pending.values())
        return n + len(self._events)

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
