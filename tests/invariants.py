"""Account invariants checked after replay steps (shared by the replay and chaos tests).

Every position has exactly one exchange-side stop sized to it; close orders never exceed the
position; no coin has orders or positions of both sides; committed margin stays within the
per-position and total caps; no client order id was ever sent for two different orders; and,
after every order call (not only between steps), no stop is cancelled while it is a position's
only protection and no position stays without a stop past the bounded close-out time.
"""

from decimal import Decimal

from engine.runtime.snapshot import order_profile
from engine.settings import Settings


class Invariants:
    def __init__(self, settings: Settings):
        self.p = settings.side("long")
        self.sim = None
        self.checked = 0
        self.max_positions = 0
        self.peak_equity = Decimal(0)

    def wrap(self, sim):
        """The exchange the engine gets: every order call is checked as it happens
        (`StepChecker`), and every placement is logged as sent (`SentLog`)."""
        from engine.runtime.chaos import SentLog, StepChecker

        self.sim = sim
        self.sent = SentLog(sim)
        bound = int(self.p.hard_stop_unprotected_close_after_sec * 1000) + 2 * 300_000
        self.step_checker = StepChecker(self.sent, sim, reserve=sim.config.stops_reserve_closeable, bound_ms=bound)
        return self.step_checker

    async def __call__(self, step: int, total: int) -> None:
        await self.check(step)

    async def check(self, step: int) -> None:
        sim = self.sim
        positions = {p.symbol: p for p in await sim.fetch_positions()}
        orders = [o for o in await sim.fetch_open_orders() if o.is_open]
        equity = sim.equity()
        self.peak_equity = max(self.peak_equity, equity)
        self.max_positions = max(self.max_positions, len(positions))
        lev = min(Decimal(self.p.leverage), sim.config.default_leverage)
        total_committed = Decimal(0)
        for symbol in {o.symbol for o in orders} | set(positions):
            pos = positions.get(symbol)
            mine = [o for o in orders if o.symbol == symbol]
            stops = [o for o in mine if o.kind == "stop_loss"]
            closes = [o for o in mine if o.reduce_only and o.kind == "limit"]
            entries = [o for o in mine if not o.reduce_only]
            market = sim.market(symbol)
            if pos is not None:
                # an exchange-side stop, sized to the position, on the losing side
                assert len(stops) == 1, (step, symbol, stops)
                assert stops[0].amount == pos.contracts, (step, symbol, stops[0], pos)
                assert stops[0].reduce_only
                assert order_profile(stops[0]) == pos.side
                assert sum(o.remaining for o in closes) <= pos.contracts
                assert all(order_profile(o) == pos.side for o in mine), (step, symbol, mine)
            else:
                assert not stops and not closes, (step, symbol, mine)
            # never both sides on one coin
            assert len({order_profile(o) for o in entries}) <= 1, (step, symbol, entries)
            committed = sum((o.remaining * o.price * market.contract_size for o in entries), Decimal(0))
            if pos is not None:
                committed += pos.contracts * pos.entry_price * market.contract_size
            margin = committed / lev
            assert margin <= self.peak_equity * Decimal(str(self.p.ema_max_position_margin_fraction)) * Decimal(
                "1.001"), (step, symbol, margin)
            total_committed += margin
        assert total_committed <= self.peak_equity * Decimal(str(self.p.ema_max_total_margin_fraction)) * Decimal(
            "1.001")
        # on the calls sent: the simulator answers a known id with the existing order, so what
        # it holds can never show an id used for two different orders
        if getattr(self, "sent", None) is not None:
            assert self.sent.violations == [], self.sent.violations[:3]
            self.step_checker.end_of_step()
            assert self.step_checker.violations == [], self.step_checker.violations[:3]
        self.checked += 1
