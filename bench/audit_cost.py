"""Cost of the audit record: size on disk and replay time with and without it.

Run:  .venv/bin/python bench/audit_cost.py [--repeat 1] [--timerange 20240724-20240809] [--keep DIR]

Runs the bundled demo replay (ten perps, about 20 days; `crot replay` with its defaults) as a
whole process through the public entry point (``python -m engine.cli replay``), once with
``--no-record`` and once with ``--out DIR``, ``--repeat`` times each in alternation, in an
empty working directory (no ``.env``). With ``--out`` crot replay also draws its charts; they
are not the audit record, so both runs get ``--no-plots`` when crot replay has that option
(``--with-plots`` keeps them). Prints the record's size per file (rotated files summed per
stream) and per SQLite table, the wall and CPU times (best of the repeats), the ratio
record / no-record and the machine. Targets from issue 15: record at most 100 MB, ratio at
most 1.3. The machine is often shared: compare runs of one invocation, not across days.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE_TARGET = 100 * 1024 * 1024
RATIO_TARGET = 1.3


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def has_option(option: str, cwd: Path) -> bool:
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "replay", "--help"], cwd=cwd, env=_env(),
                          capture_output=True, text=True)
    return option in proc.stdout


def run(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one replay."""
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "replay", "--quiet", *args], cwd=cwd,
                          env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"replay {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def mb(n: int) -> str:
    return f"{n / 1024 / 1024:9.2f} MB"


def table_sizes(db: Path) -> list[tuple[str, int, int]]:
    """(table, rows, bytes) per audit table, from SQLite's dbstat when it has it."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        try:
            stat = dict(con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
        except sqlite3.Error:
            stat = {}
        out = []
        for n in names:
            rows = con.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0]
            size = int(stat.get(n, 0)) + sum(int(v) for k, v in stat.items() if k.startswith(f"{n}_"))
            out.append((n, rows, size))
        return out
    finally:
        con.close()


_ARCHIVED = re.compile(r"^(?P<stream>.+?)\.\d{8}T\d{12}Z(?:~\d+)?(?P<suffix>\.\w+)$")


def report_record(out: Path) -> int:
    files = sorted(p for p in out.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    print(f"record in {out}:")
    archived: dict[str, list[int]] = {}
    for p in files:
        m = _ARCHIVED.match(p.name)
        if m and p.parent.name.endswith("archive"):
            key = str(p.parent.relative_to(out) / f"{m['stream']}.*{m['suffix']}")
            archived.setdefault(key, []).append(p.stat().st_size)
            continue
        print(f"  {mb(p.stat().st_size)}  {p.relative_to(out)}")
        if p.suffix == ".sqlite":
            for name, rows, size in table_sizes(p):
                extra = f"{mb(size)}" if size else "         ?   "
                print(f"      {extra}  table {name}: {rows} rows")
    for key, sizes in sorted(archived.items()):
        print(f"  {mb(sum(sizes))}  {key} ({len(sizes)} rotated files)")
    print(f"  {mb(total)}  total ({len(files)} files)")
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs of each variant (best wall time is reported)")
    ap.add_argument("--timerange", help="passed to crot replay (default: the demo folder's own)")
    ap.add_argument("--keep", help="keep the last record in this folder (replaced if it exists)")
    ap.add_argument("--with-plots", action="store_true", help="let crot replay draw its charts too")
    args = ap.parse_args()
    if args.repeat < 1:
        sys.exit("error: --repeat must be at least 1")
    extra = ["--timerange", args.timerange] if args.timerange else []
    work = Path(tempfile.mkdtemp(prefix="crot-audit-bench-"))
    try:
        if not args.with_plots and has_option("--no-plots", work):
            extra.append("--no-plots")
        plain: list[tuple[float, float]] = []
        record: list[tuple[float, float]] = []
        out = work / "run"
        for i in range(args.repeat):
            plain.append(run(["--no-record", *extra], work))
            if out.exists():
                shutil.rmtree(out)
            record.append(run(["--out", str(out), *extra], work))
            print(f"run {i + 1}: no-record {plain[-1][0]:.2f} s (cpu {plain[-1][1]:.2f}), "
                  f"record {record[-1][0]:.2f} s (cpu {record[-1][1]:.2f})", flush=True)
        total = report_record(out)
        best_plain, best_rec = min(w for w, _ in plain), min(w for w, _ in record)
        cpu_plain, cpu_rec = min(c for _, c in plain), min(c for _, c in record)
        ratio = best_rec / best_plain
        print()
        print(f"replay options: {' '.join(extra) or '(defaults)'}")
        print(f"wall time --no-record : {best_plain:8.2f} s   (runs: {', '.join(f'{w:.2f}' for w, _ in plain)})")
        print(f"wall time record      : {best_rec:8.2f} s   (runs: {', '.join(f'{w:.2f}' for w, _ in record)})")
        print(f"cpu time  --no-record : {cpu_plain:8.2f} s, record {cpu_rec:.2f} s, ratio {cpu_rec / cpu_plain:.2f}")
        print(f"ratio record / no-record (wall): {ratio:.2f}   (target <= {RATIO_TARGET})")
        print(f"record size: {total / 1024 / 1024:.1f} MB   (target <= {SIZE_TARGET / 1024 / 1024:.0f} MB)")
        print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
              f"Python {platform.python_version()}")
        if args.keep:
            keep = Path(args.keep)
            if keep.exists():
                shutil.rmtree(keep)
            shutil.copytree(out, keep)
            print(f"record kept in {keep}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
