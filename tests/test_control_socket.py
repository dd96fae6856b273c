"""The control socket of a headless bot (engine/runtime/control.py) and its wire format.

The engine runs for real (the bundled demo replay on the simulated exchange, held between two
candles where a test needs it alive); viewers connect through a real Unix domain socket.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from crot_tui.host import EngineHost
from tui_kit import held_demo, served_demo
from crot_tui.testing import fast_settings, record_demo
from engine.runtime import events as ev
from engine.runtime.control import ControlError, ControlServer, default_socket_path
from engine.runtime.control_client import CommandRefused, ControlClient, ControlUnavailable
from engine.runtime.wire import WireError, decode, dumps, encode, loads


@pytest.fixture
def sock_dir():
    d = Path(tempfile.mkdtemp(prefix="crot", dir="/tmp"))  # short: sun_path holds ~100 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _record(e: ev.Event) -> str:
    return json.dumps(e.to_record(), sort_keys=True, default=str)  # NaN renders as NaN: comparable


def test_every_event_of_a_replay_comes_back_as_itself():
    """Encoding is exact: class, Decimals, tuples, NaN and the nested decisions and gates."""
    seen = list(record_demo().events)  # every event of a real replay (shared, cached)
    kinds = {e.kind for e in seen}
    assert {"decisions", "positions", "stops", "account", "order", "fill", "trade", "status"} <= kinds
    for e in seen:
        back = decode(loads(dumps({"e": encode(e)}))["e"])
        assert type(back) is type(e)
        assert _record(back) == _record(e)
    d = next(e for e in seen if isinstance(e, ev.Decisions) and e.decisions)
    back = decode(loads(dumps({"e": encode(d)}))["e"])
    assert type(back.decisions[0].gates[0]).__name__ == "GateResult"
    assert repr(back.decisions[0].gates) == repr(d.decisions[0].gates)  # NaN != NaN: compare text


def test_a_line_cannot_name_an_arbitrary_class():
    with pytest.raises(WireError, match="unknown encoded type 'Popen'"):
        decode({"$t": "Popen", "args": ["sh"]})
    with pytest.raises(WireError, match="Account"):
        decode({"$t": "Account", "nonsense": 1})
    with pytest.raises(WireError, match="not a JSON line"):
        loads(b"{not json")
    with pytest.raises(WireError, match="object"):
        loads(b"[1, 2]")


async def _held_demo(steps: int = 3000) -> tuple[EngineHost, asyncio.Task]:
    return await held_demo(steps)


async def _stop(host: EngineHost, task: asyncio.Task) -> None:
    host.request_stop()
    await asyncio.wait_for(task, 30)


async def test_one_viewer_steers_the_others_watch_and_leaving_never_stops_the_bot(sock_dir):
    host, task, server = await served_demo(sock_dir / "demo.sock")
    try:
        assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600  # only its user may connect
        first = ControlClient(server.path, steer=True, name="first")
        hello = await first.connect()
        assert hello["mode"] == "demo" and hello["steer"] is True
        assert "BTC/USDT:USDT" in hello["symbols"] and hello["enabled"] == {"long": True, "short": True}
        second = ControlClient(server.path, steer=True, name="second")
        assert (await second.connect())["steer"] is False  # the helm is taken

        assert await first.request("toggle_profile", side="long") is False
        assert host.engine.flags.enabled["long"] is False  # reached the engine itself
        with pytest.raises(CommandRefused, match="first steers this bot"):
            await second.request("pause_entries", paused=True)
        assert host.engine.flags.paused is False
        assert await second.request("state") and await second.request("ping") == "pong"  # watching is free
        with pytest.raises(CommandRefused, match="not a traded symbol"):
            await first.request("manual", kind="close", symbol="NOPE/USDT:USDT")
        with pytest.raises(CommandRefused, match="unknown command"):
            await first.request("shutdown")
        with pytest.raises(CommandRefused, match="side 'both'"):
            await first.request("toggle_profile", side="both")

        await first.aclose()  # the steering viewer leaves: the helm is free, the bot goes on
        for _ in range(100):
            if await second.request("steer"):
                break
            await asyncio.sleep(0.01)
        assert await second.request("pause_entries", paused=True) is True
        assert host.engine.flags.paused is True
        await second.aclose()
        host.playback_paused = False
        before = host.done
        for _ in range(300):
            if host.done > before + 5:
                break
            await asyncio.sleep(0.01)
        assert host.running and host.done > before + 5 and not host.stop_requested
    finally:
        await server.aclose()
        await _stop(host, task)
    assert not server.path.exists()


async def test_a_late_viewer_gets_the_panes_then_the_live_stream(sock_dir):
    host, task, server = await served_demo(sock_dir / "s.sock")
    try:
        c = ControlClient(server.path, steer=False)
        await c.connect()
        got: list[ev.Event] = []

        async def read_until(kinds: set[str]) -> None:
            while not kinds <= {e.kind for e in got}:
                m = await c.next_message()
                if m is None:
                    return
                if m["t"] == "event":
                    got.append(c.event_of(m))

        # the bot is held between two candles: what arrives now is the snapshot of its panes
        await asyncio.wait_for(read_until({"decisions", "positions", "stops"}), 30)
        snapshot_kinds = {e.kind for e in got}
        assert {"decisions", "positions", "stops"} <= snapshot_kinds  # the pane state, at once
        # the newest status only: an older one would show flags that no longer hold
        assert len([e for e in got if isinstance(e, ev.EngineStatus)]) == 1
        assert await c.request("steer") is True
        await c.request("toggle_profile", side="short")
        status = None
        for _ in range(200):
            m = await asyncio.wait_for(c.next_message(), 5)
            if m and m["t"] == "event":
                e = c.event_of(m)
                if isinstance(e, ev.EngineStatus) and "short" not in e.enabled:
                    status = e
                    break
        assert status is not None  # the live stream carries the change
        assert await c.request("set_speed", speed=7) == 7.0
        assert host.speed == 7.0
        await c.aclose()
    finally:
        await server.aclose()
        await _stop(host, task)


async def test_socket_path_safety(sock_dir, monkeypatch):
    host, task = await _held_demo()
    try:
        path = sock_dir / "x.sock"
        path.write_text("not a socket")
        with pytest.raises(ControlError, match="exists and is not a socket"):
            await ControlServer(path, host, host.bus).start()
        path.unlink()
        one = ControlServer(path, host, host.bus)
        await one.start()
        with pytest.raises(ControlError, match="another bot already serves"):
            await ControlServer(path, host, host.bus).start()
        await one.aclose()
        with pytest.raises(ControlError, match="longer than"):
            ControlServer(sock_dir / ("x" * 120 + ".sock"), host, host.bus)
        # a socket file left by a crashed bot is replaced
        import socket as so
        stale = so.socket(so.AF_UNIX, so.SOCK_STREAM)
        stale.bind(str(path))
        stale.close()
        assert path.exists()
        again = ControlServer(path, host, host.bus)
        await again.start()
        c = ControlClient(path, steer=False)
        await c.connect()
        await c.aclose()
        # a peer of another user is refused by its credentials
        monkeypatch.setattr("engine.runtime.control.os.geteuid", lambda: os.getuid() + 1)
        with pytest.raises(ControlUnavailable):
            await ControlClient(path, steer=True).connect(timeout=2)
        assert again.refused == 1
        monkeypatch.undo()
        await again.aclose()
        with pytest.raises(ControlUnavailable, match="no such socket"):
            await ControlClient(path).connect()
    finally:
        await _stop(host, task)


async def test_a_bad_hello_is_refused_in_one_line(sock_dir):
    host, task = await _held_demo()
    server = ControlServer(sock_dir / "h.sock", host, host.bus)
    await server.start()
    try:
        r, w = await asyncio.open_unix_connection(str(server.path))
        w.write(b'{"op": "hello", "version": 99}\n')
        reply = json.loads(await asyncio.wait_for(r.readline(), 5))
        assert reply == {"t": "bye", "reason": "bad hello: expected a version 1 hello"}
        w.close()
        c = ControlClient(server.path)
        await c.connect()  # the server is still serving
        await c.aclose()
    finally:
        await server.aclose()
        await _stop(host, task)


async def test_the_bot_ending_tells_every_viewer_why(sock_dir):
    host, task = await _held_demo()
    server = ControlServer(sock_dir / "b.sock", host, host.bus)
    await server.start()
    c = ControlClient(server.path, steer=False)
    await c.connect()
    await server.aclose("the bot finished its run")
    msgs = []
    while (m := await asyncio.wait_for(c.next_message(), 15)) is not None:
        msgs.append(m)
    assert msgs[-1] == {"t": "bye", "reason": "the bot finished its run"}
    with pytest.raises(ControlUnavailable, match="not connected"):
        await c.request("ping")
    await c.aclose()
    await _stop(host, task)


def test_default_socket_sits_next_to_the_state_file(tmp_path):
    assert default_socket_path(tmp_path / "live.sqlite") == tmp_path / "live.sock"
