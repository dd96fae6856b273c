"""Watchdog: keep the bot running, and restart it when it exits or stops making progress.

`crot watchdog -- crot-tui --no-ui --live` starts the command, restarts it when it exits (with
a growing pause, reset after a healthy hour), and kills it (SIGTERM, then SIGKILL) when its
heartbeat file has not been touched for `--stall` seconds: a hung process is worse than a
restarted one, because the restart reconciles with the exchange. The heartbeat is
`<DATA_DIR>/heartbeat`, DATA_DIR read from the same `.env` the bot reads (never from an
environment variable: a bot with its own DATA_DIR would look stalled and be killed).

A clean exit (code 0) or SIGTERM/SIGINT to the watchdog ends the watch; exit code 2 (the bot
refused its settings or command line) is not restarted either, since a restart cannot fix it.
Stops stay on the exchange throughout.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass
class WatchConfig:
    command: list[str]
    heartbeat: Path | None = None
    stall_s: float = 600.0
    min_pause_s: float = 5.0
    max_pause_s: float = 300.0
    healthy_after_s: float = 3600.0
    max_restarts: int | None = None  # None = forever
    poll_s: float = 1.0


EXIT_CONFIG = 2  # the bot's "invalid settings or usage": restarting cannot help


@dataclass
class WatchResult:
    restarts: int
    exit_code: int  # what the watchdog itself should exit with
    reason: str = ""


def _log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} watchdog: {msg}", file=sys.stderr, flush=True)


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 60.0, already_signalled: bool = False) -> int:
    """SIGTERM (unless the child got the signal itself, e.g. Ctrl-C in its terminal: a second
    signal would make it stop at once instead of after its cycle), then SIGKILL after grace."""
    if already_signalled:
        try:
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def _heartbeat_age(path: Path, touched_at: float) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:  # removed under us: count from when we touched it ourselves
        return time.time() - touched_at


def run_watch(cfg: WatchConfig, *, should_stop: Callable[[], bool] = lambda: False,
              sleep: Callable[[float], None] = time.sleep,
              child_signalled: Callable[[], bool] = lambda: False) -> WatchResult:
    """Run and re-run `cfg.command` until a clean exit, a stop request or the restart limit."""
    restarts = 0
    pause = cfg.min_pause_s
    while True:
        started = time.monotonic()
        touched_at = time.time()
        stalled = False
        if cfg.heartbeat is not None:  # a fresh start gets the whole stall time
            cfg.heartbeat.parent.mkdir(parents=True, exist_ok=True)
            cfg.heartbeat.touch()
        try:
            proc = subprocess.Popen(cfg.command)
        except OSError as exc:
            proc = None
            code: int | None = 127
            reason = f"cannot start {cfg.command[0]}: {exc.strerror or exc}"
        else:
            _log(f"started pid {proc.pid}: {' '.join(cfg.command)}")
            reason = ""
            code = None
        while proc is not None:
            code = proc.poll()
            if code is not None:
                reason = f"exited with code {code}"
                break
            if should_stop():
                _stop(proc, already_signalled=child_signalled())
                _log("stopped on request")
                return WatchResult(restarts, 0, "stopped on request")
            if cfg.heartbeat is not None:
                age = _heartbeat_age(cfg.heartbeat, touched_at)
                if age > cfg.stall_s:
                    stalled = True
                    code = _stop(proc, grace_s=30.0)
                    reason = f"no heartbeat in {cfg.heartbeat} for {age:.0f} s; killed (code {code})"
                    break
            sleep(cfg.poll_s)
        if code == 0 and not stalled:
            _log("clean exit; not restarting")
            return WatchResult(restarts, 0, "clean exit")
        if code == EXIT_CONFIG and not stalled:
            _log(f"{reason} (invalid settings or command line): not restarting; fix them and start again "
                 "(with API keys set, the bot needs --live or --paper)")
            return WatchResult(restarts, EXIT_CONFIG, reason)
        if time.monotonic() - started > cfg.healthy_after_s:
            pause = cfg.min_pause_s
        if cfg.max_restarts is not None and restarts >= cfg.max_restarts:
            _log(f"{reason}; restart limit reached")
            return WatchResult(restarts, 1, reason)
        _log(f"{reason}; restarting in {pause:.0f} s")
        waited = 0.0
        while waited < pause and not should_stop():  # a stop request ends the pause at once
            step = min(cfg.poll_s, pause - waited)
            sleep(step)
            waited += step
        if should_stop():
            _log("stopped on request")
            return WatchResult(restarts, 0, "stopped on request")
        pause = min(pause * 2, cfg.max_pause_s)
        restarts += 1


def watch(cfg: WatchConfig, *, should_stop: Callable[[], bool] = lambda: False,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Run and re-run `cfg.command`; returns the number of restarts made."""
    return run_watch(cfg, should_stop=should_stop, sleep=sleep).restarts


