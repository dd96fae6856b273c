"""The settings the signal gates read, copied once per ProfileSettings object (hot path)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.settings import ProfileSettings


@dataclass(frozen=True, slots=True)
class SignalParams:
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


_CACHE: dict[int, tuple[ProfileSettings, SignalParams]] = {}


def signal_params(p: ProfileSettings) -> SignalParams:
    hit = _CACHE.get(id(p))
    if hit is not None and hit[0] is p:
        return hit[1]
    q = SignalParams(
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
