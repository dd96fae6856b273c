"""The operator's manual actions: close one position, cancel a symbol's entry orders, flatten
everything, freeze a symbol.

A request is queued by a command (the UI's or the CLI's) and carried out by the next engine
step, right after the protection pass, through the profile's own executor: the same
deterministic client ids, the same write-ahead intents and the same audit trail as the
strategy's orders. A close at market is a reduce-only market order that cancels the position's
exit orders first (they reserve the closeable amount) and leaves the stop in place until the
position is gone (the executor's close order of operations), so no manual action can leave a
position without a stop. A close at a limit is kept by the exit planner (PositionMeta.
manual_close_price): one reduce-only limit for the whole position in place of the exit
ladder, re-placed if it disappears, until it fills, the operator withdraws it or a close at
market replaces it; the stop stays all along, and the safety closes (stop breached, urgent
time exit, absolute force exit) still win. A frozen symbol gets no new entry and no averaging until unfrozen;
its position keeps its stop and exits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from engine.exchange.client_ids import client_order_id
from engine.exchange.precision import round_limit_price
from engine.exchange.types import closing_side

from .actions import Action, Cancel, CloseMarket
from .snapshot import Snapshot

Kind = Literal["close", "cancel_close", "cancel_entries", "flatten", "freeze", "unfreeze"]
KINDS = ("close", "cancel_close", "cancel_entries", "flatten", "freeze", "unfreeze")
SIDES = ("long", "short")


def limit_price(text: Any) -> Decimal | None:
    """The limit price of a close request: None for none ("" or None); a positive finite
    number otherwise, else ValueError naming what is expected."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        price = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError(f"limit price {text!r}: expected a positive number, e.g. 64250.5") from None
    if not price.is_finite() or price <= 0 or not math.isfinite(float(price)):
        raise ValueError(f"limit price {text!r}: expected a positive number, e.g. 64250.5")
    return price


@dataclass(frozen=True)
class ManualRequest:
    kind: Kind
    symbol: str = ""  # "" for flatten
    price: Decimal | None = None  # close: at this limit (None: at market)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"manual action {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.price is not None and self.kind != "close":
            raise ValueError(f"a limit price is for a close only, not for {self.kind}")

    def describe(self) -> str:
        close = f"close {self.symbol} at market" if self.price is None else \
            f"close {self.symbol} at a limit of {self.price}"
        return {"close": close, "cancel_close": f"withdraw {self.symbol}'s limit close (its exit ladder returns)",
                "cancel_entries": f"cancel {self.symbol}'s entry orders",
                "flatten": "flatten: close every position, cancel every entry order",
                "freeze": f"freeze {self.symbol}", "unfreeze": f"unfreeze {self.symbol}"}[self.kind]


def set_limit_close(req: ManualRequest, side: str, snap: Snapshot, metas: dict[str, Any],
                    markets: dict[str, Any]) -> str | None:
    """Hand a limit close (or its withdrawal) to the exit planner of one side: what was done,
    None when this side holds no position on the symbol. The price is rounded to the tick
    away from the market (a long's closing sell up, a short's closing buy down): never worse
    for the operator than the price asked."""
    pos, meta = snap.positions.get(req.symbol), metas.get(req.symbol)
    if pos is None or pos.side != side or pos.contracts <= 0 or meta is None:
        return None
    if req.kind == "cancel_close":
        if meta.manual_close_price is None:
            return f"{req.symbol} ({side}) has no limit close to withdraw"
        meta.manual_close_price = None
        return f"{req.symbol} ({side}): limit close withdrawn, its exit ladder returns"
    assert req.price is not None
    price = round_limit_price(closing_side(side), req.price, markets[req.symbol].price_step)
    meta.manual_close_price = price
    return (f"{req.symbol} ({side}): a reduce-only limit close of {pos.contracts} at {price} replaces its exit "
            "ladder; the stop stays until the position is gone")


def manual_actions(req: ManualRequest, side: str, snap: Snapshot, close_seq: dict[str, int],
                   pos_ids: dict[str, str], metas: dict[str, Any] | None = None) -> list[Action]:
    """The actions one request means for one side. `close_seq[symbol]` is the position's
    close counter (advanced here, so each manual close is its own intent); `pos_ids[symbol]`
    its position id (the intent keys of its orders start with it); `metas` the side's
    position state (a close at market ends a limit close set before)."""
    metas = metas or {}
    if req.kind in ("freeze", "unfreeze", "cancel_close") or (req.kind == "close" and req.price is not None):
        return []  # (a limit close is the exit planner's: set_limit_close)
    symbols = {req.symbol} if req.symbol else {o.symbol for o in snap.orders} | set(snap.positions)
    out: list[Action] = []
    for symbol in sorted(symbols):
        orders = snap.orders_of(side, symbol)
        if req.kind in ("cancel_entries", "flatten"):
            out += [Cancel(o, "entry", f"manual: {req.describe()}") for o in orders if o.is_open and not o.reduce_only]
        pos = snap.positions.get(symbol)
        if req.kind in ("close", "flatten") and pos is not None and pos.side == side and pos.contracts > 0:
            meta = metas.get(symbol)
            if meta is not None:
                meta.manual_close_price = None  # at market now: a limit close set before is over
            close_seq[symbol] = close_seq.get(symbol, 0) + 1
            key = f"{pos_ids.get(symbol, symbol)}:manual:c{close_seq[symbol]}"
            exits = tuple(o for o in orders if o.reduce_only and o.kind == "limit")
            out.append(CloseMarket(symbol, side, pos.contracts, client_order_id(side, symbol, "close", key), key,
                                   "manual", exits))
    return out
