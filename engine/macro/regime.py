"""Macro regime from gold vs BTC momentum: pure classification and its per-side effects.

Why: when tokenised gold (XAUT, PAXG) outperforms BTC, crypto is in a defensive phase and
alt longs should be smaller, averaged less and held for shorter; when both fall together the
market is deleveraging and new entries wait. The gold symbol is only ever an input.

Regimes (RSI of GOLD_TIMEFRAME closes, period GOLD_RSI_PERIOD; spread = gold RSI - BTC RSI):
  * ``panic``    -- BTC RSI <= BTC_WEAK_RSI and gold RSI <= GOLD_WEAK_RSI (both sold off);
  * ``risk_off`` -- spread >= RSI_SPREAD_THRESHOLD, or gold RSI >= GOLD_STRONG_RSI with BTC
    RSI <= BTC_WEAK_RSI (crypto underperforms gold);
  * ``normal``   -- anything else (the reason names the risk-on flavours BTC_STRONG_RSI marks);
  * ``unavailable`` -- overlay off, data missing, warming up or stale: a NEUTRAL overlay
    (multipliers 1, nothing blocked). Trading is never blocked on missing macro data; the
    regime and its reason say so instead (events, audit, UI).

Effects: risk-off and panic use the RISK_OFF_* budget, ladder and time multipliers; averaging
is off in risk-off when RISK_OFF_DISABLE_AVERAGING and always off in panic (panic is at least
as defensive as risk-off); panic blocks new entries when PANIC_DISABLE_NEW_ENTRIES.
The directional score in [-1, 1] (positive = crypto stronger than gold, favours longs) is the
mean of the RSI spread and of the gold/BTC ratio return, each scaled to [-1, 1] by
RSI_SPREAD_THRESHOLD and GOLD_BTC_RATIO_RETURN_REFERENCE. It gives a bias multiplier per side,
1 +/- GOLD_DIRECTIONAL_BIAS_STRENGTH x score within the GOLD_DIRECTIONAL_BIAS_* bounds, which
is combined with the regime multiplier without double counting the same evidence: a cut from
either source applies (the deeper one wins, not their product), and a boost only applies to a
side the regime does not cut.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from engine.market.indicators import rsi
from engine.strategy.decision import HARD, INFO, GateResult

if TYPE_CHECKING:
    from engine.runtime.profile import Overlay
    from engine.settings import ProfileSettings

__all__ = [
    "MacroContext", "MacroInputs", "REGIMES", "classify", "decide", "macro_gate", "neutral",
    "overlay_for", "ratio_return",
]

Regime = Literal["normal", "risk_off", "panic", "unavailable"]
REGIMES: tuple[str, ...] = ("normal", "risk_off", "panic", "unavailable")


@dataclass(frozen=True)
class MacroInputs:
    """Closed GOLD_TIMEFRAME closes, oldest first. ``gold`` and ``btc`` are aligned on their
    LAST element (the tails of equal length are used); ``ratio`` is an optional direct
    gold/BTC market used for the ratio return when USE_DIRECT_GOLD_BTC_PAIR is on."""

    gold: Sequence[float]
    btc: Sequence[float]
    ratio: Sequence[float] | None = None
    asof_ms: int | None = None  # open time of the last candle
    gold_symbol: str = ""
    btc_symbol: str = ""


@dataclass(frozen=True)
class MacroContext:
    """One macro verdict with the inputs that produced it (for events and the audit)."""

    regime: str
    reason: str
    gold_rsi: float | None = None
    btc_rsi: float | None = None
    rsi_spread: float | None = None  # gold RSI - BTC RSI
    gold_btc_ratio_return: float | None = None
    ratio_source: str = ""  # 'synthetic' (gold/BTC closes) | 'direct' (gold/BTC market) | ''
    direction_score: float = 0.0
    long_budget_multiplier: float = 1.0
    short_budget_multiplier: float = 1.0
    ladder_multiplier: float = 1.0
    disable_new_entries: bool = False
    disable_averaging: bool = False
    time_exit_multiplier: float = 1.0
    candles: int = 0
    asof_ms: int | None = None
    gold_symbol: str = ""
    btc_symbol: str = ""

    @property
    def available(self) -> bool:
        return self.regime != "unavailable"

    def budget_multiplier(self, side: str) -> float:
        if side == "long":
            return self.long_budget_multiplier
        if side == "short":
            return self.short_budget_multiplier
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")

    def to_record(self) -> dict[str, Any]:
        """Flat dict for the macro history CSV and the Regime event's inputs."""
        return asdict(self)


