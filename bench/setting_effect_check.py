"""Settings effect check (issue 18): for each setting, the tests that name it must fail when
the engine ignores it.

Each setting in turn is neutralised (tests/conftest.py: every read of it returns its default,
whatever .env says) and the test files that name it (its KEY or field name) run in a fresh
process, the settings effect tests first, stopping at the first failure. A setting is caught
when one fails; "NOT CAUGHT" means no test shows its effect. Tests of the settings machinery
itself (parsing, rendering, rules, docs, the editor) are left out: they read the value, they do
not show an effect. The run without a neutralised setting comes first and must pass. Prints
the machine and the table; exit code 1 if a setting is not caught. Run:

    python bench/setting_effect_check.py [--jobs 2] [--only KEY ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from settings_effect import MACHINERY  # noqa: E402  (tests of the settings machinery, not of an effect)


def test_files() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests").glob("test_*.py"))
            if not MACHINERY.search(p.name)}


def files_naming(key: str, name: str, files: dict[Path, str]) -> list[Path]:
    word = re.compile(r"\b" + re.escape(name) + r"\b")
    hits = [p for p, text in files.items() if key in text or word.search(text)]
    return sorted(hits, key=lambda p: (not p.name.endswith("settings_effect.py"), p.name))


def run(files: list[Path], name: str | None) -> tuple[int, str, float]:
    env = dict(os.environ)
    env.pop("CROT_SETTING_WITHOUT_EFFECT", None)
    if name:
        env["CROT_SETTING_WITHOUT_EFFECT"] = name
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rf", "--no-header",
           *[str(f.relative_to(ROOT)) for f in files]]
    t = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        out, rc = r.stdout + r.stderr, r.returncode
    except subprocess.TimeoutExpired:
        out, rc = "timeout", 124
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
    return rc, failed.group(1) if failed else "", time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2, help="processes at once")
    ap.add_argument("--only", nargs="*", help="these setting KEYs only")
    args = ap.parse_args()
    from engine.settings import catalog
    from test_settings_in_effect import FIXED  # one-value settings: their refusal is the test

    infos = [i for i in catalog() if i.key not in FIXED and (not args.only or i.key in args.only)]
    files = test_files()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    plan = {i.key: (i.name, files_naming(i.key, i.name, files)) for i in infos}
    control_files = sorted({f for _, fs in plan.values() for f in fs})
    rc, failed, secs = run(control_files, None)
    print(f"control (nothing neutralised, {len(control_files)} files): rc={rc} {failed} {secs:.0f} s")
    if rc != 0:
        print("the control run must pass; fix the tests first")
        return 2

    def one(key: str) -> tuple[str, int, str, float, int]:
        name, fs = plan[key]
        if not fs:
            return key, 0, "", 0.0, 0
        rc, failed, secs = run(fs, name)
        return key, rc, failed, secs, len(fs)

    t0 = time.perf_counter()
    missed = []
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for key, rc, failed, secs, n in pool.map(one, sorted(plan)):
            caught = rc not in (0, 5)  # 5: no tests collected
            if not caught:
                missed.append(key)
            print(f"{key:58s} {'caught by ' + failed if caught else 'NOT CAUGHT'} ({n} files, {secs:.0f} s)",
                  flush=True)
    print(f"{len(plan) - len(missed)}/{len(plan)} settings caught in {time.perf_counter() - t0:.0f} s")
    if missed:
        print("not caught: " + " ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
