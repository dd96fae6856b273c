"""Cost of loading a run's SQLite audit record for `crot analyze`: the typed signal rows
(``signals_frame``, what ``load_run`` reads) against the schema-1 ``audit_signals`` view's JSON.

Run: ``python bench/bench_analyze_load.py [--run DIR_OR_DB] [--rounds 1]``

Without ``--run`` the demo replay is run first into a temporary folder (``crot replay --out
DIR``, about a minute). Printed: the machine, the record's size, and per path the best of
``--rounds`` wall-clock load times (the two records are also checked to be equal).
Figures only -- nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.analysis.records import _load_sqlite  # noqa: E402
from engine.store.audit_schema import DB_NAME  # noqa: E402


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine() -> str:
    import pandas as pd

    return (f"python {platform.python_version()} ({platform.python_implementation()}), pandas {pd.__version__}, "
            f"sqlite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs ({cpu_model()}), "
            f"{platform.platform()} {platform.machine()}")


def demo_record(out: Path) -> Path:
    cmd = [sys.executable, "-m", "engine.cli", "replay", "--quiet", "--no-plots", "--out", str(out)]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    print(f"demo replay written to {out} in {time.perf_counter() - t:.1f} s ({' '.join(cmd[2:])})")
    return out / DB_NAME


def same_record(a, b) -> bool:
    import pandas as pd

    if a.gates != b.gates or a.gate_kinds != b.gate_kinds:
        return False
    for name in ("signals", "trades", "fills", "cycles", "diagnostics", "account", "macro", "external"):
        fa, fb = getattr(a, name), getattr(b, name)
        try:
            pd.testing.assert_frame_equal(fa, fb, check_exact=True)
        except AssertionError:
            return False
    return True


def best(fn, rounds: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a run's data folder or audit SQLite (default: run the demo replay)")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.run:
            db = Path(args.run)
            db = db / DB_NAME if db.is_dir() else db
        else:
            db = demo_record(Path(tmp) / "demo")
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        rows = con.execute("SELECT count(*) FROM audit_signal_rows").fetchone()[0]
        cols = len(con.execute("PRAGMA table_info(audit_signal_rows)").fetchall())
        con.close()
        print(f"record: {db} ({db.stat().st_size / 1e6:.1f} MB, {rows} signal rows x {cols} columns)")
        t_fast, fast = best(lambda: _load_sqlite(db), args.rounds)
        print(f"load_run (signals_frame, typed rows):  {t_fast:6.1f} s")
        t_slow, slow = best(lambda: _load_sqlite(db, fast=False), args.rounds)
        print(f"schema-1 view + JSON expansion (old):   {t_slow:6.1f} s")
        print(f"speed-up: {t_slow / t_fast:.1f}x; signals {fast.signals.shape}, gates {len(fast.gates)}")
        print("the two records are equal (columns, dtypes, cells, gate order and kinds): "
              f"{same_record(fast, slow)}")


if __name__ == "__main__":
    main()
