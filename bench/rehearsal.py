"""Paper rehearsal, long: the real live loop on an accelerated real clock against the loopback
HTX venue (ccxt's real client), real USDT-M perp candles, faults injected (tests/rehearsal.py).

Prints: polls, entries, faults injected, protection problems after polls, duplicated orders,
decisions per closed candle, and the fill-to-stop latency (venue time from the first fill of a
new position to its stop on the book, with the polling fallback: the stop goes out at the
first poll after the fill), with the machine.

    python bench/rehearsal.py [--candles 600] [--factor 1500] [--seeds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from rehearsal import rehearse  # noqa: E402


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def main(candles: int, factor: float, seeds: int) -> int:
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"rehearsal: {candles} candles x {seeds} seeds, clock x{factor:g}, poll interval 3 s (venue time)")
    latencies: list[float] = []
    bad = 0
    for seed in range(1, seeds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            run = await rehearse(Path(tmp), candles=candles, factor=factor, seed=seed, start=1900)
        latencies += run.fill_to_stop_ms
        per = run.decided_per_candle[1:-1]
        print(f"seed {seed}: polls {run.steps}, wall {run.wall_s:.1f} s, entries placed "
              f"{len(run.orders('placed', 'entry'))}, decisions/candle min {min(per) if per else 0} "
              f"median {statistics.median(per) if per else 0}, problems after polls {len(run.problems)}, "
              f"duplicated orders {run.duplicates + run.executed_twice}, expired ids re-sent {run.reused_ids}, audit decision rows {run.audit_decision_rows}")
        print(f"        faults reaching the venue: {run.faults}")
        bad += len(run.problems) + run.duplicates + run.executed_twice
    print(f"fill-to-stop (venue ms, polling fallback), n={len(latencies)}: p50 {pct(latencies, 0.5):.0f}, "
          f"p99 {pct(latencies, 0.99):.0f}, max {max(latencies, default=float('nan')):.0f}")
    return 1 if bad else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=600)
    ap.add_argument("--factor", type=float, default=1500.0)
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    raise SystemExit(asyncio.run(main(a.candles, a.factor, a.seeds)))
