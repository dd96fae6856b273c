"""A price chart of one coin: the closes the engine decided on with the trigger EMAs, the fills
of its positions marked (buys ^, sells v), and each open position's entry price and resting
stop drawn as lines.

Drawn with plotext through textual-plotext (a kept terminal plotting library, rather than our
own braille drawing). The source is the events the app received (`UiState.bars`, the fills of
`UiState.episodes` / `UiState.closed`), so the chart is the same in a viewer attached to a bot
in another process; its history starts when the app started and keeps the last
`CHART_POINTS` candles. Updates live; `[` / `]` step through the coins.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from .. import fmt
from ..messages import PositionsChanged, RejectionsChanged, StopsChanged
from ..state import UiState
from ..widgets.positions import short_symbol

BUY, SELL = "^", "v"


def chart_data(state: UiState, symbol: str) -> dict[str, Any]:
    """What the chart draws, as plain numbers (x in hours relative to the newest candle):
    closes, EMA fast/slow, buy and sell fills inside the window, and per open position its
    entry price and stop trigger."""
    bars = list(state.bars.get(symbol, ()))
    out: dict[str, Any] = {"symbol": symbol, "bars": len(bars), "last_ts": bars[-1][0] if bars else None,
                           "x": [], "close": [], "fast": [], "slow": [], "buys": ([], []), "sells": ([], []),
                           "levels": []}
    if not bars:
        return out
    last = bars[-1][0]

    def hours(ts: int) -> float:
        return round((ts - last) / 3_600_000, 4)

    out["x"] = [hours(b[0]) for b in bars]
    out["close"] = [b[1] for b in bars]
    out["fast"] = [b[2] for b in bars]
    out["slow"] = [b[3] for b in bars]
    first = bars[0][0]
    for f in state.fills_of(symbol):
        if f.ts_ms < first:
            continue
        xs, ys = out["buys"] if f.side == "buy" else out["sells"]
        xs.append(min(hours(f.ts_ms), 0.0))
        ys.append(float(f.price))
    for p in state.all_positions():
        if p.symbol != symbol:
            continue
        out["levels"].append((f"{p.side} entry", float(p.entry_price)))
        trigger = state.stop_trigger(p.profile, symbol)
        if trigger is None and p.stop_price is not None:
            trigger = p.stop_price
        if trigger is not None:
            out["levels"].append((f"{p.side} stop", float(trigger)))
    return out


class ChartScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("right_square_bracket", "step(1)", "Next coin", key_display="]"),
        Binding("left_square_bracket", "step(-1)", "Prev coin", key_display="["),
        Binding("question_mark", "app.help", "Help", key_display="?"),
    ]
    LISTENS = (RejectionsChanged, PositionsChanged, StopsChanged)
    DEFAULT_CSS = """
    ChartScreen #chart-title { height: 1; }
    ChartScreen #chart-plot { height: 1fr; }
    ChartScreen #chart-legend { height: auto; max-height: 3; }
    """

    def __init__(self, symbol: str) -> None:
        super().__init__(id="chart")
        self.symbol = symbol

    def compose(self) -> ComposeResult:
        yield Static(id="chart-title")
        yield PlotextPlot(id="chart-plot")
        yield Static(id="chart-legend")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.listen(self)  # type: ignore[attr-defined]
        self.update_state(self.app.state)  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        self.app.unlisten(self)  # type: ignore[attr-defined]

    def on_rejections_changed(self, message: RejectionsChanged) -> None:
        self.update_state(message.state)

    def on_positions_changed(self, message: PositionsChanged) -> None:
        self.update_state(message.state)

    def on_stops_changed(self, message: StopsChanged) -> None:
        self.update_state(message.state)

    def update_state(self, state: UiState) -> None:
        colors = getattr(self.app, "tones", {})
        data = chart_data(state, self.symbol)
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f" {short_symbol(self.symbol)} ", style="bold reverse")
        if data["close"]:
            title.append(f"  close {fmt.price(data['close'][-1])}")
            title.append(f"  {data['bars']} candles to {fmt.ts(data['last_ts'])} UTC", style=colors.get("muted", ""))
        self.query_one("#chart-title", Static).update(title)
        plot = self.query_one("#chart-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        if not data["close"]:
            plt.title("no closes yet (the indicators are warming up, or the coin has no data)")
        else:
            plt.plot(data["x"], data["close"], label="close", color="white", marker="braille")
            plt.plot(data["x"], data["fast"], label="EMA fast", color="cyan", marker="braille")
            plt.plot(data["x"], data["slow"], label="EMA slow", color="magenta", marker="braille")
            if data["buys"][0]:
                plt.scatter(*data["buys"], label="buy", color="green", marker=BUY)
            if data["sells"][0]:
                plt.scatter(*data["sells"], label="sell", color="red", marker=SELL)
            for name, y in data["levels"]:
                plt.hline(y, "red" if name.endswith("stop") else "yellow")
            plt.xlabel("hours before the newest candle")
        plot.refresh()
        legend = Text(no_wrap=False)
        if data["levels"]:
            legend.append("  ".join(f"{name} {fmt.price(y)}" for name, y in data["levels"]))
        else:
            legend.append("no open position", style=colors.get("muted", ""))
        n_buy, n_sell = len(data["buys"][0]), len(data["sells"][0])
        legend.append(f"   fills: {n_buy} buy {BUY}, {n_sell} sell {SELL}", style=colors.get("muted", ""))
        self.query_one("#chart-legend", Static).update(legend)

    def action_step(self, delta: int) -> None:
        symbol = self.app.state.next_symbol(self.symbol, delta)  # type: ignore[attr-defined]
        if symbol is not None:
            self.symbol = symbol
            self.update_state(self.app.state)  # type: ignore[attr-defined]


def open_chart(app: Any, symbol: str) -> None:
    if isinstance(app.screen, ChartScreen):
        app.screen.symbol = symbol
        app.screen.update_state(app.state)
        return
    app.push_screen(ChartScreen(symbol))
