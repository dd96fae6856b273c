"""COINS_2: the coins of COINS_2 trade on a second HTX account (HTX_API_KEY_2) through the same
engine. Every order of such a coin, its stop included, goes to the second account; sizing and
the margin caps use that account's balance; the panes show each account's lines. The two
accounts are two simulated venues here (and two loopback HTX venues through ccxt in
test_live_htx_venue.py). Unaligned clock."""

from __future__ import annotations

from decimal import Decimal as Dec

import pytest

from engine.exchange.accounts import SplitAccounts
from engine.exchange.sim import SimConfig, SimulatedExchange, _SimPosition
from engine.runtime.engine import Engine
from engine.runtime.events import Account, EventBus, Positions
from engine.settings import Settings
from engine.settings.envfile import parse_lines
from engine.settings.loader import SettingsError, settings_from_assignments
from engine.store.state import StateStore

from test_runtime_protection import A, B, C, D, MARKETS, PRICES, T0, force_entries


def two_accounts(second_wallet: str = "100000") -> tuple[SimulatedExchange, SimulatedExchange, SplitAccounts]:
    """Account 1 trades A and B, account 2 trades C and D (COINS_2)."""
    sims = []
    for names, wallet in (((A, B), "100000"), ((C, D), second_wallet)):
        sim = SimulatedExchange([m for m in MARKETS if m.symbol in names],
                                SimConfig(initial_wallet=Dec(wallet), stops_reserve_closeable=False),
                                start_ms=T0 - 60_000)
        for s in names:
            sim.set_price(s, PRICES[s], T0 - 60_000)
        sims.append(sim)
    return sims[0], sims[1], SplitAccounts(sims[0], sims[1], [C, D])


async def engine_on(exchange, seen=None) -> Engine:
    bus = EventBus()
    if seen is not None:
        bus.subscribe(seen.append)
    e = Engine(Settings.defaults(), exchange, await StateStore.open(":memory:", inline=True), bus,
               symbols=[A, B, C, D])
    await e.start()
    return e


async def test_each_position_gets_its_stop_on_its_own_account():
    first, second, both = two_accounts()
    first._positions[A] = _SimPosition(Dec(10), Dec(100))  # long ETH on account 1
    second._positions[C] = _SimPosition(Dec(-500), Dec(2))  # short XRP on account 2
    seen: list = []
    engine = await engine_on(both, seen)
    await engine.step(T0 + 7_129, {}, new_candle=False)
    stops1 = [(o.symbol, o.side, o.amount) for o in await first.fetch_open_orders() if o.kind == "stop_loss"]
    stops2 = [(o.symbol, o.side, o.amount) for o in await second.fetch_open_orders() if o.kind == "stop_loss"]
    assert stops1 == [(A, "sell", 10)] and stops2 == [(C, "buy", 500)]
    views = {v.symbol: v.account for e in seen if isinstance(e, Positions) for v in e.positions}
    assert views == {A: "1", C: "2"}
    acct = [e for e in seen if isinstance(e, Account)][-1]
    assert [a[0] for a in acct.accounts] == ["1", "2"]
    assert acct.equity == acct.accounts[0][1] + acct.accounts[1][1]
    # a close from the operator goes to the account that holds the position
    from engine.runtime.manual import ManualRequest

    engine.request_manual(ManualRequest("close", C))
    await engine.step(T0 + 68_311, {}, new_candle=False)
    assert C not in {p.symbol for p in await second.fetch_positions()}
    assert A in {p.symbol for p in await first.fetch_positions()}
    await engine.store.close()


async def test_sizing_and_caps_use_the_balance_of_the_account_that_trades_the_coin(monkeypatch):
    async def entry_notional(second_wallet: str) -> tuple[Dec, list]:
        first, second, both = two_accounts(second_wallet)
        seen: list = []
        engine = await engine_on(both, seen)
        force_entries(monkeypatch, engine)  # a long entry on C and a short one on D (account 2)
        await engine.step(T0 + 13_877, {}, new_candle=True)
        orders = [o for o in await second.fetch_open_orders() if not o.reduce_only]
        assert orders and not [o for o in await first.fetch_open_orders() if not o.reduce_only]
        await engine.store.close()
        return sum((o.amount * o.price for o in orders), Dec(0)), seen

    rich, _ = await entry_notional("100000")
    poor, _ = await entry_notional("1000")
    # 100x less equity on the second account: ladders about 100x smaller, not sized from the
    # 101,000 USDT both accounts hold together
    assert poor * 50 < rich


