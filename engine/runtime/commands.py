"""The small command surface the UI and the CLI use: profile switches and the entry pause.

Commands only flip flags the next cycle reads (a switched-off profile opens nothing new but
keeps protecting and exiting its positions) and announce the change as an EngineStatus event.
The flags are stored with the state at once (and again by the next step if that write could
not run), so a restart comes back with the same switches.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from .events import EngineStatus, EventBus

log = logging.getLogger("crot.engine")


@dataclass
class EngineFlags:
    enabled: dict[str, bool] = field(default_factory=lambda: {"long": True, "short": True})
    paused: bool = False


class EngineCommands:
    bus: EventBus
    flags: EngineFlags
    mode: str
    store: Any
    _controls_dirty: bool = False

    def set_profile(self, side: str, enabled: bool) -> None:
        self.flags.enabled[side] = enabled
        self._controls_changed()
        self._status(f"{side} profile {'on' if enabled else 'off'}")

    def toggle_profile(self, side: str) -> bool:
        self.set_profile(side, not self.flags.enabled[side])
        return self.flags.enabled[side]

    def pause_entries(self, paused: bool) -> None:
        self.flags.paused = paused
        self._controls_changed()
        self._status("new entries paused" if paused else "new entries resumed")

    def _controls_changed(self) -> None:
        self._controls_dirty = True
        try:
            asyncio.get_running_loop().create_task(self.save_controls())
        except RuntimeError:  # no loop (a synchronous caller): the next step stores them
            pass

    async def save_controls(self) -> None:
        """Store the switches if they changed since the last write; never raises."""
        if not self._controls_dirty or getattr(self, "store", None) is None:
            return
        self._controls_dirty = False
        try:
            await self.store.save_controls(dict(self.flags.enabled), self.flags.paused,
                                           sorted(getattr(self, "frozen", ())))
        except Exception as exc:
            self._controls_dirty = True  # tried again by the next step
            log.error("the profile switches and the pause could not be stored: %s", exc)

    def _status(self, message: str, progress: float | None = None, now_ms: int = 0) -> None:
        enabled = tuple(s for s, on in self.flags.enabled.items() if on)
        self.bus.publish(EngineStatus(now_ms, self.mode, enabled, self.flags.paused, message, progress))
