"""RecordedReference: both venues' books derived from real recorded candles, for replay.

Checked by hand: the price path inside a closed candle, a constructed premium, seeded noise,
and a replay over ETH/BTC whose directional blocks are recounted here from the candles alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.market.feeds import read_candles_csv
from engine.reference import RecordedReference, ReferenceTracker
from engine.settings import ProfileSettings

DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"  # the 2018 BTC-quoted set (test data)
M5 = 300_000
ETH = "ETH/BTC"


@pytest.fixture(scope="module")
def eth():
    return read_candles_csv(DATA / "ETH_BTC-5m.csv")


def test_price_path_inside_a_closed_candle(eth):
    rr = RecordedReference({ETH: eth}, "5m")
    c = eth[100]
    end = c.ts_ms + M5
    assert rr.htx_mid(ETH, end) == pytest.approx(c.close)
    assert rr.htx_mid(ETH, end - 60_000) == pytest.approx(c.open + (c.close - c.open) * 0.8)
    assert rr.htx_mid(ETH, end - 30_000) == pytest.approx(c.open + (c.close - c.open) * 0.9)
    assert rr.htx_mid(ETH, eth[0].ts_ms) is None  # no candle has closed yet: no look-ahead
    assert rr.htx_mid(ETH, eth[-1].ts_ms + M5 + 1) is None
    assert rr.htx_mid("NOPE/BTC", end) is None


def test_constructed_premium_and_books(eth):
    rr = RecordedReference({ETH: eth}, "5m", premium_bps={ETH: 20.0}, spread_bps=4.0, depth_usdt=500.0)
    now = eth[200].ts_ms + M5
    htx, ref = rr.tops_at(now)
    assert float(htx[ETH].mid) == pytest.approx(eth[200].close, rel=1e-9)
    assert float(ref[ETH].mid) == pytest.approx(eth[200].close / 1.002, rel=1e-9)
    assert float((htx[ETH].ask - htx[ETH].bid) / htx[ETH].mid) * 1e4 == pytest.approx(4.0, rel=1e-6)
    assert float(ref[ETH].bid * ref[ETH].bid_size) == pytest.approx(500.0, rel=1e-9)
    tr = ReferenceTracker()
    rr.feed(tr, now)
    r = tr.check("long", ETH, now, ProfileSettings(external_price_entry_filter_enabled=True))
    assert r.status == "ok" and r.premium_bps == pytest.approx(20.0, abs=1e-6)
    assert r.blocked and r.reason.startswith("ref_premium")
    assert not tr.check("short", ETH, now, ProfileSettings(external_price_entry_filter_enabled=True)).blocked


def test_noise_is_seeded_and_order_free(eth):
    times = [c.ts_ms + M5 for c in eth[:2000]]
    a = RecordedReference({ETH: eth}, "5m", noise_bps=10.0, seed=3)
    b = RecordedReference({ETH: eth}, "5m", noise_bps=10.0, seed=3)
    c = RecordedReference({ETH: eth}, "5m", noise_bps=10.0, seed=4)
    fwd = [a.reference_mid(ETH, t) for t in times]
    back = [b.reference_mid(ETH, t) for t in reversed(times)][::-1]
    assert fwd == back and fwd != [c.reference_mid(ETH, t) for t in times]
    noise = np.array([(a.htx_mid(ETH, t) / m - 1.0) * 1e4 for t, m in zip(times, fwd)])
    assert abs(noise.mean()) < 1.0 and 9.0 < noise.std() < 11.0


def test_replay_over_real_candles_blocks_exactly_the_hand_counted_minutes(eth):
    """No premium, no noise: only the directional gate can block, when the last minute of
    a candle (one fifth of its open-to-close move) exceeds 50 bps against the trade."""
    rr = RecordedReference({ETH: eth}, "5m")
    tr = ReferenceTracker()
    p = ProfileSettings(external_price_entry_filter_enabled=True)
    blocked = {"long": [], "short": []}
    for c in eth:
        now = c.ts_ms + M5
        rr.feed(tr, now)
        for side in blocked:
            r = tr.check(side, ETH, now, p)
            assert r.status == "ok" and abs(r.premium_bps) < 1e-6 and abs(r.divergence_1m_bps) < 1e-6
            if r.blocked:
                assert [g.name for g in r.gates if g.blocks] == ["ref_directional_1m"]
                blocked[side].append(c.ts_ms)
    by_hand = {"long": [], "short": []}
    for c in eth:
        move = (c.close / (c.open + 0.8 * (c.close - c.open)) - 1.0) * 1e4
        if move < -50.0:
            by_hand["long"].append(c.ts_ms)
        if move > 50.0:
            by_hand["short"].append(c.ts_ms)
    assert blocked == by_hand and len(blocked["long"]) + len(blocked["short"]) == 2


def test_noisy_replay_starts_cooldowns_and_reports_changes_only(eth):
    rr = RecordedReference({ETH: eth[:600]}, "5m", noise_bps=25.0, seed=11)
    tr = ReferenceTracker()
    p = ProfileSettings(external_price_entry_filter_enabled=True, external_price_block_duration_sec=600)
    checks = events = divergence_blocks = cooldown_blocks = 0
    for c in eth[:600]:
        now = c.ts_ms + M5
        rr.feed(tr, now)
        r = tr.check("long", ETH, now, p)
        checks += 1
        names = [g.name for g in r.gates if g.blocks]
        divergence_blocks += "ref_divergence_1m" in names
        cooldown_blocks += "ref_cooldown" in names
        if r.cooldown_until_ms is not None:
            assert tr.cooldown_until("long", ETH) == now + 600_000
        events += tr.event_if_changed(ETH, r, now) is not None
    assert divergence_blocks > 0 and cooldown_blocks > 0  # a 600 s cooldown outlives the next 5m step
    assert 0 < events < checks
