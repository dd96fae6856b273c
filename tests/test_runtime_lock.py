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


# -- one bot per account (issue 17, item 7) -----------------------------------------------------
import asyncio  # noqa: E402
import os  # noqa: E402
import stat  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

from engine.runtime.lock import account_id, account_lock_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY = "hx-lock-key-0b9d77e1f3"

#: a live bot (run_live, live mode, the simulator behind it) that takes its locks, starts its
#: engine, prints "ready" and then waits forever for candles
LIVE_BOT = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from engine.exchange.sim import SimConfig, SimulatedExchange
    from engine.market.feeds import FileFeed
    from engine.runtime.events import EventBus
    from engine.runtime.live import LiveParts, run_live
    from engine.runtime.replay import demo_market
    from engine.settings.envfile import parse_lines
    from engine.settings.loader import settings_from_assignments

    XRP = "XRP/USDT:USDT"
    data_dir, key = sys.argv[1], sys.argv[2]
    history = FileFeed.from_directory(Path(sys.argv[3]), "5m", symbols=[XRP]).history(XRP)
    sim = SimulatedExchange([demo_market(XRP, history)], SimConfig(stops_reserve_closeable=False))

    class Feed:
        symbols = (XRP,)
        timeframe = "5m"

        async def poll(self, now_ms):
            await asyncio.Event().wait()

    text = f"COINS=xrp\\nHTX_API_KEY={key}\\nHTX_API_SECRET=s-{key}\\nDATA_DIR={data_dir}\\n"
    assignments, errors = parse_lines(text.splitlines())
    settings = settings_from_assignments(assignments)
    asyncio.run(run_live(settings, bus=EventBus(), paper=False, parts=LiveParts(sim, Feed(), None, sim),
                         on_engine=lambda e: print("ready", flush=True), benchmark=None))
""")


def _start_live_bot(tmp_path, data_dir, key, lock_dir):
    script = tmp_path / "live_bot.py"
    script.write_text(LIVE_BOT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CROT_LOCK_DIR": str(lock_dir)}
    proc = subprocess.Popen([sys.executable, str(script), str(data_dir), key, str(ROOT / "tests" / "fixtures" /
                            "market_2018")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise AssertionError(f"the first bot did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc


def _live_settings(data_dir, key):
    from engine.settings.envfile import parse_lines
    from engine.settings.loader import settings_from_assignments

    text = f"COINS=xrp\nHTX_API_KEY={key}\nHTX_API_SECRET=s-{key}\nDATA_DIR={data_dir}\n"
    assignments, _ = parse_lines(text.splitlines())
    return settings_from_assignments(assignments)


async def test_two_live_bots_with_different_data_dirs_on_one_key_are_refused(tmp_path, monkeypatch):
    from engine.runtime.events import EventBus
    from engine.runtime.live import LiveParts, run_live

    locks = tmp_path / "locks"
    monkeypatch.setenv("CROT_LOCK_DIR", str(locks))
    first = _start_live_bot(tmp_path, tmp_path / "bot-a", KEY, locks)
    try:
        class NoFeed:  # never reached: the second bot stops at the lock
            symbols = ("XRP/USDT:USDT",)
            timeframe = "5m"

            async def poll(self, now_ms):
                raise AssertionError("the second bot got past the account lock")

        with pytest.raises(AlreadyRunning) as info:
            await asyncio.wait_for(run_live(_live_settings(tmp_path / "bot-b", KEY), bus=EventBus(), paper=False,
                                            parts=LiveParts(None, NoFeed(), None), benchmark=None), 20)
        msg = str(info.value)
        assert "\n" not in msg and str(first.pid) in msg and "bot-a" in msg and "this HTX account" in msg
        assert KEY not in msg
        assert not (tmp_path / "bot-b" / "live.sqlite").exists()  # refused before touching any state
        # the refused bot left nothing held: its folder is free again
        InstanceLock(tmp_path / "bot-b").acquire().release()
        # another key, or paper mode on the same key, is not this account's live bot
        InstanceLock(tmp_path / "bot-c", account="hx-other-key-1").acquire().release()
        InstanceLock(tmp_path / "bot-d", account=None).acquire().release()
    finally:
        first.kill()
        first.wait()
    # the holder died: the account is free
    InstanceLock(tmp_path / "bot-b", account=KEY).acquire().release()


def test_the_account_lock_names_no_key_and_lives_in_a_private_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("CROT_LOCK_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    lock = InstanceLock(tmp_path / "data", account=KEY).acquire()
    try:
        folder = tmp_path / "home" / ".local" / "state" / "crot" / "locks"
        assert lock.account_path is not None and lock.account_path.parent == folder
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert lock.account_path.name == f"account-{account_id(KEY)}.lock"
        assert KEY not in lock.account_path.name and KEY not in lock.account_path.read_text()
        assert lock.account_path.read_text().split("\n")[0] == str(os.getpid())
        with pytest.raises(AlreadyRunning, match="this HTX account"):
            InstanceLock(tmp_path / "other", account=f"  {KEY} ").acquire()  # same key, stray spaces
    finally:
        lock.release()
    assert account_id(KEY) != account_id(KEY + "x") and len(account_id(KEY)) == 16


def test_a_symlinked_or_foreign_lock_folder_is_not_used(tmp_path, monkeypatch):
    monkeypatch.delenv("CROT_LOCK_DIR", raising=False)
    home = tmp_path / "home"
    (home / ".local" / "state" / "crot").mkdir(parents=True)
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir()
    (home / ".local" / "state" / "crot" / "locks").symlink_to(elsewhere)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    assert account_lock_dir() == tmp_path / "run" / "crot"
    with InstanceLock(tmp_path / "data", account=KEY) as lock:
        assert lock.account_path.parent == tmp_path / "run" / "crot"
    assert not list(elsewhere.iterdir())


def test_an_unusable_override_is_an_error_not_a_silent_skip(tmp_path, monkeypatch):
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    monkeypatch.setenv("CROT_LOCK_DIR", str(link))
    from engine.runtime.lock import LockUnavailable

    with pytest.raises(LockUnavailable, match="CROT_LOCK_DIR"):
        InstanceLock(tmp_path / "data", account=KEY).acquire()
    InstanceLock(tmp_path / "data").acquire().release()  # the folder lock was given back
