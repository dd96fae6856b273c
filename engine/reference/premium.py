"""Cross-exchange reference checks: HTX book vs the MEXC book of the same symbol, pure.

Why: an HTX price far from the rest of the market, or moving apart from it, is a bad place
to open (we would buy a local premium or sell a local discount), and a reference that moves
first often shows where HTX is going. Every check is a named ``GateResult`` appended to the
entry decision, so the audit shows exactly which one blocked.

Status of the reference (first match):
  * ``disabled``    -- EXTERNAL_PRICE_ENABLED is off: every gate is info;
  * ``unavailable`` -- no reference quote at all (replay without a recorded MEXC book);
  * ``stale``       -- reference quote older than EXTERNAL_PRICE_STALE_AFTER_MS;
  * ``invalid``     -- a book is crossed or empty, a quote is older than MAX_PRICE_AGE_MS,
    a best level is thinner than MIN_VALID_BID/ASK_QTY_USDT (MEXC always; HTX when its
    sizes are known) or a spread is wider than MAX_INTERNAL_SPREAD_BPS;
  * ``ok``.
Unavailable and stale follow the stale policy: DISABLE_TRADING_IF_REFERENCE_STALE blocks
(hard, whatever the entry filter), else IGNORE_REFERENCE_IF_STALE skips the checks (info),
else the stale reference counts as a failed check. Price checks run only on an ``ok``
reference; the others say 'not evaluated'.

Kinds: checks of the entry filter (validity, cooldown, premium/discount, divergence) are hard
when ENTRY_FILTER_ENABLED, otherwise penalties: the first failing one multiplies the score by
SCORE_PENALTY_MULTIPLIER (once, not per failure). The directional one-minute gate has its own
switch (DIRECTIONAL_1M_GATE_ENABLED) and blocks entries and averaging. For averaging
(``purpose='averaging'``) only the stale block and the directional gate can block.
Limits are literal: a 0 bps limit blocks any positive excess (0 never means 'off').

Units: premium_bps = (HTX mid / MEXC mid - 1) x 1e4 (positive = HTX above the reference);
one-minute change = (mid now / mid 1 min ago - 1) x 1e4 per venue; divergence_1m_bps = HTX
change - MEXC change. Ages are measured from ``received_ms`` (our clock; venue clocks skew).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from engine.exchange.types import BookTop
from engine.runtime.events import Premium
from engine.strategy.decision import HARD, INFO, PENALTY, GateResult, Kind

if TYPE_CHECKING:
    from engine.settings import ProfileSettings

__all__ = [
    "GATE_NAMES", "Lookback", "ReferenceResult", "Tighten", "bps", "check_reference", "tighten_for",
]

Purpose = Literal["entry", "averaging"]
Status = Literal["disabled", "unavailable", "stale", "invalid", "ok"]
Tighten = tuple[tuple[float, ...], tuple[float | None, ...]]
INF = math.inf

#: every reference gate, in the order they appear in a decision
GATE_NAMES: tuple[str, ...] = (
    "ref_fresh", "ref_quote_age", "ref_depth", "ref_spread", "ref_cooldown", "ref_premium",
    "ref_divergence_1m", "ref_directional_1m", "ref_impulse",
)


class Lookback(NamedTuple):
    """Mids of both venues 1 minute and 30 seconds ago (None = no sample near that time)."""

    htx_1m: float | None = None
    mexc_1m: float | None = None
    htx_30s: float | None = None
    mexc_30s: float | None = None


@dataclass(frozen=True)
class ReferenceResult:
    side: str
    purpose: str
    status: str
    gates: tuple[GateResult, ...]
    blocked: bool  # a hard gate failed: no new entry (or no averaging add)
    tighten: Tighten | None  # the exit planner's `tighten` argument, None = normal ladder
    premium_bps: float | None
    divergence_1m_bps: float | None
    age_ms: int | None  # reference quote age; None when there is no quote
    reason: str = ""  # the first blocking gate with its detail, else the status
    cooldown_until_ms: int | None = None  # a cooldown started by this check
    htx_change_1m_bps: float | None = None
    mexc_change_1m_bps: float | None = None
    htx_change_30s_bps: float | None = None
    mexc_change_30s_bps: float | None = None

    def event(self, ts_ms: int, symbol: str) -> Premium:
        return Premium(ts_ms, symbol, self.premium_bps, self.divergence_1m_bps, self.age_ms, self.blocked,
                       f"{self.side} {self.purpose}: {self.reason}")

    def to_record(self) -> dict[str, Any]:
        """One row of the external price CSV (gates flattened as in Decision.to_record)."""
        rec: dict[str, Any] = {k: getattr(self, k) for k in (
            "side", "purpose", "status", "blocked", "premium_bps", "divergence_1m_bps", "age_ms", "reason",
            "cooldown_until_ms", "htx_change_1m_bps", "mexc_change_1m_bps", "htx_change_30s_bps",
            "mexc_change_30s_bps")}
        rec["tightened"] = self.tighten is not None
        for g in self.gates:
            rec[f"g_{g.name}"] = g.passed
            rec[f"g_{g.name}_value"] = None if isinstance(g.value, float) and math.isnan(g.value) else g.value
            rec[f"g_{g.name}_kind"] = g.kind
        return rec


# -- small measures ----------------------------------------------------------------------------
def bps(now: float | None, then: float | None) -> float | None:
    """(now / then - 1) x 1e4, None when either is missing or not positive."""
    if now is None or then is None or now <= 0 or then <= 0:
        return None
    return (now / then - 1.0) * 1e4


def _f(x: Decimal | float | None) -> float | None:
    return None if x is None else float(x)


def _mid(top: BookTop | None) -> float | None:
    return _f(top.mid) if top is not None and top.valid else None


def _age(top: BookTop | None, now_ms: int) -> float:
    return INF if top is None else float(max(0, now_ms - top.received_ms))


def _spread_bps(top: BookTop) -> float:
    bid, ask = float(top.bid), float(top.ask)  # type: ignore[arg-type]
    return (ask - bid) / ((ask + bid) / 2) * 1e4


def _best_notional(top: BookTop, side: str) -> float | None:
    """Best-level notional: price x size, else the depth the adapter summed, else unknown."""
    price, size = (top.bid, top.bid_size) if side == "bid" else (top.ask, top.ask_size)
    depth = top.depth_bid_notional if side == "bid" else top.depth_ask_notional
    if price is not None and size is not None:
        return float(price * size)
    return _f(depth)


def _worst_depth(htx: BookTop, mexc: BookTop, p: ProfileSettings) -> tuple[float, float, str]:
    """(notional, minimum, label) of the book side furthest below its minimum."""
    worst: tuple[float, float, str] | None = None
    mins = {"bid": p.external_price_min_valid_bid_qty_usdt, "ask": p.external_price_min_valid_ask_qty_usdt}
    for top, required in ((mexc, True), (htx, False)):
        for side in ("bid", "ask"):
            n = _best_notional(top, side)
            if n is None and not required:
                continue  # HTX sizes unknown (e.g. simulated book): our own book, not checked
            value = 0.0 if n is None else n
            label = f"{top.venue} {side}" + (" size unknown" if n is None else "")
            ratio = value / mins[side] if mins[side] > 0 else INF
            if worst is None or ratio < (worst[0] / worst[1] if worst[1] > 0 else INF):
                worst = (value, mins[side], label)
    assert worst is not None
    return worst


def tighten_for(side: str, premium_bps: float | None, p: ProfileSettings, latched: bool = False) -> Tighten | None:
    """The tightened exit ladder on an adverse premium (longs: HTX above the reference by
    more than LONG_TAKE_PROFIT_TIGHTEN_IF_HTX_PREMIUM_BPS; shorts: below by more than
    SHORT_..._DISCOUNT_BPS). ``latched`` (already tightened) keeps it until the adverse
    premium is gone (<= 0), so a premium hovering at the threshold does not make the exit
    ladder flip every cycle. None without a usable premium or when EXIT_ADJUSTMENT is off."""
    if not p.external_price_exit_adjustment_enabled or premium_bps is None:
        return None
    adverse = premium_bps if side == "long" else -premium_bps
    limit = (p.external_price_long_take_profit_tighten_if_htx_premium_bps if side == "long"
             else p.external_price_short_take_profit_tighten_if_htx_discount_bps)
    if adverse > limit or (latched and adverse > 0.0):
        return (tuple(p.external_price_tightened_ladder_fractions), tuple(p.external_price_tightened_ladder_markups))
    return None


# -- the checks ------------------------------------------------------------------------------
@dataclass
class _Builder:
    filter_kind: Kind
    gates: list[GateResult] = field(default_factory=list)

    def add(self, name: str, value: float, threshold: float, passed: bool, kind: Kind, op: str,
            detail: str = "", delta: float = 0.0) -> None:
        self.gates.append(GateResult(name, float(value), float(threshold), passed, kind, op, detail, delta))

    def skip(self, names: tuple[str, ...], why: str) -> None:
        for n in names:
            self.add(n, math.nan, math.nan, True, INFO, "", f"not evaluated: {why}")


def check_reference(
    side: str,
    htx: BookTop | None,
    mexc: BookTop | None,
    now_ms: int,
    p: ProfileSettings,
    *,
    lookback: Lookback = Lookback(),
    cooldown_until_ms: int | None = None,
    purpose: Purpose = "entry",
    enabled: bool = True,
    tightened: bool = False,
) -> ReferenceResult:
    """Every reference gate for one side and symbol at ``now_ms`` (see the module doc).

    ``cooldown_until_ms`` is the symbol's running cooldown; a divergence block returns a new
    one in ``cooldown_until_ms`` for the caller to keep. ``tightened`` is the exit state the
    caller keeps for ``tighten_for``'s hysteresis.
    """
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    d = 1.0 if side == "long" else -1.0
    entry = purpose == "entry"
    filter_kind: Kind = (HARD if p.external_price_entry_filter_enabled else PENALTY) if entry else INFO
    b = _Builder(filter_kind)
    htx_mid, mexc_mid = _mid(htx), _mid(mexc)
    mexc_age = _age(mexc, now_ms)
    premium = bps(htx_mid, mexc_mid)
    ch = {k: bps(htx_mid if k.startswith("htx") else mexc_mid, getattr(lookback, k)) for k in Lookback._fields}
    divergence = None if ch["htx_1m"] is None or ch["mexc_1m"] is None else ch["htx_1m"] - ch["mexc_1m"]
    age_ms = None if mexc is None else int(mexc_age)

    # status and the freshness gate
    stale_limit = p.external_price_stale_after_ms
    if not enabled:
        status: Status = "disabled"
        b.add("ref_fresh", mexc_age, stale_limit, True, INFO, "<=", "EXTERNAL_PRICE_ENABLED is off")
        b.skip(GATE_NAMES[1:], "reference feed disabled")
    elif mexc is None or mexc_age > stale_limit:
        status = "unavailable" if mexc is None else "stale"
        what = "no reference quote" if mexc is None else f"reference quote {int(mexc_age)} ms old"
        if p.external_price_disable_trading_if_reference_stale:
            kind, why = HARD, "DISABLE_TRADING_IF_REFERENCE_STALE"
        elif p.external_price_ignore_reference_if_stale:
            kind, why = INFO, "ignored (IGNORE_REFERENCE_IF_STALE)"
        else:
            kind, why = filter_kind, "counts as a failed check"
        b.add("ref_fresh", mexc_age, stale_limit, False, kind, "<=", f"{what}: {why}")
        b.skip(GATE_NAMES[1:4], f"reference {status}")
        _cooldown_gate(b, now_ms, cooldown_until_ms)
        b.skip(GATE_NAMES[5:], f"reference {status}")
    else:
        b.add("ref_fresh", mexc_age, stale_limit, True, _stale_kind(p, filter_kind), "<=")
        status = _validity_gates(b, htx, mexc, now_ms, p)
        _cooldown_gate(b, now_ms, cooldown_until_ms)
        if status != "ok":
            b.skip(GATE_NAMES[5:], "reference or HTX book invalid")

    if status not in ("ok", "invalid"):  # no current reference: report no premium rather than an old one
        premium = divergence = None
        ch = dict.fromkeys(ch)
    new_cooldown = None
    if status == "ok":
        new_cooldown = _price_gates(b, d, side, premium, divergence, ch, now_ms, p, entry)

    gates = _penalty_once(b.gates, p.external_price_score_penalty_multiplier)
    blocking = [g for g in gates if g.blocks]
    penalised = [g for g in gates if g.kind == PENALTY and not g.passed]
    reason = (f"{blocking[0].name}: {blocking[0].detail}" if blocking
              else f"penalised by {penalised[0].name}: {penalised[0].detail}" if penalised else status)
    tighten = tighten_for(side, premium, p, tightened) if status == "ok" else None
    return ReferenceResult(
        side=side, purpose=purpose, status=status, gates=gates, blocked=bool(blocking), tighten=tighten,
        premium_bps=premium, divergence_1m_bps=divergence, age_ms=age_ms, reason=reason,
        cooldown_until_ms=new_cooldown, htx_change_1m_bps=ch["htx_1m"], mexc_change_1m_bps=ch["mexc_1m"],
        htx_change_30s_bps=ch["htx_30s"], mexc_change_30s_bps=ch["mexc_30s"])


def _stale_kind(p: ProfileSettings, filter_kind: Kind) -> Kind:
    if p.external_price_disable_trading_if_reference_stale:
        return HARD
    return INFO if p.external_price_ignore_reference_if_stale else filter_kind


def _validity_gates(b: _Builder, htx: BookTop | None, mexc: BookTop, now_ms: int, p: ProfileSettings) -> Status:
    """Quote age, depth and internal spread; 'invalid' when a book cannot be trusted."""
    k = b.filter_kind
    age_limit = p.external_price_max_price_age_ms
    worst_age = max(_age(htx, now_ms), _age(mexc, now_ms))
    b.add("ref_quote_age", worst_age, age_limit, worst_age <= age_limit, k, "<=",
          "" if htx is not None else "no HTX book")
    if htx is None or not htx.valid or not mexc.valid:
        bad = "HTX" if htx is None or not htx.valid else "reference"
        b.add("ref_depth", math.nan, math.nan, False, k, ">=", f"{bad} book empty or crossed")
        b.add("ref_spread", math.nan, p.external_price_max_internal_spread_bps, False, k, "<=",
              f"{bad} book empty or crossed")
        return "invalid"
    depth, minimum, label = _worst_depth(htx, mexc, p)
    depth_ok = depth >= minimum
    b.add("ref_depth", depth, minimum, depth_ok, k, ">=", label)
    spreads = {htx.venue: _spread_bps(htx), mexc.venue: _spread_bps(mexc)}
    venue = max(spreads, key=lambda v: spreads[v])
    limit = p.external_price_max_internal_spread_bps
    spread_ok = spreads[venue] <= limit
    b.add("ref_spread", spreads[venue], limit, spread_ok, k, "<=", f"widest: {venue}")
    return "ok" if worst_age <= age_limit and depth_ok and spread_ok else "invalid"


def _cooldown_gate(b: _Builder, now_ms: int, until: int | None) -> None:
    left = max(0.0, ((until or 0) - now_ms) / 1000)
    b.add("ref_cooldown", left, 0.0, left <= 0.0, b.filter_kind, "<=",
          f"divergence cooldown, {left:.0f} s left" if left > 0 else "")


def _price_gates(b: _Builder, d: float, side: str, premium: float | None, divergence: float | None,
                 ch: dict[str, float | None], now_ms: int, p: ProfileSettings, entry: bool) -> int | None:
    """Premium/discount, 1-minute divergence, directional 1-minute move, impulse bonus.
    Returns a new cooldown end when the divergence blocked a new entry."""
    k = b.filter_kind
    assert premium is not None
    adverse = d * premium
    limit = p.external_price_max_htx_premium_for_long_bps if side == "long" else \
        p.external_price_max_htx_discount_for_short_bps
    premium_ok = adverse <= limit
    b.add("ref_premium", adverse, limit, premium_ok, k, "<=",
          f"HTX {'premium' if side == 'long' else 'discount'} vs reference, bps")

    new_cooldown = None
    div_limit = p.external_price_block_if_exchange_divergence_1m_bps
    if divergence is None:
        b.add("ref_divergence_1m", math.nan, div_limit, True, INFO, "<=", "no 1-minute history yet")
    else:
        ok = abs(divergence) <= div_limit
        detail = f"HTX {ch['htx_1m']:+.1f} bps vs reference {ch['mexc_1m']:+.1f} bps over 1 min"
        if not ok and k == HARD:
            new_cooldown = now_ms + p.external_price_block_duration_sec * 1000
            detail += f"; symbol cooldown {p.external_price_block_duration_sec} s"
        b.add("ref_divergence_1m", abs(divergence), div_limit, ok, k, "<=", detail)

    dir_limit = p.external_price_directional_entry_1m_block_bps if entry else \
        p.external_price_directional_averaging_1m_block_bps
    moves = {v: d * ch[f"{v}_1m"] for v in ("htx", "mexc") if ch[f"{v}_1m"] is not None}  # type: ignore[operator]
    dir_kind: Kind = HARD if p.external_price_directional_1m_gate_enabled else INFO
    if not moves:
        b.add("ref_directional_1m", math.nan, -dir_limit, True, INFO, ">=", "no 1-minute history yet")
    else:
        venue = min(moves, key=lambda v: moves[v])
        ok = moves[venue] >= -dir_limit
        note = "" if p.external_price_directional_1m_gate_enabled else "DIRECTIONAL_1M_GATE_ENABLED is off; "
        b.add("ref_directional_1m", moves[venue], -dir_limit, ok, dir_kind, ">=",
              f"{note}worst 1-min move in the trade direction: {venue}, bps")

    _impulse_gate(b, d, premium_ok, ch, p)
    return new_cooldown


def _impulse_gate(b: _Builder, d: float, premium_ok: bool, ch: dict[str, float | None], p: ProfileSettings) -> None:
    """Bonus when the reference moved the trade's way over 30 s by at least the lead
    threshold more than HTX (HTX not moving against it when REQUIRE_SAME_DIRECTION)."""
    thr = p.external_price_mexc_lead_threshold_bps_30s
    h, m = ch["htx_30s"], ch["mexc_30s"]
    if not p.external_price_impulse_confirmation_enabled:
        b.add("ref_impulse", math.nan, thr, False, INFO, ">=", "IMPULSE_CONFIRMATION_ENABLED is off")
        return
    if h is None or m is None:
        b.add("ref_impulse", math.nan, thr, False, INFO, ">=", "no 30-second history yet")
        return
    lead = d * (m - h)
    why = ""
    if lead < thr:
        why = "reference did not lead"
    elif d * m <= 0:
        why = "reference did not move the trade's way"
    elif p.external_price_require_same_direction and d * h < 0:
        why = "HTX moved against the trade (REQUIRE_SAME_DIRECTION)"
    elif not premium_ok:
        why = "premium check failed"
    bonus = 0.0 if why else p.external_price_impulse_score_bonus
    b.add("ref_impulse", lead, thr, not why, INFO, ">=", why or f"reference led by {lead:.1f} bps over 30 s", bonus)


def _penalty_once(gates: list[GateResult], factor: float) -> tuple[GateResult, ...]:
    """The first failing penalty gate carries the score factor; later ones say so."""
    out, applied = [], False
    for g in gates:
        if g.kind == PENALTY and not g.passed:
            if not applied:
                g = g._replace(score_factor=factor)
                applied = True
            else:
                g = g._replace(detail=(g.detail + "; " if g.detail else "") + "penalty already applied")
        out.append(g)
    return tuple(out)
