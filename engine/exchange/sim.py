"""In-process simulated exchange with the `Exchange` interface (paper mode, replay, tests).

Deterministic: no randomness and no wall clock; time advances only through `on_candle` /
`set_price`. The model, and where it is deliberately conservative:

- Book: best bid = last price floored to the tick, best ask = bid + `spread_ticks` ticks.
- Post-only: rejected with `PostOnlyWouldCross` when a buy is >= ask or a sell is <= bid.
- Resting limits fill at their limit price (maker fee) when a candle trades *through* them
  (low < buy price, high > sell price; `fill_on_touch` also fills at equality). At most
  `partial_fill_fraction` of an order's amount fills per candle (at least one amount step).
- Reduce-only: only against an open position of the opposite side, never more than the
  position (capped again at fill time), never opens or flips. Placement is refused with
  `ReduceOnlyFrozen` when the amount exceeds the *closeable* amount = position minus what open
  reduce-only orders already reserve (stops included when `stops_reserve_closeable`), as HTX
  does. When a position goes flat its remaining reduce-only orders and stops are cancelled.
- Stops trigger when the candle's low (long) / high (short) reaches the trigger and fill at the
  trigger, or at the open when the candle gaps through it (worse price), plus
  `slippage_ticks`, taker fee. Within one candle stops are processed before limits (the
  pessimistic order: the adverse extreme is assumed first).
- A marketable reduce-only limit or a market close fills at once at the touch (taker).
- Cross margin: equity = wallet + unrealized PnL (at the last price); used margin = position
  notional / leverage + open entry orders' notional / leverage; free = equity - used margin.
  New entries need free margin (`InsufficientMargin`).
- Liquidation price (approximation, documented as such): a position is liquidated when account
  equity falls to the maintenance margin (`maintenance_margin_rate` x notional) while the other
  positions stay at their last price. For a long with Q coin at entry E and W = wallet + other
  positions' (unrealized PnL - maintenance margin): P = (E*Q - W) / ((1 - mmr) * Q); for a short
  P = (E*Q + W) / ((1 + mmr) * Q). No liquidation price when P <= 0. A candle whose extreme
  reaches it closes the position at P without fee; the wallet is floored at zero.
- Funding: at every multiple of `funding_interval_ms` that falls inside a candle, each position
  pays (long, positive rate) or receives notional-at-open x rate. A symbol given recorded
  funding events (`set_funding_events`, e.g. a replay's funding files) is charged at those
  event times and rates instead (an event inside a data gap settles at the next candle's open).
- Client order ids: placing an id that exists returns the existing order (in any state);
  reusing it for a different symbol/side/kind is `InvalidOrder`.
- Attached stops (`place_post_only(..., stop_loss=trigger)`, HTX's order-level SL): the stop
  is "not activated" until the order has filled COMPLETELY; it then rests as a reduce-only
  market stop for the order's volume, with no client id. A partial fill activates nothing
  and an order cancelled part-filled takes its stop with it (HTX does not document either
  case; this is the less kind reading). Activation fails, and is recorded in
  `attached_failures`, when there is no position of that side, when the closeable amount is
  reserved (with `stops_reserve_closeable`) or when the fill price is already through the
  trigger. Within its fill candle an attached stop does not trigger (stops are processed
  before limits).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from . import errors as E
from .base import amend_by_cancel_replace
from .client_ids import is_valid_client_order_id
from .precision import (
    D,
    attached_stop_trigger,
    check_minimums,
    floor_to_step,
    fmt,
    round_amount,
    round_limit_price,
    round_stop_trigger,
)
from .types import (
    Balance,
    BookTop,
    Fill,
    FundingRate,
    Market,
    Order,
    OrderKind,
    OrderStatus,
    Position,
    PositionSide,
    Side,
    closing_side,
)

ZERO = Decimal(0)


@dataclass
class SimConfig:
    initial_wallet: Decimal = Decimal("10000")
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    default_leverage: Decimal = Decimal("5")
    maintenance_margin_rate: Decimal = Decimal("0.005")
    partial_fill_fraction: Decimal = Decimal("1")
    spread_ticks: int = 1
    slippage_ticks: int = 0
    candle_ms: int = 300_000
    funding_interval_ms: int = 8 * 3600 * 1000
    fill_on_touch: bool = False
    stops_reserve_closeable: bool = True
    name: str = "sim"

    def __post_init__(self) -> None:
        if not (ZERO < self.partial_fill_fraction <= 1):
            raise ValueError("partial_fill_fraction must be in (0, 1]")
        if self.spread_ticks < 1:
            raise ValueError("spread_ticks must be >= 1")


@dataclass
class _SimOrder:
    id: str
    client_order_id: int | None
    symbol: str
    side: Side
    kind: OrderKind
    price: Decimal | None
    trigger_price: Decimal | None
    amount: Decimal
    reduce_only: bool
    post_only: bool
    ts_ms: int
    filled: Decimal = ZERO
    cost: Decimal = ZERO  # sum of fill price x contracts, for the average price
    status: OrderStatus = "open"
    attached_stop: Decimal | None = None  # trigger of the stop the venue activates on full fill

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    def snapshot(self) -> Order:
        return Order(
            id=self.id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            kind=self.kind,
            price=self.price,
            trigger_price=self.trigger_price,
            amount=self.amount,
            filled=self.filled,
            status=self.status,
            reduce_only=self.reduce_only,
            post_only=self.post_only,
            ts_ms=self.ts_ms,
            average_price=(self.cost / self.filled) if self.filled > 0 else None,
        )


@dataclass
class _SimPosition:
    contracts: Decimal  # signed: > 0 long, < 0 short
    entry_price: Decimal

    @property
    def side(self) -> PositionSide:
        return "long" if self.contracts > 0 else "short"


@dataclass
class FundingPayment:
    symbol: str
    ts_ms: int
    rate: Decimal
    amount: Decimal  # wallet change: negative = paid


@dataclass
class _SymbolState:
    last: Decimal | None = None
    funding_rate: Decimal = ZERO
    next_funding_ms: int | None = None
    funding_events: list[tuple[int, Decimal]] | None = None  # recorded (time, rate), oldest first
    funding_cursor: int = 0  # first recorded event not settled yet
    leverage: Decimal | None = None
    orders: dict[str, _SimOrder] = field(default_factory=dict)  # open orders only


class SimulatedExchange:
    """Deterministic `Exchange`: drive it with `set_price` and `on_candle`."""

    def __init__(self, markets: Iterable[Market], config: SimConfig | None = None, *, start_ms: int = 0):
        self.config = config or SimConfig()
        self.name = self.config.name
        self._markets = {m.symbol: m for m in markets}
        if not self._markets:
            raise ValueError("at least one market is required")
        self._state = {s: _SymbolState() for s in self._markets}
        self._wallet = self.config.initial_wallet
        self._positions: dict[str, _SimPosition] = {}
        self._orders: dict[str, _SimOrder] = {}  # every order ever placed
        self._by_cid: dict[int, _SimOrder] = {}
        self.attached_from: dict[str, str] = {}  # attached stop id -> the order it came with
        self.attached_failures: list[str] = []
        self._fills: list[Fill] = []
        self.funding_payments: list[FundingPayment] = []
        self._seq = 0
        self._fill_seq = 0
        #: placements that arrived with an already used client id (answered with the existing
        #: order); a retry layer that reconciles before resending keeps this at zero
        self.resubmissions = 0
        self._now = start_ms

    # ------------------------------------------------------------------ driving the simulation

    @property
    def now_ms(self) -> int:
        return self._now

    def set_price(self, symbol: str, price: Decimal | str | float, ts_ms: int | None = None) -> None:
        """Set the last price (and clock) without trading; use for the initial state."""
        self._symbol(symbol).last = D(price)
        if ts_ms is not None:
            self._now = max(self._now, ts_ms)

    def set_funding_rate(self, symbol: str, rate: Decimal | str | float) -> None:
        self._symbol(symbol).funding_rate = D(rate)

    def set_funding_events(self, symbol: str, events: Iterable[tuple[int, Decimal | str | float]]) -> None:
        """Charge `symbol` at these recorded (time ms, rate) events instead of the fixed
        interval; events before the clock are never charged."""
        state = self._symbol(symbol)
        ordered = sorted((int(t), D(r)) for t, r in events)
        state.funding_events = ordered
        state.funding_cursor = next((i for i, (t, _) in enumerate(ordered) if t >= self._now), len(ordered))

    def set_leverage(self, symbol: str, leverage: Decimal | str | int) -> None:
        self._symbol(symbol).leverage = D(leverage)

    def on_candle(self, symbol: str, ts_ms: int, open_, high, low, close) -> None:
        """Advance `symbol` through one closed candle [ts_ms, ts_ms + candle_ms)."""
        o, h, lo, c = D(open_), D(high), D(low), D(close)
        if not (lo <= min(o, c) and h >= max(o, c) and lo > 0):
            raise ValueError(f"inconsistent candle {ts_ms}: o={o} h={h} l={lo} c={c}")
        state = self._symbol(symbol)
        end = ts_ms + self.config.candle_ms
        fill_ts = end - 1
        self._now = max(self._now, ts_ms)
        state.last = o
        self._apply_funding(symbol, ts_ms, end, o)
        self._trigger_stops(symbol, o, h, lo, fill_ts)
        self._fill_limits(symbol, o, h, lo, fill_ts)
        self._check_liquidation(symbol, h, lo, fill_ts)
        state.last = c
        self._now = max(self._now, end)

    # ------------------------------------------------------------------ reads

    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        return dict(self._markets)

    def market(self, symbol: str) -> Market:
        try:
            return self._markets[symbol]
        except KeyError:
            raise E.InvalidOrder(f"unknown market {symbol}", venue=self.name) from None

    async def fetch_balance(self) -> Balance:
        equity = self.equity()
        used = self.used_margin()
        return Balance(
            equity=equity,
            free=equity - used,
            used_margin=used,
            unrealized_pnl=sum((self._upnl(s) for s in self._positions), ZERO),
            currency="USDT",
            ts_ms=self._now,
        )

    async def fetch_positions(self, symbols: Sequence[str] | None = None) -> list[Position]:
        result = []
        for symbol, pos in sorted(self._positions.items()):
            if symbols is not None and symbol not in symbols:
                continue
            result.append(
                Position(
                    symbol=symbol,
                    side=pos.side,
                    contracts=abs(pos.contracts),
                    entry_price=pos.entry_price,
                    mark_price=self._state[symbol].last,
                    unrealized_pnl=self._upnl(symbol),
                    leverage=self._leverage(symbol),
                    liquidation_price=self.liquidation_price(symbol),
                    closeable=abs(pos.contracts) - self._reserved(symbol),
                    margin_mode="cross",
                    ts_ms=self._now,
                )
            )
        return result

    async def fetch_open_orders(self, symbols: Sequence[str] | None = None) -> list[Order]:
        return [
            o.snapshot()
            for o in self._orders.values()
            if o.status == "open" and (symbols is None or o.symbol in symbols)
        ]

    async def fetch_order(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        client_order_id: int | None = None,
        kind: OrderKind = "limit",
    ) -> Order | None:
        if (order_id is None) == (client_order_id is None):
            raise E.InvalidOrder("pass exactly one of order_id and client_order_id", venue=self.name)
        order = self._orders.get(order_id) if order_id is not None else self._by_cid.get(client_order_id)
        if order is None or order.symbol != symbol:
            return None
        return order.snapshot()

    async def fetch_fills(self, symbols: Sequence[str], since_ms: int) -> list[Fill]:
        return [f for f in self._fills if f.ts_ms >= since_ms and f.symbol in symbols]

    async def fetch_funding_rates(self, symbols: Sequence[str]) -> dict[str, FundingRate]:
        interval = self.config.funding_interval_ms
        result = {}
        for symbol in symbols:
            state = self._symbol(symbol)
            if state.funding_events is not None:
                # the venue shows the rate of the coming settlement: the first recorded event
                # not settled yet and not before the clock (the cursor lags while this
                # symbol's candles are not fed); after the last recorded event nothing is known
                events = state.funding_events
                i = max(state.funding_cursor, bisect.bisect_left(events, (self._now,)))
                ev = events[i:i + 2]
                result[symbol] = FundingRate(
                    symbol=symbol, rate=ev[0][1] if ev else ZERO,
                    funding_time_ms=ev[0][0] if ev else None,
                    next_funding_time_ms=ev[1][0] if len(ev) > 1 else None, interval=None)
                continue
            upcoming = self._next_funding_time(self._now)
            result[symbol] = FundingRate(
                symbol=symbol,
                rate=state.funding_rate,
                funding_time_ms=upcoming,
                next_funding_time_ms=upcoming + interval,
                interval=f"{interval // 3_600_000}h" if interval % 3_600_000 == 0 else None,
            )
        return result

    async def fetch_leverage(self, symbol: str) -> Decimal | None:
        return self._leverage(symbol)

    async def fetch_order_book_top(self, symbols: Sequence[str]) -> dict[str, BookTop]:
        result = {}
        for symbol in symbols:
            if self._symbol(symbol).last is None:
                continue
            bid, ask = self._touch(symbol)
            result[symbol] = BookTop(
                venue=self.name,
                symbol=symbol,
                bid=bid,
                ask=ask,
                bid_size=None,
                ask_size=None,
                venue_ts_ms=self._now,
                received_ms=self._now,
            )
        return result

    async def close(self) -> None:
        return None

    # ------------------------------------------------------------------ account arithmetic

    def equity(self) -> Decimal:
        return self._wallet + sum((self._upnl(s) for s in self._positions), ZERO)

    @property
    def wallet(self) -> Decimal:
        return self._wallet

    def used_margin(self) -> Decimal:
        used = ZERO
        for symbol, pos in self._positions.items():
            used += self._notional(symbol, abs(pos.contracts), self._mark(symbol)) / self._leverage(symbol)
        for order in self._orders.values():
            if order.status == "open" and not order.reduce_only and order.price is not None:
                used += self._notional(order.symbol, order.remaining, order.price) / self._leverage(order.symbol)
        return used

    def liquidation_price(self, symbol: str) -> Decimal | None:
        pos = self._positions.get(symbol)
        if pos is None:
            return None
        mmr = self.config.maintenance_margin_rate
        others = ZERO
        for other, other_pos in self._positions.items():
            if other != symbol:
                mark = self._mark(other)
                others += self._upnl(other) - mmr * self._notional(other, abs(other_pos.contracts), mark)
        w = self._wallet + others
        q = abs(pos.contracts) * self._markets[symbol].contract_size
        e = pos.entry_price
        price = (e * q - w) / ((1 - mmr) * q) if pos.contracts > 0 else (e * q + w) / ((1 + mmr) * q)
        return price if price > 0 else None

    def all_orders(self, symbol: str | None = None) -> list[Order]:
        """Every order ever accepted (any state), in placement order - for tests and audits."""
        return [o.snapshot() for o in self._orders.values() if symbol is None or o.symbol == symbol]

    # ------------------------------------------------------------------ placement

    async def place_post_only(
        self, symbol: str, side: Side, amount: Decimal, price: Decimal, client_order_id: int,
        *, stop_loss: Decimal | None = None,
    ) -> Order:
        existing = self._existing(client_order_id, symbol, side, "limit", reduce_only=False)
        if existing is not None:
            return existing
        market = self.market(symbol)
        amount = round_amount(amount, market.amount_step)
        price = round_limit_price(side, price, market.price_step)
        check_minimums(market, amount, price)
        attached = None
        if stop_loss is not None:
            attached = attached_stop_trigger(side, stop_loss, price, market.price_step)
            if attached is None:
                raise E.InvalidOrder(f"attached stop {fmt(stop_loss)} is not beyond the {side} price {fmt(price)}",
                                     venue=self.name)
        bid, ask = self._touch(symbol)
        if (side == "buy" and price >= ask) or (side == "sell" and price <= bid):
            raise E.PostOnlyWouldCross(
                f"post-only {side} {fmt(price)} would cross (bid {fmt(bid)}, ask {fmt(ask)})", venue=self.name
            )
        required = self._notional(symbol, amount, price) / self._leverage(symbol)
        free = self.equity() - self.used_margin()
        if required > free:
            raise E.InsufficientMargin(
                f"needs {fmt(required)} margin, {fmt(free)} free", venue=self.name
            )
        order = self._new_order(client_order_id, symbol, side, "limit", price, None, amount, False, True)
        order.attached_stop = attached
        return order.snapshot()

    async def place_reduce_only_limit(
        self,
        symbol: str,
        position_side: PositionSide,
        amount: Decimal,
        price: Decimal,
        client_order_id: int,
    ) -> Order:
        side = closing_side(position_side)
        existing = self._existing(client_order_id, symbol, side, "limit", reduce_only=True)
        if existing is not None:
            return existing
        market = self.market(symbol)
        amount = round_amount(amount, market.amount_step)
        price = round_limit_price(side, price, market.price_step)
        check_minimums(market, amount, None)
        self._require_closeable(symbol, position_side, amount)
        order = self._new_order(client_order_id, symbol, side, "limit", price, None, amount, True, False)
        bid, ask = self._touch(symbol)
        if (side == "sell" and price <= bid) or (side == "buy" and price >= ask):
            self._fill(order, order.remaining, bid if side == "sell" else ask, maker=False, ts=self._now)
        return order.snapshot()

    async def close_reduce_only_market(
        self, symbol: str, position_side: PositionSide, amount: Decimal, client_order_id: int
    ) -> Order:
        return self._market(symbol, closing_side(position_side), amount, client_order_id, position_side)

    async def open_market(self, symbol: str, side: Side, amount: Decimal, client_order_id: int) -> Order:
        return self._market(symbol, side, amount, client_order_id, None)

    def _market(self, symbol: str, side: Side, amount: Decimal, client_order_id: int,
                reduces: PositionSide | None) -> Order:
        """A market order filled at once at the touch: reduce-only against `reduces`, else an
        open or add that needs the margin."""
        existing = self._existing(client_order_id, symbol, side, "market", reduce_only=reduces is not None)
        if existing is not None:
            return existing
        market = self.market(symbol)
        amount = round_amount(amount, market.amount_step)
        check_minimums(market, amount, None)
        price = self._taker_price(symbol, side)
        if reduces is not None:
            self._require_closeable(symbol, reduces, amount)
        else:
            required = self._notional(symbol, amount, price) / self._leverage(symbol)
            free = self.equity() - self.used_margin()
            if required > free:
                raise E.InsufficientMargin(f"needs {fmt(required)} margin, {fmt(free)} free", venue=self.name)
        order = self._new_order(client_order_id, symbol, side, "market", None, None, amount, reduces is not None, False)
        self._fill(order, order.remaining, price, maker=False, ts=self._now)
        return order.snapshot()

    async def place_stop_loss(
        self,
        symbol: str,
        position_side: PositionSide,
        amount: Decimal,
        trigger_price: Decimal,
        client_order_id: int,
    ) -> Order:
        side = closing_side(position_side)
        existing = self._existing(client_order_id, symbol, side, "stop_loss", reduce_only=True)
        if existing is not None:
            return existing
        market = self.market(symbol)
        amount = round_amount(amount, market.amount_step)
        trigger = round_stop_trigger(position_side, trigger_price, market.price_step)
        check_minimums(market, amount, None)
        if self.config.stops_reserve_closeable:
            self._require_closeable(symbol, position_side, amount)
        else:
            self._require_position(symbol, position_side)
        last = self._symbol(symbol).last
        if last is not None and ((side == "sell" and trigger >= last) or (side == "buy" and trigger <= last)):
            raise E.InvalidOrder(
                f"stop trigger {fmt(trigger)} already crossed (last {fmt(last)})", venue=self.name
            )
        order = self._new_order(client_order_id, symbol, side, "stop_loss", None, trigger, amount, True, False)
        return order.snapshot()

    async def cancel_order(self, order: Order) -> Order:
        sim_order = self._orders.get(order.id)
        if sim_order is None:
            raise E.OrderNotFound(f"order {order.id} unknown", venue=self.name)
        if sim_order.status == "open":
            self._close_order(sim_order, "canceled")
        return sim_order.snapshot()

    async def amend_order(
        self,
        order: Order,
        *,
        new_client_order_id: int,
        price: Decimal | None = None,
        amount: Decimal | None = None,
    ) -> Order | None:
        return await amend_by_cancel_replace(
            self, order, new_client_order_id=new_client_order_id, price=price, amount=amount
        )

    # ------------------------------------------------------------------ internals: orders

    def _existing(
        self, client_order_id: int, symbol: str, side: Side, kind: OrderKind, *, reduce_only: bool
    ) -> Order | None:
        if not is_valid_client_order_id(client_order_id):
            raise E.InvalidOrder(f"client order id must be an int in [1, 2**53): {client_order_id!r}")
        order = self._by_cid.get(client_order_id)
        if order is None:
            return None
        self.resubmissions += 1
        if (order.symbol, order.side, order.kind, order.reduce_only) != (symbol, side, kind, reduce_only):
            raise E.InvalidOrder(
                f"client order id {client_order_id} already used by {order.kind} {order.side} {order.symbol}",
                venue=self.name,
            )
        return order.snapshot()

    def _new_order(
        self,
        client_order_id: int | None,
        symbol: str,
        side: Side,
        kind: OrderKind,
        price: Decimal | None,
        trigger: Decimal | None,
        amount: Decimal,
        reduce_only: bool,
        post_only: bool,
    ) -> _SimOrder:
        self._seq += 1
        order = _SimOrder(
            id=f"{self.name}-{self._seq}",
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            kind=kind,
            price=price,
            trigger_price=trigger,
            amount=amount,
            reduce_only=reduce_only,
            post_only=post_only,
            ts_ms=self._now,
        )
        self._orders[order.id] = order
        if client_order_id is not None:
            self._by_cid[client_order_id] = order
        self._state[symbol].orders[order.id] = order
        return order

    def _close_order(self, order: _SimOrder, status: OrderStatus) -> None:
        order.status = status
        self._state[order.symbol].orders.pop(order.id, None)

    def _require_position(self, symbol: str, position_side: PositionSide) -> _SimPosition:
        pos = self._positions.get(symbol)
        if pos is None or pos.side != position_side:
            raise E.ReduceOnlyFrozen(f"no {position_side} position on {symbol} to reduce", venue=self.name)
        return pos

    def _reserved(self, symbol: str) -> Decimal:
        return sum(
            (
                o.remaining
                for o in self._state[symbol].orders.values()
                if o.reduce_only and (o.kind != "stop_loss" or self.config.stops_reserve_closeable)
            ),
            ZERO,
        )

    def _require_closeable(self, symbol: str, position_side: PositionSide, amount: Decimal) -> None:
        pos = self._require_position(symbol, position_side)
        closeable = abs(pos.contracts) - self._reserved(symbol)
        if amount > closeable:
            raise E.ReduceOnlyFrozen(
                f"{fmt(amount)} contracts > closeable {fmt(closeable)} on {symbol} (reserved by close orders)",
                venue=self.name,
            )

    # ------------------------------------------------------------------ internals: prices

    def _symbol(self, symbol: str) -> _SymbolState:
        try:
            return self._state[symbol]
        except KeyError:
            raise E.InvalidOrder(f"unknown market {symbol}", venue=self.name) from None

    def _touch(self, symbol: str) -> tuple[Decimal, Decimal]:
        last = self._symbol(symbol).last
        if last is None:
            raise E.InvalidOrder(f"no price for {symbol} yet", venue=self.name)
        tick = self._markets[symbol].price_step
        bid = floor_to_step(last, tick)
        return bid, bid + tick * self.config.spread_ticks

    def _taker_price(self, symbol: str, side: Side) -> Decimal:
        bid, ask = self._touch(symbol)
        slip = self._markets[symbol].price_step * self.config.slippage_ticks
        return ask + slip if side == "buy" else max(bid - slip, self._markets[symbol].price_step)

    def _mark(self, symbol: str) -> Decimal:
        last = self._state[symbol].last
        return last if last is not None else self._positions[symbol].entry_price

    def _leverage(self, symbol: str) -> Decimal:
        return self._symbol(symbol).leverage or self.config.default_leverage

    def _notional(self, symbol: str, contracts: Decimal, price: Decimal) -> Decimal:
        return contracts * self._markets[symbol].contract_size * price

    def _upnl(self, symbol: str) -> Decimal:
        pos = self._positions.get(symbol)
        if pos is None:
            return ZERO
        return pos.contracts * self._markets[symbol].contract_size * (self._mark(symbol) - pos.entry_price)

    # ------------------------------------------------------------------ internals: matching

    def _trigger_stops(self, symbol: str, o: Decimal, h: Decimal, lo: Decimal, ts: int) -> None:
        tick = self._markets[symbol].price_step
        slip = tick * self.config.slippage_ticks
        stops = [x for x in self._state[symbol].orders.values() if x.kind == "stop_loss"]
        for stop in sorted(stops, key=lambda x: x.id):
            if stop.status != "open":
                continue
            trigger = stop.trigger_price
            assert trigger is not None
            if stop.side == "sell" and lo <= trigger:
                price = (o if o <= trigger else trigger) - slip
            elif stop.side == "buy" and h >= trigger:
                price = (o if o >= trigger else trigger) + slip
            else:
                continue
            self._fill(stop, stop.remaining, max(price, tick), maker=False, ts=ts)

    def _fill_limits(self, symbol: str, o: Decimal, h: Decimal, lo: Decimal, ts: int) -> None:
        market = self._markets[symbol]
        touch = self.config.fill_on_touch
        limits = [x for x in self._state[symbol].orders.values() if x.kind == "limit"]
        for order in sorted(limits, key=lambda x: x.id):
            if order.status != "open":
                continue
            price = order.price
            assert price is not None
            if order.side == "buy":
                crossed = lo < price or (touch and lo <= price)
            else:
                crossed = h > price or (touch and h >= price)
            if not crossed:
                continue
            per_candle = round_amount(order.amount * self.config.partial_fill_fraction, market.amount_step)
            qty = min(order.remaining, max(per_candle, market.amount_step))
            self._fill(order, qty, price, maker=True, ts=ts)

    def _fill(self, order: _SimOrder, qty: Decimal, price: Decimal, *, maker: bool, ts: int) -> None:
        symbol = order.symbol
        market = self._markets[symbol]
        pos = self._positions.get(symbol)
        if order.reduce_only:
            reducible = abs(pos.contracts) if pos is not None and pos.side != _side_of(order.side) else ZERO
            qty = min(qty, reducible)
            if qty <= 0:
                self._close_order(order, "canceled")  # nothing left to reduce
                return
        rate = self.config.maker_fee if maker else self.config.taker_fee
        fee = qty * market.contract_size * price * rate
        self._wallet -= fee
        signed = qty if order.side == "buy" else -qty
        realized = ZERO
        if pos is None or pos.contracts == 0:
            self._positions[symbol] = _SimPosition(signed, price)
        elif (pos.contracts > 0) == (signed > 0):
            total = pos.contracts + signed
            pos.entry_price = (pos.entry_price * pos.contracts + price * signed) / total
            pos.contracts = total
        else:
            closing = min(abs(signed), abs(pos.contracts))
            direction = 1 if pos.contracts > 0 else -1
            realized = closing * market.contract_size * (price - pos.entry_price) * direction
            self._wallet += realized
            new_contracts = pos.contracts + signed
            if new_contracts == 0:
                del self._positions[symbol]
            elif (new_contracts > 0) != (pos.contracts > 0):
                self._positions[symbol] = _SimPosition(new_contracts, price)  # flip (non reduce-only)
            else:
                pos.contracts = new_contracts
        order.filled += qty
        order.cost += qty * price
        if order.remaining <= 0:
            self._close_order(order, "filled")
            if order.attached_stop is not None and not order.reduce_only:
                self._activate_attached(order, price, ts)
        self._fill_seq += 1
        self._fills.append(
            Fill(
                id=f"{self.name}-fill-{self._fill_seq}",
                order_id=order.id,
                client_order_id=order.client_order_id,
                symbol=symbol,
                side=order.side,
                price=price,
                amount=qty,
                fee=fee,
                fee_currency="USDT",
                maker=maker,
                ts_ms=ts,
                realized_pnl=realized,
            )
        )
        if symbol not in self._positions:
            self._cancel_reduce_only(symbol)

    def _activate_attached(self, parent: _SimOrder, price: Decimal, ts: int) -> None:
        """The stop that came with a fully filled order starts resting (see module doc)."""
        trigger, symbol = parent.attached_stop, parent.symbol
        assert trigger is not None
        position_side = _side_of(parent.side)
        pos = self._positions.get(symbol)
        why = ""
        if pos is None or pos.side != position_side:
            why = f"no {position_side} position"
        elif self.config.stops_reserve_closeable and parent.amount > abs(pos.contracts) - self._reserved(symbol):
            why = "closeable amount reserved"
        elif trigger >= price if position_side == "long" else trigger <= price:
            why = f"trigger {fmt(trigger)} already crossed at {fmt(price)}"
        if why:
            self.attached_failures.append(f"{parent.id}: {why}")
            return
        stop = self._new_order(None, symbol, closing_side(position_side), "stop_loss", None, trigger,
                               parent.amount, True, False)
        stop.ts_ms = ts
        self.attached_from[stop.id] = parent.id

    def _cancel_reduce_only(self, symbol: str) -> None:
        for order in list(self._state[symbol].orders.values()):
            if order.reduce_only:
                self._close_order(order, "canceled")

    # ------------------------------------------------------------------ internals: funding, liquidation

    def _next_funding_time(self, t: int) -> int:
        interval = self.config.funding_interval_ms
        return -(-t // interval) * interval

    def _apply_funding(self, symbol: str, start: int, end: int, price: Decimal) -> None:
        state = self._state[symbol]
        if state.funding_events is not None:
            events = state.funding_events
            while state.funding_cursor < len(events) and events[state.funding_cursor][0] < end:
                when, rate = events[state.funding_cursor]
                state.funding_cursor += 1
                pos = self._positions.get(symbol)
                if pos is None or rate == 0:
                    continue
                amount = -pos.contracts * self._markets[symbol].contract_size * price * rate
                self._wallet += amount
                self.funding_payments.append(FundingPayment(symbol, when, rate, amount))
            return
        if state.next_funding_ms is None:
            state.next_funding_ms = self._next_funding_time(start)
        while state.next_funding_ms < end:
            when = state.next_funding_ms  # (times inside a data gap are settled at this open)
            state.next_funding_ms += self.config.funding_interval_ms
            pos = self._positions.get(symbol)
            if pos is None or state.funding_rate == 0:
                continue
            amount = -pos.contracts * self._markets[symbol].contract_size * price * state.funding_rate
            self._wallet += amount
            self.funding_payments.append(FundingPayment(symbol, when, state.funding_rate, amount))

    def _check_liquidation(self, symbol: str, h: Decimal, lo: Decimal, ts: int) -> None:
        pos = self._positions.get(symbol)
        if pos is None:
            return
        liq = self.liquidation_price(symbol)
        if liq is None or not ((pos.contracts > 0 and lo <= liq) or (pos.contracts < 0 and h >= liq)):
            return
        market = self._markets[symbol]
        realized = pos.contracts * market.contract_size * (liq - pos.entry_price)
        self._wallet = max(self._wallet + realized, ZERO)
        self._seq += 1
        self._fill_seq += 1
        self._fills.append(
            Fill(
                id=f"{self.name}-fill-{self._fill_seq}",
                order_id=f"{self.name}-liquidation-{self._seq}",
                client_order_id=None,
                symbol=symbol,
                side="sell" if pos.contracts > 0 else "buy",
                price=liq,
                amount=abs(pos.contracts),
                fee=ZERO,
                fee_currency="USDT",
                maker=False,
                ts_ms=ts,
                realized_pnl=realized,
            )
        )
        del self._positions[symbol]
        for order in list(self._state[symbol].orders.values()):
            self._close_order(order, "canceled")


def _side_of(order_side: Side) -> PositionSide:
    """The position side an order of `order_side` would build."""
    return "long" if order_side == "buy" else "short"
