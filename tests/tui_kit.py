"""Shared helpers of the TUI and control-socket tests: an app fed by a recording, waiting for
it to settle, and a real demo engine held between two candles."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from crot_tui.app import CrotApp
from crot_tui.host import EngineHost
from crot_tui.testing import fast_settings, feed_runner, write_env


async def held_demo(steps: int = 3000) -> tuple[EngineHost, asyncio.Task]:
    """A real demo engine, warm (both profiles have decided) and held between two candles."""
    host = EngineHost(fast_settings(), mode="demo", speed=0, max_steps=steps)
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


def feed_app(recording: Any, tmp_path: Path, *, env: str = "", cls: type[CrotApp] = CrotApp,
             show_summary: bool = False) -> CrotApp:
    """An app whose engine is the recorded event stream (no timing, no strategy)."""
    host = EngineHost(fast_settings(), mode="demo", runner=feed_runner(recording))
    return cls(host, env_path=write_env(tmp_path / ".env", env), show_summary=show_summary)


async def settle(pilot: Any, timeout: float = 60.0) -> None:
    """Wait for the engine run to end and every pane to show the final state."""
    app = pilot.app
    await asyncio.wait_for(app.engine_done.wait(), timeout)
    for _ in range(3):
        await pilot.pause()
    app.drain_now()
    app.flush()
    await pilot.pause()
