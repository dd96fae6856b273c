"""`crot-tui --no-ui`: the same engine with a log sink, exit codes, signals, redaction."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crot_tui.__main__ import run_headless
from crot_tui.host import EngineHost
from crot_tui.testing import FAST_ENV, fast_settings, write_env

ROOT = Path(__file__).resolve().parents[1]


def crot_tui(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    return subprocess.Popen([sys.executable, "-m", "crot_tui", *args], cwd=kw.pop("cwd", ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


async def test_log_sink_logs_important_events_only(caplog) -> None:
    host = EngineHost(fast_settings(), mode="demo", speed=0, max_steps=200)
    logger = logging.getLogger("crot.test.headless")
    with caplog.at_level(logging.INFO):
        result = await run_headless(host, logger=logger, install_signals=False)
    assert result.ok and result.summary is not None and result.summary.steps == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "crot.test.headless"]
    kinds = {line.split()[2] for line in lines if line[:2] == "20"}  # '2018-01-10 05:00 order ...'
    assert {"order", "stop", "trade", "regime"} <= kinds
    assert any(line.startswith("status replay: started") for line in lines)
    assert not any("decision" in line for line in lines)
    progress = [r.getMessage() for r in caplog.records if r.name == "crot.progress"]
    assert progress and progress[-1].startswith("replay 200/")


def test_no_ui_demo_runs_to_the_end_with_exit_0_and_never_prints_secrets(tmp_path) -> None:
    secret = "SuperSecretKeyValue1234"
    env = write_env(tmp_path / ".env", FAST_ENV + f"HTX_API_KEY={secret}\nHTX_API_SECRET=not-a-real-secret-98\n")
    p = crot_tui("--no-ui", "--demo", "--steps", "200", "--env", str(env))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "Replay summary" in out and "200 candles" in out
    assert " order  " in err and " stop   " in err and " trade  " in err
    assert secret not in out + err and "not-a-real-secret-98" not in out + err


def test_settings_errors_exit_2_with_the_problem(tmp_path) -> None:
    env = write_env(tmp_path / "bad.env", "HARD_STOP_LOSS_PCT=lots\nNO_SUCH_SETTING=1\n")
    p = crot_tui("--no-ui", "--env", str(env))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2
    assert "bad.env:1: HARD_STOP_LOSS_PCT" in err
    assert "NO_SUCH_SETTING" in err and "unknown setting" in err


def test_with_a_key_the_mode_must_be_chosen(tmp_path) -> None:
    env = write_env(tmp_path / ".env", "HTX_API_KEY=abcd1234\nHTX_API_SECRET=fake-s-5678\n")
    p = crot_tui("--no-ui", "--env", str(env))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "choose --live" in err


def test_sigterm_stops_after_the_current_cycle(tmp_path) -> None:
    env = write_env(tmp_path / ".env", FAST_ENV)
    p = crot_tui("--no-ui", "--demo", "--speed", "40", "--env", str(env))
    deadline = time.monotonic() + 60
    seen = ""
    assert p.stderr is not None
    while time.monotonic() < deadline:  # wait until the demo trades at its paced speed
        line = p.stderr.readline()
        seen += line
        if "trading" in line or " order  " in line:
            break
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    seen += err
    assert p.returncode == 0, seen
    assert "stopping after the current cycle" in seen
    assert "stopped on request" in seen


@pytest.mark.parametrize(("level", "infos"), [("INFO", True), ("WARNING", False)])
def test_log_level_decides_which_lines_a_headless_run_logs(tmp_path, capsys, level, infos) -> None:
    """LOG_LEVEL: the --no-ui log (what a service's journal keeps) drops lines below it."""
    from crot_tui.__main__ import build_parser, main_headless

    root = logging.getLogger()
    handlers, old = list(root.handlers), root.level
    try:
        args = build_parser().parse_args(["--no-ui", "--demo", "--steps", "20", "--no-socket"])
        assert main_headless(args, fast_settings(f"LOG_LEVEL={level}\n"), "demo") == 0
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(old)
    err = capsys.readouterr().err
    assert (" INFO    " in err) is infos
