"""The macro regime (gold/BTC RSI overlay): the current regime, what it does to budgets and
entries, and the history of changes."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from .. import fmt
from ..messages import RegimeChanged
from ..state import UiState
from .base import KeyedTable, Pane, styled

COLUMNS = [
    ("time", "time", None),
    ("change", "change", None),
    ("sides", "sides", None),
]


def regime_style(regime: str, colors: dict[str, str]) -> str:
    r = regime.lower()
    if "risk_off" in r or "delever" in r or "bear" in r:
        return f"bold {colors.get('loss', '')}"
    if "risk_on" in r or "bull" in r:
        return f"bold {colors.get('profit', '')}"
    if r in ("unavailable", ""):
        return colors.get("muted", "")
    return f"bold {colors.get('accent', '')}"


def _f(x: Any, digits: int = 1) -> str:
    v = fmt.num(x)
    return fmt.DASH if v is None else f"{v:.{digits}f}"


class RegimePane(Pane):
    TITLE = "Macro regime"
    KEY = "5"
    KEY_COLUMNS = ("time", "change", "sides")
    LISTENS = (RegimeChanged,)

    def compose(self) -> ComposeResult:
        yield Static(id="regime-now")
        yield KeyedTable(COLUMNS, id="regime-history")

    def update_state(self, state: UiState) -> None:
        colors = getattr(self.app, "tones", {})
        now = self.query_one("#regime-now", Static)
        e = state.regime
        text = Text(no_wrap=False)
        if e is None:
            text.append("no regime data yet", style=colors.get("muted", ""))
        else:
            text.append(e.regime, style=regime_style(e.regime, colors))
            per_side = {s: r.regime for s, r in state.regimes.items()}
            if len(set(per_side.values())) > 1:
                text.append("  (" + ", ".join(f"{s} {r}" for s, r in sorted(per_side.items())) + ")")
            inp = e.inputs if isinstance(e.inputs, dict) else {}
            if inp.get("reason"):
                text.append(f"  {inp['reason']}", style=colors.get("muted", ""))
            text.append(f"\ngold RSI {_f(inp.get('gold_rsi'))}  BTC RSI {_f(inp.get('btc_rsi'))}  "
                        f"spread {_f(inp.get('rsi_spread'))}")
            text.append(f"\nbudget long x{_f(inp.get('long_budget_multiplier'), 2)} "
                        f"short x{_f(inp.get('short_budget_multiplier'), 2)}  "
                        f"ladder x{_f(inp.get('ladder_multiplier'), 2)}")
            flags = [name for key, name in (("disable_new_entries", "NO NEW ENTRIES"),
                                            ("disable_averaging", "no averaging")) if inp.get(key)]
            if flags:
                text.append("\n" + ", ".join(flags), style=f"bold {colors.get('warn', '')}")
        now.update(text)
        table = self.query_one(KeyedTable)
        rows = {}
        history = list(state.regime_history)[::-1]  # newest first
        for h in history:
            change = f"{h.previous or '(start)'} → {h.regime}"
            rows[f"{h.ts_ms}:{h.previous}:{h.regime}"] = (
                styled(fmt.ts(h.ts_ms, date=False)),
                styled(change, regime_style(h.regime, colors)),
                styled("both" if set(h.profiles) == {"long", "short"} else ",".join(h.profiles)),
            )
        # newest first: a new change is rare, so re-adding keeps the table short and ordered
        if list(rows) != table.keys[: len(rows)] or len(rows) != len(table.keys):
            table.clear()
            table._cells.clear()
        table.sync(rows)
        self.border_subtitle = f"{len(history)} change(s)"
