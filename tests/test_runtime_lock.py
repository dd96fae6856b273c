"""One instance per state folder; the lock dies with the process."""

import subprocess
import sys

import pytest

from engine.runtime.lock import AlreadyRunning, InstanceLock


def test_second_instance_is_refused_and_lock_is_released(tmp_path):
    with InstanceLock(tmp_path):
        with pytest.raises(AlreadyRunning, match="another CROT instance"):
            InstanceLock(tmp_path).acquire()
    InstanceLock(tmp_path).acquire().release()  # free again after release


def test_lock_held_by_another_process_and_freed_when_it_dies(tmp_path):
    code = (f"from engine.runtime.lock import InstanceLock; import sys, time; "
            f"InstanceLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(AlreadyRunning, match=str(proc.pid)):
            InstanceLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()
    InstanceLock(tmp_path).acquire().release()  # a killed holder leaves no stale lock
