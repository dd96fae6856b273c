"""The long signal, the mirrored short signal, gates at their thresholds, flags, score."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.settings import ProfileSettings
from engine.strategy import (
    HARD,
    INFO,
    PENALTY,
    SIGNAL_GATES,
    GateResult,
    SymbolFeatures,
    evaluate,
)

P = ProfileSettings()
TS = 1_700_000_000_000 - 1_700_000_000_000 % 300_000


def up(x: float) -> float:
    return math.nextafter(x, math.inf)


def down(x: float) -> float:
    return math.nextafter(x, -math.inf)


def long_features(**kw) -> SymbolFeatures:
    """A clean long setup on numbers exact in binary: every gate passes with defaults."""
    base = dict(
        symbol="AAA/USDT:USDT", ts_ms=TS, close=100.0,
        macro_fast=103.0, macro_slow=100.0, macro_ts_ms=TS - 3_300_000,
        pullback_fast=100.75, pullback_slow=100.25, pullback_gap=0.5 / 100.25,
        pullback_cross="up", pullback_cross_age_min=30.0,
        trigger_fast=100.75, trigger_slow=100.25,
        chop=40.0, volume_ratio=1.5, volume_up_fraction=0.625, volume_down_fraction=0.25,
        spike_ratio=1.25, spike_direction="up",
        va_low=99.0, va_high=101.0, va_poc=100.0,
        ret30=0.00390625, ret60=0.0078125, rs30=0.00390625, rs60=0.0078125,
        atr=0.5, atr_rate=0.005, volatility=0.002, daily_volatility=0.03, warm=True,
    )
    base.update(kw)
    return SymbolFeatures(**base)


BTC = SymbolFeatures.neutral_benchmark(TS, "BTC/USDT:USDT")


def mirror(f: SymbolFeatures) -> SymbolFeatures:
    """The same market seen upside down around the close: every long-frame quantity flips."""
    c = f.close
    swap = {"up": "down", "down": "up"}
    return replace(
        f,
        macro_fast=2 * c - f.macro_fast, macro_slow=2 * c - f.macro_slow,
        pullback_fast=2 * c - f.pullback_fast, pullback_slow=2 * c - f.pullback_slow,
        pullback_gap=-f.pullback_gap, pullback_cross=swap.get(f.pullback_cross, ""),
        trigger_fast=2 * c - f.trigger_fast, trigger_slow=2 * c - f.trigger_slow,
        volume_up_fraction=f.volume_down_fraction, volume_down_fraction=f.volume_up_fraction,
        spike_direction=swap.get(f.spike_direction, f.spike_direction),
        va_low=2 * c - f.va_high, va_high=2 * c - f.va_low, va_poc=2 * c - f.va_poc,
        ret30=-f.ret30, ret60=-f.ret60, rs30=-f.rs30, rs60=-f.rs60,
    )


def btc_at(ret30: float) -> SymbolFeatures:
    return replace(BTC, ret30=ret30)


def both(f, p=P, btc=BTC, **kw):
    """(long decision on f, short decision on the mirror of f)."""
    mb = replace(btc, ret30=-btc.ret30) if btc is not None else None
    return evaluate("long", f, btc, p, **kw), evaluate("short", mirror(f), mb, p, **kw)


# ---------------------------------------------------------------------------------------
# the baseline
# ---------------------------------------------------------------------------------------
def test_clean_setup_passes_every_gate_on_both_sides():
    for d in both(long_features()):
        assert d.gate_names == SIGNAL_GATES
        assert d.failed_gates == ()
        assert d.first_rejection is None
        assert d.valid and d.entry_valid and d.add_valid
        assert d.score == d.raw_score > P.entry_min_score


def test_long_setup_is_no_short_setup():
    d = evaluate("short", long_features(), BTC, P)
    assert not d.valid and not d.entry_valid and not d.add_valid
    assert d.first_rejection == "macro_trend"


def test_bad_side_is_refused():
    with pytest.raises(ValueError):
        evaluate("flat", long_features(), BTC, P)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# every gate exactly at its threshold, long and mirrored short
# ---------------------------------------------------------------------------------------
def verdict(decisions, gate):
    (dl, ds) = decisions
    gl, gs = dl.gate(gate), ds.gate(gate)
    assert gl.passed == gs.passed, gate
    return gl.passed


def test_macro_and_trigger_need_a_strict_gap():
    assert not verdict(both(long_features(macro_fast=100.0)), "macro_trend")
    assert verdict(both(long_features(macro_fast=100.0 + 2**-40)), "macro_trend")
    assert not verdict(both(long_features(trigger_fast=100.25)), "trigger_trend")
    assert verdict(both(long_features(trigger_fast=100.25 + 2**-40)), "trigger_trend")


def test_rs_confirmation_at_its_limit():
    p = P.model_copy(update={"ema_long_min_rs60": 0.001, "ema_short_max_rs60": -0.001})
    assert verdict(both(long_features(rs60=0.001), p), "rs_confirmation")
    assert not verdict(both(long_features(rs60=down(0.001)), p), "rs_confirmation")


def test_btc_risk_at_its_limit():
    f = long_features()
    assert verdict(both(f, btc=btc_at(-0.0025)), "btc_risk")
    assert not verdict(both(f, btc=btc_at(down(-0.0025))), "btc_risk")
    dl, ds = both(f, btc=btc_at(-0.0025))
    assert ds.gate("btc_risk").value == 0.0025 and ds.gate("btc_risk").op == "<="


def test_btc_risk_fails_without_benchmark_at_the_same_candle():
    f = long_features()
    for btc in (None, replace(BTC, ts_ms=TS - 300_000)):
        d = evaluate("long", f, btc, P)
        assert not d.passed("btc_risk") and d.first_rejection == "btc_risk"
        assert d.gate("btc_risk").detail
    off = P.model_copy(update={"ema_use_btc_risk_filter": False})
    g = evaluate("long", f, None, off).gate("btc_risk")
    assert g.passed and g.kind == INFO


def test_chop_at_its_limit():
    assert verdict(both(long_features(chop=61.8)), "chop")
    assert not verdict(both(long_features(chop=up(61.8))), "chop")


def test_volume_confirmation_at_its_limit_or_by_aligned_spike():
    assert verdict(both(long_features(volume_ratio=1.05)), "volume_confirmation")
    weak = long_features(volume_ratio=down(1.05))
    assert not verdict(both(weak), "volume_confirmation")
    spiked = replace(weak, spike_direction="up", spike_ratio=1.8)
    assert verdict(both(spiked), "volume_confirmation")
    assert "aligned" in both(spiked)[0].gate("volume_confirmation").detail
    assert not verdict(both(replace(spiked, spike_ratio=down(1.8))), "volume_confirmation")
    # a spike against the trade never confirms
    assert not verdict(both(replace(spiked, spike_direction="down")), "volume_confirmation")


def test_directional_volume_share_when_required():
    p = P.model_copy(update={"ema_volume_min_directional_fraction": 0.625})
    assert verdict(both(long_features(), p), "volume_confirmation")
    f = long_features(volume_up_fraction=down(0.625))
    assert not verdict(both(f, p), "volume_confirmation")
    assert not verdict(both(f, p), "volume_direction")
    assert both(f, p)[0].gate("volume_direction").kind == INFO


def test_adverse_spike_blocks_only_when_it_breaks_the_value_area():
    adverse = long_features(spike_direction="down", spike_ratio=2.0)
    dl, ds = both(adverse)  # close 100 inside [99, 101]
    assert dl.gate("adverse_spike").kind == INFO and not dl.passed("adverse_spike")
    assert dl.passed("value_area") and dl.entry_valid and ds.entry_valid
    at_edge = replace(adverse, va_low=100.0)  # close exactly on the value-area low
    assert verdict(both(at_edge), "value_area")
    broken = replace(adverse, va_low=up(100.0))
    assert not verdict(both(broken), "value_area")
    assert both(broken)[0].first_rejection == "value_area"
    # the same break with a spike just below the adverse ratio is allowed
    assert verdict(both(replace(broken, spike_ratio=down(2.0))), "value_area")
    # a break in the trade's favour is no break
    assert verdict(both(replace(adverse, va_high=down(100.0))), "value_area")


def test_adverse_spike_blocks_alone_without_the_profile_filter():
    p = P.model_copy(update={"ema_volume_profile_filter_enabled": False})
    f = long_features(spike_direction="down", spike_ratio=2.0)
    dl, ds = both(f, p)
    assert dl.gate("adverse_spike").kind == HARD
    assert dl.first_rejection == ds.first_rejection == "adverse_spike"
    assert verdict(both(replace(f, spike_ratio=down(2.0)), p), "adverse_spike")
    assert dl.gate("value_area").kind == INFO


def test_pullback_recovery_age_and_gap_at_their_limits():
    assert verdict(both(long_features(pullback_cross_age_min=180.0)), "pullback_cross_age")
    assert not verdict(both(long_features(pullback_cross_age_min=up(180.0))),
                       "pullback_cross_age")
    p = P.model_copy(update={"ema_pullback_recovery_lookback_minutes": 120})
    assert not verdict(both(long_features(pullback_cross_age_min=125.0), p), "pullback_cross_age")
    assert both(long_features(), p)[0].gate("pullback_cross_age").threshold == 120.0
    assert verdict(both(long_features(pullback_gap=0.001)), "pullback_gap")
    assert not verdict(both(long_features(pullback_gap=down(0.001))), "pullback_gap")
    # with a zero minimum the gap must still be positive
    p0 = P.model_copy(update={"ema_pullback_recovery_gap": 0.0})
    assert not verdict(both(long_features(pullback_gap=0.0), p0), "pullback_gap")
    assert verdict(both(long_features(pullback_gap=2**-40), p0), "pullback_gap")
    # the last cross against the trade is no recovery, whatever its age
    assert not verdict(both(long_features(pullback_cross="down")), "pullback_cross_age")
    assert not verdict(both(long_features(pullback_cross="")), "pullback_cross_age")


def test_min_rs_at_their_limits():
    assert verdict(both(long_features(rs60=0.002)), "min_rs60")
    assert not verdict(both(long_features(rs60=down(0.002))), "min_rs60")
    assert verdict(both(long_features(rs30=0.001)), "min_rs30")
    assert not verdict(both(long_features(rs30=down(0.001))), "min_rs30")


def test_min_score_at_its_limit():
    f = long_features()
    score = evaluate("long", f, BTC, P).score
    assert evaluate("short", mirror(f), BTC, P).score == score
    at = P.model_copy(update={"entry_min_score": score})
    assert verdict(both(f, at), "min_score")
    above = P.model_copy(update={"entry_min_score": up(score)})
    assert not verdict(both(f, above), "min_score")
    assert both(f, above)[0].first_rejection == "min_score"


@settings(max_examples=200, deadline=None)
@given(
    grid=st.lists(st.integers(-640, 640), min_size=8, max_size=8),
    rs=st.lists(st.integers(-64, 64), min_size=3, max_size=3),
    chop=st.integers(0, 100), ratio=st.integers(0, 40), spike=st.integers(0, 40),
    spike_dir=st.sampled_from(["up", "down", "flat"]),
    cross=st.sampled_from(["up", "down", ""]), age=st.integers(0, 60),
    require=st.booleans(),
)
def test_short_mirrors_long_exactly(grid, rs, chop, ratio, spike, spike_dir, cross, age, require):
    # prices on a 1/64 grid around 100 and returns on a 1/4096 grid: mirroring is exact
    g = [x / 64 for x in grid]
    f = long_features(
        macro_fast=100 + g[0], macro_slow=100 + g[1], trigger_fast=100 + g[2],
        trigger_slow=100 + g[3], pullback_fast=100 + g[4], pullback_slow=100 + g[5],
        pullback_gap=g[6] / 256, va_low=100 - abs(g[7]), va_high=100 + abs(g[6]),
        rs60=rs[0] / 4096, rs30=rs[1] / 4096, chop=float(chop), volume_ratio=ratio / 16,
        spike_ratio=spike / 8, spike_direction=spike_dir, pullback_cross=cross,
        pullback_cross_age_min=age * 5.0,
    )
    p = P.model_copy(update={"ema_entry_require_pullback_recovery": require})
    dl, ds = both(f, p, btc=btc_at(rs[2] / 4096))
    assert [g.passed for g in dl.gates] == [g.passed for g in ds.gates]
    assert [g.kind for g in dl.gates] == [g.kind for g in ds.gates]
    assert [g.score_delta for g in dl.gates] == [g.score_delta for g in ds.gates]
    assert dl.raw_score == ds.raw_score and dl.score == ds.score
    assert (dl.valid, dl.entry_valid, dl.add_valid) == (ds.valid, ds.entry_valid, ds.add_valid)


# ---------------------------------------------------------------------------------------
# flags
# ---------------------------------------------------------------------------------------
def test_structure_gates_affect_entry_and_add_but_not_valid():
    for change in ({"chop": 70.0}, {"volume_ratio": 0.5},
                   {"spike_direction": "down", "spike_ratio": 3.0, "va_low": 100.5}):
        for d in both(long_features(**change)):
            assert d.valid, change
            assert not d.entry_valid and not d.add_valid, change


def test_trigger_against_but_pullback_recovered_keeps_valid_and_add_valid():
    f = long_features(trigger_fast=100.0, trigger_slow=100.25)
    for d in both(f):
        assert d.first_rejection == "trigger_trend"
        assert d.valid and d.add_valid and not d.entry_valid


def test_macro_against_invalidates_everything():
    for d in both(long_features(macro_fast=99.0)):
        assert not d.valid and not d.add_valid and not d.entry_valid


def test_trigger_and_pullback_against_is_not_valid():
    f = long_features(trigger_fast=100.0, trigger_slow=100.25, pullback_cross="down")
    for d in both(f):
        assert not d.valid and not d.add_valid


def test_entry_only_gates_do_not_touch_valid_or_add_valid():
    f = long_features(rs60=-0.01, rs30=-0.01)
    for d in both(f, btc=btc_at(-0.01)):
        assert {"rs_confirmation", "btc_risk", "min_rs60", "min_rs30"} <= set(d.rejections)
        assert d.valid and d.add_valid and not d.entry_valid


def test_pullback_recovery_is_a_penalty_unless_required():
    f = long_features(pullback_cross_age_min=500.0, macro_fast=104.0)
    for d in both(f):
        assert d.gate("pullback_cross_age").kind == PENALTY
        assert d.entry_valid  # the clean setup's score absorbs the penalty
        assert d.score == pytest.approx(d.raw_score - P.entry_pullback_invalid_penalty)
    req = P.model_copy(update={"ema_entry_require_pullback_recovery": True})
    for d in both(f, req):
        assert d.gate("pullback_cross_age").kind == HARD
        assert not d.entry_valid and d.first_rejection == "pullback_cross_age"
        assert d.valid and d.add_valid


def test_strategy_switch_blocks_entries_and_adds_but_keeps_valid():
    off = P.model_copy(update={"ema_strategy_enabled": False})
    for d in both(long_features(), off):
        assert d.first_rejection == "strategy_enabled"
        assert d.valid and not d.entry_valid and not d.add_valid


def test_disabled_filters_stay_listed_as_info_gates():
    p = P.model_copy(update={
        "ema_use_rs_confirmation": False, "ema_use_btc_risk_filter": False,
        "ema_chop_filter_enabled": False, "ema_volume_confirmation_enabled": False,
    })
    f = long_features(rs60=-0.5, chop=99.0, volume_ratio=0.0,
                      spike_direction="down", spike_ratio=9.0, va_low=101.0)
    for d in both(f, p, btc=btc_at(-0.5)):
        assert d.gate_names == SIGNAL_GATES
        for name in ("rs_confirmation", "btc_risk", "chop", "volume_confirmation",
                     "adverse_spike", "value_area"):
            g = d.gate(name)
            assert g.kind == INFO and g.score_delta == 0.0, name
        assert d.add_valid


# ---------------------------------------------------------------------------------------
# score
# ---------------------------------------------------------------------------------------
def test_raw_score_formula():
    f = long_features(pullback_fast=100.5, pullback_slow=100.75)  # pullback against: depth < 0
    d = evaluate("long", f, BTC, P)
    gaps = (103.0 - 100.0) / 100.0 + (100.75 - 100.25) / 100.0
    expected = gaps * (1 + (100.5 - 100.75) / 100.0) * (1 + f.rs60)
    assert d.raw_score == pytest.approx(expected, rel=1e-15)
    heavier = P.model_copy(update={"signal_ema_gap_weight": 2.0})
    assert evaluate("long", f, BTC, heavier).raw_score == pytest.approx(2 * expected, rel=1e-15)
    # relative strength against the trade multiplies the score down
    weak = evaluate("long", replace(f, rs60=-0.25), BTC, P)
    assert weak.raw_score == pytest.approx(gaps * (1 - 0.0025) * 0.75, rel=1e-12)


def test_penalties_as_documented():
    f = long_features()
    raw = evaluate("long", f, BTC, P).raw_score
    ms, vol, chop = (P.entry_market_structure_invalid_penalty, P.entry_volume_invalid_penalty,
                     P.entry_chop_invalid_penalty)
    cases = [
        ({"chop": 70.0}, chop + ms),
        ({"volume_ratio": 0.5}, vol + ms),
        ({"chop": 70.0, "volume_ratio": 0.5}, chop + ms + vol),  # structure charged once
        ({"spike_direction": "down", "spike_ratio": 3.0, "va_low": 100.5}, vol + ms),
        ({"pullback_cross_age_min": 500.0, "pullback_gap": -0.01},
         P.entry_pullback_invalid_penalty),  # both pullback gates fail: charged once
        ({"rs60": 0.001}, (0.002 - 0.001) * P.entry_rs60_shortfall_penalty_multiplier),
        ({"rs30": -0.001}, (0.001 + 0.001) * P.entry_rs30_shortfall_penalty_multiplier),
    ]
    for change, penalty in cases:
        ff = replace(f, **change)
        for d in both(ff):
            same_raw = evaluate("long", ff, BTC, P).raw_score
            assert d.score == pytest.approx(same_raw - penalty, abs=1e-15), change
    # the trend layers: fixed penalties (their gates are hard anyway)
    d = evaluate("long", replace(f, trigger_fast=100.0, trigger_slow=100.25), BTC, P)
    assert d.score == pytest.approx(d.raw_score - P.entry_trigger_invalid_penalty, abs=1e-15)
    # BTC beyond its limit: fixed part plus the multiplier per unit of excess
    d = evaluate("long", f, btc_at(-0.0125), P)
    excess = -0.0025 - -0.0125
    assert d.score == pytest.approx(
        raw - P.entry_btc_invalid_penalty - excess * P.entry_btc_return_penalty_multiplier,
        abs=1e-15)
    # the per-gate deltas add up to score - raw_score
    for d in both(replace(f, chop=70.0, rs60=0.001, pullback_gap=-0.01)):
        assert sum(g.score_delta for g in d.gates) == pytest.approx(d.score - d.raw_score)


def test_penalties_can_push_a_passing_setup_below_min_score():
    # rs60 shortfall alone passes rs_confirmation but costs 0.0016 x 12 of score
    f = long_features(rs60=0.0004, macro_fast=102.5)
    d = evaluate("long", f, BTC, P)
    assert d.passed("rs_confirmation") and not d.passed("min_rs60")
    assert d.raw_score >= P.entry_min_score > d.score


# ---------------------------------------------------------------------------------------
# extra gates from the runtime
# ---------------------------------------------------------------------------------------
def test_extra_gates_go_before_min_score_and_act_on_score_and_entry():
    f = long_features(macro_fast=102.5)
    base = evaluate("long", f, BTC, P)
    bonus = GateResult("reference_impulse", 7.0, 5.0, True, INFO, ">=", "", 0.02)
    regime = GateResult("macro_regime", 0.0, 0.0, True, HARD, "<=")
    d = evaluate("long", f, BTC, P, extra_gates=(regime, bonus))
    assert d.gate_names == SIGNAL_GATES[:-1] + ("macro_regime", "reference_impulse",
                                                 "min_score")
    assert d.score == pytest.approx(base.score + 0.02)
    assert d.gate("min_score").value == d.score
    halve = GateResult("reference_checks", 1.0, 0.0, False, PENALTY, "<=", "", 0.0, 0.5)
    assert evaluate("long", f, BTC, P, extra_gates=(halve,)).score == pytest.approx(
        base.score / 2)
    block = GateResult("macro_regime", 1.0, 0.0, False, HARD, "<=", "panic")
    d = evaluate("long", f, BTC, P, extra_gates=[block])
    assert not d.entry_valid and d.first_rejection == "macro_regime"
    assert d.valid and d.add_valid
    with pytest.raises(ValueError, match="duplicate"):
        evaluate("long", f, BTC, P, extra_gates=(GateResult("chop", 0, 0, True, INFO),))
    soft = GateResult("x", 0, 0, True, "soft")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        evaluate("long", f, BTC, P, extra_gates=(soft,))


# ---------------------------------------------------------------------------------------
# audit record
# ---------------------------------------------------------------------------------------
def test_record_is_flat_json_safe_and_names_the_rejection():
    f = long_features(chop=70.0, pullback_cross="", pullback_cross_age_min=math.inf)
    d = evaluate("long", f, None, P)
    rec = d.to_record()
    json.dumps(rec, allow_nan=False)
    assert rec["first_rejection"] == "btc_risk"
    assert rec["rejections"] == "btc_risk;chop;min_score"
    assert rec["g_chop"] is False and rec["g_chop_value"] == 70.0
    assert rec["g_chop_threshold"] == 61.8 and rec["g_chop_op"] == "<="
    assert rec["g_btc_risk_value"] is None  # NaN
    assert rec["g_pullback_cross_age_value"] == "inf"
    assert rec["f_chop"] == 70.0 and rec["f_pullback_cross_age_min"] == "inf"
    for name in SIGNAL_GATES:
        for suffix in ("", "_value", "_threshold", "_kind", "_op", "_delta", "_detail"):
            assert f"g_{name}{suffix}" in rec
    assert all(not isinstance(v, (list, dict, tuple)) for v in rec.values())
