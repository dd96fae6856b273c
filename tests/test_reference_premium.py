"""Pure reference checks on constructed books: every block, the stale policy in each
setting combination, the penalty mode, the impulse bonus and the exit tightening."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from engine.exchange.types import BookTop
from engine.reference import GATE_NAMES, Lookback, check_reference, tighten_for
from engine.runtime.events import Premium
from engine.settings import ProfileSettings
from engine.strategy.decision import Decision, GateResult, fold_score

NOW = 10_000_000
ON = dict(external_price_entry_filter_enabled=True)
P_ON = ProfileSettings(**ON)
P_OFF = ProfileSettings()  # the entry filter is off by default


def top(venue: str, mid: float, spread_bps: float = 2.0, depth: float | None = 10_000.0, age_ms: int = 0,
        sizes: bool = True) -> BookTop:
    half = mid * spread_bps / 2e4
    bid, ask = Decimal(str(mid - half)), Decimal(str(mid + half))
    bs = Decimal(str(depth / (mid - half))) if sizes and depth is not None else None
    as_ = Decimal(str(depth / (mid + half))) if sizes and depth is not None else None
    return BookTop(venue, "ETH/USDT:USDT", bid, ask, bs, as_, None, NOW - age_ms)


def gates(r) -> dict[str, GateResult]:
    return {g.name: g for g in r.gates}


def check(side="long", htx=None, mexc=None, p=P_ON, **kw):
    htx = top("htx", 100.0) if htx is None else htx
    mexc = top("mexc", 100.0) if mexc is None else mexc
    return check_reference(side, htx, mexc, NOW, p, **kw)


# -- clean case ------------------------------------------------------------------------------
def test_clean_books_pass_every_gate_in_order():
    r = check(lookback=Lookback(100.0, 100.0, 100.0, 100.0))
    assert r.status == "ok" and not r.blocked and r.reason == "ok"
    assert tuple(g.name for g in r.gates) == GATE_NAMES
    assert all(g.passed for g in r.gates if g.name != "ref_impulse")
    assert r.premium_bps == pytest.approx(0.0) and r.divergence_1m_bps == pytest.approx(0.0) and r.age_ms == 0


def test_premium_by_hand():
    r = check(htx=top("htx", 100.1), mexc=top("mexc", 100.0))
    assert r.premium_bps == pytest.approx(10.0)  # (100.1 / 100 - 1) x 1e4


# -- premium / discount ------------------------------------------------------------------------
def test_htx_premium_blocks_longs_not_shorts():
    htx, mexc = top("htx", 100.2), top("mexc", 100.0)  # +20 bps
    r = check("long", htx, mexc)
    g = gates(r)["ref_premium"]
    assert r.blocked and g.blocks and g.value == pytest.approx(20.0) and g.threshold == 15.0
    assert r.reason.startswith("ref_premium")
    s = check("short", htx, mexc)
    assert not s.blocked and gates(s)["ref_premium"].value == pytest.approx(-20.0)


def test_htx_discount_blocks_shorts_not_longs():
    htx, mexc = top("htx", 99.8), top("mexc", 100.0)  # -20 bps
    s = check("short", htx, mexc)
    assert s.blocked and gates(s)["ref_premium"].value == pytest.approx(20.0)
    assert "discount" in gates(s)["ref_premium"].detail
    assert not check("long", htx, mexc).blocked


def test_limits_are_literal_zero_blocks_any_premium():
    p = ProfileSettings(external_price_max_htx_premium_for_long_bps=0.0, **ON)
    assert check("long", top("htx", 100.005), top("mexc", 100.0), p=p).blocked  # +0.5 bps
    assert not check("long", top("htx", 100.0), top("mexc", 100.0), p=p).blocked


# -- divergence and cooldown -----------------------------------------------------------------
def test_one_minute_divergence_blocks_and_starts_a_cooldown():
    # HTX rose 60 bps in a minute, the reference did not move
    r = check(htx=top("htx", 100.6), mexc=top("mexc", 100.6), lookback=Lookback(100.0, 100.6, None, None))
    g = gates(r)["ref_divergence_1m"]
    assert r.divergence_1m_bps == pytest.approx(60.0) and g.value == pytest.approx(60.0) and g.blocks
    assert r.cooldown_until_ms == NOW + 300_000 and "cooldown 300 s" in g.detail
    off = check(htx=top("htx", 100.6), mexc=top("mexc", 100.6), p=P_OFF, lookback=Lookback(100.0, 100.6))
    assert not off.blocked and off.cooldown_until_ms is None and gates(off)["ref_divergence_1m"].kind == "penalty"


def test_divergence_needs_history():
    g = gates(check(lookback=Lookback(None, 100.0)))["ref_divergence_1m"]
    assert g.passed and g.kind == "info" and "history" in g.detail


def test_cooldown_blocks_until_it_ends():
    r = check(cooldown_until_ms=NOW + 42_000)
    g = gates(r)["ref_cooldown"]
    assert r.blocked and g.value == 42.0 and "42 s left" in g.detail
    assert not check(cooldown_until_ms=NOW).blocked
    assert not check(p=P_OFF, cooldown_until_ms=NOW + 42_000).blocked  # filter off: a penalty


# -- directional one-minute gate ---------------------------------------------------------------
def test_adverse_reference_move_blocks_entries_and_averaging():
    lb = Lookback(100.0, 100.6, None, None)  # the reference fell 59.6 bps in a minute
    htx, mexc = top("htx", 100.0), top("mexc", 100.0)
    r = check("long", htx, mexc, p=P_OFF, lookback=lb)  # own switch: blocks with the filter off
    g = gates(r)["ref_directional_1m"]
    assert r.blocked and g.value == pytest.approx(-59.64, abs=0.01) and g.threshold == -50.0 and "mexc" in g.detail
    assert not check("short", htx, mexc, p=P_OFF, lookback=lb).blocked  # a fall is the short's way
    assert check("long", htx, mexc, p=P_OFF, lookback=lb, purpose="averaging").blocked
    p = ProfileSettings(external_price_directional_averaging_1m_block_bps=80.0)
    assert not check("long", htx, mexc, p=p, lookback=lb, purpose="averaging").blocked
    assert check("long", htx, mexc, p=p, lookback=lb).blocked
    off = ProfileSettings(external_price_directional_1m_gate_enabled=False)
    g = gates(check("long", htx, mexc, p=off, lookback=lb))["ref_directional_1m"]
    assert g.kind == "info" and not g.passed and "off" in g.detail


def test_htx_own_adverse_move_also_counts():
    r = check("short", top("htx", 100.6), top("mexc", 100.6), p=P_OFF, lookback=Lookback(100.0, 100.3))
    g = gates(r)["ref_directional_1m"]
    assert r.blocked and "htx" in g.detail  # HTX +60 bps against a short; reference +30


# -- stale reference: every combination ---------------------------------------------------------
@pytest.mark.parametrize("disable, ignore, filt, kind, blocked", [
    (True, True, True, "hard", True),
    (True, False, False, "hard", True),  # DISABLE_TRADING blocks even with the filter off
    (False, True, True, "info", False),
    (False, True, False, "info", False),
    (False, False, True, "hard", True),  # not ignored: a failed check of the entry filter
    (False, False, False, "penalty", False),
])
@pytest.mark.parametrize("mexc_age", [3_001, None])  # stale quote / no quote at all
def test_stale_policy(disable, ignore, filt, kind, blocked, mexc_age):
    p = ProfileSettings(external_price_disable_trading_if_reference_stale=disable,
                        external_price_ignore_reference_if_stale=ignore,
                        external_price_entry_filter_enabled=filt)
    mexc = None if mexc_age is None else top("mexc", 100.0, age_ms=mexc_age)
    r = check_reference("long", top("htx", 100.5), mexc, NOW, p)  # +50 bps would block if checked
    g = gates(r)["ref_fresh"]
    assert r.status == ("unavailable" if mexc_age is None else "stale")
    assert (g.passed, g.kind, r.blocked) == (False, kind, blocked)
    assert r.age_ms == mexc_age and r.premium_bps is None  # no current reference: no premium shown
    assert all(gates(r)[n].kind == "info" and "not evaluated" in gates(r)[n].detail
               for n in ("ref_premium", "ref_divergence_1m", "ref_directional_1m", "ref_depth"))
    assert fold_score(1.0, r.gates) == (0.5 if kind == "penalty" else 1.0)
    avg = check_reference("long", top("htx", 100.5), mexc, NOW, p, purpose="averaging")
    assert avg.blocked == disable  # averaging: only DISABLE_TRADING_IF_REFERENCE_STALE blocks


def test_stale_threshold_is_inclusive():
    assert check(mexc=top("mexc", 100.0, age_ms=3_000)).status == "ok"


# -- invalid books -----------------------------------------------------------------------------
def test_thin_reference_book_is_invalid():
    r = check(mexc=top("mexc", 100.0, depth=30.0))
    g = gates(r)["ref_depth"]
    assert r.status == "invalid" and r.blocked and g.value == pytest.approx(30.0) and g.threshold == 50.0
    assert g.detail == "mexc bid"
    assert all(gates(r)[n].kind == "info" for n in ("ref_premium", "ref_divergence_1m", "ref_impulse"))
    assert not check(mexc=top("mexc", 100.0, depth=30.0), p=P_OFF).blocked  # penalty only


def test_unknown_reference_depth_fails_unknown_htx_depth_is_skipped():
    r = check(mexc=top("mexc", 100.0, sizes=False))
    assert r.blocked and "size unknown" in gates(r)["ref_depth"].detail
    r = check(htx=top("htx", 100.0, sizes=False))
    assert r.status == "ok" and gates(r)["ref_depth"].detail.startswith("mexc")
    r = check(htx=top("htx", 100.0, depth=20.0))
    assert r.blocked and gates(r)["ref_depth"].detail.startswith("htx")  # our side counts when known


def test_wide_internal_spread_is_invalid():
    r = check(htx=top("htx", 100.0, spread_bps=40.0))
    g = gates(r)["ref_spread"]
    assert r.status == "invalid" and g.blocks and g.value == pytest.approx(40.0) and "htx" in g.detail


def test_old_quote_is_invalid_before_it_is_stale():
    p = ProfileSettings(external_price_max_price_age_ms=2_000, **ON)
    r = check(mexc=top("mexc", 100.0, age_ms=2_500), p=p)
    assert r.status == "invalid" and gates(r)["ref_quote_age"].blocks and gates(r)["ref_fresh"].passed
    r = check(htx=top("htx", 100.0, age_ms=2_500), p=p)
    assert r.status == "invalid" and gates(r)["ref_quote_age"].value == 2_500


def test_crossed_or_missing_htx_book_is_invalid():
    crossed = BookTop("mexc", "ETH/USDT:USDT", Decimal("100.1"), Decimal("100.0"), Decimal(1000), Decimal(1000),
                      None, NOW)
    r = check(mexc=crossed)
    assert r.status == "invalid" and r.blocked and "reference book empty or crossed" in gates(r)["ref_depth"].detail
    r = check_reference("long", None, top("mexc", 100.0), NOW, P_ON)
    assert r.status == "invalid" and r.premium_bps is None and "no HTX book" in gates(r)["ref_quote_age"].detail


# -- penalty mode ------------------------------------------------------------------------------
def test_penalty_applies_once():
    r = check(htx=top("htx", 100.6), mexc=top("mexc", 100.0), p=P_OFF, lookback=Lookback(100.0, 100.0))
    failed = [g for g in r.gates if not g.passed and g.kind == "penalty"]
    assert [g.name for g in failed] == ["ref_premium", "ref_divergence_1m"]
    assert failed[0].score_factor == 0.5 and failed[1].score_factor == 1.0
    assert "penalty already applied" in failed[1].detail
    assert not r.blocked and r.reason.startswith("penalised by ref_premium")
    assert fold_score(0.04, r.gates) == pytest.approx(0.02)


# -- impulse bonus -----------------------------------------------------------------------------
@pytest.mark.parametrize("side, htx30, mexc30, same, bonus, why", [
    ("long", 99.98, 99.90, True, 0.02, ""),  # reference +10 bps, HTX +2: lead 8 >= 5
    ("long", 100.01, 99.90, True, 0.0, "against"),  # HTX -1 bps against the long
    ("long", 100.01, 99.90, False, 0.02, ""),  # ... allowed without REQUIRE_SAME_DIRECTION
    ("long", 99.99, 99.95, True, 0.0, "did not lead"),  # lead 4 < 5
    ("short", 100.02, 100.10, True, 0.02, ""),  # reference -10, HTX -2
    ("short", 100.02, 100.06, True, 0.0, "did not lead"),  # reference -6, HTX -2: lead 4
])
def test_impulse_bonus(side, htx30, mexc30, same, bonus, why):
    p = ProfileSettings(external_price_require_same_direction=same, **ON)
    r = check(side, lookback=Lookback(None, None, htx30, mexc30), p=p)
    g = gates(r)["ref_impulse"]
    assert g.kind == "info" and g.score_delta == bonus and g.passed == (bonus > 0) and why in g.detail
    assert fold_score(0.05, r.gates) == pytest.approx(0.05 + bonus)


def test_impulse_needs_the_reference_to_move_the_trades_way_and_a_clean_premium():
    # HTX fell 12 bps, the reference fell 2: lead +10 for a long, but the reference fell
    r = check("long", lookback=Lookback(None, None, 100.12, 100.02),
              p=ProfileSettings(external_price_require_same_direction=False, **ON))
    assert gates(r)["ref_impulse"].score_delta == 0.0 and "did not move" in gates(r)["ref_impulse"].detail
    r = check("long", top("htx", 100.3), top("mexc", 100.1), lookback=Lookback(None, None, 100.29, 100.0))
    assert gates(r)["ref_impulse"].detail == "premium check failed"
    r = check(lookback=Lookback(None, None, 99.98, 99.9), p=ProfileSettings(
        external_price_impulse_confirmation_enabled=False))
    assert gates(r)["ref_impulse"].score_delta == 0.0 and "off" in gates(r)["ref_impulse"].detail


# -- exit tightening ---------------------------------------------------------------------------
TIGHT = ProfileSettings(external_price_exit_adjustment_enabled=True)
LADDER = ((0.4, 0.3, 0.2, 0.1), (0.005, 0.01, 0.02, None))


def test_tightening_on_adverse_premium_with_hysteresis():
    assert tighten_for("long", 25.0, TIGHT) == LADDER
    assert tighten_for("long", 20.0, TIGHT) is None  # 'above' the threshold
    assert tighten_for("long", 5.0, TIGHT, latched=True) == LADDER  # stays until the premium is gone
    assert tighten_for("long", 0.0, TIGHT, latched=True) is None
    assert tighten_for("short", -25.0, TIGHT) == LADDER and tighten_for("short", 25.0, TIGHT) is None
    assert tighten_for("long", 25.0, P_ON) is None  # EXIT_ADJUSTMENT_ENABLED off
    assert tighten_for("long", None, TIGHT) is None


def test_result_tightens_only_on_a_usable_reference():
    r = check_reference("long", top("htx", 100.25), top("mexc", 100.0), NOW, TIGHT)
    assert r.tighten == LADDER
    r = check_reference("long", top("htx", 100.25), top("mexc", 100.0, age_ms=5_000), NOW, TIGHT)
    assert r.tighten is None and r.status == "stale"


# -- disabled feed, events, decisions -------------------------------------------------------------
def test_disabled_feed_is_all_info():
    r = check(htx=top("htx", 101.0), enabled=False)
    assert r.status == "disabled" and not r.blocked and all(g.kind == "info" for g in r.gates)
    assert tuple(g.name for g in r.gates) == GATE_NAMES


def test_premium_event_and_record():
    r = check(htx=top("htx", 100.2))
    ev = r.event(NOW, "ETH/USDT:USDT")
    assert isinstance(ev, Premium) and ev.blocked and ev.premium_bps == pytest.approx(20.0)
    assert ev.reference_age_ms == 0 and ev.reason.startswith("long entry: ref_premium")
    rec = r.to_record()
    assert rec["blocked"] and rec["g_ref_premium"] is False and rec["g_ref_divergence_1m_value"] is None
    assert ev.to_record()["kind"] == "premium"


def test_gates_join_a_strategy_decision():
    d = Decision("ETH/USDT:USDT", "long", NOW, 0.05, 0.05, True, True, True,
                 (GateResult("macro_trend", 0.1, 0.0, True, "hard", ">"),))
    blocked = d.with_gates(check(htx=top("htx", 100.2)).gates)
    assert not blocked.entry_valid and blocked.first_rejection == "ref_premium"
    bonus = d.with_gates(check(lookback=Lookback(100.0, 100.0, 99.98, 99.9)).gates)
    assert bonus.entry_valid and bonus.score == pytest.approx(0.07)
    assert not math.isnan(bonus.to_record()["g_ref_premium_value"])


def test_bad_side_is_rejected():
    with pytest.raises(ValueError):
        check("both")
