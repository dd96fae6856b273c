"""Shared helpers of the TUI tests: an app fed by a recording, and waiting for it to settle."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from crot_tui.app import CrotApp
from crot_tui.host import EngineHost
from crot_tui.testing import fast_settings, feed_runner, write_env


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
