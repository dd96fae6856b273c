"""Shared helpers of the TUI and control-socket tests: an app fed by a recording, waiting for
it to settle, and a real demo engine held between two candles."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from crot_tui.app import CrotApp
from crot_tui.host import EngineHost
from crot_tui.testing import fast_settings, feed_runner, write_env


async def held_demo(steps: int = 3000, before: Any = None) -> tuple[EngineHost, asyncio.Task]:
    """A real demo engine, warm (both profiles have decided) and held between two candles.
    `before(host)` (async) runs before the engine starts: a control server started there sees
    every event, as `crot run` starts its server before the engine."""
    host = EngineHost(fast_settings(), mode="demo", speed=0, max_steps=steps)
    if before is not None:
        await before(host)
    decided: set[str] = set()
    host.bus.subscribe(lambda e: decided.add(e.profile) if e.kind == "decisions" and e.decisions else None)
    task = asyncio.create_task(host.run())
    for _ in range(12000):  # a loaded CI machine warms up slowly
        if host.attached and host.done >= 5 and decided >= {"long", "short"}:
            break
        await asyncio.sleep(0.01)
    assert decided >= {"long", "short"}, f"the demo did not warm up: {host.done} steps"
    host.playback_paused = True
    return host, task


async def served_demo(path: Path, steps: int = 3000) -> tuple[EngineHost, asyncio.Task, Any]:
    """`held_demo` with a control server at `path` that was serving before the engine started
    (a server started after the hold would see no pane state: its snapshot is what it saw)."""
    from engine.runtime.control import ControlServer

    servers: list[Any] = []

    async def serve(host: EngineHost) -> None:
        server = ControlServer(path, host, host.bus)
        await server.start()
        servers.append(server)

    host, task = await held_demo(steps, before=serve)
    return host, task, servers[0]


def feed_app(recording: Any, tmp_path: Path, *, env: str = "", cls: type[CrotApp] = CrotApp,
             show_summary: bool = False) -> CrotApp:
    """An app whose engine is the recorded event stream (no timing, no strategy)."""
    host = EngineHost(fast_settings(), mode="demo", runner=feed_runner(recording))
    return cls(host, env_path=write_env(tmp_path / ".env", env), show_summary=show_summary)


async def publish(pilot: Any, *events: Any) -> None:
    """Publish events on the app's bus and let every pane show them."""
    app = pilot.app
    for e in events:
        app.host.bus.publish(e)
    app.drain_now()
    app.flush()
    await pilot.pause()


async def settle(pilot: Any, timeout: float = 60.0) -> None:
    """Wait for the engine run to end and every pane to show the final state."""
    app = pilot.app
    await asyncio.wait_for(app.engine_done.wait(), timeout)
    for _ in range(3):
        await pilot.pause()
    app.drain_now()
    app.flush()
    await pilot.pause()
