"""The event log: orders, stops, trades, regime changes, repairs, errors, status.

It keeps the last `MAX_LINES` lines (the UI state keeps as many). `/` (with the log focused)
opens a filter line at the bottom of the pane: words that must all appear (case-insensitive),
`kind:order,stop` to keep some kinds of event, `level:warn` (or `level:error`) for a minimum
level, and a leading `-` to drop the lines that contain a word. `w` cycles the minimum level
(all, warnings and errors, errors). Esc in the filter line clears it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, RichLog

from .. import fmt
from ..logsink import LogLine
from ..messages import LogAppended
from ..state import LOG_LIMIT, UiState
from .base import Pane

MAX_LINES = LOG_LIMIT

LEVELS = {"all": 0, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
          "error": logging.ERROR, "err": logging.ERROR}
LEVEL_CYCLE = (0, logging.WARNING, logging.ERROR)
LEVEL_NAMES = {0: "all", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error"}
#: short names a user may type for an event kind (the log line's first word)
KIND_ALIASES = {"orders": "order", "fills": "fill", "stops": "stop", "trades": "trade", "protect": "protection",
                "errors": "error", "repairs": "repair"}


@dataclass(frozen=True)
class LogFilter:
    """What a line must match to be shown."""

    words: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()
    min_level: int = 0

    @classmethod
    def parse(cls, text: str, min_level: int = 0) -> LogFilter:
        words: list[str] = []
        excluded: list[str] = []
        kinds: set[str] = set()
        level = min_level
        for token in text.split():
            low = token.lower()
            if low.startswith("kind:"):
                kinds |= {KIND_ALIASES.get(k, k) for k in low[5:].split(",") if k}
            elif low.startswith("level:") and low[6:] in LEVELS:
                level = max(level, LEVELS[low[6:]])
            elif low.startswith("-") and len(low) > 1:
                excluded.append(low[1:])
            else:
                words.append(low)
        return cls(tuple(words), tuple(excluded), frozenset(kinds), level)

    @property
    def active(self) -> bool:
        return bool(self.words or self.excluded or self.kinds or self.min_level)

    def matches(self, line: LogLine) -> bool:
        if line.level < self.min_level:
            return False
        if self.kinds and line.kind not in self.kinds:
            return False
        if not (self.words or self.excluded):
            return True
        text = line.text.lower()
        return all(w in text for w in self.words) and not any(w in text for w in self.excluded)

    def describe(self) -> str:
        parts = [*self.words, *(f"-{w}" for w in self.excluded)]
        if self.kinds:
            parts.append("kind:" + ",".join(sorted(self.kinds)))
        if self.min_level:
            parts.append(f"level:{LEVEL_NAMES.get(self.min_level, self.min_level)}")
        return " ".join(parts)


def filter_lines(lines: Iterable[LogLine], flt: LogFilter) -> list[LogLine]:
    return [ln for ln in lines if flt.matches(ln)]


class FilterInput(Input):
    """The log's filter line: Esc clears it and goes back to the log."""

    BINDINGS = [Binding("escape", "clear", "Clear filter")]

    def action_clear(self) -> None:
        pane = next((a for a in self.ancestors if isinstance(a, EventLogPane)), None)
        if pane is not None:
            pane.clear_filter()


class EventLogPane(Pane):
    TITLE = "Event log"
    KEY = "7"
    LISTENS = (LogAppended,)
    BINDINGS = [
        Binding("slash", "open_filter", "Filter log", key_display="/"),
        Binding("w", "cycle_level", "Log level", show=False),
    ]
    DEFAULT_CSS = """
    EventLogPane #log-filter {
        display: none;
        height: 1;
        border: none;
        padding: 0 1;
    }
    EventLogPane.-filtering #log-filter {
        display: block;
    }
    """

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self._seen = 0
        self._shown = 0
        self._caught_up = False
        self._last_seq = 0  # never write a line twice (catch-up and a pending message overlap)
        self._min_level = 0
        self.filter = LogFilter()

    def compose(self) -> ComposeResult:
        yield RichLog(max_lines=MAX_LINES, wrap=False, markup=False, highlight=False, id="event-log")
        yield FilterInput(placeholder="filter: words, -word, kind:order,stop, level:warn (esc clears)",
                    id="log-filter", select_on_focus=False)

    def focus_main(self) -> None:
        self.query_one(RichLog).focus()

    def update_state(self, state: UiState) -> None:
        if not self._caught_up:  # first show: what happened before this pane existed
            self._caught_up = True
            self._seen += len(state.log)
            self.rewrite()

    def on_log_appended(self, message: LogAppended) -> None:
        self.write(message.lines)

    # -- filtering ----------------------------------------------------------------------------
    def action_open_filter(self) -> None:
        self.add_class("-filtering")
        self.query_one("#log-filter", Input).focus()

    def action_cycle_level(self) -> None:
        i = LEVEL_CYCLE.index(self._min_level) if self._min_level in LEVEL_CYCLE else 0
        self._min_level = LEVEL_CYCLE[(i + 1) % len(LEVEL_CYCLE)]
        self.set_filter(self.query_one("#log-filter", Input).value)
        self.set_class(self.filter.active, "-filtering")  # the subtitle says the level

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "log-filter":
            event.stop()
            self.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "log-filter":
            event.stop()
            self.query_one(RichLog).focus()
            if not self.filter.active:
                self.remove_class("-filtering")

    def clear_filter(self) -> None:
        self._min_level = 0
        box = self.query_one("#log-filter", Input)
        with box.prevent(Input.Changed):
            box.value = ""
        self.set_filter("")
        self.remove_class("-filtering")
        self.query_one(RichLog).focus()

    def set_filter(self, text: str) -> None:
        """Show only the kept lines that match `text` (see the module doc)."""
        new = LogFilter.parse(text, self._min_level)
        if new == self.filter:
            return
        self.filter = new
        self.rewrite()

    def history_added(self, n: int) -> None:
        """`n` lines from the audit trail were put before the others (UiState.add_log_history)."""
        if not self._caught_up:
            return  # the first show writes them with the rest
        self._seen += n
        self.rewrite()

    def rewrite(self) -> None:
        log = self.query_one(RichLog)
        log.clear()
        self._shown = 0
        state: UiState | None = getattr(self.app, "state", None)
        lines = list(state.log) if state is not None else []
        self._last_seq = 0
        self.write(lines, count=False)

    # -- writing ------------------------------------------------------------------------------
    def write(self, lines: list[LogLine], *, count: bool = True) -> None:
        log = self.query_one(RichLog)
        colors = getattr(self.app, "tones", {})
        style = {logging.WARNING: colors.get("warn", ""), logging.ERROR: f"bold {colors.get('loss', '')}"}
        flt = self.filter
        for line in lines[-MAX_LINES:]:
            if line.seq > 0 and line.seq <= self._last_seq:  # history lines (seq < 0) come by rewrite
                continue
            self._last_seq = max(self._last_seq, line.seq)
            if count:
                self._seen += 1
            if not flt.matches(line):
                continue
            t = Text(no_wrap=True, overflow="ellipsis")
            stamp = fmt.ts(line.ts_ms, date=False)
            if stamp:
                t.append(stamp + " ", style=colors.get("muted", ""))
            t.append(line.text, style=style.get(line.level, ""))
            log.write(t)
            self._shown += 1
        if flt.active:
            self.border_subtitle = f"{min(self._shown, MAX_LINES)} of {self._seen} events · {escape(flt.describe())}"
        else:
            self.border_subtitle = f"{self._seen} events"
