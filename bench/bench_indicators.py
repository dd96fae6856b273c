"""Indicator benchmark: live (incremental) cost per cycle and history (vectorised) throughput.

Run: ``python bench/bench_indicators.py [--symbols 300] [--rounds 60]``

Live: ``--symbols`` symbols (the bundled 5m series reused round-robin), each with the full
5m indicator set of the strategy, warmed up on history; then one new closed candle per
symbol per cycle. Printed: cost of the whole set per symbol and per cycle, and per
indicator. History: every vectorised function over all bundled 5m files, in candles/s.
Figures only -- nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.market import indicators as ind  # noqa: E402
from engine.market.candles import Candle, CandleStore, candles_to_arrays  # noqa: E402
from engine.market.feeds import parse_recorded_filename, read_candles_csv  # noqa: E402

DATA = ROOT / "tests" / "fixtures" / "market_2018"  # the 2018 BTC-quoted set
M5 = 300_000

# the strategy's 5m indicator set with default settings (trigger and pullback share EMAs)
SET: dict[str, Callable[[], object]] = {
    "ema24 (120 min)": lambda: ind.Ema(24),
    "ema72 (360 min)": lambda: ind.Ema(72),
    "rsi14": lambda: ind.Rsi(14),
    "atr_rate14": lambda: ind.AtrRate(14),
    "chop14": lambda: ind.Choppiness(14),
    "volume_ratio 5/20": lambda: ind.VolumeRatio(5, 20),
    "volume_spike 5": lambda: ind.VolumeSpike(5),
    "volume_profile 60x12": lambda: ind.VolumeProfile(60, 12, 0.7),
    "return 30m": lambda: ind.Return(6, M5),
    "rs30": lambda: ind.RelativeStrength(6, M5),
    "rs60": lambda: ind.RelativeStrength(12, M5),
}


def machine() -> str:
    return (
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"numpy {np.__version__}, pandas {pd.__version__}\n"
        f"{platform.platform()} {platform.machine()} {platform.processor() or ''}".rstrip()
        + f", os.cpu_count()={os.cpu_count()}"
    )


def load_series() -> dict[str, list[Candle]]:
    series = {}
    for path in sorted(DATA.glob("*.csv")):
        info = parse_recorded_filename(path)
        if info and info.timeframe == "5m" and info.kind in ("spot", "futures"):
            series[info.symbol] = read_candles_csv(path)
    return series


def bench_live(series: dict[str, list[Candle]], n_symbols: int, rounds: int, warmup: int) -> None:
    names = sorted(series, key=lambda s: -len(series[s]))
    long_enough = [s for s in names if len(series[s]) >= warmup + rounds]
    feeds = [series[long_enough[i % len(long_enough)]] for i in range(n_symbols)]
    sets = [{k: make() for k, make in SET.items()} for _ in range(n_symbols)]
    stores = [CandleStore(f"S{i}", "5m", capacity=2048) for i in range(n_symbols)]
    for i, (candles, indicators) in enumerate(zip(feeds, sets)):
        hist = candles[:warmup]
        stores[i].ingest(hist, hist[-1].ts_ms + M5)
        for c in hist:
            for obj in indicators.values():
                obj.update(c)  # type: ignore[attr-defined]

    # even cycles time the whole set symbol by symbol, odd cycles time each indicator
    # across all symbols; either way every object sees each new candle exactly once
    per_ind = {k: 0.0 for k in SET}
    cycles: list[float] = []
    ingest = 0.0
    for r in range(rounds):
        new = [candles[warmup + r] for candles in feeds]
        t0 = time.perf_counter()
        for store, c in zip(stores, new):
            store.ingest((c,), c.ts_ms + M5)
        ingest += time.perf_counter() - t0
        if r % 2 == 0:
            t1 = time.perf_counter()
            for indicators, c in zip(sets, new):
                for obj in indicators.values():
                    obj.update(c)  # type: ignore[attr-defined]
            cycles.append(time.perf_counter() - t1)
        else:
            for key in SET:
                t = time.perf_counter()
                for indicators, c in zip(sets, new):
                    indicators[key].update(c)  # type: ignore[attr-defined]
                per_ind[key] += time.perf_counter() - t
    split_rounds = rounds // 2

    mean = statistics.fmean(cycles)
    print(f"\nLIVE: {n_symbols} symbols x {len(SET)} indicators, one new closed 5m candle per "
          f"symbol per cycle ({len(cycles)} timed cycles, warm-up {warmup} candles)")
    print(f"  full set per cycle : mean {mean * 1e3:8.2f} ms   median "
          f"{statistics.median(cycles) * 1e3:8.2f} ms   max {max(cycles) * 1e3:8.2f} ms")
    print(f"  full set per symbol: {mean / n_symbols * 1e6:8.2f} us")
    print(f"  CandleStore.ingest : {ingest / rounds / n_symbols * 1e6:8.2f} us per symbol")
    print("  per indicator (us per symbol per candle):")
    for key, total in per_ind.items():
        print(f"    {key:<22}{total / split_rounds / n_symbols * 1e6:8.2f}")
    fast, slow = ind.Ema(48), ind.Ema(120)
    t = time.perf_counter()
    for c in feeds[0][:5000]:
        fast.update(c)
        slow.update(c)
    print(f"  macro 1h EMA48+EMA120 (once an hour): {(time.perf_counter() - t) / 5000 * 1e6:.2f} "
          "us per symbol per hour")


def bench_history(series: dict[str, list[Candle]], repeat: int) -> None:
    arrays = [candles_to_arrays(c) for c in series.values()]
    total = sum(len(a.close) for a in arrays)
    fns: dict[str, Callable] = {
        "ema24": lambda a: ind.ema(a.close, 24),
        "ema72": lambda a: ind.ema(a.close, 72),
        "rsi14": lambda a: ind.rsi(a.close, 14),
        "atr14": lambda a: ind.atr(a.high, a.low, a.close, 14),
        "atr_rate14": lambda a: ind.atr_rate(a.high, a.low, a.close, 14),
        "chop14": lambda a: ind.choppiness(a.high, a.low, a.close, 14),
        "volume_ratio 5/20": lambda a: ind.volume_ratio(a.volume, 5, 20),
        "volume_spike 5": lambda a: ind.volume_spike(a.volume, 5),
        "volume_profile 60x12": lambda a: ind.volume_profile(a.high, a.low, a.volume, 60, 12, 0.7),
        "return 30m": lambda a: ind.candle_return(a.close, 6, a.ts, M5),
        "rs60 (BTC-quoted)": lambda a: ind.relative_strength(a.close, 12, a.ts, timeframe_ms=M5),
    }
    print(f"\nHISTORY: vectorised over {len(arrays)} bundled 5m files, {total} candles "
          f"(best of {repeat})")
    overall = 0.0
    for key, fn in fns.items():
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            for a in arrays:
                fn(a)
            best = min(best, time.perf_counter() - t)
        overall += best
        print(f"    {key:<22}{total / best:14,.0f} candles/s   ({best * 1e3:7.2f} ms)")
    print(f"    {'all of the above':<22}{total / overall:14,.0f} candles/s   ({overall * 1e3:7.2f} ms)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--symbols", type=int, default=300)
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    print("CROT indicator benchmark")
    print(machine())
    series = load_series()
    bench_live(series, args.symbols, args.rounds, args.warmup)
    bench_history(series, args.repeat)


if __name__ == "__main__":
    main()
