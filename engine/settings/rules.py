"""Cross-field rules for one profile's settings.

A single value can be valid on its own and wrong next to another (a fast EMA slower than the
slow one, a per-position cap above the total cap, three ladder fractions for two offsets).
Each rule names the fields it reads, so the loader can point at the `.env` lines involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .fields import TIMEFRAME_MINUTES

_EPS = 1e-9


@dataclass(frozen=True)
class Violation:
    fields: tuple[str, ...]
    message: str


Rule = Callable[[Any], list[Violation]]


def _sum_at_most_one(*names: str) -> list[Rule]:
    def make(name: str) -> Rule:
        def rule(p: Any) -> list[Violation]:
            values = [v for v in getattr(p, name) if v is not None]
            total = sum(values)
            if total > 1 + _EPS:
                return [Violation((name,), f"fractions add up to {total:g}; they must sum to at most 1")]
            return []
        return rule
    return [make(n) for n in names]


def _same_length(a: str, b: str) -> Rule:
    def rule(p: Any) -> list[Violation]:
        la, lb = len(getattr(p, a)), len(getattr(p, b))
        if la != lb:
            return [Violation((a, b), f"{a.upper()} has {la} items but {b.upper()} has {lb}; "
                                      "each step needs one of each")]
        return []
    return rule


def _not_empty(name: str) -> Rule:
    def rule(p: Any) -> list[Violation]:
        if len(getattr(p, name)) == 0:
            return [Violation((name,), "needs at least one item")]
        return []
    return rule


def _ordered(lo: str, hi: str, strict: bool, why: str) -> Rule:
    def rule(p: Any) -> list[Violation]:
        a, b = getattr(p, lo), getattr(p, hi)
        bad = a >= b if strict else a > b
        if bad:
            op = "<" if strict else "<="
            return [Violation((lo, hi), f"{lo.upper()} ({a:g}) must be {op} {hi.upper()} ({b:g}): {why}")]
        return []
    return rule


def _ascending(name: str, strict: bool) -> Rule:
    def rule(p: Any) -> list[Violation]:
        vals = [v for v in getattr(p, name) if v is not None]
        pairs = list(zip(vals, vals[1:]))
        if any((b <= a) if strict else (b < a) for a, b in pairs):
            word = "increasing" if strict else "non-decreasing"
            return [Violation((name,), f"steps must be {word} (got {','.join(f'{v:g}' for v in vals)})")]
        return []
    return rule


def _ema_span(fast: str, slow: str, timeframe: str) -> Rule:
    def rule(p: Any) -> list[Violation]:
        out = []
        f, s, tf = getattr(p, fast), getattr(p, slow), getattr(p, timeframe)
        if f >= s:
            out.append(Violation((fast, slow), f"fast EMA ({f} min) must be shorter than slow EMA ({s} min)"))
        step = TIMEFRAME_MINUTES[tf]
        for name, v in ((fast, f), (slow, s)):
            if v < step:
                out.append(Violation((name, timeframe),
                                     f"{v} minutes is shorter than one {tf} candle of {timeframe.upper()}"))
        return out
    return rule


def _averaging_steps(p: Any) -> list[Violation]:
    out = []
    for name in ("averaging_drawdown_steps", "averaging_budget_fractions"):
        vals = getattr(p, name)
        if vals and len(vals) != p.ema_max_averaging_stages:
            out.append(Violation((name, "ema_max_averaging_stages"),
                                 f"{len(vals)} items given but EMA_MAX_AVERAGING_STAGES is "
                                 f"{p.ema_max_averaging_stages} (leave empty to compute them)"))
    return out


def _stages(p: Any) -> list[Violation]:
    if p.ema_max_averaging_stages > p.max_buy_stages - 1:
        return [Violation(("ema_max_averaging_stages", "max_buy_stages"),
                          f"{p.ema_max_averaging_stages} averaging stages need MAX_BUY_STAGES >= "
                          f"{p.ema_max_averaging_stages + 1} (the first entry is a stage too)")]
    return []


def _time_exits(p: Any) -> list[Violation]:
    out = []
    if p.hard_time_exit_after_minutes > 0 and p.time_exit_after_minutes > p.hard_time_exit_after_minutes:
        out.append(Violation(("time_exit_after_minutes", "hard_time_exit_after_minutes"),
                             "the soft time exit must not come after the hard time exit"))
    if (p.ema_breakeven_enabled and p.hard_time_exit_after_minutes > 0
            and p.ema_breakeven_after_hours * 60 > p.hard_time_exit_after_minutes):
        out.append(Violation(("ema_breakeven_after_hours", "hard_time_exit_after_minutes"),
                             "breakeven must start before the hard time exit"))
    return out


RULES: list[Rule] = [
    # ladders: every step has a fraction and an offset/markup, fractions never exceed the position
    *_sum_at_most_one(
        "ema_ladder_fractions", "ema_exit_ladder_fractions", "ema_exit_normal_ladder_fractions",
        "ema_exit_medium_ladder_fractions", "ema_exit_heavy_ladder_fractions",
        "ema_breakeven_exit_fractions", "external_price_tightened_ladder_fractions",
    ),
    _not_empty("ema_ladder_fractions"),
    _same_length("ema_ladder_fractions", "ema_ladder_offsets"),
    _same_length("ema_exit_normal_ladder_fractions", "ema_exit_normal_ladder_markups"),
    _same_length("ema_exit_medium_ladder_fractions", "ema_exit_medium_ladder_markups"),
    _same_length("ema_exit_heavy_ladder_fractions", "ema_exit_heavy_ladder_markups"),
    _same_length("external_price_tightened_ladder_fractions", "external_price_tightened_ladder_markups"),
    _ascending("ema_ladder_offsets", strict=False),
    _ascending("ema_exit_normal_ladder_markups", strict=True),
    _ascending("ema_exit_medium_ladder_markups", strict=True),
    _ascending("ema_exit_heavy_ladder_markups", strict=True),
    _ascending("external_price_tightened_ladder_markups", strict=True),
    # EMA map and windows: fast shorter than slow
    _ema_span("ema_macro_fast_minutes", "ema_macro_slow_minutes", "ema_macro_timeframe"),
    _ema_span("ema_pullback_fast_minutes", "ema_pullback_slow_minutes", "ema_pullback_timeframe"),
    _ema_span("ema_trigger_fast_minutes", "ema_trigger_slow_minutes", "ema_trigger_timeframe"),
    _ordered("rs_fast_window", "rs_slow_window", True, "the fast RS window is the shorter one"),
    _ordered("ema_volume_short_window", "ema_volume_long_window", True,
             "recent volume is compared with a longer base"),
    # caps ordered: budget <= per-position cap <= total cap
    _ordered("ema_position_budget_fraction", "ema_max_position_margin_fraction", False,
             "the budget of one position cannot exceed its margin cap"),
    _ordered("ema_max_position_margin_fraction", "ema_max_total_margin_fraction", False,
             "one position's cap cannot exceed the total cap"),
    _ordered("hard_stop_loss_pct", "hard_stop_loss_atr_max_pct", False,
             "ATR widening is capped above the fixed stop distance"),
    _ordered("ema_exit_medium_position_ratio", "ema_exit_heavy_position_ratio", True,
             "the heavy ladder starts above the medium one"),
    _ordered("ema_exit_trailing_min_pullback", "ema_exit_trailing_max_pullback", False,
             "trailing pullback bounds"),
    _ordered("ema_exit_trailing_activation_markup", "ema_exit_trailing_take_profit_markup", False,
             "the runner activates before its take-profit"),
    _ordered("ema_exit_runner_activation_markup", "ema_exit_runner_take_profit_markup", False,
             "the runner activates before its take-profit"),
    _ordered("entry_min_score", "entry_crowded_min_score", False, "crowded rules only tighten"),
    _ordered("entry_min_rs60_abs", "entry_crowded_min_rs60_abs", False, "crowded rules only tighten"),
    _ordered("entry_min_rs30_abs", "entry_crowded_min_rs30_abs", False, "crowded rules only tighten"),
    _ordered("entry_crowded_max_new_ladders_per_signal", "entry_max_new_ladders_per_signal", False,
             "crowded rules only tighten"),
    _ordered("signal_budget_min_multiplier", "signal_budget_max_multiplier", False, "multiplier bounds"),
    _ordered("min_ladder_volatility_multiplier", "max_ladder_volatility_multiplier", False,
             "multiplier bounds"),
    _ordered("gold_weak_rsi", "gold_strong_rsi", True, "weak RSI is below strong RSI"),
    _ordered("btc_weak_rsi", "btc_strong_rsi", True, "weak RSI is below strong RSI"),
    _averaging_steps,
    _stages,
    _time_exits,
]


def check(profile: Any) -> list[Violation]:
    """All cross-field violations of one profile (empty when consistent)."""
    out: list[Violation] = []
    for rule in RULES:
        out.extend(rule(profile))
    return out


def _hedge_coin_not_traded(g: Any) -> list[Violation]:
    """The hedge and the strategy cannot share a market: in one-way mode a coin has one
    position, and the strategy would trade (and close) the hedge."""
    if not g.btc_hedge_enabled:
        return []
    coin = str(g.btc_hedge_coin).strip().lower()
    out = []
    for name in ("coins", "coins_2"):
        if coin in {c.lower() for c in getattr(g, name, ())}:
            out.append(Violation((name, "btc_hedge_coin", "btc_hedge_enabled"),
                                 f"BTC_HEDGE_COIN={coin} is also in {name.upper()}: the hedge needs a coin the "
                                 f"strategy does not trade; take {coin} out of {name.upper()} or choose another "
                                 "hedge coin"))
    return out


def _second_account_coins_apart(g: Any) -> list[Violation]:
    """A coin trades on one account: in one-way mode each account holds its own position, and
    the bot would run two strategies on one coin."""
    both = sorted(set(g.coins) & set(g.coins_2))
    if not both:
        return []
    return [Violation(("coins", "coins_2"), f"{', '.join(both)} in both COINS and COINS_2: a coin trades on one "
                                           "account; keep it in one list")]


GLOBAL_RULES: list[Rule] = [_hedge_coin_not_traded, _second_account_coins_apart]


def check_global(glob: Any) -> list[Violation]:
    """All cross-field violations of the process-wide settings."""
    out: list[Violation] = []
    for rule in GLOBAL_RULES:
        out.extend(rule(glob))
    return out
