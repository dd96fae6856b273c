"""Whole-bot memory with many symbols live (issue 16: "RSS under 300 MB with 300 symbols live").

Run:  .venv/bin/python bench/bench_live_memory.py [--symbols 300] [--steps 6]

The live path end to end, offline: `run_live` -> Engine -> HtxExchange -> ccxt's real `htx`
client -> HTTP -> the loopback HTX venue (tests/fake_htx_venue.py) in this process, with
`--symbols` contracts whose 5m series are the bundled perp-2024 candles (symbol k replays
series k % 10 shifted by 37 * (k // 10) candles). The bot loads its live warm-up
(`warmup_candles`, the default settings: gold overlay on) for every symbol, then runs
`--steps` polls, one new candle each.

The venue lives in the same process, so the figures are: RSS before anything, after the
venue is built (its series and simulator), and after the bot's warm-up and steps; the bot's
share is the last minus the second (an estimate: the venue's klines and simulator grow during
the run, so it is an upper bound; its request log is bounded here). Prints the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import os
import platform
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CountingLog(collections.deque):
    count = 0

    def append(self, item) -> None:  # noqa: ANN001
        self.count += 1
        super().append(item)


def series_for(n: int, length: int):
    from engine.market.candles import Candle
    from engine.market.feeds import read_candles_csv

    data = ROOT / "engine" / "demo_data" / "perp-2024"
    base = [read_candles_csv(p) for p in sorted(data.glob("*_USDT_USDT-5m-futures.csv.gz"))][:10]
    out = []
    for k in range(n):
        src = base[k % len(base)]
        shift = 37 * (k // len(base))
        window = src[shift:shift + length]
        if len(window) < length:
            raise SystemExit(f"the bundled series are too short for {length} candles at shift {shift}")
        stamps = [c.ts_ms for c in src[:length]]  # one common time grid
        out.append([Candle(ts, c.open, c.high, c.low, c.close, c.volume) for ts, c in zip(stamps, window)])
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=300)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()

    from engine.exchange.htx import HtxExchange
    from engine.exchange.retry import RetryPolicy
    from engine.market.feeds import CcxtFeed
    from engine.runtime.events import EventBus
    from engine.runtime.live import BENCHMARK, LiveParts, run_live, warmup_candles
    from engine.settings.envfile import Assignment
    from engine.settings.loader import settings_from_assignments

    from fake_htx_venue import Contract, FakeHtxVenue

    key, secret = "AKbench-memory-key-0001", "SKbench-memory-secret-0001"
    names = [f"C{k:03d}" for k in range(args.symbols - 1)]
    coins = ",".join(n.lower() for n in names)
    values = {"COINS": coins, "HTX_API_KEY": key, "HTX_API_SECRET": secret, "EXTERNAL_PRICE_ENABLED": "false"}
    settings = settings_from_assignments([Assignment(k, v, i + 1) for i, (k, v) in enumerate(values.items())])
    warm = warmup_candles(settings)
    gc.collect()
    before = rss_mb()
    symbols = [f"{n}/USDT:USDT" for n in names] + [BENCHMARK]
    series = series_for(len(symbols), warm + args.steps + 210)
    contracts = [Contract(s, s.split("/")[0] + "-USDT", Decimal("1"), Decimal("0.0001")) for s in symbols]
    t0 = time.perf_counter()
    async with FakeHtxVenue(api_key=key, secret=secret, series=dict(zip(symbols, series)), contracts=contracts,
                            start_candles=warm + 200) as venue:
        del series
        log = CountingLog(maxlen=20)  # (the venue logs every request and its reply: bounded here)
        venue.requests = log
        gc.collect()
        venue_mb = rss_mb()
        exchange = HtxExchange(venue.htx_config(timeout_ms=30_000, retry=RetryPolicy(
            max_attempts=3, base_delay=0.01, max_delay=0.05, reconcile_delay=0.01, seed=1)))
        feed = CcxtFeed(exchange._ccxt, symbols, "5m", warmup_candles=warm, by_window=True,
                        max_concurrency=settings.glob.market_data_max_workers)
        parts = LiveParts(exchange, feed, None, None, (exchange,))
        samples: list[float] = []

        class Pause(asyncio.Event):
            async def wait(self) -> bool:
                samples.append(rss_mb())
                venue.advance()
                return True

        with tempfile.TemporaryDirectory() as tmp:
            steps = await run_live(settings, bus=EventBus(), parts=parts, clock_ms=lambda: venue.now_ms,
                                   max_steps=args.steps, stop=Pause(), db_path=Path(tmp) / "live.sqlite",
                                   order_updates=False)
        gc.collect()
        after = rss_mb()
        took = time.perf_counter() - t0
        requests = log.count
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"{len(symbols)} symbols, live warm-up {warm} candles each, {steps} steps, {requests} venue requests, "
          f"{took:.0f} s")
    print(f"RSS before the venue {before:.0f} MB (imports), with the venue {venue_mb:.0f} MB, "
          f"after the bot's warm-up and steps {after:.0f} MB (per step: "
          f"{', '.join(f'{x:.0f}' for x in samples)}); peak {peak_mb():.0f} MB")
    print(f"the bot's share (after - with the venue, an upper bound): {after - venue_mb:.0f} MB; "
          f"with the imports: {after - venue_mb + before:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
