"""Runtime settings in effect (issue 18), through the engine on the simulated venue or the
adapters' public constructors: the entry order timeout, the tiny partial entry close, which
positions count for a slot, the spread filter's limit, the paper/replay wallet and the HTX
hostnames. Clocks are unaligned and jittered."""

from __future__ import annotations

from decimal import Decimal as Dec

import pytest

from engine.exchange.errors import AuthError
from engine.exchange.htx import HtxExchange
from engine.exchange.sim import _SimPosition
from engine.exchange.types import BookTop
from engine.runtime.engine import Engine, spread_gate
from engine.runtime.events import EventBus
from engine.runtime.live import htx_config
from engine.runtime.replay import run_replay
from engine.store.state import StateStore
from settings_effect import settings
from test_runtime_protection import A, B, C, D, T0, RefusesStops, force_entries, new_engine, new_sim, open_positions


async def entered(monkeypatch, **env: object):
    """The engine after one new candle on which it proposed a long on C and a short on D:
    (simulator, engine, the step's time)."""
    sim = new_sim()
    engine = Engine(settings(**env), sim, await StateStore.open(":memory:", inline=True), EventBus(),
                    symbols=[A, B, C, D])
    await engine.start()
    with monkeypatch.context() as m:
        force_entries(m, engine)
        t = T0 + 13_877
        await engine.step(t, {}, new_candle=True)
    return sim, engine, t


async def entry_orders(sim, symbol: str | None = None) -> list:
    return [o for o in await sim.fetch_open_orders() if not o.reduce_only and symbol in (None, o.symbol)]


async def test_order_timeout_sec_is_how_long_an_unfilled_entry_ladder_rests(monkeypatch):
    async def resting_after(seconds: float, **env: object) -> int:
        sim, engine, t = await entered(monkeypatch, **env)
        assert len(await entry_orders(sim)) >= 2
        for k in range(1, 4):  # a few quotes between candles, no fill
            await engine.step(t + int(seconds * 1000 * k / 3) + 311 * k, {}, new_candle=False)
        await engine.store.close()
        return len(await entry_orders(sim))

    assert await resting_after(120) == 0  # 90 s by default: cancelled as stale
    assert await resting_after(120, ORDER_TIMEOUT_SEC=600) >= 2


async def _after_a_partial_entry(monkeypatch, **env: object):
    """Only the top rung of C's long ladder fills (half the planned notional); the rest times
    out. Returns C's position size after the ladder has finished."""
    sim, engine, t = await entered(monkeypatch, **env)
    rungs = sorted(await entry_orders(sim, C), key=lambda o: -o.price)
    assert len(rungs) == 2 and rungs[0].amount == rungs[1].amount
    start = t - t % 300_000 + 300_000
    low = (rungs[0].price + rungs[1].price) / 2  # through the first rung only
    sim.on_candle(C, start, "2", "2", str(low), "2")
    for k in range(1, 6):
        t = start + 300_000 + k * 47_311
        sim.set_price(C, "2", t)
        await engine.step(t, {}, new_candle=False)
    await engine.store.close()
    pos = [p for p in await sim.fetch_positions() if p.symbol == C]
    return pos[0].contracts if pos else Dec(0)


async def test_tiny_entry_settings_decide_whether_a_partial_entry_is_closed(monkeypatch):
    kept = await _after_a_partial_entry(monkeypatch)
    assert kept == 2500  # half the plan: neither under 10 USDT nor under 10% of the plan
    assert await _after_a_partial_entry(monkeypatch, TINY_ENTRY_MAX_PLANNED_FRACTION=0.6) == 0
    assert await _after_a_partial_entry(monkeypatch, TINY_ENTRY_MAX_NOTIONAL=6000) == 0
    assert await _after_a_partial_entry(monkeypatch, TINY_ENTRY_MAX_NOTIONAL=6000,
                                        TINY_ENTRY_CLOSE_ENABLED="false") == kept


async def test_active_position_min_notional_for_slot_decides_what_takes_a_slot(monkeypatch):
    async def long_entries(**env: object) -> list:
        sim = new_sim()
        sim._positions[A] = _SimPosition(Dec(10), Dec(100))  # a 1000 USDT long
        sim._positions[B] = _SimPosition(Dec(1), Dec(50))  # a 50 USDT long (a remnant)
        engine = await new_engine(sim, await StateStore.open(":memory:", inline=True),
                                  settings=settings(MAX_ACTIVE_POSITIONS=2, **env))
        force_entries(monkeypatch, engine)
        await engine.step(T0 + 21_013, {}, new_candle=True)
        await engine.store.close()
        return [o for o in await entry_orders(sim) if o.side == "buy"]

    assert await long_entries() == []  # both count (>= 10 USDT): the two slots are taken
    assert {o.symbol for o in await long_entries(ACTIVE_POSITION_MIN_NOTIONAL_FOR_SLOT=100)} == {C}


