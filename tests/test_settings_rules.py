"""Cross-field rules, per-side overrides and profile selection."""

import pytest

from engine.settings import ProfileSettings, Settings, SettingsError, catalog
from engine.settings.envfile import parse_lines
from engine.settings.loader import settings_from_assignments


def load_text(text: str) -> Settings:
    assignments, errors = parse_lines(text.splitlines())
    assert not errors
    return settings_from_assignments(assignments)


def problems_of(text: str):
    with pytest.raises(SettingsError) as info:
        load_text(text)
    return info.value.problems


def test_defaults_are_consistent():
    s = Settings.defaults()
    assert s.enabled == ("long", "short")
    assert s.side("long") == s.side("short") == ProfileSettings()


@pytest.mark.parametrize("text, keys, needle", [
    # ladder fractions sum <= 1
    ("EMA_LADDER_FRACTIONS=0.6,0.6", ["EMA_LADDER_FRACTIONS"], "sum to at most 1"),
    ("EMA_EXIT_NORMAL_LADDER_FRACTIONS=0.5,0.3,0.2,0.15", ["EMA_EXIT_NORMAL_LADDER_FRACTIONS"], "sum to at most 1"),
    ("EMA_EXIT_HEAVY_LADDER_FRACTIONS=0.6,0.3,0.2", ["EMA_EXIT_HEAVY_LADDER_FRACTIONS"], "sum to at most 1"),
    # fractions and markups/offsets of equal length
    ("EMA_LADDER_OFFSETS=0.0,0.01,0.02", ["EMA_LADDER_FRACTIONS", "EMA_LADDER_OFFSETS"], "each step"),
    ("EMA_EXIT_MEDIUM_LADDER_MARKUPS=0.004,0.01", ["EMA_EXIT_MEDIUM_LADDER_FRACTIONS"], "each step"),
    ("EXTERNAL_PRICE_TIGHTENED_LADDER_FRACTIONS=0.5,0.5", ["EXTERNAL_PRICE_TIGHTENED_LADDER_FRACTIONS"], "each step"),
    ("EMA_LADDER_FRACTIONS=\nEMA_LADDER_OFFSETS=", ["EMA_LADDER_FRACTIONS"], "at least one"),
    # ladder steps ordered
    ("EMA_EXIT_NORMAL_LADDER_MARKUPS=0.008,0.03,0.016,0.05", ["EMA_EXIT_NORMAL_LADDER_MARKUPS"], "increasing"),
    ("EMA_LADDER_OFFSETS=0.01,0.0", ["EMA_LADDER_OFFSETS"], "non-decreasing"),
    # fast EMA shorter than slow
    ("EMA_MACRO_FAST_MINUTES=7200", ["EMA_MACRO_FAST_MINUTES", "EMA_MACRO_SLOW_MINUTES"], "shorter than slow"),
    ("EMA_TRIGGER_SLOW_MINUTES=100", ["EMA_TRIGGER_FAST_MINUTES", "EMA_TRIGGER_SLOW_MINUTES"], "shorter than slow"),
    ("EMA_PULLBACK_FAST_MINUTES=400", ["EMA_PULLBACK_FAST_MINUTES"], "shorter than slow"),
    ("EMA_MACRO_FAST_MINUTES=30", ["EMA_MACRO_FAST_MINUTES", "EMA_MACRO_TIMEFRAME"], "shorter than one 1h candle"),
    ("RS_FAST_WINDOW=60", ["RS_FAST_WINDOW", "RS_SLOW_WINDOW"], "<"),
    ("EMA_VOLUME_SHORT_WINDOW=30", ["EMA_VOLUME_SHORT_WINDOW", "EMA_VOLUME_LONG_WINDOW"], "<"),
    # caps ordered
    ("EMA_POSITION_BUDGET_FRACTION=0.05", ["EMA_POSITION_BUDGET_FRACTION", "EMA_MAX_POSITION_MARGIN_FRACTION"], "margin cap"),
    ("EMA_MAX_POSITION_MARGIN_FRACTION=0.6", ["EMA_MAX_POSITION_MARGIN_FRACTION", "EMA_MAX_TOTAL_MARGIN_FRACTION"], "total cap"),
    ("HARD_STOP_LOSS_PCT=0.05", ["HARD_STOP_LOSS_PCT", "HARD_STOP_LOSS_ATR_MAX_PCT"], "capped"),
    ("EMA_EXIT_HEAVY_POSITION_RATIO=1.2", ["EMA_EXIT_MEDIUM_POSITION_RATIO"], "heavy ladder"),
    ("EMA_EXIT_TRAILING_MIN_PULLBACK=0.05", ["EMA_EXIT_TRAILING_MIN_PULLBACK"], "pullback bounds"),
    ("ENTRY_CROWDED_MIN_SCORE=0.01", ["ENTRY_MIN_SCORE", "ENTRY_CROWDED_MIN_SCORE"], "only tighten"),
    ("ENTRY_CROWDED_MAX_NEW_LADDERS_PER_SIGNAL=9", ["ENTRY_CROWDED_MAX_NEW_LADDERS_PER_SIGNAL"], "only tighten"),
    ("GOLD_WEAK_RSI=70", ["GOLD_WEAK_RSI", "GOLD_STRONG_RSI"], "weak RSI"),
    ("BTC_STRONG_RSI=30", ["BTC_WEAK_RSI", "BTC_STRONG_RSI"], "weak RSI"),
    ("SIGNAL_BUDGET_MIN_MULTIPLIER=2", ["SIGNAL_BUDGET_MIN_MULTIPLIER"], "multiplier bounds"),
    ("MIN_LADDER_VOLATILITY_MULTIPLIER=3", ["MIN_LADDER_VOLATILITY_MULTIPLIER"], "multiplier bounds"),
    ("EMA_EXIT_RUNNER_ACTIVATION_MARKUP=0.06", ["EMA_EXIT_RUNNER_ACTIVATION_MARKUP"], "activates before"),
    ("EMA_EXIT_TRAILING_TAKE_PROFIT_MARKUP=0.01", ["EMA_EXIT_TRAILING_ACTIVATION_MARKUP"], "activates before"),
    # averaging stages and derived lists
    ("MAX_BUY_STAGES=2", ["EMA_MAX_AVERAGING_STAGES", "MAX_BUY_STAGES"], "MAX_BUY_STAGES >= 3"),
    ("AVERAGING_DRAWDOWN_STEPS=0.01,0.02,0.03", ["AVERAGING_DRAWDOWN_STEPS"], "3 items"),
    ("AVERAGING_BUDGET_FRACTIONS=0.5", ["AVERAGING_BUDGET_FRACTIONS"], "1 items"),
    # time exits ordered
    ("TIME_EXIT_AFTER_MINUTES=6000", ["TIME_EXIT_AFTER_MINUTES", "HARD_TIME_EXIT_AFTER_MINUTES"], "soft time exit"),
    ("EMA_BREAKEVEN_AFTER_HOURS=100", ["EMA_BREAKEVEN_AFTER_HOURS"], "breakeven"),
])
def test_cross_field_rule(text, keys, needle):
    problems = problems_of(text + "\n")
    assert len(problems) == 1, [p.render() for p in problems]
    p = problems[0]
    for k in keys:
        assert k in p.key or k in p.message, (k, p.render())
    assert needle in p.message
    assert p.line == 1
    assert "[long profile]" not in p.message  # shared keys: said once, not per side


