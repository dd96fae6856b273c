"""The watchdog restarts a bot that exits or stalls, and lets a clean exit end."""

import sys
import time

from engine.runtime.watchdog import WatchConfig, watch


def test_restarts_after_crash_until_limit(tmp_path):
    marker = tmp_path / "runs"
    cmd = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x'); raise SystemExit(3)"]
    restarts = watch(WatchConfig(cmd, None, min_pause_s=0.01, max_restarts=2, poll_s=0.01))
    assert restarts == 2
    assert marker.read_text() == "xxx"  # first run + two restarts


def test_clean_exit_is_not_restarted(tmp_path):
    marker = tmp_path / "runs"
    cmd = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x')"]
    assert watch(WatchConfig(cmd, None, min_pause_s=0.01, max_restarts=5, poll_s=0.01)) == 0
    assert marker.read_text() == "x"


def test_stalled_heartbeat_is_killed_and_restarted(tmp_path):
    hb = tmp_path / "heartbeat"
    marker = tmp_path / "runs"
    # a bot that starts, never touches its heartbeat, and hangs
    cmd = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x'); import time; time.sleep(60)"]
    t0 = time.monotonic()
    restarts = watch(WatchConfig(cmd, hb, stall_s=0.5, min_pause_s=0.01, max_restarts=1, poll_s=0.05))
    assert restarts == 1 and marker.read_text() == "xx"
    assert time.monotonic() - t0 < 30


# -- through the real `crot watchdog` command line (issue 17, item 6) ---------------------------
import os  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# A healthy bot: touches <folder>/heartbeat every 0.1 s for `seconds`, then exits 0.
HEALTHY = ("import sys, time, pathlib; hb = pathlib.Path(sys.argv[1]) / 'heartbeat'; hb.parent.mkdir(exist_ok=True)\n"
           "open(sys.argv[2], 'a').write('x')\n"
           "end = time.monotonic() + float(sys.argv[3])\n"
           "while time.monotonic() < end:\n    hb.touch(); time.sleep(0.1)\n")


