"""State sync settings in effect (issue 18), through profile runner cycles on the simulator:
fill reads (FETCH_FILL_DETAILS_ON_SYNC, FILL_DETAIL_LOOKBACK_SEC) and close orders found on the
exchange that the bot did not place (CANCEL_UNSAFE_HIDDEN_CLOSE_ORDERS).

Every fill read goes through a counting wrapper around the simulator's fetch_fills. The
position: a long 10 @ 100 the runner adopts, an averaging add 5 @ 97 that fills on a later
candle (the position is 15 @ 99), held about two hours, closed by its exit ladder on one
candle. The clock is unaligned and jittered; candles start on 5-minute boundaries (the
simulator's candle), cycles do not."""

from __future__ import annotations

import logging
from decimal import ROUND_UP, Decimal as Dec
from types import SimpleNamespace as NS

import pytest

from engine.exchange.sim import _SimPosition
from engine.runtime.events import EventBus, FillEvent, OrderEvent, Repair, TradeClosed
from engine.runtime.positions import MarketContext
from engine.runtime.profile import CycleInput, ProfileRunner
from engine.runtime.snapshot import read_snapshot
from engine.settings import Settings
from engine.store.state import StateStore

from test_account_pnl_engine import settings
from test_runtime_protection import A, T0, market, new_sim
from test_runtime_regressions import recovered_gates

MIN, HOUR, CANDLE = 60_000, 3_600_000, 300_000


def with_glob(s: Settings, **kw) -> Settings:
    return Settings(s.glob.model_copy(update=kw), s.profiles)


class Rig:
    """A long-side runner on the simulator; fill reads are counted."""

    def __init__(self, s: Settings, sim=None):
        self.s = s
        self.sim = sim or new_sim()
        self.reads: list[tuple[tuple[str, ...], int, int]] = []  # (symbols, since, clock)
        real = self.sim.fetch_fills

        async def counted(symbols, since_ms):
            self.reads.append((tuple(symbols), since_ms, self.sim.now_ms))
            return await real(symbols, since_ms)

        self.sim.fetch_fills = counted  # the wrapper: every read the runner makes passes here
        self.seen: list = []
        self.now = T0 + 1_337

    async def start(self, store=None) -> None:
        self.store = store or await StateStore.open(":memory:", inline=True)
        bus = EventBus()
        bus.subscribe(self.seen.append)
        self.runner = ProfileRunner("long", self.s.side("long"), self.sim, self.store, bus, [A], self.s.glob)
        await self.runner.load()

    async def cycle(self, price: str, *, after_ms: int, new_candle: bool = False) -> None:
        self.now += after_ms
        self.sim.set_price(A, price, self.now)
        snap = await read_snapshot(self.sim, [A], self.now)
        d = NS(symbol=A, ts_ms=self.now - 97_000, score=0.1, valid=True, entry_valid=True, add_valid=True,
               gates=recovered_gates(), features=None, benchmark=None)
        none = lambda decisions, ctx, prof: NS(decisions=[], chosen_symbols=(), chosen=[])  # noqa: E731
        await self.runner.cycle(CycleInput(snap, {A: market(A)}, {A: d}, {A: MarketContext(atr_rate=0.001)}, none,
                                           lambda **kw: None, set(), new_candle=new_candle))

    def candle(self, o: str, h: str, lo: str, c: str) -> None:
        """The next 5-minute candle after the clock; the clock moves past its end."""
        start = self.now - self.now % CANDLE + CANDLE
        self.sim.on_candle(A, start, o, h, lo, c)
        self.now = start + CANDLE + 4_111

    def events(self, kind):
        return [e for e in self.seen if isinstance(e, kind)]


