"""The exchange-side reduce-only hard stop: where it sits and how big it is.

distance = max(HARD_STOP_LOSS_PCT, ATR rate x HARD_STOP_LOSS_ATR_MULTIPLIER), where the ATR part
is capped at HARD_STOP_LOSS_ATR_MAX_PCT; the fixed distance alone when the ATR is unknown (for
example right after a restart). The trigger rounds toward the market and the amount rounds
down, so the stop fires no later than computed and is never larger than the position.
"""

from __future__ import annotations

from decimal import Decimal

from engine.exchange.precision import D, round_amount, round_stop_trigger
from engine.exchange.types import Market, PositionSide
from engine.settings import ProfileSettings


def stop_distance(p: ProfileSettings, atr_rate: float | None) -> float:
    fixed = p.hard_stop_loss_pct
    if not p.hard_stop_loss_atr_enabled or atr_rate is None or atr_rate != atr_rate or atr_rate <= 0:
        return fixed
    widened = min(atr_rate * p.hard_stop_loss_atr_multiplier, p.hard_stop_loss_atr_max_pct)
    return max(fixed, widened)


def stop_trigger(side: PositionSide, entry_price: Decimal, distance: float, market: Market) -> Decimal:
    raw = entry_price * (1 - D(distance)) if side == "long" else entry_price * (1 + D(distance))
    return round_stop_trigger(side, raw, market.price_step)


def breakeven_trigger(side: PositionSide, entry_price: Decimal, fee_rate_round_trip: float,
                      market: Market) -> Decimal:
    """A stop that locks breakeven including fees (used once the runner has activated)."""
    raw = entry_price * (1 + D(fee_rate_round_trip)) if side == "long" else \
        entry_price * (1 - D(fee_rate_round_trip))
    return round_stop_trigger(side, raw, market.price_step)


def stop_amount(position_contracts: Decimal, market: Market) -> Decimal:
    return round_amount(position_contracts, market.amount_step)


def stop_is_protective(side: PositionSide, trigger: Decimal, mark_price: Decimal) -> bool:
    """A stop must sit on the losing side of the market, or the exchange would fire it at once."""
    return trigger < mark_price if side == "long" else trigger > mark_price


def emergency_breached(p: ProfileSettings, side: PositionSide, entry_price: Decimal,
                       price: Decimal) -> bool:
    """True when the price moved HARD_STOP_LOSS_MIN_EMERGENCY_PCT against a position: if no
    stop can be placed, such a position is closed at market instead of waiting."""
    limit = D(p.hard_stop_loss_min_emergency_pct)
    if side == "long":
        return price <= entry_price * (1 - limit)
    return price >= entry_price * (1 + limit)
