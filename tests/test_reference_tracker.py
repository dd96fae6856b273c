"""ReferenceTracker: history lookbacks, cooldowns per side, exit latches, change events and
the default replay case (no reference venue)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.exchange.types import BookTop
from engine.reference import GATE_NAMES, ReferenceTracker
from engine.settings import ProfileSettings

SYM = "ETH/USDT:USDT"
T0 = 50_000_000
P_ON = ProfileSettings(external_price_entry_filter_enabled=True)


def top(venue: str, mid: float, t_ms: int, spread_bps: float = 2.0) -> BookTop:
    half = mid * spread_bps / 2e4
    bid, ask = Decimal(str(mid - half)), Decimal(str(mid + half))
    return BookTop(venue, SYM, bid, ask, Decimal(1000), Decimal(1000), None, t_ms)


def feed(tr: ReferenceTracker, t_ms: int, htx: float, mexc: float | None) -> None:
    tr.update({SYM: top("htx", htx, t_ms)}, {} if mexc is None else {SYM: top("mexc", mexc, t_ms)}, t_ms)


def gate(r, name):
    return next(g for g in r.gates if g.name == name)


def test_lookbacks_come_from_history_within_tolerance():
    tr = ReferenceTracker()
    for k, (h, m) in enumerate([(100.0, 100.0), (100.1, 100.2), (100.3, 100.3)]):
        feed(tr, T0 + k * 30_000, h, m)  # samples at T0, T0 + 30 s, T0 + 60 s
    lb = tr.lookback(SYM, T0 + 60_000, 3_000)
    assert lb == (100.0, 100.0, 100.1, 100.2)
    assert tr.mid_at("htx", SYM, T0 + 3_000, 3_000) == 100.0  # the last sample at or before
    assert tr.mid_at("htx", SYM, T0 + 3_001, 3_000) is None  # too old for that time
    r = tr.check("long", SYM, T0 + 60_000, P_ON)
    assert r.htx_change_1m_bps == pytest.approx(30.0) and r.mexc_change_30s_bps == pytest.approx(9.98, abs=0.01)


def test_late_answers_and_pruning():
    tr = ReferenceTracker(keep_ms=120_000)
    feed(tr, T0 + 1_000, 101.0, 101.0)
    feed(tr, T0, 100.0, 100.0)  # an older answer arriving late is ignored
    assert tr.top("htx", SYM).received_ms == T0 + 1_000
    feed(tr, T0 + 200_000, 102.0, 102.0)
    assert tr.mid_at("htx", SYM, T0 + 1_000, 10_000) is None  # pruned


def test_divergence_cooldown_is_kept_per_side_until_it_ends():
    tr = ReferenceTracker()
    feed(tr, T0, 100.0, 100.0)
    feed(tr, T0 + 60_000, 100.6, 100.0)  # HTX +60 bps in a minute, the reference flat
    r = tr.check("long", SYM, T0 + 60_000, ProfileSettings(
        external_price_entry_filter_enabled=True, external_price_max_htx_premium_for_long_bps=100.0))
    assert r.blocked and gate(r, "ref_divergence_1m").blocks
    until = T0 + 60_000 + 300_000
    assert tr.cooldown_until("long", SYM) == until and tr.cooldown_until("short", SYM) is None
    feed(tr, T0 + 120_000, 100.0, 100.0)  # calm again: only the cooldown blocks
    feed(tr, T0 + 180_000, 100.0, 100.0)
    r = tr.check("long", SYM, T0 + 180_000, P_ON)
    assert r.blocked and [g.name for g in r.gates if g.blocks] == ["ref_cooldown"]
    assert gate(r, "ref_cooldown").value == pytest.approx(180.0)
    feed(tr, until, 100.0, 100.0)
    assert not tr.check("long", SYM, until, P_ON).blocked
    assert tr.cooldown_until("long", SYM) is None


def test_gates_for_and_averaging_allowed():
    tr = ReferenceTracker()
    feed(tr, T0, 100.0, 100.6)
    feed(tr, T0 + 60_000, 100.0, 100.0)  # the reference fell 60 bps in a minute
    assert tuple(g.name for g in tr.gates_for("long", SYM, T0 + 60_000, ProfileSettings())) == GATE_NAMES
    ok, why = tr.averaging_allowed("long", SYM, T0 + 60_000, ProfileSettings())
    assert not ok and why.startswith("ref_directional_1m")
    assert tr.averaging_allowed("short", SYM, T0 + 60_000, ProfileSettings()) == (True, "ok")


def test_exit_tightening_latches_per_side():
    p = ProfileSettings(external_price_exit_adjustment_enabled=True)
    tr = ReferenceTracker()
    feed(tr, T0, 100.25, 100.0)  # +25 bps
    assert tr.tighten_for("long", SYM, T0, p) is not None
    assert tr.tighten_for("short", SYM, T0, p) is None
    feed(tr, T0 + 1_000, 100.1, 100.0)  # +10 bps: below 20 but still adverse -> stays tightened
    assert tr.tighten_for("long", SYM, T0 + 1_000, p) is not None
    feed(tr, T0 + 2_000, 99.99, 100.0)  # premium gone
    assert tr.tighten_for("long", SYM, T0 + 2_000, p) is None
    feed(tr, T0 + 3_000, 100.1, 100.0)  # +10 bps without the latch: normal ladder
    assert tr.tighten_for("long", SYM, T0 + 3_000, p) is None
    assert tr.tighten_for("long", SYM, T0 + 60_000, p) is None  # stale reference: normal ladder


def test_premium_events_only_on_change():
    tr = ReferenceTracker()
    feed(tr, T0, 100.2, 100.0)
    r = tr.check("long", SYM, T0, P_ON)
    ev = tr.event_if_changed(SYM, r, T0)
    assert ev is not None and ev.blocked and ev.symbol == SYM
    assert tr.event_if_changed(SYM, tr.check("long", SYM, T0 + 500, P_ON), T0 + 500) is None
    feed(tr, T0 + 1_000, 100.0, 100.0)
    ev = tr.event_if_changed(SYM, tr.check("long", SYM, T0 + 1_000, P_ON), T0 + 1_000)
    assert ev is not None and not ev.blocked and ev.reason == "long entry: ok"
    other = tr.event_if_changed(SYM, tr.check("short", SYM, T0 + 1_000, P_ON), T0 + 1_000)
    assert other is not None  # each side has its own state


def test_replay_without_reference_is_unavailable_info_unless_settings_block():
    tr = ReferenceTracker()
    feed(tr, T0, 100.0, None)  # the simulated exchange's book only
    r = tr.check("long", SYM, T0, P_ON)
    assert r.status == "unavailable" and not r.blocked
    assert gate(r, "ref_fresh").kind == "info" and "no reference quote" in gate(r, "ref_fresh").detail
    strict = ProfileSettings(external_price_disable_trading_if_reference_stale=True)
    assert tr.check("long", SYM, T0, strict).blocked
    off = ReferenceTracker(enabled=False)
    feed(off, T0, 100.0, None)
    assert off.check("long", SYM, T0, strict).status == "disabled"


def test_a_reference_that_falls_through_to_another_venue_starts_its_history_again():
    """EXTERNAL_PRICE_REFERENCE_EXCHANGES=mexc,binance: when the reference's quote for a symbol
    comes from another venue, the gap between the two venues is no move, so the 30 s / 1 min
    changes are not computed across the switch."""
    tr = ReferenceTracker()
    t = T0 + 7_311
    for k in range(7):  # mexc quotes every 10 s
        feed(tr, t + k * 10_000, 100.0, 100.0)
    now = t + 70_000
    assert tr.mid_at("mexc", SYM, now - 60_000, 15_000) == pytest.approx(100.0)
    tr.update({SYM: top("htx", 100.0, now)}, {SYM: top("binance", 100.4, now)}, now)
    assert tr.top("mexc", SYM).venue == "binance"
    assert tr.mid_at("mexc", SYM, now - 60_000, 15_000) is None  # no history across the switch
    assert tr.mid_at("mexc", SYM, now, 15_000) == pytest.approx(100.4)
    assert tr.mid_at("htx", SYM, now - 60_000, 15_000) == pytest.approx(100.0)  # HTX's is kept
