"""Help: every key, what each pane shows, and what the commands really do."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

KEYS = [
    ("Dashboard", [
        ("l", "toggle the LONG profile: off = no new long entries; open positions, stops and exits stay managed"),
        ("s", "toggle the SHORT profile (same rules)"),
        ("p", "pause / resume new entries on both sides (exits keep running)"),
        ("1-7", "show a pane: positions, stops, gates, account, regime, premium, log"),
        ("tab / shift+tab", "next / previous pane"),
        ("up/down, left/right", "move in a table; left/right scroll a table wider than its pane"),
        ("enter / i", "in the gates pane: inspect the coin (every gate, both sides)"),
        ("enter", "in the positions pane: the position's orders, fills, stop moves and entry decision"),
        ("h", "closed trades: filter, sort, Enter for a trade's detail"),
        ("c", "price chart of the focused position or coin: closes, EMAs, fills, entry and stop"),
        ("/ (in the log)", "filter the event log: words, -word, kind:order,stop, level:warn; esc clears"),
        ("w (in the log)", "the log's minimum level: all, warnings and errors, errors"),
        ("e", "settings editor"),
        ("/ , ctrl+p", "command palette: every action, every coin, every theme"),
        ("t", "next colour theme"),
        ("space", "demo: pause / resume the replay"),
        ("+ / -", "demo: replay faster / slower"),
        ("?", "this help"),
        ("q, ctrl+q", "quit (live and paper ask first; stop-loss orders stay on the exchange)"),
    ]),
    ("Coin inspector", [
        ("tab", "switch between the long and the short decision"),
        ("[ / ]", "previous / next coin"),
        ("c", "the coin's price chart"),
        ("esc", "back to the dashboard"),
    ]),
    ("Price chart", [
        ("[ / ]", "previous / next coin"),
        ("", "closes the engine decided on (since the app started), trigger EMAs fast and slow, buy ^ and "
             "sell v fills, each open position's entry (yellow) and stop (red) as lines"),
        ("esc", "back"),
    ]),
    ("Closed trades", [
        ("/ or f", "filter as you type: symbol, side, profile or exit reason; -word drops; win / loss"),
        ("s / r", "sort by the next column / reverse the order (or click a column header)"),
        ("enter", "the trade's detail: orders, fills, stop moves and the gate decision that opened it"),
        ("esc", "back (in the filter line: clear it)"),
    ]),
    ("Position and trade detail", [
        ("tab", "switch between the timeline (orders, fills, stops) and the entry decision's gates"),
        ("c", "the symbol's price chart"),
        ("esc", "back"),
    ]),
    ("Settings editor", [
        ("/", "search keys and descriptions (esc clears the search)"),
        ("ctrl+o", "edit: shared value / LONG_ override / SHORT_ override"),
        ("ctrl+r", "reset the focused setting (remove it from .env: back to the default)"),
        ("ctrl+s", "save: validates the whole file, then writes .env atomically (mode 0600)"),
        ("esc", "back (asks before dropping unsaved changes)"),
    ]),
]

PANES = [
    ("Positions", "side, size (contracts), entry, unrealized PnL, hard-stop price and its distance from the "
                  "mark, ladder = exit mode (norm/med/hvy/BE), averaging stages done (s), resting exit "
                  "orders (x), R = trailing runner active; mark price; age"),
    ("Stops", "the reduce-only stop-loss orders the engine placed on the exchange: trigger, distance, size; "
              "MISSING / NO STOP in red means a position is unprotected"),
    ("Gates", "per coin and side: selected, valid, or the first gate that blocked a new entry (+N more)"),
    ("Account", "equity and change since start, free and used margin, margin use, PnL, fees, equity curve"),
    ("Regime", "the macro (gold/BTC RSI) regime, its effect on budgets and entries, and every change"),
    ("Premium", "HTX price against the MEXC reference: premium, 1-minute divergence, reference age, blocks"),
    ("Log", "orders, stops, closed trades, regime changes, repairs, errors and status, in engine time; "
            "the last 5000 lines, / filters them"),
]


def help_renderable() -> Table:
    outer = Table.grid(padding=(0, 0))
    outer.add_column()
    for title, rows in KEYS:
        t = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 1),
                  title_style="bold")
        t.add_column(style="bold", no_wrap=True, min_width=14)
        t.add_column()
        for key, what in rows:
            t.add_row(key, what)
        outer.add_row(t)
        outer.add_row("")
    p = Table(title="Panes", title_justify="left", show_header=False, box=None, padding=(0, 1),
              title_style="bold")
    p.add_column(style="bold", no_wrap=True, min_width=14)
    p.add_column()
    for name, what in PANES:
        p.add_row(name, what)
    outer.add_row(p)
    outer.add_row("")
    outer.add_row(Text("The UI never talks to the exchange: it shows what the engine reports and sends "
                       "only the commands above. Futures trading involves substantial risk of loss.",
                       style="italic"))
    return outer


class HelpScreen(Screen):
    BINDINGS = [
        Binding("escape,q,question_mark", "app.pop_screen", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__(id="help")

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(help_renderable(), id="help-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()
