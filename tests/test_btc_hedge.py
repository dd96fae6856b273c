"""The BTC hedge (BTC_HEDGE_*): an opposite position on the hedge coin's perpetual that follows
the strategy's net exposure, with its own caps and its own reduce-only stop. Each of the seven
settings changes an order here; the engine runs on the simulated venue with an unaligned,
jittered clock (the hedge rebalances at any step, not only at candle closes)."""

from __future__ import annotations

from decimal import Decimal as Dec

import pytest

from engine.exchange import errors as E
from engine.exchange.sim import SimConfig, SimulatedExchange, _SimPosition
from engine.exchange.types import Market, Position
from engine.risk import hedge as H
from engine.runtime.engine import Engine
from engine.runtime.events import EventBus, FillEvent, OrderEvent, Positions, StopEvent
from engine.settings.envfile import parse_lines
from engine.settings.loader import SettingsError, settings_from_assignments
from engine.store.state import StateStore

ETH, SOL, BTC = "ETH/USDT:USDT", "SOL/USDT:USDT", "BTC/USDT:USDT"
T0 = 1_722_470_400_000 + 4_391  # 2024-08-01 plus odd seconds: not on a candle boundary
JITTER = (0, 7_113, 61_902, 95_377, 180_004, 241_519, 302_998, 419_071)


def _market(symbol: str, contract: str, tick: str) -> Market:
    return Market(symbol, symbol.replace("/", "-"), symbol.split("/")[0], "USDT", contract_size=Dec(contract),
                  amount_step=Dec(1), price_step=Dec(tick), min_amount=Dec(1), min_notional=None)


MARKETS = [_market(ETH, "0.01", "0.01"), _market(SOL, "1", "0.001"), _market(BTC, "0.001", "0.1")]


def settings(text: str = ""):
    base = "BTC_HEDGE_ENABLED=true\n" + ("" if "COOLDOWN" in text else "BTC_HEDGE_COOLDOWN_SEC=0\n")
    assignments, errors = parse_lines((base + text).splitlines())
    assert not errors
    return settings_from_assignments(assignments)


def new_sim(spread_ticks: int = 1, reserve: bool = True) -> SimulatedExchange:
    """`reserve`: stop orders reserve the closeable amount (then a partial close of the hedge
    has to take its stop off first), or not (the replay's simulator)."""
    sim = SimulatedExchange(MARKETS, SimConfig(initial_wallet=Dec(100_000), spread_ticks=spread_ticks,
                                               stops_reserve_closeable=reserve), start_ms=T0 - 60_000)
    for s, px in ((ETH, "2000"), (SOL, "100"), (BTC, "50000")):
        sim.set_price(s, px, T0 - 60_000)
    return sim


async def new_engine(sim, s, store=None, bus=None, seen=None):
    bus = bus or EventBus()
    if seen is not None:
        bus.subscribe(seen.append)
    store = store or await StateStore.open(":memory:", inline=True)
    e = Engine(s, sim, store, bus, symbols=[ETH, SOL])
    await e.start()
    return e, store


async def hedge_position(sim) -> Position | None:
    return next((p for p in await sim.fetch_positions() if p.symbol == BTC), None)


async def hedge_stops(sim):
    return [o for o in await sim.fetch_open_orders() if o.symbol == BTC and o.kind == "stop_loss"]


# -- the arithmetic ------------------------------------------------------------------------
def _params(**kw) -> H.HedgeParams:
    base = dict(enabled=True, coin="btc", ratio=Dec(1), min_rebalance=Dec(10), max_notional=Dec(0),
                max_spread_bps=30.0, cooldown_ms=30_000)
    return H.HedgeParams(**{**base, **kw})


def _pos(side: str, contracts: str, entry: str = "50000") -> Position:
    return Position(BTC, side, Dec(contracts), Dec(entry), None, Dec(0), None, None)  # type: ignore[arg-type]


BTC_M = MARKETS[2]


