"""Cost of `crot replay`'s charts and HTML page (what `--no-plots` saves), on a synthetic run.

Run: ``python bench/bench_replay_plots.py [--days 16] [--trades 70] [--rounds 3]``

A ReplaySummary with one equity sample per 5m step over ``--days`` days and ``--trades`` closed
trades over 10 pairs (the full demo is 16 days, ~70 trades with 4 pairs); printed: the time to
draw both charts (SVG + PNG) and to write them with the page, and the files' sizes.
Figures only -- nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.runtime.replay import ReplaySummary  # noqa: E402
from engine.runtime.replay_html import write_replay_html  # noqa: E402
from engine.runtime.replay_metrics import report_dict  # noqa: E402
from engine.runtime.replay_plots import render  # noqa: E402

M5 = 300_000
T0 = 1_721_779_200_000  # 2024-07-24 00:00 UTC
PAIRS = ["BTC", "ETH", "SOL", "AVAX", "LINK", "DOT", "LTC", "BCH", "NEAR", "FIL"]


def machine() -> str:
    return (f"python {platform.python_version()} ({platform.python_implementation()}), {os.cpu_count()} CPUs, "
            f"{platform.platform()} {platform.machine()} {platform.processor() or ''}".rstrip())


def synthetic(days: int, trades: int, seed: int = 7) -> ReplaySummary:
    rnd = random.Random(seed)
    steps = days * 288
    eq, curve = 1000.0, []
    for i in range(steps):
        eq *= 1 + rnd.gauss(0, 0.0004)
        curve.append((T0 + (i + 1) * M5, Decimal(f"{eq:.6f}")))
    rows = []
    for _ in range(trades):
        o = T0 + rnd.randrange(steps - 100) * M5
        pnl = rnd.gauss(0.1, 0.8)
        side = rnd.choice(("long", "short"))
        rows.append({"profile": side, "symbol": f"{rnd.choice(PAIRS)}/USDT:USDT", "side": side,
                     "opened_ms": o, "closed_ms": o + rnd.randrange(2, 100) * M5, "pnl": f"{pnl:.6f}", "fees": "0.02",
                     "reason": rnd.choice(("take_profit", "stop_loss", "runner_trailing"))})
    peak, dd, pk, tr, pkt = 0.0, 0.0, None, None, None
    for t, e in curve:
        if float(e) > peak:
            peak, pkt = float(e), t
        if (peak - float(e)) / peak > dd:
            dd, pk, tr = (peak - float(e)) / peak, pkt, t
    return ReplaySummary(start_ms=T0, end_ms=T0 + steps * M5, steps=steps, symbols=[f"{p}/USDT:USDT" for p in PAIRS],
                         trades=trades, wins=sum(1 for r in rows if float(r["pnl"]) > 0), start_equity=Decimal(1000),
                         end_equity=curve[-1][1], max_drawdown=dd, fees=Decimal("0.02") * trades,
                         rejections={"macro_trend": 9000, "chop": 800}, trade_rows=rows, funding=Decimal("-0.5"),
                         funding_events=40, drawdown_peak_ms=pk, drawdown_trough_ms=tr, equity_curve=curve)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=16)
    ap.add_argument("--trades", type=int, default=70)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    s = synthetic(a.days, a.trades)
    rep = report_dict(s)
    t = time.perf_counter()
    render(s, rep)  # the first call imports matplotlib and loads its fonts: timed apart
    cold = time.perf_counter() - t
    draws, writes = [], []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(a.rounds):
            t = time.perf_counter()
            render(s, rep)
            draws.append(time.perf_counter() - t)
            t = time.perf_counter()
            write_replay_html(s, d)
            writes.append(time.perf_counter() - t)
        sizes = {p.name: p.stat().st_size for p in sorted(Path(d).iterdir())}
    print(machine())
    print(f"synthetic run: {a.days} days, {len(s.equity_curve)} equity samples, {a.trades} trades, 10 pairs")
    print(f"draw both charts (SVG + PNG): best {min(draws):.2f} s of {a.rounds}; "
          f"the first, importing matplotlib: {cold:.2f} s")
    print(f"draw + write charts and {', '.join(n for n in sizes if n.endswith('.html'))}: best {min(writes):.2f} s")
    for name, size in sizes.items():
        print(f"  {name}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
