"""Append-only CSV / JSONL audit files: crash-safe appends, size rotation, stable headers.

Crash safety: a batch is appended with one write, then flushed and fsync'ed; if anything fails
the file is truncated back to its previous length, so a failed flush never leaves half a row
and never touches earlier rows (the batch stays pending and is retried). A file whose last
line has no newline (the process died inside a write) is cut back to its last complete line
when it is opened.

Rotation: before a batch is appended, a file already larger than ``max_bytes`` (or written
for longer than ``max_age_s``, counted from when this writer began or adopted it) is renamed
(atomically, same file system) into the archive directory as
``<parent>-<stem>.<UTC stamp><suffix>`` and the batch starts a new file (with a header for
CSV). The current file therefore always exists and holds the newest rows; it exceeds
``max_bytes`` by at most one batch. A CSV header never changes inside a file:
when rows bring a column the header lacks (a gate added by a settings change), or an existing
file has a different header (an upgrade), the current file is archived first and the new file
gets the union of the columns.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from .audit_rows import json_safe
from .scrub import scrub, scrub_obj

__all__ = ["CsvSink", "FileSink", "JsonlSink", "archive_name", "archived_files", "csv_cell", "dumps",
           "fsync_dir"]

log = logging.getLogger("crot.audit")


def dumps(obj: Any) -> str:
    """Compact JSON, non-ASCII kept, NaN refused (rows are JSON-safe before this)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def archive_name(path: Path, when: float) -> str:
    """Archive file name of ``path`` rotated at epoch seconds ``when``."""
    dt = datetime.fromtimestamp(when, tz=timezone.utc)
    return f"{path.parent.name}-{path.stem}.{dt.strftime('%Y%m%dT%H%M%S')}{dt.microsecond:06d}Z{path.suffix}"


def archived_files(path: Path, archive_dir: Path) -> list[Path]:
    """Rotated copies of ``path`` in ``archive_dir``, oldest first."""
    if not archive_dir.is_dir():
        return []
    return sorted(archive_dir.glob(f"{path.parent.name}-{path.stem}.*{path.suffix}"))


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def csv_cell(value: Any, clean: bool = False) -> str:
    """One CSV field: '' for None/NaN, true/false, exact Decimals, repr floats, text scrubbed
    (unless ``clean``: already scrubbed) with line breaks escaped."""
    t = type(value)
    if t is float:
        if value != value:
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if value is None:
        return ""
    if t is bool:
        return "true" if value else "false"
    if t is str:
        text = value if clean else scrub(value)
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, Decimal):
        return format(value, "f")
    elif isinstance(value, int):
        return str(value)
    elif isinstance(value, float):
        return csv_cell(float(value))
    else:
        text = scrub(value)
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text


class FileSink:
    """An append-only text file with pending lines, crash-safe appends and size rotation.

    Rows are scrubbed on encoding unless ``trusted``: the AuditWriter scrubs each row once
    before it fans out to several sinks and passes ``trusted=True``."""

    def __init__(self, path: Path, archive_dir: Path, max_bytes: int,
                 clock: Callable[[], float] = time.time, max_pending: int = 200_000,
                 trusted: bool = False, max_age_s: float = 0.0):
        self.path = Path(path)
        self.archive_dir = Path(archive_dir)
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_s)  # 0: rotate by size only
        self.started: float | None = None  # when this writer began (or adopted) the current file
        self.clock = clock
        self.max_pending = max_pending
        self.trusted = trusted
        self.pending: list[dict[str, Any]] = []
        self.dropped = 0
        self.rotations: list[Path] = []
        self._opened = False

    # -- pending rows ----------------------------------------------------------------------
    def add(self, row: dict[str, Any]) -> None:
        self.pending.append(row)
        if len(self.pending) > self.max_pending:
            excess = len(self.pending) - self.max_pending
            del self.pending[:excess]
            self.dropped += excess

    def write_pending(self) -> int:
        """Write every pending row; on failure the file is as before and the rows stay pending."""
        if not self.pending:
            return 0
        rows = list(self.pending)
        if not self._opened:
            self._open_existing()
            self._opened = True
            if self._size() > 0:
                self._start()
        if self._size() > self.max_bytes or self.too_old():
            try:
                self.rotate()
            except OSError as exc:  # keep appending to the big file; retried next time
                log.warning("audit: rotating %s failed: %s", self.path, exc)
        text = self._encode(rows)
        self._append(text)
        del self.pending[:len(rows)]
        return len(rows)

    def _start(self) -> None:
        self.started = self.clock() if self.max_age_s > 0 else 0.0

    def too_old(self) -> bool:
        """The current file has been written for longer than ``max_age_s``."""
        return (self.max_age_s > 0 and self.started is not None and self._size() > 0
                and self.clock() - self.started > self.max_age_s)

    # -- hooks -----------------------------------------------------------------------------
    def _encode(self, rows: list[dict[str, Any]]) -> str:
        raise NotImplementedError

    def _open_existing(self) -> None:
        self._repair_tail()

    # -- file operations -------------------------------------------------------------------
    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _repair_tail(self) -> None:
        """Cut a torn last line (no trailing newline) left by a crash inside a write."""
        size = self._size()
        if size == 0:
            return
        with open(self.path, "r+b") as fh:
            fh.seek(max(0, size - 1))
            if fh.read(1) == b"\n":
                return
            block = 1 << 16
            end = size
            keep = 0
            while end > 0:
                start = max(0, end - block)
                fh.seek(start)
                chunk = fh.read(end - start)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    keep = start + nl + 1
                    break
                end = start
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        log.warning("audit: %s ended in a partial line; cut back to %d bytes", self.path, keep)

    def _append(self, text: str) -> None:
        data = text.encode("utf-8")
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as fh:
            start = fh.seek(0, os.SEEK_END)
            try:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            except BaseException:
                try:
                    fh.truncate(start)
                    fh.flush()
                    os.fsync(fh.fileno())
                except OSError as exc:
                    log.error("audit: could not roll %s back to %d bytes: %s", self.path, start, exc)
                raise
        if created:
            self._start()
            fsync_dir(self.path.parent)

    def rotate(self) -> Path | None:
        """Move the current file into the archive directory; None when there is nothing."""
        if self._size() == 0:
            return None
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        when = self.clock()
        target = self.archive_dir / archive_name(self.path, when)
        n = 0
        while target.exists():
            n += 1
            target = self.archive_dir / f"{target.stem.split('~')[0]}~{n}{self.path.suffix}"
        os.replace(self.path, target)
        fsync_dir(self.archive_dir)
        fsync_dir(self.path.parent)
        self.rotations.append(target)
        self.started = None
        self._after_rotate()
        return target

    def _after_rotate(self) -> None:
        pass


