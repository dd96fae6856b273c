"""docs/STRATEGY.md: the strategy described for users, kept in step with the code.

The document is hand-written prose (``_TEMPLATE`` below) with generated parts:

* ``{{KEY}}`` in the prose becomes the setting with its default (``HARD_STOP_LOSS_PCT`` =
  ``0.02``), marked when it is not yet in effect; an unknown key stops the generator.
* ``<<gates>>`` is the entry gate pipeline in the order a decision lists it. The gate names
  and their order are not copied by hand: ``pipeline_gates`` runs the real pipeline once
  (the runtime's extra gates, ``evaluate``, ``select_entries``) on neutral inputs and reads
  the gates of the resulting decision. Only what each gate checks and which settings it
  reads is written here, in ``GATES``; a gate of the pipeline without an entry there (or an
  entry for a gate that no longer exists) stops the generator.
* ``<<averaging>>`` and ``<<sizing>>`` list the averaging checks and the sizing limits the
  same way (from ``averaging_checks`` and ``entry_budget``).
* ``<<layers>>`` is the EMA map from the default periods and timeframes.
* ``<<settings>>`` is one table per strategy group of the settings catalog (key, default,
  effect), the planned ones marked "not yet in effect".

``crot config strategy --write docs/STRATEGY.md`` writes it; a test fails when the file is out
of date or a gate of the pipeline is missing from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .fields import GROUP_TITLES, SettingInfo, format_value
from .model import by_key, catalog

#: Settings groups that are not part of the strategy (connection, keys, files, process).
NON_STRATEGY_GROUPS = frozenset(("profiles", "secrets", "exchange", "monitoring", "runtime", "alerts"))

_SYMBOL = "BTC/USDT:USDT"
_TS_MS = 1_700_000_100_000  # any closed-candle time; the inputs are neutral


# -- what the code says ------------------------------------------------------------------------
def pipeline_gates(side: str = "long", settings: Any = None) -> tuple[Any, ...]:
    """The gates of one entry decision, in pipeline order, as the running engine builds them:
    the runtime's extra gates (spread, macro regime, reference), ``evaluate`` (signal gates,
    the extra ones inserted before ``min_score``), then ``select_entries`` (portfolio gates).
    Inputs are neutral (no books, no macro data, one symbol), so only names, order and the
    kinds under those inputs mean anything."""
    from engine.runtime.engine import Engine
    from engine.runtime.events import EventBus
    from engine.strategy import EntryContext, SymbolFeatures, evaluate, select_entries

    from .model import Settings

    s = settings or Settings.defaults()
    engine = Engine(s, None, None, EventBus(), symbols=[_SYMBOL])  # type: ignore[arg-type]
    extra = engine._extra_gates(side, _TS_MS, {}).get(_SYMBOL, ())
    f = SymbolFeatures.neutral_benchmark(_TS_MS, _SYMBOL)
    p = s.side(side)
    decision = evaluate(side, f, f, p, extra)  # type: ignore[arg-type]
    selection = select_entries([decision], EntryContext(now_ms=_TS_MS), p)
    return selection.decisions[0].gates


def averaging_check_names() -> tuple[str, ...]:
    """The averaging conditions, in the order ``averaging_checks`` evaluates them."""
    from decimal import Decimal

    from engine.risk.averaging import AveragingInput, averaging_checks

    from .model import ProfileSettings

    one = Decimal(1)
    a = AveragingInput(side="long", entry_price=one, price=one, position_notional=one, stages_done=0,
                       opened_ms=0, last_add_ms=None, now_ms=0, has_entry_orders=False, has_exit_ladder=True,
                       in_breakeven=False, add_valid=True, pullback_recovered=True, macro_allows=True)
    return tuple(c.name for c in averaging_checks(ProfileSettings(), a))


def sizing_limit_names() -> tuple[str, ...]:
    """Every limit ``entry_budget`` can apply, in its order (an empty account shows them all)."""
    from decimal import Decimal

    from engine.risk.sizing import AccountView, entry_budget

    from .model import ProfileSettings

    zero = Decimal(0)
    view = AccountView(zero, zero, zero, zero, active_positions=10**9)
    return tuple(name for name, _ in entry_budget(ProfileSettings(), view, Decimal(1)).limits)


def _stage(name: str) -> str:
    from engine.strategy import SELECTION_GATES, SIGNAL_GATES

    if name in SIGNAL_GATES:
        return "signal"
    if name in SELECTION_GATES:
        return "portfolio"
    return "runtime"


# -- what each gate, check and limit means (hand-written, checked against the code) ------------
_REF_KIND = ("hard when `EXTERNAL_PRICE_ENTRY_FILTER_ENABLED`, else penalty (the first failing "
             "reference check multiplies the score by `EXTERNAL_PRICE_SCORE_PENALTY_MULTIPLIER`, once)")
_REF_KEYS = ("EXTERNAL_PRICE_ENTRY_FILTER_ENABLED", "EXTERNAL_PRICE_SCORE_PENALTY_MULTIPLIER")

def _signal_gates() -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """The signal's gates describe themselves (engine/strategy/gates/)."""
    from engine.strategy.gates.pipeline import SIGNAL_PIPELINE

    return {g.name: (g.kind, g.checks, g.settings) for g in SIGNAL_PIPELINE}


