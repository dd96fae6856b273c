"""Entry-gate settings in effect (issue 18): each changes decisions on real recorded candles.

The bundled perp-2024 demo candles of three coins (and BTC as the benchmark) go through the
vectorised feature pipeline and `evaluate`, both sides, once with the defaults and once with
one setting changed; the decisions (validity, score, and every gate's value, threshold and
verdict) must differ somewhere. A setting whose value no longer reaches a decision fails.
"""

from __future__ import annotations

from functools import cache

import pytest

from engine.market.candles import Aggregator, candles_to_arrays, timeframe_ms
from engine.market.feeds import FileFeed
from engine.runtime.replay import DEMO_DATA
from engine.strategy import evaluate
from engine.strategy.features import features_at, features_from_history
from settings_effect import settings

SYMBOLS = ["ETH/USDT:USDT", "SOL/USDT:USDT", "AVAX/USDT:USDT"]
BTC = "BTC/USDT:USDT"
EVERY = 3  # every third candle: about 2000 decisions per side


@cache
def _history(timeframe: str = "5m"):
    """The recorded 5m candles at the trigger timeframe (aggregated as the engine does)."""
    feed = FileFeed.from_directory(DEMO_DATA, timeframe="5m", symbols=[*SYMBOLS, BTC])
    if timeframe == "5m":
        return {s: candles_to_arrays(feed.history(s)) for s in feed.symbols}
    out = {}
    for s in feed.symbols:
        agg = Aggregator("5m", timeframe)
        out[s] = candles_to_arrays([c for c5 in feed.history(s) for c in agg.update(c5)])
    return out


def _signature(key: str | None = None, value: str | None = None, base: tuple[tuple[str, str], ...] = ()) -> tuple:
    s = settings(**(dict(base) | ({} if key is None else {key: value})))
    out = []
    for side in ("long", "short"):
        p = s.side(side)
        frames = features_from_history(_history(p.ema_trigger_timeframe), p, BTC)
        bench = frames[BTC]
        bench_row = {int(t): i for i, t in enumerate(bench["ts_ms"])}
        step = timeframe_ms(p.ema_trigger_timeframe)
        for symbol in SYMBOLS:
            frame = frames[symbol]
            ts = frame["ts_ms"].to_numpy()
            for i in range(0, len(frame), EVERY):
                f = features_at(frame, i)
                j = bench_row.get(int(ts[i]))
                if f is None or j is None:
                    continue
                d = evaluate(side, f, features_at(bench, j), p)  # type: ignore[arg-type]
                out.append((side, symbol, int(ts[i]) + step, d.entry_valid, d.add_valid, round(d.score, 9),
                            tuple((g.name, g.value, g.threshold, g.passed) for g in d.gates)))
    return tuple(out)


@cache
def _defaults() -> tuple:
    return _signature()


@pytest.mark.parametrize(("key", "value"), [
    ("EMA_VOLUME_MIN_RATIO", "1.6"),
    ("EMA_VOLUME_SPIKE_FILTER_ENABLED", "false"),
    ("EMA_VOLUME_SPIKE_MIN_RATIO", "1.2"),
    ("EMA_VOLUME_ADVERSE_SPIKE_MIN_RATIO", "1.2"),
    ("EMA_VOLUME_PROFILE_VALUE_AREA", "0.4"),
    ("EMA_BTC_LONG_MIN_RETURN_30M", "0.001"),
    ("EMA_BTC_SHORT_MAX_RETURN_30M", "-0.001"),
    ("EMA_PULLBACK_RECOVERY_MAX_CROSS_AGE_MINUTES", "30"),
    ("ENTRY_MACRO_INVALID_PENALTY", "0.5"),
    ("EMA_CHOP_MAX", "50"),
    ("ENTRY_BTC_INVALID_PENALTY", "0.05"),
    ("ENTRY_BTC_RETURN_PENALTY_MULTIPLIER", "10"),
    ("ENTRY_CHOP_INVALID_PENALTY", "0.05"),
    ("ENTRY_MARKET_STRUCTURE_INVALID_PENALTY", "0.05"),
    ("ENTRY_PULLBACK_INVALID_PENALTY", "0.05"),
    ("ENTRY_TRIGGER_INVALID_PENALTY", "0.05"),
    ("ENTRY_VOLUME_INVALID_PENALTY", "0.05"),
    ("ENTRY_MIN_RS30_ABS", "0.0012"),
    ("ENTRY_MIN_RS60_ABS", "0.0025"),
    ("ENTRY_RS30_SHORTFALL_PENALTY_MULTIPLIER", "50"),
    ("ENTRY_RS60_SHORTFALL_PENALTY_MULTIPLIER", "30"),
    ("EMA_MACRO_TIMEFRAME", "4h"),
])
def test_an_entry_gate_setting_changes_decisions_on_recorded_candles(key, value):
    changed = _signature(key, value)
    base = _defaults()
    assert len(changed) == len(base) > 1000
    differ = sum(1 for a, b in zip(base, changed) if a != b)
    assert differ > 0, f"{key}={value} changed no decision of {len(base)}"


def test_the_trigger_timeframe_changes_decisions_on_recorded_candles():
    """EMA_TRIGGER_TIMEFRAME=15m (or TIMEFRAME=15m): the trigger EMAs run on 15-minute candles
    aggregated from the 5-minute ones (the pullback layer on 15m too, a whole multiple)."""
    base = (("EMA_PULLBACK_TIMEFRAME", "15m"),)
    five, fifteen = _signature(base=base), _signature("EMA_TRIGGER_TIMEFRAME", "15m", base)
    assert len(fifteen) > 500 and five != fifteen
    assert _signature("TIMEFRAME", "15m", base) == fifteen  # the reference bot's key says the same
