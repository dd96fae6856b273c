"""The adaptive reduce-only exit ladder, the trailing runner, breakeven and time exits.

All pure: a position's numbers and the settings in, the wanted exit orders out. The runtime
compares the wanted orders with the ones on the exchange and only changes what differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from engine.exchange.precision import D, ceil_to_step, floor_to_step, meets_minimums, round_amount, round_limit_price
from engine.exchange.types import Market, PositionSide, closing_side
from engine.settings import ProfileSettings

Mode = Literal["normal", "medium", "heavy", "breakeven"]


@dataclass(frozen=True)
class ExitOrder:
    """One wanted reduce-only limit: `tag` names its role, e.g. 'tp1', 'be1', 'time'."""

    tag: str
    price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class RunnerSpec:
    """The part of a position that trails instead of resting as a limit order."""

    amount: Decimal
    activation: float  # profit (fraction of entry) at which trailing starts
    pullback: float  # fraction of the best price that closes it once active
    take_profit: float  # profit at which its resting take-profit order sits


@dataclass(frozen=True)
class ExitPlan:
    mode: Mode
    orders: tuple[ExitOrder, ...]
    runner: RunnerSpec | None


def fee_floor(p: ProfileSettings) -> float:
    """Smallest markup worth taking: round-trip fees x multiplier, or the gross floor."""
    return max((p.buy_fee_rate + p.sell_fee_rate) * p.min_profit_fee_multiplier, p.min_gross_profit_floor)


def funding_adverse(p: ProfileSettings, side: PositionSide, funding: float | None) -> bool:
    """Funding costs this position: a long pays at or above FUNDING_POSITIVE_THRESHOLD, a short
    at or below FUNDING_NEGATIVE_THRESHOLD (longs pay shorts when the rate is positive)."""
    if funding is None or not math.isfinite(funding):
        return False
    if side == "long":
        return funding >= p.funding_positive_threshold
    return funding <= p.funding_negative_threshold


def funding_favourable(p: ProfileSettings, side: PositionSide, funding: float | None) -> bool:
    """The position receives funding: the mirror of `funding_adverse`."""
    if funding is None or not math.isfinite(funding):
        return False
    if side == "long":
        return funding <= p.funding_negative_threshold
    return funding >= p.funding_positive_threshold


def funding_markup_multiplier(p: ProfileSettings, side: PositionSide, funding: float | None) -> float:
    """ENABLE_FUNDING_AWARE_EXIT: the exit markups' multiplier for the current funding rate.

    For a long, FUNDING_POSITIVE_MARKUP_MULTIPLIER applies at or above the positive threshold
    (the long pays) and FUNDING_NEGATIVE_MARKUP_MULTIPLIER at or below the negative one (it
    receives); a short is the mirror (it pays when funding is negative), so the "positive"
    multiplier is always the paying one. Unknown funding: 1."""
    if not p.enable_funding_aware_exit:
        return 1.0
    if funding_adverse(p, side, funding):
        return p.funding_positive_markup_multiplier
    if funding_favourable(p, side, funding):
        return p.funding_negative_markup_multiplier
    return 1.0


def high_volatility(p: ProfileSettings, daily_volatility: float | None) -> bool:
    """Daily volatility / DAILY_VOLATILITY_REFERENCE at or above
    DYNAMIC_PROFIT_FLOOR_VOLATILITY_MULTIPLIER_THRESHOLD (a threshold of 0 never applies)."""
    threshold = p.dynamic_profit_floor_volatility_multiplier_threshold
    if threshold <= 0 or daily_volatility is None or not math.isfinite(daily_volatility) \
            or p.daily_volatility_reference <= 0:
        return False
    return daily_volatility / p.daily_volatility_reference >= threshold


def dynamic_fee_floor(p: ProfileSettings, side: PositionSide, *, funding: float | None = None,
                      daily_volatility: float | None = None, urgent: bool = False) -> float:
    """The fee floor, lowered by ENABLE_DYNAMIC_PROFIT_FLOOR: x the high-volatility multiplier,
    x the adverse-funding multiplier, x the urgent multiplier (during an urgent time exit),
    never below DYNAMIC_PROFIT_FLOOR_MIN_RATE."""
    base = fee_floor(p)
    if not p.enable_dynamic_profit_floor:
        return base
    m = 1.0
    if high_volatility(p, daily_volatility):
        m *= p.dynamic_profit_floor_high_vol_multiplier
    if funding_adverse(p, side, funding):
        m *= p.dynamic_profit_floor_adverse_funding_multiplier
    if urgent:
        m *= p.dynamic_profit_floor_urgent_multiplier
    return max(p.dynamic_profit_floor_min_rate, base if m == 1.0 else round(base * m, 12))


def exit_state_tag(p: ProfileSettings, side: PositionSide, funding: float | None,
                   daily_volatility: float | None) -> str:
    """The quantised funding / volatility state that moves the ladder's markups, for its phase
    (so the ladder is re-planned when that state changes, not on every rate tick); empty
    while neither the funding-aware exit nor the dynamic profit floor is on."""
    tag = ""
    if p.enable_funding_aware_exit or p.enable_dynamic_profit_floor:
        if funding_adverse(p, side, funding):
            tag += "a"
        elif p.enable_funding_aware_exit and funding_favourable(p, side, funding):
            tag += "r"
    if p.enable_dynamic_profit_floor and high_volatility(p, daily_volatility):
        tag += "v"
    return f"|f{tag}" if tag else ""


def exit_mode(p: ProfileSettings, current_notional: Decimal, initial_notional: Decimal) -> Mode:
    """normal / medium / heavy by how much the position grew through averaging."""
    if not p.ema_adaptive_exit_enabled or initial_notional <= 0:
        return "normal"
    ratio = float(current_notional / initial_notional)
    if ratio >= p.ema_exit_heavy_position_ratio:
        return "heavy"
    if ratio >= p.ema_exit_medium_position_ratio:
        return "medium"
    return "normal"


def _ladder_steps(p: ProfileSettings, mode: Mode) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if not p.ema_adaptive_exit_enabled:
        n = len(p.ema_exit_ladder_fractions)
        return p.ema_exit_ladder_fractions, tuple(p.ema_take_profit_markup * (i + 1) for i in range(n))
    if mode == "heavy":
        return p.ema_exit_heavy_ladder_fractions, p.ema_exit_heavy_ladder_markups
    if mode == "medium":
        return p.ema_exit_medium_ladder_fractions, p.ema_exit_medium_ladder_markups
    return p.ema_exit_normal_ladder_fractions, p.ema_exit_normal_ladder_markups


def trailing_pullback(p: ProfileSettings, atr_rate: float | None) -> float:
    base = p.ema_exit_trailing_pullback
    if atr_rate and atr_rate > 0:
        base = max(base, atr_rate * p.ema_exit_trailing_atr_multiplier)
    return min(max(base, p.ema_exit_trailing_min_pullback), p.ema_exit_trailing_max_pullback)


def _scaled(markup: float, multiplier: float) -> float:
    """markup x multiplier without the float noise that would round a price a tick away."""
    return markup if multiplier == 1.0 else round(markup * multiplier, 12)


def _price(side: PositionSide, entry: Decimal, markup: float, market: Market) -> Decimal:
    raw = entry * (1 + D(markup)) if side == "long" else entry * (1 - D(markup))
    return round_limit_price(closing_side(side), raw, market.price_step)


def _split(amount: Decimal, fractions: tuple[float, ...], market: Market) -> list[Decimal]:
    """Split `amount` by fractions, rounding each part down; the last non-zero part takes the
    rounding remainder so a full ladder closes the full position (never more)."""
    parts = [round_amount(amount * D(f), market.amount_step) for f in fractions]
    total_fraction = sum(fractions)
    if parts and abs(total_fraction - 1.0) < 1e-9:
        rest = amount - sum(parts)
        for i in range(len(parts) - 1, -1, -1):
            if fractions[i] > 0:
                parts[i] = round_amount(parts[i] + rest, market.amount_step)
                break
    return parts


def exit_plan(
    p: ProfileSettings,
    side: PositionSide,
    entry_price: Decimal,
    contracts: Decimal,
    market: Market,
    *,
    mode: Mode,
    hours_held: float,
    atr_rate: float | None = None,
    tighten: tuple[tuple[float, ...], tuple[float | None, ...]] | None = None,
    funding: float | None = None,
    daily_volatility: float | None = None,
    urgent: bool = False,
) -> ExitPlan:
    """The wanted exit ladder for a position.

    `tighten` (fractions, markups) replaces the ladder when the cross-exchange reference shows
    an adverse premium; a `None` markup there leaves that part to the runner. `funding` (the
    current rate, None = unknown) scales the markups (ENABLE_FUNDING_AWARE_EXIT) and, with
    `daily_volatility`, lowers the profit floor (ENABLE_DYNAMIC_PROFIT_FLOOR); so does `urgent`
    (the hard time exit runs: x DYNAMIC_PROFIT_FLOOR_URGENT_MULTIPLIER).
    """
    floor = dynamic_fee_floor(p, side, funding=funding, daily_volatility=daily_volatility, urgent=urgent)
    funding_mult = funding_markup_multiplier(p, side, funding)
    if mode == "breakeven":
        # (rounded: float noise in the sum would round a passive price a tick further away)
        markup = round(p.buy_fee_rate + p.sell_fee_rate + p.ema_breakeven_fee_buffer, 12)
        parts = _split(contracts, p.ema_breakeven_exit_fractions, market)
        price = _price(side, entry_price, markup, market)
        orders = tuple(ExitOrder(f"be{i + 1}", price, a) for i, a in enumerate(parts)
                       if meets_minimums(market, a, price))
        return ExitPlan(mode, orders, None)

    fractions, markups = _ladder_steps(p, mode)
    runner: RunnerSpec | None = None
    decayed_max = p.ema_exit_decay_max_markup_after_hours > 0 and \
        hours_held >= p.ema_exit_decay_max_markup_after_hours
    opt_markups: tuple[float | None, ...] = markups
    if tighten is not None:
        fractions, opt_markups = tighten
    steps = list(zip(fractions, opt_markups))

    runner_fraction = 0.0
    runner_params: tuple[float, float, float] | None = None
    if mode == "normal" and not decayed_max and tighten is None and p.ema_adaptive_exit_enabled:
        if p.ema_exit_trailing_enabled and steps:
            fixed = p.ema_exit_trailing_fixed_fraction
            steps = [(fixed, steps[0][1])]
            runner_fraction = max(0.0, 1.0 - fixed)
            runner_params = (p.ema_exit_trailing_activation_markup, trailing_pullback(p, atr_rate),
                             p.ema_exit_trailing_take_profit_markup)
        elif p.ema_exit_runner_enabled and len(steps) > 1:
            runner_fraction = steps[-1][0]
            steps = steps[:-1]
            runner_params = (p.ema_exit_runner_activation_markup, p.ema_exit_runner_trailing_pullback,
                             p.ema_exit_runner_take_profit_markup)
    elif tighten is not None:
        runner_fraction = sum(f for f, m in steps if m is None)
        if runner_fraction > 0:
            runner_params = (p.ema_exit_trailing_activation_markup, trailing_pullback(p, atr_rate),
                             p.ema_exit_trailing_take_profit_markup)
        steps = [(f, m) for f, m in steps if m is not None]

    # Decay: a position held long takes smaller profits.
    adj: list[tuple[float, float]] = []
    for i, (f, m) in enumerate(steps):
        m = _scaled(float(m), funding_mult)  # type: ignore[arg-type]
        if i == 0 and p.ema_exit_decay_first_markup_after_hours > 0 and \
                hours_held >= p.ema_exit_decay_first_markup_after_hours:
            m = min(m, p.ema_exit_decay_first_markup_cap)
        if decayed_max:
            m = min(m, p.ema_exit_decay_max_markup)
        adj.append((f, max(m, floor)))

    all_fractions = tuple(f for f, _ in adj) + ((runner_fraction,) if runner_params else ())
    parts = _split(contracts, all_fractions, market)
    orders: list[ExitOrder] = []
    for i, ((f, m), amount) in enumerate(zip(adj, parts)):
        price = _price(side, entry_price, m, market)
        if amount > 0 and meets_minimums(market, amount, price):
            orders.append(ExitOrder(f"tp{i + 1}", price, amount))
    if runner_params:
        amount = parts[-1]
        if amount > 0:
            runner = RunnerSpec(amount, *runner_params)
            # The runner's take-profit rests on the exchange like the ladder, so profits are
            # still taken if the bot is down; trailing cancels it and closes at market.
            tp_price = _price(side, entry_price, max(_scaled(runner.take_profit, funding_mult), floor), market)
            if meets_minimums(market, amount, tp_price):
                orders.append(ExitOrder("runner", tp_price, amount))
    return ExitPlan(mode, tuple(orders), runner)


@dataclass(frozen=True)
class RunnerState:
    active: bool
    best_price: Decimal | None


def runner_step(side: PositionSide, entry: Decimal, spec: RunnerSpec, state: RunnerState,
                high: Decimal, low: Decimal, close: Decimal) -> tuple[RunnerState, bool]:
    """Advance the runner on one closed candle; returns the new state and whether the trail
    was hit (close back through best price x (1 - pullback) once active)."""
    sign = 1 if side == "long" else -1
    favourable = high if side == "long" else low
    best = state.best_price
    if best is None or (favourable - best) * sign > 0:
        best = favourable
    gain = float((best - entry) / entry) * sign
    active = state.active or gain >= spec.activation
    if active:
        trail = best * (1 - D(spec.pullback) * sign)
        if (close - trail) * sign <= 0:
            return RunnerState(active, best), True
    return RunnerState(active, best), False


def time_exit_fraction(p: ProfileSettings, minutes_held: float, time_multiplier: float = 1.0) -> float:
    """Share of the current position the hard time exit wants closed now (0 = not started)."""
    start = p.hard_time_exit_after_minutes * time_multiplier
    if p.hard_time_exit_after_minutes <= 0 or minutes_held < start:
        return 0.0
    steps = 0 if p.hard_time_exit_step_minutes <= 0 else \
        math.floor((minutes_held - start) / p.hard_time_exit_step_minutes)
    return min(1.0, p.hard_time_exit_close_fraction + steps * p.hard_time_exit_fraction_step)


def time_exit_order(p: ProfileSettings, side: PositionSide, entry: Decimal, contracts: Decimal,
                    market_price: Decimal, market: Market, fraction: float) -> ExitOrder | None:
    """A reduce-only limit closing `fraction` of the position at the market price, but never
    at a loss beyond HARD_TIME_EXIT_MAX_LOSS_ON_NOTIONAL."""
    if fraction <= 0:
        return None
    max_loss = D(p.hard_time_exit_max_loss_on_notional)
    floor_price = entry * (1 - max_loss) if side == "long" else entry * (1 + max_loss)
    raw = max(market_price, floor_price) if side == "long" else min(market_price, floor_price)
    price = round_limit_price(closing_side(side), raw, market.price_step)
    amount = round_amount(contracts * D(fraction), market.amount_step)
    if not meets_minimums(market, amount, price):
        amount = contracts if meets_minimums(market, contracts, price) else Decimal(0)
    return ExitOrder("time", price, amount) if amount > 0 else None


def breakeven_due(p: ProfileSettings, minutes_held: float, time_multiplier: float = 1.0) -> bool:
    """Breakeven mode starts after EMA_BREAKEVEN_AFTER_HOURS (or the earlier soft time exit),
    sooner when the macro overlay shortens holding times."""
    starts = []
    if p.ema_breakeven_enabled and p.ema_breakeven_after_hours > 0:
        starts.append(p.ema_breakeven_after_hours * 60)
    if p.time_exit_after_minutes > 0:
        starts.append(p.time_exit_after_minutes)
    return bool(starts) and minutes_held >= min(starts) * time_multiplier


def aggressive_close_price(side: PositionSide, price: Decimal, market: Market) -> Decimal:
    """The limit price of a close meant to fill at once (EMA_EXIT_RUNNER_USE_AGGRESSIVE_LIMIT):
    the current price rounded toward filling - a long's closing sell DOWN, a short's closing
    buy UP - the opposite of the passive rounding of resting exits, by at most one tick."""
    if side == "long":
        return floor_to_step(price, market.price_step)
    return ceil_to_step(price, market.price_step)


def breakeven_epoch(p: ProfileSettings, now_ms: int, since_ms: int) -> int:
    """Which EMA_BREAKEVEN_REPRICE_MINUTES period of breakeven mode `now_ms` falls in (0 while
    re-pricing is off): a new period re-checks the breakeven exit's price and amount."""
    period_ms = p.ema_breakeven_reprice_minutes * 60_000
    if period_ms <= 0:
        return 0
    return int(max(0, now_ms - since_ms) // period_ms)
