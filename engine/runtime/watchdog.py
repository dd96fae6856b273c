"""Watchdog: keep the bot running, and restart it when it exits or stops making progress.

`crot watchdog -- crot-tui --no-ui` starts the command, restarts it when it exits (with a
growing pause, reset after a healthy hour), and kills it (SIGTERM, then SIGKILL) when its
heartbeat file has not been touched for `--stall` seconds: a hung process is worse than a
restarted one, because the restart reconciles with the exchange. A clean exit (code 0) or
SIGTERM to the watchdog itself ends the watch. Stops stay on the exchange throughout.
"""

from __future__ import annotations

import os
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


def _log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} watchdog: {msg}", file=sys.stderr, flush=True)


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 60.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def watch(cfg: WatchConfig, *, should_stop: Callable[[], bool] = lambda: False,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Run and re-run `cfg.command`; returns the number of restarts made."""
    restarts = 0
    pause = cfg.min_pause_s
    while True:
        started = time.monotonic()
        if cfg.heartbeat is not None:
            cfg.heartbeat.parent.mkdir(parents=True, exist_ok=True)
            cfg.heartbeat.touch()
        proc = subprocess.Popen(cfg.command)
        _log(f"started pid {proc.pid}: {' '.join(cfg.command)}")
        reason = ""
        while True:
            code = proc.poll()
            if code is not None:
                reason = f"exited with code {code}"
                break
            if should_stop():
                _stop(proc)
                _log("stopped on request")
                return restarts
            if cfg.heartbeat is not None:
                age = time.time() - cfg.heartbeat.stat().st_mtime
                if age > cfg.stall_s:
                    code = _stop(proc, grace_s=30.0)
                    reason = f"no heartbeat for {age:.0f} s; killed (code {code})"
                    break
            sleep(cfg.poll_s)
        if code == 0 and "heartbeat" not in reason:
            _log("clean exit; not restarting")
            return restarts
        if time.monotonic() - started > cfg.healthy_after_s:
            pause = cfg.min_pause_s
        if cfg.max_restarts is not None and restarts >= cfg.max_restarts:
            _log(f"{reason}; restart limit reached")
            return restarts
        _log(f"{reason}; restarting in {pause:.0f} s")
        sleep(pause)
        pause = min(pause * 2, cfg.max_pause_s)
        restarts += 1


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="crot watchdog")
    parser.add_argument("--heartbeat", default=None, help="file the bot touches every step "
                        "(default: <DATA_DIR>/heartbeat from .env, or data/heartbeat)")
    parser.add_argument("--stall", type=float, default=600.0, help="seconds without heartbeat before a kill")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = parser.parse_args(argv)
    command = [c for c in args.command if c != "--"] or ["crot-tui", "--no-ui"]
    heartbeat = Path(args.heartbeat) if args.heartbeat else Path(os.environ.get("CROT_DATA_DIR", "data")) / "heartbeat"
    stopping = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(flag=True))
    watch(WatchConfig(command, heartbeat, args.stall), should_stop=lambda: stopping["flag"])
    return 0
