"""Live start: read the HTX account set-up, apply what the settings allow, refuse the rest.

The bot trades USDT-M linear swaps in cross margin, one-way position mode, through the v5
endpoints (documented for Multi-Assets Collateral accounts). A user can change each of these
on the website; trading on a different set-up sends orders the venue refuses or, worse,
accepts with another meaning (a hedge-mode account opens a second position instead of
reducing). So before the first order: read, fix where SET_POSITION_MODE_ON_START /
SET_LEVERAGE_ON_START say so, and otherwise stop with one line naming the problem and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.exchange import errors as E


@dataclass
class SetupReport:
    """What was found and what was changed (each line is shown to the user at start)."""

    lines: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


async def prepare_account(exchange: Any, settings: Any, symbols: list[str]) -> SetupReport:
    """Verify (and where allowed, apply) the account set-up; raises `AccountSetupError`."""
    g = settings.glob
    report = SetupReport()
    setup = await exchange.fetch_account_setup(symbols)
    if setup.assets_mode is not None and setup.assets_mode != 1:
        raise E.AccountSetupError(
            "HTX account is in Single-Asset Collateral mode; CROT trades through HTX's v5 API, which is for "
            "Multi-Assets Collateral mode: switch it on HTX (Futures > Settings > Asset mode) and start again",
            venue="htx")
    isolated = sorted(s for s, m in setup.position_margin_modes.items() if m != "cross")
    if isolated:
        raise E.AccountSetupError(
            f"open isolated-margin position(s) on {', '.join(isolated)}: CROT trades cross margin only; "
            "close them or move them to cross margin on HTX, then start again", venue="htx")
    if setup.position_mode == "dual_side":
        if not g.set_position_mode_on_start:
            raise E.AccountSetupError(
                "HTX account is in hedge (dual-side) position mode: CROT needs one-way mode; switch it on HTX or "
                "set SET_POSITION_MODE_ON_START=true", venue="htx")
        try:
            await exchange.set_one_way_mode()
        except E.ExchangeError as exc:
            raise E.AccountSetupError(
                f"could not switch HTX to one-way position mode ({exc.message}); HTX refuses while orders or "
                "positions exist: close them, or switch on the website, then start again", venue="htx") from None
        report.changed.append("position mode: hedge -> one-way")
    elif setup.position_mode not in (None, "single_side"):
        raise E.AccountSetupError(f"unknown HTX position mode {setup.position_mode!r}", venue="htx")
    report.lines.append("account: multi-assets collateral, cross margin, one-way mode")
    if g.set_leverage_on_start:
        # one account leverage per contract: both sides share it (the long side's value)
        p = settings.side("long")
        wanted = int(p.account_leverage or p.leverage)
        for symbol in symbols:
            current = setup.leverage.get(symbol)
            if current is not None and int(current) == wanted:
                continue
            try:
                await exchange.set_leverage(symbol, wanted)
            except E.ExchangeError as exc:
                raise E.AccountSetupError(
                    f"HTX refused leverage {wanted}x on {symbol} ({exc.message}): lower LEVERAGE / "
                    "ACCOUNT_LEVERAGE to what the contract's tier allows", venue="htx") from None
            setup.leverage[symbol] = Decimal(wanted)
            report.changed.append(f"leverage {symbol}: {current} -> {wanted}x")
    else:
        for side in ("long", "short"):
            p = settings.side(side)
            if not p.account_leverage:
                continue
            wrong = sorted(s for s in symbols if setup.leverage.get(s) is not None
                           and int(setup.leverage[s]) != int(p.account_leverage))
            if wrong:
                raise E.AccountSetupError(
                    f"ACCOUNT_LEVERAGE={p.account_leverage} but HTX has other leverage on {', '.join(wrong)}: set "
                    "SET_LEVERAGE_ON_START=true, fix it on HTX, or set ACCOUNT_LEVERAGE=0 to read it", venue="htx")
    levels = sorted({str(v) for v in setup.leverage.values() if v is not None})
    report.lines.append("leverage on HTX: " + (", ".join(f"{x}x" for x in levels) if levels else "unknown"))
    return report


async def check_foreign_orders(exchange: Any, store: Any, settings: Any) -> list[str]:
    """One bot per account (issue 17, item 7): the lock catches a second bot on this machine;
    this catches one elsewhere. An open order whose client id this bot's state never issued
    was placed by another program on the same keys, which would fight this bot over the same
    positions. Orders without a client id were placed by hand (website or app): reported, left
    alone. Returns the lines to show; raises `AccountSetupError` under FOREIGN_ORDERS_ON_START=refuse."""
    orders = [o for o in await exchange.fetch_open_orders(None) if o.is_open]
    foreign, manual = [], []
    for o in orders:
        if o.client_order_id is None:
            manual.append(o)
        elif await store.order_purpose(o.client_order_id) is None:
            foreign.append(o)
    lines = []
    if manual:
        lines.append(f"{len(manual)} open order(s) placed by hand (no client id) left alone: "
                     + ", ".join(sorted({o.symbol for o in manual})))
    if foreign:
        sample = ", ".join(f"{o.symbol} {o.side} {o.amount} ({o.kind}, client id {o.client_order_id})"
                           for o in foreign[:3])
        text = (f"{len(foreign)} open order(s) on the HTX account carry client ids this bot never issued "
                f"(another bot or program on these API keys, or another DATA_DIR): {sample}")
        if settings.glob.foreign_orders_on_start == "refuse":
            raise E.AccountSetupError(text + "; stop the other bot or cancel those orders, or set "
                                      "FOREIGN_ORDERS_ON_START=warn, then start again", venue="htx")
        lines.append(text + "; left alone (FOREIGN_ORDERS_ON_START=warn)")
    return lines


async def check_split_accounts(split: Any, state_symbols: set[str], store: Any) -> None:
    """Two accounts (COINS_2): refuse to start while an account holds the bot's position or
    orders on a coin that now trades on the other account (COINS / COINS_2 changed with the
    position open). The bot would not see it any more - reconciliation would record it as
    closed, its stop would no longer be managed and its entry orders could still fill. Put the
    coin back in its list until the position is gone, or close it on HTX. Raises
    `AccountSetupError` naming each coin."""
    problems: list[str] = []
    for account, ex in (("1", split.first), ("2", split.second)):
        held = {p.symbol for p in await ex.fetch_positions(None) if p.symbol in state_symbols}
        for o in await ex.fetch_open_orders(None):
            if o.is_open and o.client_order_id is not None and await store.order_purpose(o.client_order_id):
                held.add(o.symbol)
        for symbol in sorted(s for s in held if split.account_of(s) != account):
            where = "COINS_2" if account == "2" else "COINS"
            problems.append(f"{symbol}: account {account} holds the bot's position or orders on it, but it now trades "
                            f"on account {split.account_of(symbol)}; put it back in {where} until they are gone, or "
                            "close them on HTX")
    if problems:
        raise E.AccountSetupError("; ".join(problems) + ", then start again", venue="htx")
