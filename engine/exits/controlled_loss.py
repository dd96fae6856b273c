"""The controlled-loss exit: close a stale losing ("zombie") position step by step, at a
loss paid for by recent realized profit.

A position held at least CONTROLLED_LOSS_AFTER_ZOMBIE_MINUTES that is down at least
CONTROLLED_LOSS_MIN_DRAWDOWN from its entry gets one reduce-only limit order closing at most
CONTROLLED_LOSS_MAX_POSITION_FRACTION of it per step. Its price starts near break-even,
CONTROLLED_LOSS_MIN_MOVE_FRACTION of the way from the entry toward the market, and ramps
linearly to the market over CONTROLLED_LOSS_RAMP_MINUTES; the ramp runs faster under an
adverse trend or macro overlay (up to CONTROLLED_LOSS_MACRO_MAX_SPEED_MULTIPLIER) and during
volatility spikes (up to CONTROLLED_LOSS_VOLATILITY_MAX_SPEED_MULTIPLIER). The order is re-priced
every CONTROLLED_LOSS_REPRICE_MINUTES, or earlier in a spike once the ramp moved on by
CONTROLLED_LOSS_VOLATILITY_REPRICE_MIN_MOVE_DELTA. The loss it may realize is bounded twice: by
the profit bank (realized PnL today x TODAY_FRACTION or of the last 7 days x 7D_FRACTION,
whichever is larger; nothing is done below CONTROLLED_LOSS_MIN_BANK_USDT) and, per contract,
by CONTROLLED_LOSS_MAX_LOSS_ON_NOTIONAL of the entry price.

All pure: numbers and settings in, numbers out; the runtime keeps the ramp's state.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Iterable

from engine.exchange.precision import D, meets_minimums, round_amount, round_limit_price
from engine.exchange.types import Market, PositionSide, closing_side
from engine.settings import ProfileSettings

from .ladder import ExitOrder

DAY_MS = 86_400_000
TAG = "controlled_loss"


def _num(x: float | None) -> float | None:
    return None if x is None or x != x or math.isinf(x) else float(x)


def drawdown(side: PositionSide, entry: Decimal, price: Decimal) -> float:
    """Adverse move from the entry as a fraction of it (positive when the position loses)."""
    if entry <= 0:
        return 0.0
    move = float((price - entry) / entry)
    return -move if side == "long" else move


def is_zombie(p: ProfileSettings, minutes_held: float, dd: float) -> bool:
    """Held long enough and far enough under water for the controlled-loss exit."""
    return (p.enable_controlled_loss_exit and minutes_held >= p.controlled_loss_after_zombie_minutes
            and dd >= p.controlled_loss_min_drawdown and dd > 0)


def active(p: ProfileSettings, minutes_held: float, dd: float, started: bool) -> bool:
    """The controlled-loss exit runs: it starts on a zombie and, once started, keeps running
    while the position is still under water (a bounce toward the entry is when its order above
    the market fills; it is not cancelled then)."""
    if not p.enable_controlled_loss_exit or dd <= 0:
        return False
    return started or is_zombie(p, minutes_held, dd)


def realized_windows(trades: Iterable[dict[str, Any]], now_ms: int) -> tuple[Decimal, Decimal]:
    """(realized PnL of the current UTC day, realized PnL of the last 7 days) from trade rows
    with `closed_ms` and `pnl` (as StateStore.trades returns them)."""
    day_start = now_ms - now_ms % DAY_MS
    today = week = Decimal(0)
    for t in trades:
        closed, pnl = int(t["closed_ms"]), D(t["pnl"])
        if closed > now_ms:
            continue
        if closed >= day_start:
            today += pnl
        if closed > now_ms - 7 * DAY_MS:
            week += pnl
    return today, week


def profit_bank(p: ProfileSettings, today: Decimal, week: Decimal, spent: Decimal = Decimal(0)) -> Decimal:
    """The loss the controlled-loss exit may still realize: the larger of today's realized
    profit x TODAY_FRACTION and the 7 days' x 7D_FRACTION, less what it already spent on this
    position; 0 when that is below CONTROLLED_LOSS_MIN_BANK_USDT (no action)."""
    bank = max(max(today, Decimal(0)) * D(p.controlled_loss_profit_bank_today_fraction),
               max(week, Decimal(0)) * D(p.controlled_loss_profit_bank_7d_fraction)) - spent
    if bank <= 0 or bank < D(p.controlled_loss_min_bank_usdt):
        return Decimal(0)
    return bank


def macro_speed(p: ProfileSettings, side: PositionSide, trend_gap: float | None, macro_score: float = 0.0) -> float:
    """Ramp speed-up from an adverse trend or macro overlay: 1 + (max - 1) x intensity, where the
    intensity is the larger of the adverse trend EMA gap / CONTROLLED_LOSS_MACRO_GAP_REFERENCE and
    the macro overlay's adverse direction score (in 0..1), capped at 1."""
    sign = 1 if side == "long" else -1
    gap = _num(trend_gap)
    adverse_gap = max(0.0, -gap * sign) if gap is not None else 0.0
    score = _num(macro_score) or 0.0
    adverse_score = max(0.0, -score * sign)
    intensity = min(1.0, max(adverse_gap / p.controlled_loss_macro_gap_reference, adverse_score))
    return 1.0 + (p.controlled_loss_macro_max_speed_multiplier - 1.0) * intensity


