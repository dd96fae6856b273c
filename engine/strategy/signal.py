"""The EMA-pullback signal of one symbol for one side: gates, score and flags.

``evaluate`` is pure: features in, ``Decision`` out. The short side mirrors every
inequality of the long side: a directional quantity is the long-frame value times +1 (long)
or -1 (short), and settings given "in the trade direction" (ENTRY_MIN_RS60_ABS, ...) compare
with it; settings given per side (EMA_LONG_MIN_RS60 / EMA_SHORT_MAX_RS60, the BTC limits)
compare with the raw value with the inequality flipped.

Score (the raw score, then the gates' penalties in order, see ``decision.fold_score``)::

    macro_gap    = dir * (macro_fast - macro_slow) / close
    trigger_gap  = dir * (trigger_fast - trigger_slow) / close
    pullback_dep = dir * (pullback_fast - pullback_slow) / close
    rs_dir60     = dir * rs60
    raw_score    = SIGNAL_EMA_GAP_WEIGHT * (macro_gap + trigger_gap)
                   * max(0.01, 1 + pullback_dep) * max(0.01, 1 + rs_dir60)

A pullback or relative strength against the trade multiplies the score down. Then each
failing gate subtracts its penalty (ENTRY_*_PENALTY; the BTC penalty grows by
ENTRY_BTC_RETURN_PENALTY_MULTIPLIER per unit of BTC return beyond its limit; the rs30/rs60
shortfall below ENTRY_MIN_RS*_ABS costs ENTRY_RS*_SHORTFALL_PENALTY_MULTIPLIER per unit).
A penalty shared by several gates (market structure, volume, pullback recovery) is charged
once, on the first failing gate it concerns. Extra gates from elsewhere (the cross-exchange
impulse bonus, the reference score factor) act on the score the same way, before min_score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from engine.settings import ProfileSettings

from .decision import HARD, INFO, PENALTY, Decision, GateResult, Side, validate_gates, fold_score
from .features import CROSS_DOWN, CROSS_UP, SymbolFeatures

__all__ = ["SIGNAL_GATES", "STRUCTURE_GATES", "evaluate"]

INF = math.inf
NAN = math.nan

#: Gate names produced by ``evaluate``, in order (extra gates go before ``min_score``).
SIGNAL_GATES: tuple[str, ...] = (
    "strategy_enabled",
    "macro_trend",
    "trigger_trend",
    "rs_confirmation",
    "btc_risk",
    "chop",
    "volume_direction",
    "volume_confirmation",
    "adverse_spike",
    "value_area",
    "pullback_cross_age",
    "pullback_gap",
    "min_rs60",
    "min_rs30",
    "min_score",
)

#: the gates that together say "the pullback has recovered" (averaging reads them too)
PULLBACK_GATES: tuple[str, ...] = ("pullback_cross_age", "pullback_gap")
#: Market-structure gates: they gate entry_valid and add_valid, never valid.
STRUCTURE_GATES: frozenset[str] = frozenset(
    ("chop", "volume_confirmation", "adverse_spike", "value_area")
)


@dataclass(frozen=True, slots=True)
class _P:
    """The settings evaluate reads, copied once per ProfileSettings object."""

    enabled: bool
    gap_weight: float
    use_rs: bool
    long_min_rs60: float
    short_max_rs60: float
    use_btc: bool
    btc_long_min: float
    btc_short_max: float
    chop_on: bool
    chop_max: float
    vol_on: bool
    vol_min_ratio: float
    vol_min_dir: float
    spike_on: bool
    spike_min: float
    adverse_min: float
    profile_on: bool
    pb_required: bool
    pb_max_age: float
    pb_gap: float
    min_score: float
    min_rs60: float
    min_rs30: float
    pen_macro: float
    pen_pullback: float
    pen_trigger: float
    pen_btc: float
    pen_btc_mult: float
    pen_structure: float
    pen_volume: float
    pen_chop: float
    pen_rs60_mult: float
    pen_rs30_mult: float


_CACHE: dict[int, tuple[ProfileSettings, _P]] = {}


def _params(p: ProfileSettings) -> _P:
    hit = _CACHE.get(id(p))
    if hit is not None and hit[0] is p:
        return hit[1]
    q = _P(
        enabled=bool(p.ema_strategy_enabled),
        gap_weight=float(p.signal_ema_gap_weight),
        use_rs=bool(p.ema_use_rs_confirmation),
        long_min_rs60=float(p.ema_long_min_rs60),
        short_max_rs60=float(p.ema_short_max_rs60),
        use_btc=bool(p.ema_use_btc_risk_filter),
        btc_long_min=float(p.ema_btc_long_min_return_30m),
        btc_short_max=float(p.ema_btc_short_max_return_30m),
        chop_on=bool(p.ema_chop_filter_enabled),
        chop_max=float(p.ema_chop_max),
        vol_on=bool(p.ema_volume_confirmation_enabled),
        vol_min_ratio=float(p.ema_volume_min_ratio),
        vol_min_dir=float(p.ema_volume_min_directional_fraction),
        spike_on=bool(p.ema_volume_spike_filter_enabled),
        spike_min=float(p.ema_volume_spike_min_ratio),
        adverse_min=float(p.ema_volume_adverse_spike_min_ratio),
        profile_on=bool(p.ema_volume_profile_filter_enabled),
        pb_required=bool(p.ema_entry_require_pullback_recovery),
        pb_max_age=float(min(p.ema_pullback_recovery_max_cross_age_minutes,
                             p.ema_pullback_recovery_lookback_minutes)),
        pb_gap=float(p.ema_pullback_recovery_gap),
        min_score=float(p.entry_min_score),
        min_rs60=float(p.entry_min_rs60_abs),
        min_rs30=float(p.entry_min_rs30_abs),
        pen_macro=float(p.entry_macro_invalid_penalty),
        pen_pullback=float(p.entry_pullback_invalid_penalty),
        pen_trigger=float(p.entry_trigger_invalid_penalty),
        pen_btc=float(p.entry_btc_invalid_penalty),
        pen_btc_mult=float(p.entry_btc_return_penalty_multiplier),
        pen_structure=float(p.entry_market_structure_invalid_penalty),
        pen_volume=float(p.entry_volume_invalid_penalty),
        pen_chop=float(p.entry_chop_invalid_penalty),
        pen_rs60_mult=float(p.entry_rs60_shortfall_penalty_multiplier),
        pen_rs30_mult=float(p.entry_rs30_shortfall_penalty_multiplier),
    )
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[id(p)] = (p, q)
    return q


_new = tuple.__new__


def _g(name: str, value: float, threshold: float, passed: bool, kind: str, op: str,
       detail: str = "", delta: float = 0.0) -> GateResult:
    """GateResult without the namedtuple constructor's keyword handling (hot path)."""
    return _new(GateResult, (name, value, threshold, passed, kind, op, detail, delta, 1.0))


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _shortfall(threshold: float, value: float) -> float:
    """max(0, threshold - value); 0 when value is NaN (the hard gate already fails)."""
    d = threshold - value
    return d if d > 0.0 else 0.0


