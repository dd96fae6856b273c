"""Macro regime classification: each regime, its effects per side, the bias bounds, the
neutral 'unavailable' cases, the overlay, the gate and the gold symbol lookup."""

from __future__ import annotations

import numpy as np
import pytest

from engine.macro import MacroContext, MacroInputs, classify, decide, macro_gate, overlay_for, resolve_symbols
from engine.macro.regime import direction_score, ratio_return
from engine.runtime.profile import Overlay
from engine.settings import ProfileSettings

P = ProfileSettings()
NO_BIAS = ProfileSettings(enable_gold_directional_bias=False)


def alternating(target_rsi: float, n: int, start: float = 1000.0) -> np.ndarray:
    """Closes going up a, down b, up a, ... with a / (a + b) = target: Wilder RSI ~ target."""
    a = target_rsi / 100.0
    steps = np.where(np.arange(n) % 2 == 0, a, -(1.0 - a))
    return start + np.concatenate(([0.0], np.cumsum(steps[1:])))


# -- regimes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("gold, btc, regime", [
    (50, 50, "normal"),
    (65, 42, "risk_off"),  # spread 23 >= 15
    (55, 40.5, "normal"),  # spread 14.5 < 15 and gold not strong
    (56, 41, "risk_off"),  # spread exactly 15: inclusive, neither leg extreme
    (60, 40, "risk_off"),  # spread 20
    (35, 35, "panic"),  # both weak
    (40, 40, "panic"),  # weak thresholds are inclusive
    (40.01, 40, "normal"),
    (65, 65, "normal"),
    (48, 65, "normal"),
])
def test_regime_table(gold, btc, regime):
    assert decide(gold, btc, 0.0, NO_BIAS).regime == regime


def test_gold_strong_btc_weak_is_risk_off_even_below_the_spread_threshold():
    p = ProfileSettings(rsi_spread_threshold=30.0, enable_gold_directional_bias=False)
    ctx = decide(62.0, 39.0, 0.0, p)  # spread 23 < 30, but gold >= 60 and btc <= 40
    assert ctx.regime == "risk_off" and ctx.reason == "gold strong and btc weak"
    assert decide(62.0, 41.0, 0.0, p).regime == "normal"


def test_risk_off_effects_without_bias():
    ctx = decide(65.0, 42.0, 0.0, NO_BIAS)
    assert ctx.long_budget_multiplier == 0.55 and ctx.short_budget_multiplier == 0.85
    assert ctx.ladder_multiplier == 1.25 and ctx.time_exit_multiplier == 0.75
    assert ctx.disable_averaging and not ctx.disable_new_entries
    assert ctx.rsi_spread == pytest.approx(23.0)
    p = ProfileSettings(risk_off_disable_averaging=False, enable_gold_directional_bias=False)
    assert not decide(65.0, 42.0, 0.0, p).disable_averaging


def test_panic_blocks_entries_only_with_the_setting_and_always_stops_averaging():
    ctx = decide(30.0, 30.0, 0.0, NO_BIAS)
    assert ctx.regime == "panic" and ctx.disable_new_entries and ctx.disable_averaging
    assert ctx.ladder_multiplier == 1.25 and ctx.time_exit_multiplier == 0.75
    p = ProfileSettings(panic_disable_new_entries=False, risk_off_disable_averaging=False,
                        enable_gold_directional_bias=False)
    ctx = decide(30.0, 30.0, 0.0, p)
    assert not ctx.disable_new_entries and ctx.disable_averaging


def test_normal_has_no_effect_without_bias():
    ctx = decide(50.0, 50.0, 0.01, NO_BIAS)
    assert (ctx.long_budget_multiplier, ctx.short_budget_multiplier, ctx.ladder_multiplier,
            ctx.time_exit_multiplier, ctx.disable_averaging, ctx.disable_new_entries) == (1, 1, 1, 1, False, False)
    assert ctx.direction_score == 0.0