def test_the_target_is_the_opposite_of_ratio_times_net_within_the_cap():
    assert H.target_notional(_params(), Dec(1000)) == Dec(-1000)
    assert H.target_notional(_params(ratio=Dec("0.5")), Dec(-1000)) == Dec(500)
    assert H.target_notional(_params(max_notional=Dec(300)), Dec(1000)) == Dec(-300)
    assert H.target_notional(_params(enabled=False), Dec(1000)) == 0


def test_one_order_at_most_and_never_a_flip():
    # short hedge of 1000 USDT held, the net turned short: the hedge is closed first ...
    p = H.plan(_params(), Dec(-800), _pos("short", "20"), Dec(50000), BTC_M, 2.0, T0, None)
    assert p.order == H.HedgeOrder("reduce", "short", Dec(20), Dec(1000)) and p.why == "close the hedge"
    # ... and opened long at a later rebalance
    p = H.plan(_params(), Dec(-800), None, Dec(50000), BTC_M, 2.0, T0, None)
    assert p.order is not None and (p.order.kind, p.order.position_side, p.order.contracts) == ("open", "long", 16)


def test_contracts_round_down_so_the_hedge_never_overshoots():
    p = H.plan(_params(), Dec(1029), None, Dec(50000), BTC_M, 2.0, T0, None)
    assert p.order.contracts == 20  # 1029 USDT / 50 USDT per contract = 20.58


def test_a_wide_spread_stops_an_increase_but_never_a_reduction():
    wide = 45.0
    p = H.plan(_params(), Dec(1000), None, Dec(50000), BTC_M, wide, T0, None)
    assert p.order is None and "spread" in p.why
    p = H.plan(_params(), Dec(400), _pos("short", "20"), Dec(50000), BTC_M, wide, T0, None)
    assert p.order is not None and (p.order.kind, p.order.contracts) == ("reduce", 12)
    assert H.plan(_params(max_spread_bps=50.0), Dec(1000), None, Dec(50000), BTC_M, wide, T0, None).order is not None


def test_threshold_and_cooldown():
    held = _pos("short", "20")
    assert H.plan(_params(), Dec(1009), held, Dec(50000), BTC_M, 2.0, T0, None).order is None  # 9 < 10 USDT
    assert H.plan(_params(min_rebalance=Dec(5)), Dec(1009), held, Dec(50000), BTC_M, 2.0, T0, None).why \
        == "the change is smaller than the market's minimum order"  # 9 USDT < one 50 USDT contract
    assert H.plan(_params(), Dec(1100), held, Dec(50000), BTC_M, 2.0, T0, T0 - 29_000).order is None
    assert H.plan(_params(), Dec(1100), held, Dec(50000), BTC_M, 2.0, T0, T0 - 30_000).order is not None


# -- through the engine ----------------------------------------------------------------------
@pytest.mark.parametrize("reserve", [True, False], ids=["stops-reserve", "stops-free"])
async def test_the_hedge_follows_the_net_exposure_with_its_own_stop(reserve):
    sim = new_sim(reserve=reserve)
    sim._positions[ETH] = _SimPosition(Dec(50), Dec(2000))  # long 1000 USDT (0.5 ETH)
    seen: list = []
    engine, store = await new_engine(sim, settings(), seen=seen)
    await engine.step(T0 + JITTER[1], {}, new_candle=False)
    pos = await hedge_position(sim)
    assert pos is not None and pos.side == "short" and pos.contracts == 20  # 1000.0025 USDT / 50.00005 per contract at the mid, down
    (stop,) = await hedge_stops(sim)
    assert stop.reduce_only and stop.side == "buy" and stop.amount == 20
    assert stop.trigger_price == Dec("51000")  # entry (sold at the bid, 50000) + 2% (HARD_STOP_LOSS_PCT)
    hedge_orders = [e for e in seen if isinstance(e, OrderEvent) and e.profile == "hedge" and e.action == "placed"]
    assert [(e.purpose, e.side, e.reduce_only) for e in hedge_orders] == [("hedge", "sell", False), ("stop", "buy", True)]
    assert any(isinstance(e, Positions) and e.profile == "hedge" and e.positions for e in seen)
    # the strategy opens a short on SOL worth 600 USDT: the net is 400 long, the hedge shrinks
    sim._positions[SOL] = _SimPosition(Dec(-6), Dec(100))
    await engine.step(T0 + JITTER[2], {}, new_candle=False)
    pos = await hedge_position(sim)
    assert pos.contracts == 8  # 20 - floor((1000 - 400) / 50) = 20 - 12
    (stop,) = await hedge_stops(sim)
    assert stop.amount == 8  # the stop followed the size
    fills = [(e.side, e.amount, e.purpose) for e in seen if isinstance(e, FillEvent) and e.profile == "hedge"]
    assert fills == [("sell", 20, "hedge")]  # the open's fill, in the record (the reduce's at the next step)
    # the profiles never took the hedge for one of theirs
    assert BTC not in engine.profiles["long"].state.positions and BTC not in engine.profiles["short"].state.positions
    await store.close()


