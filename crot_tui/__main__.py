"""`crot-tui`: the terminal dashboard, or (`--no-ui`) the same engine with a log sink.

Modes: `--demo` replays the bundled real candles on the simulated exchange (the default when no
HTX API key is configured); `--paper` trades simulated fills on live HTX prices; `--live` sends
real orders. With an API key configured, the mode must be chosen explicitly. `--no-ui` serves a
control socket beside the state database (DATA_DIR/<mode>.sock, or <stem>.sock next to
STATE_FILE; mode 0600); `--attach` opens this same dashboard on it from another terminal or SSH
session, and quitting that viewer leaves the bot running.

Exit codes: 0 success (a demo ran to its end, or a stop was requested), 1 the engine failed or
the dashboard crashed (so a watchdog restarts it),
2 invalid settings or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crot-tui",
        description="CROT terminal dashboard. Without an HTX API key it runs the demo: a replay of "
                    "bundled real candles on the simulated exchange.")
    p.add_argument("--env", default=".env", metavar="PATH", help="settings file (default: .env)")
    modes = p.add_mutually_exclusive_group()
    modes.add_argument("--demo", action="store_true",
                       help="replay bundled real candles on the simulated exchange (default without API keys)")
    modes.add_argument("--paper", action="store_true", help="live HTX prices, simulated fills (no orders sent)")
    modes.add_argument("--live", action="store_true", help="trade for real on HTX (real money)")
    p.add_argument("--no-ui", action="store_true", help="no dashboard: run the engine and log events (servers); "
                                                           "it serves a control socket that --attach opens")
    p.add_argument("--attach", nargs="?", const="", default=None, metavar="SOCKET",
                   help="open the dashboard on a bot started with --no-ui (default: the one socket found "
                        "in DATA_DIR); quitting the viewer leaves the bot running")
    p.add_argument("--watch", action="store_true", help="with --attach: only watch, never take the helm")
    p.add_argument("--socket", metavar="PATH", default=None,
                   help="--no-ui: the control socket to serve (default: DATA_DIR/<mode>.sock, or beside "
                        "STATE_FILE; mode 0600)")
    p.add_argument("--no-socket", action="store_true", help="--no-ui: serve no control socket")
    p.add_argument("--speed", type=float, default=None, metavar="N",
                   help="demo: candles per second once the indicators are warm; 0 = as fast as possible "
                        "(default: 50 with the dashboard, 0 with --no-ui)")
    p.add_argument("--theme", default=None, metavar="NAME", help="colour theme: a file name in themes/ "
                                                                  "(default: dark)")
    p.add_argument("--data", metavar="DIR", help="demo: folder of recorded 5m candle CSV files "
                                                 "(default: the bundled demo data)")
    p.add_argument("--steps", type=int, metavar="N", help="demo: stop after N candles")
    p.add_argument("--list-themes", action="store_true", help="print the available themes and exit")
    return p


def choose_mode(args: argparse.Namespace, settings: Any) -> str:
    """The mode to run, or SystemExit(2) with a message when it must be chosen explicitly."""
    from .host import has_api_key

    if args.live:
        g = settings.glob
        if not (g.htx_api_key.get_secret_value() and g.htx_api_secret.get_secret_value()):
            _fail("--live needs HTX_API_KEY and HTX_API_SECRET in the settings file "
                  f"({args.env}); try --paper or --demo")
        return "live"
    if args.paper or (settings.glob.dry_run and not args.demo):
        return "paper"  # DRY_RUN=true: simulated fills on live prices
    if args.demo or not has_api_key(settings):
        return "demo"
    _fail(f"an HTX API key is configured in {args.env}: choose --live (real orders), "
          "--paper (simulated fills on live prices) or --demo (replay of recorded candles)")
    raise AssertionError  # unreachable


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


def load(env: str) -> Any:
    """Load settings; a bad file is exit 2 with every problem listed."""
    from engine.settings import SettingsError, file_warnings, load_settings
    from engine.settings.loader import danger_warnings

    try:
        settings = load_settings(env, missing_ok=(env == ".env"))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    for w in file_warnings(env):
        print(f"warning: {w}", file=sys.stderr)
    for w in danger_warnings(settings):
        print(f"warning: {w}", file=sys.stderr)
    return settings


# -- headless ----------------------------------------------------------------------------------
def configure_logging(level: int = logging.INFO, stream: Any = None) -> logging.Handler:
    from engine.exchange.errors import RedactingFilter

    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def attach_log_sink(host: Any, logger: logging.Logger | None = None) -> Any:
    """Log one line per important event (orders, fills, stops, trades, regime changes, repairs,
    errors, status); decisions and per-candle snapshots are not logged."""
    from .logsink import EventFormatter

    logger = logger or logging.getLogger("crot.events")
    formatter = EventFormatter()

    def sink(e: Any) -> None:
        line = formatter(e)
        if line is not None:
            logger.log(line.level, line.render())

    return host.bus.subscribe(sink)


async def run_headless(host: Any, *, logger: logging.Logger | None = None,
                       install_signals: bool = True, socket_path: str | Path | None = None) -> Any:
    """Run the host to its end with the log sink; SIGINT/SIGTERM stop after the current cycle
    (a second signal cancels at once). With `socket_path` it serves the control socket that
    `crot-tui --attach` opens (engine/runtime/control.py)."""
    logger = logger or logging.getLogger("crot.events")
    attach_log_sink(host, logger)
    server = None
    if socket_path is not None:
        from engine.runtime.control import ControlServer

        server = ControlServer(socket_path, host, host.bus, name=f"crot {host.mode}")
        await server.start()  # ControlError (one line) before anything trades
    progress_log = logging.getLogger("crot.progress")
    last_decile = [-1]

    def on_progress(done: int, total: int, warming: bool) -> None:
        if not total:
            return
        decile = done * 10 // total
        if decile != last_decile[0] or done == total:
            last_decile[0] = decile
            state = "warming up the indicators" if warming else "trading"
            progress_log.info("replay %d/%d candles (%d%%), %s", done, total, done * 100 // total, state)

    def progress(done: int, total: int, warming: bool) -> None:
        on_progress(done, total, warming)
        if server is not None:
            server.progress(done, total, warming)

    host.on_progress = progress
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    installed: list[int] = []
    signals_seen = [0]

    def on_signal(signum: int) -> None:
        signals_seen[0] += 1
        if signals_seen[0] == 1:
            logger.warning("signal %s: stopping after the current cycle (again to stop at once); "
                           "stop-loss orders stay on the exchange", signal.Signals(signum).name)
            host.request_stop()
        elif task is not None:
            task.cancel()

    if install_signals:
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(s, on_signal, s)
                installed.append(s)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
    result = None
    try:
        result = await host.run()
        return result
    finally:
        for s in installed:
            loop.remove_signal_handler(s)
        if server is not None:
            reason = ("the bot stopped" if result is None or result.stopped else
                      f"the engine stopped: {result.error}" if result.error else "the bot finished its run")
            await server.aclose(reason)


def main_headless(args: argparse.Namespace, settings: Any, mode: str) -> int:
    from .host import EngineHost

    configure_logging(getattr(logging, settings.glob.log_level))
    speed = args.speed if args.speed is not None else 0.0
    host = EngineHost(settings, mode=mode, speed=speed, data_dir=args.data, max_steps=args.steps)
    log = logging.getLogger("crot.tui")
    log.info("crot-tui --no-ui: %s mode, settings %s", mode, args.env)
    from engine.settings.loader import danger_warnings

    for w in danger_warnings(settings):  # again in the log, where a service's operator looks
        log.warning(w)
    socket_path = None if args.no_socket else (args.socket or default_socket(settings, mode))
    from engine.runtime.control import ControlError

    try:
        result = asyncio.run(run_headless(host, socket_path=socket_path))
    except ControlError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.warning("stopped at once")
        return EXIT_FAILED
    if result.error:
        log.error("engine stopped: %s", result.error)
        return EXIT_FAILED
    if result.stopped:
        log.info("stopped on request after %d steps", result.steps)
    if result.summary is not None:
        from rich.console import Console

        from engine.runtime.report import print_replay_summary

        print_replay_summary(result.summary, Console(file=sys.stdout))
    return EXIT_OK


def default_socket(settings: Any, mode: str) -> Path:
    """Next to the state database of that mode (engine/runtime/paths.py): DATA_DIR/<mode>.sock
    by default, <STATE_FILE stem>.sock with STATE_FILE set; demo: DATA_DIR/demo.sock."""
    from engine.runtime.paths import PathSettingError, control_socket_path

    try:
        return control_socket_path(settings, mode)
    except PathSettingError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def find_socket(settings: Any) -> Path:
    """The control socket of the one bot that runs from this folder's settings."""
    found = [p for p in (default_socket(settings, m) for m in ("live", "paper", "demo")) if p.exists()]
    if not found:
        _fail(f"no bot socket in {Path(settings.glob.data_dir).absolute()} or beside STATE_FILE (start one "
              "with crot-tui --no-ui, or give its socket: --attach PATH)")
    if len(found) > 1:
        _fail("several bot sockets found (" + ", ".join(str(p) for p in found) + "): choose one with --attach PATH")
    return found[0]


