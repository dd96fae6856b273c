"""MacroTracker: regime transitions on constructed series (one event per change, with its
inputs), agreement with the vectorised classification, joining, staleness, the direct pair,
aggregation and the live fetch pacing."""

from __future__ import annotations

import numpy as np
import pytest

from engine.macro import MacroInputs, MacroTracker, classify, decide
from engine.market.candles import Candle
from engine.market.indicators import rsi
from engine.runtime.events import Regime
from engine.settings import ProfileSettings

H4 = 4 * 3_600_000
P = ProfileSettings()


def alternating(target_rsi: float, n: int, start: float) -> list[float]:
    a = target_rsi / 100.0
    out, price = [], start
    for i in range(n):
        price += a if i % 2 == 0 else -(1.0 - a)
        out.append(price)
    return out


def candles(closes: list[float], tf_ms: int = H4, t0: int = 0) -> list[Candle]:
    out, prev = [], closes[0]
    for i, c in enumerate(closes):
        out.append(Candle(t0 + i * tf_ms, prev, max(prev, c), min(prev, c), c, 1.0))
        prev = c
    return out


def segments(*parts: tuple[float, float, int]) -> tuple[list[float], list[float]]:
    """(gold RSI, btc RSI, candles) parts joined into continuous close series."""
    gold, btc = [1000.0], [3000.0]
    for g, b, n in parts:
        gold += alternating(g, n, gold[-1])
        btc += alternating(b, n, btc[-1])
    return gold[1:], btc[1:]


def run(tracker: MacroTracker, gold: list[Candle], btc: list[Candle], tf_ms: int = H4):
    contexts, events = [], []
    for g, b in zip(gold, btc):
        tracker.feed([g], [b])
        ev = tracker.update(g.ts_ms + tf_ms)
        contexts.append(tracker.context)
        if ev is not None:
            events.append((len(contexts) - 1, ev))
    return contexts, events


@pytest.fixture(scope="module")
def story():
    gold, btc = segments((50, 50, 100), (78, 45, 50), (25, 25, 60), (50, 50, 80))
    tracker = MacroTracker(P, profile="long", gold_symbol="XAUT/USDT:USDT", btc_symbol="BTC/USDT:USDT")
    contexts, events = run(tracker, candles(gold), candles(btc))
    return gold, btc, contexts, events


def test_each_regime_is_reached_in_order(story):
    _, _, contexts, _ = story
    seq = [c.regime for c in contexts]
    compressed = [r for i, r in enumerate(seq) if i == 0 or r != seq[i - 1]]
    it = iter(compressed)
    assert all(r in it for r in ("unavailable", "normal", "risk_off", "panic", "normal"))
    assert seq[:79] == ["unavailable"] * 79 and seq[79] == "normal"  # GOLD_MIN_CANDLES = 80
    assert seq[140] == "risk_off" and seq[200] == "panic" and seq[-1] == "normal"


def test_one_event_per_change_with_inputs(story):
    _, _, contexts, events = story
    changes = [0] + [i for i in range(1, len(contexts)) if contexts[i].regime != contexts[i - 1].regime]
    assert [i for i, _ in events] == changes
    first = events[0][1]
    assert isinstance(first, Regime) and first.previous == "" and first.regime == "unavailable"
    for (i, ev), (_, nxt) in zip(events, events[1:]):
        assert nxt.previous == ev.regime != nxt.regime
    for i, ev in events[1:]:
        inp = ev.inputs
        assert inp["profile"] == "long" and inp["timeframe"] == "4h" and inp["now_ms"] == ev.ts_ms
        assert inp["gold_symbol"] == "XAUT/USDT:USDT" and inp["regime"] == ev.regime
        if ev.regime != "unavailable":
            again = decide(inp["gold_rsi"], inp["btc_rsi"], inp["gold_btc_ratio_return"], P)
            assert again.regime == ev.regime  # the inputs explain the verdict
            assert inp["long_budget_multiplier"] == again.long_budget_multiplier
    assert ev.to_record()["kind"] == "regime"


def test_incremental_equals_vectorised(story):
    gold, btc, contexts, _ = story
    g_rsi, b_rsi = rsi(np.array(gold), 14), rsi(np.array(btc), 14)
    for i in (79, 120, 160, 230, len(gold) - 1):
        ctx = contexts[i]
        assert ctx.gold_rsi == pytest.approx(g_rsi[i], abs=1e-9)
        assert ctx.btc_rsi == pytest.approx(b_rsi[i], abs=1e-9)
        full = classify(MacroInputs(gold[: i + 1], btc[: i + 1]), P)
        assert (full.regime, full.long_budget_multiplier) == (ctx.regime, ctx.long_budget_multiplier)
        assert full.gold_btc_ratio_return == pytest.approx(ctx.gold_btc_ratio_return, rel=1e-12)


def test_legs_are_joined_on_time():
    gold, btc = segments((60, 45, 100))
    gc, bc = candles(gold), candles(btc)
    del bc[50]  # BTC misses one candle: gold's candle at that time is dropped too
    t = MacroTracker(P)
    t.feed(gc[:60], [])
    t.feed([], bc[:59])
    assert t.candles == 59 and t.last_ts == gc[59].ts_ms
    t.feed(gc[60:], bc[59:])
    t.update(gc[-1].ts_ms + H4)
    joined_g = [c.close for i, c in enumerate(gc) if i != 50]
    assert t.candles == 99
    assert t.context.gold_rsi == pytest.approx(rsi(np.array(joined_g), 14)[-1], abs=1e-9)


