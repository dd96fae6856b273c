"""Stop-loss orders on the exchange, as the engine knows them (never read from the exchange
by the UI): placed, moved, cancelled; a position without a stop is shown as MISSING."""

from __future__ import annotations

from textual.app import ComposeResult

from .. import fmt
from ..messages import PositionsChanged, StopsChanged
from ..state import UiState
from .base import KeyedTable, Pane, right, styled
from .positions import short_symbol

COLUMNS = [
    ("symbol", "symbol", None),
    ("side", "side", 5),
    ("trigger", "trigger", None),
    ("dist", "dist", None),
    ("amount", "size", None),
    ("status", "status", None),
    ("reason", "reason", 16),
]


class StopsPane(Pane):
    TITLE = "Stops on exchange"
    KEY = "2"
    KEY_COLUMNS = ("symbol", "side", "trigger", "dist", "amount", "status")
    LISTENS = (StopsChanged, PositionsChanged)

    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="stops-table")

    def update_state(self, state: UiState) -> None:
        table = self.query_one(KeyedTable)
        marks = {(p.side, p.symbol): p.mark_price for p in state.all_positions()}
        held = set(marks)
        rows = {}
        loss, warn, muted = self.color("loss"), self.color("warn"), self.color("muted")
        missing = 0
        for key, r in sorted(state.stops.items(), key=lambda kv: (kv[1].symbol, kv[1].profile, kv[0])):
            mark = marks.get((r.profile, r.symbol))
            dist = abs(float(mark) - float(r.trigger)) / float(mark) if mark and r.trigger else None
            status_style = {"missing": f"bold reverse {loss}", "emergency": f"bold {loss}",
                            "derived": muted}.get(r.status, "")
            if r.status in ("missing", "emergency"):
                missing += 1
            rows[key] = (
                styled(short_symbol(r.symbol), "bold"),
                styled(r.profile, self.color("long") if r.profile == "long" else self.color("short")),
                right(fmt.price(r.trigger)),
                right(fmt.pct(dist, 1)),
                right(fmt.amount(r.amount)),
                styled(r.status.upper() if r.status in ("missing", "emergency") else r.status, status_style),
                styled(r.reason, muted),
            )
        # a position without any stop row at all is the one thing this pane must never hide
        for side, symbol in sorted(held):
            if not any(r.profile == side and r.symbol == symbol for r in state.stops.values()):
                missing += 1
                rows[f"{side}:{symbol}:none"] = (
                    styled(short_symbol(symbol), "bold"), styled(side), right(fmt.DASH), right(fmt.DASH),
                    right(fmt.DASH), styled("NO STOP", f"bold reverse {loss}"), styled("position without a stop"))
        table.sync(rows)
        n = len(rows) - missing
        self.border_subtitle = (f"[bold {warn}]{missing} without a stop[/] · " if missing else "") + f"{n} resting"
