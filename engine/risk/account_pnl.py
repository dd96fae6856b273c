"""The account-PnL guard: the shared open-PnL series of the account and three decisions on it.

Both profiles share one series: the open PnL (mark-to-mid, before fees) and the open notional
of every position of both sides, sampled every ACCOUNT_PNL_SAMPLE_INTERVAL_SEC of the engine's
clock (never wall time; 0 = every step) and kept for ACCOUNT_PNL_WINDOW_MINUTES (at most
MAX_SAMPLES samples). Each profile reads it through its own window and settings:

- profit unload (ACCOUNT_PROFIT_UNLOAD_*): when the account PnL is at least the quote and rate
  minimums and at or above its window's percentile, every position of the profile that is in
  profit by its own minimums (and not unloaded within the cooldown) is partly closed: the
  base fraction, the larger drawdown fraction once the PnL fell from its window peak by the
  peak-drawdown share, everything once the PnL reaches the full-unload quote;
- averaging (ACCOUNT_AVERAGING_*): once the window holds enough samples, an add is allowed
  only while the PnL is near its trough (or at or below the percentile), did not just fall by
  more than the falling guard, and - near the trough - has started to bounce; the add size is
  scaled by ACCOUNT_AVERAGING_BUDGET_SCALE whenever the guard is on;
- account trailing stop (ACCOUNT_PNL_TRAILING_*): once the PnL rate (PnL / open notional) has
  peaked at the activation rate, everything is closed when it falls back to the stop rate
  while the PnL is still at least the minimum; firing disarms it (the peak starts again).

All pure: numbers and settings in, numbers out. The engine feeds the series and persists it
(`to_state` / `from_state`) so a restart keeps the window, the trough and the armed trailing
stop instead of deciding on an empty history.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from engine.exchange.precision import D, meets_minimums, notional, round_amount
from engine.exchange.types import Market, Position

MAX_SAMPLES = 4096  # a bound on the series whatever the window and interval
EPS = 1e-12


@dataclass(frozen=True)
class Sample:
    ts_ms: int
    pnl: float  # open PnL of every position of both profiles (USDT)
    notional: float  # their open notional (USDT)

    @property
    def rate(self) -> float:
        return self.pnl / self.notional if self.notional > 0 else 0.0


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1, clamped) of `values` by linear interpolation; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    q = min(1.0, max(0.0, q))
    pos = (len(ordered) - 1) * q
    lo = int(math.floor(pos))
    hi = min(len(ordered) - 1, lo + 1)
    w = pos - lo
    return ordered[lo] if hi == lo or w == 0 else ordered[lo] * (1.0 - w) + ordered[hi] * w


@dataclass(frozen=True)
class AccountView:
    """The account PnL now and the samples of one profile's window (oldest first)."""

    now_ms: int
    pnl: float
    notional: float
    samples: tuple[Sample, ...]
    trail_since_ms: int = -1  # samples at or before this do not arm the trailing stop

    @property
    def rate(self) -> float:
        return self.pnl / self.notional if self.notional > 0 else 0.0

    @property
    def values(self) -> list[float]:
        return [s.pnl for s in self.samples]

    def percentile(self, q: float) -> float:
        """Percentile of the window's samples (the current PnL while there are none)."""
        return quantile(self.values, q) if self.samples else self.pnl

    @property
    def peak(self) -> float:
        return max([*self.values, self.pnl])

    @property
    def trough(self) -> float:
        return min([*self.values, self.pnl])

    @property
    def previous(self) -> float | None:
        """The last sample taken before now (None without one)."""
        for s in reversed(self.samples):
            if s.ts_ms < self.now_ms:
                return s.pnl
        return None

    @property
    def delta(self) -> float:
        prev = self.previous
        return 0.0 if prev is None else self.pnl - prev

    @property
    def peak_rate(self) -> float:
        """The highest PnL rate since the trailing stop last fired (the current one included)."""
        return max([s.rate for s in self.samples if s.ts_ms > self.trail_since_ms] + [self.rate])


