"""Parsing every setting type from `.env` text, and the error messages for bad values."""

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from engine.settings import SettingsError, catalog, validate_value
from engine.settings.envfile import parse_lines
from engine.settings.fields import format_value
from engine.settings.loader import settings_from_assignments


def load_text(text: str):
    assignments, errors = parse_lines(text.splitlines())
    assert not errors, errors
    return settings_from_assignments(assignments, "test.env")


def problems_of(text: str) -> list:
    with pytest.raises(SettingsError) as info:
        load_text(text)
    return info.value.problems


@pytest.mark.parametrize("raw, expected", [
    ("true", True), ("True", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True),
    ("false", False), ("False", False), ("0", False), ("no", False), ("off", False),
])
def test_bool_values(raw, expected):
    s = load_text(f"EMA_CHOP_FILTER_ENABLED={raw}\n")
    assert s.side("long").ema_chop_filter_enabled is expected
    assert s.side("short").ema_chop_filter_enabled is expected


def test_int_float_str_choice_and_lists():
    s = load_text(
        "EMA_CHOP_PERIOD=21\n"
        "EMA_CHOP_MAX=55.5\n"
        "EMA_MACRO_TIMEFRAME=4h\n"
        "EMA_LADDER_FRACTIONS=0.4,0.3,0.3\n"
        "EMA_LADDER_OFFSETS=(0.0, 0.005, 0.01)\n"
        "EMA_BREAKEVEN_EXIT_FRACTIONS=(1.0,)\n"
        "GOLD_COINS=XAUT, paxg\n"
        "EXTERNAL_PRICE_TIGHTENED_LADDER_MARKUPS=0.004,0.01,0.02,none\n"
        "COINS=btc,eth,xrp\n"
        "BOT_PROFILES=Long\n"
    )
    p = s.side("long")
    assert p.ema_chop_period == 21 and isinstance(p.ema_chop_period, int)
    assert p.ema_chop_max == 55.5
    assert p.ema_macro_timeframe == "4h"
    assert p.ema_ladder_fractions == (0.4, 0.3, 0.3)
    assert p.ema_ladder_offsets == (0.0, 0.005, 0.01)
    assert p.ema_breakeven_exit_fractions == (1.0,)
    assert p.gold_coins == ("xaut", "paxg")
    assert p.external_price_tightened_ladder_markups == (0.004, 0.01, 0.02, None)
    assert s.glob.coins == ("btc", "eth", "xrp")
    assert s.enabled == ("long",)


def test_inline_comments_quotes_and_export():
    s = load_text(
        "# a comment\n"
        "\n"
        "EMA_POSITION_BUDGET_FRACTION=0.01 # 1% of equity per position\n"
        "export EMA_CHOP_MAX='60'\n"
        'LOG_LEVEL="DEBUG"\n'
    )
    assert s.side("long").ema_position_budget_fraction == 0.01
    assert s.side("long").ema_chop_max == 60.0
    assert s.glob.log_level == "DEBUG"


def test_secret_is_secretstr_and_not_in_repr():
    s = load_text("HTX_API_KEY=k-123456789\nHTX_API_SECRET=s-987654321\n")
    assert s.glob.htx_api_key.get_secret_value() == "k-123456789"
    assert "k-123456789" not in repr(s.glob) and "s-987654321" not in str(s.glob)


@pytest.mark.parametrize("line, key, needle", [
    ("EMA_CHOP_MAX=abc", "EMA_CHOP_MAX", "'abc'"),
    ("EMA_CHOP_PERIOD=14.5", "EMA_CHOP_PERIOD", "whole number"),
    ("EMA_CHOP_FILTER_ENABLED=maybe", "EMA_CHOP_FILTER_ENABLED", "true or false"),
    ("EMA_POSITION_BUDGET_FRACTION=nan", "EMA_POSITION_BUDGET_FRACTION", "finite"),
    ("EMA_POSITION_BUDGET_FRACTION=-0.1", "EMA_POSITION_BUDGET_FRACTION", "expected a number > 0 and <= 1 (fraction of equity)"),
    ("EMA_POSITION_BUDGET_FRACTION=", "EMA_POSITION_BUDGET_FRACTION", "empty value"),
    ("EMA_MACRO_TIMEFRAME=2h", "EMA_MACRO_TIMEFRAME", "one of: 1m, 5m"),
    ("EMA_LADDER_FRACTIONS=0.5,x", "EMA_LADDER_FRACTIONS", "item 2"),
    ("BOT_PROFILES=long,sideways", "BOT_PROFILES", "'long' or 'short'"),
])
def test_bad_value_names_key_line_value_and_expectation(line, key, needle):
    problems = problems_of("# header\n" + line + "\n")
    assert len(problems) == 1
    p = problems[0]
    assert p.key == key and p.line == 2
    assert needle in p.message
    assert "expected" in p.message
    assert p.render("x.env").startswith(f"x.env:2: {key}: ")


def test_every_problem_is_reported_at_once():
    problems = problems_of("EMA_CHOP_MAX=abc\nEMA_CHOP_PERIOD=x\nNOPE=1\n")
    assert [p.line for p in problems] == [1, 2, 3]


def test_duplicate_key_is_an_error():
    problems = problems_of("EMA_CHOP_MAX=50\nEMA_CHOP_MAX=60\n")
    assert problems[0].key == "EMA_CHOP_MAX" and "lines 1 and 2" in problems[0].message


def test_unknown_key_suggests_the_closest_name():
    problems = problems_of("EMA_MAX_TOTAL_MARGIN_FRACTON=0.3\nSHORT_HARD_STOP_LOS_PCT=0.02\n")
    assert "did you mean EMA_MAX_TOTAL_MARGIN_FRACTION?" in problems[0].message
    assert "did you mean SHORT_HARD_STOP_LOSS_PCT?" in problems[1].message


def test_syntax_error_lines_are_reported():
    assignments, errors = parse_lines(["GOOD=1", "this is not an assignment", "1BAD=2", "Q='open"])
    assert [e.line_no for e in errors] == [2, 3, 4]
    assert [a.key for a in assignments] == ["GOOD"]


def test_every_default_parses_back_from_its_env_text():
    """The example file writes each default as text; that text must parse to the same value."""
    for info in catalog():
        if info.secret:
            continue
        assert validate_value(info.key, format_value(info.default)) == info.default, info.key


def test_every_setting_is_documented():
    for info in catalog():
        assert info.description and len(info.description) <= 160, info.key
        assert info.group and info.scope in ("side", "global"), info.key


FLOAT_KEYS = [i.key for i in catalog() if i.kind == "float"]


@hsettings(max_examples=200, deadline=None)
@given(key=st.sampled_from(FLOAT_KEYS), value=st.floats(allow_nan=False, allow_infinity=False))
def test_float_values_round_trip_or_fail_with_bounds(key, value):
    text = format_value(value)
    try:
        parsed = validate_value(key, text)
    except ValueError as exc:
        assert "expected a number" in str(exc)
        return
    assert parsed == value


@hsettings(max_examples=200, deadline=None)
@given(raw=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=20))
def test_garbage_values_never_crash(raw):
    """Any text for a numeric key either parses or raises SettingsError naming key and line."""
    assignments, syntax = parse_lines([f"EMA_CHOP_MAX={raw}"])
    if syntax:
        assert syntax[0].line_no == 1
        return
    try:
        s = settings_from_assignments(assignments)
    except SettingsError as exc:
        assert all(p.line == 1 and p.key for p in exc.problems)
    else:
        assert 0 <= s.side("long").ema_chop_max <= 100
