"""Two HTX accounts behind the one `Exchange` the engine trades through (COINS_2).

The coins of COINS_2 trade on the second account (HTX_API_KEY_2 / HTX_API_SECRET_2), every other
coin on the first. Each order, cancel, amend and per-symbol read goes to the account that owns
the symbol; the account-wide reads (positions, open orders, fills) are read from both and
merged, each account contributing only the symbols it owns (a position or order of the other
account's coin there is not the bot's: it is left alone and reported once). Books and funding
are read per account too (public on HTX; each paper simulator has its own).

The balance the engine reads is the two accounts together (equity protections, the account
pane); sizing and the margin caps use the balance of the account that trades the symbol
(`balances`, read by `Snapshot.balance_for`), so each account keeps its own caps. Stops are placed on the account that holds
the position, as any order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .errors import ExchangeError, redact
from .types import Balance, BookTop, Fill, FundingRate, Market, Order, OrderKind, Position, PositionSide, Side

log = logging.getLogger("crot.accounts")

#: the accounts' names in the UI and the log
FIRST, SECOND = "1", "2"


class SplitAccounts:
    def __init__(self, first: Any, second: Any, second_symbols: Sequence[str]):
        self.first = first
        self.second = second
        self.second_symbols = frozenset(second_symbols)
        self.name = getattr(first, "name", "htx")
        self.balances: dict[str, Balance] = {}
        self.known_symbols: set[str] = set(second_symbols)  # every traded symbol (the engine's markets)
        self._reported: set[tuple[str, str]] = set()

    # -- routing ---------------------------------------------------------------------------
    def account_of(self, symbol: str) -> str:
        return SECOND if symbol in self.second_symbols else FIRST

    def _for(self, symbol: str) -> Any:
        return self.second if symbol in self.second_symbols else self.first

    def _mine(self, account: str, symbol: str) -> bool:
        ours = (symbol in self.second_symbols) == (account == SECOND)
        if not ours and (account, symbol) not in self._reported:
            self._reported.add((account, symbol))
            owner = "the second account (COINS_2)" if account == FIRST else "the first account (COINS)"
            log.warning("account %s holds %s, which %s trades: left alone", account, symbol, owner)
        return ours

    # -- reads -----------------------------------------------------------------------------
    async def load_markets(self, reload: bool = False) -> Mapping[str, Market]:
        """Each symbol's market as its account's client knows it (on HTX the same list)."""
        markets = dict(await self.first.load_markets(reload))
        for symbol, market in (await self.second.load_markets(reload)).items():
            if symbol in self.second_symbols or symbol not in markets:
                markets[symbol] = market
        self.known_symbols |= set(markets)
        return markets

    def market(self, symbol: str) -> Market:
        return self._for(symbol).market(symbol)

    async def fetch_balance(self) -> Balance:
        self.balances = {FIRST: await self.first.fetch_balance(), SECOND: await self.second.fetch_balance()}
        return _total(list(self.balances.values()))

    def _split(self, symbols: Sequence[str] | None):  # noqa: ANN202 - a generator of triples
        """(account, client, its share of `symbols`) for each account asked anything (None: all)."""
        for account, ex in ((FIRST, self.first), (SECOND, self.second)):
            wanted = None if symbols is None else [s for s in symbols if self.account_of(s) == account]
            if wanted != []:
                yield account, ex, wanted

    async def fetch_positions(self, symbols: Sequence[str] | None = None) -> list[Position]:
        return [p for account, ex, wanted in self._split(symbols)
                for p in await ex.fetch_positions(wanted) if self._mine(account, p.symbol)]

    async def fetch_open_orders(self, symbols: Sequence[str] | None = None) -> list[Order]:
        return [o for account, ex, wanted in self._split(symbols)
                for o in await ex.fetch_open_orders(wanted) if self._mine(account, o.symbol)]

    async def fetch_order(self, symbol: str, *, order_id: str | None = None, client_order_id: int | None = None,
                          kind: OrderKind = "limit") -> Order | None:
        return await self._for(symbol).fetch_order(symbol, order_id=order_id, client_order_id=client_order_id,
                                                   kind=kind)

    async def fetch_fills(self, symbols: Sequence[str], since_ms: int) -> list[Fill]:
        return [f for _a, ex, wanted in self._split(list(symbols)) for f in await ex.fetch_fills(wanted, since_ms)]

    async def fetch_funding_rates(self, symbols: Sequence[str]) -> dict[str, FundingRate]:
        return {k: v for _a, ex, wanted in self._split(list(symbols))
                for k, v in (await ex.fetch_funding_rates(wanted)).items()}

    async def fetch_leverage(self, symbol: str) -> Decimal | None:
        return await self._for(symbol).fetch_leverage(symbol)

    async def fetch_order_book_top(self, symbols: Sequence[str]) -> dict[str, BookTop]:
        # (public on HTX, the same from either client; each paper simulator has its own books)
        return {k: v for _a, ex, wanted in self._split(list(symbols))
                for k, v in (await ex.fetch_order_book_top(wanted)).items()}

    async def fetch_account_view(self) -> tuple[Balance, list[Position], list[Order], frozenset[str], str]:
        """The cycle's account read, isolated per account: (balance, positions, open orders of
        the accounts that answered, the symbols of an account that did not, why). One account
        down must not keep the other's positions from their stops; the engine leaves the
        unknown symbols as they are until their account answers (never "closed"). Both down:
        the first error is raised."""
        balances: dict[str, Balance] = {}
        positions: list[Position] = []
        orders: list[Order] = []
        unknown: set[str] = set()
        why: list[str] = []
        first_error: Exception | None = None
        for account, ex in ((FIRST, self.first), (SECOND, self.second)):
            try:
                bal = await ex.fetch_balance()
                pos = [p for p in await ex.fetch_positions(None) if self._mine(account, p.symbol)]
                opn = [o for o in await ex.fetch_open_orders(None) if self._mine(account, o.symbol)]
            except ExchangeError as exc:
                first_error = first_error or exc
                why.append(f"account {account} unreachable ({type(exc).__name__}: {redact(exc)})")
                unknown |= self._symbols_of(account)
                continue
            balances[account] = bal
            positions += pos
            orders += opn
        if not balances:
            assert first_error is not None
            raise first_error
        self.balances = balances
        return _total(list(balances.values())), positions, orders, frozenset(unknown), "; ".join(why)

    def _symbols_of(self, account: str) -> frozenset[str]:
        """The symbols an account trades (the first: every symbol not in COINS_2)."""
        if account == SECOND:
            return self.second_symbols
        return frozenset(self.known_symbols) - self.second_symbols

    # -- orders ----------------------------------------------------------------------------
    async def place_post_only(self, symbol: str, side: Side, amount: Decimal, price: Decimal, client_order_id: int,
                              *, stop_loss: Decimal | None = None) -> Order:
        return await self._for(symbol).place_post_only(symbol, side, amount, price, client_order_id,
                                                       stop_loss=stop_loss)

    async def place_reduce_only_limit(self, symbol: str, position_side: PositionSide, amount: Decimal,
                                      price: Decimal, client_order_id: int) -> Order:
        return await self._for(symbol).place_reduce_only_limit(symbol, position_side, amount, price, client_order_id)

    async def close_reduce_only_market(self, symbol: str, position_side: PositionSide, amount: Decimal,
                                       client_order_id: int) -> Order:
        return await self._for(symbol).close_reduce_only_market(symbol, position_side, amount, client_order_id)

    async def open_market(self, symbol: str, side: Side, amount: Decimal, client_order_id: int) -> Order:
        return await self._for(symbol).open_market(symbol, side, amount, client_order_id)

    async def place_stop_loss(self, symbol: str, position_side: PositionSide, amount: Decimal,
                              trigger_price: Decimal, client_order_id: int) -> Order:
        return await self._for(symbol).place_stop_loss(symbol, position_side, amount, trigger_price,
                                                       client_order_id)

    async def cancel_order(self, order: Order) -> Order:
        return await self._for(order.symbol).cancel_order(order)

    async def amend_order(self, order: Order, *, new_client_order_id: int, price: Decimal | None = None,
                          amount: Decimal | None = None) -> Order | None:
        return await self._for(order.symbol).amend_order(order, new_client_order_id=new_client_order_id,
                                                         price=price, amount=amount)

    # -- the paper simulators (candles move each account's prices) ------------------------
    def set_price(self, symbol: str, price: Any, ts_ms: int) -> None:
        self._for(symbol).set_price(symbol, price, ts_ms)

    def on_candle(self, symbol: str, *args: Any) -> None:
        self._for(symbol).on_candle(symbol, *args)

    async def close(self) -> None:
        try:
            await self.first.close()
        finally:
            await self.second.close()


def _total(balances: list[Balance]) -> Balance:
    """The accounts' balances added up (the first one's currency and time)."""
    return Balance(sum((b.equity for b in balances), Decimal(0)), sum((b.free for b in balances), Decimal(0)),
                   sum((b.used_margin for b in balances), Decimal(0)),
                   sum((b.unrealized_pnl for b in balances), Decimal(0)), balances[0].currency, balances[0].ts_ms)