#: gate name -> (kind, what it checks, settings it reads); the signal's gates from their objects
GATES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    **_signal_gates(),
    "spread": (
        "hard when `ENTRY_SPREAD_FILTER_ENABLED`, else info",
        "The HTX order book's bid-ask spread, in bps of the mid, <= the maximum. An unreadable "
        "book blocks only when asked to.",
        ("ENTRY_SPREAD_FILTER_ENABLED", "ENTRY_SPREAD_FILTER_MAX_BPS", "ENTRY_SPREAD_FILTER_BLOCK_IF_UNAVAILABLE")),
    "macro_regime": (
        "hard and failing when the regime blocks entries or cuts the side's budget to 0; info "
        "otherwise",
        "The macro regime the decision was taken under (value: the side's budget multiplier). "
        "Blocks in the panic regime when panic disables new entries, or when the side's "
        "multiplier is 0. Unavailable macro data never blocks. See the macro overlay below.",
        ("ENABLE_GOLD_BTC_RSI_OVERLAY", "PANIC_DISABLE_NEW_ENTRIES")),
    "ref_fresh": (
        "hard when `EXTERNAL_PRICE_DISABLE_TRADING_IF_REFERENCE_STALE`; info when "
        "`EXTERNAL_PRICE_IGNORE_REFERENCE_IF_STALE`; else like the other reference checks; info "
        "when the feed is off",
        "A MEXC quote exists and is no older than the stale limit. A missing or stale reference "
        "skips the price checks below ('not evaluated').",
        ("EXTERNAL_PRICE_ENABLED", "EXTERNAL_PRICE_STALE_AFTER_MS",
         "EXTERNAL_PRICE_DISABLE_TRADING_IF_REFERENCE_STALE", "EXTERNAL_PRICE_IGNORE_REFERENCE_IF_STALE")),
    "ref_quote_age": (
        _REF_KIND, "The older of the HTX and MEXC quotes is no older than the maximum age.",
        ("EXTERNAL_PRICE_MAX_PRICE_AGE_MS",) + _REF_KEYS),
    "ref_depth": (
        _REF_KIND, "Best bid and ask notional of the MEXC book (and of HTX where its sizes are "
        "known) >= the minimums; an empty or crossed book fails.",
        ("EXTERNAL_PRICE_MIN_VALID_BID_QTY_USDT", "EXTERNAL_PRICE_MIN_VALID_ASK_QTY_USDT") + _REF_KEYS),
    "ref_spread": (
        _REF_KIND, "The wider of the two books' bid-ask spreads <= the maximum.",
        ("EXTERNAL_PRICE_MAX_INTERNAL_SPREAD_BPS",) + _REF_KEYS),
    "ref_cooldown": (
        _REF_KIND, "No divergence cooldown is running on the symbol for this side (a "
        "`ref_divergence_1m` block under the hard entry filter starts one).",
        ("EXTERNAL_PRICE_BLOCK_DURATION_SEC",) + _REF_KEYS),
    "ref_premium": (
        _REF_KIND, "HTX mid vs MEXC mid, in bps: a long's HTX premium, or a short's HTX discount, "
        "<= its maximum.",
        ("EXTERNAL_PRICE_MAX_HTX_PREMIUM_FOR_LONG_BPS", "EXTERNAL_PRICE_MAX_HTX_DISCOUNT_FOR_SHORT_BPS")
        + _REF_KEYS),
    "ref_divergence_1m": (
        _REF_KIND + "; info until there is a minute of history",
        "|HTX one-minute change - MEXC one-minute change| <= the limit; a block under the hard "
        "entry filter puts the symbol into cooldown.",
        ("EXTERNAL_PRICE_BLOCK_IF_EXCHANGE_DIVERGENCE_1M_BPS", "EXTERNAL_PRICE_BLOCK_DURATION_SEC") + _REF_KEYS),
    "ref_directional_1m": (
        "hard when `EXTERNAL_PRICE_DIRECTIONAL_1M_GATE_ENABLED`, else info",
        "The worse of the two venues' one-minute moves in the trade's direction >= minus the "
        "block limit (a sharp move against the trade blocks).",
        ("EXTERNAL_PRICE_DIRECTIONAL_1M_GATE_ENABLED", "EXTERNAL_PRICE_DIRECTIONAL_ENTRY_1M_BLOCK_BPS")),
    "ref_impulse": (
        "info (a score bonus)",
        "Adds the impulse bonus to the score when MEXC moved the trade's way over 30 s and led "
        "HTX by at least the lead threshold, HTX did not move against the trade (when same "
        "direction is required) and `ref_premium` passed.",
        ("EXTERNAL_PRICE_IMPULSE_CONFIRMATION_ENABLED", "EXTERNAL_PRICE_MEXC_LEAD_THRESHOLD_BPS_30S",
         "EXTERNAL_PRICE_IMPULSE_SCORE_BONUS", "EXTERNAL_PRICE_REQUIRE_SAME_DIRECTION")),
    "entries_paused": (
        "hard", "New entries are not paused: the side is on (`BOT_PROFILES`, the UI switch), the "
        "operator has not paused, the macro overlay allows entries, and nothing blocks new risk "
        "(every position of both sides has a confirmed stop on the exchange; no account "
        "protection lock is in force, see Protections).",
        ("BOT_PROFILES", "PANIC_DISABLE_NEW_ENTRIES")),
    "symbol_allowed": (
        "hard", "The symbol is in the traded list.", ("COINS",)),
    "position_open": (
        "hard", "This side has no position and no entry ladder on the symbol.", ()),
    "reserved_by_other_side": (
        "hard", "The other side holds no position or orders on the symbol (including what it "
        "ordered earlier in this step).", ()),
    "cooldown": (
        "hard", "The re-entry cooldown since this side's last position on the symbol closed has "
        "run out (the longer one after a win).",
        ("COOLDOWN_MINUTES_AFTER_CLOSE", "POST_WIN_COOLDOWN_MINUTES_AFTER_CLOSE")),
    "unhealthy_positions": (
        "hard", "Unhealthy positions of this side (the signal is no longer valid, or the price is "
        "at least one minimum averaging step against the entry) <= the maximum.",
        ("MAX_UNHEALTHY_POSITIONS_FOR_NEW_ENTRIES", "EMA_AVERAGING_MIN_DRAWDOWN_STEP")),
    "crowded_market": (
        "info", "Crowded market: among the traded symbols, the number whose decision is "
        "entry-valid so far is >= the minimum count and their share >= the crowded fraction.",
        ("ENTRY_CROWDED_SIGNAL_FRACTION", "ENTRY_CROWDED_MIN_SIGNALS")),
    "crowded_min_rs60": (
        "hard when crowded, else info",
        "When crowded: directional rs60 >= max(normal minimum, crowded minimum); the extra "
        "shortfall is penalised like the normal one.",
        ("ENTRY_CROWDED_MIN_RS60_ABS", "ENTRY_MIN_RS60_ABS", "ENTRY_RS60_SHORTFALL_PENALTY_MULTIPLIER")),
    "crowded_min_rs30": (
        "hard when crowded, else info", "Likewise for rs30.",
        ("ENTRY_CROWDED_MIN_RS30_ABS", "ENTRY_MIN_RS30_ABS", "ENTRY_RS30_SHORTFALL_PENALTY_MULTIPLIER")),
    "crowded_min_score": (
        "hard when crowded, else info",
        "When crowded: the score (with the extra shortfall penalties) >= max(normal minimum, "
        "crowded minimum).",
        ("ENTRY_CROWDED_MIN_SCORE", "ENTRY_MIN_SCORE")),
    "ladders_per_signal": (
        "hard", "Candidates that passed every hard gate are ranked by score (ties: rs60, rs30, "
        "macro gap, trigger gap, symbol); only the best N open a ladder this candle (fewer when "
        "crowded). A decision rejected earlier is recorded as 'not ranked'.",
        ("ENTRY_MAX_NEW_LADDERS_PER_SIGNAL", "ENTRY_CROWDED_MAX_NEW_LADDERS_PER_SIGNAL")),
    "rate_limit": (
        "hard", "Ladders this side opened in the rolling window + the candidate's rank <= the "
        "limit.",
        ("ENTRY_RATE_LIMIT_LADDERS", "ENTRY_RATE_LIMIT_WINDOW_MINUTES")),
}

