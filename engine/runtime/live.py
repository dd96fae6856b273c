"""Live (HTX) and paper (simulated fills on live HTX data) modes: the wall-clock loop.

Every POLL_INTERVAL_SEC the feed delivers newly closed candles (usually none) and the engine
runs a step: stops and exits are checked every poll, new entries only when a candle closed.
A failing step is reported and retried at the next poll with a growing pause; it never ends
the loop, except an authentication error, which cannot fix itself. Stopping (SIGTERM, the UI)
lets the current step finish and leaves every stop on the exchange.

With the HTX adapter, the pause between polls also ends when HTX pushes a fill of one of the
account's orders over the websocket (engine.exchange.htx_orders_ws), so a partly filled entry
gets its stop at once instead of at the next poll; polling stays the fallback while the stream
is down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from engine.exchange import errors as E
from engine.exchange.base import Exchange, ReferenceFeed
from engine.exchange.precision import D
from engine.exchange.accounts import SplitAccounts
from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.macro import MacroSymbols, resolve_symbols
from engine.market.candles import Candle, timeframe_minutes
from engine.risk.hedge import HedgeParams
from engine.settings import Settings
from engine.store.state import StateStore

from .engine import Engine
from .events import EngineStatus, ErrorEvent, EventBus
from .lock import InstanceLock
from .paths import markets_cache_path, state_db_path

if TYPE_CHECKING:
    from engine.exchange.htx import HtxConfig

BENCHMARK = "BTC/USDT:USDT"
log = logging.getLogger("crot.live")


def coin_symbols(coins: tuple[str, ...]) -> list[str]:
    """COINS entries (btc, eth, ...) as HTX linear swap symbols."""
    return [f"{c.upper()}/USDT:USDT" for c in coins]


def warmup_candles(settings: Settings) -> int:
    """Base candles to load at start so the slowest EMA (macro slow, 1h) is warm and settled,
    and, with the gold/BTC overlay on, GOLD_MIN_CANDLES candles of GOLD_TIMEFRAME exist."""
    need = 0
    for side in ("long", "short"):
        p = settings.side(side)
        base = timeframe_minutes(p.ema_trigger_timeframe)
        need = max(need, int(math.ceil(p.ema_macro_slow_minutes / base) * 1.5) + 100)
        if p.enable_gold_btc_rsi_overlay:
            per = timeframe_minutes(p.gold_timeframe) // base
            need = max(need, (p.gold_min_candles + 2) * per)
    return need


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class SteadyClock:
    """Cycle times that never go back: the wall clock (the venue's time frame), unless it
    stepped back, then the last time plus the monotonic time elapsed. A jump either way
    (NTP step, suspend, a user changing the date) is reported once in `jump_ms`."""

    def __init__(self, wall_ms: Callable[[], int], mono_s: Callable[[], float] = time.monotonic,
                 tolerance_ms: int = 2_000):
        self._wall, self._mono, self._tol = wall_ms, mono_s, tolerance_ms
        self._last: tuple[int, int, float] | None = None  # (cycle time, wall clock, monotonic)
        self.jump_ms = 0

    def now(self) -> int:
        wall, mono = self._wall(), self._mono()
        self.jump_ms = 0
        if self._last is None:
            self._last = (wall, wall, mono)
            return wall
        last_now, last_wall, last_mono = self._last
        elapsed = int((mono - last_mono) * 1000)
        step = wall - (last_wall + elapsed)  # what the wall clock did beyond the time passed
        if step < -self._tol or (self._wall is wall_clock_ms and step > self._tol):
            self.jump_ms = step  # forward jumps only on the real clock (tests accelerate it)
        now = wall if wall > last_now else last_now + max(elapsed, 0)
        self._last = (now, wall, mono)
        return now


async def until_reachable(call: Callable[[], Awaitable[Any]], *, what: str, stop: asyncio.Event, bus: EventBus,
                          clock_ms: Callable[[], int], wait: Callable[[float], Awaitable[None]] | None = None,
                          first_pause: float = 2.0, max_pause: float = 60.0) -> Any:
    """Run `call` until the venue answers: a network or exchange outage at start is retried
    with a growing pause (2 s .. 60 s), and each failure is said on the bus; only an auth or
    account set-up error (which cannot fix itself) ends the start. None when stopped."""
    pause = first_pause
    while True:
        try:
            return await call()
        except (E.AuthError, E.AccountSetupError):
            raise
        except (E.ExchangeError, OSError, asyncio.TimeoutError) as exc:
            bus.publish(ErrorEvent(clock_ms(), "start", f"cannot {what} ({type(exc).__name__}: {E.redact(exc)}); "
                                   f"retrying in {pause:.0f} s"))
        if stop.is_set():
            return None
        if wait is not None:
            await wait(pause)
        else:
            try:
                await asyncio.wait_for(stop.wait(), timeout=pause)
            except asyncio.TimeoutError:
                pass
        if stop.is_set():
            return None
        pause = min(max_pause, pause * 2)


@dataclass
class LiveParts:
    """What the loop runs on; tests inject fakes, `build_parts` makes the real ones."""

    exchange: Exchange
    feed: Any  # engine.market.feeds.CandleFeed
    reference: ReferenceFeed | None
    sim: SimulatedExchange | None = None  # paper mode: the exchange that fills orders
    closers: tuple[Any, ...] = ()
    macro: MacroSymbols | None = None  # gold proxy and BTC for the macro overlay (read only)


def htx_config(settings: Settings, paper: bool, account: int = 1) -> "HtxConfig":
    """The HTX adapter's configuration from the settings (paper mode: no credentials);
    `account` 2: the second account's keys (COINS_2)."""
    from engine.exchange.htx import HtxConfig

    g = settings.glob
    if account == 2:
        key, secret = g.htx_api_key_2.get_secret_value(), g.htx_api_secret_2.get_secret_value()
        if not paper and not (key and secret):
            raise E.AuthError("COINS_2 trades on a second account: live mode needs HTX_API_KEY_2 and "
                              "HTX_API_SECRET_2 in .env")
    else:
        key, secret = g.htx_api_key.get_secret_value(), g.htx_api_secret.get_secret_value()
    if not paper and not (key and secret):
        raise E.AuthError("live mode needs HTX_API_KEY and HTX_API_SECRET in .env")
    return HtxConfig(api_key=key if not paper else "", secret=secret if not paper else "",
                     hostnames=tuple(g.contract_hostnames) or ("api.hbdm.vn", "api.hbdm.com"),
                     timeout_ms=g.timeout_ms, stop_trigger_price_type=g.stop_trigger_price_type,
                     market_load_retries=g.market_load_retries,
                     markets_cache_file=str(markets_cache_path(settings)),
                     markets_cache_max_age_sec=g.markets_cache_max_age_sec)


async def build_parts(settings: Settings, symbols: list[str], paper: bool,
                      config: "HtxConfig | None" = None, config_2: "HtxConfig | None" = None) -> LiveParts:
    """The HTX adapter, its candle feed and the paper simulator; `config` / `config_2` (tests:
    loopback venues) replace `htx_config(settings, paper)` of the first and second account.
    With COINS_2 the exchange is both accounts (engine/exchange/accounts.py); in paper, two
    simulated accounts of DRY_RUN_EQUITY each."""
    from engine.exchange.htx import HtxExchange
    from engine.market.feeds import CcxtFeed
    from engine.reference.venues import reference_from_settings

    g = settings.glob
    reference = reference_from_settings(g)  # a bad venue id is a one-line error before any client
    htx = HtxExchange(config or htx_config(settings, paper))
    closers: tuple[Any, ...] = (htx,) + ((reference,) if reference else ())
    second = coin_symbols(g.coins_2)
    htx2 = None
    if second and not paper:  # COINS_2: the second account's own client (its own keys)
        htx2 = HtxExchange(config_2 or htx_config(settings, paper, account=2))
        closers += (htx2,)
    try:
        macro = resolve_symbols(await htx.load_markets(), settings.side("long"), BENCHMARK)
        hedge = HedgeParams.from_settings(g)
        hedged = [hedge.symbol] if hedge.enabled else []  # paper: the simulator needs its prices
        feed_symbols = list(dict.fromkeys([*symbols, BENCHMARK, *([macro.gold] if macro.usable else []), *hedged]))
        feed = CcxtFeed(htx._ccxt, feed_symbols, settings.side("long").ema_trigger_timeframe,
                        warmup_candles=warmup_candles(settings), by_window=True,
                        max_concurrency=g.market_data_max_workers)
        if not paper:
            exchange: Any = htx if htx2 is None else SplitAccounts(htx, htx2, second)
            return LiveParts(exchange, feed, reference, None, closers, macro if macro.usable else None)
        markets = await htx.load_markets()

        def simulated(names: list[str]) -> SimulatedExchange:
            return SimulatedExchange([markets[s] for s in dict.fromkeys(names) if s in markets],
                                     SimConfig(initial_wallet=D(g.dry_run_equity), stops_reserve_closeable=False))

        first = [s for s in symbols if s not in second]
        sim: Any = simulated([*first, *hedged])
        if second:
            sim = SplitAccounts(sim, simulated(second), second)
        return LiveParts(sim, feed, reference, sim, closers, macro if macro.usable else None)
    except BaseException:
        for c in closers:  # never leave a client session open behind a failed start
            try:
                await c.close()
            except Exception:
                pass
        raise


async def run_live(
    settings: Settings,
    *,
    bus: EventBus,
    paper: bool = False,
    stop: asyncio.Event | None = None,
    on_engine: Callable[[Engine], None] | None = None,
    db_path: str | Path | None = None,
    parts: LiveParts | None = None,
    clock_ms: Callable[[], int] = wall_clock_ms,
    max_steps: int | None = None,
    wait: Callable[[float], Awaitable[None]] | None = None,
    benchmark: str | None = BENCHMARK,
    order_updates: bool | None = None,
) -> int:
    """Run until `stop` is set (or `max_steps`); returns the number of steps run.

    `wait(seconds)` is the pause between polls (default: sleep until then or until `stop`);
    tests pass one that advances a fake clock instead. `order_updates`: wake on HTX's pushed
    fills (None: on when the exchange is the HTX adapter and no `wait` is given)."""
    g = settings.glob
    symbols = coin_symbols(g.coins) + coin_symbols(g.coins_2)  # COINS_2: on the second account
    if not symbols:
        raise ValueError("COINS is empty: nothing to trade (set e.g. COINS=btc,eth,xrp in .env)")
    mode = "paper" if paper else "live"
    stop = stop or asyncio.Event()
    # the state database (STATE_FILE) is settled before anything is fetched: a bad value fails at once
    db = Path(db_path) if db_path else state_db_path(settings, mode)
    home = db.parent if db_path else Path(g.data_dir)  # audit files and the heartbeat the watchdog reads
    if parts is None:
        parts = await until_reachable(lambda: build_parts(settings, symbols, paper), what="connect to HTX",
                                      stop=stop, bus=bus, clock_ms=clock_ms, wait=wait)
        if parts is None:
            return 0  # stopped before the venue could be reached
    lock = InstanceLock(db.parent, account=None if paper else g.htx_api_key.get_secret_value()).acquire()  # per folder, per account
    locks = [lock]
    try:  # a STATE_FILE outside DATA_DIR: its audit folder is locked too
        if home.absolute() != db.parent.absolute():
            locks.append(InstanceLock(home).acquire())
        if g.coins_2 and not paper:  # the second account is one bot's too
            locks.append(InstanceLock(db.parent / "account-2", account=g.htx_api_key_2.get_secret_value()).acquire())
    except BaseException:
        for held in locks:
            held.release()
        raise
    heartbeat = home / "heartbeat"
    try:
        store = await StateStore.open(db)
    except BaseException:
        for held in locks:
            held.release()
        raise
    from engine.store.audit import AuditWriter

    audit = AuditWriter.from_settings(settings, home / mode)
    bus.subscribe(audit)
    flusher = asyncio.create_task(audit.run_flusher(2.0))
    steps = 0
    updates = None
    try:
        engine = Engine(settings, parts.exchange, store, bus, symbols=symbols, benchmark=benchmark, mode=mode,
                        reference_feed=parts.reference, macro_symbols=parts.macro)
        # a full disk under the audit record stops new entries and averaging (stops and exits go
        # on) until space is back: measured at every flush (after each step, every 2 s)
        engine.entry_blockers += (audit.block_reason,)
        await asyncio.to_thread(audit.check_disk)  # before the first step, not 2 s later
        await until_reachable(engine.start, what="load markets", stop=stop, bus=bus, clock_ms=clock_ms, wait=wait)
        if parts.sim is None and (hasattr(parts.exchange, "fetch_account_setup")
                                  or isinstance(parts.exchange, SplitAccounts)):
            # live: the account must be set up as the bot trades before the first order
            from .account_setup import check_foreign_orders, prepare_account

            traded = engine.symbols + ([engine.hedge.symbol] if engine.hedge is not None else [])
            split = parts.exchange if isinstance(parts.exchange, SplitAccounts) else None
            if split is None:
                report = await prepare_account(parts.exchange, settings, traded)
                report.lines += await check_foreign_orders(parts.exchange, store, settings)
            else:  # each account set up for its own coins
                from .account_setup import check_split_accounts

                held = {s for r in engine.profiles.values() for s in (*r.state.positions, *r.state.ladders)}
                await check_split_accounts(split, held, store)
                report = await prepare_account(split.first, settings, [s for s in traded
                                                                       if s not in split.second_symbols])
                second = await prepare_account(split.second, settings, [s for s in traded
                                                                        if s in split.second_symbols])
                report.changed += [f"account 2: {x}" for x in second.changed]
                report.lines += [f"account 2: {x}" for x in second.lines]
                report.lines += await check_foreign_orders(split.first, store, settings)
                report.lines += [f"account 2: {x}" for x in await check_foreign_orders(split.second, store, settings)]
            if report.changed:
                await engine.refresh_leverage()  # sizing must use the leverage just set
            for line in report.changed + report.lines:
                bus.publish(EngineStatus(clock_ms(), mode, (), True, line))
        if on_engine is not None:
            on_engine(engine)
        if order_updates or (order_updates is None and wait is None):
            try:  # an accelerator only: without it the loop polls as before
                from engine.exchange.htx_orders_ws import OrderUpdates

                # (two accounts: the first account's pushed fills; the second is polled)
                updates = OrderUpdates.for_exchange(getattr(parts.exchange, "first", parts.exchange))
                if updates is not None:
                    updates.start()
            except Exception as exc:
                log.warning("order updates unavailable, polling only: %s", E.redact(exc))
                updates = None
        # Warm-up: the first poll returns history; indicators learn it, nothing trades on it.
        history = await until_reachable(lambda: parts.feed.poll(clock_ms()), what="load candle history",
                                        stop=stop, bus=bus, clock_ms=clock_ms, wait=wait) or {}
        engine.warm_up(history)
        if parts.sim is not None:
            for symbol, candles in history.items():
                if candles and engine.on_venue(symbol):
                    parts.sim.set_price(symbol, D(candles[-1].close), candles[-1].ts_ms)
        # the indicators keep what they need (numpy rings): the warm-up's Candle objects (about
        # 230 bytes a candle, some 280 MB at 300 symbols) must not live as long as the loop does
        # (bench/bench_live_memory.py)
        del history
        bus.publish(EngineStatus(clock_ms(), mode, tuple(s for s, on in engine.flags.enabled.items() if on),
                                 engine.flags.paused, f"{mode} mode: warm, trading {len(engine.symbols)} symbols"))
        failures = 0
        clock = SteadyClock(clock_ms)
        while not stop.is_set():
            if updates is not None:
                updates.wake.clear()  # this poll sees every fill pushed so far
            now = clock.now()
            if clock.jump_ms:
                bus.publish(ErrorEvent(now, "clock", f"the wall clock jumped {clock.jump_ms / 1000:+.1f} s; "
                                       "cycles keep their order on the monotonic clock"))
            try:
                batch: dict[str, list[Candle]] = await parts.feed.poll(now)
                if parts.sim is not None:
                    for symbol, candles in batch.items():
                        if engine.on_venue(symbol):
                            for c in candles:
                                parts.sim.on_candle(symbol, c.ts_ms, D(c.open), D(c.high), D(c.low), D(c.close))
                await engine.step(now, batch)
                # The step's audit rows reach the disk before the next step: a kill loses at
                # most the rows of the step it interrupts (trades and orders are also in the
                # state database, transactionally).
                await asyncio.to_thread(audit.flush)
                heartbeat.touch()  # the watchdog restarts a bot whose heartbeat stalls
                failures = 0
            except E.AuthError as exc:
                bus.publish(ErrorEvent(now, "auth", E.redact(exc), fatal=True))
                raise
            except (E.ExchangeError, OSError, asyncio.TimeoutError) as exc:
                failures += 1
                bus.publish(ErrorEvent(now, "step", f"{type(exc).__name__}: {E.redact(exc)}"))
            except Exception as exc:  # a bug: report it, keep the stops, back off, try again
                failures += 1
                log.exception("unexpected error in a step")
                bus.publish(ErrorEvent(now, "bug", f"{type(exc).__name__}: {E.redact(exc)}"))
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
            pause = g.poll_interval_sec * min(2 ** failures, 20)
            if wait is not None:
                await wait(pause)
                continue
            await _pause(stop, updates.wake if updates is not None else None, pause)
        try:  # a clean stop leaves no resting entry order behind (issue 17, item 3)
            await engine.shutdown(clock.now())
        except Exception as exc:
            bus.publish(ErrorEvent(clock.now(), "shutdown", f"entry orders not cancelled: {type(exc).__name__}: "
                                   f"{E.redact(exc)}"))
        bus.publish(EngineStatus(clock_ms(), mode, (), True, "stopped; stop-loss orders stay on the exchange"))
        return steps
    except BaseException as exc:
        # the status row must not keep saying "entries running" after the engine has died
        bus.publish(EngineStatus(clock_ms(), mode, (), True,
                                 f"stopped by {type(exc).__name__}: {E.redact(exc)}; stop-loss orders stay on the exchange"))
        raise
    finally:
        if updates is not None:
            await updates.close()
        await store.close()
        flusher.cancel()
        await audit.aclose()
        for held in locks:
            held.release()
        for c in parts.closers:
            try:
                await c.close()
            except Exception:
                pass


async def _pause(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """Sleep `seconds`, or until `stop` is set, or until `wake` is (a fill was pushed)."""
    if wake is None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
        return
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
