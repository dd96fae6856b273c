"""Helpers for the TUI tests: a fast demo configuration and a recorded, deterministic feed.

`record_demo()` runs the real replay once (bundled candles, simulated exchange) and keeps every
event; `feed_runner(recording)` replays those events into a host's bus, so a snapshot of the
UI depends only on the recorded events, never on timing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.runtime.commands import EngineCommands, EngineFlags
from engine.runtime.events import Event, EventBus
from engine.settings import Settings
from engine.settings.loader import settings_from_assignments
from engine.settings.envfile import parse_lines

from .host import EngineHost, RunResult

#: shorter macro EMAs: the indicators are warm after ~70 candles instead of 1440, so a test
#: replay of a few hundred candles has decisions, orders, stops and trades
FAST_ENV = "EMA_MACRO_FAST_MINUTES=120\nEMA_MACRO_SLOW_MINUTES=360\n"
FAST_STEPS = 280


def fast_settings(extra: str = "") -> Settings:
    assignments, errors = parse_lines((FAST_ENV + extra).splitlines())
    assert not errors, errors
    return settings_from_assignments(assignments)


@dataclass(frozen=True)
class Recording:
    events: tuple[Event, ...]
    summary: Any
    steps: int


@lru_cache(maxsize=4)
def record_demo(steps: int = FAST_STEPS) -> Recording:
    """Every event of a real replay of `steps` candles (cached per process)."""
    from engine.runtime.replay import DEMO_SYMBOLS, run_replay

    events: list[Event] = []
    bus = EventBus()
    bus.subscribe(events.append)
    summary = asyncio.run(run_replay(fast_settings(), symbols=DEMO_SYMBOLS, bus=bus, max_steps=steps))
    return Recording(tuple(events), summary, summary.steps)


class FakeEngine(EngineCommands):
    """The command surface of `Engine` for a recorded feed: flags and status events."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.flags = EngineFlags()
        self.mode = "replay"


def feed_runner(rec: Recording, *, chunk: int = 500):
    """A host runner that publishes the recorded events (in chunks, yielding in between)."""

    async def run(host: EngineHost) -> RunResult:
        host.engine = FakeEngine(host.bus)
        total = len(rec.events)
        for i in range(0, total, chunk):
            for e in rec.events[i:i + chunk]:
                host.bus.publish(e)
            await asyncio.sleep(0)
        host.done = host.total = rec.steps
        if host.on_progress is not None:
            host.on_progress(rec.steps, rec.steps, False)
        return RunResult("demo", summary=rec.summary, steps=rec.steps)

    return run