@pytest.mark.parametrize(("extra", "contracts"), [("", 20), ("BTC_HEDGE_RATIO=0.5", 10),
                                                 ("BTC_HEDGE_MAX_NOTIONAL=300", 5), ("BTC_HEDGE_RATIO=0", None)])
async def test_ratio_and_cap_size_the_hedge(extra, contracts):
    sim = new_sim()
    sim._positions[ETH] = _SimPosition(Dec(50), Dec(2000))
    engine, store = await new_engine(sim, settings(extra))
    await engine.step(T0 + JITTER[3], {}, new_candle=False)
    pos = await hedge_position(sim)
    assert (pos.contracts if pos else None) == contracts
    await store.close()


async def test_min_rebalance_and_cooldown_hold_orders_back():
    sim = new_sim()
    sim._positions[ETH] = _SimPosition(Dec(50), Dec(2000))
    engine, store = await new_engine(sim, settings("BTC_HEDGE_COOLDOWN_SEC=120\nBTC_HEDGE_MIN_REBALANCE_NOTIONAL=200"))
    await engine.step(T0 + JITTER[1], {}, new_candle=False)
    assert (await hedge_position(sim)).contracts == 20
    sim._positions[ETH] = _SimPosition(Dec(80), Dec(2000))  # +600 USDT of net long
    await engine.step(T0 + JITTER[2], {}, new_candle=False)  # 61.9 s later: cooling down
    assert (await hedge_position(sim)).contracts == 20
    await engine.step(T0 + JITTER[4], {}, new_candle=False)  # 180 s later: rebalanced
    assert (await hedge_position(sim)).contracts == 32
    sim._positions[ETH] = _SimPosition(Dec(82), Dec(2000))  # +40 USDT: below 200, left alone
    await engine.step(T0 + JITTER[7], {}, new_candle=False)
    assert (await hedge_position(sim)).contracts == 32
    await store.close()


async def test_a_wide_hedge_market_spread_keeps_the_hedge_from_opening():
    sim = new_sim(spread_ticks=200)  # 200 ticks of 0.1 on BTC: 20 USDT on 50010, 4.0 bps
    sim._positions[ETH] = _SimPosition(Dec(50), Dec(2000))
    engine, store = await new_engine(sim, settings("BTC_HEDGE_MAX_SPREAD_BPS=3"))
    await engine.step(T0 + JITTER[1], {}, new_candle=False)
    assert await hedge_position(sim) is None
    engine2, store2 = await new_engine(sim, settings("BTC_HEDGE_MAX_SPREAD_BPS=5"))
    await engine2.step(T0 + JITTER[2], {}, new_candle=False)
    assert (await hedge_position(sim)).contracts == 20
    await store.close()
    await store2.close()


async def test_another_hedge_coin_hedges_on_its_own_market():
    sim = new_sim()
    sim._positions[ETH] = _SimPosition(Dec(50), Dec(2000))
    engine = Engine(settings("BTC_HEDGE_COIN=sol"), sim, await StateStore.open(":memory:", inline=True), EventBus(), symbols=[ETH])
    await engine.start()
    await engine.step(T0 + JITTER[5], {}, new_candle=False)
    assert {(p.symbol, p.side, p.contracts) for p in await sim.fetch_positions()} >= {(SOL, "short", 9)}
    await engine.store.close()


