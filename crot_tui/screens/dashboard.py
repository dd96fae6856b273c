"""The dashboard: every pane at once on a large terminal, one pane at a time (tabs) on a small
one (80x24). Number keys and Tab switch panes; l/s/p send commands to the engine."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import DescendantFocus, Resize
from textual.screen import Screen
from textual.widgets import Footer, Tab, Tabs

from ..messages import InspectCoin
from ..widgets import (EquityPane, EventLogPane, PositionsPane, PremiumPane, RegimePane, RejectionsPane,
                       StatusBar, StopsPane)
from ..widgets.base import KeyedTable, Pane

#: (pane id, tab label); the order is the number keys' order
PANES = [
    ("positions", "1 Positions"),
    ("stops", "2 Stops"),
    ("rejections", "3 Gates"),
    ("equity", "4 Account"),
    ("regime", "5 Regime"),
    ("premium", "6 Premium"),
    ("log", "7 Log"),
]
#: below this size one pane at a time; at 120 columns side by side every key column still fits
#: (tests/test_tui_layout.py), narrower the right column would cut Stops' and Premium's status
COMPACT_WIDTH = 120
COMPACT_HEIGHT = 32
#: from this width on the right column is wide enough for every column of Stops and Premium
WIDE_WIDTH = 150


class PaneTabs(Tabs, can_focus=False):
    """Tab headers for the compact layout; driven by keys, never focused."""


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("l", "toggle_long", "Long", tooltip="Toggle new long entries"),
        Binding("s", "toggle_short", "Short", tooltip="Toggle new short entries"),
        Binding("p", "pause", "Pause", tooltip="Pause / resume new entries (exits keep running)"),
        Binding("e", "app.settings", "Settings"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("slash", "app.command_palette", "Search", key_display="/"),
        Binding("q", "app.quit", "Quit"),
        Binding("i", "inspect", "Inspect coin", show=False),
        Binding("c", "chart", "Chart", tooltip="Price chart of the selected position or coin"),
        Binding("h", "trades", "Trades", tooltip="Closed trades: filter, sort, Enter for the detail"),
        Binding("enter", "position_detail", "Position detail", show=False, priority=True),
        Binding("tab", "next_pane", "Next pane", show=False),
        Binding("shift+tab", "previous_pane", "Previous pane", show=False),
        Binding("space", "playback", "Pause demo playback", show=False),
        Binding("plus,equals_sign", "faster", "Faster demo", show=False),
        Binding("minus", "slower", "Slower demo", show=False),
        Binding("t", "app.next_theme", "Next theme", show=False),
        *[Binding(str(n), f"show_pane('{pid}')", label, show=False) for n, (pid, label) in enumerate(PANES, 1)],
    ]

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.active = PANES[0][0]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield PaneTabs(*[Tab(label, id=f"tab-{pid}") for pid, label in PANES], id="pane-tabs")
        with Horizontal(id="panes"):
            with Vertical(id="left", classes="column"):
                yield PositionsPane(id="positions")
                yield RejectionsPane(id="rejections")
                yield EventLogPane(id="log")
            with Vertical(id="right", classes="column"):
                yield EquityPane(id="equity")
                yield StopsPane(id="stops")
                yield RegimePane(id="regime")
                yield PremiumPane(id="premium")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._layout()
        self.show_pane(self.active)

    def on_resize(self, event: Resize) -> None:
        self._layout()

    def _layout(self) -> None:
        w, h = self.app.size
        compact = w < COMPACT_WIDTH or h < COMPACT_HEIGHT
        self.set_class(compact, "-compact")
        self.set_class(not compact and w >= WIDE_WIDTH, "-wide")

    @property
    def compact(self) -> bool:
        return self.has_class("-compact")

    # -- panes ------------------------------------------------------------------------------
    def pane(self, pid: str) -> Pane:
        return self.query_one(f"#{pid}", Pane)

    def _mark_active(self, pid: str) -> None:
        self.active = pid
        for p, _ in PANES:
            self.pane(p).set_class(p == pid, "-active")
        column = self.pane(pid).parent
        for col in self.query(".column"):
            col.set_class(col is column, "-active")
        tabs = self.query_one(PaneTabs)
        if tabs.active != f"tab-{pid}":
            tabs.active = f"tab-{pid}"

    def action_show_pane(self, pid: str) -> None:
        self.show_pane(pid)

    def show_pane(self, pid: str) -> None:
        self._mark_active(pid)
        self.pane(pid).focus_main()

    def _step_pane(self, delta: int) -> None:
        ids = [p for p, _ in PANES]
        self.show_pane(ids[(ids.index(self.active) + delta) % len(ids)])

    def action_next_pane(self) -> None:
        self._step_pane(1)

    def action_previous_pane(self) -> None:
        self._step_pane(-1)

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tab is not None and event.tab.id:
            pid = event.tab.id.removeprefix("tab-")
            if pid != self.active:
                self.show_pane(pid)

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        node = event.widget
        while node is not None and not isinstance(node, Pane):
            node = node.parent  # type: ignore[assignment]
        if isinstance(node, Pane) and node.id and node.id != self.active:
            self._mark_active(node.id)

    # -- commands ---------------------------------------------------------------------------
    def action_toggle_long(self) -> None:
        self.app.toggle_profile("long")  # type: ignore[attr-defined]

    def action_toggle_short(self) -> None:
        self.app.toggle_profile("short")  # type: ignore[attr-defined]

    def action_pause(self) -> None:
        self.app.toggle_pause()  # type: ignore[attr-defined]

    def action_playback(self) -> None:
        self.app.toggle_playback()  # type: ignore[attr-defined]

    def action_faster(self) -> None:
        self.app.change_speed(2.0)  # type: ignore[attr-defined]

    def action_slower(self) -> None:
        self.app.change_speed(0.5)  # type: ignore[attr-defined]

    def action_trades(self) -> None:
        from .trades import open_trades

        open_trades(self.app)

    def action_position_detail(self) -> None:
        """Enter on a position: its orders, fills, stops and entry decision (elsewhere Enter
        does what the focused widget does)."""
        from textual.actions import SkipAction

        focused = self.focused
        if not isinstance(focused, KeyedTable) or focused.id != "positions-table":
            raise SkipAction()
        key = focused.current_key()
        if key is None or ":" not in key:
            raise SkipAction()
        side, symbol = key.split(":", 1)
        profile = next((p.profile for p in self.app.state.all_positions()  # type: ignore[attr-defined]
                        if p.side == side and p.symbol == symbol), side)
        from .detail import open_detail

        open_detail(self.app, profile, symbol)

    def action_chart(self) -> None:
        """The price chart of the focused position's or coin's symbol (else the first coin)."""
        symbol = None
        focused = self.focused
        if isinstance(focused, KeyedTable):
            key = focused.current_key()
            if key and focused.id == "positions-table" and ":" in key:
                symbol = key.split(":", 1)[1]
            elif key and focused.id == "rejections-table":
                symbol = key
        symbols = sorted(self.app.state.symbols)  # type: ignore[attr-defined]
        symbol = symbol or (symbols[0] if symbols else None)
        if symbol is None:
            self.notify("no coin to chart yet (the indicators are still warming up)", severity="warning")
            return
        from .chart import open_chart

        open_chart(self.app, symbol)

    def action_inspect(self) -> None:
        table = self.query_one("#rejections-table", KeyedTable)
        symbol = table.current_key()
        if symbol is None:
            self.notify("no coin to inspect yet (the indicators are still warming up)", severity="warning")
            return
        self.app.inspect(symbol)  # type: ignore[attr-defined]

    def on_inspect_coin(self, message: InspectCoin) -> None:
        message.stop()
        self.app.inspect(message.symbol)  # type: ignore[attr-defined]