async def held_and_closed(s: Settings, *, restart_before_close: bool = False) -> Rig:
    """The position of the module doc, closed by its exits about 2 h 20 min after it opened."""
    rig = Rig(s)
    rig.sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    await rig.start()
    await rig.cycle("97", after_ms=0)  # adopt: stop and exits
    await rig.cycle("97", after_ms=43_001, new_candle=True)  # the add 5 @ 97
    assert [e.amount for e in rig.events(OrderEvent) if e.purpose == "add" and e.action == "placed"] == [5]
    rig.candle("97", "97.1", "96.8", "96.9")  # fills the add
    await rig.cycle("98", after_ms=17_393)  # exits re-planned for 15
    for k in range(4):  # held: a cycle every ~31 min
        await rig.cycle("98", after_ms=31 * MIN + k * 7_919)
    pos = (await rig.sim.fetch_positions())[0]
    assert (pos.contracts, pos.entry_price) == (15, 99)
    if restart_before_close:
        await rig.start(rig.store)  # a new process on the same state: it has seen no orders
    rig.candle("98.5", "110", "98.2", "109")  # every exit fills
    await rig.cycle("109", after_ms=29_077)
    assert await rig.sim.fetch_positions() == []
    return rig


def fees_of(rig: Rig, side: str | None = None) -> Dec:
    return sum((f.fee for f in rig.sim._fills if side is None or f.side == side), Dec(0))


# -- FILL_DETAIL_LOOKBACK_SEC ---------------------------------------------------------------
@pytest.mark.parametrize("lookback", [6 * 3600, 3600], ids=["6h", "1h"])
async def test_a_close_reads_the_fills_of_the_whole_position_whatever_the_lookback(lookback):
    """The lookback bounds the sync reads (the first cycle after a start); a closing trade is
    priced from every fill since its opening, so its fees are all in (the add ~2 h before)."""
    rig = await held_and_closed(with_glob(settings(), fill_detail_lookback_sec=lookback))
    (trade,) = rig.events(TradeClosed)
    close_reads = [since for symbols, since, _ in rig.reads if symbols == (A,)][-1:]
    assert close_reads == [trade.opened_ms]  # the whole life of the position
    assert trade.contracts == 15 and trade.entry_price == 99
    assert trade.fees == fees_of(rig) > fees_of(rig, "sell")  # the add's fee is in


async def by_hand_fill_then_first_cycle(s: Settings, *, hours_before: float) -> Rig:
    """A position opened by hand `hours_before` the bot's first cycle ever (fresh state)."""
    rig = Rig(s)
    await rig.sim.place_post_only(A, "buy", Dec(4), Dec("99.5"), client_order_id=777)
    start = T0 - int(hours_before * HOUR) - (T0 - int(hours_before * HOUR)) % CANDLE
    rig.sim.on_candle(A, start, "99.9", "100", "99.4", "99.8")
    rig.now = T0 + 1_337
    await rig.start()
    await rig.cycle("100", after_ms=0)
    return rig


async def test_the_first_cycle_reads_the_lookback_window_not_one_hour():
    # the default 6 h window sees a by-hand fill of 3 h ago (one hour would not)
    rig = await by_hand_fill_then_first_cycle(settings(), hours_before=3)
    assert [(e.amount, e.purpose) for e in rig.events(FillEvent)] == [(4, "unknown")]
    assert rig.reads[0][1] == rig.now - 6 * HOUR
    rig = await by_hand_fill_then_first_cycle(with_glob(settings(), fill_detail_lookback_sec=2 * 3600),
                                              hours_before=3)
    assert rig.events(FillEvent) == [] and rig.reads[0][1] == rig.now - 2 * HOUR


