"""Live state behind the reference checks: mid history per venue, cooldowns, exit latches.

``update`` takes the latest book tops of both venues (each poll, live; each sample, replay);
``check`` / ``gates_for`` / ``averaging_allowed`` / ``tighten_for`` run the pure checks of
``premium`` with the 30-second and one-minute lookbacks from that history.

A lookback sample must be at or before ``now - window`` and not older than that by more than
EXTERNAL_PRICE_STALE_AFTER_MS: a poll gap must not pass a five-minute-old price off as the
one-minute-ago price. Without such a sample the one-minute gates say 'no history yet' (info).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from engine.exchange.types import BookTop
from engine.runtime.events import Premium
from engine.strategy.decision import GateResult

from .premium import Lookback, Purpose, ReferenceResult, Tighten, check_reference

if TYPE_CHECKING:
    from engine.settings import ProfileSettings

__all__ = ["ReferenceTracker"]

VENUES = ("htx", "mexc")


class ReferenceTracker:
    """One per process (both profiles share it); cooldowns and exit latches are per side."""

    def __init__(self, enabled: bool = True, keep_ms: int = 300_000):
        self.enabled = enabled  # GlobalSettings.external_price_enabled
        self.keep_ms = keep_ms
        self._tops: dict[str, dict[str, BookTop]] = {v: {} for v in VENUES}
        self._hist: dict[tuple[str, str], deque[tuple[int, float]]] = {}
        self._cooldown: dict[tuple[str, str], int] = {}
        self._tightened: dict[tuple[str, str], bool] = {}
        self._published: dict[tuple[str, str, str], tuple[bool, str, str]] = {}
        # the verdict without a reference quote depends on nothing that changes between steps
        # (no price, no history, no cooldown): computed once per side, purpose and settings
        self._no_ref: dict[tuple[str, str, int, bool, bool], tuple[ProfileSettings, ReferenceResult]] = {}

    # -- input ---------------------------------------------------------------------------------
    def update(self, htx_tops: Mapping[str, BookTop], mexc_tops: Mapping[str, BookTop], now_ms: int) -> None:
        """Record the latest tops (keyed by the HTX unified symbol on both venues). "mexc" is
        the reference slot: its tops may come from any venue of the fallback list."""
        for venue, tops in (("htx", htx_tops), ("mexc", mexc_tops)):
            latest = self._tops[venue]
            for symbol, top in tops.items():
                prev = latest.get(symbol)
                if prev is not None and top.received_ms < prev.received_ms:
                    continue  # an older answer arriving late
                if venue == "mexc" and prev is not None and prev.venue != top.venue:
                    # the reference fell through to another venue (EXTERNAL_PRICE_REFERENCE_EXCHANGES):
                    # its gap to the previous one is no move; the 30 s / 1 min history starts again
                    self._hist.pop((venue, symbol), None)
                latest[symbol] = top
                if top.valid and top.mid is not None:
                    h = self._hist.setdefault((venue, symbol), deque())
                    if h and h[-1][0] >= top.received_ms:
                        if h[-1][0] == top.received_ms:
                            h[-1] = (top.received_ms, float(top.mid))
                        continue
                    h.append((top.received_ms, float(top.mid)))
        cutoff = now_ms - self.keep_ms
        for h in self._hist.values():
            while h and h[0][0] < cutoff:
                h.popleft()

    def top(self, venue: str, symbol: str) -> BookTop | None:
        return self._tops[venue].get(symbol)

    def mid_at(self, venue: str, symbol: str, t_ms: int, tolerance_ms: int) -> float | None:
        """The last mid at or before ``t_ms``, if it is not older than ``t_ms - tolerance_ms``."""
        h = self._hist.get((venue, symbol))
        if not h:
            return None
        i = bisect.bisect_right(h, (t_ms, float("inf"))) - 1
        if i < 0 or h[i][0] < t_ms - tolerance_ms:
            return None
        return h[i][1]

    def lookback(self, symbol: str, now_ms: int, tolerance_ms: int) -> Lookback:
        return Lookback(*(self.mid_at(v, symbol, now_ms - w, tolerance_ms)
                          for w in (60_000, 30_000) for v in VENUES))

    # -- checks --------------------------------------------------------------------------------
    def check(self, side: str, symbol: str, now_ms: int, p: ProfileSettings,
              purpose: Purpose = "entry") -> ReferenceResult:
        """Run every reference gate; a divergence block starts the (side, symbol) cooldown."""
        key = (side, symbol)
        until = self._cooldown.get(key)
        if until is not None and until <= now_ms:
            del self._cooldown[key]
            until = None
        mexc = self.top("mexc", symbol)
        ck = None
        if mexc is None and until is None:
            ck = (side, purpose, id(p), self.enabled, self._tightened.get(key, False))
            hit = self._no_ref.get(ck)
            if hit is not None and hit[0] is p:
                return hit[1]
        r = check_reference(
            side, self.top("htx", symbol), mexc, now_ms, p,
            lookback=self.lookback(symbol, now_ms, p.external_price_stale_after_ms),
            cooldown_until_ms=until, purpose=purpose, enabled=self.enabled,
            tightened=self._tightened.get(key, False))
        if r.cooldown_until_ms is not None:
            self._cooldown[key] = max(r.cooldown_until_ms, until or 0)
        elif ck is not None:
            if len(self._no_ref) > 64:
                self._no_ref.clear()
            self._no_ref[ck] = (p, r)
        return r

    def gates_for(self, side: str, symbol: str, now_ms: int, p: ProfileSettings) -> tuple[GateResult, ...]:
        """The entry decision's reference gates (Engine.extra_gates[side][symbol])."""
        return self.check(side, symbol, now_ms, p, "entry").gates

    def averaging_allowed(self, side: str, symbol: str, now_ms: int, p: ProfileSettings) -> tuple[bool, str]:
        """(allowed, reason) for an averaging add: stale block and the directional gate."""
        r = self.check(side, symbol, now_ms, p, "averaging")
        return not r.blocked, r.reason

    def tighten_for(self, side: str, symbol: str, now_ms: int, p: ProfileSettings) -> Tighten | None:
        """The exit planner's ``tighten`` for an open position (latched, see premium.tighten_for)."""
        if not self.enabled or self.top("mexc", symbol) is None:
            self._tightened[(side, symbol)] = False  # no current reference: nothing to tighten
            return None
        r = check_reference(side, self.top("htx", symbol), self.top("mexc", symbol), now_ms, p,
                            purpose="averaging", enabled=self.enabled,
                            tightened=self._tightened.get((side, symbol), False))
        self._tightened[(side, symbol)] = r.tighten is not None
        return r.tighten

    def cooldown_until(self, side: str, symbol: str) -> int | None:
        return self._cooldown.get((side, symbol))

    def event_if_changed(self, symbol: str, r: ReferenceResult, now_ms: int) -> Premium | None:
        """A Premium event when this (side, symbol, purpose) changed verdict (blocked, status
        or the blocking gate) since the last one returned; None otherwise."""
        first = next((g.name for g in r.gates if g.blocks), "")
        state = (r.blocked, r.status, first)
        key = (r.side, symbol, r.purpose)
        if self._published.get(key) == state:
            return None
        self._published[key] = state
        return r.event(now_ms, symbol)
