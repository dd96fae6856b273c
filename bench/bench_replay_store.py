"""Replay wall and CPU time with the state store inline (the default) or on aiosqlite's thread.

Run:  .venv/bin/python bench/bench_replay_store.py [--repeat 2] [--steps 0]

Replays the bundled demo (ten perps, the folder's default window; `--steps N` stops after N
candles) in this process through `engine.runtime.replay.run_replay`, alternating
`inline_store=True` / `False`, `--repeat` times each, and prints the best wall and CPU time of
each, the ratio, the aiosqlite thread hops saved (statements the store ran) and the machine.
The results must be identical (tests/test_replay_inline_store.py proves it); this checks the
trades and the end equity of every run agree. The machine is often shared: compare the runs
of one invocation, not across days.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.runtime.replay import run_replay  # noqa: E402
from engine.settings import Settings  # noqa: E402


async def _once(inline: bool, steps: int | None) -> tuple[float, float, int, str]:
    settings = Settings.defaults()
    wall, cpu = time.perf_counter(), time.process_time()
    summary = await run_replay(settings, max_steps=steps, inline_store=inline)
    return time.perf_counter() - wall, time.process_time() - cpu, summary.trades, str(summary.end_equity)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="stop after N candles (0: the whole window)")
    args = ap.parse_args(argv)
    steps = args.steps or None
    runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    results = set()
    for _ in range(max(1, args.repeat)):
        for inline in (True, False):
            wall, cpu, trades, equity = asyncio.run(_once(inline, steps))
            runs[inline].append((wall, cpu))
            results.add((trades, equity))
            print(f"  {'inline' if inline else 'thread'}: wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
                  f"trades {trades}  end equity {equity}")
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in runs.items()}
    print(f"state store inline : wall {best[True][0]:7.2f} s   cpu {best[True][1]:7.2f} s")
    print(f"state store thread : wall {best[False][0]:7.2f} s   cpu {best[False][1]:7.2f} s")
    print(f"thread / inline    : wall {best[False][0] / best[True][0]:.2f}x   cpu {best[False][1] / best[True][1]:.2f}x")
    print(f"identical results  : {'yes' if len(results) == 1 else 'NO: ' + repr(sorted(results))}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {platform.machine()}, "
          f"Python {platform.python_version()}")
    return 0 if len(results) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
