"""Coin inspector: every gate of the latest decision, long and short, with value, operator,
threshold and verdict, and the recent closes as a sparkline. Updates live."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Sparkline, Static, TabbedContent, TabPane

from .. import fmt
from ..messages import RejectionsChanged
from ..state import UiState
from ..widgets.base import KeyedTable, right, styled
from ..widgets.positions import short_symbol

COLUMNS = [
    ("gate", "gate", None),
    ("kind", "kind", 4),
    ("value", "value", None),
    ("op", "op", 2),
    ("threshold", "threshold", None),
    ("verdict", "verdict", 7),
    ("detail", "detail", None),
]


def verdict_cell(g: Any, colors: dict[str, str]) -> Text:
    if g.passed:
        return styled("pass", colors.get("profit", ""))
    if g.kind == "hard":
        return styled("BLOCK", f"bold {colors.get('loss', '')}")
    if g.kind == "penalty":
        return styled("penalty", colors.get("warn", ""))
    return styled("fail", colors.get("muted", ""))


def gate_rows(d: Any, colors: dict[str, str]) -> dict[str, tuple[Text, ...]]:
    """One table row per gate of a decision (name, kind, value, op, threshold, verdict, detail)."""
    rows = {}
    for g in (d.gates if d is not None else ()):
        kind_style = "" if g.kind == "hard" else colors.get("muted", "")
        rows[g.name] = (
            styled(g.name, "bold" if (not g.passed and g.kind == "hard") else ""),
            styled({"penalty": "pen"}.get(g.kind, g.kind), kind_style),
            right(fmt.gate_value(g.value)),
            styled(g.op or ""),
            right(fmt.gate_value(g.threshold)),
            verdict_cell(g, colors),
            styled(g.detail, colors.get("muted", "")),
        )
    return rows


def decision_summary(d: Any, selected: bool, colors: dict[str, str]) -> Text:
    t = Text()
    if d is None:
        t.append("no decision yet (indicators warming up, or no data for this coin)", style=colors.get("muted", ""))
        return t
    t.append(f"score {fmt.gate_value(d.score)} (raw {fmt.gate_value(d.raw_score)})  ")
    if selected:
        t.append("SELECTED for entry", style=f"bold {colors.get('profit', '')}")
    elif d.entry_valid:
        t.append("entry valid", style=colors.get("profit", ""))
    else:
        t.append(f"rejected by {d.first_rejection}", style=f"bold {colors.get('loss', '')}")
        if len(d.rejections) > 1:
            t.append(f" (+{len(d.rejections) - 1}: {', '.join(d.rejections[1:])})", style=colors.get("muted", ""))
    t.append(f"  signal {'valid' if d.valid else 'invalid'}, averaging {'ok' if d.add_valid else 'no'}",
             style=colors.get("muted", ""))
    return t


class InspectorScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("tab", "switch_side", "Long/short"),
        Binding("right_square_bracket", "step(1)", "Next coin", key_display="]"),
        Binding("left_square_bracket", "step(-1)", "Prev coin", key_display="["),
        Binding("c", "chart", "Chart"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
    ]
    LISTENS = (RejectionsChanged,)

    def __init__(self, symbol: str) -> None:
        super().__init__(id="inspector")
        self.symbol = symbol

    def compose(self) -> ComposeResult:
        yield Static(id="inspector-title")
        with Horizontal(id="inspector-chart"):
            yield Sparkline([], id="inspector-spark")
            yield Static(id="inspector-range")
        with TabbedContent(id="inspector-sides"):
            for side in ("long", "short"):
                with TabPane(side.capitalize(), id=f"side-{side}"):
                    yield Static(id=f"summary-{side}", classes="decision-summary")
                    yield KeyedTable(COLUMNS, id=f"gates-{side}")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.listen(self)  # type: ignore[attr-defined]
        self.update_state(self.app.state)  # type: ignore[attr-defined]
        self.query_one("#gates-long", KeyedTable).focus()

    def on_unmount(self) -> None:
        self.app.unlisten(self)  # type: ignore[attr-defined]

    def on_rejections_changed(self, message: RejectionsChanged) -> None:
        self.update_state(message.state)

    def update_state(self, state: UiState) -> None:
        colors = getattr(self.app, "tones", {})
        closes = [c for _, c in state.closes.get(self.symbol, ())]
        title = Text()
        title.append(f" {short_symbol(self.symbol)} ", style="bold reverse")
        if closes:
            title.append(f"  close {fmt.price(closes[-1])}")
            last_ts = state.closes[self.symbol][-1][0]
            title.append(f"  candle {fmt.ts(last_ts)} UTC", style=colors.get("muted", ""))
        for side in ("long", "short"):
            d = state.decision(self.symbol, side)
            title.append(f"  {side}: ")
            if d is None:
                title.append("-", style=colors.get("muted", ""))
            elif d.entry_valid:
                title.append("valid", style=colors.get("profit", ""))
            else:
                title.append(d.first_rejection or "rejected", style=colors.get("loss", ""))
        self.query_one("#inspector-title", Static).update(title)
        self.query_one("#inspector-spark", Sparkline).data = closes
        rng = Text(no_wrap=True)
        if closes:
            rng.append(f"hi {fmt.price(max(closes))}\nlo {fmt.price(min(closes))}\n{len(closes)} closes",
                       style=colors.get("muted", ""))
        else:
            rng.append("no closes yet", style=colors.get("muted", ""))
        self.query_one("#inspector-range", Static).update(rng)
        for side in ("long", "short"):
            d = state.decision(self.symbol, side)
            selected = self.symbol in state.selected(side)
            self.query_one(f"#summary-{side}", Static).update(decision_summary(d, selected, colors))
            self.query_one(f"#gates-{side}", KeyedTable).sync(gate_rows(d, colors))

    def action_switch_side(self) -> None:
        tabs = self.query_one(TabbedContent)
        side = "short" if tabs.active == "side-long" else "long"
        tabs.active = f"side-{side}"
        self.query_one(f"#gates-{side}", KeyedTable).focus()

    def action_chart(self) -> None:
        from .chart import open_chart

        open_chart(self.app, self.symbol)

    def action_step(self, delta: int) -> None:
        symbol = self.app.state.next_symbol(self.symbol, delta)  # type: ignore[attr-defined]
        if symbol is None:
            return
        self.symbol = symbol
        self.update_state(self.app.state)  # type: ignore[attr-defined]