DEFAULT_COMMAND = ["crot-tui", "--no-ui"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="crot watchdog", allow_abbrev=False,
        usage="crot watchdog [--env PATH] [--heartbeat FILE] [--stall SECONDS] [-- COMMAND ...]",
        description="Run the bot and restart it when it exits or its heartbeat stalls. The heartbeat is "
                    "<DATA_DIR>/heartbeat, with DATA_DIR from the bot's settings file. Exit code 2 from the "
                    "bot (invalid settings or usage) is not restarted.",
        epilog="example: crot watchdog --stall 600 -- crot-tui --no-ui --live "
               "(with API keys in .env the bot needs --live or --paper). Options after -- (or after the "
               "command's first word) are the command's: crot watchdog -- crot-tui --help shows the bot's help.")
    p.add_argument("--env", metavar="PATH", default=None,
                   help="settings file to read DATA_DIR from (default: the command's --env, else .env)")
    p.add_argument("--heartbeat", metavar="FILE", default=None,
                   help="file the bot touches every step (default: <DATA_DIR>/heartbeat)")
    p.add_argument("--stall", metavar="SECONDS", type=float, default=600.0,
                   help="seconds without a heartbeat before the bot is killed and restarted (default: 600)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND",
                   help="after --: the command to run (default: crot-tui --no-ui)")
    return p


def _option_of(command: list[str], name: str) -> str | None:
    """The value of `name` in a command line (`--env X` or `--env=X`), if given."""
    for i, arg in enumerate(command):
        if arg == name and i + 1 < len(command):
            return command[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None


def heartbeat_path(env: str) -> Path:
    """`<DATA_DIR>/heartbeat`, DATA_DIR from the settings file (the default when it is missing)."""
    from engine.settings import SettingsError, load_settings

    try:
        settings = load_settings(env, missing_ok=(env == ".env"))
    except SettingsError as exc:
        raise SystemExit(_usage_error(str(exc).replace("\n", " "))) from None
    return (Path(settings.glob.data_dir) / "heartbeat").absolute()


def _usage_error(message: str) -> int:
    print(f"crot watchdog: error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def main(argv: list[str]) -> int:
    """`crot watchdog [options] [-- command ...]`; the command may also follow the options
    without `--` when its first word does not start with '-'."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        opts, command = argv[:i], argv[i + 1:]
        args = build_parser().parse_args(opts)
        if args.command:
            return _usage_error(f"unexpected {' '.join(args.command)!r} before --")
    else:
        args = build_parser().parse_args(argv)
        command = list(args.command)
    if not args.stall > 0:
        return _usage_error("--stall must be a number of seconds above 0")
    env = args.env or _option_of(command, "--env") or ".env"
    if not command:
        command = DEFAULT_COMMAND + (["--env", env] if args.env else [])
    if shutil.which(command[0]) is None:
        return _usage_error(f"command not found: {command[0]}")
    heartbeat = Path(args.heartbeat).absolute() if args.heartbeat else heartbeat_path(env)
    stopping: dict[str, int | None] = {"signal": None}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopping.update(signal=signum))
    _log(f"heartbeat {heartbeat}, stall after {args.stall:g} s")
    # Ctrl-C in a terminal reaches the whole process group, the bot too: it is not sent again
    result = run_watch(WatchConfig(command, heartbeat, args.stall), should_stop=lambda: stopping["signal"] is not None,
                       child_signalled=lambda: stopping["signal"] == signal.SIGINT)
    return result.exit_code
