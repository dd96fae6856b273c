"""`crot replay`: the replay subcommand (arguments, one-line errors, the summary)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

EXIT_USAGE = 2


def _whole(text: str) -> int:
    """An argparse type: a whole number, or a one-line usage error."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive(text: str) -> int:
    n = _whole(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be at least 1")
    return n


def add_replay_parser(sub: Any, load_settings: Callable[[str, bool], Any]) -> None:
    p = sub.add_parser("replay", help="run the full engine over recorded candles (simulated exchange); "
                       "'crot replay compare RUN_A RUN_B' compares two runs",
                       description="Replay recorded candles through the full engine on the simulated exchange. "
                       "Without --data: the bundled demo (ten Bybit USDT-M perps, 2024-07-24 .. 08-09, warm-up "
                       "from 07-17). 'crot replay compare RUN_A RUN_B': two run folders side by side.")
    p.add_argument("compare", nargs="*", metavar="compare RUN_A RUN_B",
                   help="compare the reports of two run folders instead of replaying")
    p.add_argument("--data", help="folder of recorded files (default: the bundled demo data; layout in README)")
    p.add_argument("--symbols", help="comma-separated symbols, e.g. BTC,ETH (default: all traded in --data)")
    p.add_argument("--timerange", help="UTC dates START-END as YYYYMMDD-YYYYMMDD: candles opening in [START, END) "
                   "are replayed, earlier ones warm the indicators up; either side may be left out")
    p.add_argument("--env", default=".env", help="settings file (default: .env, if present)")
    p.add_argument("--db", default=":memory:", help="new SQLite file for the run's state and trades "
                   "(a file holding a previous run's state is refused: a replay cannot resume)")
    p.add_argument("--steps", type=_positive, help="stop after this many 5m steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", help="folder for the run's audit record (default: <DATA_DIR>/replay-<time>)")
    p.add_argument("--no-record", action="store_true", help="do not write the audit record (faster)")
    p.add_argument("--no-reference", action="store_true", help="ignore the folder's reference/ candles")
    p.add_argument("--no-funding", action="store_true", help="do not charge the recorded funding")
    p.add_argument("--no-plots", action="store_true", help="do not draw the charts (equity and drawdown over dates, "
                   "PnL per pair: SVG and PNG) nor write replay_report.html; the JSON and text reports are still "
                   "written")
    p.set_defaults(func=lambda a: cmd_replay(a, load_settings))


def cmd_replay(args: argparse.Namespace, load_settings: Callable[[str, bool], Any]) -> int:
    import asyncio

    from engine.runtime.replay import DEMO_DATA, demo_symbols
    from engine.runtime.replay_data import ReplayDataError, parse_timerange
    from engine.runtime.report import print_replay_summary, replay_with_progress

    if args.compare:
        return cmd_compare(args.compare)
    settings = load_settings(args.env, args.env == ".env")
    data = args.data or str(DEMO_DATA)
    symbols = args.symbols.split(",") if args.symbols is not None else (demo_symbols(settings) if not args.data else None)
    out = Path(args.out) if args.out else Path(settings.glob.data_dir) / time.strftime(
        "replay-%Y%m%d-%H%M%S", time.gmtime())
    try:
        start, end = parse_timerange(args.timerange)
        summary = asyncio.run(replay_with_progress(
            settings, data_dir=data, symbols=symbols, db_path=args.db, max_steps=args.steps, quiet=args.quiet,
            audit_dir=None if args.no_record else out, start_ms=start, end_ms=end,
            reference=not args.no_reference, funding=not args.no_funding))
    except ReplayDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print_replay_summary(summary)
    if not args.no_record:
        from engine.runtime.report import write_replay_report

        write_replay_report(summary, out)
        print(f"record and report written to {out} (analyse it with: crot analyze --run {out}; "
              f"compare runs with: crot replay compare {out} OTHER_RUN)")
        if not args.no_plots:
            from engine.runtime.replay_html import write_replay_html

            page, _, note = write_replay_html(summary, out)
            print(f"HTML report (open it in a browser): {page}" + (f"; {note}" if note else ""))
    return 0


def cmd_compare(words: list[str]) -> int:
    from engine.runtime.replay_data import ReplayDataError
    from engine.runtime.report import print_comparison

    if words[0] != "compare" or len(words) != 3:
        print(f"error: unexpected arguments {' '.join(words)!r}; expected: crot replay compare RUN_A RUN_B "
              "(or options only, to replay)", file=sys.stderr)
        return EXIT_USAGE
    try:
        print_comparison(words[1], words[2])
    except ReplayDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0
