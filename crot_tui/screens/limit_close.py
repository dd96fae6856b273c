"""Ask for the limit price of a manual close (the command palette's "Close ... at a limit").

The price is checked here the way the engine checks it (engine/runtime/manual.limit_price):
a bad value is one line under the field and nothing is sent. Enter sends, Escape cancels.
"""

from __future__ import annotations

from decimal import Decimal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class LimitCloseScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, side: str, symbol: str, contracts: Decimal | None, price: Decimal | None) -> None:
        super().__init__(classes="confirm")
        self.side, self.symbol, self.contracts, self.price = side, symbol, contracts, price

    def compose(self) -> ComposeResult:
        size = f" ({self.contracts} contracts)" if self.contracts is not None else ""
        last = f"; last price {self.price}" if self.price is not None else ""
        with Vertical(id="confirm-box"):
            yield Static(f"Close the {self.side} position {self.symbol}{size} with a reduce-only limit at:",
                         id="confirm-question")
            yield Input(value="" if self.price is None else str(self.price), placeholder="price",
                        id="limit-price")
            yield Static(f"Enter sends, Escape cancels{last}. It replaces the exit ladder until it fills or "
                         "is withdrawn; the stop stays.", id="limit-hint")

    def on_mount(self) -> None:
        self.query_one("#limit-price", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from engine.runtime.manual import limit_price

        try:
            price = limit_price(event.value)
        except ValueError as exc:
            self.query_one("#limit-hint", Static).update(str(exc))
            return
        if price is None:
            self.query_one("#limit-hint", Static).update("a price is needed (Escape cancels)")
            return
        self.dismiss(str(price))

    def action_cancel(self) -> None:
        self.dismiss(None)
