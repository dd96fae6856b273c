"""Macro (gold vs BTC) settings in effect (issue 18): each one, changed from its default in a
.env, changes what the overlay does to a profile (its budget, ladder and time multipliers,
the direction score), which candles it measures, which market it reads or when the live
engine fetches again.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.macro import MacroTracker
from engine.macro.regime import MacroInputs, classify, decide, overlay_for
from engine.macro.symbols import resolve_symbols
from settings_effect import settings

RISK_OFF = (65.0, 42.0, 0.0)  # gold RSI leads BTC's by 23 >= 15
CRYPTO_STRONG = (40.5, 75.0, -0.2)  # normal, direction score +1
HALF = (50.0, 57.5, -0.015)  # normal, score from half the spread and half the ratio return


def effect(env: dict[str, object], rsis: tuple[float, float, float]):
    p = settings(**env).side("long")
    ctx = decide(*rsis, p)
    return ctx.regime, round(ctx.direction_score, 9), overlay_for("long", ctx), overlay_for("short", ctx)


CASES = {
    # key: (extra env, (gold RSI, BTC RSI, ratio return), changed value)
    "RISK_OFF_LADDER_MULTIPLIER": ({}, RISK_OFF, 1.5),
    "RISK_OFF_SHORT_BUDGET_MULTIPLIER": ({}, RISK_OFF, 0.5),
    "RISK_OFF_TIME_EXIT_MULTIPLIER": ({}, RISK_OFF, 0.5),
    "GOLD_DIRECTIONAL_BIAS_MAX_MULTIPLIER": ({}, CRYPTO_STRONG, 1.5),
    "GOLD_DIRECTIONAL_BIAS_MIN_MULTIPLIER": ({"GOLD_DIRECTIONAL_BIAS_STRENGTH": 1.0}, CRYPTO_STRONG, 0.3),
    "GOLD_BTC_RATIO_RETURN_REFERENCE": ({}, HALF, 0.015),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_a_macro_setting_changes_the_overlay_of_a_profile(key):
    env, rsis, changed = CASES[key]
    before, after = effect(env, rsis), effect({**env, key: changed}, rsis)
    assert before != after, f"{key}={changed} changed nothing"


def test_the_macro_multipliers_are_the_settings_values():
    _, _, long_o, short_o = effect({"RISK_OFF_LADDER_MULTIPLIER": 1.5, "RISK_OFF_SHORT_BUDGET_MULTIPLIER": 0.5,
                                    "RISK_OFF_TIME_EXIT_MULTIPLIER": 0.5}, RISK_OFF)
    assert long_o.ladder_multiplier == 1.5 and long_o.time_multiplier == 0.5 and short_o.budget_multiplier == 0.5
    assert effect({}, CRYPTO_STRONG)[2].budget_multiplier == 1.25  # capped by the default maximum
    assert effect({"GOLD_DIRECTIONAL_BIAS_MAX_MULTIPLIER": 1.5}, CRYPTO_STRONG)[2].budget_multiplier == pytest.approx(1.3)
    low = effect({"GOLD_DIRECTIONAL_BIAS_STRENGTH": 1.0, "GOLD_DIRECTIONAL_BIAS_MIN_MULTIPLIER": 0.3}, CRYPTO_STRONG)
    assert low[3].budget_multiplier == pytest.approx(0.3)
    assert effect({}, HALF)[1] == pytest.approx(0.5)
    assert effect({"GOLD_BTC_RATIO_RETURN_REFERENCE": 0.015}, HALF)[1] == pytest.approx(0.75)


def test_gold_rsi_period_changes_the_measured_rsi():
    rng = np.random.default_rng(7)
    gold = 2400.0 * np.exp(np.cumsum(rng.normal(0, 0.004, 300)))
    btc = 60_000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    inputs = MacroInputs(gold=gold, btc=btc)
    a = classify(inputs, settings().side("long"))
    b = classify(inputs, settings(GOLD_RSI_PERIOD=7).side("long"))
    assert a.available and b.available
    assert a.gold_rsi != pytest.approx(b.gold_rsi) and a.btc_rsi != pytest.approx(b.btc_rsi)
    assert a.gold_btc_ratio_return != pytest.approx(b.gold_btc_ratio_return)  # over the period, too


def test_gold_cache_ttl_sets_the_pace_of_retried_fetches():
    hour = 3_600_000
    now = 100 * 4 * hour + 1_234_567  # 20 min into a 4h candle, unaligned
    for ttl, due in ((900, False), (30, True)):
        t = MacroTracker(settings(GOLD_CACHE_TTL_SEC=ttl).side("long"))
        assert t.fetch_due(now)  # nothing fetched since the candle closed
        t.note_fetch(now)  # it failed (no candle arrived)
        assert t.fetch_due(now + 60_000) is due, f"GOLD_CACHE_TTL_SEC={ttl}"


def test_direct_gold_btc_symbol_names_the_market_the_ratio_is_read_from():
    markets = ["XAUT/USDT:USDT", "BTC/USDT:USDT", "XAUT/BTC", "XAUTBTC/BTC:BTC"]
    on = {"USE_DIRECT_GOLD_BTC_PAIR": "true"}
    assert resolve_symbols(markets, settings(**on).side("long")).direct == "XAUT/BTC"
    chosen = resolve_symbols(markets, settings(**on, DIRECT_GOLD_BTC_SYMBOL="XAUTBTC/BTC:BTC").side("long"))
    assert chosen.direct == "XAUTBTC/BTC:BTC"


def test_btc_weak_rsi_decides_when_a_joint_sell_off_is_a_panic():
    assert effect({}, (35.0, 35.0, 0.0))[0] == "panic"  # both at or below 40
    assert effect({"BTC_WEAK_RSI": 30}, (35.0, 35.0, 0.0))[0] == "normal"
    assert effect({"BTC_WEAK_RSI": 30}, (62.0, 35.0, 0.0))[0] == "risk_off"  # the spread still counts


def test_btc_strong_rsi_names_the_risk_on_regime_in_the_audit():
    p = settings().side("long")
    assert decide(50.0, 65.0, 0.0, p).reason == "btc strong, gold lagging: crypto risk-on"
    assert decide(50.0, 65.0, 0.0, settings(BTC_STRONG_RSI=70).side("long")).reason == "no macro stress"


def test_gold_weak_rsi_decides_when_a_joint_sell_off_is_a_panic():
    assert effect({}, (38.0, 35.0, 0.0))[0] == "panic"
    assert effect({"GOLD_WEAK_RSI": 30}, (38.0, 35.0, 0.0))[0] == "normal"


def test_gold_strong_rsi_decides_when_strong_gold_over_weak_btc_is_risk_off():
    # spread 23 < 30: risk-off only because gold >= 60 while BTC <= 40
    assert effect({"RSI_SPREAD_THRESHOLD": 30}, (62.0, 39.0, 0.0))[0] == "risk_off"
    assert effect({"RSI_SPREAD_THRESHOLD": 30, "GOLD_STRONG_RSI": 65}, (62.0, 39.0, 0.0))[0] == "normal"
