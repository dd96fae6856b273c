"""Portfolio-level entry gates and ranking over one side's decisions of one cycle.

``select_entries`` takes the signal decisions of every symbol of one side at one closed
candle and appends the gates that depend on the account and on the other symbols:

  entries_paused, symbol_allowed, position_open, reserved_by_other_side, cooldown,
  unhealthy_positions, crowded_market, crowded_min_rs60, crowded_min_rs30,
  crowded_min_score, ladders_per_signal, rate_limit

Candidates (every hard gate passed so far) are ranked by score (ties: directional rs60,
rs30, macro gap, trigger gap, then symbol name, so the order is deterministic); the best
ENTRY_MAX_NEW_LADDERS_PER_SIGNAL (crowded: ENTRY_CROWDED_MAX_NEW_LADDERS_PER_SIGNAL) that
also fit in the rolling ENTRY_RATE_LIMIT_LADDERS window are chosen.

Crowded market: among the symbols of the entry list, when the number whose signal is
entry-valid is >= ENTRY_CROWDED_MIN_SIGNALS AND their share is >= ENTRY_CROWDED_SIGNAL_FRACTION,
the score and rs thresholds tighten to max(normal, ENTRY_CROWDED_*) -- the extra rs
shortfall is penalised like the normal one -- and fewer ladders open.

Gates after the ranking point (ladders_per_signal, rate_limit) of a decision that an earlier
gate already rejected are recorded as passed with value NaN and detail "not ranked": they
did not reject it, so rejection counts per gate stay meaningful.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from engine.settings import ProfileSettings

from .decision import HARD, INFO, Decision, GateResult, fold_score
from .signal import SIGNAL_GATES

__all__ = [
    "SELECTION_GATES",
    "EntryContext",
    "Selection",
    "cooldown_until",
    "rejection_counts",
    "select_entries",
]

NAN = math.nan
_MINUTE_MS = 60_000

#: Gate names appended by ``select_entries``, in order.
SELECTION_GATES: tuple[str, ...] = (
    "entries_paused",
    "symbol_allowed",
    "position_open",
    "reserved_by_other_side",
    "cooldown",
    "unhealthy_positions",
    "crowded_market",
    "crowded_min_rs60",
    "crowded_min_rs30",
    "crowded_min_score",
    "ladders_per_signal",
    "rate_limit",
)


@dataclass(frozen=True)
class EntryContext:
    """What the portfolio looks like for one side at the moment of selection.

    ``held``: symbols this side holds a position in or has live entry orders on;
    ``reserved_by_other``: symbols the other side holds or has orders on;
    ``cooldown_until``: per symbol, the time (ms) before which no new entry is allowed;
    ``recent_ladders_ms``: open times of this side's recent new entry ladders (for the
    ENTRY_RATE_LIMIT_* window; a time in the future counts, to stay on the safe side);
    ``unhealthy_positions``: positions without exit orders or stuck; ``entries_paused``:
    operator pause or a macro/panic block of new entries;
    ``allowed_symbols``: the entry list (None = every evaluated symbol).
    """

    now_ms: int
    held: frozenset[str] = frozenset()
    reserved_by_other: frozenset[str] = frozenset()
    cooldown_until: Mapping[str, int] = field(default_factory=dict)
    recent_ladders_ms: tuple[int, ...] = ()
    unhealthy_positions: int = 0
    entries_paused: bool = False
    allowed_symbols: frozenset[str] | None = None


@dataclass(frozen=True)
class Selection:
    """The outcome of one selection: the chosen decisions (best first) and every input
    decision (input order) with its full gate list."""

    chosen: tuple[Decision, ...]
    decisions: tuple[Decision, ...]
    crowded: bool
    signal_count: int
    universe: int
    per_signal_limit: int
    recent_ladders: int
    rate_remaining: int

    @property
    def rejected(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if not d.entry_valid)

    @property
    def chosen_symbols(self) -> tuple[str, ...]:
        return tuple(d.symbol for d in self.chosen)

    def by_symbol(self) -> dict[str, Decision]:
        return {d.symbol: d for d in self.decisions}


def cooldown_until(closed_at_ms: int, pnl: float, p: ProfileSettings) -> int:
    """When a symbol may be entered again after its position closed at ``closed_at_ms``
    with realised ``pnl`` (quote currency, net of fees): COOLDOWN_MINUTES_AFTER_CLOSE, or
    POST_WIN_COOLDOWN_MINUTES_AFTER_CLOSE after a win (pnl > 0)."""
    minutes = (p.post_win_cooldown_minutes_after_close if pnl > 0.0
               else p.cooldown_minutes_after_close)
    return int(closed_at_ms + round(minutes * _MINUTE_MS))


def rejection_counts(decisions: Iterable[Decision]) -> dict[str, int]:
    """How many decisions each hard gate rejected first (``first_rejection``)."""
    out: dict[str, int] = {}
    for d in decisions:
        name = d.first_rejection
        if name is not None:
            out[name] = out.get(name, 0) + 1
    return out


def _shortfall(threshold: float, value: float) -> float:
    x = threshold - value
    return x if x > 0.0 else 0.0


_I_RS60 = SIGNAL_GATES.index("min_rs60")
_I_RS30 = SIGNAL_GATES.index("min_rs30")
_I_MACRO = SIGNAL_GATES.index("macro_trend")
_I_TRIGGER = SIGNAL_GATES.index("trigger_trend")


def _value(d: Decision, name: str, hint: int) -> float:
    """Value of the named gate (at its usual position ``hint`` when evaluate made it)."""
    gates = d.gates
    if hint < len(gates) and gates[hint].name == name:
        return gates[hint].value
    g = d.gate(name)
    return g.value if g is not None else NAN


def _rank_key(d: Decision, score: float) -> tuple[float, float, float, float, float, str]:
    return (-score, -_value(d, "min_rs60", _I_RS60), -_value(d, "min_rs30", _I_RS30),
            -_value(d, "macro_trend", _I_MACRO), -_value(d, "trigger_trend", _I_TRIGGER),
            d.symbol)


def select_entries(decisions: Iterable[Decision], ctx: EntryContext, p: ProfileSettings
                   ) -> Selection:
    """Append the portfolio gates to every decision, rank and choose the new entries."""
    decs = tuple(decisions)
    sides = {d.side for d in decs}
    if len(sides) > 1:
        raise ValueError(f"decisions of both sides given: {sorted(sides)}")
    names = [d.symbol for d in decs]
    if len(set(names)) != len(names):
        raise ValueError("a symbol appears twice among the decisions")

    allowed = ctx.allowed_symbols
    in_list = [allowed is None or d.symbol in allowed for d in decs]
    universe = sum(in_list)
    signal_count = sum(1 for d, ok in zip(decs, in_list) if ok and d.entry_valid)
    share = signal_count / universe if universe else 0.0
    crowded = (universe > 0 and signal_count >= p.entry_crowded_min_signals
               and share >= p.entry_crowded_signal_fraction)
    crowd_note = (f"{signal_count}/{universe} symbols signalling (min "
                  f"{p.entry_crowded_min_signals}): {'crowded' if crowded else 'not crowded'}")

    min_rs60 = p.entry_min_rs60_abs
    min_rs30 = p.entry_min_rs30_abs
    c_rs60 = max(min_rs60, p.entry_crowded_min_rs60_abs)
    c_rs30 = max(min_rs30, p.entry_crowded_min_rs30_abs)
    c_score = max(p.entry_min_score, p.entry_crowded_min_score)
    crowd_kind = HARD if crowded else INFO
    crowd_detail = "" if crowded else "market not crowded: not applied"
    unhealthy_ok = ctx.unhealthy_positions <= p.max_unhealthy_positions_for_new_entries

    taken = frozenset(SELECTION_GATES)
    # gates that do not depend on the symbol are built once and shared (they are immutable)
    g_paused = GateResult("entries_paused", 1.0 if ctx.entries_paused else 0.0, 0.0,
                          not ctx.entries_paused, HARD, "<=",
                          "new entries paused" if ctx.entries_paused else "")
    g_allowed = (GateResult("symbol_allowed", 0.0, 1.0, False, HARD, ">=",
                            "not in the entry list"),
                 GateResult("symbol_allowed", 1.0, 1.0, True, HARD, ">="))
    g_held = (GateResult("position_open", 0.0, 0.0, True, HARD, "<="),
              GateResult("position_open", 1.0, 0.0, False, HARD, "<=",
                         "position or entry orders on this side"))
    g_reserved = (GateResult("reserved_by_other_side", 0.0, 0.0, True, HARD, "<="),
                  GateResult("reserved_by_other_side", 1.0, 0.0, False, HARD, "<=",
                             "held by the other side"))
    g_no_cooldown = GateResult("cooldown", 0.0, 0.0, True, HARD, "<=")
    g_unhealthy = GateResult("unhealthy_positions", float(ctx.unhealthy_positions),
                             float(p.max_unhealthy_positions_for_new_entries), unhealthy_ok,
                             HARD, "<=")
    g_crowded = GateResult("crowded_market", share, p.entry_crowded_signal_fraction,
                           not crowded, INFO, "<", crowd_note)
    pen60 = p.entry_rs60_shortfall_penalty_multiplier
    pen30 = p.entry_rs30_shortfall_penalty_multiplier
    cooldowns = ctx.cooldown_until
    held = ctx.held
    reserved = ctx.reserved_by_other
    now = ctx.now_ms
    staged: list[tuple[Decision, tuple[GateResult, ...], float, bool]] = []
    for d, ok_list in zip(decs, in_list):
        if len(d.gates) > len(SIGNAL_GATES) and taken.intersection(d.gate_names):
            raise ValueError(f"{d.symbol}: a gate name is reserved for select_entries: "
                             f"{sorted(taken.intersection(d.gate_names))}")
        sym = d.symbol
        until = cooldowns.get(sym)
        if until is None or until <= now:
            g_cool = g_no_cooldown
        else:
            g_cool = GateResult("cooldown", (until - now) / _MINUTE_MS, 0.0, False, HARD, "<=",
                                f"minutes left until {until}")
        rs60 = _value(d, "min_rs60", _I_RS60)
        rs30 = _value(d, "min_rs30", _I_RS30)
        would60 = -(_shortfall(c_rs60, rs60) - _shortfall(min_rs60, rs60)) * pen60
        would30 = -(_shortfall(c_rs30, rs30) - _shortfall(min_rs30, rs30)) * pen30
        d60, d30 = (would60, would30) if crowded else (0.0, 0.0)
        c_value = d.score + would60 + would30
        gates = (
            g_paused,
            g_allowed[ok_list],
            g_held[sym in held],
            g_reserved[sym in reserved],
            g_cool,
            g_unhealthy,
            g_crowded,
            GateResult("crowded_min_rs60", rs60, c_rs60, rs60 >= c_rs60, crowd_kind, ">=",
                       crowd_detail, d60),
            GateResult("crowded_min_rs30", rs30, c_rs30, rs30 >= c_rs30, crowd_kind, ">=",
                       crowd_detail, d30),
            GateResult("crowded_min_score", c_value, c_score, c_value >= c_score, crowd_kind,
                       ">=", crowd_detail),
        )
        ok = d.entry_valid
        if ok:
            for g in gates:
                if g.kind == HARD and not g.passed:
                    ok = False
                    break
        score = fold_score(d.score, gates)
        staged.append((d, gates, score, ok))

    per_signal = (p.entry_crowded_max_new_ladders_per_signal if crowded
                  else p.entry_max_new_ladders_per_signal)
    window_ms = p.entry_rate_limit_window_minutes * _MINUTE_MS
    recent = sum(1 for t in ctx.recent_ladders_ms if ctx.now_ms - t < window_ms)
    rate_limit = p.entry_rate_limit_ladders
    rate_remaining = max(0, rate_limit - recent)

    candidates = [(score, d) for d, _g, score, ok in staged if ok]
    candidates.sort(key=lambda item: _rank_key(item[1], item[0]))
    rank_of = {d.symbol: i for i, (_s, d) in enumerate(candidates, start=1)}
    not_ranked = (
        GateResult("ladders_per_signal", NAN, float(per_signal), True, HARD, "<=",
                   "not ranked: rejected by an earlier gate"),
        GateResult("rate_limit", NAN, float(rate_limit), True, HARD, "<=",
                   "not ranked: rejected by an earlier gate"),
    )
    out: list[Decision] = []
    chosen: list[Decision] = []
    for d, gates, _score, _ok in staged:
        rank = rank_of.get(d.symbol)
        if rank is None:
            tail = not_ranked
        else:
            used = recent + rank
            tail = (
                GateResult("ladders_per_signal", float(rank), float(per_signal),
                           rank <= per_signal, HARD, "<=", f"rank {rank} of {len(candidates)}"
                           + (" (crowded limit)" if crowded else "")),
                GateResult("rate_limit", float(used), float(rate_limit), used <= rate_limit,
                           HARD, "<=", f"{recent} ladders in the last "
                           f"{p.entry_rate_limit_window_minutes:g} min + rank {rank}"),
            )
        tail_ok = rank is None or (tail[0].passed and tail[1].passed)
        nd = Decision(d.symbol, d.side, d.ts_ms, _score, d.raw_score, d.valid,
                      _ok and tail_ok, d.add_valid, d.gates + gates + tail, d.features,
                      getattr(d, "benchmark", None))
        out.append(nd)
        if rank is not None and nd.entry_valid:
            chosen.append(nd)
    chosen.sort(key=lambda d: rank_of[d.symbol])
    return Selection(
        chosen=tuple(chosen),
        decisions=tuple(out),
        crowded=crowded,
        signal_count=signal_count,
        universe=universe,
        per_signal_limit=per_signal,
        recent_ladders=recent,
        rate_remaining=rate_remaining,
    )
