"""Mutation check: each deliberate safety mutation must be caught by the tests and/or the chaos suite.

Every mutant removes or breaks one safety rule by monkeypatching the engine (nothing on disk
changes). Each runs in its own process: first the tests relevant to the rule, then the chaos
scenarios. A mutant is caught when at least one of them fails. The run without a mutant
comes first and must pass everything (else "caught" would mean nothing). Prints the machine
and the table (mutant, caught by, result); exit code 1 if any mutant survives. Run:

    python bench/mutation_check.py [--steps 1900] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

PROTECTION = "tests/test_runtime_protection.py"
RESTART = "tests/test_runtime_restart.py"
REGRESSIONS = "tests/test_runtime_regressions.py"
CHAOS_CHECKS = "tests/test_chaos.py::test_the_step_checker_sees_a_stop_cancelled_before_its_replacement"


# -- the mutants --------------------------------------------------------------------------------

def _wrap_stop_action(make):
    import engine.runtime.positions as P
    import engine.runtime.profile as R

    mutated = make(P.stop_action)
    P.stop_action = mutated
    R.stop_action = mutated


def no_stop_placed() -> None:
    from engine.runtime.actions import PlaceStop

    def make(orig):
        def stop_action(*a, **k):
            r = orig(*a, **k)
            return None if isinstance(r, PlaceStop) else r
        return stop_action
    _wrap_stop_action(make)


def stop_not_resized() -> None:
    from engine.runtime.actions import PlaceStop

    def make(orig):
        def stop_action(*a, **k):
            r = orig(*a, **k)
            return None if isinstance(r, PlaceStop) and r.reason == "resize" else r
        return stop_action
    _wrap_stop_action(make)


def old_stop_cancelled_first() -> None:
    from engine.runtime.executor import Executor

    orig = Executor._stop

    async def _stop(self, a, now_ms):
        for old in a.replaces:
            await self._cancel(old, now_ms, "stop", "replaced")
        return await orig(self, replace(a, replaces=()), now_ms)
    Executor._stop = _stop


def transient_failure_skips_stops() -> None:
    from engine.exchange import errors as E
    from engine.runtime.executor import Executor, Outcome

    async def run(self, actions, now_ms):
        outcomes, broken = [], False
        for action in actions:
            if broken:  # the mutation: protective actions are skipped too
                outcomes.append(Outcome(action, "skipped", detail="exchange unavailable this cycle"))
                continue
            try:
                outcome = await self._one(action, now_ms)
            except E.TransientError as exc:
                broken = True
                outcome = Outcome(action, "failed", detail=str(exc))
            except Exception as exc:
                outcome = Outcome(action, "failed", detail=str(exc))
            outcomes.append(outcome)
        return outcomes
    Executor.run = run


def trigger_not_recomputed_after_averaging() -> None:
    def make(orig):
        def stop_action(profile, p, pos, meta, *rest):
            if meta.stop_trigger is not None:
                meta.stop_entry = pos.entry_price  # the stored trigger is taken as current
            return orig(profile, p, pos, meta, *rest)
        return stop_action
    _wrap_stop_action(make)


def random_client_ids() -> None:
    import random

    import engine.exchange.client_ids as CI
    import engine.runtime.positions as P
    import engine.runtime.profile as R

    rng = random.SystemRandom()

    def client_order_id(profile, symbol, purpose, intent_key):
        return rng.randint(1, CI.MAX_CLIENT_ORDER_ID)
    for mod in (CI, P, R):
        mod.client_order_id = client_order_id


def no_adoption_of_a_crashed_ladder() -> None:
    from engine.runtime.profile import ProfileRunner

    orig = ProfileRunner._reconcile

    async def _reconcile(self, ci):
        before = set(self.state.ladders)
        out = await orig(self, ci)
        for symbol in set(self.state.ladders) - before:
            del self.state.ladders[symbol]  # the crashed cycle's rungs are left as if foreign
        return out
    ProfileRunner._reconcile = _reconcile


def no_plan_resume() -> None:
    from engine.store.state import StateStore

    async def load_pending(self, profile):
        return None
    StateStore.load_pending = load_pending


def no_stop_attached_to_entries() -> None:
    from engine.runtime.profile import ProfileRunner

    def _attached_stop(self, market, price, atr_rate):
        return None  # entries go out bare: a fill waits for the next poll
    ProfileRunner._attached_stop = _attached_stop


def unprotected_timer_not_persisted() -> None:
    from engine.store.state import StateStore

    async def load_unprotected(self, profile):
        return {}  # a restart starts the bounded close-out time again
    StateStore.load_unprotected = load_unprotected


def disk_full_block_removed() -> None:
    from engine.store.audit import AuditWriter

    def block_reason(self):
        return ""  # the engine never hears that the audit disk is full: entries go on
    AuditWriter.block_reason = block_reason


def filled_id_check_removed() -> None:
    from engine.exchange.htx import HtxExchange

    async def filled_earlier(self, symbol, kind):
        return set()  # a restart re-sending the id of a filled order trades it again on HTX
    HtxExchange._filled_earlier = filled_earlier


FILLED_ID = ["tests/test_exchange_contract.py::"
             "test_a_restarted_client_resending_a_filled_orders_id_does_not_trade_again[htx-loopback]"]

ATTACHED = ["tests/test_attached_stop.py::test_entries_carry_the_stop_the_protection_pass_would_place",
            "tests/test_live_htx_venue.py::test_live_loop_trades_through_ccxt_and_keeps_every_position_stopped"]

DISK_FULL = ["tests/test_disk_full_entries.py::"
             "test_a_full_audit_disk_stops_entries_keeps_stops_and_exits_and_entries_resume",
             "tests/test_disk_full_entries.py::"
             "test_paper_loop_holds_entries_while_the_audit_disk_is_full_and_enters_once_space_is_back"]

#: name -> (apply, relevant tests, chaos scenarios)
def hedge_stop_never_placed() -> None:
    from engine.runtime.hedge import HedgeRunner

    async def protect(self, snap, now_ms):
        return False  # the mutation: the hedge position never gets its stop
    HedgeRunner.protect = protect


def hedge_stop_not_resized() -> None:
    from engine.runtime import hedge as Hm

    orig = Hm.HedgeRunner.protect

    async def protect(self, snap, now_ms):
        pos = snap.positions.get(self.symbol)
        stops = [o for o in snap.orders if o.symbol == self.symbol and o.is_open and o.kind == "stop_loss"]
        if pos is not None and Hm.is_covered(pos, stops, self.market):
            return False  # the mutation: a stop larger than the hedge is left as it is
        return await orig(self, snap, now_ms)
    Hm.HedgeRunner.protect = protect


HEDGE = ["tests/test_btc_hedge.py"]


def one_account_down_stops_all() -> None:
    from engine.exchange import accounts

    del accounts.SplitAccounts.fetch_account_view  # the mutation: one account's failure fails the whole read


def unknown_taken_for_closed() -> None:
    from engine.runtime import engine as En
    from engine.runtime import snapshot as S

    orig = S.read_snapshot

    async def read(ex, symbols, now):
        snap = await orig(ex, symbols, now)
        snap.unknown = frozenset()  # the mutation: a silent account's positions count as gone
        return snap
    En.read_snapshot = read


ACCOUNTS = ["tests/test_second_account.py"]

MUTANTS = {
    "no stop placed": (no_stop_placed, [PROTECTION, REGRESSIONS], ["faults at the engine"]),
    "stop not resized": (stop_not_resized, [PROTECTION], ["faults at the engine"]),
    "old stop cancelled before the new one": (old_stop_cancelled_first, [PROTECTION, CHAOS_CHECKS],
                                              ["faults at the engine"]),
    "transient failure skips stops": (transient_failure_skips_stops, [PROTECTION], ["faults at the engine"]),
    "trigger not recomputed after averaging": (trigger_not_recomputed_after_averaging, [PROTECTION],
                                               ["faults at the engine"]),
    "random client ids": (random_client_ids, [RESTART, "tests/test_exchange_precision.py"], ["process kills"]),
    "no adoption of a crashed cycle's ladder": (no_adoption_of_a_crashed_ladder, [RESTART], ["process kills"]),
    "no plan resume": (no_plan_resume, [RESTART], ["process kills"]),
    "no stop attached to entries": (no_stop_attached_to_entries, ATTACHED, []),
    "unprotected timer not persisted": (unprotected_timer_not_persisted,
                                        [PROTECTION + "::test_the_unprotected_close_out_time_runs_across_a_restart"],
                                        []),
    "disk-full block removed": (disk_full_block_removed, DISK_FULL, []),
    "filled client id re-sent after a restart": (filled_id_check_removed, FILLED_ID, []),
    "BTC hedge without its stop": (hedge_stop_never_placed, HEDGE, []),
    "BTC hedge stop not re-sized": (hedge_stop_not_resized, HEDGE, []),
    "one account down stops the other's protection": (one_account_down_stops_all, ACCOUNTS, []),
    "a silent account's positions taken for closed": (unknown_taken_for_closed, ACCOUNTS, []),
}


# -- one mutant, in its own process ---------------------------------------------------------------

class _Failures:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def pytest_runtest_logreport(self, report) -> None:  # noqa: ANN001 - pytest hook
        if report.when == "call" or report.outcome == "failed":
            if report.outcome == "failed":
                self.failed.append(report.nodeid)
            elif report.when == "call" and report.outcome == "passed":
                self.passed += 1


def worker(name: str, steps: int, out: Path) -> None:
    import asyncio
    import logging

    import pytest

    if name != "(none)":
        MUTANTS[name][0]()
    tests = sorted({t for m in MUTANTS.values() for t in m[1]}) if name == "(none)" else MUTANTS[name][1]
    scenarios = sorted({s for m in MUTANTS.values() for s in m[2]}) if name == "(none)" else MUTANTS[name][2]
    plugin = _Failures()
    os.chdir(ROOT)
    code = pytest.main(["-q", "-p", "no:cacheprovider", "--no-header", "-o", "console_output_style=classic",
                        *tests], plugins=[plugin])
    logging.disable(logging.CRITICAL)
    from engine.runtime.chaos import run_scenario
    from engine.runtime.replay import DEMO_SYMBOLS
    from engine.settings import Settings

    chaos = {}
    with tempfile.TemporaryDirectory() as tmp:
        for sc in scenarios:
            r = asyncio.run(run_scenario(Settings.defaults(), sc, seed=7, steps=steps, symbols=DEMO_SYMBOLS,
                                         db_path=Path(tmp) / f"{len(chaos)}.sqlite"))
            chaos[sc] = {"violations": r.violations[:3], "faults": r.faults, "reached": r.reached_engine,
                         "unprotected_steps": r.unprotected_steps, "beyond_bound": r.beyond_bound}
    out.write_text(json.dumps({"exit": int(code), "failed": plugin.failed, "passed": plugin.passed,
                               "chaos": chaos}))
    sys.stdout.flush()
    os._exit(0)  # a mutant's failing test may leave a database connection (and its thread) behind


def main(steps: int, only: list[str]) -> int:
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    names = ["(none)"] + [n for n in MUTANTS if not only or n in only]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = Path(tmp) / "out.json"
            t0 = time.perf_counter()
            try:
                subprocess.run([sys.executable, __file__, "--worker", name, "--steps", str(steps), "--out", str(out)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                               timeout=900)
            except subprocess.TimeoutExpired:
                pass  # reported below as a crashed worker
            secs = time.perf_counter() - t0
            if not out.exists():
                rows.append((name, "worker crashed", "ERROR", secs))
                continue
            r = json.loads(out.read_text())
            out.unlink()
            tests = [f.split("::")[-1] for f in r["failed"]]
            by = tests[:3] + ([f"(+{len(tests) - 3} more tests)"] if len(tests) > 3 else [])
            by += [f"chaos '{s}': {c['violations'][0][:90]}" for s, c in r["chaos"].items() if c["violations"]]
            if name == "(none)":
                result = "clean" if not by and r["exit"] == 0 else "NOT CLEAN"
                rows.append((name, f"{r['passed']} tests passed, chaos {', '.join(r['chaos'])} clean"
                             if result == "clean" else "; ".join(by), result, secs))
            else:
                rows.append((name, "; ".join(by) or "nothing", "caught" if by else "SURVIVED", secs))
    w = max(len(r[0]) for r in rows)
    print(f"{'mutant':<{w}}  {'result':<9} {'secs':>5}  caught by")
    for name, by, result, secs in rows:
        print(f"{name:<{w}}  {result:<9} {secs:>5.0f}  {by}")
    mutants = [r for r in rows if r[0] != "(none)"]
    caught = sum(1 for r in mutants if r[2] == "caught")
    print(f"mutants caught: {caught}/{len(mutants)}")
    return 0 if caught == len(mutants) and rows[0][2] == "clean" else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1900)
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--worker")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.steps, Path(a.out))
    else:
        raise SystemExit(main(a.steps, a.only))
