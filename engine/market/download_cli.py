"""`crot download`: the subcommand (arguments, one-line errors, progress bar, summary).

Exit codes: 0 everything downloaded; 1 a venue failed for some series (the others were
downloaded; run it again to resume); 2 bad input: the time range, the settings, or a symbol
HTX does not have (the other symbols were still downloaded); 130 interrupted (Ctrl-C: what was
fetched is saved).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any, Callable

EXIT_VENUE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: (settings) -> (HtxConfig, MexcConfig | None) or None for the defaults; tests point it at loopback venues
VenueConfigs = Callable[[Any], "tuple[Any, Any] | None"]


def add_download_parser(sub: Any, load_settings: Callable[[str, bool], Any],
                        venue_configs: VenueConfigs | None = None) -> None:
    p = sub.add_parser("download", help="fetch HTX candles and funding and the reference venue's candles "
                       "for 'crot replay --data'",
                       description="Download HTX USDT-M 5m candles (COINS, BTC and the gold proxy from GOLD_COINS), "
                       "HTX funding events and the reference venue's (MEXC) candles for a UTC date range into a "
                       "replay folder. A second run resumes: only what is missing is fetched.")
    p.add_argument("--timerange", required=True, help="UTC dates START-END as YYYYMMDD-YYYYMMDD: candles opening in "
                   "[START, END); END may be left out (up to the newest closed candle)")
    p.add_argument("--data", help="folder to fill (default: <DATA_DIR>/market); replay it with crot replay --data")
    p.add_argument("--symbols", help="comma-separated coins instead of COINS, e.g. BTC,ETH (BTC is always added)")
    p.add_argument("--env", default=".env", help="settings file (default: .env, if present)")
    p.add_argument("--no-reference", action="store_true", help="skip the reference venue's candles")
    p.add_argument("--no-funding", action="store_true", help="skip the funding events")
    p.add_argument("--quiet", action="store_true", help="no progress bar (it is off anyway when stderr is not a terminal)")
    p.set_defaults(func=lambda a: cmd_download(a, load_settings, venue_configs))


def cmd_download(args: argparse.Namespace, load_settings: Callable[[str, bool], Any],
                 venue_configs: VenueConfigs | None = None) -> int:
    import asyncio

    from engine.market.download import DownloadError, download
    from engine.runtime.replay_data import ReplayDataError, parse_timerange

    try:
        start, end = parse_timerange(args.timerange)
    except ReplayDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if start is None:
        print(f"error: --timerange {args.timerange!r}: give a start date, e.g. 20240801-20240809 or 20240801-",
              file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings(args.env, args.env == ".env")
    data = Path(args.data) if args.data else Path(settings.glob.data_dir) / "market"
    symbols = [s for s in args.symbols.split(",") if s.strip()] if args.symbols is not None else None
    if symbols is not None and not symbols:
        print("error: --symbols: no symbol given (expected e.g. BTC,ETH)", file=sys.stderr)
        return EXIT_USAGE
    configs = venue_configs(settings) if venue_configs else None
    htx_config, mexc_config = configs if configs else (None, None)

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    bar = None if args.quiet or not console.is_terminal else Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(), console=console, transient=True)

    task = bar.add_task("download", total=None) if bar is not None else None

    def on_progress(done: int, total: int, what: str) -> None:
        if bar is not None and task is not None:
            bar.update(task, completed=done, total=total or None, description=what)

    # a retried read logs a warning; what counts is the one-line error per series at the end
    exchange_log = logging.getLogger("engine.exchange")
    level = exchange_log.level
    exchange_log.setLevel(logging.ERROR)
    try:
        with bar if bar is not None else contextlib.nullcontext():
            report = asyncio.run(download(settings, data, start, end, symbols=symbols,
                                          reference=not args.no_reference, funding=not args.no_funding,
                                          htx_config=htx_config, mexc_config=mexc_config,
                                          progress=on_progress if bar is not None else None))
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: the pages fetched so far are saved; run the same command again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        exchange_log.setLevel(level)
    print_download_summary(report)
    for line in report.errors:
        print(f"error: {line}", file=sys.stderr)
    if report.unknown:
        return EXIT_USAGE
    return EXIT_VENUE if report.errors else 0


def print_download_summary(report: Any) -> None:
    from engine.market.download import _utc

    print(f"{report.data_dir}: candles opening {_utc(report.start_ms)} .. {_utc(report.end_ms)} UTC (end excluded)")
    for r in report.results:
        where = r.path.relative_to(report.data_dir)
        status = "failed, " if r.error else ""
        what = "candles" if r.kind == "candles" else "funding events"
        held = (f"{r.rows} in {where} ({_utc(r.first_ms)} .. {_utc(r.last_ms)})" if r.first_ms is not None
                else f"none in range, no {where} written")
        print(f"  {r.venue} {r.symbol} ({r.role}): {status}+{r.added} {what}, {held}, "
              f"{r.requests} request{'' if r.requests == 1 else 's'}")
    for note in report.notes:
        print(f"  note: {note}")
    if report.results and not report.unknown and not report.errors:
        print(f"replay it with: crot replay --data {report.data_dir}")
    elif report.errors:
        print("run the same command again to resume: only what is missing is fetched")
