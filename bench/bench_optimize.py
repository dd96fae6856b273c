"""Throughput of `crot optimize run`: trials per minute with 1 worker and with N local workers.

Runs the same small study twice on the bundled demo (fresh SQLite storages in a temporary
folder): one-day training and test windows, the symbols given. Prints wall time, trials per
minute and the speed-up, with the machine. Other load on the machine lowers the figures.

    python bench/bench_optimize.py [--trials 8] [--jobs N] [--symbols SOL]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.research.cli import main  # noqa: E402

SPACE = """\
[study]
timerange = "20240802-20240804"
folds = 1
train_days = 1
test_days = 1
min_trades = 0

[params]
HARD_STOP_LOSS_PCT = {{ low = 0.01, high = 0.03, step = 0.005 }}
EMA_EXIT_RUNNER_TRAILING_PULLBACK = {{ low = 0.005, high = 0.02 }}
"""


def run(folder: Path, jobs: int, trials: int, symbols: str) -> float:
    (folder / "bench.toml").write_text(SPACE.format())
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["optimize", "run", str(folder / "bench.toml"), "--out", str(folder / "out"), "--jobs", str(jobs),
                     "--trials", str(trials), "--symbols", symbols, "--env", str(folder / "none.env"), "--seed", "1"])
    if code:
        raise SystemExit(f"crot optimize run failed (exit {code})")
    return time.perf_counter() - t0


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--symbols", default="SOL")
    a = ap.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"study: {a.trials} trials, each a 1-day training and a 1-day test replay of {a.symbols} (demo data)")
    results = {}
    for jobs in sorted({1, a.jobs}):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "none.env").write_text("")
            secs = run(folder, jobs, a.trials, a.symbols)
        results[jobs] = secs
        print(f"--jobs {jobs}: {secs:6.1f} s wall, {a.trials / secs * 60:5.1f} trials/min")
    if len(results) > 1:
        print(f"speed-up with {a.jobs} workers: {results[1] / results[a.jobs]:.2f}x")


if __name__ == "__main__":
    main_()
