"""Typed engine events and the bus that carries them to subscribers (UI, logger, audit).

The engine never waits for a subscriber: synchronous handlers must be quick (they buffer),
and asynchronous subscribers get a bounded queue that drops its oldest events when the reader
falls behind (the UI shows the latest state; the audit trail uses a synchronous handler and
loses nothing).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from decimal import Decimal
from typing import Any, Callable, ClassVar

log = logging.getLogger("crot.events")


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"
    ts_ms: int

    def to_record(self) -> dict[str, Any]:
        """A flat, JSON-friendly dict (Decimals as strings) for logs and audit files."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            out[f.name] = _plain(getattr(self, f.name))
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if is_dataclass(value) and not isinstance(value, type):
        to_record = getattr(value, "to_record", None)
        return to_record() if callable(to_record) else {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class EngineStatus(Event):
    kind: ClassVar[str] = "status"
    mode: str
    enabled: tuple[str, ...]
    paused: bool
    message: str = ""
    progress: float | None = None  # replay: fraction of the data processed


@dataclass(frozen=True)
class Decisions(Event):
    """Every symbol's decision of one profile at one closed candle, and which were chosen."""

    kind: ClassVar[str] = "decisions"
    profile: str
    decisions: tuple[Any, ...]  # engine.strategy.decision.Decision
    selected: tuple[str, ...]


@dataclass(frozen=True)
class OrderEvent(Event):
    kind: ClassVar[str] = "order"
    profile: str
    symbol: str
    action: str  # placed | cancelled | rejected | adopted | failed
    purpose: str  # entry | add | stop | exit | close | dust
    client_order_id: int | None
    side: str
    price: Decimal | None
    amount: Decimal
    reduce_only: bool
    reason: str = ""


@dataclass(frozen=True)
class FillEvent(Event):
    kind: ClassVar[str] = "fill"
    profile: str
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    purpose: str


@dataclass(frozen=True)
class StopEvent(Event):
    kind: ClassVar[str] = "stop"
    profile: str
    symbol: str
    action: str  # placed | moved | missing | emergency_close
    trigger: Decimal | None
    amount: Decimal
    reason: str = ""


@dataclass(frozen=True)
class PositionView:
    profile: str
    symbol: str
    side: str
    contracts: Decimal
    entry_price: Decimal
    mark_price: Decimal | None
    notional: Decimal
    unrealized_pnl: Decimal
    stop_price: Decimal | None
    stop_distance: float | None  # fraction of the mark price
    mode: str  # normal | medium | heavy | breakeven
    stages: int
    exit_orders: int
    runner_active: bool
    opened_ms: int
    account: str = ""  # two accounts (COINS_2): "1" or "2"; "" with one account

    def to_record(self) -> dict[str, Any]:
        return {k: _plain(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Positions(Event):
    kind: ClassVar[str] = "positions"
    profile: str
    positions: tuple[PositionView, ...]


@dataclass(frozen=True)
class StopView:
    symbol: str
    client_order_id: int | None
    trigger: Decimal | None
    amount: Decimal
    side: str  # the order side (sell closes a long)
    placed_ms: int = 0

    def to_record(self) -> dict[str, Any]:
        return {k: _plain(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Stops(Event):
    """The stop-loss orders resting on the exchange for one profile, as read this cycle."""

    kind: ClassVar[str] = "stops"
    profile: str
    stops: tuple[StopView, ...]


@dataclass(frozen=True)
class Account(Event):
    kind: ClassVar[str] = "account"
    equity: Decimal
    free_margin: Decimal
    used_margin: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    fees: Decimal
    # two accounts (COINS_2): (account, equity, free margin, used margin) of each; the figures
    # above are both together
    accounts: tuple[tuple[str, Decimal, Decimal, Decimal], ...] = ()


@dataclass(frozen=True)
class TradeClosed(Event):
    kind: ClassVar[str] = "trade"
    profile: str
    symbol: str
    side: str
    entry_price: Decimal
    exit_price: Decimal
    contracts: Decimal
    pnl: Decimal  # realized, after fees
    fees: Decimal
    opened_ms: int
    reason: str


@dataclass(frozen=True)
class Repair(Event):
    """Something reconciliation found out of line with the exchange, and what it did."""

    kind: ClassVar[str] = "repair"
    profile: str
    symbol: str
    problem: str
    action: str


@dataclass(frozen=True)
class ProtectionEvent(Event):
    """An account protection fired or lifted (engine/risk/protections.py). `profile` is ""
    when it covers both profiles; `until_ms` is when it lifts by itself."""

    kind: ClassVar[str] = "protection"
    name: str  # max_drawdown | daily_loss | stoploss_streak
    profile: str
    action: str  # fired | lifted | lifted by the operator
    reason: str
    until_ms: int


@dataclass(frozen=True)
class Regime(Event):
    kind: ClassVar[str] = "regime"
    regime: str
    previous: str
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Premium(Event):
    kind: ClassVar[str] = "premium"
    symbol: str
    premium_bps: float | None
    divergence_1m_bps: float | None
    reference_age_ms: int | None
    blocked: bool
    reason: str = ""


@dataclass(frozen=True)
class CycleStats(Event):
    kind: ClassVar[str] = "cycle"
    profile: str
    symbols: int
    evaluated: int
    entry_valid: int
    selected: int
    orders_placed: int
    positions: int
    duration_ms: float


@dataclass(frozen=True)
class ErrorEvent(Event):
    kind: ClassVar[str] = "error"
    where: str
    message: str
    profile: str = ""
    fatal: bool = False


Handler = Callable[[Event], None]


class EventBus:
    """Publish/subscribe without back-pressure on the publisher."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._queues: list[asyncio.Queue[Event]] = []
        self.dropped = 0

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """A synchronous handler, called in publish order. Returns an unsubscribe function.

        A handler with a `durable_flush()` method (the audit trail) is a durable record: the
        engine calls it (in a worker thread; it must be thread-safe) before it saves state
        that would make the events it got so far impossible to produce again (fills)."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None

    async def flush_durable(self) -> None:
        """Make what the durable subscribers got so far reach their storage."""
        for handler in list(self._handlers):
            flush = getattr(handler, "durable_flush", None)
            if callable(flush):
                try:
                    await asyncio.to_thread(flush)
                except Exception:  # a failing record must never stop trading
                    log.exception("durable flush failed")

    def queue(self, maxsize: int = 1000) -> asyncio.Queue[Event]:
        """A bounded queue for an async reader; when full, the oldest event is dropped."""
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self._queues.append(q)
        return q

    def unsubscribe_queue(self, q: asyncio.Queue[Event]) -> None:
        if q in self._queues:
            self._queues.remove(q)

    def publish(self, event: Event) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # a broken subscriber must never stop trading
                log.exception("event handler failed on %s", event.kind)
        for q in self._queues:
            if q.full():
                try:
                    q.get_nowait()
                    self.dropped += 1
                except asyncio.QueueEmpty:
                    pass
            q.put_nowait(event)