def test_rules_hold_for_code_built_profiles_too():
    with pytest.raises(ValueError, match="sum to at most 1"):
        ProfileSettings(ema_ladder_fractions=(0.7, 0.7))


def test_side_override_changes_only_that_side():
    s = load_text("EMA_POSITION_BUDGET_FRACTION=0.015\nSHORT_EMA_POSITION_BUDGET_FRACTION=0.01\n")
    assert s.side("long").ema_position_budget_fraction == 0.015
    assert s.side("short").ema_position_budget_fraction == 0.01


def test_override_is_validated_even_when_the_side_is_off():
    problems = problems_of("BOT_PROFILES=long\nSHORT_EMA_CHOP_MAX=abc\n")
    assert problems[0].key == "SHORT_EMA_CHOP_MAX" and problems[0].line == 2


def test_side_override_breaking_a_rule_names_side_key_and_line():
    problems = problems_of("# x\nSHORT_EMA_LADDER_FRACTIONS=0.5,0.6\n")
    assert len(problems) == 1
    assert "SHORT_EMA_LADDER_FRACTIONS" in problems[0].key
    assert problems[0].line == 2
    assert "[short profile]" in problems[0].message


def test_global_settings_reject_side_prefix():
    problems = problems_of("SHORT_TIMEOUT_MS=1000\nLONG_HTX_API_KEY=abc\n")
    assert all("process-wide" in p.message for p in problems)