async def test_after_a_long_downtime_the_first_cycle_reads_no_further_back_than_the_lookback():
    async def downtime(lookback: int) -> Rig:
        rig = Rig(with_glob(settings(), fill_detail_lookback_sec=lookback))
        rig.sim._positions[A] = _SimPosition(Dec(10), Dec(100))
        await rig.start()
        await rig.cycle("100.2", after_ms=0)  # adopt, exits 3 @ 100.80 and 7 @ 105
        rig.candle("100.3", "101", "100.1", "100.7")  # the first exit fills while the bot is down
        rig.now += 8 * HOUR
        await rig.start(rig.store)  # restart on the same state
        await rig.cycle("100.5", after_ms=0)
        return rig

    rig = await downtime(6 * 3600)
    assert rig.reads[-1][1] == rig.now - 6 * HOUR  # not from the last cycle, 8 h ago
    assert rig.events(FillEvent) == []
    rig = await downtime(9 * 3600)
    assert rig.reads[-1][1] < rig.now - 8 * HOUR  # from the last cycle before the downtime
    assert [(e.side, e.amount, e.purpose) for e in rig.events(FillEvent)] == [("sell", 3, "exit")]


# -- FETCH_FILL_DETAILS_ON_SYNC ---------------------------------------------------------------
async def test_with_fill_details_off_nothing_reads_fills_and_the_trade_is_priced_from_what_the_bot_knows(caplog):
    caplog.set_level(logging.INFO, logger="crot.profile")
    on = await held_and_closed(settings())
    off = await held_and_closed(with_glob(settings(), fetch_fill_details_on_sync=False))
    assert on.reads and off.reads == []
    assert on.events(FillEvent) and off.events(FillEvent) == []  # no fill events (UI fill list, audit)
    (t_on,), (t_off,) = on.events(TradeClosed), off.events(TradeClosed)
    exits = [o for o in off.sim.all_orders(A) if o.kind == "limit" and o.reduce_only and o.filled > 0]
    avg = sum((o.average_price * o.filled for o in exits), Dec(0)) / sum((o.filled for o in exits), Dec(0))
    assert t_off.entry_price == 99 and t_off.contracts == 15
    assert t_off.exit_price == avg == t_on.exit_price  # the closing orders' average price
    p = settings().side("long")
    estimate = (15 * (Dec(99) * Dec(str(p.buy_fee_rate)) + avg * Dec(str(p.sell_fee_rate)))).quantize(
        Dec("0.00000001"), rounding=ROUND_UP)
    assert t_off.fees == estimate != t_on.fees == fees_of(on)  # estimated, not the venue's fees
    assert t_off.pnl == (avg - 99) * 15 - estimate
    assert t_off.reason == t_on.reason == "take_profit"
    assert any("fill details off" in r.getMessage() for r in caplog.records)


async def test_with_fill_details_off_and_no_closing_order_known_the_exit_is_the_last_price():
    off = await held_and_closed(with_glob(settings(), fetch_fill_details_on_sync=False), restart_before_close=True)
    (trade,) = off.events(TradeClosed)
    assert off.reads == []
    mid = (await off.sim.fetch_order_book_top([A]))[A].mid  # the last price at 109
    assert 108.9 < mid < 109.1
    assert trade.exit_price == mid and trade.entry_price == 99 and trade.reason == "closed"


# -- CANCEL_UNSAFE_HIDDEN_CLOSE_ORDERS ------------------------------------------------------------
async def hidden(kind: str, trigger: str, amount: int, *, cancel: bool, reserve: bool, cycles: int = 2) -> Rig:
    """A long 10 @ 100 at 100.2 with a reduce-only `kind` sell order for `amount` at `trigger`
    that the bot did not place (set by hand on the venue); `cycles` runner cycles."""
    s = settings(cancel_unsafe_hidden_close_orders=cancel, hard_stop_unprotected_close_after_sec=3600.0)
    rig = Rig(s, new_sim(reserve=reserve))
    rig.sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    rig.sim._new_order(None, A, "sell", kind, None, Dec(trigger), Dec(amount), True, False)
    await rig.start()
    for k in range(cycles):
        await rig.cycle("100.2", after_ms=0 if k == 0 else 47_003 + k * 1_711)
    return rig


async def resting(rig: Rig, kind: str):
    return [o for o in await rig.sim.fetch_open_orders() if o.kind == kind]