def test_stale_context_is_neutral_and_recovers():
    gold, btc = segments((78, 45, 100))
    gc, bc = candles(gold), candles(btc)
    t = MacroTracker(P)
    t.feed(gc[:-1], bc[:-1])
    last = gc[-2].ts_ms
    first = t.update(last + H4)
    assert first is not None and (first.previous, first.regime) == ("", "risk_off")  # first call reports
    limit = last + 2 * H4 + P.stale_macro_max_age_sec * 1000
    assert t.update(limit) is None and t.context.regime == "risk_off"  # overdue by exactly the limit
    ev = t.update(limit + 1)
    assert ev is not None and ev.regime == "unavailable" and ev.previous == "risk_off"
    assert t.context.reason.startswith("stale") and "last regime risk_off" in t.context.reason
    assert t.overlay("long").budget_multiplier == 1.0 and t.overlay("long").averaging_allowed
    assert t.context.gold_rsi is not None  # the stale inputs are still reported
    assert t.update(limit + 2) is None  # no repeat
    t.feed([gc[-1]], [bc[-1]])
    ev = t.update(gc[-1].ts_ms + H4)
    assert ev is not None and ev.regime == "risk_off" and ev.previous == "unavailable"
    never = MacroTracker(ProfileSettings(stale_macro_max_age_sec=0))
    never.feed(gc, bc)
    never.update(10**13)
    assert never.context.regime == "risk_off"


def test_disabled_and_missing_data_say_so_once():
    gold, btc = segments((78, 45, 100))
    off = MacroTracker(ProfileSettings(enable_gold_btc_rsi_overlay=False))
    off.feed(candles(gold), candles(btc))
    ev = off.update(10**9)
    assert ev is not None and ev.regime == "unavailable" and "disabled" in ev.inputs["reason"]
    assert off.update(10**9 + 1) is None
    assert off.gate("long").passed and off.overlay("short").entries_allowed
    no_gold = MacroTracker(P)
    no_gold.feed([], candles(btc))
    no_gold.update(10**9)
    assert no_gold.context.reason == "no gold candles"
    fresh = MacroTracker(P)
    fresh.update(0)
    assert fresh.context.reason == "no gold or btc candles"


def test_direct_pair_supplies_the_ratio_return():
    gold, btc = segments((55, 50, 100))
    direct = list(np.linspace(0.5, 0.6, 100))
    p = ProfileSettings(use_direct_gold_btc_pair=True)
    t = MacroTracker(p)
    t.feed(candles(gold), candles(btc), candles(direct))
    t.update(100 * H4)
    assert t.context.ratio_source == "direct"
    assert t.context.gold_btc_ratio_return == pytest.approx(direct[-1] / direct[-15] - 1.0)
    lagging = MacroTracker(p)  # the direct market lacks the current candle: synthetic, and it says so
    lagging.feed(candles(gold), candles(btc), candles(direct[:-1]))
    lagging.update(100 * H4)
    assert lagging.context.ratio_source == "synthetic"
    assert lagging.context.gold_btc_ratio_return == pytest.approx(
        (gold[-1] / btc[-1]) / (gold[-15] / btc[-15]) - 1.0)


def test_lower_timeframe_is_aggregated():
    gold, btc = segments((60, 45, 100))
    h1 = ProfileSettings(gold_timeframe="1h")
    by_hour = MacroTracker(h1)
    by_hour.feed(candles(gold, 3_600_000), candles(btc, 3_600_000))
    by_hour.update(100 * 3_600_000)
    five = MacroTracker(h1, source_timeframe="5m")
    for g, b in zip(candles(gold, 3_600_000), candles(btc, 3_600_000)):  # 12 flat 5m candles per hour
        five.feed([Candle(g.ts_ms + k * 300_000, g.close, g.close, g.close, g.close, 0.0) for k in range(12)],
                  [Candle(b.ts_ms + k * 300_000, b.close, b.close, b.close, b.close, 0.0) for k in range(12)])
    five.update(100 * 3_600_000)
    assert five.candles == 100 and five.context.gold_rsi == pytest.approx(by_hour.context.gold_rsi, abs=1e-9)
    with pytest.raises(ValueError, match="not aligned"):
        MacroTracker(P).feed([Candle(3_600_000, 1, 1, 1, 1, 0)], [])


def test_fetch_pacing():
    gold, btc = segments((50, 50, 10))
    t = MacroTracker(P)  # 4h, ttl 900 s
    now = 10 * H4 + 60_000  # candle 9 (opened 9 x 4h) closed a minute ago
    assert t.fetch_due(now)
    t.note_fetch(now)
    assert not t.fetch_due(now + 899_000)  # failed fetch: retry after the TTL
    assert t.fetch_due(now + 900_000)
    t.feed(candles(gold), candles(btc))
    assert not t.fetch_due(now + 900_000)  # up to date
    assert t.fetch_due(11 * H4 + 1)  # the next candle closed: fetch at once