# -- directional bias --------------------------------------------------------------------------
def test_direction_score_by_hand():
    # spread -7.5 -> +0.5 (threshold 15); ratio -0.015 -> +0.5 (reference 0.03); mean 0.5
    assert direction_score(-7.5, -0.015, P) == pytest.approx(0.5)
    assert direction_score(30.0, 0.09, P) == -1.0  # both parts clamp
    assert direction_score(-15.0, None, P) == 1.0  # no ratio: the spread alone


def test_bias_moves_budget_between_sides_within_bounds():
    ctx = decide(50.0, 57.5, -0.015, P)  # normal, score +0.5
    assert ctx.regime == "normal" and ctx.direction_score == pytest.approx(0.5)
    assert ctx.long_budget_multiplier == pytest.approx(1.15)  # 1 + 0.3 x 0.5
    assert ctx.short_budget_multiplier == pytest.approx(0.85)
    strong = decide(40.5, 75.0, -0.2, P)  # score +1 (normal: btc strong)
    assert strong.long_budget_multiplier == 1.25  # 1.3 capped by the max multiplier
    assert strong.short_budget_multiplier == pytest.approx(0.7)
    p = ProfileSettings(gold_directional_bias_strength=1.0)
    wide = decide(40.5, 75.0, -0.2, p)
    assert wide.short_budget_multiplier == 0.5 and wide.long_budget_multiplier == 1.25  # both bounds


def test_bias_never_undoes_or_compounds_a_regime_cut():
    ctx = decide(70.0, 45.0, 0.06, P)  # risk-off, score -1
    assert ctx.regime == "risk_off" and ctx.direction_score == -1.0
    assert ctx.long_budget_multiplier == pytest.approx(0.55)  # min(0.55, 0.7), not 0.385
    assert ctx.short_budget_multiplier == pytest.approx(0.85)  # the regime cuts shorts: no boost
    deep = decide(70.0, 45.0, 0.06, ProfileSettings(gold_directional_bias_strength=0.6))
    assert deep.long_budget_multiplier == pytest.approx(0.5)  # bias cut 0.4 -> min bound 0.5 < 0.55


# -- inputs and unavailable ------------------------------------------------------------------
def test_ratio_return_simple_over_period():
    assert ratio_return([1.0, 2.0, 3.0, 1.1], 3) == pytest.approx(0.1)
    assert ratio_return([1.0, 2.0, 3.0], 3) is None


def test_classify_uses_rsi_of_both_legs_and_synthetic_ratio():
    gold = alternating(72.0, 120)
    btc = alternating(40.0, 120, start=2000.0)
    ctx = classify(MacroInputs(gold, btc, asof_ms=123, gold_symbol="XAUT/USDT:USDT"), P)
    assert ctx.regime == "risk_off" and ctx.candles == 120 and ctx.asof_ms == 123
    assert 68 < ctx.gold_rsi < 76 and 36 < ctx.btc_rsi < 44
    ratio = gold / btc
    assert ctx.gold_btc_ratio_return == pytest.approx(ratio[-1] / ratio[-15] - 1.0)
    assert ctx.ratio_source == "synthetic" and ctx.gold_symbol == "XAUT/USDT:USDT"


def test_classify_direct_pair_only_when_enabled():
    gold, btc = alternating(50.0, 100), alternating(50.0, 100)
    direct = np.linspace(1.0, 1.5, 100)
    off = classify(MacroInputs(gold, btc, ratio=direct), P)
    assert off.ratio_source == "synthetic"
    on = classify(MacroInputs(gold, btc, ratio=direct), ProfileSettings(use_direct_gold_btc_pair=True))
    assert on.ratio_source == "direct"
    assert on.gold_btc_ratio_return == pytest.approx(direct[-1] / direct[-15] - 1.0)


