"""Market structure: chop, volume (direction, confirmation), adverse spike vs value area.

These gate `entry_valid` and `add_valid`, never `valid`. The market-structure penalty is
charged once, on the first failing structure gate, and the volume penalty once, on the first
failing volume gate (the pools live in `Ctx`), so the order of the pipeline matters here.
"""

from __future__ import annotations

from ..decision import HARD, INFO, GateResult
from .base import Ctx, Gate, fmt, result


def _chop(c: Ctx) -> GateResult:
    q, chop = c.q, c.f.chop
    ok = chop <= q.chop_max
    if q.chop_on:
        return result("chop", chop, q.chop_max, ok, HARD, "<=", "", 0.0 if ok else c.charge_structure(q.pen_chop))
    return result("chop", chop, q.chop_max, True, INFO, "<=", "EMA_CHOP_FILTER_ENABLED is off")


def _volume_direction(c: Ctx) -> GateResult:
    return result("volume_direction", c.dir_frac, c.q.vol_min_dir, c.dir_ok, INFO, ">=",
                  "component of volume_confirmation")


def _volume_confirmation(c: Ctx) -> GateResult:
    q = c.q
    if not q.vol_on:
        return result("volume_confirmation", c.ratio, q.vol_min_ratio, True, INFO, ">=",
                      "EMA_VOLUME_CONFIRMATION_ENABLED is off")
    confirmed = (c.ratio_ok and c.dir_ok) or c.aligned
    if confirmed:
        note = "" if c.ratio_ok and c.dir_ok else f"confirmed by an aligned {c.spike_dir} spike x{fmt(c.spike)}"
        pen = 0.0
    else:
        note = "" if c.ratio_ok else "ratio below minimum"
        if c.ratio_ok and not c.dir_ok:
            note = f"directional share {fmt(c.dir_frac)} < {fmt(q.vol_min_dir)}"
        pen = c.charge_volume()
    return result("volume_confirmation", c.ratio, q.vol_min_ratio, confirmed, HARD, ">=", note, pen)


def _adverse_spike(c: Ctx) -> GateResult:
    q = c.q
    note = f"largest recent volume: {c.spike_dir} candle x{fmt(c.spike)}"
    if q.vol_on and q.spike_on and not q.profile_on:  # the spike blocks on its own
        pen = c.charge_volume() if c.adverse else 0.0
        return result("adverse_spike", c.adverse_val, q.adverse_min, not c.adverse, HARD, "<", note, pen)
    if not q.vol_on:
        why = "; EMA_VOLUME_CONFIRMATION_ENABLED is off"
    elif not q.spike_on:
        why = "; EMA_VOLUME_SPIKE_FILTER_ENABLED is off"
    else:
        why = "; blocks only with a value-area break"
    return result("adverse_spike", c.adverse_val, q.adverse_min, not c.adverse, INFO, "<", note + why)


def _value_area(c: Ctx) -> GateResult:
    q, f = c.q, c.f
    thr, op = (f.va_low, ">=") if c.is_long else (f.va_high, "<=")
    blocks = c.adverse and c.broken
    if q.vol_on and q.spike_on and q.profile_on:
        pen = 0.0
        if blocks:
            note = "adverse spike broke the value area"
            pen = c.charge_volume()
        elif c.broken:
            note = "outside the value area without an adverse spike: allowed"
        else:
            note = "" if not c.adverse else "adverse spike inside the value area: allowed"
        return result("value_area", c.close, thr, not blocks, HARD, op, note, pen)
    return result("value_area", c.close, thr, not blocks, INFO, op,
                  "not checked: the volume, spike or profile filter is off")


CHOP = Gate(
    "chop", "hard when `EMA_CHOP_FILTER_ENABLED`, else info; structure gate",
    "Choppiness index of the trigger candles <= the maximum (a sideways market fails). A "
    "failure subtracts the chop penalty and the market-structure penalty.",
    ("EMA_CHOP_FILTER_ENABLED", "EMA_CHOP_PERIOD", "EMA_CHOP_MAX", "ENTRY_CHOP_INVALID_PENALTY",
     "ENTRY_MARKET_STRUCTURE_INVALID_PENALTY"),
    ("chop",), _chop, structure=True)

VOLUME_DIRECTION = Gate(
    "volume_direction", "info",
    "Share of the recent window's volume on candles that closed the trade's way, vs "
    "the minimum share; recorded, and used by `volume_confirmation`.",
    ("EMA_VOLUME_SHORT_WINDOW", "EMA_VOLUME_MIN_DIRECTIONAL_FRACTION"),
    ("volume_up_fraction", "volume_down_fraction"), _volume_direction)

VOLUME_CONFIRMATION = Gate(
    "volume_confirmation", "hard when `EMA_VOLUME_CONFIRMATION_ENABLED`, else info; structure gate",
    "Mean volume of the recent trigger candles / mean of the base window >= the minimum ratio "
    "(and the directional share is met), or else an aligned spike: the largest-volume recent "
    "candle closed the trade's way at >= the spike ratio (spike filter on). A failure "
    "subtracts the volume penalty (and the structure penalty if not charged yet).",
    ("EMA_VOLUME_CONFIRMATION_ENABLED", "EMA_VOLUME_SHORT_WINDOW", "EMA_VOLUME_LONG_WINDOW",
     "EMA_VOLUME_MIN_RATIO", "EMA_VOLUME_MIN_DIRECTIONAL_FRACTION", "EMA_VOLUME_SPIKE_FILTER_ENABLED",
     "EMA_VOLUME_SPIKE_WINDOW", "EMA_VOLUME_SPIKE_MIN_RATIO", "ENTRY_VOLUME_INVALID_PENALTY",
     "ENTRY_MARKET_STRUCTURE_INVALID_PENALTY"),
    ("volume_ratio", "volume_up_fraction", "volume_down_fraction", "spike_ratio", "spike_direction"),
    _volume_confirmation, structure=True)

ADVERSE_SPIKE = Gate(
    "adverse_spike",
    "hard only when the volume and spike filters are on and the profile filter is off; else "
    "info; structure gate",
    "The largest-volume candle of the spike window closed against the trade at >= the "
    "adverse spike ratio. With the volume-profile filter on, such a spike blocks only "
    "through `value_area`.",
    ("EMA_VOLUME_CONFIRMATION_ENABLED", "EMA_VOLUME_SPIKE_FILTER_ENABLED",
     "EMA_VOLUME_PROFILE_FILTER_ENABLED", "EMA_VOLUME_SPIKE_WINDOW", "EMA_VOLUME_ADVERSE_SPIKE_MIN_RATIO"),
    ("spike_ratio", "spike_direction"), _adverse_spike, structure=True)

VALUE_AREA = Gate(
    "value_area", "hard when the volume, spike and profile filters are all on, else info; structure gate",
    "Blocks when an adverse spike broke the volume-profile value area against the trade: "
    "close below the value-area low (long) or above the high (short). Outside the value area "
    "without an adverse spike is allowed.",
    ("EMA_VOLUME_PROFILE_FILTER_ENABLED", "EMA_VOLUME_PROFILE_WINDOW", "EMA_VOLUME_PROFILE_BINS",
     "EMA_VOLUME_PROFILE_VALUE_AREA"),
    ("close", "va_low", "va_high", "spike_ratio", "spike_direction"), _value_area, structure=True)