def write_env(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


# -- a synthetic feed: the snapshots' input ---------------------------------------------------------
SYN_T0 = 1515560400000  # 2018-01-10 05:00 UTC
SYN_STEP = 300_000
SYN_SYMBOLS = ("ADA/BTC", "DASH/BTC", "ETH/BTC", "LTC/BTC", "XMR/BTC", "ZEC/BTC")
SYN_BASE = {"ADA/BTC": 0.0000512, "DASH/BTC": 0.0671, "ETH/BTC": 0.0912, "LTC/BTC": 0.0163,
            "XMR/BTC": 0.0281, "ZEC/BTC": 0.0452}


def synthetic_recording(steps: int = 120) -> Recording:
    """A hand-built, deterministic event stream with every kind of event the panes show.

    Unlike a replay it does not change when the strategy does, so the snapshots only change
    when the UI (or the shape of the events) does."""
    import math
    from dataclasses import replace
    from decimal import Decimal as Dec

    from engine.runtime import events as ev
    from engine.runtime.replay import ReplaySummary
    from engine.strategy.decision import Decision, GateResult
    from engine.strategy.features import SymbolFeatures

    out: list[Event] = [ev.EngineStatus(0, "replay", ("long", "short"), False, "started")]

    def close(symbol: str, i: int) -> float:
        k = SYN_SYMBOLS.index(symbol) + 1
        return SYN_BASE[symbol] * (1 + 0.02 * math.sin(i / (6 + k)) + 0.0004 * k * (i - steps / 2) / 10)

    def decision(symbol: str, side: str, i: int, ts: int) -> Decision:
        k = SYN_SYMBOLS.index(symbol)
        sign = 1 if side == "long" else -1
        trend = sign * (0.004 * math.sin(i / 15 + k) + 0.001 * (k - 2))
        chop = 40 + 30 * abs(math.sin(i / 9 + k))
        vol = 0.8 + 0.5 * abs(math.cos(i / 7 + k))
        rs = sign * 0.003 * math.cos(i / 11 + k)
        raw = 0.02 + trend * 5 + rs * 3
        gates = (
            GateResult("strategy_enabled", 1.0, 1.0, True, "hard", ">="),
            GateResult("macro_trend", trend, 0.0, trend > 0, "hard", ">"),
            GateResult("rs_confirmation", rs, 0.0, rs >= 0, "hard", ">="),
            GateResult("chop", chop, 61.8, chop <= 61.8, "hard", "<=", score_delta=0.0 if chop <= 61.8 else -0.01),
            GateResult("volume_confirmation", vol, 1.05, vol >= 1.05, "hard", ">=",
                       "" if vol >= 1.05 else "ratio below minimum"),
            GateResult("pullback_gap", 0.002, 0.001, True, "penalty", ">="),
            GateResult("macro_regime", 1.0, 0.0, True, "info", ">", "neutral"),
            GateResult("ref_premium", float("nan"), float("nan"), True, "info", "", "not evaluated: reference unavailable"),
            GateResult("min_score", raw, 0.03, raw >= 0.03, "hard", ">="),
        )
        entry_valid = all(g.passed for g in gates if g.kind == "hard")
        # moving averages of the synthetic closes stand for the trigger EMAs (the price chart)
        fast = sum(close(symbol, j) for j in range(i - 5, i + 1)) / 6
        slow = sum(close(symbol, j) for j in range(i - 17, i + 1)) / 18
        features = replace(SymbolFeatures.neutral_benchmark(ts, symbol), close=close(symbol, i),
                           trigger_fast=fast, trigger_slow=slow)
        return Decision(symbol, side, ts, raw, raw, True, entry_valid, entry_valid, gates, features)  # type: ignore[arg-type]

    equity = 1000.0
    positions: dict[str, list[ev.PositionView]] = {"long": [], "short": []}
    for i in range(steps):
        ts = SYN_T0 + i * SYN_STEP
        if i == 0:
            for side in ("long", "short"):
                out.append(ev.Regime(ts, "neutral", "", {"profile": side, "gold_rsi": 48.2, "btc_rsi": 55.1,
                                                         "rsi_spread": -6.9, "long_budget_multiplier": 1.0,
                                                         "short_budget_multiplier": 1.0, "ladder_multiplier": 1.0}))
            for s in SYN_SYMBOLS:
                blocked = s == "ZEC/BTC"
                out.append(ev.Premium(ts, s, 62.5 if blocked else 1.5 + SYN_SYMBOLS.index(s), 0.8, 900, blocked,
                                      "premium above 50 bps" if blocked else ""))
        if i == 80:
            for side in ("long", "short"):
                out.append(ev.Regime(ts, "risk_off", "neutral", {
                    "profile": side, "reason": "gold outperforms btc", "gold_rsi": 66.0, "btc_rsi": 41.3,
                    "rsi_spread": 24.7, "long_budget_multiplier": 0.5, "short_budget_multiplier": 1.0,
                    "ladder_multiplier": 0.8, "disable_averaging": True}))
        for side in ("long", "short"):
            ds = tuple(decision(s, side, i, ts) for s in SYN_SYMBOLS)
            selected = tuple(d.symbol for d in ds if d.entry_valid)[:1]
            out.append(ev.Decisions(ts, side, ds, selected))
        if i == 40:
            e = Dec("0.09105")
            out.append(ev.OrderEvent(ts, "long", "ETH/BTC", "placed", "entry", 101, "buy", e, Dec(4), False))
            out.append(ev.OrderEvent(ts + 1, "long", "ETH/BTC", "placed", "stop", 102, "sell", Dec("0.08923"), Dec(4),
                                     True, "protect"))
            out.append(ev.StopEvent(ts + 1, "long", "ETH/BTC", "placed", Dec("0.08923"), Dec(4), "protect"))
            out.append(ev.OrderEvent(ts + 1, "long", "ETH/BTC", "placed", "exit", 103, "sell", Dec("0.09380"),
                                     Dec(2), True))
        if i == 55:
            out.append(ev.OrderEvent(ts, "short", "XMR/BTC", "placed", "entry", 201, "sell", Dec("0.02874"), Dec(9),
                                     False))
            out.append(ev.OrderEvent(ts + 1, "short", "XMR/BTC", "placed", "stop", 202, "buy", Dec("0.02931"), Dec(9),
                                     True, "protect"))
            out.append(ev.StopEvent(ts + 1, "short", "XMR/BTC", "placed", Dec("0.02931"), Dec(9), "protect"))
        if i == 70:
            out.append(ev.OrderEvent(ts, "long", "LTC/BTC", "placed", "entry", 301, "buy", Dec("0.01641"), Dec(12),
                                     False))
            out.append(ev.OrderEvent(ts + 1, "long", "LTC/BTC", "rejected", "stop", 302, "sell", Dec("0.01608"),
                                     Dec(12), True, "ReduceOnlyFrozen"))
            out.append(ev.StopEvent(ts + 1, "long", "LTC/BTC", "missing", None, Dec(12), "stop order rejected"))
            out.append(ev.Repair(ts + 1, "long", "LTC/BTC", "position without a stop", "stop re-placed next cycle"))
        if i == 90:
            out.append(ev.OrderEvent(ts, "short", "ADA/BTC", "placed", "entry", 401, "sell", Dec("0.00005190"),
                                     Dec(20), False))
            out.append(ev.TradeClosed(ts + SYN_STEP, "short", "ADA/BTC", "short", Dec("0.00005190"),
                                      Dec("0.00005101"), Dec(20), Dec("1.6820"), Dec("0.0361"), ts, "exit ladder"))
        if i == 100:
            out.append(ev.StopEvent(ts, "long", "ETH/BTC", "moved", Dec("0.09050"), Dec(4), "breakeven"))
            out.append(ev.OrderEvent(ts, "long", "ETH/BTC", "placed", "stop", 104, "sell", Dec("0.09050"), Dec(4), True,
                                     "breakeven"))
            out.append(ev.OrderEvent(ts, "long", "ETH/BTC", "cancelled", "stop", 102, "sell", Dec("0.08923"), Dec(4),
                                     True, "replaced"))

        def view(side: str, symbol: str, entry: str, qty: int, stop: str | None, opened: int, stages: int,
                 exits: int, runner: bool = False, mode: str = "normal") -> ev.PositionView:
            mark = Dec(str(round(close(symbol, i), 8)))
            sign = 1 if side == "long" else -1
            e = Dec(entry)
            return ev.PositionView(side, symbol, side, Dec(qty), e, mark, mark * qty, (mark - e) * qty * 10 * sign,
                                   Dec(stop) if stop else None, float(abs(mark - Dec(stop)) / mark) if stop else None,
                                   mode, stages, exits, runner, SYN_T0 + opened * SYN_STEP)

        positions["long"] = []
        positions["short"] = []
        if i >= 41:
            positions["long"].append(view("long", "ETH/BTC", "0.09105", 4, "0.09050" if i >= 100 else "0.08923", 41,
                                          1, 1, runner=i >= 100, mode="breakeven" if i >= 100 else "normal"))
        if i >= 71:
            positions["long"].append(view("long", "LTC/BTC", "0.01641", 12, None, 71, 0, 0))
        if i >= 56:
            positions["short"].append(view("short", "XMR/BTC", "0.02874", 9, "0.02931", 56, 0, 2))
        for side in ("long", "short"):
            out.append(ev.Positions(ts, side, tuple(positions[side])))
        upnl = sum(float(p.unrealized_pnl) for s in positions.values() for p in s)
        realized = 1.6820 if i >= 91 else 0.0
        used = sum(float(p.notional) for s in positions.values() for p in s) / 5
        equity = 1000.0 + upnl + realized
        out.append(ev.Account(ts, Dec(str(round(equity, 4))), Dec(str(round(equity - used, 4))),
                              Dec(str(round(used, 4))), Dec(str(round(upnl, 4))), Dec(str(realized)), Dec("0.0361")))
    summary = ReplaySummary(start_ms=SYN_T0, end_ms=SYN_T0 + steps * SYN_STEP, steps=steps, symbols=list(SYN_SYMBOLS),
                            trades=1, wins=1, start_equity=Dec(1000), end_equity=Dec(str(round(equity, 4))),
                            max_drawdown=0.0042, fees=Dec("0.0361"),
                            rejections={"macro_trend": 512, "chop": 133, "volume_confirmation": 61, "min_score": 17})
    return Recording(tuple(out), summary, steps)