def neutral(reason: str, **known: Any) -> MacroContext:
    """The 'unavailable' context: no effect on trading, with the reason it is unavailable."""
    return MacroContext(regime="unavailable", reason=reason, **known)


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def ratio_return(ratio: Sequence[float] | np.ndarray, period: int) -> float | None:
    """Simple return of the gold/BTC ratio over ``period`` candles; None when too short."""
    if len(ratio) <= period:
        return None
    now, then = float(ratio[-1]), float(ratio[-1 - period])
    return now / then - 1.0 if then > 0 else None


def direction_score(spread: float, ratio_ret: float | None, p: ProfileSettings) -> float:
    """Positive when crypto is stronger than gold (favours longs), in [-1, 1]."""
    spread_part = _clamp(-spread / max(p.rsi_spread_threshold, 1.0), -1.0, 1.0)
    if ratio_ret is None:
        return spread_part
    ratio_part = _clamp(-ratio_ret / p.gold_btc_ratio_return_reference, -1.0, 1.0)
    return _clamp(0.5 * spread_part + 0.5 * ratio_part, -1.0, 1.0)


def _combine(regime_m: float, bias_m: float) -> float:
    """Regime and bias multipliers from the same evidence: the deeper cut wins; a boost only
    where the regime does not cut."""
    if bias_m <= 1.0:
        return min(regime_m, bias_m)
    if regime_m < 1.0:
        return regime_m
    return max(regime_m, bias_m)


def decide(gold_rsi: float, btc_rsi: float, ratio_ret: float | None, p: ProfileSettings, *,
           ratio_source: str = "synthetic", candles: int = 0, asof_ms: int | None = None,
           gold_symbol: str = "", btc_symbol: str = "") -> MacroContext:
    """The regime and its effects from the measured RSIs and ratio return."""
    spread = gold_rsi - btc_rsi
    known: dict[str, Any] = dict(
        gold_rsi=gold_rsi, btc_rsi=btc_rsi, rsi_spread=spread, gold_btc_ratio_return=ratio_ret,
        ratio_source=ratio_source if ratio_ret is not None else "", candles=candles, asof_ms=asof_ms,
        gold_symbol=gold_symbol, btc_symbol=btc_symbol)
    if not p.enable_gold_btc_rsi_overlay:
        return neutral("disabled (ENABLE_GOLD_BTC_RSI_OVERLAY is off)", **known)

    if btc_rsi <= p.btc_weak_rsi and gold_rsi <= p.gold_weak_rsi:
        regime, reason = "panic", "btc weak and gold weak: deleveraging"
    elif spread >= p.rsi_spread_threshold:
        regime, reason = "risk_off", f"gold RSI leads BTC RSI by {spread:.1f} >= {p.rsi_spread_threshold:g}"
    elif gold_rsi >= p.gold_strong_rsi and btc_rsi <= p.btc_weak_rsi:
        regime, reason = "risk_off", "gold strong and btc weak"
    else:
        regime = "normal"
        btc_strong, gold_strong = btc_rsi >= p.btc_strong_rsi, gold_rsi >= p.gold_strong_rsi
        reason = ("btc strong and gold strong: broad risk-on" if btc_strong and gold_strong
                  else "btc strong, gold lagging: crypto risk-on" if btc_strong
                  else "no macro stress")

    defensive = regime in ("risk_off", "panic")
    long_m = p.risk_off_long_budget_multiplier if defensive else 1.0
    short_m = p.risk_off_short_budget_multiplier if defensive else 1.0
    score = direction_score(spread, ratio_ret, p) if p.enable_gold_directional_bias else 0.0
    if p.enable_gold_directional_bias:
        lo, hi = p.gold_directional_bias_min_multiplier, p.gold_directional_bias_max_multiplier
        strength = p.gold_directional_bias_strength
        long_m = _combine(long_m, _clamp(1.0 + strength * score, lo, hi))
        short_m = _combine(short_m, _clamp(1.0 - strength * score, lo, hi))
    return MacroContext(
        regime=regime, reason=reason, direction_score=score,
        long_budget_multiplier=long_m, short_budget_multiplier=short_m,
        ladder_multiplier=p.risk_off_ladder_multiplier if defensive else 1.0,
        disable_new_entries=regime == "panic" and p.panic_disable_new_entries,
        disable_averaging=regime == "panic" or (regime == "risk_off" and p.risk_off_disable_averaging),
        time_exit_multiplier=p.risk_off_time_exit_multiplier if defensive else 1.0,
        **known)