@dataclass
class AccountPnlSeries:
    """The bounded, sampled account open-PnL history shared by both profiles."""

    window_ms: int
    interval_ms: int
    samples: deque[Sample] = field(default_factory=deque)
    trail_since: dict[str, int] = field(default_factory=dict)  # profile -> when its trailing stop fired
    last: tuple[int, float, float] | None = None  # the latest reading (ts, pnl, notional)
    dirty: bool = False  # changed since the last `to_state`

    def observe(self, now_ms: int, pnl: float, open_notional: float) -> bool:
        """Take a reading; True when it became a sample (the interval has passed, or none yet).
        Samples older than the window, or later than `now_ms` (a clock that went back), go."""
        if not (math.isfinite(pnl) and math.isfinite(open_notional)):
            return False
        s = self.samples
        while s and s[-1].ts_ms > now_ms:
            s.pop()
            self.dirty = True
        cut = now_ms - self.window_ms
        while s and s[0].ts_ms < cut:
            s.popleft()
            self.dirty = True
        self.last = (now_ms, pnl, max(0.0, open_notional))
        due = not s or self.interval_ms <= 0 or now_ms - s[-1].ts_ms >= self.interval_ms
        if due:
            s.append(Sample(now_ms, pnl, max(0.0, open_notional)))
            while len(s) > MAX_SAMPLES:
                s.popleft()
            self.dirty = True
        return due

    def view(self, window_ms: int | None = None, profile: str = "") -> AccountView | None:
        """The latest reading with the samples of the last `window_ms` (the whole series by
        default); None before the first reading."""
        if self.last is None:
            return None
        now, pnl, value = self.last
        cut = now - (self.window_ms if window_ms is None else window_ms)
        return AccountView(now, pnl, value, tuple(x for x in self.samples if cut <= x.ts_ms <= now),
                           self.trail_since.get(profile, -1))

    def disarm_trailing(self, profile: str, now_ms: int) -> None:
        """The trailing stop of `profile` fired: its peak rate starts again after now."""
        self.trail_since[profile] = now_ms
        self.dirty = True

    def to_state(self) -> dict[str, Any]:
        self.dirty = False
        return {"samples": [[x.ts_ms, x.pnl, x.notional] for x in self.samples],
                "trail_since": dict(self.trail_since)}

    @classmethod
    def from_state(cls, data: Mapping[str, Any] | None, window_ms: int, interval_ms: int) -> "AccountPnlSeries":
        series = cls(window_ms, interval_ms)
        if not data:
            return series
        rows = sorted((int(t), float(p), float(n)) for t, p, n in data.get("samples", ()))
        series.samples = deque((Sample(t, p, n) for t, p, n in rows if math.isfinite(p) and math.isfinite(n)),
                               maxlen=None)
        while len(series.samples) > MAX_SAMPLES:
            series.samples.popleft()
        series.trail_since = {str(k): int(v) for k, v in data.get("trail_since", {}).items()}
        return series


def series_params(profiles: Iterable[Any]) -> tuple[int, int] | None:
    """(window_ms, interval_ms) of the shared series: the longest window and the shortest
    interval of the profiles that track it; None when none does (ACCOUNT_PNL_ENABLED off)."""
    on = [p for p in profiles if p.account_pnl_enabled]
    if not on:
        return None
    return (int(max(p.account_pnl_window_minutes for p in on) * 60_000),
            int(min(p.account_pnl_sample_interval_sec for p in on) * 1000))


def window_ms(p: Any) -> int:
    return int(p.account_pnl_window_minutes * 60_000)


def position_pnl(pos: Position, price: Decimal, market: Market) -> tuple[float, float]:
    """(open PnL before fees, notional) of one position at `price`."""
    sign = 1 if pos.side == "long" else -1
    pnl = (price - pos.entry_price) * pos.contracts * market.contract_size * sign
    return float(pnl), float(notional(pos.contracts, price, market))


def open_pnl(positions: Iterable[Position], prices: Mapping[str, Decimal],
             markets: Mapping[str, Market]) -> tuple[float, float]:
    """(open PnL, open notional) of every position with a market and a price, both sides."""
    pnl = value = 0.0
    for pos in positions:
        market, price = markets.get(pos.symbol), prices.get(pos.symbol)
        if market is None or price is None or price <= 0 or pos.contracts <= 0:
            continue
        a, b = position_pnl(pos, price, market)
        pnl, value = pnl + a, value + b
    return pnl, value


# -- profit unload -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unload:
    fraction: float  # share of each qualifying position to close
    threshold: float  # the account PnL it had to reach
    reason: str


def unload_decision(p: Any, v: AccountView | None) -> Unload | None:
    """Whether the account is near the top of its PnL range, and what share to close."""
    if v is None or not (p.account_pnl_enabled and p.account_profit_unload_enabled):
        return None
    if v.pnl <= 0 or v.notional <= 0:
        return None
    pctl = v.percentile(p.account_profit_unload_percentile)
    threshold = max(p.account_profit_unload_min_pnl_quote, v.notional * p.account_profit_unload_min_pnl_rate, pctl)
    if v.pnl + EPS < threshold:
        return None
    fraction = p.account_profit_unload_fraction
    peak, why = v.peak, f"p{p.account_profit_unload_percentile * 100:g} {pctl:+.2f}"
    dd_share = p.account_profit_unload_peak_drawdown_fraction
    if peak > 0 and dd_share > 0 and peak - v.pnl >= peak * dd_share:
        fraction = max(fraction, p.account_profit_unload_drawdown_fraction)
        why += f", {(peak - v.pnl) / peak:.0%} below its peak {peak:+.2f}"
    full = p.account_profit_unload_full_pnl_quote
    if full > 0 and v.pnl >= full:
        fraction, why = 1.0, why + f", at the full-unload level {full:g}"
    fraction = min(1.0, fraction)
    if fraction <= 0:
        return None
    return Unload(fraction, threshold, f"account profit unload: account PnL {v.pnl:+.2f} USDT >= {threshold:.2f} "
                                       f"({why}); closing {fraction:.0%}")


