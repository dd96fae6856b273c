"""`crot analyze`: analyse a run's audit record (live, paper or replay).

Wired into engine/cli.py with ``add_analyze_parser(sub)``; the parser's ``func`` is
``run_analyze``. Exit codes: 0 done, 1 nothing to analyse, 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_analyze_parser", "run_analyze"]

EXIT_EMPTY = 1
EXIT_USAGE = 2


def add_analyze_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``analyze`` sub-command to ``subparsers`` and return its parser."""
    p = subparsers.add_parser(
        "analyze", help="Fama-MacBeth, triple-barrier and win-rate analysis of a run's audit record",
        description="Label the run's signals with triple barriers (take-profit, stop, time), compare "
                    "realised win rates with the break-even win rate of the risk/reward settings, and "
                    "regress outcomes on the entry-filter values (Fama-MacBeth, Newey-West t).")
    p.add_argument("--run", required=True, metavar="DIR_OR_DB",
                   help="the run's audit record: its data directory, a profile folder or the audit SQLite file")
    p.add_argument("--candles", metavar="DIR", help="recorded candles for the labels (default: the bundled demo data)")
    p.add_argument("--out", metavar="DIR", help="report directory (default: <run dir>/analysis)")
    p.add_argument("--env", default=".env", help="settings for barriers and fees (default: .env, if present)")
    p.add_argument("--take-profit", type=float, metavar="FRACTION", help="take-profit barrier (default: settings)")
    p.add_argument("--stop", type=float, metavar="FRACTION", help="stop barrier (default: HARD_STOP_LOSS_PCT)")
    p.add_argument("--horizon-minutes", type=float, help="time barrier (default: HARD_TIME_EXIT_AFTER_MINUTES)")
    p.add_argument("--signals", choices=("all", "valid", "entry_valid", "selected"), default="valid",
                   help="which signals to label and regress (default: valid)")
    p.add_argument("--outcome", choices=("exit_ret", "fwd_ret", "label"), default="exit_ret",
                   help="regression outcome of a signal: barrier return, return at the horizon, or the label")
    p.add_argument("--period-minutes", type=int, default=1440, help="cross-section length (default: one day)")
    p.add_argument("--lags", type=int, help="Newey-West lag (default: floor(4 (T/100)^(2/9)))")
    p.add_argument("--filters", help="comma-separated gate names to regress on (default: automatic)")
    p.add_argument("--archive-dir", help="rotated CSV files, when not in <profile>/csv_archive")
    p.add_argument("--no-files", action="store_true", help="terminal report only")
    p.set_defaults(func=run_analyze)
    return p


def _err(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def run_analyze(args: argparse.Namespace) -> int:
    from engine.runtime.replay import DEMO_DATA
    from engine.settings import SettingsError, load_settings

    from .analyze import AnalysisOptions, analyze
    from .records import load_run
    from .report import print_report, write_report
    from .risk_reward import round_trip_fee
    from .triple_barrier import Barriers, load_candles

    try:
        settings = load_settings(args.env, missing_ok=args.env == ".env")
    except SettingsError as exc:
        return _err(str(exc))
    try:
        record = load_run(args.run, args.archive_dir)
    except (FileNotFoundError, NotADirectoryError) as exc:
        return _err(str(exc))
    if not len(record.signals) and not len(record.trades):
        print(f"{args.run}: the record has no signals and no closed trades", file=sys.stderr)
        return EXIT_EMPTY
    p = settings.side("long")
    try:
        if args.take_profit or args.stop or args.horizon_minutes:
            base = Barriers.from_settings(p, horizon_minutes=args.horizon_minutes)
            barriers: tuple[Barriers, ...] = (Barriers(args.take_profit or base.take_profit,
                                                       args.stop or base.stop, base.horizon_minutes, "custom"),)
        else:
            barriers = (Barriers.from_settings(p, "first"), Barriers.from_settings(p, "ladder"))
    except ValueError as exc:
        return _err(str(exc))
    candles_dir = Path(args.candles) if args.candles else DEMO_DATA
    if not candles_dir.is_dir():
        return _err(f"no candle directory {candles_dir}")
    symbols = sorted(set(record.signals["symbol"])) if len(record.signals) else []
    candles = load_candles(candles_dir, p.ema_trigger_timeframe, symbols)
    filters = tuple(f.strip() for f in args.filters.split(",") if f.strip()) if args.filters else None
    try:
        options = AnalysisOptions(barriers=barriers, fee=round_trip_fee(p), signals=args.signals,
                                  outcome=args.outcome, period_minutes=args.period_minutes, lags=args.lags,
                                  filters=filters)
    except ValueError as exc:
        return _err(str(exc))
    result = analyze(record, candles, options)
    if settings.side("short") != p:
        result.notes.append("barriers and fees come from the long profile's settings (the short ones differ)")
    from rich.console import Console

    print_report(result, Console() if sys.stdout.isatty() else Console(width=160))
    if not args.no_files:
        run = Path(args.run)
        out = Path(args.out) if args.out else (run if run.is_dir() else run.parent) / "analysis"
        path = write_report(result, out)
        print(f"report written to {path}")
    return 0
