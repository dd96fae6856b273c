"""Chaos matrix: every fault scenario x several seeds, replayed on the bundled real candles.

Prints, per scenario and seed: faults injected (under the retry layer / at the engine's
boundary), how many reached the engine, restarts, errors reported, order calls checked one by
one, calm-step checks, trades, steps that ended with a position unprotected (and how many of
those past the bounded close-out time), and whether every invariant held. Run:

    python bench/chaos_matrix.py [--seeds 3] [--steps 2600]
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

from engine.runtime.chaos import SCENARIOS, run_scenario  # noqa: E402
from engine.runtime.replay import DEMO_SYMBOLS  # noqa: E402
from engine.settings import Settings  # noqa: E402


async def main(seeds: int, steps: int) -> int:
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"{'scenario':<28} {'seed':>4} {'inner':>6} {'edge':>5} {'reached':>7} {'restarts':>8} {'calls':>6} "
          f"{'checks':>6} {'trades':>6} {'naked':>5} {'late':>4} {'secs':>5}  result")
    failed = 0
    tot = {"inner": 0, "edge": 0, "reached": 0, "naked": 0, "late": 0, "down": 0, "survived_faults": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SCENARIOS:
            for seed in range(1, seeds + 1):
                t0 = time.perf_counter()
                r = await run_scenario(Settings.defaults(), name, seed=seed, steps=steps, symbols=DEMO_SYMBOLS,
                                       db_path=Path(tmp) / f"{name}-{seed}.sqlite".replace(" ", "_").replace(",", ""))
                ok = "survived" if r.survived else "FAILED: " + r.violations[0]
                failed += not r.survived
                tot["inner"] += r.faults_inner
                tot["edge"] += r.faults_outer
                tot["reached"] += r.reached_engine
                tot["naked"] += r.unprotected_steps
                tot["late"] += r.beyond_bound
                tot["down"] += r.down_steps
                tot["survived_faults"] += r.faults if r.survived else 0
                print(f"{name:<28} {seed:>4} {r.faults_inner:>6} {r.faults_outer:>5} {r.reached_engine:>7} "
                      f"{r.restarts:>8} {r.order_calls:>6} {r.checks:>6} {r.trades:>6} {r.unprotected_steps:>5} "
                      f"{r.beyond_bound:>4} {time.perf_counter() - t0:>5.1f}  {ok}", flush=True)
    runs = len(SCENARIOS) * seeds
    print(f"{runs - failed}/{runs} runs survived")
    print(f"faults injected: {tot['inner'] + tot['edge']} ({tot['inner']} under the retry layer, {tot['edge']} at "
          f"the engine's boundary); reached the engine: {tot['reached']}; in surviving runs: {tot['survived_faults']}")
    print(f"steps ending with a position unprotected: {tot['naked']} (past the bounded close-out time: "
          f"{tot['late']}); steps a killed process was down with a fill unprotected: {tot['down']}")
    return 1 if failed else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2600)
    a = ap.parse_args()
    import logging
    logging.disable(logging.CRITICAL)  # retries and alerts are expected here; the matrix is the output
    raise SystemExit(asyncio.run(main(a.seeds, a.steps)))