def volatility_reference(p: ProfileSettings) -> float:
    """CONTROLLED_LOSS_VOLATILITY_REFERENCE, or VOLATILITY_REFERENCE when that is 0."""
    return p.controlled_loss_volatility_reference or p.volatility_reference


def volatility_speed(p: ProfileSettings, volatility: float | None) -> float:
    """Ramp speed-up in a volatility spike: (vol / reference) ^ EXPONENT once vol / reference
    exceeds TRIGGER_MULTIPLIER, capped at VOLATILITY_MAX_SPEED_MULTIPLIER; 1 otherwise."""
    vol, ref = _num(volatility), volatility_reference(p)
    if not p.controlled_loss_volatility_speed_enabled or vol is None or ref <= 0:
        return 1.0
    ratio = vol / ref
    if ratio <= p.controlled_loss_volatility_trigger_multiplier:
        return 1.0
    return max(1.0, min(p.controlled_loss_volatility_max_speed_multiplier,
                        ratio ** p.controlled_loss_volatility_exponent))


def speed(p: ProfileSettings, side: PositionSide, trend_gap: float | None, macro_score: float,
          volatility: float | None) -> tuple[float, bool]:
    """(ramp speed multiplier, whether a volatility spike drives it): the larger of the macro
    and volatility speed-ups (they are not compounded)."""
    v = volatility_speed(p, volatility)
    return max(macro_speed(p, side, trend_gap, macro_score), v), v > 1.0


def ramp_fraction(p: ProfileSettings, progress_minutes: float) -> float:
    """How far (0..1) the close price has moved from the entry toward the market after
    `progress_minutes` of (speed-weighted) ramp: MIN_MOVE_FRACTION at the start, 1 after
    CONTROLLED_LOSS_RAMP_MINUTES."""
    start = p.controlled_loss_min_move_fraction
    if p.controlled_loss_ramp_minutes <= 0:
        return 1.0
    return min(1.0, start + (1.0 - start) * max(0.0, progress_minutes) / p.controlled_loss_ramp_minutes)


def reprice_due(p: ProfileSettings, now_ms: int, priced_ms: int | None, fraction: float,
                priced_fraction: float, spike: bool) -> bool:
    """First pricing, every CONTROLLED_LOSS_REPRICE_MINUTES, or sooner during a volatility
    spike once the ramp fraction grew by CONTROLLED_LOSS_VOLATILITY_REPRICE_MIN_MOVE_DELTA."""
    if priced_ms is None:
        return True
    if now_ms - priced_ms >= p.controlled_loss_reprice_minutes * 60_000:
        return True
    return spike and fraction - priced_fraction >= p.controlled_loss_volatility_reprice_min_move_delta > 0


