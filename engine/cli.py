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
    from engine.settings.loader import danger_warnings

    for w in danger_warnings(settings):
        print(f"warning: {w}", file=sys.stderr)
    from engine.alerts.router import check_alerts

    from engine.reference.venues import reference_problem
    from engine.runtime.paths import check_paths

    problem = check_alerts(settings) or check_paths(settings) or reference_problem(settings.glob)
    if problem:
        print(f"error: {args.env}: {problem}", file=sys.stderr)
        return 2
    g = settings.glob
    overrides = [k for k in settings.source if k.startswith(("LONG_", "SHORT_"))]
    print(f"OK: {args.env}: {len(settings.source)} keys set, {len(catalog())} settings known, "
          f"{len(overrides)} per-side overrides, profiles: {','.join(settings.enabled) or 'none'}")
    if not g.htx_api_key.get_secret_value() or not g.htx_api_secret.get_secret_value():
        print("note: no HTX API key/secret set: only demo, replay and paper modes can run")
    if not g.coins and not g.coins_2:
        print("note: COINS is empty: live and paper modes have nothing to trade")
    if g.coins_2 and not (g.htx_api_key_2.get_secret_value() and g.htx_api_secret_2.get_secret_value()):
        print("note: COINS_2 is set but HTX_API_KEY_2/HTX_API_SECRET_2 are not: live mode refuses to start "
              "(paper simulates the second account)")
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


def cmd_config_migrate(args: argparse.Namespace) -> int:
    """`crot config migrate OLD.env`: see engine/settings/migrate.py. Secret values are never printed."""
    from engine.settings.migrate import MigrateInputError, migrate_file

    try:
        mig = migrate_file(args.old_env)
    except MigrateInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    out = Path(args.out)
    if out.exists() and not args.force and not args.dry_run:
        print(f"error: {out} already exists; pass --force to replace it or --out FILE to write elsewhere",
              file=sys.stderr)
        return EXIT_CONFIG
    for note in mig.notes:
        print(f"{args.old_env}: {note}")
    for problem in mig.problems:
        print(f"warning: {out}: {problem}", file=sys.stderr)
    verb = "would write" if args.dry_run else "wrote"
    replaced = " (replacing the existing file)" if out.exists() else ""
    if not args.dry_run:
        atomic_write_text(out, mig.text, mode=0o600)
    print(f"{verb} {out}{replaced}: {mig.kept} settings carried over, {mig.left_out} lines left out as "
          f"comments; next: crot config check --env {out}")
    return 0


def _write_or_print(text: str, target: str | None) -> int:
    if target:
        atomic_write_text(target, text, mode=0o644)
        print(f"wrote {target}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_config_strategy(args: argparse.Namespace) -> int:
    from engine.settings.strategy_doc import strategy_doc

    return _write_or_print(strategy_doc(), args.write)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crot", description="CROT trading bot tools: settings, replays, research, audit records and the "
                                 "watchdog. The dashboard and the bot itself: crot-tui (crot-tui --help).",
        epilog="every command has its own help: crot COMMAND --help (e.g. crot config check --help)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config = sub.add_parser("config", help="check, show and document settings",
                            description="Check, show, convert and document the settings (.env).")
    csub = config.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")

    p = csub.add_parser("check", help="validate a .env file (exit 2 on any problem)",
                        description="Validate a settings file as the bot loads it: exit 2 on any problem, "
                                    "warnings for risky or not yet effective values.")
    p.add_argument("--env", default=".env", help="settings file (default: .env)")
    p.set_defaults(func=cmd_config_check)

    p = csub.add_parser("show", help="effective values per side, secrets redacted",
                        description="Print the effective value of every setting for the long and the short "
                                    "profile, with the default; secrets are redacted.")
    p.add_argument("--env", default=".env", help="settings file (default: .env)")
    p.add_argument("--changed", action="store_true", help="only values that differ from the default")
    p.add_argument("--key", help="only keys matching this pattern, e.g. 'HARD_STOP*'")
    p.add_argument("--toml", metavar="FILE", help="write a TOML snapshot (secrets redacted)")
    p.set_defaults(func=cmd_config_show)

    p = csub.add_parser("example", help="print (or --write) the generated .env.example",
                        description="Print the generated .env.example: every setting with its description "
                                    "and default.")
    p.add_argument("--write", metavar="FILE", help="write it to FILE instead of printing it")
    p.set_defaults(func=lambda a: _write_or_print(env_example(), a.write))

    from engine.runtime.replay_cli import add_replay_parser

    add_replay_parser(sub, _load)

    from engine.analysis.cli import add_analyze_parser

    add_analyze_parser(sub)

    from engine.market.download_cli import add_download_parser

    add_download_parser(sub, _load)

    from engine.research.cli import add_optimize_parser

    add_optimize_parser(sub, _load)

    from engine.store.audit_cli import add_audit_parser

    add_audit_parser(sub)

    from engine.runtime.control_cli import add_ctl_parser

    add_ctl_parser(sub, _load)

    # `crot watchdog ...` is dispatched in main() before this parser (its own options, then the
    # command after --); this entry lists it in `crot --help`.
    sub.add_parser("watchdog", help="run the bot (e.g. -- crot-tui --no-ui --live) and restart it when it "
                   "exits or its heartbeat stalls; see crot watchdog --help", add_help=False,
                   description="Run the bot and restart it when it exits or its heartbeat stalls "
                               "(crot watchdog --help).")

    p = csub.add_parser("migrate", help="convert a reference-bot .env into a CROT .env (reports every change)",
                        description="Convert a reference-bot .env into a CROT .env; every renamed, converted or "
                                    "dropped key is reported, secret values are never printed.")
    p.add_argument("old_env", metavar="OLD.env", help="the reference bot's .env")
    p.add_argument("--out", default=".env", help="CROT settings file to write (default: .env)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--dry-run", action="store_true", help="report what would be done, write nothing")
    p.set_defaults(func=cmd_config_migrate)

    p = csub.add_parser("docs", help="print (or --write) the generated settings reference",
                        description="Print the generated settings reference (docs/SETTINGS.md).")
    p.add_argument("--write", metavar="FILE", help="write it to FILE instead of printing it")
    p.set_defaults(func=lambda a: _write_or_print(settings_doc(), a.write))

    p = csub.add_parser("strategy", help="print (or --write) the generated strategy document (docs/STRATEGY.md)",
                        description="Print the generated strategy document (docs/STRATEGY.md): the gates "
                                    "and settings as the engine runs them.")
    p.add_argument("--write", metavar="FILE", help="write it to FILE instead of printing it")
    p.set_defaults(func=cmd_config_strategy)
    _describe(parser)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """Every (sub)command of `parser`, by its words ('config check'): its parser and one-line help."""
    out: dict[str, tuple[argparse.ArgumentParser, str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, child in action.choices.items():
                words = child.prog.removeprefix("crot ").strip()
                out[words] = (child, helps.get(name, ""))
                out.update(subcommands(child))
    return out


def _describe(parser: argparse.ArgumentParser) -> None:
    """A (sub)command without its own description shows its one-line help in `--help`."""
    for child, help_text in subcommands(parser).values():
        if not child.description and help_text:
            child.description = help_text[:1].upper() + help_text[1:] + ("" if help_text.endswith(".") else ".")


def main(argv: list[str] | None = None) -> int:
    from engine.store.state import StateFileError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["watchdog"]:
        from engine.runtime.watchdog import main as watchdog_main

        return watchdog_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StateFileError as exc:  # a corrupt or foreign --db: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    raise SystemExit(main())