#: averaging check name -> (what it requires, settings it reads)
AVERAGING_CHECKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "averaging_enabled": ("Averaging is switched on.", ("EMA_AVERAGING_ENABLED",)),
    "stages": ("Fewer adds made on this position than the maximum number of stages.",
               ("EMA_MAX_AVERAGING_STAGES",)),
    "exit_ladder_present": ("The position has a resting reduce-only exit order.", ()),
    "no_entry_orders": ("No entry or add order of this side rests on the symbol.", ()),
    "not_breakeven": ("The position is not in breakeven mode.", ()),
    "position_age_minutes": (
        "The position is younger than the age limit (the breakeven age when the limit is 0).",
        ("NO_MORE_AVERAGING_AFTER_MINUTES", "EMA_BREAKEVEN_AFTER_HOURS")),
    "hours_since_last_add": ("At least the interval since the last add on this position.",
                             ("EMA_AVERAGING_INTERVAL_HOURS",)),
    "drawdown": (
        "The price is at least the required drawdown against the average entry price (see "
        "below).",
        ("EMA_AVERAGING_DRAWDOWN_STEP", "AVERAGING_DRAWDOWN_STEPS", "EMA_AVERAGING_MIN_DRAWDOWN_STEP",
         "EMA_AVERAGING_MIN_ATR_MULTIPLIER", "EMA_AVERAGING_ATR_ENABLED", "EMA_AVERAGING_ATR_MULTIPLIER",
         "EMA_AVERAGING_ATR_PERIOD", "EMA_AVERAGING_MIN_DAILY_VOLATILITY_FRACTION", "DAILY_VOLATILITY_WINDOW")),
    "add_valid": ("The symbol's current decision is `add_valid`: a valid signal, the strategy on, "
                  "and no failing market-structure gate.", ()),
    "pullback_recovery": ("The pullback has recovered, when required.",
                          ("EMA_AVERAGING_REQUIRE_PULLBACK_RECOVERY",)),
    "macro_allows_averaging": ("The macro overlay allows averaging (not in panic; not in risk-off "
                               "when risk-off disables averaging).", ("RISK_OFF_DISABLE_AVERAGING",)),
}

#: sizing limit name -> (the margin it allows, settings it reads)
SIZING_LIMITS: dict[str, tuple[str, tuple[str, ...]]] = {
    "budget": ("equity x the budget fraction x the budget multiplier (for an add: the add's own "
               "margin, see Averaging).", ("EMA_POSITION_BUDGET_FRACTION",)),
    "max_active_positions": (
        "0 once this side has the maximum number of positions (those below the slot notional do "
        "not count; ladders opened earlier in the cycle do). Not applied to adds.",
        ("MAX_ACTIVE_POSITIONS", "ACTIVE_POSITION_MIN_NOTIONAL_FOR_SLOT")),
    "position_margin_cap": ("equity x the per-position cap - margin already on the symbol (position "
                            "and resting entry orders).", ("EMA_MAX_POSITION_MARGIN_FRACTION",)),
    "total_margin_cap": ("equity x the total cap - margin used by every position and order on the "
                         "account.", ("EMA_MAX_TOTAL_MARGIN_FRACTION",)),
    "free_margin_after_reserve": ("free margin - the quote reserve.", ("MIN_QUOTE_RESERVE",)),
    "equity": ("0 when the account equity is 0 or negative.", ()),
}


# -- rendering ---------------------------------------------------------------------------------
def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _default(info: SettingInfo) -> str:
    return "" if info.secret else format_value(info.default)


def _info(key: str) -> SettingInfo:
    info = by_key().get(key)
    if info is None:
        raise KeyError(f"docs/STRATEGY.md names {key!r}, which is not a setting")
    return info


def _setting_ref(key: str) -> str:
    """`KEY` = `default` (an empty default says so), marked when not yet in effect."""
    info = _info(key)
    planned = " (not yet in effect)" if info.planned else ""
    default = _default(info)
    return f"`{key}` = " + (f"`{default}`" if default else "*empty*") + planned


def _prose_ref(key: str) -> str:
    """In running text a switch reads better as 'on/off by default'."""
    info = _info(key)
    if info.kind != "bool":
        return _setting_ref(key)
    planned = ", not yet in effect" if info.planned else ""
    return f"`{key}` ({'on' if info.default else 'off'} by default{planned})"


def _settings_cell(keys: Iterable[str]) -> str:
    keys = tuple(keys)
    return "<br>".join(_md(_setting_ref(k)) for k in keys) if keys else "-"


def _gates_table() -> str:
    gates = pipeline_gates()
    names = [g.name for g in gates]
    missing = [n for n in names if n not in GATES]
    unknown = [n for n in GATES if n not in names]
    if missing or unknown:
        raise ValueError(f"strategy_doc.GATES is out of step with the pipeline: no entry for {missing}, "
                         f"entries for gates the pipeline does not have: {unknown}")
    out = ["| # | Gate | Stage | Kind | What it checks | Settings (default) |", "|---|---|---|---|---|---|"]
    for i, name in enumerate(names, start=1):
        kind, what, keys = GATES[name]
        out.append(f"| {i} | `{name}` | {_stage(name)} | {_md(kind)} | {_md(what)} | {_settings_cell(keys)} |")
    return "\n".join(out)


