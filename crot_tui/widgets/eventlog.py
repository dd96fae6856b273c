"""The event log: orders, stops, trades, regime changes, repairs, errors, status."""

from __future__ import annotations

import logging

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import RichLog

from .. import fmt
from ..logsink import LogLine
from ..messages import LogAppended
from ..state import UiState
from .base import Pane

MAX_LINES = 500


class EventLogPane(Pane):
    TITLE = "Event log"
    KEY = "7"
    LISTENS = (LogAppended,)

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self._seen = 0
        self._caught_up = False
        self._last_seq = 0  # never write a line twice (catch-up and a pending message overlap)

    def compose(self) -> ComposeResult:
        yield RichLog(max_lines=MAX_LINES, wrap=False, markup=False, highlight=False, id="event-log")

    def update_state(self, state: UiState) -> None:
        if not self._caught_up:  # first show: what happened before this pane existed
            self._caught_up = True
            self.write(list(state.log))

    def on_log_appended(self, message: LogAppended) -> None:
        self.write(message.lines)

    def write(self, lines: list[LogLine]) -> None:
        log = self.query_one(RichLog)
        colors = getattr(self.app, "tones", {})
        style = {logging.WARNING: colors.get("warn", ""), logging.ERROR: f"bold {colors.get('loss', '')}"}
        for line in lines[-MAX_LINES:]:
            if line.seq and line.seq <= self._last_seq:
                continue
            self._last_seq = max(self._last_seq, line.seq)
            t = Text(no_wrap=True, overflow="ellipsis")
            stamp = fmt.ts(line.ts_ms, date=False)
            if stamp:
                t.append(stamp + " ", style=colors.get("muted", ""))
            t.append(line.text, style=style.get(line.level, ""))
            log.write(t)
            self._seen += 1
        self.border_subtitle = f"{self._seen} events"
