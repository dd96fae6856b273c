"""Chaos matrix: every fault scenario x several seeds, replayed on the bundled real candles.

Prints, per scenario and seed: faults injected, restarts, errors reported, calm-step checks,
trades, and whether every invariant held (stop on every position, no duplicate client id,
no coin with both sides, close orders within the position). Run:

    python bench/chaos_matrix.py [--seeds 3] [--steps 1900]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runtime.chaos import SCENARIOS, run_chaos  # noqa: E402
from engine.settings import Settings  # noqa: E402


async def main(seeds: int, steps: int) -> int:
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"{'scenario':<20} {'seed':>4} {'faults':>7} {'restarts':>8} {'errors':>7} {'checks':>7} "
          f"{'trades':>6} {'secs':>6}  result")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, (rates, kills) in SCENARIOS.items():
            for seed in range(1, seeds + 1):
                t0 = time.perf_counter()
                r = await run_chaos(Settings.defaults(), name=name, rates=rates, seed=seed,
                                    db_path=Path(tmp) / f"{name}-{seed}.sqlite".replace(" ", "_"),
                                    kills=kills, steps=steps)
                ok = "survived" if r.survived else "FAILED: " + r.violations[0]
                failed += not r.survived
                print(f"{name:<20} {seed:>4} {r.faults:>7} {r.restarts:>8} {r.errors:>7} {r.checks:>7} "
                      f"{r.trades:>6} {time.perf_counter() - t0:>6.1f}  {ok}", flush=True)
    print(f"{len(SCENARIOS) * seeds - failed}/{len(SCENARIOS) * seeds} runs survived")
    return 1 if failed else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1900)
    a = ap.parse_args()
    import logging
    logging.disable(logging.WARNING)  # retries are expected here; the matrix is the output
    raise SystemExit(asyncio.run(main(a.seeds, a.steps)))
