"""Capped averaging: when an open, losing position may be added to, and by how much.

Adding to a loser is how bots die, so every condition must hold, and each is reported as a
named check (value, threshold, verdict) like the entry gates.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.exchange.precision import D
from engine.exchange.types import PositionSide
from engine.settings import ProfileSettings

from .account_pnl import AccountView, averaging_guard, budget_scale as account_budget_scale
from .volatility import recovery_stage_drawdown


@dataclass(frozen=True)
class Check:
    name: str
    value: object
    threshold: object
    passed: bool


@dataclass(frozen=True)
class AveragingInput:
    side: PositionSide
    entry_price: Decimal
    price: Decimal
    position_notional: Decimal
    stages_done: int  # adds already made
    opened_ms: int
    last_add_ms: int | None
    now_ms: int
    has_entry_orders: bool
    has_exit_ladder: bool
    in_breakeven: bool
    add_valid: bool  # the signal's add_valid flag
    pullback_recovered: bool
    macro_allows: bool
    atr_rate: float | None = None
    daily_volatility: float | None = None
    # the shared account-PnL series as this profile sees it (ACCOUNT_AVERAGING_*); None = unknown
    account: AccountView | None = None
    # EMA_AVERAGING_POWER: the position's size growth since it opened, both at entry prices
    # (contracts x average entry price, and the stored initial notional); None = unknown
    cost_notional: Decimal | None = None
    initial_notional: Decimal | None = None


def required_drawdown(p: ProfileSettings, stage: int, atr_rate: float | None,
                      daily_volatility: float | None) -> float:
    """Drawdown from the entry price needed before averaging stage `stage` (1-based)."""
    configured = p.ema_averaging_drawdown_step * stage
    if p.averaging_drawdown_steps and stage <= len(p.averaging_drawdown_steps):
        configured = p.averaging_drawdown_steps[stage - 1]
    need = max(configured, p.ema_averaging_min_drawdown_step * stage)
    if atr_rate and atr_rate > 0:
        need = max(need, atr_rate * p.ema_averaging_min_atr_multiplier * stage)
        if p.ema_averaging_atr_enabled:
            need = max(need, atr_rate * p.ema_averaging_atr_multiplier * stage)
    if daily_volatility and daily_volatility > 0:
        need = max(need, daily_volatility * p.ema_averaging_min_daily_volatility_fraction * stage)
    # ENABLE_VOLATILITY_RECOVERY_STAGES: one more floor (never added to the one above)
    return max(need, recovery_stage_drawdown(p, stage, daily_volatility))


def add_fraction(p: ProfileSettings, stage: int) -> float:
    if p.averaging_budget_fractions and stage <= len(p.averaging_budget_fractions):
        return p.averaging_budget_fractions[stage - 1]
    return p.ema_averaging_base_fraction


def averaging_checks(p: ProfileSettings, a: AveragingInput) -> list[Check]:
    """Every averaging condition, in order; averaging happens only if all pass."""
    stage = a.stages_done + 1
    age_min = (a.now_ms - a.opened_ms) / 60_000
    since_add_h = None if a.last_add_ms is None else (a.now_ms - a.last_add_ms) / 3_600_000
    drawdown = float((a.entry_price - a.price) / a.entry_price) if a.side == "long" else \
        float((a.price - a.entry_price) / a.entry_price)
    need = required_drawdown(p, stage, a.atr_rate, a.daily_volatility)
    max_age = p.no_more_averaging_after_minutes or p.ema_breakeven_after_hours * 60
    # MAX_BUY_STAGES counts the entry too (the settings rules refuse a larger EMA_MAX_AVERAGING_STAGES;
    # settings built in code skip those rules, the cap still holds)
    stages = min(p.ema_max_averaging_stages, p.max_buy_stages - 1)
    checks = [
        Check("averaging_enabled", p.ema_averaging_enabled, True, p.ema_averaging_enabled),
        Check("stages", a.stages_done, stages, a.stages_done < stages),
        Check("exit_ladder_present", a.has_exit_ladder, True, a.has_exit_ladder),
        Check("no_entry_orders", a.has_entry_orders, False, not a.has_entry_orders),
        Check("not_breakeven", a.in_breakeven, False, not a.in_breakeven),
        Check("position_age_minutes", round(age_min, 1), max_age, max_age <= 0 or age_min < max_age),
        Check("hours_since_last_add", None if since_add_h is None else round(since_add_h, 2),
              p.ema_averaging_interval_hours,
              since_add_h is None or since_add_h >= p.ema_averaging_interval_hours),
        Check("drawdown", round(drawdown, 6), round(need, 6), drawdown >= need),
        Check("add_valid", a.add_valid, True, a.add_valid),
        Check("pullback_recovery", a.pullback_recovered, p.ema_averaging_require_pullback_recovery,
              a.pullback_recovered or not p.ema_averaging_require_pullback_recovery),
        Check("macro_allows_averaging", a.macro_allows, True, a.macro_allows),
    ]
    guard = averaging_guard(p, a.account)
    if guard.enabled:  # ACCOUNT_AVERAGING_ENABLED: only near an account-PnL trough once it stops falling
        checks.append(Check("account_pnl_trough", guard.reason, True, guard.allowed))
    return checks


def position_growth(a: AveragingInput) -> Decimal:
    """How much the position has grown since it opened: cost notional (contracts x average
    entry price) over the initial notional, never below 1 (1 when either is unknown). Both
    are at entry prices, so a price move alone is no growth."""
    if not a.cost_notional or not a.initial_notional or a.initial_notional <= 0:
        return Decimal(1)
    return max(Decimal(1), a.cost_notional / a.initial_notional)


def growth_factor(p: ProfileSettings, a: AveragingInput) -> Decimal:
    """EMA_AVERAGING_POWER (legacy): growth ** (power - 1); 1 at power 1 or an ungrown position,
    above 1 grows the add on a grown position, below 1 shrinks it."""
    power = D(p.ema_averaging_power)
    if power == 1:
        return Decimal(1)
    return position_growth(a) ** (power - 1)


def add_notional(p: ProfileSettings, a: AveragingInput, budget_scale: float | None = None) -> Decimal:
    """Notional of the next add: current notional x stage fraction x growth ** (EMA_AVERAGING_POWER
    - 1) x the account guard's scale (ACCOUNT_AVERAGING_BUDGET_SCALE while the account-averaging
    guard is on). The caller caps it (``engine.risk.sizing.entry_budget``): the hard margin caps
    apply after every factor here."""
    scale = account_budget_scale(p) if budget_scale is None else budget_scale
    return a.position_notional * D(add_fraction(p, a.stages_done + 1)) * growth_factor(p, a) * D(scale)
