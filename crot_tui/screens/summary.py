"""The demo's end: the replay summary (same figures as `crot replay`)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .. import fmt


def summary_renderable(s: Any) -> Group:
    t = Table(title="Replay summary", show_header=False, title_style="bold", expand=True)
    t.add_column(style="bold", no_wrap=True)
    t.add_column()
    t.add_row("period", f"{fmt.ts(s.start_ms)} .. {fmt.ts(s.end_ms)} UTC ({s.steps} candles)")
    t.add_row("symbols", ", ".join(sym.split(':')[0] for sym in s.symbols))
    t.add_row("trades", f"{s.trades} ({s.wins} won)")
    t.add_row("equity", f"{s.start_equity:.2f} -> {s.end_equity:.2f}")
    pct = float(s.pnl / s.start_equity * 100) if s.start_equity else 0.0
    t.add_row("PnL", f"{s.pnl:+.2f} ({pct:+.2f}%)")
    t.add_row("max drawdown", f"{s.max_drawdown * 100:.2f}%")
    t.add_row("fees", f"{s.fees:.4f}")
    t.add_row("funding", f"{s.funding:+.4f} ({s.funding_events} settlements, in the PnL; - = paid)")
    parts: list[Any] = [t]
    if s.rejections:
        r = Table(title="First failing gate (symbol x candle)", title_style="bold", min_width=40)
        r.add_column("gate")
        r.add_column("count", justify="right")
        for name, count in list(s.rejections.items())[:8]:
            r.add_row(name, str(count))
        parts.append(r)
    return Group(*parts)


class SummaryScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "app.pop_screen", "Close")]

    def __init__(self, summary: Any) -> None:
        super().__init__(id="summary")
        self.summary = summary

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="summary-box"):
            yield Static(summary_renderable(self.summary), id="summary-text")
            yield Static("The demo has ended: the dashboard keeps its final state.  esc: close",
                         id="summary-hint")

    def on_mount(self) -> None:
        self.query_one("#summary-box").border_title = "Demo finished"
        self.query_one("#summary-box").focus()