def classify(inputs: MacroInputs, p: ProfileSettings) -> MacroContext:
    """Vectorised classification of whole close series (replay, warm-up, analysis).

    Needs at least GOLD_MIN_CANDLES aligned closes and a defined RSI; otherwise the context
    is 'unavailable' with the reason.
    """
    period = p.gold_rsi_period
    names = dict(asof_ms=inputs.asof_ms, gold_symbol=inputs.gold_symbol, btc_symbol=inputs.btc_symbol)
    if not p.enable_gold_btc_rsi_overlay:
        return neutral("disabled (ENABLE_GOLD_BTC_RSI_OVERLAY is off)", **names)
    n = min(len(inputs.gold), len(inputs.btc))
    if n == 0:
        return neutral("no gold or btc candles", **names)
    gold = np.asarray(inputs.gold, dtype=np.float64)[-n:]
    btc = np.asarray(inputs.btc, dtype=np.float64)[-n:]
    need = max(p.gold_min_candles, period + 1)
    if n < need:
        return neutral(f"warming up: {n}/{need} candles", candles=n, **names)
    g, b = float(rsi(gold, period)[-1]), float(rsi(btc, period)[-1])
    if math.isnan(g) or math.isnan(b):
        return neutral("rsi undefined", candles=n, **names)
    ratio_ret, source = None, "synthetic"
    if p.use_direct_gold_btc_pair and inputs.ratio is not None:
        ratio_ret, source = ratio_return(np.asarray(inputs.ratio, dtype=np.float64), period), "direct"
    if ratio_ret is None:
        ratio_ret, source = ratio_return(gold / btc, period), "synthetic"
    return decide(g, b, ratio_ret, p, ratio_source=source, candles=n, **names)


def overlay_for(side: str, ctx: MacroContext, p: ProfileSettings | None = None) -> Overlay:
    """The runtime Overlay of one profile under ``ctx`` (neutral when unavailable).

    ``p`` is accepted for symmetry with the other helpers; every effect is already in ``ctx``.
    """
    from engine.runtime.profile import Overlay  # lazy: keeps engine.macro free of the runtime

    if not ctx.available:
        return Overlay(reason=f"macro unavailable: {ctx.reason}")
    return Overlay(
        budget_multiplier=ctx.budget_multiplier(side),
        ladder_multiplier=ctx.ladder_multiplier,
        entries_allowed=not ctx.disable_new_entries,
        averaging_allowed=not ctx.disable_averaging,
        time_multiplier=ctx.time_exit_multiplier,
        reason=f"macro {ctx.regime}: {ctx.reason}",
    )


def macro_gate(side: str, ctx: MacroContext) -> GateResult:
    """Named gate 'macro_regime' for the entry decision (value = the side's budget multiplier).

    Hard and failing when the regime blocks new entries or cuts the side's budget to zero;
    info otherwise, so the decision always shows the regime it was taken under."""
    if not ctx.available:
        return GateResult("macro_regime", 1.0, 0.0, True, INFO, ">", f"unavailable: {ctx.reason}")
    m = ctx.budget_multiplier(side)
    if ctx.disable_new_entries:
        return GateResult("macro_regime", m, 0.0, False, HARD, ">", f"{ctx.regime}: new entries blocked")
    if m <= 0.0:
        return GateResult("macro_regime", m, 0.0, False, HARD, ">", f"{ctx.regime}: {side} budget cut to 0")
    return GateResult("macro_regime", m, 0.0, True, INFO, ">", f"{ctx.regime}: {ctx.reason}")

