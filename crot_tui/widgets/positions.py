"""Open positions: side, size, entry, PnL, stop price and distance, ladder state."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult

from .. import fmt
from ..messages import PositionsChanged, StopsChanged
from ..state import UiState
from .base import KeyedTable, Pane, right, styled

# width None = sized to the content and grown on update: a price is never cut short
COLUMNS = [
    ("symbol", "symbol", None),
    ("side", "side", 5),
    ("size", "size", None),
    ("entry", "entry", None),
    ("pnl", "PnL", None),
    ("stop", "stop", None),
    ("dist", "dist", None),
    ("ladder", "ladder", None),
    ("mark", "mark", None),
    ("age", "age", None),
]


def short_symbol(symbol: str) -> str:
    """BTC/USDT:USDT -> BTC/USDT (the settle currency says nothing here)."""
    return symbol.split(":")[0]


def ladder_text(p: Any) -> str:
    """Averaging stages done (s), resting exit orders (x), exit mode unless normal, runner (R):
    '1s 3x', '0s 2x BE R'."""
    if p.mode == "hedge":  # the BTC hedge: no ladder, no averaging (BTC_HEDGE_*)
        return "hedge"
    mode = {"normal": "", "medium": "med", "heavy": "hvy", "breakeven": "BE"}.get(p.mode, p.mode[:4])
    return f"{p.stages}s {p.exit_orders}x" + (f" {mode}" if mode else "") + (" R" if p.runner_active else "")


class PositionsPane(Pane):
    TITLE = "Positions (Enter: detail)"
    KEY = "1"
    KEY_COLUMNS = ("symbol", "side", "size", "entry", "pnl", "stop", "dist")
    LISTENS = (PositionsChanged, StopsChanged)

    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="positions-table")

    def update_state(self, state: UiState) -> None:
        table = self.query_one(KeyedTable)
        rows = {}
        total = 0.0
        profit, loss = self.color("profit"), self.color("loss")
        for p in state.all_positions():
            pnl = float(p.unrealized_pnl)
            total += pnl
            side_style = self.color("long") if p.side == "long" else self.color("short")
            # the resting stop order (as the engine reported it) wins over the position's record
            stop = state.stop_trigger(p.side, p.symbol) or p.stop_price
            dist = p.stop_distance
            if stop is not None and p.mark_price:
                dist = abs(float(p.mark_price) - float(stop)) / float(p.mark_price)
            dist_style = self.color("warn") if dist is not None and dist < 0.005 else ""
            no_stop = stop is None
            age = fmt.duration_ms(state.sim_ms - p.opened_ms) if p.opened_ms and state.sim_ms else fmt.DASH
            rows[f"{p.side}:{p.symbol}"] = (
                styled(short_symbol(p.symbol) + (f"·{p.account}" if p.account else ""), "bold"),
                styled(p.side, side_style),
                right(fmt.amount(p.contracts)),
                right(fmt.price(p.entry_price)),
                right(fmt.money(pnl, 2, sign=True), profit if pnl > 0 else loss if pnl < 0 else ""),
                right("NONE" if no_stop else fmt.price(stop), f"bold reverse {loss}" if no_stop else ""),
                right(fmt.pct(dist, 1), dist_style),
                styled(ladder_text(p)),
                right(fmt.price(p.mark_price)),
                right(age),
            )
        table.sync(rows)
        n = len(rows)
        if n:
            style = profit if total > 0 else loss if total < 0 else ""
            self.border_subtitle = f"{n} open · uPnL [{style}]{fmt.money(total, 2, sign=True)}[/]" if style \
                else f"{n} open · uPnL {fmt.money(total, 2, sign=True)}"
        else:
            self.border_subtitle = "none open"
