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
