"""Replay: the full engine over recorded candles on the simulated exchange, simulated clock.

Per 5m step: the simulated exchange first lets the candle trade against resting orders and
stops (orders placed at the previous close could only fill during this candle: no look-ahead),
then the engine sees the closed candle and runs its cycle at the candle's close time.

From the data folder (layout in ``replay_data``) the replay also takes the gold proxy and BTC
for the macro overlay, the recorded funding events (charged by the simulator at their times)
and a second venue's candles as the cross-exchange reference (fed to the reference tracker
at now - 60 s, now - 30 s and now, before each step). With a time range, the candles before
its start are the warm-up: the first step sees them all at once, as a restart would.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from engine.market.feeds import FileFeed
from engine.risk.hedge import HedgeParams
from engine.reference.recorded import RecordedReference
from engine.settings import Settings
from engine.store.state import StateStore

from .crash import CrashingExchange, SimulatedCrash
from .engine import Engine
from engine.exchange.errors import ExchangeError

from .events import Decisions, ErrorEvent, Event, EventBus, TradeClosed
from .replay_data import (
    REFERENCE_DIR, ReplayDataError, apply_data_settings, check_fresh_state, folder_timerange, load_funding,
    resolve_symbols_arg, traded_candidates, utc,
)

DEMO_DATA = Path(__file__).resolve().parents[1] / "demo_data" / "perp-2024"
#: ten Bybit USDT-M perps, 2024-07-17 .. 08-09 (the 2024-08-05 crash), with BTC for relative
#: strength and the macro overlay; PAXG (gold proxy), funding and the Binance / Gate.io
#: reference candles are in the same folder (see its PROVENANCE.md and CONTENTS.md)
DEMO_SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "AVAX/USDT:USDT", "LINK/USDT:USDT",
                "DOT/USDT:USDT", "LTC/USDT:USDT", "BCH/USDT:USDT", "NEAR/USDT:USDT", "FIL/USDT:USDT"]


def demo_symbols(settings: Settings) -> list[str]:
    """The demo's traded symbols: DEMO_SYMBOLS without the hedge coin while BTC_HEDGE_ENABLED is
    on (the hedge trades it)."""
    hedge = HedgeParams.from_settings(settings.glob)
    return [s for s in DEMO_SYMBOLS if not (hedge.enabled and s == hedge.symbol)]


def _span(candles: list[Candle]) -> str:
    return f"{utc(candles[0].ts_ms)[5:10]}..{utc(candles[-1].ts_ms)[5:10]}" if candles else "empty"


def _recorded_or_none(directory: Path, timeframe: str) -> list[str]:
    try:
        return traded_candidates(directory, timeframe)
    except ReplayDataError:  # an empty reference folder: no reference, not an error
        return []


def known_at_start(candles: list[Candle], begin_ms: int, step_ms: int) -> list[Candle]:
    """The candles of a series closed by ``begin_ms`` (the warm-up the first step sees); a
    series that starts later: its first candle, the first price the market can trade at."""
    known = [c for c in candles if c.ts_ms + step_ms <= begin_ms]
    return known or candles[:1]


def demo_market(symbol: str, candles: list[Candle]) -> Market:
    """A perpetual-swap market for a recorded series: tick and contract sized to its prices
    (a tick of about 1e-4 of the price, one contract worth 1 to 10 quote units, as HTX's
    USDT-M contracts are: BTC at 60,000 trades in 0.0001 BTC contracts). Pass only what is
    known when trading starts (``known_at_start``): a venue's precision is fixed before the
    run, so prices recorded later must not choose it (look-ahead)."""
    price = sorted(c.close for c in candles)[len(candles) // 2] if candles else 1.0
    exp = math.floor(math.log10(price)) if price > 0 else 0
    tick = Decimal(1).scaleb(exp - 4)
    contract = Decimal(1).scaleb(-exp)
    base, _, quote = symbol.partition("/")
    return Market(symbol=symbol, venue_id=symbol.replace("/", "-"), base=base, quote=quote.split(":")[0] or "USDT",
                  contract_size=contract, amount_step=Decimal(1), price_step=tick, min_amount=Decimal(1),
                  min_notional=None)


@dataclass
class ReplaySummary:
    start_ms: int  # open of the first replayed candle
    end_ms: int  # close of the last one
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
    funding: Decimal = Decimal(0)  # wallet change from funding (negative = paid), in the PnL
    funding_events: int = 0  # funding settlements charged to open positions
    drawdown_peak_ms: int | None = None  # the equity peak before the maximum drawdown ...
    drawdown_trough_ms: int | None = None  # ... and its trough
    data_settings: dict[str, str] = field(default_factory=dict)  # applied from the folder's replay.env
    inputs: dict[str, str] = field(default_factory=dict)  # macro / reference / funding: what was used
    equity_curve: list[tuple[int, Decimal]] = field(default_factory=list)  # (time ms, equity) per step

    @property
    def pnl(self) -> Decimal:
        return self.end_equity - self.start_equity


class _Recorder:
    """Collects what the summary needs from the event stream."""

    def __init__(self) -> None:
        self.peak = Decimal(0)
        self.peak_ms: int | None = None
        self.max_dd = 0.0
        self.dd_peak_ms: int | None = None
        self.dd_trough_ms: int | None = None
        self.rejections: dict[str, int] = {}
        self.fees = Decimal(0)
        self.equity: list[tuple[int, Decimal]] = []  # (time, equity) per step: the report's curve

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
            if self.equity and self.equity[-1][0] == ev.ts_ms:
                self.equity[-1] = (ev.ts_ms, eq)  # a step finished again after a restart
            else:
                self.equity.append((ev.ts_ms, eq))
            if eq > self.peak or self.peak_ms is None:
                self.peak, self.peak_ms = max(self.peak, eq), ev.ts_ms
            if self.peak > 0:
                dd = float((self.peak - eq) / self.peak)
                if dd > self.max_dd:
                    self.max_dd, self.dd_peak_ms, self.dd_trough_ms = dd, self.peak_ms, ev.ts_ms


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
    restart_delay_steps: int = 0,
    audit_dir: str | Path | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    reference: bool = True,
    funding: bool = True,
    inline_store: bool = True,
) -> ReplaySummary:
    """Replay recorded 5m series in `data_dir` through the full engine.

    `symbols` may be short ('BTC'); `start_ms` / `end_ms` limit the replay to candles opening
    in [start, end) (earlier candles are the warm-up; neither given: the folder's
    replay.timerange if it has one); `reference` / `funding` use the folder's
    reference candles and funding files when it has them. Bad inputs raise ReplayDataError
    (one line) before anything runs. `on_step(done, total)` is called after every step (it may
    be async: the UI uses it to pace the demo); `on_engine(engine)` receives the engine (again
    after a restart). `inline_store`: the state store runs its SQL in the loop's thread (the
    same statements and files as live's aiosqlite; engine/store/inline_sqlite.py)."""
    settings, data_settings = apply_data_settings(settings, data_dir)
    if start_ms is None and end_ms is None:
        start_ms, end_ms = folder_timerange(data_dir)  # the folder's default (replay.timerange)
    timeframe = settings.side("long").ema_trigger_timeframe
    # The macro overlay's gold proxy and BTC come from the same folder when it has them
    # (e.g. PAXG_USDT-5m.csv); they are read, never traded.
    recorded = traded_candidates(data_dir, timeframe)
    macro = resolve_symbols(recorded, settings.side("long"))
    if symbols is not None:
        traded = resolve_symbols_arg(symbols, [s for s in recorded if s not in (macro.gold, macro.direct)]
                                     or recorded, data_dir)
    else:
        traded = [s for s in recorded if s not in (macro.gold, macro.direct)]
    hedge = HedgeParams.from_settings(settings.glob)
    hedge_symbol = hedge.symbol if hedge.enabled else None
    if hedge_symbol is not None:
        # the hedge coin is read and traded by the hedge only (the settings rule keeps it out
        # of COINS; here out of the folder's traded series)
        if hedge_symbol not in recorded:
            raise ReplayDataError(f"BTC_HEDGE_COIN={hedge.coin}: {data_dir} has no {timeframe} candles of "
                                  f"{hedge_symbol}; expected a file such as {hedge.coin.upper()}_USDT-{timeframe}.csv")
        if symbols is not None and hedge_symbol in traded:
            raise ReplayDataError(f"--symbols: {hedge_symbol} is the hedge coin (BTC_HEDGE_COIN={hedge.coin}); "
                                  "leave it out or turn BTC_HEDGE_ENABLED off")
        traded = [s for s in traded if s != hedge_symbol]
    if not traded:
        raise ReplayDataError(f"--data {data_dir}: nothing to trade (only the macro inputs {', '.join(recorded)})")
    extra = [s for s in (macro.gold, macro.btc) if macro.usable and s and s not in traded]
    if hedge_symbol is not None and hedge_symbol not in extra:
        extra.append(hedge_symbol)
    try:
        feed = FileFeed.from_directory(data_dir, timeframe=timeframe, symbols=traded + extra)
    except (ValueError, OSError) as exc:  # a malformed file: its path and line, one line
        raise ReplayDataError(str(exc).splitlines()[0]) from None
    symbols = [s for s in feed.symbols if s in traded]
    step_ms = timeframe_ms(feed.timeframe)
    first_close, last_close = feed.start_ms, feed.end_ms
    begin = first_close if start_ms is None else max(first_close, int(start_ms) + step_ms)
    stop = last_close if end_ms is None else min(last_close, int(end_ms))
    if begin > stop or (start_ms is not None and int(start_ms) + step_ms > last_close) \
            or (end_ms is not None and int(end_ms) < first_close):
        want = f"{utc(start_ms) if start_ms is not None else '...'} .. {utc(end_ms) if end_ms is not None else '...'}"
        raise ReplayDataError(f"--timerange {want} UTC has no candles in {data_dir}; the data covers "
                              f"{utc(first_close - step_ms)} .. {utc(last_close)} UTC")
    check_fresh_state(db_path)
    if begin > first_close:
        inputs_warm = f"{(begin - first_close) // step_ms} candles before {utc(begin - step_ms)} UTC"
    else:
        inputs_warm = "none (the indicators warm up on the replayed candles)"
    # tick and contract size from the candles closed when the replay starts, never from later ones
    venue_symbols = symbols + ([hedge_symbol] if hedge_symbol is not None else [])  # on the simulated venue
    markets = [demo_market(s, known_at_start(feed.history(s), begin, step_ms)) for s in venue_symbols]
    cfg = sim_config or SimConfig(initial_wallet=D(settings.glob.dry_run_equity), stops_reserve_closeable=False,
                                  candle_ms=timeframe_ms(timeframe))
    sim = SimulatedExchange(markets, cfg, start_ms=feed.start_ms)
    inputs: dict[str, str] = {"macro inputs": (f"gold {macro.gold} ({_span(feed.history(macro.gold))}), "
                                                f"BTC {macro.btc}" if macro.usable else f"off ({macro.reason})")}
    rates = load_funding(data_dir, venue_symbols) if funding else {}
    for s, events in rates.items():
        sim.set_funding_events(s, events)
    inputs["warm-up"] = inputs_warm
    if hedge_symbol is not None:
        inputs["BTC hedge"] = (f"{hedge_symbol} (read and traded by the hedge only): ratio {hedge.ratio}, cap "
                               f"{hedge.max_notional or 'none'} USDT")
    inputs["funding data"] = (f"recorded events, {len(rates)} of {len(venue_symbols)} symbols" if rates
                              else "none recorded (no funding charged)")
    ref_feed = None
    ref_dir = Path(data_dir) / REFERENCE_DIR
    if reference and settings.glob.external_price_enabled and ref_dir.is_dir():
        have = [f for f in _recorded_or_none(ref_dir, timeframe) if f in symbols]
        if have:
            try:
                ref_candles = FileFeed.from_directory(ref_dir, timeframe=timeframe, symbols=have)
            except (ValueError, OSError) as exc:
                raise ReplayDataError(str(exc).splitlines()[0]) from None
            ref_feed = RecordedReference({s: feed.history(s) for s in symbols}, timeframe,
                                         reference={s: ref_candles.history(s) for s in have}, venue="reference")
            inputs["reference"] = (f"a second venue's recorded candles for {len(have)} of {len(symbols)} symbols ("
                                   + ", ".join(f"{s.split('/')[0]} {_span(ref_candles.history(s))}" for s in have) + ")")
    inputs.setdefault("reference", "none (the reference gates report it unavailable)")
    exchange = exchange_wrapper(sim) if exchange_wrapper else sim
    bus = bus or EventBus()
    recorder = _Recorder()
    bus.subscribe(recorder)
    if crash_at and str(db_path) == ":memory:":
        raise ValueError("crash emulation needs a state file (db_path), not :memory:")
    if crash_at:
        exchange = CrashingExchange(exchange, set(crash_at), after_call=crash_after_call,
                                    writes_only=crash_writes_only)
    store = await StateStore.open(db_path, inline=inline_store)
    history: dict[str, list[Candle]] = {s: [] for s in symbols}
    traded_set = set(venue_symbols)  # the candles that move the simulated venue's prices
    audit = None
    if audit_dir is not None:  # the run's record, for `crot analyze`
        from engine.store.audit import AuditWriter

        audit = AuditWriter.from_settings(settings, audit_dir, durable=False)
        bus.subscribe(audit)

    day_flush: asyncio.Future[Any] | None = None

    async def new_engine() -> Engine:
        e = Engine(settings, exchange, store, bus, symbols=symbols, mode="replay",
                   macro_symbols=macro if macro.usable else None)
        if audit is not None:  # a full disk under the record stops new entries, as in live
            e.entry_blockers += (audit.block_reason,)
        await e.start()
        if on_engine is not None:
            on_engine(e)  # the UI's handle for commands (toggle profiles, pause entries)
        return e

    try:
        engine = await new_engine()
        start_equity = sim.equity()
        total = max(1, (stop - begin) // step_ms + 1)
        steps = 0
        restarts = 0
        down = 0

        async def restart(now: int) -> None:
            nonlocal engine, store, restarts
            while True:
                restarts += 1
                await store.close()
                store = await StateStore.open(db_path, inline=inline_store)
                try:
                    try:
                        engine = await new_engine()
                    except ExchangeError as exc:  # the new process could not start: it tries again
                        bus.publish(ErrorEvent(now, "start", f"{type(exc).__name__}: {exc}"))
                        if restarts > 1000:
                            raise
                        continue
                    engine.warm_up(history)
                    if ref_feed is not None:  # the new process reads the reference venue too
                        ref_feed.feed(engine.reference, now)
                    for _ in range(step_retries + 1):
                        try:
                            await engine.step(now, {}, new_candle=True)
                            break
                        except ExchangeError as exc:
                            bus.publish(ErrorEvent(now, "step", f"{type(exc).__name__}: {exc}"))
                    return
                except SimulatedCrash:
                    continue
        async for now, batch in feed.replay(start_ms=begin, end_ms=stop):
            for symbol, candles in batch.items():
                history.setdefault(symbol, []).extend(candles)
                if symbol not in traded_set:
                    continue  # macro inputs only
                for c in candles:
                    sim.on_candle(symbol, c.ts_ms, D(c.open), D(c.high), D(c.low), D(c.close))
            if down > 0:  # crash emulation: the process is down for this candle
                down -= 1
                if down == 0:
                    await restart(now)
                steps += 1
                if on_step is not None and (r := on_step(steps, total)) is not None:
                    await r
                if max_steps is not None and steps >= max_steps:
                    break
                continue
            if ref_feed is not None:
                ref_feed.feed(engine.reference, now)
            if audit is not None:
                audit.check_disk()  # the record flushes once a day: its disk is measured every step
            crashed = False
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
                    except SimulatedCrash:  # the process died while finishing the step
                        crashed = True
                        break
            except SimulatedCrash:
                crashed = True
            if crashed:
                # The process died mid-step. A new process starts from the state file and
                # the candle history, and finishes this step (or, with `restart_delay_steps`,
                # comes back that many candles later, as a live restart does: what filled
                # meanwhile is found on the exchange); possibly dying again.
                if restart_delay_steps > 0:
                    down = restart_delay_steps
                else:
                    await restart(now)
            steps += 1
            if audit is not None and steps % 288 == 0:
                # every simulated day, in a worker thread beside the next day's steps (flush is
                # thread-safe; live flushes the same way): one flush at a time
                if day_flush is not None:
                    await day_flush
                day_flush = asyncio.ensure_future(asyncio.to_thread(audit.flush))
            if on_step is not None:
                r = on_step(steps, total)
                if r is not None:
                    await r
            if max_steps is not None and steps >= max_steps:
                break
        trades = await store.trades()
        if hedge_symbol is not None:  # its fills are in the PnL, not in the trades
            hedge_fills = await sim.fetch_fills([hedge_symbol], 0)
            inputs["BTC hedge"] += (f"; {len({f.order_id for f in hedge_fills})} orders, fees "
                                    f"{sum((f.fee for f in hedge_fills), Decimal(0)):.4f}, realized "
                                    f"{sum((f.realized_pnl or Decimal(0) for f in hedge_fills), Decimal(0)):+.4f}"
                                    " (in the PnL)")
        return ReplaySummary(
            start_ms=begin - step_ms, end_ms=begin + (steps - 1) * step_ms, steps=steps, symbols=symbols,
            trades=len(trades), wins=sum(1 for t in trades if Decimal(t["pnl"]) > 0),
            start_equity=start_equity, end_equity=sim.equity(), max_drawdown=recorder.max_dd,
            fees=recorder.fees, rejections=dict(sorted(recorder.rejections.items(), key=lambda kv: -kv[1])),
            restarts=restarts,
            trade_rows=trades,
            funding=sum((p.amount for p in sim.funding_payments), Decimal(0)),
            funding_events=len(sim.funding_payments),
            drawdown_peak_ms=recorder.dd_peak_ms, drawdown_trough_ms=recorder.dd_trough_ms,
            data_settings=data_settings, inputs=inputs, equity_curve=recorder.equity)
    finally:
        await store.close()
        if day_flush is not None:
            with contextlib.suppress(Exception):  # flush never raises; a cancelled run may cancel it
                await day_flush
        if audit is not None:
            await audit.aclose()