async def test_a_position_of_the_other_accounts_coin_is_left_alone():
    first, second, both = two_accounts()
    first._markets[C] = second.market(C)  # account 1 can trade C too ...
    first._state[C] = second._state[C]
    first._positions[C] = _SimPosition(Dec(7), Dec(2))  # ... and holds it (by hand): not the bot's
    engine = await engine_on(both)
    await engine.step(T0 + 7_129, {}, new_candle=False)
    assert [o for o in await first.fetch_open_orders() if o.symbol == C] == []
    assert (await first.fetch_positions())[0].contracts == 7
    await engine.store.close()


def test_a_coin_trades_on_one_account_only():
    assignments, _ = parse_lines(["COINS=eth,xrp", "COINS_2=xrp,ada"])
    with pytest.raises(SettingsError) as info:
        settings_from_assignments(assignments)
    assert "xrp in both COINS and COINS_2" in str(info.value)
    assignments, _ = parse_lines(["COINS=eth", "COINS_2=xrp,ada"])
    assert settings_from_assignments(assignments).glob.coins_2 == ("xrp", "ada")


async def test_live_mode_needs_the_second_accounts_keys():
    from engine.exchange import errors as E
    from engine.runtime.live import htx_config

    assignments, _ = parse_lines(["COINS=eth", "COINS_2=xrp", "HTX_API_KEY=k1", "HTX_API_SECRET=s1"])
    s = settings_from_assignments(assignments)
    with pytest.raises(E.AuthError) as info:
        htx_config(s, paper=False, account=2)
    assert "HTX_API_KEY_2" in str(info.value)
    assert htx_config(s, paper=True, account=2).api_key == ""


class Down:
    """An account that does not answer (network down, or its key revoked) while `down`."""

    def __init__(self, inner, exc):
        self._inner, self.exc, self.down = inner, exc, False

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_") or name in ("market", "set_price", "on_candle"):
            return attr

        async def call(*a, **k):
            if self.down:
                raise self.exc
            return await attr(*a, **k)
        return call


@pytest.mark.parametrize("why", ["network", "auth"])
async def test_one_account_down_never_keeps_the_other_from_its_stops_nor_closes_its_own(why):
    from engine.exchange import errors as E
    from engine.runtime.events import ErrorEvent, TradeClosed

    first, second, _ = two_accounts()
    exc = E.NetworkError("timed out", venue="htx") if why == "network" else E.AuthError("key revoked", venue="htx")
    flaky = Down(second, exc)
    both = SplitAccounts(first, flaky, [C, D])
    first._positions[A] = _SimPosition(Dec(10), Dec(100))
    second._positions[C] = _SimPosition(Dec(-500), Dec(2))
    seen: list = []
    engine = await engine_on(both, seen)
    await engine.step(T0 + 7_129, {}, new_candle=False)
    (stop_a,) = [o for o in await first.fetch_open_orders() if o.kind == "stop_loss"]
    flaky.down = True
    await first.cancel_order(stop_a)  # account 1's stop is lost while account 2 is down
    await engine.step(T0 + 68_311, {}, new_candle=False)
    assert [o.symbol for o in await first.fetch_open_orders() if o.kind == "stop_loss"] == [A]  # back at once
    assert C in engine.profiles["short"].state.positions  # unknown, not closed
    assert not [e for e in seen if isinstance(e, TradeClosed)]
    assert any(isinstance(e, ErrorEvent) and e.where == "accounts" and "account 2 unreachable" in e.message
               for e in seen)
    flaky.down = False  # back: everything as it was
    await engine.step(T0 + 129_877, {}, new_candle=False)
    assert C in engine.profiles["short"].state.positions
    assert [o.symbol for o in await second.fetch_open_orders() if o.kind == "stop_loss"] == [C]
    await engine.store.close()


async def test_a_coin_moved_to_the_other_account_with_its_position_open_refuses_the_start():
    from engine.exchange import errors as E
    from engine.runtime.account_setup import check_split_accounts

    first, second, both = two_accounts()
    second._positions[C] = _SimPosition(Dec(-500), Dec(2))
    engine = await engine_on(both)
    await engine.step(T0 + 7_129, {}, new_candle=False)
    held = {s for r in engine.profiles.values() for s in (*r.state.positions, *r.state.ladders)}
    await check_split_accounts(both, held, engine.store)  # as configured: fine
    moved = SplitAccounts(first, second, [D])  # C taken out of COINS_2 (into COINS) with the position open
    with pytest.raises(E.AccountSetupError) as info:
        await check_split_accounts(moved, held, engine.store)
    assert "XRP/USDT:USDT: account 2 holds the bot's position or orders on it" in str(info.value)
    assert "put it back in COINS_2" in str(info.value)
    await engine.store.close()
