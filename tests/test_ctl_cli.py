"""`crot ctl`: the dashboard's commands from the shell, against a real bot's control socket.

The bot (a real demo engine held between two candles, behind a real Unix socket) runs in a
thread with its own event loop; the CLI is called as a user calls it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from pathlib import Path
from decimal import Decimal

import pytest

from crot_tui.host import EngineHost
from crot_tui.testing import fast_settings
from engine.cli import main
from engine.runtime.control import ControlServer
from engine.runtime.control_client import ControlClient


class BotThread:
    def __init__(self, folder: Path, mode: str = "demo") -> None:
        self.path = folder / f"{mode}.sock"
        self.mode = mode
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.host: EngineHost | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        host = self.host = EngineHost(fast_settings(), mode="demo", speed=0, max_steps=3000)
        task = asyncio.create_task(host.run())
        while not (host.attached and host.done >= 5):
            await asyncio.sleep(0.01)
        host.playback_paused = True
        host.mode = self.mode  # the server reports this mode (a live bot asks before manual actions)
        self.server = ControlServer(self.path, host, host.bus)
        await self.server.start()
        self.ready.set()
        while not host.stop_requested:
            await asyncio.sleep(0.02)
        await self.server.aclose()
        await task

    def __enter__(self) -> BotThread:
        self.thread.start()
        assert self.ready.wait(30)
        return self

    def __exit__(self, *exc) -> None:
        assert self.host is not None
        self.host.request_stop()
        self.thread.join(15)


@pytest.fixture
def folder():
    d = Path(tempfile.mkdtemp(prefix="crot", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def ctl(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["ctl", *argv])
    out = capsys.readouterr()
    return code, out.out.strip(), out.err.strip()


def test_ctl_steers_the_bot(folder, capsys):
    with BotThread(folder) as bot:
        s = str(bot.path)
        code, out, _ = ctl(capsys, "--socket", s, "status")
        assert code == 0 and "profiles long, short on; new entries running" in out and "steered by: nobody" in out
        assert ctl(capsys, "--socket", s, "short", "off") == (0, "short profile off", "")
        assert bot.host.engine.flags.enabled["short"] is False
        assert ctl(capsys, "--socket", s, "short", "off")[1] == "short profile off"  # idempotent: no toggle back
        assert bot.host.engine.flags.enabled["short"] is False
        assert ctl(capsys, "--socket", s, "pause")[0] == 0 and bot.host.engine.flags.paused is True
        assert ctl(capsys, "--socket", s, "freeze", "btc") == (0, "freeze BTC/USDT:USDT", "")
        assert "BTC/USDT:USDT" in bot.host.engine.frozen
        code, out, _ = ctl(capsys, "--socket", s, "flatten")
        assert code == 0 and out.startswith("flatten:") and bot.host.engine._manual
        code, _, err = ctl(capsys, "--socket", s, "close", "NOPE")
        assert code == 1 and err.startswith("error: NOPE is not a traded symbol") and len(err.splitlines()) == 1
        code, out, _ = ctl(capsys, "--socket", s, "status")
        assert "short" not in out.split(";")[0] and "PAUSED" in out and "frozen: BTC/USDT:USDT" in out


def test_ctl_respects_a_viewer_at_the_helm(folder, capsys):
    with BotThread(folder) as bot:
        held = threading.Event()
        release = threading.Event()

        def viewer() -> None:
            async def go() -> None:
                c = ControlClient(bot.path, steer=True, name="tui of alice")
                await c.connect()
                held.set()
                while not release.is_set():
                    await asyncio.sleep(0.02)
                await c.aclose()
            asyncio.run(go())

        t = threading.Thread(target=viewer, daemon=True)
        t.start()
        assert held.wait(10)
        code, _, err = ctl(capsys, "--socket", str(bot.path), "pause")
        assert code == 1 and "another viewer steers" in err and bot.host.engine.flags.paused is False
        code, out, _ = ctl(capsys, "--socket", str(bot.path), "status")
        assert "steered by: tui of alice" in out
        assert ctl(capsys, "--socket", str(bot.path), "--force", "pause")[0] == 0
        assert bot.host.engine.flags.paused is True
        release.set()
        t.join(10)


def test_a_live_bot_asks_before_a_manual_action(folder, capsys, monkeypatch):
    with BotThread(folder, mode="live") as bot:
        monkeypatch.setattr("sys.stdin.isatty", lambda: False)
        code, _, err = ctl(capsys, "--socket", str(bot.path), "close", "BTC")
        assert code == 2 and "needs confirmation" in err and not bot.host.engine._manual
        monkeypatch.setattr("sys.stdin.isatty", lambda: True)
        monkeypatch.setattr("builtins.input", lambda prompt: "n")
        assert ctl(capsys, "--socket", str(bot.path), "close", "BTC")[0] == 1 and not bot.host.engine._manual
        monkeypatch.setattr("builtins.input", lambda prompt: "y")
        assert ctl(capsys, "--socket", str(bot.path), "close", "BTC")[0] == 0
        assert [r.kind for r in bot.host.engine._manual] == ["close"]
        assert ctl(capsys, "--socket", str(bot.path), "--yes", "cancel", "ETH")[0] == 0
        assert ctl(capsys, "--socket", str(bot.path), "freeze", "ETH")[0] == 0  # no question for a freeze


def test_ctl_without_a_bot_is_one_line(folder, capsys):
    code, _, err = ctl(capsys, "--socket", str(folder / "no.sock"), "status")
    assert code == 1 and "no bot serves" in err and len(err.splitlines()) == 1
    env = folder / ".env"
    env.write_text(f"DATA_DIR={folder / 'data'}\n")
    env.chmod(0o600)
    code, _, err = ctl(capsys, "--env", str(env), "pause")
    assert code == 2 and "no bot socket at" in err and str(folder / "data" / "paper.sock") in err
    assert len(err.splitlines()) == 1
    # with STATE_FILE the socket is looked for beside the state file
    env.write_text(f"DATA_DIR={folder / 'data'}\nSTATE_FILE={folder / 'st' / 'bot.sqlite'}\n")
    code, _, err = ctl(capsys, "--env", str(env), "pause")
    assert code == 2 and str(folder / "st" / "bot.sock") in err and str(folder / "st" / "bot.paper.sock") in err


def test_ctl_closes_at_a_limit_and_withdraws_it(folder, capsys, monkeypatch):
    with BotThread(folder, mode="live") as bot:
        monkeypatch.setattr("sys.stdin.isatty", lambda: True)
        asked = []
        monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "y")
        code, out, _ = ctl(capsys, "--socket", str(bot.path), "close", "BTC", "--limit", "70000.5")
        assert code == 0 and out.startswith("close BTC/USDT:USDT at a limit of 70000.5")
        assert asked == ["LIVE account: close BTC/USDT:USDT at a limit of 70000.5? [y/N] "]
        (req,) = bot.host.engine._manual
        assert (req.kind, req.symbol, req.price) == ("close", "BTC/USDT:USDT", Decimal("70000.5"))
        assert ctl(capsys, "--socket", str(bot.path), "--yes", "cancel-close", "BTC")[0] == 0
        assert [r.kind for r in bot.host.engine._manual] == ["close", "cancel_close"]
        code, _, err = ctl(capsys, "--socket", str(bot.path), "--yes", "close", "BTC", "--limit", "-5")
        assert code == 2 and "expected a positive number" in err and len(err.splitlines()) == 1
        assert len(bot.host.engine._manual) == 2