async def test_turning_the_hedge_off_closes_it_after_a_restart(tmp_path):
    sim = new_sim()
    sim._positions[ETH] = _SimPosition(Dec(50), Dec(2000))
    engine, store = await new_engine(sim, settings(), store=await StateStore.open(tmp_path / "s.sqlite", inline=True))
    await engine.step(T0 + JITTER[1], {}, new_candle=False)
    assert await hedge_position(sim) is not None
    await store.close()
    assignments, _ = parse_lines(["BTC_HEDGE_ENABLED=false"])
    engine2, store2 = await new_engine(sim, settings_from_assignments(assignments),
                                       store=await StateStore.open(tmp_path / "s.sqlite", inline=True))
    assert engine2.hedge is not None  # a hedge of ours is open: managed until it is gone
    await engine2.step(T0 + JITTER[4], {}, new_candle=False)
    assert await hedge_position(sim) is None and await hedge_stops(sim) == []
    assert (await sim.fetch_positions())[0].symbol == ETH  # the strategy's position is untouched
    await store2.close()


class NoHedgeStops:
    """The venue refuses every stop on the hedge market (as a stop rejected for price bands)."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def place_stop_loss(self, symbol, position_side, amount, trigger, cid):
        if symbol == BTC:
            raise E.InvalidOrder("stop refused", venue="sim")
        return await self._inner.place_stop_loss(symbol, position_side, amount, trigger, cid)


async def test_a_hedge_without_its_stop_blocks_new_risk_and_is_closed_in_bounded_time():
    sim = new_sim()
    sim._positions[ETH] = _SimPosition(Dec(50), Dec(2000))
    seen: list = []
    engine, store = await new_engine(NoHedgeStops(sim), settings("HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC=120"),
                                     seen=seen)
    await engine.step(T0 + JITTER[1], {}, new_candle=False)
    assert (await hedge_position(sim)).contracts == 20
    assert "hedge has no confirmed stop" in engine.risk_blocked()
    await engine.step(T0 + JITTER[2], {}, new_candle=False)  # 55 s without a stop: still held
    assert (await hedge_position(sim)) is not None
    await engine.step(T0 + JITTER[4], {}, new_candle=False)  # 173 s: closed reduce-only at market
    assert await hedge_position(sim) is None
    assert any(isinstance(e, StopEvent) and e.profile == "hedge" and e.action == "emergency_close" for e in seen)
    # and not reopened at once (a venue refusing its stops would otherwise keep it open
    # unprotected, again and again): paused for 10 x 120 s
    for t in JITTER[5:]:
        await engine.step(T0 + t, {}, new_candle=False)
        assert await hedge_position(sim) is None
    await engine.step(T0 + JITTER[4] + 1_200_500, {}, new_candle=False)  # the pause is over
    assert (await hedge_position(sim)).contracts == 20
    await store.close()


class FullDisk:
    """The state store once the disk is full: every write fails."""

    def __init__(self, inner):
        self._inner, self.full = inner, False

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def _put(self, *a):
        if self.full:
            raise OSError(28, "No space left on device")
        return await self._inner._put(*a)

    async def record_intent(self, **kw):
        if self.full:
            raise OSError(28, "No space left on device")
        return await self._inner.record_intent(**kw)


async def test_a_full_disk_never_keeps_the_hedge_from_its_stop():
    sim = new_sim()
    sim._positions[ETH] = _SimPosition(Dec(50), Dec(2000))
    store = FullDisk(await StateStore.open(":memory:", inline=True))
    engine, _ = await new_engine(sim, settings(), store=store)
    await engine.step(T0 + JITTER[1], {}, new_candle=False)
    (stop,) = await hedge_stops(sim)
    await sim.cancel_order(stop)  # the venue lost it ...
    store.full = True  # ... while the disk is full
    with pytest.raises(OSError):  # (the step reports what failed, and raises the first at its end)
        await engine.step(T0 + JITTER[2], {}, new_candle=False)
    assert [o.amount for o in await hedge_stops(sim)] == [20]
    sim._positions[ETH] = _SimPosition(Dec(80), Dec(2000))  # more exposure: no new hedge risk without a record
    with pytest.raises(OSError):
        await engine.step(T0 + JITTER[3], {}, new_candle=False)
    assert (await hedge_position(sim)).contracts == 20
    await store._inner.close()


def test_a_blocked_or_switched_off_hedge_only_shrinks():
    held = _pos("short", "1")  # 50 USDT, below the 100 USDT threshold
    p = H.plan(_params(min_rebalance=Dec(100)), Dec(1000), held, Dec(50000), BTC_M, 2.0, T0, None, "a stop missing")
    assert p.order is None and "new risk blocked" in p.why
    p = H.plan(_params(), Dec(400), _pos("short", "20"), Dec(50000), BTC_M, 2.0, T0, None, "a stop missing")
    assert p.order is not None and p.order.kind == "reduce"
    p = H.plan(_params(enabled=False, min_rebalance=Dec(100)), Dec(1000), held, Dec(50000), BTC_M, 2.0, T0, None)
    assert p.order == H.HedgeOrder("reduce", "short", Dec(1), Dec(50))  # off: closed whatever its size


def test_no_valid_trigger_is_no_stop():
    from engine.runtime.hedge import HedgeRunner

    runner = HedgeRunner(_params(), BTC_M, None, None, None, None, None)  # type: ignore[arg-type]
    assert runner._trigger(_pos("long", "3"), Dec(1)) is None  # HARD_STOP_LOSS_PCT=1: a trigger of 0
    assert runner._trigger(_pos("short", "3"), Dec("0.02")) == Dec("51000")


def test_the_hedge_coin_cannot_be_a_traded_coin():
    assignments, _ = parse_lines(["COINS=eth,btc", "BTC_HEDGE_ENABLED=true"])
    with pytest.raises(SettingsError) as info:
        settings_from_assignments(assignments)
    assert "BTC_HEDGE_COIN=btc is also in COINS" in str(info.value)
    assignments, _ = parse_lines(["COINS=eth,btc", "BTC_HEDGE_ENABLED=true", "BTC_HEDGE_COIN=sol"])
    assert settings_from_assignments(assignments).glob.btc_hedge_coin == "sol"


async def test_flatten_closes_the_hedge_with_everything_else():
    from engine.runtime.manual import ManualRequest

    sim = new_sim(reserve=False)  # HTX's algo stops leave the closeable amount alone (the loopback venue)
    sim._positions[ETH] = _SimPosition(Dec(50), Dec(2000))
    engine, store = await new_engine(sim, settings())
    await engine.step(T0 + JITTER[1], {}, new_candle=False)
    assert await hedge_position(sim) is not None
    engine.request_manual(ManualRequest("flatten", ""))
    await engine.step(T0 + JITTER[2], {}, new_candle=False)
    assert await sim.fetch_positions() == []
    assert [o for o in await sim.fetch_open_orders() if o.symbol == BTC] == []
    await engine.step(T0 + JITTER[4], {}, new_candle=False)  # nothing left to hedge: nothing reopened
    assert await sim.fetch_positions() == []
    await store.close()


@pytest.mark.parametrize(("minimum", "contracts"), [("", 22), ("BTC_HEDGE_MIN_REBALANCE_NOTIONAL=200", 20)])
async def test_min_rebalance_notional_decides_whether_a_small_change_is_hedged(minimum, contracts):
    sim = new_sim()
    sim._positions[ETH] = _SimPosition(Dec(50), Dec(2000))
    engine, store = await new_engine(sim, settings(minimum))
    await engine.step(T0 + JITTER[1], {}, new_candle=False)
    assert (await hedge_position(sim)).contracts == 20
    sim._positions[ETH] = _SimPosition(Dec(57), Dec(2000))  # +140 USDT of net long (22 contracts: rounded down)
    await engine.step(T0 + JITTER[6], {}, new_candle=False)  # after the default cooldown
    assert (await hedge_position(sim)).contracts == contracts
    await store.close()
