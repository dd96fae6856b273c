"""Record the strategy's signal decisions over recorded candles into an audit trail.

A signal-only replay: features for every closed candle (vectorised, same values as the live
FeatureEngine), the long and short ``evaluate`` at the candle times that are multiples of
``every`` candles (the same times for every symbol, so each time is a cross-section),
published as ``Decisions`` events to an ``AuditWriter``. No orders, no portfolio gates: it gives the
filter analysis (triple barrier, Fama-MacBeth) a record even where the full replay trades
little, and it is how the analysis is tested on real candles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from engine.market.candles import candles_to_arrays, timeframe_ms
from engine.market.feeds import FileFeed
from engine.runtime.events import Decisions, Event
from engine.settings import Settings
from engine.strategy.features import SymbolFeatures, features_at, features_from_history
from engine.strategy.signal import evaluate

__all__ = ["record_signals"]


def record_signals(
    settings: Settings,
    candles_dir: str | Path,
    publish: Callable[[Event], None],
    *,
    symbols: Sequence[str] | None = None,
    every: int = 1,
    benchmark: str | None = None,
    sides: Sequence[str] = ("long", "short"),
) -> int:
    """Publish one ``Decisions`` event per side and sampled candle time; returns the number of
    decisions. ``benchmark`` (a symbol of the data) feeds the BTC filter; without it the
    quote currency is the benchmark (BTC-quoted pairs: a neutral benchmark)."""
    if every < 1:
        raise ValueError("every must be >= 1")
    timeframe = settings.side("long").ema_trigger_timeframe
    feed = FileFeed.from_directory(candles_dir, timeframe=timeframe, symbols=symbols)
    history = {s: candles_to_arrays(feed.history(s)) for s in feed.symbols}
    step = timeframe_ms(timeframe)
    count = 0
    for side in sides:
        p = settings.side(side)  # type: ignore[arg-type]
        frames = features_from_history(history, p, benchmark)
        bench = frames.get(benchmark) if benchmark else None
        bench_row = ({int(t): i for i, t in enumerate(bench["ts_ms"])} if bench is not None else {})
        by_ts: dict[int, list] = {}
        for symbol, frame in frames.items():
            if symbol == benchmark:
                continue
            ts = frame["ts_ms"].to_numpy()
            for i in range(0, len(frame)):
                if int(ts[i]) % (every * step) != 0:
                    continue
                f = features_at(frame, i)
                if f is None:
                    continue
                by_ts.setdefault(int(ts[i]), []).append(f)
        for t in sorted(by_ts):
            if bench is not None:
                j = bench_row.get(t)
                btc = features_at(bench, j) if j is not None else None
            else:
                btc = SymbolFeatures.neutral_benchmark(t)
            decisions = tuple(evaluate(side, f, btc, p) for f in by_ts[t])  # type: ignore[arg-type]
            publish(Decisions(t + step, side, decisions, ()))
            count += len(decisions)
    return count

