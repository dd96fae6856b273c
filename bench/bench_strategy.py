"""Benchmark of the strategy layer: one new closed candle for 300 symbols, and history.

Run:  .venv/bin/python bench/bench_strategy.py [--symbols 300] [--steps 60]

Live-cycle figure: 300 symbols are built from the ten bundled BTC-quoted 5m series (symbol k
replays series k % 10 shifted by 37 * (k // 10) candles, prices scaled, all on one common
time grid); the engine is warmed with 1800 candles (past the 120-hour macro EMA warm-up),
then for each of ``--steps`` new candles we time:
  features  = on_candle for every symbol + features_all (one batched value-area pass),
  evaluate  = evaluate() of every warm symbol for one side,
  select    = select_entries() of that side,
and report the median and 95th percentile over the steps of the thread's CPU time (what one
core spends; robust on a shared machine) and of the wall time (which also holds time spent
descheduled, plus the maximum). Pauses of
the cyclic garbage collector show in the maximum; ``--gc-freeze`` moves the warm-up objects
out of its reach, as a long-running process can do after start-up.
Target from the issue: features + evaluate + selection for 300 symbols under 20 ms.

History figure: features_from_history over the ten full series (candles per second), and
evaluate() throughput over the resulting rows.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.market import Candle, read_candles_csv  # noqa: E402
from engine.market.feeds import parse_recorded_filename  # noqa: E402
from engine.settings import ProfileSettings  # noqa: E402
from engine.strategy import (  # noqa: E402
    EntryContext,
    FeatureEngine,
    evaluate,
    features_from_history,
    frame_to_features,
    select_entries,
)

DATA = ROOT / "tests" / "fixtures" / "market_2018"  # the 2018 BTC-quoted set
PHASES = ("features", "evaluate", "select", "one side", "both sides")
STEP_MS = 300_000
WARM = 1800


def load_series() -> dict[str, list[Candle]]:
    out = {}
    for path in sorted(DATA.glob("*_BTC-5m.csv")):
        info = parse_recorded_filename(path)
        out[info.symbol] = read_candles_csv(path)
    return out


def build_universe(series: dict[str, list[Candle]], n_symbols: int, length: int
                   ) -> dict[str, list[Candle]]:
    """n_symbols synthetic but realistic series on one grid (rows reused by position)."""
    bases = list(series.values())
    t0 = bases[0][0].ts_ms - bases[0][0].ts_ms % STEP_MS
    universe: dict[str, list[Candle]] = {}
    for k in range(n_symbols):
        src = bases[k % len(bases)]
        shift = 37 * (k // len(bases))
        scale = 1.0 + 0.001 * k
        rows = src[shift: shift + length]
        if len(rows) < length:
            raise SystemExit(f"series too short for {n_symbols} symbols x {length} candles")
        universe[f"S{k:03d}/BTC"] = [
            Candle(t0 + i * STEP_MS, c.open * scale, c.high * scale, c.low * scale,
                   c.close * scale, c.volume)
            for i, c in enumerate(rows)
        ]
    return universe


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def machine_info() -> str:
    try:
        load = " | load avg %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = ""
    return (f"platform {platform.platform()} | cpu {platform.processor() or platform.machine()}"
            f" | cpu_count {os.cpu_count()} | python {platform.python_version()}"
            f" | numpy {np.__version__} | pandas {pd.__version__}"
            f" | gc {'on' if gc.isenabled() else 'off'}{load}")


def bench_cycle(n_symbols: int, steps: int, freeze: bool = False) -> None:
    p = ProfileSettings()
    series = load_series()
    universe = build_universe(series, n_symbols, WARM + steps)
    names = list(universe)
    bench_symbol = names[0]  # exercise the relative-strength path with a real benchmark
    engine = FeatureEngine(p, benchmark_symbol=bench_symbol)
    t = time.perf_counter()
    for name in names:
        engine.on_candles(name, "5m", universe[name][:WARM])
    warm_s = time.perf_counter() - t
    engine.features_all()

    # per phase: wall time and this thread's CPU time (the CPU figure is what one core
    # spends; on a busy machine the wall figure also holds the time spent descheduled)
    wall: dict[str, list[float]] = {k: [] for k in PHASES}
    cpu: dict[str, list[float]] = {k: [] for k in PHASES}
    warm_counts = []
    chosen = 0
    gc.collect()
    if freeze:  # what a long-running process can do after start-up: older objects leave GC
        gc.freeze()
    clock_w, clock_c = time.perf_counter_ns, time.thread_time_ns
    for i in range(WARM, WARM + steps):
        ts = universe[names[0]][i].ts_ms
        now = ts + STEP_MS
        w0, c0 = clock_w(), clock_c()
        for name in names:
            engine.on_candle(name, "5m", universe[name][i])
        feats = engine.features_all(ts_ms=ts)
        btc = engine.benchmark()
        w1, c1 = clock_w(), clock_c()
        decs = [evaluate("long", f, btc, p) for f in feats.values()]
        w2, c2 = clock_w(), clock_c()
        sel = select_entries(decs, EntryContext(now_ms=now), p)
        w3, c3 = clock_w(), clock_c()
        decs_s = [evaluate("short", f, btc, p) for f in feats.values()]
        select_entries(decs_s, EntryContext(now_ms=now), p)
        w4, c4 = clock_w(), clock_c()
        for store, (a, b, c, d, e) in ((wall, (w0, w1, w2, w3, w4)), (cpu, (c0, c1, c2, c3, c4))):
            store["features"].append((b - a) / 1e6)
            store["evaluate"].append((c - b) / 1e6)
            store["select"].append((d - c) / 1e6)
            store["one side"].append((d - a) / 1e6)
            store["both sides"].append((e - a) / 1e6)
        warm_counts.append(len(feats))
        chosen += len(sel.chosen)

    print(f"\n== live cycle: {n_symbols} symbols, one new closed 5m candle, {steps} steps"
          f"{', gc.freeze() after warm-up' if freeze else ''} ==")
    print(f"warm-up: {WARM} candles x {n_symbols} symbols fed in {warm_s:.2f} s "
          f"({WARM * n_symbols / warm_s:,.0f} candles/s incl. 1h aggregation)")
    print(f"warm symbols per step: {min(warm_counts)}..{max(warm_counts)}; "
          f"long ladders chosen over all steps: {chosen}")
    print(f"{'phase':<46}{'CPU med':>9}{'CPU p95':>9}{'wall med':>10}{'wall p95':>10}"
          f"{'wall max':>10}   (ms)")
    labels = {
        "features": "features (on_candle x N + features_all)",
        "evaluate": "evaluate, one side",
        "select": "select_entries, one side",
        "one side": "TOTAL one side (target < 20 ms)",
        "both sides": "TOTAL both sides (shared features)",
    }
    for key in PHASES:
        c, w = cpu[key], wall[key]
        print(f"{labels[key]:<46}{statistics.median(c):>9.2f}{pct(c, 95):>9.2f}"
              f"{statistics.median(w):>10.2f}{pct(w, 95):>10.2f}{max(w):>10.2f}")
    med = statistics.median(cpu["one side"])
    print(f"per symbol, one side: {med * 1000 / n_symbols:.1f} us CPU; "
          f"target (< 20 ms on one core) met: {'yes' if med < 20.0 else 'NO'}")
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(f"peak RSS of this process (the strategy layer of {n_symbols} warm symbols, not the whole bot): "
          f"{peak_mb:.0f} MB")


def bench_history() -> None:
    p = ProfileSettings()
    series = load_series()
    n = sum(len(v) for v in series.values())
    t = time.perf_counter()
    frames = features_from_history(series, p)
    dt = time.perf_counter() - t
    print(f"\n== vectorised history: {len(series)} series, {n:,} candles ==")
    print(f"features_from_history: {dt:.3f} s = {n / dt:,.0f} candles/s")
    feats = [f for fr in frames.values() for f in frame_to_features(fr) if f is not None]
    t = time.perf_counter()
    for f in feats:
        evaluate("long", f, None, p)
    dt = time.perf_counter() - t
    print(f"evaluate over {len(feats):,} warm rows: {dt:.3f} s = {len(feats) / dt:,.0f} "
          f"decisions/s ({dt / len(feats) * 1e6:.1f} us each)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=300)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--gc-freeze", action="store_true",
                    help="gc.freeze() after the warm-up (fewer full-collection pauses)")
    args = ap.parse_args()
    print(machine_info())
    bench_cycle(args.symbols, args.steps, args.gc_freeze)
    bench_history()


if __name__ == "__main__":
    main()