def loss_per_contract(side: PositionSide, entry: Decimal, price: Decimal, market: Market,
                      close_fee_rate: float) -> Decimal:
    """Realized loss of closing one contract at `price` (price loss plus the closing fee)."""
    sign = 1 if side == "long" else -1
    return (max(Decimal(0), (entry - price) * sign) + price * D(close_fee_rate)) * market.contract_size


def close_fee(p: ProfileSettings, side: PositionSide) -> float:
    return p.sell_fee_rate if side == "long" else p.buy_fee_rate


def leaves_dust(p: ProfileSettings, contracts: Decimal, amount: Decimal, price: Decimal, market: Market) -> bool:
    """Closing `amount` would leave a position the dust rule closes at market anyway."""
    rest = contracts - amount
    return (p.dust_close_enabled and amount > 0 and rest > 0
            and rest * market.contract_size * price <= D(p.dust_position_notional))


def close_price(p: ProfileSettings, side: PositionSide, entry: Decimal, price: Decimal, fraction: float,
                market: Market) -> Decimal:
    """entry + fraction x (market - entry), never a loss beyond MAX_LOSS_ON_NOTIONAL of the
    entry; rounded passively (a closing sell up, a closing buy down: never a worse price)."""
    raw = entry + D(fraction) * (price - entry)
    max_loss = D(p.controlled_loss_max_loss_on_notional)
    floor = entry * (1 - max_loss) if side == "long" else entry * (1 + max_loss)
    raw = max(raw, floor) if side == "long" else min(raw, floor)
    return round_limit_price(closing_side(side), raw, market.price_step)


def close_order(p: ProfileSettings, side: PositionSide, entry: Decimal, price: Decimal, contracts: Decimal,
                market: Market, fraction: float, bank: Decimal) -> ExitOrder | None:
    """The controlled-loss order of one step: at most MAX_POSITION_FRACTION of the position,
    fewer contracts when the bank cannot pay for the loss at the ramp price; None when nothing
    meets the venue minimums (or the bank is empty). A remainder that would be dust (the dust
    rule closes it at market) is included, when the bank pays for it."""
    if bank <= 0 or contracts <= 0:
        return None
    px = close_price(p, side, entry, price, fraction, market)
    amount = round_amount(contracts * D(p.controlled_loss_max_position_fraction), market.amount_step)
    if leaves_dust(p, contracts, amount, price, market):
        amount = contracts
    per = loss_per_contract(side, entry, px, market, close_fee(p, side))
    if per > 0:
        amount = min(amount, round_amount(bank / per, market.amount_step))
    if amount <= 0 or not meets_minimums(market, amount, px):
        return None
    return ExitOrder(TAG, px, amount)


def time_exit_within_bank(p: ProfileSettings, side: PositionSide, entry: Decimal, order: ExitOrder,
                          market: Market, bank: Decimal) -> ExitOrder | None:
    """HARD_TIME_EXIT_BYPASS_PROFIT_BANK off: the hard time exit's step `order` when it would
    realize a loss (its price, less the closing fee, is on the losing side of the entry) is
    sized like the controlled-loss order - no more contracts than the profit bank pays for at
    that price - and withheld (None) when the bank is empty or what it pays for is below the
    venue minimums. A step that takes a profit is returned unchanged."""
    if not realizes_loss(p, side, entry, order.price):
        return order
    per = loss_per_contract(side, entry, order.price, market, close_fee(p, side))
    if bank <= 0 or per <= 0:
        return None
    amount = min(order.amount, round_amount(bank / per, market.amount_step))
    if amount <= 0 or not meets_minimums(market, amount, order.price):
        return None
    return ExitOrder(order.tag, order.price, amount)


def realizes_loss(p: ProfileSettings, side: PositionSide, entry: Decimal, price: Decimal) -> bool:
    """Closing at `price` loses money: the price, less the closing fee, on the losing side of
    the entry."""
    sign = 1 if side == "long" else -1
    return (price - entry) * sign - price * D(close_fee(p, side)) < 0