class JsonlSink(FileSink):
    """One JSON object per line; strings scrubbed leaf by leaf (the line stays valid JSON).
    Trusted rows must already be JSON-safe (``audit_rows.json_safe``) or encoded lines."""

    def _encode(self, rows: list[dict[str, Any]]) -> str:
        if self.trusted:  # dicts, or lines the writer already encoded
            return "".join((r if isinstance(r, str) else dumps(r)) + "\n" for r in rows)
        return "".join(dumps(scrub_obj(json_safe(r))) + "\n" for r in rows)


class CsvSink(FileSink):
    """CSV with header ``base + dynamic + tail``; ``dynamic`` grows in order of appearance
    (the signal file's gate columns) and every growth starts a new file."""

    def __init__(self, path: Path, archive_dir: Path, max_bytes: int, base: Sequence[str],
                 tail: Sequence[str] = (), **kw: Any):
        super().__init__(path, archive_dir, max_bytes, **kw)
        self.base = tuple(base)
        self.tail = tuple(tail)
        self._fixed = frozenset(self.base) | frozenset(self.tail)
        self.dynamic: list[str] = []
        self._known: set[str] = set(self._fixed)
        self._header_bytes = 0  # length of the header line of the current file (0: no file)

    @property
    def header(self) -> tuple[str, ...]:
        return self.base + tuple(self.dynamic) + self.tail

    def _open_existing(self) -> None:
        """Adopt an existing file whose header fits the layout; archive any other."""
        super()._open_existing()
        if self._size() == 0:
            return
        with open(self.path, newline="", encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
        header = next(csv.reader([first]), []) if first else []
        nb, nt = len(self.base), len(self.tail)
        middle = header[nb:len(header) - nt] if nt else header[nb:]
        fits = (
            len(header) >= nb + nt
            and tuple(header[:nb]) == self.base
            and (not nt or tuple(header[-nt:]) == self.tail)
            and not (set(middle) & self._fixed)
            and len(set(middle)) == len(middle)
        )
        if fits:
            self.dynamic = list(middle)
            self._known = set(self._fixed) | set(middle)
            self._header_bytes = len(first.encode("utf-8"))
        else:
            log.warning("audit: %s has another header; archiving it", self.path)
            self.rotate()

    def _after_rotate(self) -> None:
        self._header_bytes = 0

    def _encode(self, rows: list[dict[str, Any]]) -> str:
        new: dict[str, None] = {}
        for r in rows:
            for k in r:
                if k not in self._known:
                    new[k] = None
        if new:
            size = self._size()
            if size > self._header_bytes:
                self.rotate()  # data rows under the old header stay as they are
            elif size:
                self.path.unlink()  # header only: replace it
            self.dynamic.extend(new)
            self._known.update(new)
            self._header_bytes = 0
        header = self.header
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if self._size() == 0:
            writer.writerow([h if self.trusted else scrub(h) for h in header])
            self._header_bytes = len(buf.getvalue().encode("utf-8"))
        clean = self.trusted
        for r in rows:
            get = r.get
            writer.writerow([csv_cell(get(h), clean) for h in header])
        return buf.getvalue()
