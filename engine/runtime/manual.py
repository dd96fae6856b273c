"""The operator's manual actions: close one position, cancel a symbol's entry orders, flatten
everything, freeze a symbol.

A request is queued by a command (the UI's or the CLI's) and carried out by the next engine
step, right after the protection pass, through the profile's own executor: the same
deterministic client ids, the same write-ahead intents and the same audit trail as the
strategy's orders. A close is a reduce-only market order that cancels the position's exit
orders first (they reserve the closeable amount) and leaves the stop in place until the
position is gone (the executor's close order of operations), so no manual action can leave a
position without a stop. A frozen symbol gets no new entry and no averaging until unfrozen;
its position keeps its stop and exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.exchange.client_ids import client_order_id

from .actions import Action, Cancel, CloseMarket
from .snapshot import Snapshot

Kind = Literal["close", "cancel_entries", "flatten", "freeze", "unfreeze"]
SIDES = ("long", "short")


@dataclass(frozen=True)
class ManualRequest:
    kind: Kind
    symbol: str = ""  # "" for flatten

    def describe(self) -> str:
        return {"close": f"close {self.symbol} at market", "cancel_entries": f"cancel {self.symbol}'s entry orders",
                "flatten": "flatten: close every position, cancel every entry order",
                "freeze": f"freeze {self.symbol}", "unfreeze": f"unfreeze {self.symbol}"}[self.kind]


def manual_actions(req: ManualRequest, side: str, snap: Snapshot, close_seq: dict[str, int],
                   pos_ids: dict[str, str]) -> list[Action]:
    """The actions one request means for one side. `close_seq[symbol]` is the position's
    close counter (advanced here, so each manual close is its own intent); `pos_ids[symbol]`
    its position id (the intent keys of its orders start with it)."""
    if req.kind in ("freeze", "unfreeze"):
        return []
    symbols = {req.symbol} if req.symbol else {o.symbol for o in snap.orders} | set(snap.positions)
    out: list[Action] = []
    for symbol in sorted(symbols):
        orders = snap.orders_of(side, symbol)
        if req.kind in ("cancel_entries", "flatten"):
            out += [Cancel(o, "entry", f"manual: {req.describe()}") for o in orders if o.is_open and not o.reduce_only]
        pos = snap.positions.get(symbol)
        if req.kind in ("close", "flatten") and pos is not None and pos.side == side and pos.contracts > 0:
            close_seq[symbol] = close_seq.get(symbol, 0) + 1
            key = f"{pos_ids.get(symbol, symbol)}:manual:c{close_seq[symbol]}"
            exits = tuple(o for o in orders if o.reduce_only and o.kind == "limit")
            out.append(CloseMarket(symbol, side, pos.contracts, client_order_id(side, symbol, "close", key), key,
                                   "manual", exits))
    return out
