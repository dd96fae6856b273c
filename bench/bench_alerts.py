"""Alert router cost on the engine's side: what one bus publish pays for the alert rules.

Run: ``python bench/bench_alerts.py [--events 200000]``

The router is a synchronous bus subscriber; this times its handler alone over a mix of the
events a live cycle publishes (account, cycle stats, positions, stops: no alert) and over
alert-making events (an engine error each time: rules, rate limit, scrub, queue). Nothing is
sent (the sender is never awaited here). Figures only -- nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from decimal import Decimal as D
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.alerts import AlertConfig, AlertRouter  # noqa: E402
from engine.runtime.events import Account, CycleStats, ErrorEvent, Positions, StopEvent  # noqa: E402
from engine.settings.groups.alerts import ALERT_KINDS  # noqa: E402

T0 = 1_722_556_800_000


class _Unsent:
    services = 1

    async def send(self, alert) -> bool:  # never awaited: no event loop runs here
        return True


def _time(router: AlertRouter, events: list) -> float:
    t = time.perf_counter()
    for ev in events:
        router(ev)
    return (time.perf_counter() - t) / len(events) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    n = ap.parse_args().events
    cfg = AlertConfig(frozenset(ALERT_KINDS), rate_limit_count=5, summary_hour_utc=8)
    quiet = []
    for i in range(n // 4):
        ts = T0 + i * 3000
        quiet += [Account(ts, D("1000"), D("900"), D("100"), D("0"), D("0"), D("0")),
                  CycleStats(ts, "long", 30, 30, 2, 1, 0, 1, 12.0),
                  Positions(ts, "long", ()),
                  StopEvent(ts, "long", "BTC/USDT:USDT", "placed", D("60000"), D("1"), "protect")]
    loud = [ErrorEvent(T0 + i * 3000, "bug", f"KeyError: 'k{i}' at https://api.hbdm.com/x?Signature=abc{i}")
            for i in range(n // 10)]
    r1 = AlertRouter(cfg, _Unsent(), queue_size=10**9)
    r2 = AlertRouter(cfg, _Unsent(), queue_size=10**9)
    q = _time(r1, quiet)
    lo = _time(r2, loud)
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpu, "
          f"python {platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"no-alert events (account/cycle/positions/stops): {q:.2f} us per event over {len(quiet)}")
    print(f"alert events (engine error; rate limit, scrub, queue): {lo:.2f} us per event over {len(loud)} "
          f"({r2.stats.suppressed} held back by the rate limit)")


if __name__ == "__main__":
    main()