# -- attached to a bot in another process ------------------------------------------------------
def main_attach(args: argparse.Namespace, settings: Any) -> int:
    import os

    from engine.runtime.control import ControlError

    from .app import CrotApp
    from .remote import ControlUnavailable, RemoteHost, probe

    path = Path(args.attach) if args.attach else find_socket(settings)
    try:
        hello = asyncio.run(probe(path))
    except (ControlUnavailable, ControlError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    host = RemoteHost(path, steer=not args.watch, name=f"crot-tui pid {os.getpid()}")
    host.mode = str(hello.get("mode") or host.mode)
    app = CrotApp(host, env_path=Path(args.env), theme_name=args.theme, show_summary=False)
    app.run()
    if app.return_code:
        print("error: the dashboard crashed (traceback above); the bot keeps running", file=sys.stderr)
        return EXIT_FAILED
    print(f"detached from {path}; the bot keeps running")
    return EXIT_OK


# -- with the dashboard ------------------------------------------------------------------------
def main_ui(args: argparse.Namespace, settings: Any, mode: str) -> int:
    from .app import CrotApp
    from .host import DEFAULT_SPEED, EngineHost

    speed = args.speed if args.speed is not None else DEFAULT_SPEED
    host = EngineHost(settings, mode=mode, speed=speed, data_dir=args.data, max_steps=args.steps)
    app = CrotApp(host, env_path=Path(args.env), theme_name=args.theme)
    app.run()
    if app.return_code:  # the UI crashed (its scrubbed traceback is printed): let a watchdog restart it
        print("error: the dashboard crashed (traceback above)", file=sys.stderr)
        return EXIT_FAILED
    result = host.result
    if result is not None and result.error:
        print(f"error: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def install_redaction() -> None:
    """Secrets out of the last-resort outputs too: an uncaught exception's traceback, and log
    records when no handler is configured (the dashboard's mode) go through `redact()`."""
    import traceback

    from engine.exchange.errors import RedactingFilter, redact

    if logging.lastResort is not None and not any(isinstance(f, RedactingFilter)
                                                  for f in logging.lastResort.filters):
        logging.lastResort.addFilter(RedactingFilter())

    def excepthook(exc_type: Any, exc: BaseException, tb: Any) -> None:
        sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))

    sys.excepthook = excepthook


def main(argv: list[str] | None = None) -> int:
    install_redaction()
    args = build_parser().parse_args(argv)
    from . import themes

    if args.list_themes:
        for name, path in themes.available().items():
            print(f"{name}\t{path}")
        return EXIT_OK
    if args.theme is not None and not args.no_ui:
        try:
            themes.load(args.theme)
        except ValueError as exc:
            _fail(str(exc))
    if args.speed is not None and args.speed < 0:
        _fail("--speed must be 0 (as fast as possible) or more")
    if args.steps is not None and args.steps < 1:
        _fail("--steps must be at least 1")
    if args.data and not Path(args.data).is_dir():
        _fail(f"--data {args.data}: not a folder")
    settings = load(args.env)
    if args.attach is not None:
        if args.no_ui or args.live or args.paper or args.demo:
            _fail("--attach opens a running bot: it takes no mode and no --no-ui")
        return main_attach(args, settings)
    if (args.socket or args.no_socket) and not args.no_ui:
        _fail("--socket and --no-socket are for --no-ui (the dashboard serves no socket)")
    mode = choose_mode(args, settings)
    if args.no_ui:
        return main_headless(args, settings, mode)
    return main_ui(args, settings, mode)


if __name__ == "__main__":
    raise SystemExit(main())