async def repairs(rig: Rig) -> list[tuple[str, str]]:
    async with rig.store.db.execute("SELECT problem, action FROM repairs WHERE problem LIKE 'hidden%'") as cur:
        return [tuple(r) for r in await cur.fetchall()]


async def test_a_hidden_take_profit_that_keeps_the_stop_off_is_cancelled_and_the_stop_placed():
    # the venue counts stops in the closeable amount: the take-profit's 10 leave no room for the stop
    rig = await hidden("take_profit", "104", 10, cancel=True, reserve=True)
    assert await resting(rig, "take_profit") == []
    stops = await resting(rig, "stop_loss")
    assert [s.amount for s in stops] == [10] and stops[0].reduce_only
    (rep,) = [e for e in rig.events(Repair) if e.problem.startswith("hidden")]
    assert rep.action == "cancelled" and "no stop covers the position" in rep.problem
    assert await repairs(rig) == [(rep.problem, "cancelled")]


async def test_with_the_setting_off_the_hidden_take_profit_is_left_alone_and_reported_once():
    rig = await hidden("take_profit", "104", 10, cancel=False, reserve=True, cycles=3)
    assert [o.amount for o in await resting(rig, "take_profit")] == [10]
    assert await resting(rig, "stop_loss") == []  # the venue refuses the stop: the bot says so
    reps = [e for e in rig.events(Repair) if e.problem.startswith("hidden")]
    assert [e.action for e in reps] == ["left alone (CANCEL_UNSAFE_HIDDEN_CLOSE_ORDERS off)"]
    assert "unsafe" in reps[0].problem and len(await repairs(rig)) == 1
    assert "long" in rig.runner.block_reason()  # no new risk while the position lacks its stop


async def test_a_hidden_take_profit_that_blocks_the_exit_ladder_is_cancelled_only_with_the_setting_on():
    # stops do not reserve here: the stop goes on, the take-profit's 6 leave 4 for the ladder's 10
    on = await hidden("take_profit", "104", 6, cancel=True, reserve=False)
    off = await hidden("take_profit", "104", 6, cancel=False, reserve=False)
    for rig in (on, off):
        assert [s.amount for s in await resting(rig, "stop_loss")] == [10]
    assert await resting(on, "take_profit") == []
    assert sum(o.amount for o in await resting(on, "limit")) == 10  # the whole ladder rests
    assert [o.amount for o in await resting(off, "take_profit")] == [6]
    assert sum(o.amount for o in await resting(off, "limit")) < 10


async def test_a_safe_hidden_order_is_left_alone_and_a_protective_one_is_never_cancelled_before_the_stop():
    # a small take-profit next to a resting stop and a full ladder: safe
    rig = Rig(settings(), new_sim(reserve=False))
    rig.sim._positions[A] = _SimPosition(Dec(10), Dec(100))
    await rig.start()
    await rig.cycle("100.2", after_ms=0)  # stop and ladder
    assert sum(o.amount for o in await resting(rig, "limit")) == 10
    # then a take-profit for 1 is set by hand (the venue here lets it rest beside the ladder)
    rig.sim._new_order(None, A, "sell", "take_profit", None, Dec("104"), Dec(1), True, False)
    await rig.cycle("100.2", after_ms=43_109)
    assert [o.amount for o in await resting(rig, "take_profit")] == [1]
    assert [e.action for e in rig.events(Repair) if e.problem.startswith("hidden")] == \
        ["left alone (safe: the stop and the exit orders rest)"]
    # a hidden trigger below the price is a stop: with none of the bot's resting, it stays
    rig = await hidden("trigger", "96", 10, cancel=True, reserve=True)
    assert [o.amount for o in await resting(rig, "trigger")] == [10]
    assert [e.action for e in rig.events(Repair) if e.problem.startswith("hidden")] == \
        ["left alone: on the losing side it is the position's only stop"]