def evaluate(
    side: Side,
    f: SymbolFeatures,
    btc: SymbolFeatures | None,
    p: ProfileSettings,
    extra_gates: Iterable[GateResult] = (),
) -> Decision:
    """Evaluate the long or short signal of one symbol into a Decision with every gate.

    ``btc`` is the benchmark's features at the same candle (``FeatureEngine.benchmark``);
    None, or features of another candle, fails the BTC risk filter when it is enabled.
    ``extra_gates`` (macro regime, cross-exchange checks, ...) are inserted before the final
    ``min_score`` gate, in the given order, and act on the score and on ``entry_valid``.
    """
    if side == "long":
        d = 1.0
    elif side == "short":
        d = -1.0
    else:
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    is_long = d > 0.0
    q = _params(p)
    close = f.close
    gates: list[GateResult] = []
    add = gates.append

    # 1. strategy switch
    add(_g("strategy_enabled", 1.0 if q.enabled else 0.0, 1.0, q.enabled, HARD, ">=",
          "" if q.enabled else "EMA_STRATEGY_ENABLED is off"))

    # 2-3. macro and trigger trends (fast above slow for longs, below for shorts)
    macro_gap = d * (f.macro_fast - f.macro_slow) / close
    macro_ok = macro_gap > 0.0
    add(_g("macro_trend", macro_gap, 0.0, macro_ok, HARD, ">", "",
          0.0 if macro_ok else -q.pen_macro))
    trigger_gap = d * (f.trigger_fast - f.trigger_slow) / close
    trigger_ok = trigger_gap > 0.0
    add(_g("trigger_trend", trigger_gap, 0.0, trigger_ok, HARD, ">", "",
          0.0 if trigger_ok else -q.pen_trigger))

    # 4. relative strength confirmation (rs60 vs the side's limit)
    rs60 = f.rs60
    if is_long:
        thr, op, ok = q.long_min_rs60, ">=", rs60 >= q.long_min_rs60
    else:
        thr, op, ok = q.short_max_rs60, "<=", rs60 <= q.short_max_rs60
    if q.use_rs:
        add(_g("rs_confirmation", rs60, thr, ok, HARD, op))
    else:
        add(_g("rs_confirmation", rs60, thr, True, INFO, op, "EMA_USE_RS_CONFIRMATION is off"))

    # 5. BTC risk filter (benchmark 30-minute return not strongly against the trade)
    if btc is None:
        b30, bnote = NAN, "benchmark features missing"
    elif btc.ts_ms != f.ts_ms:
        b30, bnote = NAN, f"benchmark candle {btc.ts_ms} != symbol candle {f.ts_ms}"
    else:
        b30, bnote = btc.ret30, ""
    if is_long:
        thr, op, ok = q.btc_long_min, ">=", b30 >= q.btc_long_min
        beyond = _shortfall(q.btc_long_min, b30)
    else:
        thr, op, ok = q.btc_short_max, "<=", b30 <= q.btc_short_max
        beyond = _shortfall(-q.btc_short_max, -b30)
    if q.use_btc:
        pen = 0.0 if ok else -(q.pen_btc + beyond * q.pen_btc_mult)
        add(_g("btc_risk", b30, thr, ok, HARD, op, bnote, pen))
    else:
        add(_g("btc_risk", b30, thr, True, INFO, op, "EMA_USE_BTC_RISK_FILTER is off"))

    # 6-10. market structure: chop, volume, adverse spike vs value area
    structure_pen = q.pen_structure  # charged once, on the first failing structure gate
    volume_pen = q.pen_volume  # charged once, on the first failing volume gate
    chop = f.chop
    chop_ok = chop <= q.chop_max
    if q.chop_on:
        pen = 0.0
        if not chop_ok:
            pen = -(q.pen_chop + structure_pen)
            structure_pen = 0.0
        add(_g("chop", chop, q.chop_max, chop_ok, HARD, "<=", "", pen))
    else:
        add(_g("chop", chop, q.chop_max, True, INFO, "<=", "EMA_CHOP_FILTER_ENABLED is off"))

    aligned_dir, adverse_dir = ("up", "down") if is_long else ("down", "up")
    dir_frac = f.volume_up_fraction if is_long else f.volume_down_fraction
    dir_ok = dir_frac >= q.vol_min_dir
    add(_g("volume_direction", dir_frac, q.vol_min_dir, dir_ok, INFO, ">=",
          "component of volume_confirmation"))

    spike = f.spike_ratio
    spike_dir = f.spike_direction
    aligned = (q.spike_on and q.spike_min > 0.0 and spike_dir == aligned_dir
               and spike >= q.spike_min)
    adverse_val = spike if spike_dir == adverse_dir else 0.0
    adverse = q.spike_on and q.adverse_min > 0.0 and adverse_val >= q.adverse_min
    ratio = f.volume_ratio
    ratio_ok = ratio >= q.vol_min_ratio
    confirmed = (ratio_ok and dir_ok) or aligned
    if not q.vol_on:
        add(_g("volume_confirmation", ratio, q.vol_min_ratio, True, INFO, ">=",
              "EMA_VOLUME_CONFIRMATION_ENABLED is off"))
    else:
        if confirmed:
            note = ("" if ratio_ok and dir_ok
                     else f"confirmed by an aligned {spike_dir} spike x{_fmt(spike)}")
            pen = 0.0
        else:
            note = "" if ratio_ok else "ratio below minimum"
            if ratio_ok and not dir_ok:
                note = f"directional share {_fmt(dir_frac)} < {_fmt(q.vol_min_dir)}"
            pen = -(volume_pen + structure_pen)
            volume_pen = structure_pen = 0.0
        add(_g("volume_confirmation", ratio, q.vol_min_ratio, confirmed, HARD, ">=", note, pen))

    spike_note = f"largest recent volume: {spike_dir} candle x{_fmt(spike)}"
    spike_blocks_alone = q.vol_on and q.spike_on and not q.profile_on
    if spike_blocks_alone:
        pen = 0.0
        if adverse:
            pen = -(volume_pen + structure_pen)
            volume_pen = structure_pen = 0.0
        add(_g("adverse_spike", adverse_val, q.adverse_min, not adverse, HARD, "<",
              spike_note, pen))
    else:
        if not q.vol_on:
            why = "; EMA_VOLUME_CONFIRMATION_ENABLED is off"
        elif not q.spike_on:
            why = "; EMA_VOLUME_SPIKE_FILTER_ENABLED is off"
        else:
            why = "; blocks only with a value-area break"
        add(_g("adverse_spike", adverse_val, q.adverse_min, not adverse, INFO, "<",
              spike_note + why))

    if is_long:
        va_thr, va_op = f.va_low, ">="
        broken = close < f.va_low
    else:
        va_thr, va_op = f.va_high, "<="
        broken = close > f.va_high
    va_blocks = adverse and broken
    if q.vol_on and q.spike_on and q.profile_on:
        pen = 0.0
        if va_blocks:
            note = "adverse spike broke the value area"
            pen = -(volume_pen + structure_pen)
            volume_pen = structure_pen = 0.0
        elif broken:
            note = "outside the value area without an adverse spike: allowed"
        else:
            note = "" if not adverse else "adverse spike inside the value area: allowed"
        add(_g("value_area", close, va_thr, not va_blocks, HARD, va_op, note, pen))
    else:
        add(_g("value_area", close, va_thr, not va_blocks, INFO, va_op,
              "not checked: the volume, spike or profile filter is off"))

    # 11-12. pullback recovery: pullback EMAs crossed back in the trade direction recently
    cross_ok_dir = f.pullback_cross == (CROSS_UP if is_long else CROSS_DOWN)
    age = f.pullback_cross_age_min if cross_ok_dir else INF
    age_ok = age <= q.pb_max_age
    pb_gap = d * f.pullback_gap
    if q.pb_gap > 0.0:
        gap_ok, gop = pb_gap >= q.pb_gap, ">="
    else:
        gap_ok, gop = pb_gap > 0.0, ">"
    recovered = age_ok and gap_ok
    pkind = HARD if q.pb_required else PENALTY
    pen_age = 0.0 if age_ok else -q.pen_pullback
    pen_gap = 0.0 if gap_ok or not age_ok else -q.pen_pullback
    cross_note = (f"last cross {f.pullback_cross or 'none'}"
                  + ("" if cross_ok_dir or not f.pullback_cross else " (against the trade)"))
    add(_g("pullback_cross_age", age, q.pb_max_age, age_ok, pkind, "<=", cross_note, pen_age))
    add(_g("pullback_gap", pb_gap, q.pb_gap, gap_ok, pkind, gop, "", pen_gap))

    # 13-14. relative strength in the trade direction (shortfall also penalised)
    rs60_dir = d * rs60
    rs30_dir = d * f.rs30
    ok60 = rs60_dir >= q.min_rs60
    ok30 = rs30_dir >= q.min_rs30
    add(_g("min_rs60", rs60_dir, q.min_rs60, ok60, HARD, ">=", "",
          -_shortfall(q.min_rs60, rs60_dir) * q.pen_rs60_mult))
    add(_g("min_rs30", rs30_dir, q.min_rs30, ok30, HARD, ">=", "",
          -_shortfall(q.min_rs30, rs30_dir) * q.pen_rs30_mult))

    # extra gates from the runtime (macro regime, cross-exchange checks, ...)
    extra = tuple(extra_gates)
    gates.extend(extra)

    # raw score and the final min-score gate
    pullback_depth = d * (f.pullback_fast - f.pullback_slow) / close
    raw = (q.gap_weight * (macro_gap + trigger_gap)
           * max(0.01, 1.0 + pullback_depth) * max(0.01, 1.0 + rs60_dir))
    score = fold_score(raw, gates)
    score_ok = score >= q.min_score
    add(_g("min_score", score, q.min_score, score_ok, HARD, ">="))

    all_gates = tuple(gates)
    if extra:
        validate_gates(all_gates)
    structure_ok = True
    entry_ok = True
    for g in all_gates:
        if g.kind == HARD and not g.passed:
            entry_ok = False
            if g.name in STRUCTURE_GATES:
                structure_ok = False
    valid = macro_ok and (trigger_ok or recovered)
    return Decision(
        symbol=f.symbol,
        side=side,
        ts_ms=f.ts_ms,
        score=score,
        raw_score=raw,
        valid=valid,
        entry_valid=entry_ok,
        add_valid=valid and q.enabled and structure_ok,
        gates=all_gates,
        features=f,
        benchmark=btc,
    )
