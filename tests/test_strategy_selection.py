"""Portfolio gates and ranking: crowded market, ladder limits, rate window, cooldowns."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.settings import ProfileSettings
from engine.strategy import (
    HARD,
    INFO,
    SELECTION_GATES,
    SIGNAL_GATES,
    EntryContext,
    SymbolFeatures,
    cooldown_until,
    evaluate,
    rejection_counts,
    select_entries,
)

P = ProfileSettings()
TS = 1_700_000_000_000 - 1_700_000_000_000 % 300_000
NOW = TS + 300_000
MIN = 60_000
BTC = SymbolFeatures.neutral_benchmark(TS)


def feats(symbol: str, macro_fast: float = 104.0, **kw) -> SymbolFeatures:
    """A clean long setup whose score grows with ``macro_fast``."""
    base = dict(
        symbol=symbol, ts_ms=TS, close=100.0,
        macro_fast=macro_fast, macro_slow=100.0, macro_ts_ms=TS - 3_300_000,
        pullback_fast=100.75, pullback_slow=100.25, pullback_gap=0.5 / 100.25,
        pullback_cross="up", pullback_cross_age_min=30.0,
        trigger_fast=100.75, trigger_slow=100.25,
        chop=40.0, volume_ratio=1.5, volume_up_fraction=0.625, volume_down_fraction=0.25,
        spike_ratio=1.25, spike_direction="up", va_low=99.0, va_high=101.0, va_poc=100.0,
        ret30=0.00390625, ret60=0.0078125, rs30=0.00390625, rs60=0.0078125,
        atr=0.5, atr_rate=0.005, volatility=0.002, daily_volatility=0.03, warm=True,
    )
    base.update(kw)
    return SymbolFeatures(**base)


def decide(fs, p=P, side="long"):
    return [evaluate(side, f, BTC, p) for f in fs]


def universe(n_good: int, n_bad: int, p=P):
    """n_good entry-valid symbols with descending scores, n_bad rejected ones."""
    good = [feats(f"G{i:02d}", macro_fast=110.0 - 0.25 * i) for i in range(n_good)]
    bad = [feats(f"B{i:02d}", chop=90.0) for i in range(n_bad)]
    return decide(good + bad, p)


# ---------------------------------------------------------------------------------------
def test_every_decision_keeps_its_full_gate_list_in_input_order():
    decs = universe(3, 2)
    sel = select_entries(decs, EntryContext(now_ms=NOW), P)
    assert [d.symbol for d in sel.decisions] == [d.symbol for d in decs]
    for d in sel.decisions:
        assert d.gate_names == SIGNAL_GATES + SELECTION_GATES
    assert sel.chosen_symbols == ("G00", "G01", "G02")
    for d in sel.rejected:
        assert d.first_rejection == "chop"
        g = d.gate("ladders_per_signal")
        assert g.passed and g.detail.startswith("not ranked")


def test_candidates_are_ranked_by_score():
    fs = [feats("LOW", 103.5), feats("HIGH", 106.0), feats("MID", 104.5)]
    sel = select_entries(decide(fs), EntryContext(now_ms=NOW), P)
    assert sel.chosen_symbols == ("HIGH", "MID", "LOW")
    scores = [d.score for d in sel.chosen]
    assert scores == sorted(scores, reverse=True)
    ranks = {d.symbol: d.gate("ladders_per_signal").value for d in sel.decisions}
    assert ranks == {"HIGH": 1.0, "MID": 2.0, "LOW": 3.0}


def test_equal_scores_rank_deterministically():
    fs = [feats("BBB", rs60=0.0078125), feats("AAA"), feats("CCC", rs60=0.015625)]
    sel = select_entries(decide(fs), EntryContext(now_ms=NOW), P)
    # higher directional rs60 first (it also lifts the raw score), then the name
    assert sel.chosen_symbols[0] == "CCC"
    assert sel.chosen_symbols[1:] == ("AAA", "BBB")


def test_per_signal_ladder_limit():
    sel = select_entries(universe(7, 0), EntryContext(now_ms=NOW), P)
    assert P.entry_max_new_ladders_per_signal == 5
    assert sel.chosen_symbols == ("G00", "G01", "G02", "G03", "G04")
    by = sel.by_symbol()
    for s in ("G05", "G06"):
        assert by[s].first_rejection == "ladders_per_signal"
        assert not by[s].entry_valid
    assert by["G05"].gate("ladders_per_signal").value == 6.0


def test_rate_limit_window():
    window = P.entry_rate_limit_window_minutes * MIN
    recent = tuple(NOW - k * MIN for k in range(1, 9))  # 8 ladders inside the window
    outside = (NOW - int(window),)  # exactly one window ago: no longer counted
    ctx = EntryContext(now_ms=NOW, recent_ladders_ms=recent + outside)
    sel = select_entries(universe(4, 0), ctx, P)
    assert sel.recent_ladders == 8 and sel.rate_remaining == 2
    assert sel.chosen_symbols == ("G00", "G01")
    by = sel.by_symbol()
    assert by["G02"].first_rejection == "rate_limit"
    g = by["G02"].gate("rate_limit")
    assert (g.value, g.threshold) == (11.0, 10.0)
    # one millisecond later the oldest counted ladder is still inside: still 8
    assert select_entries(universe(4, 0), replace(ctx, now_ms=NOW + 1), P).recent_ladders == 8
    full = replace(ctx, recent_ladders_ms=recent + (NOW - 30 * MIN, NOW - 40 * MIN))
    assert select_entries(universe(4, 0), full, P).chosen == ()


def test_crowded_market_tightens_thresholds_and_limits():
    p = P.model_copy(update={"entry_crowded_min_signals": 4, "entry_crowded_signal_fraction": 0.5})
    fs = [feats(f"G{i}", 110.0 - i) for i in range(4)]
    fs.append(feats("LOWSCORE", 102.75))                    # 0.03 <= score < 0.04
    fs.append(feats("LOWRS60", 110.0, rs60=0.0025))        # 0.002 <= rs60 < 0.003
    fs += [feats(f"B{i}", chop=90.0) for i in range(6)]    # 6 of 12 signal: share 0.5
    decs = decide(fs, p)
    assert sum(d.entry_valid for d in decs) == 6
    sel = select_entries(decs, EntryContext(now_ms=NOW), p)
    assert sel.crowded and sel.signal_count == 6 and sel.universe == 12
    assert sel.per_signal_limit == p.entry_crowded_max_new_ladders_per_signal == 3
    by = sel.by_symbol()
    low = by["LOWSCORE"]
    assert low.first_rejection == "crowded_min_score"
    assert low.gate("crowded_min_score").threshold == p.entry_crowded_min_score
    assert low.gate("crowded_min_score").kind == HARD
    lrs = by["LOWRS60"]
    assert lrs.first_rejection == "crowded_min_rs60"
    pen = (0.003 - 0.0025) * p.entry_rs60_shortfall_penalty_multiplier
    assert lrs.gate("crowded_min_rs60").score_delta == pytest.approx(-pen)
    before = next(d for d in decs if d.symbol == "LOWRS60")
    assert lrs.score == pytest.approx(before.score - pen)
    assert sel.chosen_symbols == ("G0", "G1", "G2")
    assert by["G3"].first_rejection == "ladders_per_signal"
    assert "crowded" in by["G3"].gate("ladders_per_signal").detail


@pytest.mark.parametrize("n_good, n_bad, crowded", [
    (3, 7, False),   # 3 signalling: below the minimum count of 4
    (4, 5, True),    # 4 of 9 = 0.44 >= 0.4
    (4, 7, False),   # 4 of 11 = 0.36 < 0.4
])
def test_crowded_needs_both_the_count_and_the_share(n_good, n_bad, crowded):
    p = P.model_copy(update={"entry_crowded_min_signals": 4, "entry_crowded_signal_fraction": 0.4})
    sel = select_entries(universe(n_good, n_bad, p), EntryContext(now_ms=NOW), p)
    assert sel.crowded is crowded
    g = sel.decisions[0].gate("crowded_min_score")
    assert g.kind == (HARD if crowded else INFO)
    assert sel.decisions[0].gate("crowded_market").kind == INFO


def test_crowded_share_counts_the_entry_list_only():
    p = P.model_copy(update={"entry_crowded_min_signals": 4, "entry_crowded_signal_fraction": 0.4})
    decs = universe(4, 7, p)  # 4 of 11: not crowded
    allowed = frozenset(d.symbol for d in decs[:8])  # 4 of 8 in the entry list: crowded
    sel = select_entries(decs, EntryContext(now_ms=NOW, allowed_symbols=allowed), p)
    assert sel.crowded and sel.universe == 8
    assert sel.by_symbol()["B06"].first_rejection == "chop"


def test_cooldown_after_a_win_and_after_a_loss():
    closed = NOW - 20 * MIN
    after_loss = cooldown_until(closed, -1.5, P)
    after_win = cooldown_until(closed, 2.0, P)
    assert after_loss == closed + 10 * MIN
    assert after_win == closed + 90 * MIN
    assert cooldown_until(closed, 0.0, P) == after_loss  # breakeven is no win
    decs = decide([feats("WIN"), feats("LOSS")])
    ctx = EntryContext(now_ms=NOW, cooldown_until={"WIN": after_win, "LOSS": after_loss})
    sel = select_entries(decs, ctx, P)
    by = sel.by_symbol()
    assert by["WIN"].first_rejection == "cooldown"
    assert by["WIN"].gate("cooldown").value == pytest.approx(70.0)
    assert by["LOSS"].entry_valid
    # the cooldown ends exactly at its time
    edge = EntryContext(now_ms=after_win, cooldown_until={"WIN": after_win})
    assert select_entries(decs[:1], edge, P).chosen_symbols == ("WIN",)
    edge = replace(edge, now_ms=after_win - 1)
    assert select_entries(decs[:1], edge, P).chosen == ()


def test_held_reserved_paused_unhealthy_and_entry_list():
    decs = decide([feats("HELD"), feats("OTHER"), feats("FREE"), feats("NOTLISTED")])
    ctx = EntryContext(
        now_ms=NOW, held=frozenset({"HELD"}), reserved_by_other=frozenset({"OTHER"}),
        allowed_symbols=frozenset({"HELD", "OTHER", "FREE"}),
        unhealthy_positions=P.max_unhealthy_positions_for_new_entries,
    )
    sel = select_entries(decs, ctx, P)
    by = sel.by_symbol()
    assert by["HELD"].first_rejection == "position_open"
    assert by["OTHER"].first_rejection == "reserved_by_other_side"
    assert by["NOTLISTED"].first_rejection == "symbol_allowed"
    assert sel.chosen_symbols == ("FREE",)  # unhealthy == the maximum is still allowed
    sick = replace(ctx, unhealthy_positions=P.max_unhealthy_positions_for_new_entries + 1)
    sel = select_entries(decs, sick, P)
    assert sel.chosen == ()
    assert sel.by_symbol()["FREE"].first_rejection == "unhealthy_positions"
    paused = select_entries(decs, replace(ctx, entries_paused=True), P)
    assert paused.chosen == ()
    assert all(d.first_rejection == "entries_paused" for d in paused.decisions)


def test_rejection_counts_and_side_checks():
    decs = universe(6, 3)
    sel = select_entries(decs, EntryContext(now_ms=NOW, held=frozenset({"G00"})), P)
    assert rejection_counts(sel.decisions) == {"chop": 3, "position_open": 1}
    assert len(sel.chosen) == 5
    with pytest.raises(ValueError, match="both sides"):
        select_entries(decs + decide([feats("S")], side="short"), EntryContext(now_ms=NOW), P)
    with pytest.raises(ValueError, match="twice"):
        select_entries(decs + decs[:1], EntryContext(now_ms=NOW), P)


def mirror(f: SymbolFeatures) -> SymbolFeatures:
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


def test_short_side_selection_mirrors():
    fs = [feats("LOW", 103.5), feats("HIGH", 106.0), feats("MID", 104.5)]
    longs = select_entries(decide(fs), EntryContext(now_ms=NOW), P)
    shorts = select_entries(decide([mirror(f) for f in fs], side="short"),
                            EntryContext(now_ms=NOW), P)
    assert shorts.chosen_symbols == longs.chosen_symbols
    assert [d.score for d in shorts.chosen] == [d.score for d in longs.chosen]
