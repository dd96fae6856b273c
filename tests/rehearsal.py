"""A paper rehearsal of the live path: the real `run_live` loop on an accelerated real clock.

What is real: the loop, the engine, `HtxExchange`, ccxt's `htx` client (signing, routing,
parsing), HTTP to the loopback `FakeHtxVenue` (HTX v5 as documented), and recorded USDT-M perp
candles (tests/fixtures/perp2024: BTC, ETH, SOL, 2024-07-25 .. 08-08, with the 08-05 crash).
The clock is the machine's monotonic clock run `factor` times faster, with jitter: nothing is
pinned to a candle boundary, polls land wherever the loop's own speed puts them, and a candle
is published by the venue 0.5..4 s (venue time) after it closed, so some polls come early
and some late. The market moves between polls (the venue catches up to the clock in the
loop's pause), so after every poll the invariant can be checked strictly.

Faults are injected at the venue, under the adapter: lost replies (the venue acts, the
reply comes after the client's timeout), 502s before acting, an HTX 1084 order ban, and
post-only orders the venue cancels as crossing.

Order updates (`order_updates=True|False`): the venue then trades up to the clock in small
slices DURING the pause, so a fill happens mid-pause as on a real venue and is pushed over the
v5 order websocket (tests/fake_htx_ws.py); with True the loop wakes on it (ccxt.pro), with False
it waits for its next poll. The default (None) keeps the original pacing and no websocket.

Used by tests/test_live_rehearsal.py (short) and bench/rehearsal.py (long, prints figures).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.exchange.htx import HtxExchange
from engine.exchange.retry import RetryPolicy
from engine.exchange.sim import SimConfig
from engine.exchange.testing import deny_network
from engine.market.candles import Candle
from engine.market.feeds import CcxtFeed, FileFeed
from engine.runtime.events import Decisions, ErrorEvent, Event, EventBus, OrderEvent, StopEvent
from engine.runtime.live import BENCHMARK, LiveParts, run_live
from engine.settings.envfile import Assignment
from engine.settings.loader import settings_from_assignments

from fake_htx_venue import BTC, ETH, Contract, Fault, FakeHtxVenue, Reply

DATA = Path(__file__).parent / "fixtures" / "perp2024"
SOL = "SOL/USDT:USDT"
CONTRACTS = (
    Contract(BTC, "BTC-USDT", Decimal("0.001"), Decimal("0.1")),
    Contract(ETH, "ETH-USDT", Decimal("0.01"), Decimal("0.01")),
    Contract(SOL, "SOL-USDT", Decimal("1"), Decimal("0.001")),
)
API_KEY = "AKfake-7c6b5a49-rehearsal-key"
SECRET = "SKfake-38271605-rehearsal-secret"
STEP_MS = 300_000

# Short EMAs and loose gates, so that a few hundred candles of three coins trade.
SETTINGS = {
    "COINS": "eth,sol", "EXTERNAL_PRICE_ENABLED": "false", "ENABLE_GOLD_BTC_RSI_OVERLAY": "false",
    "EMA_MACRO_TIMEFRAME": "15m", "EMA_MACRO_FAST_MINUTES": "180", "EMA_MACRO_SLOW_MINUTES": "450",
    "EMA_PULLBACK_FAST_MINUTES": "60", "EMA_PULLBACK_SLOW_MINUTES": "150", "EMA_TRIGGER_FAST_MINUTES": "60",
    "EMA_TRIGGER_SLOW_MINUTES": "150", "EMA_USE_RS_CONFIRMATION": "false", "EMA_USE_BTC_RISK_FILTER": "false",
    "EMA_CHOP_FILTER_ENABLED": "false", "EMA_VOLUME_CONFIRMATION_ENABLED": "false", "ENTRY_MIN_RS60_ABS": "0",
    "ENTRY_MIN_RS30_ABS": "0", "ENTRY_MIN_SCORE": "0", "POLL_INTERVAL_SEC": "3",
}


class AcceleratedClock:
    """Venue time = start + factor x (monotonic time since start) + jitter (ms)."""

    def __init__(self, start_ms: int, factor: float, jitter_ms: int, rng: random.Random):
        self.start_ms, self.factor, self.jitter_ms, self.rng = start_ms, factor, jitter_ms, rng
        self.t0 = time.monotonic()
        self._last = start_ms

    def base(self) -> int:
        return self.start_ms + int((time.monotonic() - self.t0) * self.factor * 1000)

    def __call__(self) -> int:
        now = max(self._last, self.base() + self.rng.randint(0, self.jitter_ms))
        self._last = now
        return now


@dataclass
class Rehearsal:
    steps: int = 0
    polls_checked: int = 0
    problems: list[tuple[int, list[str]]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    reused_ids: int = 0  # expired client ids sent again (HTX accepts them as new orders)
    executed_twice: int = 0  # ... where the first order had filled: one intent executed twice
    reuses: list[str] = field(default_factory=list)  # what each reuse was, for the figures
    fill_to_stop_ms: list[float] = field(default_factory=list)  # venue ms from opening fill to a resting stop
    fill_to_stop: list[tuple[str, int, str]] = field(default_factory=list)  # (symbol, ms, attached|placed|none)
    fill_to_stop_real: list[tuple[str, float, str]] = field(default_factory=list)  # the same, machine ms
    #: fill-to-stop at real speed (factor 1), ms: the pause waited for the poll that placed the
    #: stop counts at venue speed (it is scaled), the poll's own work and a pushed fill's way to
    #: the loop at machine speed (they are not); see `_at_real_speed`
    fill_to_stop_speed1: list[tuple[str, float, str]] = field(default_factory=list)
    poll_starts: list[float] = field(default_factory=list)  # monotonic s when each pause ended
    pushes: int = 0  # order updates the venue pushed over the websocket
    ws_connections: int = 0
    venue_requests: list[Any] = field(default_factory=list)
    decided_per_candle: list[int] = field(default_factory=list)
    audit_decision_rows: int = 0
    wall_s: float = 0.0
    candles: int = 0

    def orders(self, action: str, purpose: str) -> list[OrderEvent]:
        return [e for e in self.events if isinstance(e, OrderEvent) and e.action == action and e.purpose == purpose]

    @property
    def decisions(self) -> int:
        return sum(len(e.decisions) for e in self.events if isinstance(e, Decisions))


class _Pacer(asyncio.Event):
    """`stop` of run_live: its wait() is the pause between polls. It checks the invariant on
    the venue, then sleeps `pause / factor` real seconds while the venue trades up to the
    clock (less a jittered publication delay)."""

    def __init__(self, venue: FakeHtxVenue, clock: AcceleratedClock, run: Rehearsal, rng: random.Random,
                 end_ms: int, faults_at: dict[int, Any]):
        super().__init__()
        self.venue, self.clock, self.run, self.rng, self.end_ms = venue, clock, run, rng, end_ms
        self.faults_at = faults_at

    async def check(self) -> None:
        self.run.polls_checked += 1
        problems = await self.venue.protection_problems()
        if problems:
            self.run.problems.append((self.run.polls_checked, problems))

    async def wait(self) -> bool:
        await self.check()
        action = self.faults_at.pop(self.run.polls_checked, None)
        if action is not None:
            action()
        await asyncio.sleep(self.run_pause())
        delay = self.rng.randint(500, 4_000)
        self.venue.advance_to(min(self.end_ms, self.clock.base() - delay))
        if self.venue.now_ms >= self.end_ms:
            self.set()
        return True

    def run_pause(self) -> float:
        return 3.0 / self.clock.factor


class _SlicedPacer(_Pacer):
    """As `_Pacer`, but the venue trades up to the clock in slices of `slice_s` real seconds
    during the pause, so fills happen (and are pushed) mid-pause; a wake of the loop cancels
    the rest of the pause."""

    slice_s = 0.0005

    async def wait(self) -> bool:
        await self.check()
        action = self.faults_at.pop(self.run.polls_checked, None)
        if action is not None:
            action()
        delay = self.rng.randint(500, 4_000)
        end = time.monotonic() + self.run_pause()
        try:
            while True:
                self.venue.advance_to(min(self.end_ms, self.clock.base() - delay))
                if self.venue.now_ms >= self.end_ms:
                    self.set()
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return True
                await asyncio.sleep(min(self.slice_s, left))
        finally:  # woken or not, the next poll starts now
            self.run.poll_starts.append(time.monotonic())


def _settings(extra: dict[str, str] | None = None):
    """The rehearsal's settings plus `extra` (raw .env values by key)."""
    values = {**SETTINGS, "HTX_API_KEY": API_KEY, "HTX_API_SECRET": SECRET, **(extra or {})}
    return settings_from_assignments([Assignment(k, v, i + 1) for i, (k, v) in enumerate(values.items())])


