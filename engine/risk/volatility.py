"""Volatility and BTC-risk scaling of entry budgets, entry ladders and averaging thresholds.

Pure functions: settings and volatility figures in, multipliers out. A figure that is not
known (None, NaN, not positive) never scales anything: the multiplier is then 1, so a cold
feature engine behaves like the switches being off. Every multiplier goes into
``entry_budget`` (budget) or ``entry_ladder`` (offsets), so the hard margin caps still bind
after scaling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.settings import ProfileSettings


def _known(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def volatility_budget_multiplier(p: ProfileSettings, daily_volatility: float | None) -> float:
    """ENABLE_VOLATILITY_TARGETED_SIZING: DAILY_VOLATILITY_REFERENCE / the symbol's daily
    volatility, clamped to [MIN_VOLATILITY_BUDGET_MULTIPLIER, MAX_VOLATILITY_BUDGET_MULTIPLIER].

    A calm symbol gets a bigger budget, a wild one a smaller one, so each entry carries
    about the same daily risk. 1 when off or the daily volatility is unknown or zero."""
    if not p.enable_volatility_targeted_sizing or not _known(daily_volatility) or daily_volatility <= 0:
        return 1.0
    hi = max(p.max_volatility_budget_multiplier, p.min_volatility_budget_multiplier)
    return _clamp(p.daily_volatility_reference / daily_volatility, p.min_volatility_budget_multiplier, hi)


def ladder_volatility_multiplier(p: ProfileSettings, volatility: float | None) -> float:
    """ENABLE_VOLATILITY_ADJUSTED_LADDERS: the symbol's per-candle volatility (over
    VOLATILITY_WINDOW) / VOLATILITY_REFERENCE, clamped to [MIN_LADDER_VOLATILITY_MULTIPLIER,
    MAX_LADDER_VOLATILITY_MULTIPLIER]; multiplies every entry ladder offset (below 1 narrows
    the ladder in a calm market). 1 when off or the volatility is unknown."""
    if not p.enable_volatility_adjusted_ladders or not _known(volatility) or volatility < 0:
        return 1.0
    lo = p.min_ladder_volatility_multiplier
    hi = max(p.max_ladder_volatility_multiplier, lo)
    return _clamp(volatility / p.volatility_reference, lo, hi)


def recovery_stage_drawdown(p: ProfileSettings, stage: int, daily_volatility: float | None) -> float:
    """ENABLE_VOLATILITY_RECOVERY_STAGES: the drawdown stage `stage` (1-based) needs from the
    daily volatility, daily volatility x AVERAGING_DRAWDOWN_DAILY_VOLATILITY_FRACTION x stage.

    It is one more floor of the required drawdown (the largest floor decides), next to the
    always-on EMA_AVERAGING_MIN_DAILY_VOLATILITY_FRACTION one: the two daily-volatility terms
    are never added together. 0 when off or the daily volatility is unknown."""
    if not p.enable_volatility_recovery_stages or not _known(daily_volatility) or daily_volatility <= 0:
        return 0.0
    return daily_volatility * p.averaging_drawdown_daily_volatility_fraction * stage


@dataclass(frozen=True)
class BtcRisk:
    """The BTC-risk multipliers of one entry, and why."""

    budget: float = 1.0
    ladder: float = 1.0
    reasons: tuple[str, ...] = ()


def btc_risk(p: ProfileSettings, side: str, btc_return: float | None,
             btc_volatility: float | None) -> BtcRisk:
    """ENABLE_BTC_RISK_MULTIPLIER: cut the budget when BTC moves against the side or is very
    volatile, and widen the entry ladder by as much as the budget was cut.

    * BTC's log return over BTC_RISK_RETURN_WINDOW candles at or below BTC_RISK_DROP_THRESHOLD
      (longs), at or above -BTC_RISK_DROP_THRESHOLD (shorts: BTC rising against them):
      x BTC_RISK_DROP_BUDGET_MULTIPLIER;
    * BTC's per-candle volatility (VOLATILITY_WINDOW) at or above BTC_RISK_HIGH_VOL_THRESHOLD:
      x BTC_RISK_VOL_BUDGET_MULTIPLIER;
    * the product is floored at BTC_RISK_MIN_BUDGET_MULTIPLIER;
    * ladder multiplier = 1 + (1 - budget multiplier), capped at BTC_RISK_MAX_LADDER_MULTIPLIER.

    An unknown figure does not cut."""
    if not p.enable_btc_risk_multiplier:
        return BtcRisk()
    budget = 1.0
    reasons: list[str] = []
    thr = p.btc_risk_drop_threshold
    if _known(btc_return):
        against = btc_return <= thr if side == "long" else btc_return >= -thr
        if against:
            budget *= p.btc_risk_drop_budget_multiplier
            op = "<=" if side == "long" else ">="
            lim = thr if side == "long" else -thr
            reasons.append(f"btc_return {btc_return:.5f}{op}{lim:g}")
    if _known(btc_volatility) and btc_volatility >= p.btc_risk_high_vol_threshold:
        budget *= p.btc_risk_vol_budget_multiplier
        reasons.append(f"btc_volatility {btc_volatility:.5f}>={p.btc_risk_high_vol_threshold:g}")
    if not reasons:
        return BtcRisk()
    budget = max(budget, p.btc_risk_min_budget_multiplier)
    ladder = min(1.0 + (1.0 - budget), p.btc_risk_max_ladder_multiplier)
    return BtcRisk(budget, max(1.0, ladder), tuple(reasons))


@dataclass(frozen=True)
class EntryScaling:
    """Every volatility multiplier of one entry (1 = no effect), for sizing and the audit."""

    volatility_budget: float = 1.0
    volatility_ladder: float = 1.0
    btc: BtcRisk = BtcRisk()

    @property
    def budget(self) -> float:
        return self.volatility_budget * self.btc.budget

    @property
    def ladder(self) -> float:
        return self.volatility_ladder * self.btc.ladder

    @property
    def neutral(self) -> bool:
        return self.budget == 1.0 and self.ladder == 1.0 and not self.btc.reasons

    def reason(self) -> str:
        """One line for the order's reason: which multiplier scaled the budget and ladder."""
        if self.neutral:
            return ""
        parts = []
        if self.volatility_budget != 1.0:
            parts.append(f"volatility_budget x{self.volatility_budget:.3f}")
        if self.volatility_ladder != 1.0:
            parts.append(f"volatility_ladder x{self.volatility_ladder:.3f}")
        if self.btc.reasons:
            parts.append(f"btc_risk budget x{self.btc.budget:.3f} ladder x{self.btc.ladder:.3f} "
                         f"({', '.join(self.btc.reasons)})")
        return "; ".join(parts)


def entry_scaling(p: ProfileSettings, side: str, volatility: float | None, daily_volatility: float | None,
                  btc_return: float | None, btc_volatility: float | None) -> EntryScaling:
    """All volatility and BTC-risk multipliers of one new entry."""
    return EntryScaling(volatility_budget_multiplier(p, daily_volatility),
                        ladder_volatility_multiplier(p, volatility),
                        btc_risk(p, side, btc_return, btc_volatility))