def test_no_prefixed_key_collides_with_a_base_key():
    keys = {i.key for i in catalog()}
    side_keys = {i.key for i in catalog() if i.scope == "side"}
    for prefix in ("LONG_", "SHORT_"):
        assert not {prefix + k for k in side_keys} & keys


def test_bot_profiles_selects_sides():
    assert load_text("BOT_PROFILES=short\n").enabled == ("short",)
    assert load_text("BOT_PROFILES=\n").enabled == ()
    assert load_text("BOT_PROFILES=short,long\n").enabled == ("long", "short")


def test_safety_switches_cannot_be_turned_off():
    problems = problems_of("POST_ONLY_ENABLED=false\nREDUCE_ONLY_ENABLED=0\nENABLE_RATE_LIMIT=no\n")
    assert [p.key for p in problems] == ["POST_ONLY_ENABLED", "REDUCE_ONLY_ENABLED", "ENABLE_RATE_LIMIT"]
    assert all("cannot be turned off" in p.message for p in problems)
    assert load_text("POST_ONLY_ENABLED=true\n").glob.post_only_enabled is True


def test_settings_not_yet_in_effect_are_accepted_but_warned_about(monkeypatch):
    """Every setting is in effect today; one added before its behaviour (planned) is accepted
    and warned about. Shown with COINS_2 marked planned for the test."""
    from dataclasses import replace

    from engine.settings import by_key, planned_warnings

    monkeypatch.setitem(by_key(), "COINS_2", replace(by_key()["COINS_2"], planned=True))
    s = load_text("COINS_2=eth\nBTC_HEDGE_COOLDOWN_SEC=60\n"
                  "HARD_STOP_LOSS_PCT=0.02\n")
    warnings = planned_warnings(s)
    assert len(warnings) == 1 and "COINS_2" in warnings[0]
    assert not by_key()["HARD_STOP_LOSS_PCT"].planned and not by_key()["BTC_HEDGE_COOLDOWN_SEC"].planned


def test_risk_fractions_beyond_a_sane_bound_get_a_loud_warning_naming_key_and_profiles():
    """Issue 18: HARD_STOP_LOSS_PCT=0.5 (a 50% stop) must not pass without a word."""
    from engine.settings.envfile import parse_lines
    from engine.settings.loader import RISK_WARN_ABOVE, danger_warnings, settings_from_assignments

    def warnings(text):
        assignments, _ = parse_lines(text.splitlines())
        return danger_warnings(settings_from_assignments(assignments))

    assert warnings("") == []  # the defaults are sane
    for name, (limit, _) in RISK_WARN_ABOVE.items():
        from engine.settings import Settings
        assert float(getattr(Settings.defaults().side("long"), name)) <= limit, name
    [w] = warnings("HARD_STOP_LOSS_PCT=0.12\nHARD_STOP_LOSS_ATR_MAX_PCT=0.12\nHARD_STOP_LOSS_MIN_EMERGENCY_PCT=0.13\n")
    assert w.startswith("DANGER: HARD_STOP_LOSS_PCT=0.12 is 12% (long and short profiles)") and "fraction" in w
    [w] = warnings("SHORT_EMA_MAX_TOTAL_MARGIN_FRACTION=0.95\n")
    assert "SHORT_EMA_MAX_TOTAL_MARGIN_FRACTION=0.95" in w and "(short profile)" in w
    assert warnings("EMA_MAX_TOTAL_MARGIN_FRACTION=0.9\n") == []  # at the bound: fine


def test_both_profiles_share_the_base_timeframe():
    """One candle feed serves both profiles: a per-side trigger timeframe would start an engine
    whose short side cannot read its candles; it is refused at load, naming the key and line."""
    from settings_effect import settings

    with pytest.raises(SettingsError, match="SHORT_EMA_TRIGGER_TIMEFRAME: the long and short profiles must share"):
        settings(SHORT_EMA_TRIGGER_TIMEFRAME="15m", SHORT_EMA_PULLBACK_TIMEFRAME="15m")
    both = settings(EMA_TRIGGER_TIMEFRAME="15m", EMA_PULLBACK_TIMEFRAME="15m")
    assert both.side("long").ema_trigger_timeframe == both.side("short").ema_trigger_timeframe == "15m"
