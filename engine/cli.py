"""The `crot` command: configuration tools now; replay and analysis join as they land.

Exit codes: 0 success, 2 invalid configuration or usage.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time
from pathlib import Path

from engine.settings import (
    SIDES, SettingsError, catalog, file_warnings, load_settings, planned_warnings, value_of,
)
from engine.settings.envfile import atomic_write_text
from engine.settings.render import display, env_example, settings_doc, snapshot_toml

EXIT_CONFIG = 2


def _load(env: str, missing_ok: bool = False):
    try:
        return load_settings(env, missing_ok=missing_ok)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = _load(args.env)
    for w in file_warnings(args.env) + planned_warnings(settings):
        print(f"warning: {w}", file=sys.stderr)
    g = settings.glob
    overrides = [k for k in settings.source if k.startswith(("LONG_", "SHORT_"))]
    print(f"OK: {args.env}: {len(settings.source)} keys set, {len(catalog())} settings known, "
          f"{len(overrides)} per-side overrides, profiles: {','.join(settings.enabled) or 'none'}")
    if not g.htx_api_key.get_secret_value() or not g.htx_api_secret.get_secret_value():
        print("note: no HTX API key/secret set: only demo, replay and paper modes can run")
    if not g.coins:
        print("note: COINS is empty: live and paper modes have nothing to trade")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    # With no .env at all, show the defaults; a named file must exist.
    settings = _load(args.env, missing_ok=args.env == ".env")
    if args.toml:
        atomic_write_text(args.toml, snapshot_toml(settings), mode=0o600)
        print(f"wrote {args.toml} (secrets redacted)")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Effective settings ({args.env})", show_lines=False)
    table.add_column("key", style="bold")
    table.add_column("long")
    table.add_column("short")
    table.add_column("default", style="dim")
    rows = 0
    for info in catalog():
        if args.key and not fnmatch.fnmatch(info.key, args.key.upper()):
            continue
        values = [display(value_of(settings, info, s), info) for s in SIDES]
        default = "" if info.secret else display(info.default, info)
        if args.changed and all(v == default for v in values):
            continue
        if info.scope == "global":
            table.add_row(info.key, values[0], "(global)", default)
        else:
            table.add_row(info.key, values[0], values[1], default)
        rows += 1
    Console().print(table)
    print(f"{rows} settings shown; profiles enabled: {','.join(settings.enabled) or 'none'}")
    return 0


def _write_or_print(text: str, target: str | None) -> int:
    if target:
        atomic_write_text(target, text, mode=0o644)
        print(f"wrote {target}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    import asyncio

    from engine.runtime.replay import DEMO_DATA, DEMO_SYMBOLS
    from engine.runtime.report import print_replay_summary, replay_with_progress

    settings = _load(args.env, missing_ok=args.env == ".env")
    data = args.data or str(DEMO_DATA)
    symbols = args.symbols.split(",") if args.symbols else (DEMO_SYMBOLS if not args.data else None)
    out = Path(args.out) if args.out else Path(settings.glob.data_dir) / time.strftime(
        "replay-%Y%m%d-%H%M%S", time.gmtime())
    summary = asyncio.run(replay_with_progress(settings, data_dir=data, symbols=symbols, db_path=args.db,
                                               max_steps=args.steps, quiet=args.quiet,
                                               audit_dir=None if args.no_record else out))
    print_replay_summary(summary)
    if not args.no_record:
        print(f"record written to {out} (analyse it with: crot analyze --run {out})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crot", description="CROT trading bot tools")
    sub = parser.add_subparsers(dest="command", required=True)
    config = sub.add_parser("config", help="check, show and document settings")
    csub = config.add_subparsers(dest="config_command", required=True)

    p = csub.add_parser("check", help="validate a .env file (exit 2 on any problem)")
    p.add_argument("--env", default=".env", help="settings file (default: .env)")
    p.set_defaults(func=cmd_config_check)

    p = csub.add_parser("show", help="effective values per side, secrets redacted")
    p.add_argument("--env", default=".env", help="settings file (default: .env)")
    p.add_argument("--changed", action="store_true", help="only values that differ from the default")
    p.add_argument("--key", help="only keys matching this pattern, e.g. 'HARD_STOP*'")
    p.add_argument("--toml", metavar="FILE", help="write a TOML snapshot (secrets redacted)")
    p.set_defaults(func=cmd_config_show)

    p = csub.add_parser("example", help="print (or --write) the generated .env.example")
    p.add_argument("--write", metavar="FILE")
    p.set_defaults(func=lambda a: _write_or_print(env_example(), a.write))

    p = sub.add_parser("replay", help="run the full engine over recorded candles (simulated exchange)")
    p.add_argument("--data", help="folder of recorded candle CSV files (default: the bundled demo data)")
    p.add_argument("--symbols", help="comma-separated symbols to replay (default: all in --data)")
    p.add_argument("--env", default=".env", help="settings file (default: .env, if present)")
    p.add_argument("--db", default=":memory:", help="SQLite file for the run's state and trades")
    p.add_argument("--steps", type=int, help="stop after this many 5m steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", help="folder for the run's audit record (default: <DATA_DIR>/replay-<time>)")
    p.add_argument("--no-record", action="store_true", help="do not write the audit record (faster)")
    p.set_defaults(func=cmd_replay)

    from engine.analysis.cli import add_analyze_parser

    add_analyze_parser(sub)

    p = sub.add_parser("watchdog", help="run a command (default: crot-tui --no-ui) and restart it when it "
                       "exits or its heartbeat stalls", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda a: __import__("engine.runtime.watchdog", fromlist=["main"]).main(a.args))

    p = csub.add_parser("docs", help="print (or --write) the generated settings reference")
    p.add_argument("--write", metavar="FILE")
    p.set_defaults(func=lambda a: _write_or_print(settings_doc(), a.write))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
