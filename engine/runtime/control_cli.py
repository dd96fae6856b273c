"""`crot ctl`: steer a running bot from the shell (the same commands as the dashboard's keys).

Each call connects to the bot's control socket (engine/runtime/control.py), takes the helm
for one command and leaves. A manual action on a live bot asks for confirmation (y/N) unless
--yes is given; without a terminal to ask on, it is refused. Exit codes: 0 done, 1 the bot is
not reachable or refused the command, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, Callable

ACTIONS = {
    "close": ("manual", "close", "close SYMBOL's position at market, or at a limit with --limit PRICE (reduce-only; "
                                 "its stop stays until it is gone)"),
    "cancel-close": ("manual", "cancel_close", "withdraw SYMBOL's limit close (its exit ladder returns)"),
    "cancel": ("manual", "cancel_entries", "cancel SYMBOL's entry orders"),
    "flatten": ("manual", "flatten", "close every position and cancel every entry order"),
    "freeze": ("manual", "freeze", "no new entry or averaging on SYMBOL (its position keeps stop and exits)"),
    "unfreeze": ("manual", "unfreeze", "allow SYMBOL again"),
}


def add_ctl_parser(sub: Any, load: Callable[..., Any]) -> None:
    p = sub.add_parser("ctl", help="steer a running bot: status, pause, profiles, close, flatten, freeze",
                       description="Steer a bot started with crot-tui --no-ui through its control socket: the "
                                   "dashboard's commands from the shell. A manual action on a live bot asks "
                                   "for confirmation unless --yes.")
    p.add_argument("--env", default=".env", help="settings file, to find DATA_DIR (default: .env)")
    p.add_argument("--socket", metavar="PATH", help="the bot's control socket (default: the one in DATA_DIR)")
    p.add_argument("--yes", action="store_true", help="do not ask before a manual action on a live bot")
    p.add_argument("--force", action="store_true", help="take the helm from a viewer that steers")
    csub = p.add_subparsers(dest="ctl_command", required=True, metavar="ACTION")
    csub.add_parser("status", help="mode, profiles, pause, positions, frozen symbols, who steers")
    csub.add_parser("pause", help="pause new entries (exits and stops keep running)")
    csub.add_parser("resume", help="resume new entries")
    for side in ("long", "short"):
        q = csub.add_parser(side, help=f"switch the {side} profile's new entries on or off")
        q.add_argument("switch", choices=("on", "off"))
    csub.add_parser("lift", help="lift every account protection now")
    for name, (_, _, text) in ACTIONS.items():
        q = csub.add_parser(name, help=text)
        if name != "flatten":
            q.add_argument("symbol", help="e.g. BTC/USDT:USDT (or BTC)")
        if name == "close":
            q.add_argument("--limit", metavar="PRICE", default="",
                           help="a reduce-only limit at PRICE for the whole position, kept (re-placed if it "
                                "disappears) in place of the exit ladder until it fills or is withdrawn")
    p.set_defaults(func=lambda a: cmd_ctl(a, load))


def _symbol(text: str, symbols: list[str]) -> str:
    """BTC, btc/usdt or BTC/USDT:USDT: the bot's symbol it names."""
    t = text.strip().upper()
    for s in symbols:
        if t in (s.upper(), s.split("/")[0].upper(), s.split(":")[0].upper()):
            return s
    return text


def cmd_ctl(args: argparse.Namespace, load: Callable[..., Any]) -> int:
    from .control import ControlError

    if args.socket:
        path = Path(args.socket)
    else:
        from .paths import PathSettingError, control_socket_path

        settings = load(args.env, missing_ok=args.env == ".env")
        try:
            places = [control_socket_path(settings, m) for m in ("live", "paper", "demo")]
        except PathSettingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        found = [p for p in places if p.exists()]
        if len(found) != 1:
            where = ", ".join(str(p) for p in places)
            print(f"error: {'no bot socket' if not found else 'several bot sockets'} at {where}; give one with "
                  "--socket PATH (a bot started with crot-tui --no-ui serves one beside its state file)",
                  file=sys.stderr)
            return 2
        path = found[0]
    try:
        return asyncio.run(_ctl(args, path))
    except ControlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


async def _ctl(args: argparse.Namespace, path: Path) -> int:
    from .control_client import CommandRefused, ControlClient, ControlUnavailable

    action = args.ctl_command
    client = ControlClient(path, steer=action != "status", name="crot ctl")
    try:
        hello = await client.connect()
    except ControlUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if action == "status":
            print(_status(await client.request("state"), hello))
            return 0
        if not client.steering:
            if not args.force:
                print("error: another viewer steers this bot; close it, or take over with --force", file=sys.stderr)
                return 1
            await client.request("steer", force=True)
        if action in ("pause", "resume"):
            paused = await client.request("pause_entries", paused=action == "pause")
            print("new entries paused (exits and stops keep running)" if paused else "new entries resumed")
        elif action in ("long", "short"):
            enabled = (await client.request("state"))["enabled"]
            if enabled[action] != (args.switch == "on"):
                enabled[action] = await client.request("toggle_profile", side=action)
            print(f"{action} profile {'on' if enabled[action] else 'off'}")
        elif action == "lift":
            n = await client.request("lift_protections")
            print(f"{n} account protection(s) lifted" if n else "no account protection is in force")
        else:
            from .manual import ManualRequest, limit_price

            _, kind, _ = ACTIONS[action]
            symbol = "" if action == "flatten" else _symbol(args.symbol, list(hello.get("symbols", ())))
            try:
                price = limit_price(getattr(args, "limit", ""))
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            what = ManualRequest(kind, symbol, price).describe()  # type: ignore[arg-type]
            if hello.get("mode") == "live" and kind not in ("freeze", "unfreeze") and not args.yes:
                if not sys.stdin.isatty():
                    print("error: a manual action on a LIVE bot needs confirmation: run it in a terminal or "
                          "add --yes", file=sys.stderr)
                    return 2
                answer = input(f"LIVE account: {what}? [y/N] ").strip().lower()
                if answer not in ("y", "yes"):
                    print("not done")
                    return 1
            done = await client.request("manual", kind=kind, symbol=symbol,
                                        price="" if price is None else str(price))
            print(f"{done}: sent with the bot's next step" if kind not in ("freeze", "unfreeze") else str(done))
        return 0
    except (CommandRefused, ControlUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.aclose()


def _status(state: dict[str, Any], hello: dict[str, Any]) -> str:
    on = [s for s in ("long", "short") if state["enabled"].get(s)]
    lines = [f"{hello.get('mode', '?')} bot pid {hello.get('pid', '?')}: profiles "
             f"{', '.join(on) or 'none'} on; new entries {'PAUSED' if state['paused'] else 'running'}"]
    pos = state.get("positions") or []
    lines.append("positions: " + (", ".join(f"{side} {sym}" for side, sym in pos) if pos else "none"))
    if state.get("frozen"):
        lines.append("frozen: " + ", ".join(state["frozen"]))
    lines.append(f"steered by: {state.get('steerer') or 'nobody (a viewer or crot ctl may take the helm)'}")
    return "\n".join(lines)


__all__ = ["add_ctl_parser", "cmd_ctl"]
