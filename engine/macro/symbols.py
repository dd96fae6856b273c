"""Which markets feed the macro overlay: the gold proxy, BTC and the optional direct pair.

The gold proxy is an input only: callers must keep ``MacroSymbols.gold`` (and ``direct``) out
of the traded symbol list; ``resolve_symbols`` never looks at the trade list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.settings import ProfileSettings

__all__ = ["MacroSymbols", "resolve_symbols"]


@dataclass(frozen=True)
class MacroSymbols:
    gold: str | None
    btc: str | None
    direct: str | None  # gold/BTC market, only when USE_DIRECT_GOLD_BTC_PAIR and it exists
    reason: str = ""  # why something is missing ('' when gold and btc were found)

    @property
    def usable(self) -> bool:
        return self.gold is not None and self.btc is not None


def _first(candidates: Iterable[str], available: set[str]) -> str | None:
    return next((s for s in candidates if s in available), None)


def resolve_symbols(available: Iterable[str], p: ProfileSettings, btc_symbol: str | None = None) -> MacroSymbols:
    """The first GOLD_COINS coin with a USDT-M perpetual (else a USDT spot market), BTC
    (``btc_symbol`` if given and available, else BTC/USDT:USDT or BTC/USDT), and the direct
    pair (DIRECT_GOLD_BTC_SYMBOL, else <GOLD>/BTC) when enabled."""
    avail = set(available)
    gold_coin, gold = None, None
    for coin in p.gold_coins:
        c = coin.upper()
        gold = _first((f"{c}/USDT:USDT", f"{c}/USDT"), avail)
        if gold is not None:
            gold_coin = c
            break
    btc = _first(([btc_symbol] if btc_symbol else []) + ["BTC/USDT:USDT", "BTC/USDT"], avail)
    direct = None
    if p.use_direct_gold_btc_pair and gold_coin is not None:
        wanted = p.direct_gold_btc_symbol or f"{gold_coin}/BTC"
        direct = wanted if wanted in avail else None
    missing = []
    if gold is None:
        missing.append(f"no market for GOLD_COINS={','.join(p.gold_coins)}")
    if btc is None:
        missing.append("no BTC/USDT market")
    return MacroSymbols(gold, btc, direct, "; ".join(missing))
