"""Cross-exchange premium per symbol (HTX against the MEXC reference)."""

from __future__ import annotations

from textual.app import ComposeResult

from .. import fmt
from ..messages import PremiumChanged
from ..state import UiState
from .base import KeyedTable, Pane, right, styled
from .positions import short_symbol

COLUMNS = [
    ("symbol", "symbol", None),
    ("premium", "prem bps", None),
    ("div", "1m div", None),
    ("age", "ref age", None),
    ("status", "status", None),  # ok / BLOCKED / no ref: short, so it stays in view
    ("reason", "reason", 22),
]


class PremiumPane(Pane):
    TITLE = "Cross-exchange premium"
    KEY = "6"
    KEY_COLUMNS = ("symbol", "premium", "div", "age", "status")
    LISTENS = (PremiumChanged,)

    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, id="premium-table")

    def update_state(self, state: UiState) -> None:
        table = self.query_one(KeyedTable)
        loss, muted = self.color("loss"), self.color("muted")
        rows = {}
        blocked = 0
        symbols = sorted(state.premium)
        for symbol in symbols:
            p = state.premium[symbol]
            blocked += p.blocked
            if p.blocked:
                status, reason = "BLOCKED", p.reason
            elif p.premium_bps is None:
                status, reason = "no ref", "no reference price"
            else:
                status, reason = "ok", ""
            rows[symbol] = (
                styled(short_symbol(symbol), "bold"),
                right(fmt.bps(p.premium_bps)),
                right(fmt.bps(p.divergence_1m_bps)),
                right(fmt.age_ms(p.reference_age_ms)),
                styled(status, f"bold {loss}" if p.blocked else muted),
                styled(reason.strip(), loss if p.blocked else muted),
            )
        table.sync(rows, order=symbols)
        if blocked:
            self.border_subtitle = f"{blocked} blocked"
        elif rows and all(p.premium_bps is None for p in state.premium.values()):
            self.border_subtitle = "no reference prices (replay, or MEXC unreachable)"
        else:
            self.border_subtitle = "none blocked" if rows else "no data yet"
