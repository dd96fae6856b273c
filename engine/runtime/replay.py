"""Replay: the full engine over recorded candles on the simulated exchange, simulated clock.

Per 5m step: the simulated exchange first lets the candle trade against resting orders and
stops (orders placed at the previous close could only fill during this candle: no look-ahead),
then the engine sees the closed candle and runs its cycle at the candle's close time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Awaitable, Callable

from engine.exchange.precision import D
from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.exchange.types import Market
from engine.market.candles import Candle, timeframe_ms
from engine.macro import resolve_symbols
from engine.market.feeds import FileFeed, parse_recorded_filename
from engine.settings import Settings
from engine.store.state import StateStore

from .crash import CrashingExchange, SimulatedCrash
from .engine import Engine
from engine.exchange.errors import ExchangeError

from .events import Decisions, ErrorEvent, Event, EventBus, TradeClosed

DEMO_DATA = Path(__file__).resolve().parents[1] / "demo_data" / "market"
#: the ten BTC-quoted 5m series that share one 20-day window (see PROVENANCE.md)
DEMO_SYMBOLS = ["ADA/BTC", "DASH/BTC", "ETC/BTC", "ETH/BTC", "LTC/BTC", "NXT/BTC", "TRX/BTC", "XLM/BTC",
                "XMR/BTC", "ZEC/BTC"]


def demo_market(symbol: str, candles: list[Candle]) -> Market:
    """A perpetual-swap market for a recorded series: tick and contract sized to its prices."""
    price = sorted(c.close for c in candles)[len(candles) // 2] if candles else 1.0
    exp = math.floor(math.log10(price)) if price > 0 else 0
    tick = Decimal(1).scaleb(exp - 4)
    contract = Decimal(1).scaleb(-exp) if exp < 0 else Decimal(1)
    base, _, quote = symbol.partition("/")
    return Market(symbol=symbol, venue_id=symbol.replace("/", "-"), base=base, quote=quote.split(":")[0] or "USDT",
                  contract_size=contract, amount_step=Decimal(1), price_step=tick, min_amount=Decimal(1),
                  min_notional=None)


@dataclass
class ReplaySummary:
    start_ms: int
    end_ms: int
    steps: int
    symbols: list[str]
    trades: int
    wins: int
    start_equity: Decimal
    end_equity: Decimal
    max_drawdown: float  # fraction of peak equity
    fees: Decimal
    rejections: dict[str, int]  # first failing gate -> count of (symbol, candle) decisions
    restarts: int = 0  # crash emulation: how many times the engine was restarted
    trade_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pnl(self) -> Decimal:
        return self.end_equity - self.start_equity


class _Recorder:
    """Collects what the summary needs from the event stream."""

    def __init__(self) -> None:
        self.peak = Decimal(0)
        self.max_dd = 0.0
        self.rejections: dict[str, int] = {}
        self.fees = Decimal(0)

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, Decisions):
            for d in ev.decisions:
                name = d.first_rejection
                if name:
                    self.rejections[name] = self.rejections.get(name, 0) + 1
        elif isinstance(ev, TradeClosed):
            self.fees += ev.fees
        elif ev.kind == "account":
            eq = ev.equity  # type: ignore[attr-defined]
            self.peak = max(self.peak, eq)
            if self.peak > 0:
                self.max_dd = max(self.max_dd, float((self.peak - eq) / self.peak))


async def run_replay(
    settings: Settings,
    *,
    data_dir: str | Path = DEMO_DATA,
    symbols: list[str] | None = None,
    db_path: str | Path = ":memory:",
    bus: EventBus | None = None,
    sim_config: SimConfig | None = None,
    max_steps: int | None = None,
    on_step: Callable[[int, int], Awaitable[None] | None] | None = None,
    exchange_wrapper: Callable[[SimulatedExchange], Any] | None = None,
    crash_at: set[int] | None = None,
    crash_after_call: bool = False,
    crash_writes_only: bool = False,
    on_engine: Callable[[Engine], None] | None = None,
    step_retries: int = 3,
    audit_dir: str | Path | None = None,
) -> ReplaySummary:
    """Replay recorded 5m series in `data_dir` through the full engine.

    `on_step(done, total)` is called after every step (it may be async: the UI uses it to pace
    the demo); `on_engine(engine)` receives the engine (again after a restart)."""
    timeframe = settings.side("long").ema_trigger_timeframe
    # The macro overlay's gold proxy and BTC come from the same folder when it has them
    # (e.g. XAUT_USDT_USDT-5m-futures.csv); they are read, never traded.
    recorded = [f.symbol for f in map(parse_recorded_filename, sorted(Path(data_dir).glob("*.csv")))
                if f is not None and f.timeframe == timeframe and f.kind in ("spot", "futures")]
    macro = resolve_symbols(recorded, settings.side("long"))
    traded = list(symbols) if symbols is not None else [s for s in recorded if s not in (macro.gold, macro.direct)]
    extra = [s for s in (macro.gold, macro.btc) if macro.usable and s and s not in traded]
    feed = FileFeed.from_directory(data_dir, timeframe=timeframe, symbols=traded + extra)
    symbols = [s for s in feed.symbols if s in traded]
    markets = [demo_market(s, feed.history(s)) for s in symbols]
    cfg = sim_config or SimConfig(initial_wallet=D(settings.glob.dry_run_equity), stops_reserve_closeable=False,
                                  candle_ms=timeframe_ms(timeframe))
    sim = SimulatedExchange(markets, cfg, start_ms=feed.start_ms)
    exchange = exchange_wrapper(sim) if exchange_wrapper else sim
    bus = bus or EventBus()
    recorder = _Recorder()
    bus.subscribe(recorder)
    if crash_at and str(db_path) == ":memory:":
        raise ValueError("crash emulation needs a state file (db_path), not :memory:")
    if crash_at:
        exchange = CrashingExchange(exchange, set(crash_at), after_call=crash_after_call,
                                    writes_only=crash_writes_only)
    store = await StateStore.open(db_path)
    history: dict[str, list[Candle]] = {s: [] for s in symbols}
    traded_set = set(symbols)
    audit = None
    if audit_dir is not None:  # the run's record, for `crot analyze`
        from engine.store.audit import AuditWriter

        audit = AuditWriter.from_settings(settings, audit_dir)
        bus.subscribe(audit)

    async def new_engine() -> Engine:
        e = Engine(settings, exchange, store, bus, symbols=symbols, mode="replay",
                   macro_symbols=macro if macro.usable else None)
        await e.start()
        if on_engine is not None:
            on_engine(e)  # the UI's handle for commands (toggle profiles, pause entries)
        return e

    try:
        engine = await new_engine()
        start_equity = sim.equity()
        step_ms = timeframe_ms(feed.timeframe)
        total = max(1, (feed.end_ms - feed.start_ms) // step_ms + 1)
        steps = 0
        restarts = 0
        async for now, batch in feed.replay():
            for symbol, candles in batch.items():
                history.setdefault(symbol, []).extend(candles)
                if symbol not in traded_set:
                    continue  # macro inputs only
                for c in candles:
                    sim.on_candle(symbol, c.ts_ms, D(c.open), D(c.high), D(c.low), D(c.close))
            try:
                await engine.step(now, batch)
            except ExchangeError as exc:
                # As the live loop does at its next poll: report, then finish this step (the
                # interrupted cycle resumes its write-ahead plan); give up on it after a few tries.
                bus.publish(ErrorEvent(now, "step", f"{type(exc).__name__}: {exc}"))
                for _ in range(step_retries):
                    try:
                        await engine.step(now, {}, new_candle=True)
                        break
                    except ExchangeError as again:
                        bus.publish(ErrorEvent(now, "step", f"{type(again).__name__}: {again}"))
            except SimulatedCrash:
                # The process died mid-step. A new process starts from the state file and
                # the candle history, and finishes this step; possibly dying again.
                while True:
                    restarts += 1
                    await store.close()
                    store = await StateStore.open(db_path)
                    try:
                        engine = await new_engine()
                        engine.warm_up(history)
                        await engine.step(now, {}, new_candle=True)
                        break
                    except SimulatedCrash:
                        continue
            steps += 1
            if audit is not None and steps % 288 == 0:
                audit.flush()  # every simulated day
            if on_step is not None:
                r = on_step(steps, total)
                if r is not None:
                    await r
            if max_steps is not None and steps >= max_steps:
                break
        trades = await store.trades()
        return ReplaySummary(
            start_ms=feed.start_ms, end_ms=feed.start_ms + steps * step_ms, steps=steps, symbols=symbols,
            trades=len(trades), wins=sum(1 for t in trades if Decimal(t["pnl"]) > 0),
            start_equity=start_equity, end_equity=sim.equity(), max_drawdown=recorder.max_dd,
            fees=recorder.fees, rejections=dict(sorted(recorder.rejections.items(), key=lambda kv: -kv[1])),
            restarts=restarts,
            trade_rows=trades)
    finally:
        await store.close()
        if audit is not None:
            await audit.aclose()
