"""Account equity, margin use, PnL and fees, with the equity curve as a sparkline."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Sparkline, Static

from .. import fmt
from ..messages import AccountChanged
from ..state import UiState
from .base import Pane


class EquityPane(Pane):
    TITLE = "Account"
    KEY = "4"
    LISTENS = (AccountChanged,)
    can_focus = True

    def compose(self) -> ComposeResult:
        yield Static(id="equity-figures")
        yield Sparkline([], id="equity-curve")

    def update_state(self, state: UiState) -> None:
        a = state.account
        profit, loss, warn, muted = (self.color(k) for k in ("profit", "loss", "warn", "muted"))
        figures = self.query_one("#equity-figures", Static)
        if a is None:
            figures.update(Text("no account data yet", style=muted))
            return

        def signed(x: object, digits: int = 2) -> Text:
            v = fmt.num(x) or 0.0
            return Text(fmt.money(x, digits, sign=True), style=profit if v > 0 else loss if v < 0 else "")

        change = float((a.equity - state.start_equity) / state.start_equity) if state.start_equity else None
        use = state.margin_use()
        use_style = f"bold {loss}" if use is not None and use > 0.5 else warn if use is not None and use > 0.3 else ""
        # realized PnL and fees: the engine's account figures, or the closed trades' sum when the
        # engine does not total them
        realized = a.realized_pnl if a.realized_pnl else state.realized
        fees = a.fees if a.fees else state.trade_fees
        t = Table.grid(padding=(0, 1))
        t.add_column(style=muted, no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        t.add_column(no_wrap=True)
        chg = Text(fmt.pct(change, 2, sign=True), style=profit if (change or 0) > 0 else loss if (change or 0) < 0 else "")
        t.add_row("equity", Text(fmt.money(a.equity), style="bold"), chg)
        t.add_row("margin use", Text(fmt.pct(use, 1), style=use_style),
                  Text(f"used {fmt.money(a.used_margin)}", style=muted))
        t.add_row("free", fmt.money(a.free_margin), "")
        t.add_row("unrealized", signed(a.unrealized_pnl), "")
        t.add_row("realized", signed(realized), Text(f"fees {fmt.money(fees, 4)}", style=muted))
        t.add_row("trades", str(state.trades), Text(f"{state.wins} won", style=muted))
        for name, equity, free, used in getattr(a, "accounts", ()) or ():  # two accounts (COINS_2)
            t.add_row(f"account {name}", fmt.money(equity), Text(f"free {fmt.money(free)} · used {fmt.money(used)}",
                                                                 style=muted))
        figures.update(t)
        self.query_one(Sparkline).data = state.equity.series
        self.border_subtitle = f"equity curve: {len(state.equity.series)} points"