def position_unloadable(p: Any, pnl: float, value: float, last_ms: int | None, now_ms: int) -> bool:
    """A position is unloaded when its own PnL meets both minimums and its cooldown is over."""
    if value <= 0 or pnl < p.account_profit_unload_min_position_pnl_quote:
        return False
    if pnl / value < p.account_profit_unload_min_position_pnl_rate:
        return False
    cooldown_ms = p.account_profit_unload_cooldown_sec * 1000
    return last_ms is None or cooldown_ms <= 0 or now_ms - last_ms >= cooldown_ms


def unload_amount(contracts: Decimal, fraction: float, price: Decimal, market: Market,
                  dust_notional: float = 0.0) -> Decimal:
    """Contracts to close: `fraction` of the position rounded DOWN to the contract step (all of
    it at fraction 1, or when the rest would be dust); 0 below the venue minimums."""
    if contracts <= 0 or fraction <= 0 or price <= 0:
        return Decimal(0)
    amount = contracts if fraction >= 1 else min(contracts, round_amount(contracts * D(fraction),
                                                                          market.amount_step))
    rest = contracts - amount
    if 0 < rest and dust_notional > 0 and notional(rest, price, market) <= D(dust_notional):
        amount = contracts
    if amount <= 0 or not meets_minimums(market, amount, price):
        return Decimal(0)
    return amount


# -- averaging -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AveragingGuard:
    enabled: bool
    allowed: bool
    scale: float  # multiplier on the add size
    reason: str


def budget_scale(p: Any) -> float:
    """ACCOUNT_AVERAGING_BUDGET_SCALE while the account-averaging guard is on, else 1."""
    return float(p.account_averaging_budget_scale) if (p.account_pnl_enabled and p.account_averaging_enabled) else 1.0


def averaging_guard(p: Any, v: AccountView | None) -> AveragingGuard:
    """Averaging only near an account-PnL trough once it stops falling."""
    if not (p.account_pnl_enabled and p.account_averaging_enabled):
        return AveragingGuard(False, True, 1.0, "off")
    scale = budget_scale(p)
    n = 0 if v is None else len(v.samples)
    if v is None or n < p.account_averaging_min_samples:
        return AveragingGuard(True, True, scale, f"{n} of {p.account_averaging_min_samples} samples: not applied yet")
    trough, pnl, delta = v.trough, v.pnl, v.delta
    band = max(p.account_averaging_near_trough_quote, abs(trough) * p.account_averaging_near_trough_fraction)
    ceiling = max(trough + band, v.percentile(p.account_averaging_percentile))
    if pnl > ceiling + EPS:
        return AveragingGuard(True, False, scale, f"account PnL {pnl:+.2f} above {ceiling:+.2f} "
                                                  f"(trough {trough:+.2f}): not near the trough")
    guard = max(p.account_averaging_falling_guard_quote, abs(pnl) * p.account_averaging_falling_guard_fraction)
    if v.previous is not None and delta < -guard:
        return AveragingGuard(True, False, scale, f"account PnL fell {delta:+.2f} since the last sample "
                                                  f"(guard {guard:.2f}): still falling")
    bounce = p.account_averaging_bounce_quote
    if bounce > 0 and pnl < trough + bounce and delta < 0:
        return AveragingGuard(True, False, scale, f"account PnL {pnl:+.2f} within {bounce:g} of the trough "
                                                  f"{trough:+.2f} and falling: waiting for the bounce")
    return AveragingGuard(True, True, scale, f"account PnL {pnl:+.2f} near the trough {trough:+.2f}, not falling")


# -- account trailing stop -----------------------------------------------------------------------
def trailing_reason(p: Any, v: AccountView | None) -> str:
    """Why the account trailing stop fires now ("" = it does not)."""
    if v is None or not (p.account_pnl_enabled and p.account_pnl_trailing_enabled):
        return ""
    activation, stop = p.account_pnl_trailing_activation_rate, p.account_pnl_trailing_stop_rate
    if activation <= 0 or stop <= 0 or v.notional <= 0:
        return ""
    peak = v.peak_rate
    if peak + EPS < activation or v.pnl + EPS < p.account_pnl_trailing_min_pnl_quote or v.rate > stop + EPS:
        return ""
    return (f"account PnL trailing stop: PnL rate {v.rate:.2%} fell to the stop {stop:.2%} after peaking at "
            f"{peak:.2%} (activation {activation:.2%}); account PnL {v.pnl:+.2f} USDT; closing at market")