def _checked(names: tuple[str, ...], table: dict[str, tuple[str, tuple[str, ...]]], what: str) -> None:
    missing = [n for n in names if n not in table]
    unknown = [n for n in table if n not in names]
    if missing or unknown:
        raise ValueError(f"strategy_doc.{what} is out of step with the code: no entry for {missing}, "
                         f"entries the code does not have: {unknown}")


def _averaging_table() -> str:
    names = averaging_check_names()
    _checked(names, AVERAGING_CHECKS, "AVERAGING_CHECKS")
    out = ["| # | Check | Requires | Settings (default) |", "|---|---|---|---|"]
    for i, name in enumerate(names, start=1):
        what, keys = AVERAGING_CHECKS[name]
        out.append(f"| {i} | `{name}` | {_md(what)} | {_settings_cell(keys)} |")
    return "\n".join(out)


def _sizing_table() -> str:
    names = sizing_limit_names()
    _checked(names, SIZING_LIMITS, "SIZING_LIMITS")
    out = ["| Limit | Margin it allows | Settings (default) |", "|---|---|---|"]
    for name in names:
        what, keys = SIZING_LIMITS[name]
        out.append(f"| `{name}` | {_md(what)} | {_settings_cell(keys)} |")
    return "\n".join(out)


def _layers_table() -> str:
    from engine.market.candles import minutes_to_candles

    from .model import ProfileSettings

    p = ProfileSettings()
    rows = (
        ("macro", "EMA_MACRO", p.ema_macro_timeframe, p.ema_macro_fast_minutes, p.ema_macro_slow_minutes,
         "a trend exists (`macro_trend`)"),
        ("pullback", "EMA_PULLBACK", p.ema_pullback_timeframe, p.ema_pullback_fast_minutes,
         p.ema_pullback_slow_minutes, "the price dipped against the trend and is recovering "
         "(`pullback_cross_age`, `pullback_gap`)"),
        ("trigger", "EMA_TRIGGER", p.ema_trigger_timeframe, p.ema_trigger_fast_minutes,
         p.ema_trigger_slow_minutes, "short-term momentum is aligned now (`trigger_trend`)"),
    )
    out = ["| Layer | Timeframe | Fast / slow period (minutes) | Candles (defaults) | Role |",
           "|---|---|---|---|---|"]
    for layer, prefix, tf, fast, slow, role in rows:
        out.append(f"| {layer} | `{prefix}_TIMEFRAME` = `{tf}` | `{prefix}_FAST_MINUTES` = `{fast}` / "
                   f"`{prefix}_SLOW_MINUTES` = `{slow}` | EMA{minutes_to_candles(fast, tf)} / "
                   f"EMA{minutes_to_candles(slow, tf)} | {role} |")
    return "\n".join(out)


def _group_items(group: str) -> list[SettingInfo]:
    return [i for i in catalog() if i.group == group]


def _account_protections() -> str:
    """The account protections bullet, from the `protections` group when the catalog has it."""
    items = _group_items("protections")
    if not items:
        return ""
    out = ["- **Account protections.** Locks on new risk that lift by themselves after their "
           "cool-off (the operator can lift them earlier): while one is in force for a side, that "
           "side opens no entries and does not average, and its resting entry orders are cancelled "
           "(`entries_paused` fails); stops and exits keep working. A lock survives a restart."]
    out += [f"  - {_setting_ref(i.key)}: {i.description}" for i in items]
    return "\n".join(out)


def strategy_groups() -> list[str]:
    """The settings groups the strategy document lists, in the catalog's group order."""
    present = {info.group for info in catalog()}
    return [g for g in GROUP_TITLES if g in present and g not in NON_STRATEGY_GROUPS]


def _settings_tables() -> str:
    out: list[str] = []
    for group in strategy_groups():
        items = _group_items(group)
        planned = sum(1 for i in items if i.planned)
        out += [f"### {GROUP_TITLES[group]}", ""]
        if planned == len(items):
            out += ["None of these settings is in effect yet.", ""]
        elif planned:
            out += [f"{planned} of these {len(items)} settings are not yet in effect.", ""]
        out += ["| Key | Default | Scope | Effect |", "|---|---|---|---|"]
        for info in items:
            note = "**Not yet in effect.** " if info.planned else ""
            default = f"`{_md(_default(info))}`" if _default(info) else "*empty*"
            out.append(f"| `{info.key}` | {default} | {info.scope} | {note}{_md(info.description)} |")
        out.append("")
    return "\n".join(out).rstrip("\n")


_BLOCKS = {
    "gates": _gates_table,
    "averaging": _averaging_table,
    "sizing": _sizing_table,
    "layers": _layers_table,
    "settings": _settings_tables,
    "protections": _account_protections,
}
_KEY_RE = re.compile(r"\{\{([A-Z][A-Z0-9_]*)\}\}")
_BLOCK_RE = re.compile(r"^<<([a-z]+)>>$", re.M)


def strategy_doc() -> str:
    """The text of docs/STRATEGY.md."""
    text = _KEY_RE.sub(lambda m: _prose_ref(m.group(1)), _TEMPLATE)
    text = _BLOCK_RE.sub(lambda m: _BLOCKS[m.group(1)](), text)
    text = re.sub(r"\n{3,}", "\n\n", text)  # a block that rendered nothing
    return text.strip("\n") + "\n"


