"""Per-position management for one profile: hard stop first, then exits.

Given the exchange snapshot and what we remember about a position, decide the actions that
keep it protected (a reduce-only stop sized to the position, at the right trigger) and managed
(exit ladder, runner, breakeven, time exits, dust). Only differences from what is already on
the exchange become actions, so a quiet cycle sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from engine.exchange.client_ids import client_order_id
from engine.exchange.precision import D, notional
from engine.exchange.types import Market, Order, Position
from engine.exits.hard_stop import (
    breakeven_trigger, emergency_breached, stop_amount, stop_distance, stop_is_protective, stop_trigger,
)
from engine.exits.ladder import (
    ExitPlan, RunnerSpec, RunnerState, breakeven_due, exit_mode, exit_plan, runner_step, time_exit_fraction,
    time_exit_order,
)
from engine.settings import ProfileSettings
from engine.store.state import PositionMeta

from .actions import Action, Cancel, CloseMarket, PlaceExit, PlaceStop


@dataclass(frozen=True)
class MarketContext:
    """Per-symbol inputs that do not come from the account."""

    atr_rate: float | None = None
    last_candle: tuple[int, Decimal, Decimal, Decimal] | None = None  # ts, high, low, close
    time_multiplier: float = 1.0  # macro overlay: < 1 shortens holding times
    tighten: tuple[tuple[float, ...], tuple[float | None, ...]] | None = None  # adverse premium


@dataclass
class PositionPlan:
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exit_plan: ExitPlan | None = None
    stop_trigger: Decimal | None = None
    frozen_key: str = ""  # set when exit orders were sent; remembered if the exchange froze them


def plan_position(
    profile: str,
    p: ProfileSettings,
    pos: Position,
    meta: PositionMeta,
    market: Market,
    orders: list[Order],
    price: Decimal,
    now_ms: int,
    ctx: MarketContext,
    *,
    protect: bool = True,
) -> PositionPlan:
    """Actions for one open position. Mutates `meta` (runner state, versions, mode flags).

    `protect=False`: the hard stop was already dealt with this step (the engine's protection
    pass runs before any planning), so only exits are planned here."""
    out = PositionPlan()
    side = pos.side
    stops = [o for o in orders if o.kind == "stop_loss"]
    exits = [o for o in orders if o.kind == "limit" and o.reduce_only]
    minutes_held = max(0.0, (now_ms - meta.opened_ms) / 60_000)
    pos_notional = notional(pos.contracts, price, market)

    def cid(purpose: str, key: str) -> tuple[int, str]:
        intent = f"{meta.pos_id}:{key}"
        return client_order_id(profile, pos.symbol, purpose, intent), intent

    def close_cid(reason: str) -> tuple[int, str]:
        # Each planned close is a new intent: a close the venue accepted but did not fill is
        # sent again next cycle instead of being answered by the dead order's id.
        meta.close_seq += 1
        return cid("close", f"{reason}:c{meta.close_seq}")

    # -- urgent time exit and dust: close everything at market ---------------------------
    urgent = p.urgent_time_exit_after_minutes > 0 and \
        minutes_held >= p.urgent_time_exit_after_minutes * ctx.time_multiplier
    dust = p.dust_close_enabled and pos_notional <= D(p.dust_position_notional)
    if urgent or dust:
        reason = "urgent_time_exit" if urgent else "dust"
        c, key = close_cid(reason)
        out.actions.append(CloseMarket(pos.symbol, side, pos.contracts, c, key, reason, tuple(exits)))
        return out

    # -- runner: advance on the newest closed candle --------------------------------------
    mode = "breakeven" if meta.breakeven else exit_mode(p, pos_notional, meta.initial_notional)
    if mode != "breakeven" and breakeven_due(p, minutes_held, ctx.time_multiplier):
        meta.breakeven = True
        mode = "breakeven"
    plan = exit_plan(p, side, pos.entry_price, pos.contracts, market, mode=mode, hours_held=minutes_held / 60,
                     atr_rate=ctx.atr_rate, tighten=ctx.tighten)
    out.exit_plan = plan
    runner_hit = False
    if plan.runner is not None and ctx.last_candle is not None and ctx.last_candle[0] > meta.runner_candle_ts:
        ts, high, low, close = ctx.last_candle
        state, runner_hit = runner_step(side, pos.entry_price, plan.runner,
                                        RunnerState(meta.runner_active, meta.runner_best), high, low, close)
        meta.runner_active, meta.runner_best, meta.runner_candle_ts = state.active, state.best_price, ts

    # -- hard stop ---------------------------------------------------------------------------
    if p.hard_stop_loss_enabled and protect:
        action = stop_action(profile, p, pos, meta, market, stops, exits, price, ctx.atr_rate)
        if isinstance(action, CloseMarket):
            out.actions.append(action)
            return out
        if action is not None:
            out.actions.append(action)
    if p.hard_stop_loss_enabled:
        out.stop_trigger = meta.stop_trigger

    # -- runner trail hit: close the runner part at market -------------------------------------
    runner_orders = [o for o in exits if meta.runner_cid and o.client_order_id == meta.runner_cid]
    if runner_hit and runner_orders:
        # Close what is left of the runner (its resting take-profit's unfilled part).
        amount = min(runner_orders[0].remaining, pos.contracts)
        c, key = close_cid("runner")
        out.actions.append(CloseMarket(pos.symbol, side, amount, c, key, "runner_trailing", tuple(runner_orders)))
        meta.runner_cid = 0
        return out

    # -- exits ----------------------------------------------------------------------------
    # The ladder is planned for the position size it was built on; exit fills shrink the
    # position without re-planning (so tp1 is not taken again from what is left). It is
    # re-planned when the position grows (entry or averaging fill), when its phase changes
    # (mode, decay stage, premium tightening, time-exit step), or when no exit order is left.
    fraction = time_exit_fraction(p, minutes_held, ctx.time_multiplier)
    if fraction > 0:
        step_order = time_exit_order(p, side, pos.entry_price, pos.contracts, price, market, fraction)
        wanted = [] if step_order is None else [(step_order.tag, step_order.price, step_order.amount)]
    else:
        wanted = [(e.tag, e.price, e.amount) for e in plan.orders]
    open_exit_amount = sum((o.remaining for o in exits), Decimal(0))
    # -- absolute force exit: exits wanted but none resting (refused, or the closeable amount
    # reserved) for too long; the reference once held a position 29 h with its exits stuck
    if wanted and open_exit_amount == 0:
        if meta.exits_missing_since is None:
            meta.exits_missing_since = now_ms
        limit_ms = p.absolute_force_exit_after_minutes * 60_000
        if p.enable_absolute_force_exit and limit_ms > 0 and now_ms - meta.exits_missing_since >= limit_ms:
            c, key = close_cid("force_exit")
            out.actions.append(CloseMarket(pos.symbol, side, pos.contracts, c, key, "force_exit", tuple(exits)))
            return out
    else:
        meta.exits_missing_since, meta.exits_reported = None, False
    decay = 0
    hours = minutes_held / 60
    if p.ema_exit_decay_first_markup_after_hours > 0 and hours >= p.ema_exit_decay_first_markup_after_hours:
        decay = 1
    if p.ema_exit_decay_max_markup_after_hours > 0 and hours >= p.ema_exit_decay_max_markup_after_hours:
        decay = 2
    phase = f"{mode}|d{decay}|t{int(ctx.tighten is not None)}|x{fraction:g}"
    replan = (phase != meta.exit_phase or pos.contracts > meta.ladder_base
              or (open_exit_amount == 0 and pos.contracts > 0))
    if not replan:
        return out
    have = sorted((o.price, o.remaining) for o in exits if o.price is not None)
    frozen_key = f"{phase}|{pos.contracts}|{len(exits)}"
    if have == sorted((pr, am) for _, pr, am in wanted):
        meta.exit_phase, meta.ladder_base = phase, pos.contracts
        return out
    if meta.frozen_signature == frozen_key:
        out.notes.append("exit ladder waits: closeable amount reserved by other close orders")
        return out
    for o in exits:
        out.actions.append(Cancel(o, "exit", "exit ladder re-planned"))
    meta.exit_version += 1
    meta.runner_cid = 0
    for tag, pr, am in wanted:
        c, key = cid("exit", f"exit:v{meta.exit_version}:{tag}")
        out.actions.append(PlaceExit(pos.symbol, side, pr, am, c, key, tag))
        if tag == "runner":
            meta.runner_cid = c
    meta.exit_phase, meta.ladder_base = phase, pos.contracts
    out.frozen_key = frozen_key
    return out


def stop_action(profile: str, p: ProfileSettings, pos: Position, meta: PositionMeta, market: Market,
                stops: list[Order], exits: list[Order], price: Decimal,
                atr_rate: float | None) -> PlaceStop | CloseMarket | Cancel | None:
    """The action that puts the right hard stop on the exchange, or None when it is there.

    The trigger is computed once per entry price (ATR-widened when known, the fixed distance
    otherwise) and kept, moving only to lock breakeven once the runner is active; the amount
    always equals the position. If the market is already through the trigger, the position is
    closed at market instead (a stop there would fire at once or be refused).
    """
    side = pos.side
    if meta.stop_trigger is None and len(stops) == 1 and _adoptable(p, pos, stops[0], market, price):
        # the stop the entry order carried (or one found resting): keep its trigger rather than
        # move it by an ATR tick; on HTX a move is a cancel-then-place while stops reserve the
        # closeable amount, a window without any stop
        meta.stop_trigger, meta.stop_entry = stops[0].trigger_price, pos.entry_price
    if meta.stop_trigger is None or meta.stop_entry != pos.entry_price:
        meta.stop_trigger = stop_trigger(side, pos.entry_price, stop_distance(p, atr_rate), market)
        meta.stop_entry = pos.entry_price
    trigger = meta.stop_trigger
    current = stops[0] if len(stops) == 1 else None
    if meta.runner_active and p.ema_exit_runner_profit_lock_enabled:
        lock = breakeven_trigger(side, pos.entry_price, p.buy_fee_rate + p.sell_fee_rate, market)
        better = lock > trigger if side == "long" else lock < trigger
        already_locked = current is not None and current.trigger_price == lock
        # Once the lock is on the exchange it stays, even when the price touches it before the
        # venue fires it: a stop is never moved away from the market.
        if better and (already_locked or stop_is_protective(side, lock, price)):
            trigger = lock
    amount = stop_amount(pos.contracts, market)
    if current is not None and current.amount == amount and current.trigger_price == trigger:
        return None
    right = [o for o in stops if o.amount == amount and o.trigger_price == trigger]
    if right and len(stops) > 1:
        # more than one stop rests (a crash between placing a new stop and cancelling the old
        # one) and one of them is right: keep it, cancel an extra one (never a new order)
        extra = next(o for o in stops if o is not right[0])
        return Cancel(extra, "stop", "extra stop (one of the right size and trigger rests)")
    if not stop_is_protective(side, trigger, price) or emergency_breached(p, side, pos.entry_price, price):
        meta.close_seq += 1  # a new intent each time: an unfilled close is retried, never shadowed
        intent = f"{meta.pos_id}:stop_breached:c{meta.close_seq}"
        return CloseMarket(pos.symbol, side, pos.contracts, client_order_id(profile, pos.symbol, "close", intent),
                           intent, "stop_breached", tuple(exits + stops))
    meta.stop_version += 1
    # amount and trigger are part of the intent: a version counter that went back (a state
    # restored after a crash) can never give a different stop the id of one already sent
    intent = f"{meta.pos_id}:stop:v{meta.stop_version}:{amount}@{trigger}"
    reason = "protect" if not stops else ("resize" if current and current.amount != amount else "move")
    return PlaceStop(pos.symbol, side, trigger, amount, client_order_id(profile, pos.symbol, "stop", intent),
                     intent, tuple(stops), tuple(exits), reason)


def _adoptable(p: ProfileSettings, pos: Position, stop: Order, market: Market, price: Decimal) -> bool:
    """A resting stop that covers the position, sits on the losing side of the market and of
    the entry, and is no wider than the hard-stop rule can ever make it."""
    trigger = stop.trigger_price
    if trigger is None or not is_covered(pos, [stop], market) or not stop_is_protective(pos.side, trigger, price):
        return False
    widest = max(p.hard_stop_loss_pct, p.hard_stop_loss_atr_max_pct if p.hard_stop_loss_atr_enabled else 0.0)
    loss = (pos.entry_price - trigger) if pos.side == "long" else (trigger - pos.entry_price)
    return Decimal(0) < loss <= pos.entry_price * D(widest)


def runner_spec(plan: ExitPlan | None) -> RunnerSpec | None:
    return None if plan is None else plan.runner


def is_covered(pos: Position, stops: list[Order], market: Market) -> bool:
    """True when a resting reduce-only stop covers the whole position (a confirmed stop)."""
    need = stop_amount(pos.contracts, market)
    return any(o.is_open and o.kind == "stop_loss" and o.reduce_only and o.amount >= need and need > 0
               for o in stops)


def unprotected_close(profile: str, pos: Position, meta: PositionMeta, exits: list[Order],
                      stops: list[Order]) -> CloseMarket:
    """The reduce-only market close of a position whose stop could not be confirmed in time.
    Exit orders are cancelled first (they reserve the closeable amount); a partial stop, if
    any, stays until the position is gone."""
    meta.close_seq += 1
    intent = f"{meta.pos_id}:unprotected:c{meta.close_seq}"
    return CloseMarket(pos.symbol, pos.side, pos.contracts, client_order_id(profile, pos.symbol, "close", intent),
                       intent, "unprotected", tuple(exits + stops))
