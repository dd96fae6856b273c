"""Closed trades: entry, exit, PnL, fees, time held, exit reason, per symbol, side and profile.

The list comes from the TradeClosed events the app received (`UiState.closed`, bounded) and,
for a live or paper bot on this machine, the trades of its audit trail from before the app
started (read once, in a thread, when the screen first opens). It
filters as you type (words that must all appear in the symbol, side, profile or exit reason;
`-word` drops the trades that contain it; `win` / `loss` keep the winners / losers), sorts by
any column (`s` next column, `r` reverse, or click a header), and Enter opens the trade's
detail: its orders, fills, stop moves and the gate decision that opened it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from .. import fmt
from ..messages import AccountChanged
from ..state import Episode, UiState
from ..widgets.base import right, styled
from ..widgets.positions import short_symbol

#: (column key, label, sort key)
COLUMNS: list[tuple[str, str, Callable[[Episode], Any]]] = [
    ("closed", "closed", lambda ep: (ep.trade.ts_ms, ep.seq)),  # type: ignore[union-attr]
    ("symbol", "symbol", lambda ep: ep.symbol),
    ("side", "side", lambda ep: ep.trade.side),  # type: ignore[union-attr]
    ("pnl", "PnL", lambda ep: ep.trade.pnl),  # type: ignore[union-attr]
    ("held", "held", lambda ep: held_ms(ep)),
    ("reason", "exit reason", lambda ep: ep.trade.reason),  # type: ignore[union-attr]
    ("entry", "entry", lambda ep: ep.trade.entry_price),  # type: ignore[union-attr]
    ("exit", "exit", lambda ep: ep.trade.exit_price),  # type: ignore[union-attr]
    ("fees", "fees", lambda ep: ep.trade.fees),  # type: ignore[union-attr]
    ("size", "size", lambda ep: ep.trade.contracts),  # type: ignore[union-attr]
    ("profile", "profile", lambda ep: ep.profile),
]
SORT_KEYS = [c[0] for c in COLUMNS]


def held_ms(ep: Episode) -> int:
    t = ep.trade
    if t is None or not t.opened_ms or not t.ts_ms:
        return -1
    return t.ts_ms - t.opened_ms


@dataclass(frozen=True)
class TradeFilter:
    words: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    outcome: str = ""  # win | loss | ""

    @classmethod
    def parse(cls, text: str) -> TradeFilter:
        words, excluded, outcome = [], [], ""
        for token in text.lower().split():
            if token in ("win", "wins", "winners"):
                outcome = "win"
            elif token in ("loss", "losses", "losers"):
                outcome = "loss"
            elif token.startswith("-") and len(token) > 1:
                excluded.append(token[1:])
            else:
                words.append(token)
        return cls(tuple(words), tuple(excluded), outcome)

    @property
    def active(self) -> bool:
        return bool(self.words or self.excluded or self.outcome)

    def matches(self, ep: Episode) -> bool:
        t = ep.trade
        if t is None:
            return False
        if self.outcome == "win" and not t.pnl > 0:
            return False
        if self.outcome == "loss" and not t.pnl < 0:
            return False
        hay = f"{ep.symbol} {short_symbol(ep.symbol)} {t.side} {ep.profile} {t.reason}".lower()
        return all(w in hay for w in self.words) and not any(w in hay for w in self.excluded)


def select_trades(closed: list[Episode], flt: TradeFilter, sort: str = "closed",
                  descending: bool = True) -> list[Episode]:
    """The trades the filter keeps, sorted (newest first by default)."""
    key = dict((c[0], c[2]) for c in COLUMNS)[sort]
    kept = [ep for ep in closed if ep.trade is not None and flt.matches(ep)]
    return sorted(kept, key=lambda ep: (key(ep), ep.seq), reverse=descending)


def trade_cells(ep: Episode, colors: dict[str, str]) -> tuple[Text, ...]:
    t = ep.trade
    assert t is not None
    pnl = float(t.pnl)
    profit, loss = colors.get("profit", ""), colors.get("loss", "")
    side_style = colors.get("long", "") if t.side == "long" else colors.get("short", "")
    cells = {
        "closed": styled(fmt.ts(t.ts_ms, date=False) or fmt.DASH, colors.get("muted", "")),
        "symbol": styled(short_symbol(ep.symbol), "bold"),
        "side": styled(t.side, side_style),
        "pnl": right(fmt.money(pnl, 4, sign=True), profit if pnl > 0 else loss if pnl < 0 else ""),
        "held": right(fmt.duration_ms(held_ms(ep)) if held_ms(ep) >= 0 else fmt.DASH),
        "reason": styled(t.reason or fmt.DASH),
        "entry": right(fmt.price(t.entry_price)),
        "exit": right(fmt.price(t.exit_price)),
        "fees": right(fmt.money(t.fees, 4)),
        "size": right(fmt.amount(t.contracts)),
        "profile": styled(ep.profile),
    }
    return tuple(cells[key] for key, _, _ in COLUMNS)


class TradesScreen(Screen):
    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("slash,f", "focus_filter", "Filter", key_display="/"),
        Binding("s", "next_sort", "Sort"),
        Binding("r", "reverse", "Reverse"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
    ]
    LISTENS = (AccountChanged,)  # a closed trade marks the account pane
    DEFAULT_CSS = """
    TradesScreen #trades-summary {
        height: 1;
        padding: 0 1;
    }
    TradesScreen #trades-filter {
        height: 1;
        border: none;
        padding: 0 1;
        background: $panel;
    }
    TradesScreen #trades-table {
        height: 1fr;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="trades")
        self.sort = "closed"
        self.descending = True
        self.filter = TradeFilter()
        self._shown_sig: tuple[Any, ...] = ()
        self.shown: list[Episode] = []

    def compose(self) -> ComposeResult:
        yield Static(id="trades-summary")
        yield TradeInput(placeholder="filter: symbol, side, profile or exit reason; -word; win / loss",
                         id="trades-filter", select_on_focus=False)
        table: DataTable[Any] = DataTable(id="trades-table", cursor_type="row", zebra_stripes=False)
        for key, label, _ in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.listen(self)  # type: ignore[attr-defined]
        self.update_state(self.app.state)  # type: ignore[attr-defined]
        self.query_one("#trades-table", DataTable).focus()
        self._load_history()

    def _load_history(self) -> None:
        """Once per app: the trades the audit trail has from before the app started (a live or
        paper bot on this machine), read in a thread, merged under the ones seen."""
        import asyncio

        from .detail import audit_db

        self.history_loaded = asyncio.Event()
        state = self.app.state  # type: ignore[attr-defined]
        path = audit_db(self.app)
        if state.history_loaded or path is None:
            self.history_loaded.set()
            return

        def load() -> None:
            from engine.store.audit_query import recent_trades

            trades = recent_trades(path, state.trade_limit)
            self.app.call_from_thread(self._history_done, trades)

        self.run_worker(load, thread=True, name="trades-history", exit_on_error=False)

    def _history_done(self, trades: list[Any]) -> None:
        state = self.app.state  # type: ignore[attr-defined]
        if state.add_history(trades):
            self.update_state(state, force=True)
        self.history_loaded.set()

    def on_unmount(self) -> None:
        self.app.unlisten(self)  # type: ignore[attr-defined]

    def on_account_changed(self, message: AccountChanged) -> None:
        self.update_state(message.state)

    # -- content ------------------------------------------------------------------------------
    def update_state(self, state: UiState, *, force: bool = False) -> None:
        sig = (state.trade_seq, len(state.closed), self.filter, self.sort, self.descending,
               getattr(self.app, "theme_name", ""))
        if sig == self._shown_sig and not force:
            return
        self._shown_sig = sig
        colors = getattr(self.app, "tones", {})
        closed = list(state.closed)
        self.shown = select_trades(closed, self.filter, self.sort, self.descending)
        table = self.query_one("#trades-table", DataTable)
        current = None
        if table.row_count:
            try:
                current = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            except Exception:
                current = None
        table.clear()
        for ep in self.shown:
            table.add_row(*trade_cells(ep, colors), key=str(ep.seq))
        if current is not None:
            keys = [str(ep.seq) for ep in self.shown]
            if current in keys:
                table.move_cursor(row=keys.index(current))
        self._update_labels(table)
        self.query_one("#trades-summary", Static).update(self._summary(state, closed))

    def _update_labels(self, table: DataTable[Any]) -> None:
        arrow = " ▼" if self.descending else " ▲"
        for key, label, _ in COLUMNS:
            col = table.columns.get(key)  # type: ignore[call-overload]
            if col is not None:
                col.label = Text(label + (arrow if key == self.sort else ""))
        table.refresh()

    def _summary(self, state: UiState, closed: list[Episode]) -> Text:
        colors = getattr(self.app, "tones", {})
        t = Text(no_wrap=True, overflow="ellipsis")
        if not closed:
            t.append("no closed trade yet", style=colors.get("muted", ""))
            return t
        shown = self.shown
        pnl = sum(float(ep.trade.pnl) for ep in shown if ep.trade is not None)
        fees = sum(float(ep.trade.fees) for ep in shown if ep.trade is not None)
        wins = sum(1 for ep in shown if ep.trade is not None and ep.trade.pnl > 0)
        t.append(f"{len(shown)} of {len(closed)} trades" if self.filter.active else f"{len(closed)} trades",
                 style="bold")
        t.append(f" · {wins} won · PnL ")
        style = colors.get("profit", "") if pnl > 0 else colors.get("loss", "") if pnl < 0 else ""
        t.append(fmt.money(pnl, 4, sign=True), style=style)
        t.append(f" · fees {fmt.money(fees, 4)}")
        if state.trade_seq > len(closed):
            t.append(f" · {state.trade_seq - len(closed)} older not kept", style=colors.get("muted", ""))
        return t

    # -- actions ------------------------------------------------------------------------------
    def action_back(self) -> None:
        self.app.pop_screen()

    def action_focus_filter(self) -> None:
        self.query_one("#trades-filter", Input).focus()

    def action_next_sort(self) -> None:
        i = SORT_KEYS.index(self.sort)
        self.set_sort(SORT_KEYS[(i + 1) % len(SORT_KEYS)])

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self.update_state(self.app.state)  # type: ignore[attr-defined]

    def set_sort(self, key: str, descending: bool | None = None) -> None:
        if key not in SORT_KEYS:
            raise ValueError(f"no column {key!r}")
        self.sort = key
        if descending is not None:
            self.descending = descending
        self.update_state(self.app.state)  # type: ignore[attr-defined]

    def set_filter(self, text: str) -> None:
        self.filter = TradeFilter.parse(text)
        self.update_state(self.app.state)  # type: ignore[attr-defined]

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "trades-filter":
            event.stop()
            self.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "trades-filter":
            event.stop()
            self.query_one("#trades-table", DataTable).focus()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = str(event.column_key.value)
        if key == self.sort:
            self.descending = not self.descending
            self.update_state(self.app.state)  # type: ignore[attr-defined]
        else:
            self.set_sort(key, descending=key in ("closed", "pnl", "fees", "held", "size"))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is None:
            return
        seq = int(event.row_key.value)
        ep = self.app.state.closed_trade(seq)  # type: ignore[attr-defined]
        if ep is not None:
            from .detail import DetailScreen, audit_db

            # a trade from before the app started: its orders, fills and stops from the audit trail
            self.app.push_screen(DetailScreen(ep.profile, ep.symbol, trade_seq=seq,
                                              audit_db=audit_db(self.app) if ep.history else None))


class TradeInput(Input):
    """The filter line: Esc clears it and goes back to the table."""

    BINDINGS = [Binding("escape", "clear", "Clear filter")]

    def action_clear(self) -> None:
        self.value = ""
        screen = self.screen
        if isinstance(screen, TradesScreen):
            screen.set_filter("")
            screen.query_one("#trades-table", DataTable).focus()


def open_trades(app: Any) -> None:
    """Show the trades screen (once: it is not stacked twice)."""
    if isinstance(app.screen, TradesScreen):
        return
    app.push_screen(TradesScreen())