@pytest.mark.parametrize("inputs, p, reason", [
    (MacroInputs([], []), P, "no gold or btc candles"),
    (MacroInputs(alternating(50, 79), alternating(50, 79)), P, "warming up: 79/80 candles"),
    (MacroInputs(alternating(50, 100), alternating(50, 100)), ProfileSettings(enable_gold_btc_rsi_overlay=False),
     "disabled (ENABLE_GOLD_BTC_RSI_OVERLAY is off)"),
])
def test_unavailable_is_neutral_and_says_why(inputs, p, reason):
    ctx = classify(inputs, p)
    assert ctx.regime == "unavailable" and ctx.reason == reason and not ctx.available
    o = overlay_for("long", ctx, p)
    assert (o.budget_multiplier, o.ladder_multiplier, o.entries_allowed, o.averaging_allowed,
            o.time_multiplier) == (1.0, 1.0, True, True, 1.0)
    assert reason in o.reason
    assert macro_gate("short", ctx).passed


# -- overlay and gate ------------------------------------------------------------------------
def test_overlay_per_side():
    ctx = decide(65.0, 42.0, 0.0, NO_BIAS)
    lo, so = overlay_for("long", ctx), overlay_for("short", ctx)
    assert isinstance(lo, Overlay)
    assert lo.budget_multiplier == 0.55 and so.budget_multiplier == 0.85
    assert lo.ladder_multiplier == so.ladder_multiplier == 1.25
    assert not lo.averaging_allowed and lo.entries_allowed and lo.time_multiplier == 0.75
    assert lo.reason.startswith("macro risk_off")
    panic = overlay_for("short", decide(30.0, 30.0, 0.0, NO_BIAS))
    assert not panic.entries_allowed and not panic.averaging_allowed
    with pytest.raises(ValueError):
        ctx.budget_multiplier("both")


def test_macro_gate():
    g = macro_gate("long", decide(30.0, 30.0, 0.0, NO_BIAS))
    assert g.name == "macro_regime" and g.blocks and "panic" in g.detail
    g = macro_gate("long", decide(65.0, 42.0, 0.0, NO_BIAS))
    assert not g.blocks and g.kind == "info" and g.value == 0.55
    zero = ProfileSettings(risk_off_long_budget_multiplier=0.0, enable_gold_directional_bias=False)
    assert macro_gate("long", decide(65.0, 42.0, 0.0, zero)).blocks
    assert not macro_gate("short", decide(65.0, 42.0, 0.0, zero)).blocks


def test_record_is_flat_and_complete():
    rec = decide(65.0, 42.0, 0.01, P).to_record()
    for key in ("regime", "reason", "gold_rsi", "btc_rsi", "rsi_spread", "gold_btc_ratio_return",
                "direction_score", "long_budget_multiplier", "short_budget_multiplier", "ladder_multiplier",
                "disable_new_entries", "disable_averaging", "time_exit_multiplier"):
        assert key in rec
    assert all(not isinstance(v, (dict, list)) for v in rec.values())
    assert isinstance(MacroContext("unavailable", "x").to_record()["gold_rsi"], type(None))


# -- gold symbol lookup ------------------------------------------------------------------------
def test_resolve_symbols():
    p = ProfileSettings(gold_coins=("paxg", "xaut"))
    s = resolve_symbols(["XAUT/USDT:USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"], p)
    assert (s.gold, s.btc, s.direct, s.usable, s.reason) == ("XAUT/USDT:USDT", "BTC/USDT:USDT", None, True, "")
    s = resolve_symbols(["PAXG/USDT", "XAUT/USDT:USDT", "BTC/USDT:USDT", "PAXG/BTC"],
                        ProfileSettings(gold_coins=("paxg",), use_direct_gold_btc_pair=True))
    assert (s.gold, s.direct) == ("PAXG/USDT", "PAXG/BTC")  # first coin wins, spot allowed
    s = resolve_symbols(["BTC/USDT:USDT"], P)
    assert not s.usable and "GOLD_COINS=xaut" in s.reason
