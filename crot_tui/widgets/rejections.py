"""Gate verdicts per coin, both sides: selected, valid, or the first gate that rejected it.
Enter opens the coin inspector with every gate."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable

from .. import fmt
from ..messages import InspectCoin, RejectionsChanged
from ..state import UiState
from .base import KeyedTable, Pane, right, styled
from .positions import short_symbol

COLUMNS = [
    ("symbol", "symbol", None),
    ("long", "long", 20),
    ("lscore", "score", None),
    ("short", "short", 20),
    ("sscore", "score", None),
]


def verdict(d: Any, selected: bool, colors: dict[str, str]) -> Text:
    if d is None:
        return styled("…", colors.get("muted", ""))
    if selected:
        return styled("✓ selected", f"bold {colors.get('profit', '')}")
    if d.entry_valid:
        return styled("✓ valid", colors.get("profit", ""))
    rejections = d.rejections
    if not rejections:
        return styled("✗ (no hard gate)", colors.get("loss", ""))
    more = f" +{len(rejections) - 1}" if len(rejections) > 1 else ""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append("✗ ", style=colors.get("loss", ""))
    t.append(rejections[0])
    t.append(more, style=colors.get("muted", ""))
    return t


def score(d: Any) -> str:
    v = fmt.num(d.score) if d is not None else None
    return fmt.DASH if v is None else f"{v:+.3f}"


class RejectionsPane(Pane):
    TITLE = "Gates per coin (Enter: inspect)"
    KEY = "3"
    KEY_COLUMNS = ("symbol", "long", "lscore", "short", "sscore")
    LISTENS = (RejectionsChanged,)

    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="rejections-table")

    def update_state(self, state: UiState) -> None:
        table = self.query_one(KeyedTable)
        colors = getattr(self.app, "tones", {})
        sel = {s: set(state.selected(s)) for s in ("long", "short")}
        symbols = sorted(set(state.symbols))
        rows = {}
        blocked = 0
        for symbol in symbols:
            dl, ds = state.decision(symbol, "long"), state.decision(symbol, "short")
            if (dl is None or not dl.entry_valid) and (ds is None or not ds.entry_valid):
                blocked += 1
            rows[symbol] = (
                styled(short_symbol(symbol), "bold"),
                verdict(dl, symbol in sel["long"], colors),
                right(score(dl)),
                verdict(ds, symbol in sel["short"], colors),
                right(score(ds)),
            )
        table.sync(rows, order=symbols)
        if symbols:
            self.border_subtitle = f"{len(symbols) - blocked} tradeable · {blocked} blocked"
        else:
            self.border_subtitle = "waiting for warm indicators"

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(InspectCoin(str(event.row_key.value)))
