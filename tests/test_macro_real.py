"""Macro tracker over real recorded candles.

The bundled data has no gold proxy, so two real BTC-quoted series stand in for the two legs:
ETH/BTC as "gold" and LTC/BTC as "BTC" (their ratio ETH/LTC plays gold/BTC), 5m candles
aggregated by the tracker to GOLD_TIMEFRAME=1h (479 complete hours, 2018-01-10..30). RSI values
are checked against a plain Wilder loop written here, on hourly closes picked by hand (the
close of each hour's last 5m candle), and pinned at a few points.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from engine.macro import MacroInputs, MacroTracker, classify, decide
from engine.market.candles import Candle
from engine.market.feeds import read_candles_csv
from engine.settings import ProfileSettings

DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"  # the 2018 BTC-quoted set (test data)
HOUR, M5 = 3_600_000, 300_000
P = ProfileSettings(gold_timeframe="1h")


def hourly_closes(cs: list[Candle]) -> list[tuple[int, float]]:
    by_ts = {c.ts_ms: c for c in cs}
    t = (cs[0].ts_ms // HOUR + 1) * HOUR  # first full hour
    out = []
    while t + HOUR <= cs[-1].ts_ms + M5:
        if all(t + k * M5 in by_ts for k in range(12)):
            out.append((t, by_ts[t + HOUR - M5].close))
        t += HOUR
    return out


def wilder_rsi(closes: list[float], n: int = 14) -> list[float | None]:
    gains = [max(b - a, 0.0) for a, b in zip(closes, closes[1:])]
    losses = [max(a - b, 0.0) for a, b in zip(closes, closes[1:])]
    ag, al = sum(gains[:n]) / n, sum(losses[:n]) / n
    out: list[float | None] = [None] * n + [100 * ag / (ag + al)]
    for g, lo in zip(gains[n:], losses[n:]):
        ag, al = (ag * (n - 1) + g) / n, (al * (n - 1) + lo) / n
        out.append(100 * ag / (ag + al))
    return out


@pytest.fixture(scope="module")
def history():
    gold = read_candles_csv(DATA / "ETH_BTC-5m.csv")
    btc = read_candles_csv(DATA / "LTC_BTC-5m.csv")
    tracker = MacroTracker(P, profile="long", gold_symbol="ETH/BTC", btc_symbol="LTC/BTC", source_timeframe="5m")
    contexts, events = {}, []
    btc_at = {c.ts_ms: c for c in btc}
    for g in gold:
        tracker.feed([g], [btc_at[g.ts_ms]])
        now = g.ts_ms + M5
        if now % HOUR == 0:
            ev = tracker.update(now)
            contexts[now - HOUR] = tracker.context  # keyed by the hour's open time
            if ev is not None:
                events.append(ev)
    return gold, btc, contexts, events


def test_rsi_matches_a_hand_wilder_loop(history):
    gold, btc, contexts, _ = history
    hg, hb = hourly_closes(gold), hourly_closes(btc)
    assert len(hg) == len(hb) == 479 and [t for t, _ in hg] == [t for t, _ in hb]
    rg, rb = wilder_rsi([c for _, c in hg]), wilder_rsi([c for _, c in hb])
    for i in (79, 150, 300, 478):
        ctx = contexts[hg[i][0]]
        assert ctx.gold_rsi == pytest.approx(rg[i], abs=1e-9)
        assert ctx.btc_rsi == pytest.approx(rb[i], abs=1e-9)
    # pinned (2018-01-13 13:00 UTC and the last hour)
    first = contexts[1515844800000]
    assert (round(first.gold_rsi, 3), round(first.btc_rsi, 3)) == (67.687, 56.915)
    assert first.regime == "normal" and first.candles == 80  # spread 10.8 < 15
    last = contexts[1517281200000]
    assert (round(last.gold_rsi, 3), round(last.btc_rsi, 3)) == (42.259, 45.763)


def test_plausible_regime_history(history):
    gold, btc, contexts, events = history
    counts = Counter(c.regime for c in contexts.values())
    assert counts["unavailable"] == 1 + 79  # the partial first hour, then 79 warm-up hours (min 80)
    assert {"normal", "risk_off", "panic"} <= set(counts)
    assert counts["normal"] > counts["risk_off"] > 0 and counts["panic"] > 0
    assert len(events) < len(contexts) / 4  # a regime lasts hours, it does not flip every candle
    assert events[0].previous == "" and all(e.previous != e.regime for e in events)
    for e in events[1:]:
        inp = e.inputs
        assert decide(inp["gold_rsi"], inp["btc_rsi"], inp["gold_btc_ratio_return"], P).regime == e.regime
        if e.regime == "risk_off":
            assert inp["rsi_spread"] >= 15.0 or (inp["gold_rsi"] >= 60 and inp["btc_rsi"] <= 40)
        if e.regime == "panic":
            assert inp["gold_rsi"] <= 40 and inp["btc_rsi"] <= 40


def test_vectorised_classification_agrees_on_real_data(history):
    gold, btc, contexts, _ = history
    hg, hb = hourly_closes(gold), hourly_closes(btc)
    for i in (79, 200, 478):
        ctx = contexts[hg[i][0]]
        full = classify(MacroInputs([c for _, c in hg[: i + 1]], [c for _, c in hb[: i + 1]]), P)
        assert (full.regime, full.reason) == (ctx.regime, ctx.reason)
        assert full.direction_score == pytest.approx(ctx.direction_score, abs=1e-12)