_TEMPLATE = """
# Strategy

Generated by `crot config strategy --write docs/STRATEGY.md` from the code and the settings
catalog; do not edit by hand (the prose lives in `engine/settings/strategy_doc.py`, and a test
fails when this file is out of date). A setting is shown with its default, e.g.
{{HARD_STOP_LOSS_PCT}}; every setting in `.env` is described in [SETTINGS.md](SETTINGS.md).
Every setting is in effect. A setting added before its behaviour is marked *not yet in effect*:
accepted and validated, and `crot config check` warns when one is changed from its default.

Contents: [market and profiles](#market-account-and-the-two-profiles) ·
[one step](#one-step) · [layers](#the-ema-layers) · [signal and score](#signal-score-and-flags) ·
[gates](#entry-gates-in-pipeline-order) · [sizing](#sizing-and-the-entry-ladder) ·
[averaging](#averaging) · [exits](#exits) · [protections](#protections) ·
[macro overlay](#macro-overlay-gold-vs-btc) · [reference overlay](#cross-exchange-reference-mexc) ·
[settings](#settings-by-group)

## Market, account and the two profiles

CROT trades HTX linear USDT-M perpetual swaps in cross margin and one-way position mode; a long
opens by buying and closes by selling, a short the other way round. Two profiles, *long* and
*short*, run in one process ({{BOT_PROFILES}} chooses which) over the coins in `COINS`. They
share the market data, and a symbol that one side holds or has orders on is reserved from the other, so the bot
never holds opposite positions on one coin. Every per-side setting can differ between the
profiles (`LONG_` / `SHORT_` prefix).

A second HTX account can trade its own coins in the same process: the coins of {{COINS_2}} (never
also in `COINS`) trade on the account of `HTX_API_KEY_2` / `HTX_API_SECRET_2`. Each order of such a
coin, its stop included, goes to that account; sizing and the margin caps use that account's
balance; its positions and balance have their own lines in the panes (`XRP·2`, `account 2`); the
account protections, the account pane's totals and the BTC hedge (on the first account) see both
accounts together. When one account does not answer, the other's positions still get their
protection pass; the silent account's coins are left as they are (unknown, never taken for closed)
and nothing else is sent that step. Paper mode simulates the second account with its own
`DRY_RUN_EQUITY`.

{{LEVERAGE}} sizes internally; the notional of an order uses the smaller of `LEVERAGE` and the
account's real leverage, which is {{ACCOUNT_LEVERAGE}} or, when that is 0, read from the
exchange (1x when it cannot be read), so every margin cap also holds on the exchange. The bot changes the account
leverage only when `SET_LEVERAGE_ON_START` allows it.

## One step

Every poll ({{POLL_INTERVAL_SEC}} seconds) the engine:

1. ingests the newly closed candles (closed candles only; a layer on a longer timeframe is
   aggregated from the base candles) and reads the account, positions, orders and HTX books;
2. **protects first**: for every position of both sides it verifies and, where needed, places
   the exchange-side hard stop, before anything else (see [Protections](#protections));
3. runs the long cycle, then the short cycle (the short side sees what the long side just
   ordered). A cycle reconciles with the exchange, manages each position (stop, exit ladder,
   runner, breakeven, time exits, dust), cancels stale entry ladders, and, on a new closed
   candle only, decides new entries through the gate pipeline and averaging adds.

Every decision is recorded with every gate's value, threshold, kind and verdict (the audit
trail and the UI use the gate names below).

## The EMA layers

Periods are set in minutes and converted to candles of the layer's timeframe, so one value
means the same time span on any timeframe.

<<layers>>

The base timeframe of the signal is the trigger timeframe. Relative strength is measured
against BTC: rs30 and rs60 are the coin's log return minus BTC's over {{RS_FAST_WINDOW}} and
{{RS_SLOW_WINDOW}} minutes; BTC's own return over `RS_FAST_WINDOW` feeds the BTC risk filter.
The short side mirrors every inequality of the long side.

Two volatility measures are used by the exits and averaging: the *ATR rate*, the ATR of the last
{{EMA_AVERAGING_ATR_PERIOD}} base candles divided by the close (hard stop, trailing pullback,
averaging drawdown), and the *daily volatility*, the standard deviation of the base candles' log
returns over {{DAILY_VOLATILITY_WINDOW}} candles scaled to one day (averaging drawdown).

## Signal, score and flags

The raw score rewards a trend with momentum, a pullback that is not too deep and relative
strength in the trade's direction (`dir` is +1 for a long, -1 for a short):

```
macro_gap   = dir x (macro fast EMA - macro slow EMA) / close
trigger_gap = dir x (trigger fast EMA - trigger slow EMA) / close
pullback    = dir x (pullback fast EMA - pullback slow EMA) / close
raw score   = SIGNAL_EMA_GAP_WEIGHT x (macro_gap + trigger_gap)
              x max(0.01, 1 + pullback) x max(0.01, 1 + dir x rs60)
```

with {{SIGNAL_EMA_GAP_WEIGHT}}. Then every gate, in the order below, may subtract a penalty
(a failing penalty gate, a failing hard gate with a penalty, an rs shortfall), add a bonus (the
reference impulse) or multiply the score (a failing reference check while the reference entry
filter is off); a factor applies only while the score is positive. A penalty shared by several
gates (market structure, volume, pullback recovery) is charged once. `min_score` compares the
result with {{ENTRY_MIN_SCORE}}.

Each decision carries three flags:

- `valid`: a coherent directional signal (the macro trend holds, and the trigger trend holds or
  the pullback has recovered). It keeps entry ladders alive; the unhealthy-position count uses it.
- `entry_valid`: no hard gate failed; only such a decision can open a new entry ladder.
- `add_valid`: `valid`, the strategy on, and no failing market-structure gate (`chop`,
  `volume_confirmation`, `adverse_spike`, `value_area`); averaging needs it.

A hard gate blocks a new entry, a penalty gate only lowers the score, an info gate is recorded
and never blocks. A filter switched off in the settings stays in the list as an info gate.

## Entry gates in pipeline order

Every symbol is evaluated on every new closed candle. *Stage* says where the gate is made:
*signal* in the strategy's `evaluate`, *runtime* by the engine from the order book, the macro
overlay and the MEXC reference (inserted before `min_score`, so they act on the score), and
*portfolio* in `select_entries` from the account and the other symbols. The list is read from
the running pipeline when this document is generated.

<<gates>>

## Sizing and the entry ladder

For each chosen candidate the margin of the new position is the smallest of these limits
(never below 0; every rounding is down, so no order exceeds what the caps allow):

<<sizing>>

The budget multiplier is the macro overlay's budget multiplier for the side times the quality
multiplier: max({{ENTRY_QUALITY_BUDGET_MIN_MULTIPLIER}}, min(1, score /
{{ENTRY_QUALITY_BUDGET_REFERENCE}})) (1 when the reference is 0), times, when
{{ENABLE_SIGNAL_SIZE_SCALING}} is on, a multiplier rising linearly from
{{SIGNAL_BUDGET_MIN_MULTIPLIER}} at score 0 to {{SIGNAL_BUDGET_MAX_MULTIPLIER}} at a score of
{{SIGNAL_SCORE_REFERENCE}} or more. A multiplier
can shrink the budget but never lift it past a cap. The notional is margin x leverage (see
above); margin planned earlier in the same cycle counts against the caps.

The notional is spread over a ladder of post-only limit orders (`POST_ONLY_ENABLED`, always on):
fraction i of {{EMA_LADDER_FRACTIONS}} at offset i of {{EMA_LADDER_OFFSETS}} below the best bid
for a long (above the best ask for a short). In a defensive macro regime the offsets are
multiplied by the regime's ladder multiplier (never narrowed). An order below the exchange's
minimum size or notional is left out. With {{HARD_STOP_ATTACH_TO_ENTRY}} every entry
order carries its hard stop, so HTX protects a fill before the next poll.

A ladder's resting orders are cancelled when they are older than {{ORDER_TIMEOUT_SEC}}, when the
symbol's signal is no longer `valid`, or while new risk is blocked. After a ladder ends, a
partial fill whose notional is at most {{TINY_ENTRY_MAX_NOTIONAL}} or at most
{{TINY_ENTRY_MAX_PLANNED_FRACTION}} of the planned notional is closed reduce-only at market
when {{TINY_ENTRY_CLOSE_ENABLED}} is on.

## Averaging

An open losing position may be added to, at most {{EMA_MAX_AVERAGING_STAGES}} times (capped at
2; `MAX_BUY_STAGES` must allow it). Averaging is considered on a new closed candle, only while
the side is on and not paused and no position of either side lacks its stop, not on a symbol with
a resting ladder, and not when the MEXC reference forbids it (a stale reference under
`EXTERNAL_PRICE_DISABLE_TRADING_IF_REFERENCE_STALE`, or the directional one-minute gate with
its averaging limit {{EXTERNAL_PRICE_DIRECTIONAL_AVERAGING_1M_BLOCK_BPS}}). Then every one of these checks must pass,
in order:

<<averaging>>

The drawdown required for stage k (1, 2) is the largest of: the configured step
(`AVERAGING_DRAWDOWN_STEPS` item k, or {{EMA_AVERAGING_DRAWDOWN_STEP}} x k);
{{EMA_AVERAGING_MIN_DRAWDOWN_STEP}} x k; ATR rate x {{EMA_AVERAGING_MIN_ATR_MULTIPLIER}} x k
(and ATR rate x {{EMA_AVERAGING_ATR_MULTIPLIER}} x k when {{EMA_AVERAGING_ATR_ENABLED}} is on);
daily volatility x {{EMA_AVERAGING_MIN_DAILY_VOLATILITY_FRACTION}} x k. The ATR and volatility parts
apply when they are known.

The add is one post-only order at the best bid (long) or ask (short) of notional = the
position's current notional x `AVERAGING_BUDGET_FRACTIONS` item k, or
{{EMA_AVERAGING_BASE_FRACTION}}, within the per-position, total and free-margin caps above. It
carries the position's current stop, which is then resized to the grown position; a new average
entry price gives a new stop trigger.

## Exits

All exits are reduce-only. Only differences from what rests on the exchange are sent, so a
quiet cycle sends nothing.

**Hard stop.** With {{HARD_STOP_LOSS_ENABLED}}, a reduce-only stop-loss order rests on the
exchange from the moment a position exists, sized to the position (never larger). Its distance
from the average entry price is max({{HARD_STOP_LOSS_PCT}}, ATR rate x
{{HARD_STOP_LOSS_ATR_MULTIPLIER}}) with the ATR part capped at {{HARD_STOP_LOSS_ATR_MAX_PCT}}. The
ATR part applies while {{HARD_STOP_LOSS_ATR_ENABLED}} is on; the fixed distance alone is used
when the ATR is unknown (for example right after a restart). The trigger is kept for an entry
price and moves only to lock breakeven (below). `STOP_TRIGGER_PRICE_TYPE` chooses the price
that fires it on HTX.

**Adaptive exit ladder.** With {{EMA_ADAPTIVE_EXIT_ENABLED}} the ladder depends on how much the
position grew through averaging, current notional / initial notional:

- *normal* (below {{EMA_EXIT_MEDIUM_POSITION_RATIO}}): fractions {{EMA_EXIT_NORMAL_LADDER_FRACTIONS}}
  at markups {{EMA_EXIT_NORMAL_LADDER_MARKUPS}};
- *medium*: {{EMA_EXIT_MEDIUM_LADDER_FRACTIONS}} at {{EMA_EXIT_MEDIUM_LADDER_MARKUPS}};
- *heavy* (from {{EMA_EXIT_HEAVY_POSITION_RATIO}}): {{EMA_EXIT_HEAVY_LADDER_FRACTIONS}} at
  {{EMA_EXIT_HEAVY_LADDER_MARKUPS}}.

Markups are measured from the average entry price. With adaptive exits off, the legacy ladder
`EMA_EXIT_LADDER_FRACTIONS` sits at multiples of {{EMA_TAKE_PROFIT_MARKUP}}. No markup is below
the profit floor: max((`BUY_FEE_RATE` + `SELL_FEE_RATE`) x {{MIN_PROFIT_FEE_MULTIPLIER}},
{{MIN_GROSS_PROFIT_FLOOR}}). Decay: after {{EMA_EXIT_DECAY_FIRST_MARKUP_AFTER_HOURS}} hours the
first markup is capped at {{EMA_EXIT_DECAY_FIRST_MARKUP_CAP}}; after
{{EMA_EXIT_DECAY_MAX_MARKUP_AFTER_HOURS}} hours every markup is capped at
{{EMA_EXIT_DECAY_MAX_MARKUP}} and the runner is no longer used. The ladder is re-planned when the
position grows, when its phase changes (mode, decay stage, reference tightening, time-exit step)
or when no exit order is left; exit fills alone do not re-plan it.

**Runner and trailing (normal ladder only).** With {{EMA_EXIT_TRAILING_ENABLED}},
{{EMA_EXIT_TRAILING_FIXED_FRACTION}} of the position exits at the first normal markup and the
rest is a runner: it starts trailing once the best price since entry is
{{EMA_EXIT_TRAILING_ACTIVATION_MARKUP}} in profit, and is closed at market when a closed candle
ends back through the best price by the trailing pullback: max({{EMA_EXIT_TRAILING_PULLBACK}},
ATR rate x {{EMA_EXIT_TRAILING_ATR_MULTIPLIER}}) kept within {{EMA_EXIT_TRAILING_MIN_PULLBACK}} ..
{{EMA_EXIT_TRAILING_MAX_PULLBACK}}. Its take-profit at {{EMA_EXIT_TRAILING_TAKE_PROFIT_MARKUP}}
rests on the exchange, so profit is still taken while the bot is down. With trailing off and
{{EMA_EXIT_RUNNER_ENABLED}}, the last part of the ladder is the runner instead, with
`EMA_EXIT_RUNNER_ACTIVATION_MARKUP`, `EMA_EXIT_RUNNER_TRAILING_PULLBACK` and
`EMA_EXIT_RUNNER_TAKE_PROFIT_MARKUP`. Once the runner is active,
{{EMA_EXIT_RUNNER_PROFIT_LOCK_ENABLED}} moves the hard stop to the entry price plus the round-trip fees (if that is on the losing side
of the market; a stop is never moved away from the market).

**Breakeven mode.** After {{EMA_BREAKEVEN_AFTER_HOURS}} hours, while {{EMA_BREAKEVEN_ENABLED}} is
on, or after {{TIME_EXIT_AFTER_MINUTES}} minutes (0 = not used), whichever comes first (both scaled by the macro time
multiplier), the ladder is replaced by exits at entry x (1 + buy fee + sell fee +
{{EMA_BREAKEVEN_FEE_BUFFER}}) for a long (mirrored for a short), split by
{{EMA_BREAKEVEN_EXIT_FRACTIONS}}, and the position is no longer averaged.

**Hard time exit.** After {{HARD_TIME_EXIT_AFTER_MINUTES}} minutes (scaled by the macro time
multiplier) the exit ladder is replaced by one reduce-only limit closing
{{HARD_TIME_EXIT_CLOSE_FRACTION}} of the position, growing by {{HARD_TIME_EXIT_FRACTION_STEP}} every
{{HARD_TIME_EXIT_STEP_MINUTES}} minutes up to all of it. It is priced at the market, but for a
long never below entry x (1 - {{HARD_TIME_EXIT_MAX_LOSS_ON_NOTIONAL}}) (for a short never above
entry x (1 + that)), so the loss it accepts is bounded.

**Urgent time exit.** After {{URGENT_TIME_EXIT_AFTER_MINUTES}} minutes (0 = off; scaled by
the macro time multiplier) the whole position is closed reduce-only at market.

**Dust.** With {{DUST_CLOSE_ENABLED}} a position whose notional is at most
{{DUST_POSITION_NOTIONAL}} is closed reduce-only at market.

**Reference tightening.** With {{EXTERNAL_PRICE_EXIT_ADJUSTMENT_ENABLED}}, an adverse HTX premium
vs MEXC (a long's premium above `EXTERNAL_PRICE_LONG_TAKE_PROFIT_TIGHTEN_IF_HTX_PREMIUM_BPS`, a
short's discount above `EXTERNAL_PRICE_SHORT_TAKE_PROFIT_TIGHTEN_IF_HTX_DISCOUNT_BPS`) replaces the
ladder by {{EXTERNAL_PRICE_TIGHTENED_LADDER_FRACTIONS}} at {{EXTERNAL_PRICE_TIGHTENED_LADDER_MARKUPS}}
(a `none` markup trails like the runner) until the adverse premium is gone.

If HTX refuses a reduce-only order because the closeable amount is reserved by other close
orders, the ladder waits instead of re-sending until the size or the orders change.

**Defensive exits.** The controlled-loss exit (a stalled losing position closed by a limit that
ramps toward the market over {{CONTROLLED_LOSS_RAMP_MINUTES}} minutes, faster under an adverse
trend, macro or volatility spike), the soft defensive exit ({{SOFT_DEFENSIVE_EXIT_ENABLED}}: step
by step when the signal breaks, the drawdown is large enough and BTC moves against the trade),
the absolute force exit (a position without any resting exit for
{{ABSOLUTE_FORCE_EXIT_AFTER_MINUTES}} minutes is closed at market), the funding-aware exit
({{ENABLE_FUNDING_AWARE_EXIT}}) and the dynamic profit floor ({{ENABLE_DYNAMIC_PROFIT_FLOOR}})
are described by their settings in the exits table below; a position whose exits stay missing
for {{EXIT_COVERAGE_ALERT_MINUTES}} minutes is reported.

## Protections

- **Stop first, every step.** The protection pass for both sides runs before any other work of
  the step and needs nothing but the account read, so a failure elsewhere (reference feed,
  macro, one side's cycle, the state file) cannot leave a position unprotected. Stops and
  emergency closes are sent before any other order of a cycle.
- **No new risk without stops.** While any position of either side lacks a confirmed stop, no
  side opens entries or averages, and resting entry orders are cancelled. A stop that cannot be
  placed is retried with backoff; after {{HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC}} seconds the
  position is closed reduce-only at market.
- **Breached stop.** When a stop has to be placed or changed and the market is already through
  its trigger, the position is closed reduce-only at market instead. A position whose stop could
  not be placed is closed so as soon as the price is {{HARD_STOP_LOSS_MIN_EMERGENCY_PCT}} against its
  entry, without waiting for the bounded time.
- **Caps.** The per-position, total-margin, quote-reserve and position-count limits of the
  sizing table bound every entry and add.
- **Entry brakes.** Cooldowns after a close, the unhealthy-position limit, the per-signal and
  rolling rate limits and the crowded-market tightening are gates of the pipeline above.
- **Restart and shutdown.** After a restart, fills that happened while the bot was down are
  reconciled before any order; a position found without state is adopted and protected like
  any other. A clean stop cancels the resting entry orders; stops and exits stay on the exchange.
<<protections>>
- **Account-PnL guard.** With {{ACCOUNT_PNL_ENABLED}} the shared account open-PnL series (both
  profiles) is sampled every {{ACCOUNT_PNL_SAMPLE_INTERVAL_SEC}} seconds over a window of
  {{ACCOUNT_PNL_WINDOW_MINUTES}} minutes: {{ACCOUNT_PROFIT_UNLOAD_ENABLED}} partly closes profitable
  positions near the top of its range, averaging waits for the trough, and
  {{ACCOUNT_PNL_TRAILING_ENABLED}} closes the profile's positions when the account PnL falls back
  after its activation rate.
- **BTC hedge.** With {{BTC_HEDGE_ENABLED}} (off by default) the bot holds a position on the
  {{BTC_HEDGE_COIN}} perpetual opposite {{BTC_HEDGE_RATIO}} x the net long-minus-short notional of
  the traded positions, within {{BTC_HEDGE_MAX_NOTIONAL}} (0 = no cap). It rebalances with market
  orders, at most one every {{BTC_HEDGE_COOLDOWN_SEC}} seconds and only for a change of at least
  {{BTC_HEDGE_MIN_REBALANCE_NOTIONAL}} USDT; it is never opened or increased while the hedge
  market's spread is wider than {{BTC_HEDGE_MAX_SPREAD_BPS}} bps (reduced, it always may be); a
  change of side closes it first. The hedge has its own reduce-only stop at HARD_STOP_LOSS_PCT of
  its side from its entry, with the same rules as any position (no new risk while it lacks one,
  closed at market after HARD_STOP_UNPROTECTED_CLOSE_AFTER_SEC, and then not reopened for ten
  times the longer of that and the cooldown). While any position lacks its stop the hedge is only
  reduced, never increased. The hedge coin cannot be in COINS; turning the hedge off closes an
  open hedge; flatten closes it too.

## Macro overlay (gold vs BTC)

With {{ENABLE_GOLD_BTC_RSI_OVERLAY}} the RSI ({{GOLD_RSI_PERIOD}}) of the gold proxy
({{GOLD_COINS}}, read, never traded) and of BTC on {{GOLD_TIMEFRAME}} candles classify a regime
for each side's settings:

- *panic*: BTC RSI <= {{BTC_WEAK_RSI}} and gold RSI <= {{GOLD_WEAK_RSI}} (both sold off);
- *risk-off*: gold RSI - BTC RSI >= {{RSI_SPREAD_THRESHOLD}}, or gold RSI >= {{GOLD_STRONG_RSI}}
  with BTC weak (crypto underperforms gold);
- *normal*: anything else;
- *unavailable*: overlay off, fewer than {{GOLD_MIN_CANDLES}} candles, or the context is stale
  ({{STALE_MACRO_MAX_AGE_SEC}}): a neutral overlay. Missing macro data never blocks trading.

What it changes:

- **Budgets.** In risk-off and panic the side's budget multiplier is
  {{RISK_OFF_LONG_BUDGET_MULTIPLIER}} (long) or {{RISK_OFF_SHORT_BUDGET_MULTIPLIER}} (short). With
  {{ENABLE_GOLD_DIRECTIONAL_BIAS}} a directional score in [-1, 1] (the mean of the RSI spread
  scaled by `RSI_SPREAD_THRESHOLD` and the gold/BTC ratio return scaled by
  {{GOLD_BTC_RATIO_RETURN_REFERENCE}}; positive = crypto stronger) gives a bias of 1 +/-
  {{GOLD_DIRECTIONAL_BIAS_STRENGTH}} x score within {{GOLD_DIRECTIONAL_BIAS_MIN_MULTIPLIER}} ..
  {{GOLD_DIRECTIONAL_BIAS_MAX_MULTIPLIER}}; the deeper cut of regime and bias applies, and a boost
  only where the regime does not cut.
- **Entry ladders.** In risk-off and panic the offsets widen by {{RISK_OFF_LADDER_MULTIPLIER}}.
- **Entries.** Panic blocks new entries when {{PANIC_DISABLE_NEW_ENTRIES}} is on (through
  `entries_paused` and `macro_regime`); a budget multiplier of 0 blocks them too.
- **Averaging.** Off in panic, and in risk-off when {{RISK_OFF_DISABLE_AVERAGING}} is on.
- **Holding times.** In risk-off and panic the breakeven, time-exit and urgent-exit ages are
  multiplied by {{RISK_OFF_TIME_EXIT_MULTIPLIER}} (< 1 exits sooner).

## Cross-exchange reference (MEXC)

With {{EXTERNAL_PRICE_ENABLED}} the MEXC book ticker of each symbol is an independent reference
for the HTX price. Its checks are the `ref_*` gates above: freshness, quote age, depth and
spread of both books, a divergence cooldown, the HTX premium (long) or discount (short), the
one-minute divergence between the venues, a directional one-minute gate and an impulse bonus.
While {{EXTERNAL_PRICE_ENTRY_FILTER_ENABLED}} is off, the validity, cooldown, premium and
divergence checks only multiply the score by {{EXTERNAL_PRICE_SCORE_PENALTY_MULTIPLIER}} (once);
with the entry filter on they block. The directional one-minute gate blocks entries and
averaging by itself. A stale or missing reference blocks entries and averaging when
{{EXTERNAL_PRICE_DISABLE_TRADING_IF_REFERENCE_STALE}} is on; otherwise it is ignored while
{{EXTERNAL_PRICE_IGNORE_REFERENCE_IF_STALE}} is on, and counts as a failed check when both are
off. For an open position an adverse premium
can tighten the exit ladder (see Exits). In replays the reference is a second venue's recorded
candles.

## Settings by group

Every setting of the strategy's groups, with its default and effect (the connection, key,
monitoring and runtime settings are in [SETTINGS.md](SETTINGS.md)).

<<settings>>
"""