def crot_watchdog(args, cwd, timeout=60, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CROT_DATA_DIR", None)
    return subprocess.run([sys.executable, "-m", "engine.cli", "watchdog", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env, **kw)


def test_heartbeat_folder_comes_from_data_dir_in_env_not_the_environment(tmp_path):
    (tmp_path / ".env").write_text("DATA_DIR=custom-state\n")
    runs = tmp_path / "runs"
    bot = [sys.executable, "-c", HEALTHY, str(tmp_path / "custom-state"), str(runs), "3"]
    proc = crot_watchdog(["--stall", "1", "--", *bot], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no heartbeat" not in proc.stderr and runs.read_text() == "x"  # never killed, never restarted
    assert str(tmp_path / "custom-state" / "heartbeat") in proc.stderr


def test_the_commands_own_env_file_names_the_data_dir(tmp_path):
    (tmp_path / "bot.env").write_text("DATA_DIR=elsewhere\n")
    runs = tmp_path / "runs"
    bot = [sys.executable, "-c", HEALTHY, str(tmp_path / "elsewhere"), str(runs), "2.5", "--env", "bot.env"]
    proc = crot_watchdog(["--stall", "1", "--", *bot], tmp_path)
    assert proc.returncode == 0 and "no heartbeat" not in proc.stderr, proc.stderr
    assert str(tmp_path / "elsewhere" / "heartbeat") in proc.stderr


def test_a_stalled_bot_is_killed_and_restarted_through_the_cli(tmp_path):
    runs = tmp_path / "runs"
    # first run hangs without a heartbeat; the restart exits cleanly
    bot = [sys.executable, "-c", f"import time; p = {str(runs)!r}; open(p, 'a').write('x')\n"
                                 "if open(p).read() == 'x': time.sleep(60)"]
    proc = crot_watchdog(["--stall", "0.5", "--", *bot], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert runs.read_text() == "xx" and "no heartbeat" in proc.stderr


def test_a_settings_or_usage_error_of_the_bot_is_not_restarted(tmp_path):
    runs = tmp_path / "runs"
    bot = [sys.executable, "-c", f"open({str(runs)!r}, 'a').write('x'); raise SystemExit(2)"]
    proc = crot_watchdog(["--", *bot], tmp_path)
    assert proc.returncode == 2 and runs.read_text() == "x"
    assert "not restarting" in proc.stderr and "--live or --paper" in proc.stderr


def test_sigterm_stops_the_bot_and_the_watchdog(tmp_path):
    runs = tmp_path / "runs"
    bot = [sys.executable, "-c", HEALTHY, str(tmp_path / "data"), str(runs), "60"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    watchdog = subprocess.Popen([sys.executable, "-m", "engine.cli", "watchdog", "--", *bot], cwd=tmp_path,
                                stderr=subprocess.PIPE, text=True, env=env)
    try:
        for _ in range(200):
            if runs.exists():
                break
            time.sleep(0.05)
        watchdog.send_signal(signal.SIGTERM)
        assert watchdog.wait(timeout=30) == 0
    finally:
        watchdog.kill()
    assert "stopped on request" in watchdog.stderr.read()


@pytest.mark.parametrize(("args", "needle"), [
    (["--help"], "--stall"),
    (["--stall", "abc", "--", "true"], "invalid float value"),
    (["--stall", "0", "--", "true"], "above 0"),
    (["--stal", "5", "--", "true"], "unrecognized arguments"),
    (["--", "no-such-command-crot"], "command not found"),
])
def test_watchdog_command_line(tmp_path, args, needle):
    proc = crot_watchdog(args, tmp_path)
    assert proc.returncode == (0 if args == ["--help"] else 2)
    assert needle in proc.stdout + proc.stderr and "Traceback" not in proc.stderr


def test_bad_settings_file_is_a_one_line_error(tmp_path):
    (tmp_path / ".env").write_text("DATA_DIR=\n")
    proc = crot_watchdog(["--stall", "5", "--", "true"], tmp_path)
    assert proc.returncode == 2 and "DATA_DIR" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_shipped_systemd_unit_runs_live(tmp_path):
    """The unit's command parses, and with API keys in .env it selects live mode instead of
    exiting 2 for want of a mode."""
    from crot_tui.__main__ import build_parser as tui_parser, choose_mode
    from engine.runtime.watchdog import build_parser as watchdog_parser
    from engine.settings import load_settings

    unit = (ROOT / "ops" / "crot.service").read_text()
    [exec_start] = [ln for ln in unit.splitlines() if ln.startswith("ExecStart=")]
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    assert argv[0].endswith("/crot") and argv[1] == "watchdog"
    sep = argv.index("--")
    opts = watchdog_parser().parse_args(argv[2:sep])
    assert opts.stall > 0 and not opts.command
    command = argv[sep + 1:]
    assert command[0].endswith("/crot-tui")
    env = tmp_path / ".env"
    env.write_text("HTX_API_KEY=k-unit-test-1\nHTX_API_SECRET=s-unit-test-1\nCOINS=btc\n")
    args = tui_parser().parse_args(command[1:] + ["--env", str(env)])
    assert args.no_ui and choose_mode(args, load_settings(env)) == "live"
    assert "RestartPreventExitStatus=2" in unit
    script = (ROOT / "ops" / "run-watchdog.sh").read_text()
    assert 'crot-tui --no-ui "$@"' in script


def test_ctrl_c_reaches_the_bot_once_so_it_can_finish_its_cycle(tmp_path):
    """Ctrl-C in a terminal signals the whole process group: the watchdog must not add a
    SIGTERM (the bot's second signal means 'stop at once')."""
    signals = tmp_path / "signals"
    bot = [sys.executable, "-c",
           "import signal, sys, time, pathlib\n"
           f"f = open({str(signals)!r}, 'a'); hb = pathlib.Path({str(tmp_path / 'data')!r})\n"
           "def log(s): f.write(s); f.flush()\n"
           "hb.mkdir(exist_ok=True); stop = []\n"
           "signal.signal(signal.SIGINT, lambda *_: (log('int '), stop.append(1)))\n"
           "signal.signal(signal.SIGTERM, lambda *_: log('term '))\n"
           "log('up ')\n"
           "while not stop:\n    (hb / 'heartbeat').touch(); time.sleep(0.05)\n"
           "time.sleep(1.5); log('done')\n"]  # the rest of its cycle
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    watchdog = subprocess.Popen([sys.executable, "-m", "engine.cli", "watchdog", "--", *bot], cwd=tmp_path,
                                stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        for _ in range(400):
            if signals.exists() and "up" in signals.read_text():
                break
            time.sleep(0.05)
        os.killpg(watchdog.pid, signal.SIGINT)
        assert watchdog.wait(timeout=30) == 0
    finally:
        watchdog.kill()
    assert signals.read_text() == "up int done"
