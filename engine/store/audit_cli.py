"""`crot audit`: the audit record's tools. ``crot audit export`` writes the signal CSV / JSONL
files from the audit SQLite (see ``audit_export``); ``crot audit size`` shows what a record
holds and what it takes on disk.

Wired into engine/cli.py with ``add_audit_parser(sub)``. Exit codes: 0 done, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

__all__ = ["add_audit_parser"]

EXIT_USAGE = 2


def add_audit_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``audit`` sub-command (``export``, ``size``) to ``sub`` and return its parser."""
    p = sub.add_parser("audit", help="the audit record: export the signal CSV/JSONL files, show its size",
                       description="Tools for a run's audit record (live, paper or replay).")
    asub = p.add_subparsers(dest="audit_command", required=True)
    e = asub.add_parser("export", help="write <profile>/signal_analytics.csv and .jsonl from the audit SQLite",
                        description="Each decision is stored once, in the audit SQLite. This writes the per-profile "
                        "signal analytics files (the layout the live writer uses with AUDIT_SIGNAL_FILES) from it.")
    e.add_argument("--run", required=True, metavar="DIR_OR_DB",
                   help="the run's folder holding audit.sqlite, or an audit SQLite file (also a rotated one)")
    e.add_argument("--out", metavar="DIR", help="where the profile folders go (default: the run's folder)")
    e.add_argument("--format", default="csv,jsonl", help="csv, jsonl or csv,jsonl (default: both)")
    e.add_argument("--force", action="store_true", help="replace existing signal files")
    e.set_defaults(func=cmd_export)
    s = asub.add_parser("size", help="rows and bytes per table and file of a record")
    s.add_argument("--run", required=True, metavar="DIR", help="the run's folder")
    s.set_defaults(func=cmd_size)
    return p


def cmd_export(args: argparse.Namespace) -> int:
    from .audit_export import ExportError, export_signals

    formats = tuple(f.strip().lower() for f in args.format.split(",") if f.strip())
    try:
        written = export_signals(args.run, args.out, formats, force=args.force)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: writing the export failed: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not written:
        print(f"{args.run}: the record holds no signal decisions; nothing written")
    for path, rows in written.items():
        print(f"{path}: {rows} decisions")
    return 0


def cmd_size(args: argparse.Namespace) -> int:
    run = Path(args.run)
    if not run.is_dir():
        print(f"error: --run {run}: not a folder (expected a run's folder holding audit.sqlite)", file=sys.stderr)
        return EXIT_USAGE
    files = sorted(p for p in run.rglob("*") if p.is_file())
    total = 0
    for p in files:
        size = p.stat().st_size
        total += size
        print(f"{size / 1048576:10.2f} MB  {p.relative_to(run)}")
        if p.suffix == ".sqlite":
            try:
                db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
                tables = [n for n, in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
                for t in tables:
                    rows = db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                    print(f"{'':14}table {t}: {rows} rows")
                db.close()
            except sqlite3.Error as exc:
                print(f"{'':14}(not readable: {exc})")
    print(f"{total / 1048576:10.2f} MB  total, {len(files)} files")
    return 0