def _series(start: int, candles: int) -> dict[str, list[Candle]]:
    feed = FileFeed.from_directory(DATA, "5m", symbols=[BTC, ETH, SOL])
    return {s: feed.history(s)[start:start + candles] for s in (BTC, ETH, SOL)}


async def rehearse(tmp: Path, *, candles: int = 120, warmup: int = 200, factor: float = 1500.0,
                   jitter_ms: int = 2_500, seed: int = 11, start: int = 2000, faults: bool = True,
                   timeout_ms: int = 400, extra: dict[str, str] | None = None,
                   partial_fill: str = "1", order_updates: bool | None = None) -> Rehearsal:
    """Run the rehearsal over `candles` candles after `warmup`; returns what was seen.
    `partial_fill`: the share of a resting order one candle fills (below 1: entries fill over
    several candles, and an attached stop waits for the last part). `order_updates`: see the
    module docstring."""
    rng = random.Random(seed)
    run = Rehearsal(candles=candles)
    series = _series(start, warmup + candles)
    with deny_network() as refused:
        cfg = SimConfig(initial_wallet=Decimal("10000"), stops_reserve_closeable=False, candle_ms=STEP_MS,
                        name="htx-sim", partial_fill_fraction=Decimal(partial_fill))
        async with FakeHtxVenue(api_key=API_KEY, secret=SECRET, series=series, start_candles=warmup,
                                contracts=CONTRACTS, sim_config=cfg) as venue:
            first = min(c[0].ts_ms for c in series.values())
            start_ms = first + warmup * STEP_MS + rng.randint(1_000, 250_000)  # anywhere in a candle
            end_ms = first + (warmup + candles) * STEP_MS
            clock = AcceleratedClock(start_ms, factor, jitter_ms, rng)
            venue.advance_to(start_ms - 4_000)
            fault_plan: dict[int, Any] = {}
            injected: list[Fault] = []
            if faults:
                def lost(path: str, name: str, what=lambda r: True) -> Any:
                    return lambda: injected.append(venue.inject(Fault("POST", path, what, execute=True,
                                                                      delay=timeout_ms / 1000 * 2.5, name=name)))

                def gateway(path: str, name: str) -> Any:
                    return lambda: injected.append(venue.inject(Fault(
                        "POST", path, execute=False, reply=Reply(status=502, text="<html>502 Bad Gateway</html>"),
                        name=name)))

                def ban() -> None:
                    # HTX's documented ban: 5 minutes, stated in GMT+8
                    import datetime as dt

                    until = (dt.datetime.fromtimestamp(venue.now_ms / 1000 + 300, dt.timezone.utc)
                             + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
                    injected.append(venue.inject(Fault("POST", "/v5/trade/order",
                                                       lambda r: r.body.get("type") == "post_only", execute=False,
                                                       reply=Reply(json={"code": 1084, "message":
                                                                         f"Your contract API is disabled, please "
                                                                         f"try again after {until} (GMT+8).",
                                                                         "data": None, "ts": venue.now_ms}),
                                                       name="1084 ban")))

                def crossing() -> None:
                    venue.cancel_next_post_only += 2

                every = max(8, candles // 6)
                plan = [lost("/v5/trade/order", "lost order reply"), lost("/v5/algo/order", "lost stop reply"),
                        gateway("/v5/trade/order", "502 on order"), gateway("/v5/algo/order", "502 on stop"),
                        crossing, lost("/v5/trade/order", "lost close reply", lambda r: r.body.get("type") == "market")]
                for i, action in enumerate(plan):
                    fault_plan[every * (i + 1)] = action
                fault_plan[every * (len(plan) + 1)] = ban
            pacer = (_Pacer if order_updates is None else _SlicedPacer)(venue, clock, run, rng, end_ms, fault_plan)
            exchange = HtxExchange(venue.htx_config(
                timeout_ms=timeout_ms,
                retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, reconcile_delay=0.02, seed=seed)))
            exchange.config.clock_ms = clock  # the adapter's clock is the rehearsal's
            feed = CcxtFeed(exchange._ccxt, [ETH, SOL, BENCHMARK], "5m", warmup_candles=warmup - 2, by_window=True)
            bus = EventBus()
            bus.subscribe(run.events.append)
            t0 = time.monotonic()
            run.steps = await run_live(_settings(extra), bus=bus, parts=LiveParts(exchange, feed, None, None, (exchange,)),
                                       clock_ms=clock, stop=pacer, db_path=tmp / "live.sqlite",
                                       wait=None, benchmark=BENCHMARK, order_updates=bool(order_updates))
            run.wall_s = time.monotonic() - t0
            await pacer.check()
            run.fill_to_stop = venue.fill_to_stop()
            run.fill_to_stop_real = venue.fill_to_stop(real=True)
            run.fill_to_stop_speed1 = _at_real_speed(venue.fill_to_stop_times(real=True), run.poll_starts,
                                                     factor, woken=bool(order_updates))
            run.pushes, run.ws_connections = len(venue.ws.pushed), venue.ws.connections
            run.fill_to_stop_ms = [float(ms) for _, ms, how in run.fill_to_stop if how != "none"]
            run.venue_requests = list(venue.requests)
            run.duplicates = len(venue.duplicate_client_ids)
            run.reused_ids = len(venue.reused_client_ids)
            run.executed_twice = len(venue.executed_twice)
            run.reuses = [f"{r.path} {r.fault}" for r in venue.reused_client_ids]
            for f in injected:
                run.faults[f.name] = run.faults.get(f.name, 0) + len(f.hits)
            run.faults["post-only cancelled by the venue"] = len(venue.system_cancels)
            per_candle: dict[int, int] = {}
            for e in run.events:
                if isinstance(e, Decisions):
                    for d in e.decisions:
                        per_candle[d.ts_ms] = per_candle.get(d.ts_ms, 0) + 1
            run.decided_per_candle = [per_candle[k] for k in sorted(per_candle)]
            run.audit_decision_rows = _audit_decisions(tmp / "live")
    assert refused == [], refused
    return run


def _at_real_speed(times: list[tuple[str, float, float, str]], poll_starts: list[float], factor: float,
                   woken: bool) -> list[tuple[str, float, str]]:
    """Fill-to-stop as a bot polling every 3 s of REAL time would see it (ms). A stop the bot
    placed came from a poll that started at the last pause end before it: the time from the
    fill to that poll is the pause waited (polling: `factor` times longer at real speed) or,
    woken, the push's way to the loop (machine speed); the time from the poll to the stop is
    the poll's own work (machine speed)."""
    import bisect

    out = []
    for symbol, t0, t1, how in times:
        if how != "placed":
            out.append((symbol, (t1 - t0) * (1 if how == "attached" else factor), how))
            continue
        i = bisect.bisect_right(poll_starts, t1 / 1000) - 1
        start = poll_starts[i] * 1000 if i >= 0 and poll_starts[i] * 1000 >= t0 else t0
        waited, work = start - t0, t1 - start
        out.append((symbol, (waited if woken else waited * factor) + work, how))
    return out


def _audit_decisions(folder: Path) -> int:
    """Decision rows the audit trail wrote: the audit SQLite's signal rows (current and rotated
    files); the JSONL files only when AUDIT_SIGNAL_FILES writes them and no SQLite holds them."""
    import sqlite3

    from engine.store.audit_signals import ROWS, signal_tables

    rows = jsonl = 0
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".sqlite":
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                if signal_tables(db):
                    rows += db.execute(f"SELECT COUNT(*) FROM {ROWS}").fetchone()[0]
            finally:
                db.close()
        elif "signal_analytics" in path.name and path.suffix == ".jsonl":
            with open(path, encoding="utf-8") as fh:
                jsonl += sum(1 for line in fh if line.strip())
    return rows or jsonl


def stop_events(run: Rehearsal) -> list[StopEvent]:
    return [e for e in run.events if isinstance(e, StopEvent)]


def errors(run: Rehearsal) -> list[ErrorEvent]:
    return [e for e in run.events if isinstance(e, ErrorEvent)]
