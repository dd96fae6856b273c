"""`crot-tui --attach`: the dashboard on a bot that runs elsewhere (crot_tui/remote.py).

In-process: a real demo engine behind a real control socket, the app driven by Textual's
pilot. Out of process: `crot-tui --no-ui` as a service and `crot-tui --attach` in tmux, as an
operator runs them over SSH.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from crot_tui.__main__ import main
from crot_tui.app import CrotApp
from crot_tui.remote import RemoteHost
from tui_kit import served_demo


@pytest.fixture
def sock_dir():
    d = Path(tempfile.mkdtemp(prefix="crot", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _env(folder: Path, text: str) -> Path:
    p = folder / ".env"
    p.write_text(text)
    p.chmod(0o600)
    return p


async def _until(cond, pilot, seconds: float = 20.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        await pilot.pause(0.02)
    return cond()


def _status(app: CrotApp) -> str:
    from crot_tui.widgets.statusbar import StatusBar

    return str(app.screen.query_one(StatusBar).render())


async def test_the_attached_dashboard_steers_the_bot_and_quitting_leaves_it_running(sock_dir, tmp_path):
    bot, task, server = await served_demo(sock_dir / "demo.sock")
    try:
        viewer = RemoteHost(server.path, name="pilot")
        app = CrotApp(viewer, env_path=tmp_path / ".env", show_summary=False)
        async with app.run_test(size=(120, 40)) as pilot:
            assert await _until(lambda: viewer.connected and viewer.steering, pilot)
            # the panes, from the bot's snapshot (its server was serving before the engine started)
            assert await _until(lambda: app.state.account is not None and bool(app.state.positions)
                                and set(app.state.decisions) >= {"long", "short"}, pilot)
            await pilot.press("s")
            assert await _until(lambda: bot.engine.flags.enabled["short"] is False, pilot)
            assert await _until(lambda: "SHORT  OFF" in _status(app), pilot)
            await pilot.press("p")
            assert await _until(lambda: bot.engine.flags.paused is True, pilot)
            # a second viewer watches; its commands are refused with the reason, not lost silently
            watcher = RemoteHost(server.path, name="second")
            wtask = asyncio.create_task(watcher.run())
            assert await _until(lambda: watcher.connected, pilot)
            assert not watcher.steering and watcher.flags() == ({"long": True, "short": False}, True)
            with pytest.raises(ValueError, match="pilot steers this bot"):
                await watcher.toggle_profile("long")
            assert bot.engine.flags.enabled["long"] is True
            watcher.request_stop()
            await asyncio.wait_for(wtask, 5)
            await pilot.press("q")  # a viewer quits without asking: the bot is not stopped
            await pilot.pause(0.2)
        assert not bot.stop_requested and bot.running
        assert viewer.result is not None and viewer.result.stopped
    finally:
        await server.aclose()
        bot.request_stop()
        await asyncio.wait_for(task, 10)


async def test_a_command_while_the_bot_is_away_is_refused_with_a_message(sock_dir, tmp_path):
    viewer = RemoteHost(sock_dir / "gone.sock", name="pilot")
    app = CrotApp(viewer, env_path=tmp_path / ".env", show_summary=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        await pilot.press("l")
        await pilot.pause(0.2)
        texts = [n.message for n in app._notifications]
        assert any("not connected to the bot" in t and "nothing sent" in t for t in texts), texts
        await pilot.press("q")


def test_attach_without_a_bot_is_one_line_exit_1(sock_dir, capsys):
    _env(sock_dir, "")
    assert main(["--env", str(sock_dir / ".env"), "--attach", str(sock_dir / "none.sock")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no bot serves" in err[0] and "none.sock" in err[0]


def test_attach_takes_no_mode(sock_dir, capsys):
    _env(sock_dir, "")
    with pytest.raises(SystemExit) as exc:
        main(["--env", str(sock_dir / ".env"), "--attach", "--live"])
    assert exc.value.code == 2
    assert "--attach opens a running bot" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")
def test_attach_from_another_terminal_in_tmux(sock_dir):
    """The operator's case: a headless bot, a viewer in tmux that toggles and detaches."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", TERM="xterm-256color")
    _env(sock_dir, f"EMA_MACRO_FAST_MINUTES=120\nEMA_MACRO_SLOW_MINUTES=360\nDATA_DIR={sock_dir / 'data'}\n")
    log = open(sock_dir / "bot.log", "w")
    bot = subprocess.Popen([sys.executable, "-m", "crot_tui", "--env", str(sock_dir / ".env"), "--no-ui",
                            "--demo", "--speed", "5"], cwd=sock_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    session = f"crot{os.getpid()}"
    sock = sock_dir / "data" / "demo.sock"
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.05)
        assert sock.exists(), (sock_dir / "bot.log").read_text()
        cmd = f"{sys.executable} -m crot_tui --env {sock_dir / '.env'} --attach; echo VIEWER-EXIT=$?; sleep 60"
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd],
                       cwd=sock_dir, env=env, check=True)

        def screen() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                  text=True).stdout

        def wait_for(text: str, seconds: float = 30) -> str:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                s = screen()
                if text in s:
                    return s
                time.sleep(0.2)
            raise AssertionError(f"{text!r} not on the screen:\n{screen()}")

        wait_for("SHORT  on")
        wait_for("margin")  # the account figures come from the bot's stream
        wait_for("Positions")
        subprocess.run(["tmux", "send-keys", "-t", session, "s"], check=True)
        wait_for("SHORT  OFF")
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        wait_for("VIEWER-EXIT=0")
        assert "the bot keeps running" in screen()
        assert bot.poll() is None  # the viewer left; the bot did not stop
        text = (sock_dir / "bot.log").read_text()
        assert "short profile off" in text and "detached" in text
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        bot.terminate()
        try:
            bot.wait(15)
        except subprocess.TimeoutExpired:
            bot.kill()
        log.close()
    assert not sock.exists()  # the bot removes its socket when it stops
