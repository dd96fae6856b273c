"""Portfolio selection settings in effect (issue 18): the crowded-market relative-strength
minimums, the ladder rate limit and the cooldown after a win, each changed in a .env,
change which symbols `select_entries` chooses or why it rejects them."""

from __future__ import annotations

import pytest

from engine.strategy import EntryContext, SymbolFeatures, cooldown_until, evaluate, select_entries
from settings_effect import settings
from test_strategy_selection import BTC, MIN, TS, feats

NOW = TS + 300_000 + 4_321  # the cycle runs a few seconds after the candle's close
CROWDED = {"ENTRY_CROWDED_MIN_SIGNALS": 4, "ENTRY_CROWDED_SIGNAL_FRACTION": 0.5}


def select(env: dict[str, object], fs: list[SymbolFeatures], ctx: EntryContext):
    p = settings(**env).side("long")
    sel = select_entries([evaluate("long", f, BTC, p) for f in fs], ctx, p)
    return sel.chosen_symbols, {d.symbol: d.first_rejection for d in sel.decisions}


def crowded_market(**weak: float) -> list[SymbolFeatures]:
    """4 of 8 symbols signal (crowded under CROWDED); WEAK's strength is between the normal
    and the crowded minimum."""
    good = [feats(f"G{i}", 110.0 - i) for i in range(3)] + [feats("WEAK", 110.0, **weak)]
    return good + [feats(f"B{i}", chop=90.0) for i in range(4)]


@pytest.mark.parametrize(("key", "weak", "gate", "relaxed"), [
    ("ENTRY_CROWDED_MIN_RS60_ABS", {"rs60": 0.0025}, "crowded_min_rs60", 0.002),
    ("ENTRY_CROWDED_MIN_RS30_ABS", {"rs30": 0.0012}, "crowded_min_rs30", 0.001),
])
def test_a_crowded_minimum_rejects_a_symbol_only_a_crowded_market_finds_weak(key, weak, gate, relaxed):
    fs = crowded_market(**weak)
    chosen, why = select(CROWDED, fs, EntryContext(now_ms=NOW))
    assert why["WEAK"] == gate and "WEAK" not in chosen
    chosen, why = select({**CROWDED, key: relaxed}, fs, EntryContext(now_ms=NOW))
    assert why["WEAK"] is None and "WEAK" in chosen


def test_entry_rate_limit_ladders_caps_the_ladders_per_window():
    fs = [feats(f"G{i}", 110.0 - i) for i in range(4)]
    ctx = EntryContext(now_ms=NOW, recent_ladders_ms=tuple(NOW - k * 3 * MIN for k in range(1, 9)))  # 8 recent
    assert select({}, fs, ctx)[0] == ("G0", "G1")  # 10 per window by default
    assert select({"ENTRY_RATE_LIMIT_LADDERS": 20}, fs, ctx)[0] == ("G0", "G1", "G2", "G3")
    assert select({"ENTRY_RATE_LIMIT_LADDERS": 8}, fs, ctx)[0] == ()


def test_post_win_cooldown_minutes_after_close_keeps_a_winner_out_for_that_long():
    closed = NOW - 40 * MIN
    fs = [feats("WIN")]
    for minutes, blocked in ((90, True), (30, False)):
        p = settings(POST_WIN_COOLDOWN_MINUTES_AFTER_CLOSE=minutes).side("long")
        until = cooldown_until(closed, 2.5, p)
        assert until == closed + minutes * MIN
        chosen, why = select({"POST_WIN_COOLDOWN_MINUTES_AFTER_CLOSE": minutes}, fs,
                             EntryContext(now_ms=NOW, cooldown_until={"WIN": until}))
        assert (why["WIN"] == "cooldown") is blocked and (chosen == ()) is blocked


def ranked(n: int) -> list[SymbolFeatures]:
    return [feats(f"G{i}", 110.0 - i) for i in range(n)]


def test_entry_max_new_ladders_per_signal_caps_the_ladders_of_one_candle():
    assert select({}, ranked(7), EntryContext(now_ms=NOW))[0] == ("G0", "G1", "G2", "G3", "G4")  # 5
    chosen, why = select({"ENTRY_MAX_NEW_LADDERS_PER_SIGNAL": 2, "ENTRY_CROWDED_MAX_NEW_LADDERS_PER_SIGNAL": 1}, ranked(7), EntryContext(now_ms=NOW))
    assert chosen == ("G0", "G1") and why["G2"] == "ladders_per_signal"


def test_entry_crowded_max_new_ladders_per_signal_caps_them_in_a_crowded_market():
    fs = ranked(6) + [feats(f"B{i}", chop=90.0) for i in range(6)]  # 6 of 12 signal: crowded
    assert select(CROWDED, fs, EntryContext(now_ms=NOW))[0] == ("G0", "G1", "G2")  # 3 when crowded
    assert len(select({**CROWDED, "ENTRY_CROWDED_MAX_NEW_LADDERS_PER_SIGNAL": 5}, fs, EntryContext(now_ms=NOW))[0]) == 5


def test_entry_crowded_min_score_rejects_a_weak_score_only_in_a_crowded_market():
    fs = crowded_market()
    base = select(CROWDED, fs, EntryContext(now_ms=NOW))[1]
    assert base["WEAK"] is None
    high = select({**CROWDED, "ENTRY_CROWDED_MIN_SCORE": 5}, fs, EntryContext(now_ms=NOW))[1]
    assert high["WEAK"] == "crowded_min_score" and high["G0"] == "crowded_min_score"


def test_entry_rate_limit_window_minutes_is_how_far_back_ladders_count():
    fs = ranked(4)
    ctx = EntryContext(now_ms=NOW, recent_ladders_ms=tuple(NOW - k * 10 * MIN for k in range(1, 9)))  # 10..80 min ago
    assert select({}, fs, ctx)[0] == ("G0", "G1", "G2", "G3")  # 60 min: 5 count, 5 of 10 left
    assert select({"ENTRY_RATE_LIMIT_WINDOW_MINUTES": 90}, fs, ctx)[0] == ("G0", "G1")  # all 8 count


def test_cooldown_minutes_after_close_keeps_a_loser_out_for_that_long():
    closed = NOW - 20 * MIN
    for minutes, blocked in ((10, False), (30, True)):
        p = settings(COOLDOWN_MINUTES_AFTER_CLOSE=minutes).side("long")
        until = cooldown_until(closed, -1.5, p)
        chosen, why = select({}, [feats("LOSS")], EntryContext(now_ms=NOW, cooldown_until={"LOSS": until}))
        assert (why["LOSS"] == "cooldown") is blocked


def test_max_unhealthy_positions_for_new_entries_pauses_entries_while_that_many_are_in_trouble():
    ctx = EntryContext(now_ms=NOW, unhealthy_positions=2)
    chosen, why = select({}, ranked(2), ctx)
    limit = settings().side("long").max_unhealthy_positions_for_new_entries
    assert (chosen == ()) is (limit < 2)
    more, _ = select({"MAX_UNHEALTHY_POSITIONS_FOR_NEW_ENTRIES": 5}, ranked(2), ctx)
    none, why = select({"MAX_UNHEALTHY_POSITIONS_FOR_NEW_ENTRIES": 1}, ranked(2), ctx)
    assert more == ("G0", "G1") and none == () and why["G0"] == "unhealthy_positions"
