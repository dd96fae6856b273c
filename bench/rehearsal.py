"""Paper rehearsal, long: the real live loop on an accelerated real clock against the loopback
HTX venue (ccxt's real client), real USDT-M perp candles, faults injected (tests/rehearsal.py).

Prints: polls, entries, faults injected, protection problems after polls, duplicated orders,
decisions per closed candle, and the fill-to-stop latency (venue time from the fill that opens
a position to the first stop resting for it), split by what protected it first: the stop
attached to the entry order (HARD_STOP_ATTACH_TO_ENTRY, active the moment the order has filled)
or the stop the bot placed at its next poll (the polling fallback: partial fills, or the
setting off), with the machine.

    python bench/rehearsal.py [--candles 600] [--factor 1500] [--seeds 3] [--partial 0.5] [--no-attach]
                              [--ws | --no-ws]

`--ws` / `--no-ws`: the venue trades during the pause (fills happen mid-pause) and pushes them
over HTX's v5 order websocket; with --ws the loop wakes on a pushed fill (ccxt.pro), with
--no-ws it waits for its next poll (the polling fallback). Neither flag: the original pacing
(fills land just before a poll, no websocket); `--compare` runs --ws then --no-ws.

Venue time runs `factor` times faster than the machine's clock, so a poll's own duration
counts `factor` times: the polling figures are an upper bound for a machine this fast. The
real-time figures (machine ms from the venue applying a fill to the venue accepting the stop)
are what a reaction costs on this machine; for the woken loop they are the fill-to-stop
latency a live bot would see (plus the network), for polling they are not (the pause between
polls is 3 s / factor of real time).
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


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "?"


LABELS = {"attached": "protected first by the attached stop", "placed": "polling fallback (bot's stop)",
          "none": "closed before any stop rested (ms it lived)"}


def _figures(label: str, values: list[float], unit: str) -> str:
    return (f"    {label}, n={len(values)}: p50 {pct(values, 0.5):.0f}, p99 {pct(values, 0.99):.0f}, "
            f"max {max(values, default=float('nan')):.0f} ({unit})")


async def main(candles: int, factor: float, seeds: int, partial: str, attach: bool,
               order_updates: bool | None = None) -> int:
    mode = {None: "original pacing, no websocket", True: "order updates over the websocket (--ws)",
            False: "polling fallback, fills mid-pause (--no-ws)"}[order_updates]
    print(f"machine: {platform.platform()}, {_cpu()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"rehearsal [{mode}]: {candles} candles x {seeds} seeds, clock x{factor:g}, poll interval 3 s "
          f"(venue time), partial fill per candle {partial}, HARD_STOP_ATTACH_TO_ENTRY={str(attach).lower()}")
    latencies: list[float] = []
    by_how: dict[str, list[float]] = {}
    real_by_how: dict[str, list[float]] = {}
    speed1_by_how: dict[str, list[float]] = {}
    bad = 0
    for seed in range(1, seeds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            run = await rehearse(Path(tmp), candles=candles, factor=factor, seed=seed, start=1900,
                                 partial_fill=partial, extra={"HARD_STOP_ATTACH_TO_ENTRY": str(attach).lower()},
                                 order_updates=order_updates)
        latencies += run.fill_to_stop_ms
        for _, ms, how in run.fill_to_stop:
            by_how.setdefault(how, []).append(float(ms))
        for _, ms, how in run.fill_to_stop_real:
            real_by_how.setdefault(how, []).append(float(ms))
        for _, ms, how in run.fill_to_stop_speed1:
            speed1_by_how.setdefault(how, []).append(float(ms))
        per = run.decided_per_candle[1:-1]
        print(f"seed {seed}: polls {run.steps}, wall {run.wall_s:.1f} s, entries placed "
              f"{len(run.orders('placed', 'entry'))}, decisions/candle min {min(per) if per else 0} "
              f"median {statistics.median(per) if per else 0}, problems after polls {len(run.problems)}, "
              f"duplicated orders {run.duplicates + run.executed_twice}, expired ids re-sent {run.reused_ids}, audit decision rows {run.audit_decision_rows}")
        print(f"        faults reaching the venue: {run.faults}")
        if order_updates is not None:
            print(f"        websocket: {run.pushes} fills pushed, {run.ws_connections} connections")
        bad += len(run.problems) + run.duplicates + run.executed_twice
    print(f"fill-to-stop (venue ms), all positions, n={len(latencies)}: p50 {pct(latencies, 0.5):.0f}, "
          f"p99 {pct(latencies, 0.99):.0f}, max {max(latencies, default=float('nan')):.0f}")
    for how, values in sorted(by_how.items()):
        print(_figures(LABELS[how], values, "venue ms"))
    placed = "bot's stop, woken by the pushed fill" if order_updates else "bot's stop at its next poll"
    for how, values in sorted(real_by_how.items()):
        print(_figures(placed if how == "placed" else LABELS[how], values, "real ms"))
    for how, values in sorted(speed1_by_how.items()):
        if how == "placed":
            print(_figures(placed + ", at real speed", values, "ms, see tests/rehearsal.py _at_real_speed"))
    return 1 if bad else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=600)
    ap.add_argument("--factor", type=float, default=1500.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--partial", default="1", help="share of an order one candle fills (0..1]")
    ap.add_argument("--no-attach", action="store_true", help="HARD_STOP_ATTACH_TO_ENTRY=false")
    ws = ap.add_mutually_exclusive_group()
    ws.add_argument("--ws", dest="ws", action="store_const", const=True, help="wake on pushed fills")
    ws.add_argument("--no-ws", dest="ws", action="store_const", const=False, help="polling fallback only")
    ws.add_argument("--compare", dest="ws", action="store_const", const="both", help="--ws, then --no-ws")
    a = ap.parse_args()

    async def _all() -> int:
        modes = [True, False] if a.ws == "both" else [a.ws]
        return max([await main(a.candles, a.factor, a.seeds, a.partial, not a.no_attach, m) for m in modes])

    raise SystemExit(asyncio.run(_all()))
