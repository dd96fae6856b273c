"""Position sizing from equity under hard margin caps, and the post-only entry ladder.

Pure functions: account numbers and settings in, a budget (with every limit that was applied,
for the audit trail) or a list of planned orders out. Every rounding is down, so no planned
order can exceed the margin the caps allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.exchange.precision import D, meets_minimums, notional, round_amount, round_limit_price
from engine.exchange.types import Market, PositionSide
from engine.settings import ProfileSettings

ZERO = Decimal(0)


@dataclass(frozen=True)
class AccountView:
    """What sizing needs to know about the account at this moment (USDT)."""

    equity: Decimal
    free_margin: Decimal
    used_margin: Decimal  # all positions and open orders, both profiles
    symbol_margin: Decimal = ZERO  # margin already committed to this symbol
    active_positions: int = 0  # positions that count for MAX_ACTIVE_POSITIONS


@dataclass(frozen=True)
class Budget:
    """Margin allowed for one new entry (or add), and why it is that number."""

    margin: Decimal
    leverage: Decimal
    limits: tuple[tuple[str, Decimal], ...]  # every limit considered, in USDT of margin
    binding: str  # the limit that decided the margin

    @property
    def notional(self) -> Decimal:
        return self.margin * self.leverage


def effective_leverage(p: ProfileSettings, account_leverage: Decimal | None) -> Decimal:
    """Leverage used to turn margin into notional.

    LEVERAGE sizes internally; the account's real leverage decides how much margin the exchange
    takes. Using the smaller one keeps every margin cap true on the exchange too. When the
    account leverage is unknown (not readable and ACCOUNT_LEVERAGE=0), 1x is assumed: positions
    come out small rather than over the caps.
    """
    internal = D(p.leverage)
    if p.account_leverage > 0:
        account_leverage = D(p.account_leverage)
    if account_leverage is None or account_leverage <= 0:
        return Decimal(1)
    return min(internal, account_leverage)


def entry_budget(
    p: ProfileSettings,
    account: AccountView,
    leverage: Decimal,
    multiplier: float = 1.0,
    wanted_margin: Decimal | None = None,
) -> Budget:
    """Margin for a new position (or, with `wanted_margin`, an add), within every cap.

    `multiplier` carries the macro, volatility and signal-quality budget multipliers; it can
    shrink the budget but never lift it past a cap.
    """
    eq = account.equity
    base = eq * D(p.ema_position_budget_fraction) * D(max(0.0, multiplier))
    if wanted_margin is not None:
        base = wanted_margin
    limits: list[tuple[str, Decimal]] = [("budget", base)]
    if account.active_positions >= p.max_active_positions and wanted_margin is None:
        limits.append(("max_active_positions", ZERO))
    limits.append(("position_margin_cap",
                   eq * D(p.ema_max_position_margin_fraction) - account.symbol_margin))
    limits.append(("total_margin_cap", eq * D(p.ema_max_total_margin_fraction) - account.used_margin))
    limits.append(("free_margin_after_reserve", account.free_margin - D(p.min_quote_reserve)))
    if eq <= 0:
        limits.append(("equity", ZERO))
    binding, margin = min(limits, key=lambda kv: kv[1])
    margin = max(ZERO, margin)
    return Budget(margin, leverage, tuple(limits), binding)


@dataclass(frozen=True)
class PlannedOrder:
    index: int
    price: Decimal
    amount: Decimal  # contracts

    def notional(self, market: Market) -> Decimal:
        return notional(self.amount, self.price, market)


def entry_ladder(
    side: PositionSide,
    market: Market,
    budget_notional: Decimal,
    reference_price: Decimal,
    fractions: tuple[float, ...],
    offsets: tuple[float, ...],
    ladder_multiplier: float = 1.0,
    offset_scale: float = 1.0,
) -> list[PlannedOrder]:
    """Post-only entry ladder: fraction i of the notional at offset i below the reference
    (above it for shorts). Orders below the exchange minimums are left out; the sum of the
    notionals never exceeds `budget_notional`.

    `ladder_multiplier` (the macro overlay) only widens the offsets (floored at 1);
    `offset_scale` (volatility and BTC-risk scaling, ``engine.risk.volatility``) multiplies
    them as given, so a calm market can narrow the ladder."""
    if budget_notional <= 0 or reference_price <= 0:
        return []
    order_side = "buy" if side == "long" else "sell"
    out: list[PlannedOrder] = []
    for i, (fraction, offset) in enumerate(zip(fractions, offsets)):
        off = D(offset) * D(max(1.0, ladder_multiplier)) * D(max(0.0, offset_scale))
        raw_price = reference_price * (1 - off) if side == "long" else reference_price * (1 + off)
        if raw_price <= 0:
            continue
        price = round_limit_price(order_side, raw_price, market.price_step)
        # Size at the higher of reference and order price, so rounding can only undershoot.
        size_price = max(price, reference_price)
        amount = round_amount(budget_notional * D(fraction) / (size_price * market.contract_size),
                              market.amount_step)
        if meets_minimums(market, amount, price):
            out.append(PlannedOrder(i, price, amount))
    return out
