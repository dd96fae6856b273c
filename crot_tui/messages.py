"""Textual messages that carry engine state to the panes.

The app's drain task reads the engine's event bus, folds bursts into `UiState` and, at most
`REFRESH_HZ` times per second, posts one message per changed pane to the widgets that listen
for it. The messages carry the shared `UiState` (the newest state when handled, never a stale
copy); `LogAppended` carries the new log lines themselves.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from .logsink import LogLine
from .state import UiState


class StateMessage(Message, bubble=False):
    """Base: a pane's part of the UI state changed."""

    pane = ""

    def __init__(self, state: UiState) -> None:
        super().__init__()
        self.state = state


class StatusChanged(StateMessage):
    pane = "status"


class PositionsChanged(StateMessage):
    pane = "positions"


class StopsChanged(StateMessage):
    pane = "stops"


class RejectionsChanged(StateMessage):
    """New decisions (gates of every coin); the inspector listens too."""

    pane = "rejections"


class RegimeChanged(StateMessage):
    pane = "regime"


class PremiumChanged(StateMessage):
    pane = "premium"


class AccountChanged(StateMessage):
    pane = "account"


class LogAppended(StateMessage):
    pane = "log"

    def __init__(self, state: UiState, lines: list[LogLine]) -> None:
        super().__init__(state)
        self.lines = lines


PANE_MESSAGES: dict[str, type[StateMessage]] = {
    m.pane: m for m in (StatusChanged, PositionsChanged, StopsChanged, RejectionsChanged, RegimeChanged,
                        PremiumChanged, AccountChanged)
}


class EngineFinished(Message):
    """The engine run ended (a demo reached its end, a stop was requested, or it failed)."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


class InspectCoin(Message):
    """A pane asks to open the coin inspector."""

    def __init__(self, symbol: str) -> None:
        super().__init__()
        self.symbol = symbol
