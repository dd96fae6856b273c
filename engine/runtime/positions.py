"""Per-position management for one profile: hard stop first, then exits.

Given the exchange snapshot and what we remember about a position, decide the actions that
keep it protected (a reduce-only stop sized to the position, at the right trigger) and managed
(exit ladder, runner, breakeven, time exits, the soft-defensive and controlled-loss exits,
dust). Only differences from what is already on the exchange become actions, so a quiet cycle
sends nothing. A defensive exit's order rests beside the exit ladder of the rest of the
position; the stop stays, sized to the whole position, all along.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from engine.exchange.client_ids import client_order_id
from engine.exchange.precision import D, meets_minimums, notional
from engine.exchange.types import Market, Order, Position
from engine.exits import controlled_loss as cl
from engine.exits import soft_defensive as sd
from engine.exits.controlled_loss import realized_windows as realized_windows  # re-exported for the runner
from engine.exits.hard_stop import (
    breakeven_trigger, stop_amount, stop_distance, stop_is_protective, stop_trigger,
)
from engine.exits.ladder import (
    ExitOrder, ExitPlan, RunnerSpec, RunnerState, aggressive_close_price, breakeven_due, breakeven_epoch, exit_mode,
    exit_plan, exit_state_tag, runner_step, time_exit_fraction, time_exit_order,
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
    # controlled-loss ramp speed: the macro-timeframe EMA gap (fast - slow) / slow, the macro
    # overlay's direction score (> 0 favours longs) and the recent per-candle volatility
    trend_gap: float | None = None
    macro_score: float = 0.0
    volatility: float | None = None
    # the newest signal update: (candle ts, signal valid, BTC 30-minute return); soft-defensive
    signal: tuple[int, bool, float | None] | None = None
    # realized PnL (today UTC, last 7 days) of this profile: the controlled-loss profit bank;
    # None when not read (the position is no controlled-loss candidate)
    realized: tuple[Decimal, Decimal] | None = None
    # the symbol's current funding rate (None = unknown: not read, or the read failed) and
    # its daily volatility: the funding-aware exit and the dynamic profit floor
    funding: float | None = None
    daily_volatility: float | None = None


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
    if meta.breakeven and meta.breakeven_ms is None:
        meta.breakeven_ms = now_ms  # (a state saved before the field existed starts its epochs now)
    plan = exit_plan(p, side, pos.entry_price, pos.contracts, market, mode=mode, hours_held=minutes_held / 60,
                     atr_rate=ctx.atr_rate, tighten=ctx.tighten, funding=ctx.funding,
                     daily_volatility=ctx.daily_volatility)
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

    # -- runner closed by an aggressive limit: done, waiting one cycle, or at market now ------
    runner_orders = [o for o in exits if meta.runner_cid and o.client_order_id == meta.runner_cid]
    if meta.runner_close_cid:
        pending = _runner_close_pending(pos, meta, exits, runner_orders, close_cid, out.notes)
        if pending is not None:
            out.actions.extend(pending)
            return out
        runner_orders = []

    # -- runner trail hit: close the runner part -----------------------------------------------
    if runner_hit and runner_orders:
        # Close what is left of the runner (its resting take-profit's unfilled part).
        amount = min(runner_orders[0].remaining, pos.contracts)
        c, key = close_cid("runner")
        if p.ema_exit_runner_use_aggressive_limit:
            # a reduce-only limit (not post-only) at the current price, rounded toward filling:
            # it fills at once as a taker where the book allows; whatever is not filled by the
            # next cycle is closed at market (_runner_close_pending)
            for o in runner_orders:
                out.actions.append(Cancel(o, "exit", "runner trail hit"))
            px = aggressive_close_price(side, price, market)
            fc, fkey = close_cid("runner")  # refused for the reserved closeable amount: market now
            # a partial close: the stop is not the executor's to cancel (it cancels the stops it
            # is handed once the close fills, which would leave the rest of the position bare)
            fallback = CloseMarket(pos.symbol, side, amount, fc, fkey, "runner_trailing", ())
            out.actions.append(PlaceExit(pos.symbol, side, px, amount, c, key, "runner_close", purpose="close",
                                         fallback=fallback))
            meta.runner_close_cid, meta.runner_close_amount, meta.runner_close_base = c, amount, pos.contracts
            out.notes.append(f"runner trail hit: closing {amount} with a limit at {px}")
            return out
        out.actions.append(CloseMarket(pos.symbol, side, amount, c, key, "runner_trailing", tuple(runner_orders)))
        meta.runner_cid = 0
        return out

    # -- exits ----------------------------------------------------------------------------
    # The ladder is planned for the position size it was built on; exit fills shrink the
    # position without re-planning (so tp1 is not taken again from what is left). It is
    # re-planned when the position grows (entry or averaging fill), when its phase changes
    # (mode, decay stage, premium tightening, time-exit step, a defensive exit's re-price, the
    # funding / volatility state of the funding-aware exit and the dynamic profit floor),
    # or when no exit order is left.
    fraction = time_exit_fraction(p, minutes_held, ctx.time_multiplier)
    # the defensive exits' state advances every cycle; the hard time exit, once it runs, wins
    defensive = [o for o in (_soft_defensive(p, pos, meta, market, price, now_ms, ctx, out.notes),
                             _controlled_loss(p, pos, meta, market, price, now_ms, ctx, minutes_held, out.notes))
                 if o is not None]
    special = ""
    manual = meta.manual_close_price
    if fraction == 0 or manual is not None:
        meta.te_fraction, meta.te_price = 0.0, None
    if meta.te_price is not None and pos.contracts < meta.te_contracts:
        # a loss-taking time-exit order paid by the profit bank was out and the position shrank:
        # count the loss, as the controlled-loss exit does (any shrink counts)
        meta.cl_spent += (meta.te_contracts - pos.contracts) * cl.loss_per_contract(
            side, pos.entry_price, meta.te_price, market, cl.close_fee(p, side))
    meta.te_contracts = pos.contracts
    if manual is not None:
        # the operator's limit close (engine/runtime/manual.py): one reduce-only limit for the
        # whole position in place of the ladder and the time / defensive exits (their state
        # still advances); re-placed if it disappears, until the position is gone
        wanted = [(MANUAL_TAG, manual, pos.contracts)]
    elif fraction > 0:
        # The hard time exit runs: its step order at the market (loss bounded), and the rest of
        # the position keeps the exit ladder of its mode, planned as urgent (the dynamic profit
        # floor x DYNAMIC_PROFIT_FLOOR_URGENT_MULTIPLIER).
        step_order = time_exit_order(p, side, pos.entry_price, pos.contracts, price, market, fraction)
        if step_order is not None and not p.hard_time_exit_bypass_profit_bank:
            today, week = ctx.realized if ctx.realized is not None else (Decimal(0), Decimal(0))
            bank = cl.profit_bank(p, today, week, meta.cl_spent)
            limited = cl.time_exit_within_bank(p, side, pos.entry_price, step_order, market, bank)
            if limited is None and meta.te_fraction != fraction:
                special = "|b0"  # waits for the bank; placed (a new phase) once the bank pays
                out.notes.append(f"hard time exit waits: profit bank {bank:.2f} USDT cannot pay its loss")
            elif limited is not None and limited.amount < step_order.amount:
                out.notes.append(f"hard time exit limited to {limited.amount} by the profit bank {bank:.2f} USDT")
            step_order = limited
        wanted = [] if step_order is None else [(step_order.tag, step_order.price, step_order.amount)]
        rest_amount = pos.contracts - (step_order.amount if step_order is not None else Decimal(0))
        if rest_amount > 0:
            rest = exit_plan(p, side, pos.entry_price, rest_amount, market, mode=mode, hours_held=minutes_held / 60,
                             atr_rate=ctx.atr_rate, tighten=ctx.tighten, funding=ctx.funding,
                             daily_volatility=ctx.daily_volatility, urgent=True)
            wanted += [(e.tag, e.price, e.amount) for e in rest.orders]
    elif defensive:
        # one defensive order (soft-defensive first); the rest of the position keeps its ladder
        d_order = defensive[0]
        special = f"|sd{meta.sd_step}" if d_order.tag == sd.TAG else f"|cl{meta.cl_step}"
        rest = exit_plan(p, side, pos.entry_price, pos.contracts - d_order.amount, market, mode=mode,
                         hours_held=minutes_held / 60, atr_rate=ctx.atr_rate, tighten=ctx.tighten,
                         funding=ctx.funding, daily_volatility=ctx.daily_volatility)
        wanted = [(d_order.tag, d_order.price, d_order.amount)] + [(e.tag, e.price, e.amount) for e in rest.orders]
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
    # the funding / volatility state is quantised (adverse / receiving, high volatility): a
    # change re-plans the ladder, a rate tick within the same state does not
    fx = "" if mode == "breakeven" or fraction > 0 else exit_state_tag(p, side, ctx.funding, ctx.daily_volatility)
    # breakeven mode re-checks its exit every EMA_BREAKEVEN_REPRICE_MINUTES (a new epoch is a new
    # phase): re-placed only where the price (entry + fees + buffer) or amount now differs
    be = f"|r{breakeven_epoch(p, now_ms, meta.breakeven_ms)}" \
        if mode == "breakeven" and meta.breakeven_ms is not None else ""
    phase = f"{mode}{be}|d{decay}|t{int(ctx.tighten is not None)}|x{fraction:g}{fx}{special}" \
        if manual is None else f"{MANUAL_TAG}|{manual}"
    replan = (phase != meta.exit_phase or pos.contracts > meta.ladder_base
              or (open_exit_amount == 0 and pos.contracts > 0))
    if not replan:
        return out
    have = sorted((o.price, o.remaining) for o in exits if o.price is not None)
    # (a re-price epoch alone does not re-send an exit the venue froze: it waits for the size
    # or the orders to change)
    frozen_key = f"{phase.replace(be, '', 1) if be else phase}|{pos.contracts}|{len(exits)}"
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
        # a defensive exit's purpose is its reason: its orders, fills and trade say so (the
        # operator's limit close is a close whose trade says "manual")
        if tag == MANUAL_TAG:
            c, key = cid("close", f"{MANUAL_TAG}:v{meta.exit_version}")
            out.actions.append(PlaceExit(pos.symbol, side, pr, am, c, key, tag, purpose="close"))
            continue
        purpose = tag if tag in DEFENSIVE_TAGS else "exit"
        c, key = cid(purpose, f"exit:v{meta.exit_version}:{tag}")
        out.actions.append(PlaceExit(pos.symbol, side, pr, am, c, key, tag, purpose=purpose))
        if tag == "runner":
            meta.runner_cid = c
        if tag == "time":
            meta.te_fraction = fraction
            # a loss this order realizes is paid by the bank (counted as it fills)
            meta.te_price = pr if not p.hard_time_exit_bypass_profit_bank and \
                cl.realizes_loss(p, side, pos.entry_price, pr) else None
    meta.exit_phase, meta.ladder_base = phase, pos.contracts
    out.frozen_key = frozen_key
    return out


DEFENSIVE_TAGS = (cl.TAG, sd.TAG)
MANUAL_TAG = "manual"  # the operator's limit close


def _soft_defensive(p: ProfileSettings, pos: Position, meta: PositionMeta, market: Market, price: Decimal,
                    now_ms: int, ctx: MarketContext, notes: list[str]) -> ExitOrder | None:
    """Advance the soft-defensive exit on a new signal update; its order while it runs."""
    dd = cl.drawdown(pos.side, pos.entry_price, price)
    if ctx.signal is not None and ctx.signal[0] > meta.sd_signal_ts:
        ts, valid, btc = ctx.signal
        meta.sd_signal_ts = ts
        if sd.conditions_met(p, pos.side, dd, valid, btc):
            meta.sd_confirmations += 1
        else:
            if meta.sd_fraction > 0:
                notes.append("soft-defensive exit ends: its conditions no longer hold")
            meta.sd_confirmations, meta.sd_fraction, meta.sd_base = 0, 0.0, Decimal(0)
    if not p.soft_defensive_exit_enabled:
        meta.sd_confirmations, meta.sd_fraction = 0, 0.0
        return None
    if meta.sd_fraction <= 0:
        if not sd.started(p, meta.sd_confirmations):
            return None
        meta.sd_base, meta.sd_fraction = pos.contracts, sd.next_fraction(p, 0.0)
        meta.sd_priced_ms, meta.sd_step = now_ms, meta.sd_step + 1
        notes.append(f"soft-defensive exit starts: {meta.sd_confirmations} confirmation(s), "
                     f"drawdown {dd:.2%}, closing {meta.sd_fraction:.0%}")
    elif sd.step_due(p, now_ms, meta.sd_priced_ms):
        # re-price; the share grows while the conditions persist
        meta.sd_fraction = sd.next_fraction(p, meta.sd_fraction)
        meta.sd_priced_ms, meta.sd_step = now_ms, meta.sd_step + 1
    meta.sd_base = max(meta.sd_base, pos.contracts)
    return sd.close_order(pos.side, price, meta.sd_base, pos.contracts, meta.sd_fraction, market, p)


def _controlled_loss(p: ProfileSettings, pos: Position, meta: PositionMeta, market: Market, price: Decimal,
                     now_ms: int, ctx: MarketContext, minutes_held: float, notes: list[str]) -> ExitOrder | None:
    """Advance the controlled-loss ramp of a zombie position; its order for this step."""
    side, entry = pos.side, pos.entry_price
    if meta.cl_price is not None and pos.contracts < meta.cl_contracts:
        # the position shrank while a controlled-loss order was out: count the loss it realized
        # (any shrink counts, so the bank is never overspent)
        meta.cl_spent += (meta.cl_contracts - pos.contracts) * cl.loss_per_contract(
            side, entry, meta.cl_price, market, cl.close_fee(p, side))
    meta.cl_contracts = pos.contracts
    dd = cl.drawdown(side, entry, price)
    if not cl.active(p, minutes_held, dd, meta.cl_started_ms is not None):
        if meta.cl_started_ms is not None:
            notes.append("controlled-loss exit ends: the position is no longer under water")
        meta.cl_started_ms, meta.cl_progress, meta.cl_priced_ms, meta.cl_price = None, 0.0, None, None
        return None
    speed, spike = cl.speed(p, side, ctx.trend_gap, ctx.macro_score, ctx.volatility)
    if meta.cl_started_ms is None:
        meta.cl_started_ms, meta.cl_last_ms, meta.cl_progress = now_ms, now_ms, 0.0
    else:
        meta.cl_progress += max(0, now_ms - meta.cl_last_ms) / 60_000 * speed
        meta.cl_last_ms = now_ms
    fraction = cl.ramp_fraction(p, meta.cl_progress)
    if cl.reprice_due(p, now_ms, meta.cl_priced_ms, fraction, meta.cl_priced_fraction, spike):
        today, week = ctx.realized if ctx.realized is not None else (Decimal(0), Decimal(0))
        bank = cl.profit_bank(p, today, week, meta.cl_spent)
        order = cl.close_order(p, side, entry, price, pos.contracts, market, fraction, bank)
        meta.cl_priced_ms, meta.cl_priced_fraction = now_ms, fraction
        meta.cl_step += 1
        meta.cl_price, meta.cl_amount = (order.price, order.amount) if order else (None, Decimal(0))
        meta.cl_priced_contracts = pos.contracts
        if order is None:
            notes.append(f"controlled-loss exit waits: profit bank {bank:.2f} USDT "
                         f"(minimum {p.controlled_loss_min_bank_usdt:g}) or the order is below the minimums")
        else:
            notes.append(f"controlled-loss exit: {order.amount} at {order.price} (ramp {fraction:.0%}, "
                         f"speed x{speed:.2f}, bank {bank:.2f} USDT)")
    if meta.cl_price is None:
        return None
    # what is left of this step's order (a filled step waits for the next pricing)
    left = meta.cl_amount - max(Decimal(0), meta.cl_priced_contracts - pos.contracts)
    left = min(left, pos.contracts)
    if left <= 0 or not meets_minimums(market, left, meta.cl_price):
        return None
    return ExitOrder(cl.TAG, meta.cl_price, left)


def wants_bank(p: ProfileSettings, pos: Position, meta: PositionMeta, price: Decimal, now_ms: int) -> bool:
    """Whether the controlled-loss exit, or the hard time exit without its bypass
    (HARD_TIME_EXIT_BYPASS_PROFIT_BANK off), needs the profit bank for this position now (the
    realized PnL is only read then). The hard time exit's start scales with the macro time
    multiplier, unknown here: any position under water (fees included) is read then."""
    minutes_held = max(0.0, (now_ms - meta.opened_ms) / 60_000)
    dd = cl.drawdown(pos.side, pos.entry_price, price)
    if not p.hard_time_exit_bypass_profit_bank and p.hard_time_exit_after_minutes > 0 \
            and dd > -cl.close_fee(p, pos.side):
        return True
    return cl.active(p, minutes_held, dd, meta.cl_started_ms is not None)


def _runner_close_pending(pos: Position, meta: PositionMeta, exits: list[Order], runner_orders: list[Order],
                          close_cid: Callable[[str], tuple[int, str]], notes: list[str]) -> list[Action] | None:
    """The runner's aggressive-limit close, one cycle later: None once it filled (planning goes
    on); otherwise its unfilled rest closed reduce-only at market now - the limit (still
    resting, part-filled, or refused and gone) and the runner's take-profit, if its cancel
    failed, cancelled first - so the runner is never left open."""
    resting = [o for o in exits if o.client_order_id == meta.runner_close_cid]
    filled = max(Decimal(0), meta.runner_close_base - pos.contracts)
    left = resting[0].remaining if resting else meta.runner_close_amount - filled
    left = min(left, pos.contracts)
    meta.runner_close_cid, meta.runner_close_amount, meta.runner_close_base = 0, Decimal(0), Decimal(0)
    meta.runner_cid = 0
    if left <= 0:
        return None
    c, key = close_cid("runner")
    notes.append(f"runner limit close not filled in one cycle: {left} at market")
    return [CloseMarket(pos.symbol, pos.side, left, c, key, "runner_trailing", tuple(resting + runner_orders))]


def signal_of(decision: object) -> tuple[int, bool, float | None] | None:
    """(candle ts, valid, BTC 30-minute return) of a strategy decision, None without one."""
    ts, valid = getattr(decision, "ts_ms", None), getattr(decision, "valid", None)
    btc = getattr(getattr(decision, "benchmark", None), "ret30", None)
    if ts is None or valid is None:
        return None
    try:
        return int(ts), bool(valid), (None if btc is None else float(btc))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


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
    # (HARD_STOP_LOSS_MIN_EMERGENCY_PCT acts in the protection pass, once a placement has failed)
    if not stop_is_protective(side, trigger, price):
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
