"""The small command surface the UI and the CLI use: profile switches and the entry pause.

Commands only flip flags the next cycle reads (a switched-off profile opens nothing new but
keeps protecting and exiting its positions) and announce the change as an EngineStatus event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .events import EngineStatus, EventBus


@dataclass
class EngineFlags:
    enabled: dict[str, bool] = field(default_factory=lambda: {"long": True, "short": True})
    paused: bool = False


class EngineCommands:
    bus: EventBus
    flags: EngineFlags
    mode: str

    def set_profile(self, side: str, enabled: bool) -> None:
        self.flags.enabled[side] = enabled
        self._status(f"{side} profile {'on' if enabled else 'off'}")

    def toggle_profile(self, side: str) -> bool:
        self.set_profile(side, not self.flags.enabled[side])
        return self.flags.enabled[side]

    def pause_entries(self, paused: bool) -> None:
        self.flags.paused = paused
        self._status("new entries paused" if paused else "new entries resumed")

    def _status(self, message: str, progress: float | None = None, now_ms: int = 0) -> None:
        enabled = tuple(s for s, on in self.flags.enabled.items() if on)
        self.bus.publish(EngineStatus(now_ms, self.mode, enabled, self.flags.paused, message, progress))
