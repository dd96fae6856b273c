"""The BTC hedge's arithmetic: what the hedge should be and the one order that moves it there.

The strategy's positions (both profiles, every traded coin) add up to a net exposure: long
notional minus short notional at the current prices. With BTC_HEDGE_ENABLED the bot holds an
opposite position on the hedge coin's perpetual (BTC by default) of BTC_HEDGE_RATIO times that
net, capped at BTC_HEDGE_MAX_NOTIONAL. A difference smaller than
BTC_HEDGE_MIN_REBALANCE_NOTIONAL is left alone, two orders are at least BTC_HEDGE_COOLDOWN_SEC
apart, and the hedge is never opened or increased while the hedge market's spread is wider than
BTC_HEDGE_MAX_SPREAD_BPS (reducing it always may: less hedge is less risk on the hedge leg).

Pure functions, no I/O: the runner (engine/runtime/hedge.py) reads the account and sends.
Amounts are contracts rounded DOWN to the market's step (a hedge never overshoots its target).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from engine.exchange.types import Market, Position


@dataclass(frozen=True)
class HedgeParams:
    enabled: bool
    coin: str
    ratio: Decimal
    min_rebalance: Decimal  # USDT
    max_notional: Decimal  # USDT, 0 = no cap
    max_spread_bps: float
    cooldown_ms: int

    @classmethod
    def from_settings(cls, glob: Any) -> "HedgeParams":
        return cls(bool(glob.btc_hedge_enabled), str(glob.btc_hedge_coin).strip().lower(),
                   Decimal(str(glob.btc_hedge_ratio)), Decimal(str(glob.btc_hedge_min_rebalance_notional)),
                   Decimal(str(glob.btc_hedge_max_notional)), float(glob.btc_hedge_max_spread_bps),
                   int(float(glob.btc_hedge_cooldown_sec) * 1000))

    @property
    def symbol(self) -> str:
        return hedge_symbol(self.coin)


def hedge_symbol(coin: str) -> str:
    """The unified symbol of a coin's USDT-M perpetual (``btc`` -> ``BTC/USDT:USDT``)."""
    return f"{coin.strip().upper()}/USDT:USDT"


def signed_notional(pos: Position, price: Decimal, market: Market) -> Decimal:
    """USDT value of a position at `price`: positive long, negative short."""
    value = pos.contracts * market.contract_size * price
    return value if pos.side == "long" else -value


def net_exposure(positions: Iterable[Position], prices: Mapping[str, Decimal],
                 markets: Mapping[str, Market]) -> Decimal:
    """Long minus short notional of the positions on `markets` (the traded coins; the hedge
    coin is not one of them)."""
    total = Decimal(0)
    for pos in positions:
        market = markets.get(pos.symbol)
        price = prices.get(pos.symbol)
        if market is not None and price is not None and price > 0:
            total += signed_notional(pos, price, market)
    return total


def target_notional(params: HedgeParams, net: Decimal) -> Decimal:
    """The signed hedge notional wanted for a net exposure: the opposite of RATIO x net,
    within MAX_NOTIONAL (0 = no cap); zero while the hedge is off."""
    if not params.enabled:
        return Decimal(0)
    target = -params.ratio * net
    if params.max_notional > 0 and abs(target) > params.max_notional:
        target = params.max_notional if target > 0 else -params.max_notional
    return target


@dataclass(frozen=True)
class HedgeOrder:
    kind: str  # open (open or add, market) | reduce (reduce-only market; `contracts` may be all)
    position_side: str  # the hedge position's side the order opens/adds to or reduces
    contracts: Decimal
    notional: Decimal  # USDT, at the price planned with


@dataclass(frozen=True)
class HedgePlan:
    target: Decimal  # signed USDT
    current: Decimal  # signed USDT
    order: HedgeOrder | None
    why: str  # what the order does, or why there is none


def _contracts(notional: Decimal, price: Decimal, market: Market) -> Decimal:
    raw = notional / (price * market.contract_size)
    step = market.amount_step
    return (raw / step).to_integral_value(rounding=ROUND_DOWN) * step


def plan(params: HedgeParams, net: Decimal, position: Position | None, price: Decimal | None, market: Market,
         spread_bps: float | None, now_ms: int, last_order_ms: int | None, blocked: str = "") -> HedgePlan:
    """The one order (or none) that moves the hedge toward its target now.

    A target on the other side of the current hedge first closes the hedge (reduce-only) and
    opens the new side at a later rebalance, so an order never flips a position. `blocked`:
    why no new risk may be taken now (a position without its stop, the hedge's own included):
    the hedge is then reduced or closed, never opened or increased. A hedge that is off is
    closed whatever its size."""
    target = target_notional(params, net)
    if price is None or price <= 0:
        return HedgePlan(target, Decimal(0), None, "no price for the hedge market")
    current = signed_notional(position, price, market) if position is not None else Decimal(0)
    diff = target - current
    if (abs(diff) < params.min_rebalance or diff == 0) and not (position is not None and not params.enabled):
        return HedgePlan(target, current, None, "within the rebalance threshold")
    if last_order_ms is not None and now_ms - last_order_ms < params.cooldown_ms:
        return HedgePlan(target, current, None, "cooling down after the last hedge order")
    if position is not None and (target == 0 or (target > 0) != (current > 0) or abs(target) < abs(current)):
        whole = target == 0 or (target > 0) != (current > 0)
        contracts = position.contracts if whole else min(position.contracts,
                                                         _contracts(abs(current) - abs(target), price, market))
        if contracts <= 0:
            return HedgePlan(target, current, None, "the change is smaller than one contract")
        what = "close the hedge" if contracts >= position.contracts else "reduce the hedge"
        return HedgePlan(target, current, HedgeOrder("reduce", position.side, contracts,
                                                     contracts * market.contract_size * price), what)
    if blocked:
        return HedgePlan(target, current, None, f"new risk blocked ({blocked}): not increased")
    if spread_bps is None:
        return HedgePlan(target, current, None, "hedge market book unavailable: not increased")
    if spread_bps > params.max_spread_bps:
        return HedgePlan(target, current, None, f"spread {spread_bps:.1f} bps > BTC_HEDGE_MAX_SPREAD_BPS "
                                                f"{params.max_spread_bps:g}: not increased")
    contracts = _contracts(abs(diff), price, market)
    if contracts < max(market.min_amount, market.amount_step):
        return HedgePlan(target, current, None, "the change is smaller than the market's minimum order")
    side = "long" if target > 0 else "short"
    return HedgePlan(target, current, HedgeOrder("open", side, contracts, contracts * market.contract_size * price),
                     "open the hedge" if position is None else "increase the hedge")
