"""The soft-defensive exit: reduce a losing position step by step when its signal broke and
BTC moves against it.

Each signal update (a decision on a newly closed candle) is checked: the position's signal is
no longer valid, it is down at least SOFT_DEFENSIVE_EXIT_MIN_DRAWDOWN from its entry, and BTC's
30-minute return went against it by at least SOFT_DEFENSIVE_EXIT_BTC_AGAINST_RETURN (0 = not
required). After SOFT_DEFENSIVE_EXIT_CONFIRMATIONS consecutive updates meeting all three, a
reduce-only limit at the market closes SOFT_DEFENSIVE_EXIT_INITIAL_FRACTION of the position
(as it was when the exit started); every SOFT_DEFENSIVE_EXIT_REPRICE_MINUTES it is re-priced
and, while the conditions persist, the share grows by SOFT_DEFENSIVE_EXIT_STEP_FRACTION up to
SOFT_DEFENSIVE_EXIT_MAX_FRACTION. An update that fails the conditions ends the episode.

All pure: numbers and settings in, numbers out; the runtime keeps the counters.
"""

from __future__ import annotations

from decimal import Decimal

from engine.exchange.precision import D, meets_minimums, round_amount, round_limit_price
from engine.exchange.types import Market, PositionSide, closing_side
from engine.settings import ProfileSettings

from .controlled_loss import leaves_dust
from .ladder import ExitOrder

TAG = "soft_defensive"


def btc_against(p: ProfileSettings, side: PositionSide, btc_return: float | None) -> bool:
    """BTC's 30-minute return is against the position by the required amount (always true
    when SOFT_DEFENSIVE_EXIT_BTC_AGAINST_RETURN is 0; false when BTC is unknown otherwise)."""
    need = p.soft_defensive_exit_btc_against_return
    if need <= 0:
        return True
    if btc_return is None or btc_return != btc_return:
        return False
    against = -btc_return if side == "long" else btc_return
    return against >= need


def conditions_met(p: ProfileSettings, side: PositionSide, dd: float, signal_valid: bool,
                   btc_return: float | None) -> bool:
    """One signal update counts as a confirmation: enabled, the signal broke, the drawdown is
    at least SOFT_DEFENSIVE_EXIT_MIN_DRAWDOWN and BTC moved against the trade."""
    return (p.soft_defensive_exit_enabled and not signal_valid and dd > 0
            and dd >= p.soft_defensive_exit_min_drawdown and btc_against(p, side, btc_return))


def started(p: ProfileSettings, confirmations: int) -> bool:
    return p.soft_defensive_exit_enabled and confirmations >= p.soft_defensive_exit_confirmations


def next_fraction(p: ProfileSettings, fraction: float) -> float:
    """The share to have closed after one more step: INITIAL first, then + STEP, up to MAX."""
    if fraction <= 0:
        return min(p.soft_defensive_exit_max_fraction, p.soft_defensive_exit_initial_fraction)
    return min(p.soft_defensive_exit_max_fraction, fraction + p.soft_defensive_exit_step_fraction)


def step_due(p: ProfileSettings, now_ms: int, priced_ms: int) -> bool:
    """Time for the next re-price (and size increase)."""
    return now_ms - priced_ms >= p.soft_defensive_exit_reprice_minutes * 60_000


def close_order(side: PositionSide, price: Decimal, base: Decimal, contracts: Decimal, fraction: float,
                market: Market, p: ProfileSettings | None = None) -> ExitOrder | None:
    """The order that brings the closed share of `base` (the size when the exit started) up to
    `fraction`, at the market price rounded passively; never more than the position, the
    amount rounded down; None when nothing is left to close or it is below the venue minimums.
    With `p`, a remainder that would be dust (the dust rule closes it at market) is included."""
    if price <= 0 or contracts <= 0:
        return None
    closed = max(Decimal(0), base - contracts)
    amount = min(contracts, round_amount(base * D(fraction), market.amount_step) - closed)
    amount = round_amount(max(Decimal(0), amount), market.amount_step)
    if p is not None and leaves_dust(p, contracts, amount, price, market):
        amount = contracts
    px = round_limit_price(closing_side(side), price, market.price_step)
    if amount <= 0 or not meets_minimums(market, amount, px):
        return None
    return ExitOrder(TAG, px, amount)