def test_entry_spread_filter_max_bps_is_the_widest_spread_entered():
    book = BookTop("htx", C, Dec("1.998"), Dec("2.002"), Dec(1000), Dec(1000), None, T0)  # 20 bps
    assert spread_gate(settings().side("long"), book).passed  # 30 bps by default
    gate = spread_gate(settings(ENTRY_SPREAD_FILTER_MAX_BPS=10).side("long"), book)
    assert not gate.passed and gate.kind == "hard" and round(gate.value) == 20 and gate.threshold == 10


async def test_dry_run_equity_is_the_simulated_wallet():
    async def start_equity(**env: object) -> Dec:
        summary = await run_replay(settings(**env), symbols=["ETH"], max_steps=2, reference=False, funding=False)
        return summary.start_equity

    default = await start_equity()
    assert default == Dec(str(settings().glob.dry_run_equity))
    assert await start_equity(DRY_RUN_EQUITY=2500) == 2500 != default


async def test_contract_hostnames_are_the_hosts_the_adapter_talks_to():
    default = HtxExchange(htx_config(settings(), paper=True))
    mine = HtxExchange(htx_config(settings(CONTRACT_HOSTNAMES="api.example.org,api2.example.org"), paper=True))
    try:
        assert default.hostname == "api.hbdm.com"
        assert mine.hostname == "api.example.org" and mine.config.hostnames[1] == "api2.example.org"
    finally:
        await default.close()
        await mine.close()


async def a_still_open(steps: list[tuple[int, str]], refused: str = A, **env: object) -> bool:
    """The long A of `open_positions` through engine steps at (time, price), the venue refusing
    the stops of `refused`: whether A is still open at the end."""
    sim = new_sim()
    open_positions(sim)
    store = await StateStore.open(":memory:", inline=True)
    engine = await new_engine(RefusesStops(sim, refused), store, settings=settings(**env))
    for t, price in steps:
        sim.set_price(A, price, t)
        await engine.step(t, {}, new_candle=False)
    await store.close()
    return A in {p.symbol for p in await sim.fetch_positions()}


async def test_hard_stop_unprotected_close_after_sec_bounds_a_position_without_its_stop():
    """The venue refuses A's stop: A is closed at market once it has been unprotected this long."""
    def polls(seconds: float) -> list[tuple[int, str]]:
        return [(t, "99.9") for t in range(T0, T0 + int(seconds * 1000), 4_919)]

    assert await a_still_open(polls(40))  # 60 s by default
    assert not await a_still_open(polls(40), HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC=20)
    assert await a_still_open(polls(90), HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC=120)
    assert not await a_still_open(polls(90))


async def test_hard_stop_loss_min_emergency_pct_closes_a_position_whose_stop_is_refused():
    """A 5% stop, A falls 3.5% under its entry: with its stop refused, A waits for the bounded time
    under the 4% default, and is closed at once with a 3% emergency distance; with its stop
    resting, the same 3% never closes it (the stop does its job)."""
    wide = {"HARD_STOP_LOSS_PCT": 0.05, "HARD_STOP_LOSS_ATR_MAX_PCT": 0.05}
    # the stop is tried at 99.5, then the drop
    drop = [(T0 + 1_271 + k * 3_089, price) for k, price in enumerate(("99.5", "96.5", "96.5"))]
    assert await a_still_open(drop, **wide)
    assert not await a_still_open(drop, **wide, HARD_STOP_LOSS_MIN_EMERGENCY_PCT=0.03)
    assert await a_still_open(drop, refused="NONE", **wide, HARD_STOP_LOSS_MIN_EMERGENCY_PCT=0.03)


def test_the_second_accounts_keys_are_what_it_trades_with():
    with pytest.raises(AuthError, match="HTX_API_KEY_2"):
        htx_config(settings(COINS_2="xrp"), paper=False, account=2)
    cfg = htx_config(settings(COINS_2="xrp", HTX_API_KEY_2="k2-abcdef123", HTX_API_SECRET_2="s2-abcdef456"),
                     paper=False, account=2)
    assert (cfg.api_key, cfg.secret) == ("k2-abcdef123", "s2-abcdef456")
    first = htx_config(settings(HTX_API_KEY="k1-abcdef123", HTX_API_SECRET="s1-abcdef456",
                                HTX_API_KEY_2="k2-abcdef123", HTX_API_SECRET_2="s2-abcdef456"), paper=False)
    assert first.api_key == "k1-abcdef123"


async def test_the_request_timeout_and_the_stop_trigger_type_reach_the_htx_adapter():
    """TIMEOUT_MS bounds every HTX request of the ccxt client; STOP_TRIGGER_PRICE_TYPE is the
    sl_trigger_price_type of every stop (sent as such: tests/test_htx_documented.py)."""
    default = HtxExchange(htx_config(settings(), paper=True))
    mine = HtxExchange(htx_config(settings(TIMEOUT_MS=2500, STOP_TRIGGER_PRICE_TYPE="mark"), paper=True))
    try:
        assert default.config.timeout_ms == default._ccxt.timeout != 2500
        assert mine.config.timeout_ms == mine._ccxt.timeout == 2500
        assert default.config.stop_trigger_price_type == "last" and mine.config.stop_trigger_price_type == "mark"
    finally:
        await default.close()
        await mine.close()
