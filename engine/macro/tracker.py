"""Incremental macro regime for one profile, live and in replay, with its change events.

Feed closed candles of the gold proxy and of BTC (GOLD_TIMEFRAME, or a lower timeframe that is
aggregated here when ``source_timeframe`` is given); ``update(now_ms)`` refreshes the context
and returns a ``Regime`` event when the regime changed (and once on the first call, so the
audit trail always knows the starting regime). Gold and BTC are joined on candle open time:
a candle present on one leg only is dropped once the other leg has moved past it, so the RSIs
and the ratio are always computed on the same candles (O(1) per candle, equal to the
vectorised ``classify`` over the joined series).

Staleness: a context built from the candle that opened at T is current until T + 2 x timeframe
(when the following candle closes). Once that next candle is overdue by more than
STALE_MACRO_MAX_AGE_SEC the context is ignored: regime 'unavailable', reason 'stale ...',
neutral overlay. (Measuring the age from the last close instead would make a 4h context
"older than 3600 s" three quarters of the time.) 0 = never stale.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from engine.market.candles import Aggregator, Candle, last_closed_open_ts, timeframe_ms
from engine.market.indicators import Rsi
from engine.runtime.events import Regime
from engine.strategy.decision import GateResult

from .regime import MacroContext, decide, macro_gate, neutral, overlay_for, ratio_return

if TYPE_CHECKING:
    from engine.runtime.profile import Overlay
    from engine.settings import ProfileSettings

__all__ = ["MacroTracker"]

_MAX_PENDING = 512  # unmatched candles kept per leg (a leg that never arrives must not grow memory)


class MacroTracker:
    """Gold/BTC RSI regime of one profile (settings are per side, so one tracker per profile)."""

    def __init__(self, p: ProfileSettings, *, profile: str = "", gold_symbol: str = "",
                 btc_symbol: str = "", source_timeframe: str | None = None):
        self.p = p
        self.profile = profile
        self.gold_symbol = gold_symbol
        self.btc_symbol = btc_symbol
        self.timeframe = p.gold_timeframe
        self.tf_ms = timeframe_ms(self.timeframe)
        period = p.gold_rsi_period
        self._period = period
        self._gold_rsi = Rsi(period)
        self._btc_rsi = Rsi(period)
        self._ratio: deque[float] = deque(maxlen=period + 1)
        self._direct: deque[tuple[int, float]] = deque(maxlen=4 * (period + 1))
        self._pending: dict[str, dict[int, Candle]] = {"gold": {}, "btc": {}}
        self._fed = {"gold": 0, "btc": 0}
        self._aggs: dict[str, Aggregator] = {}
        if source_timeframe and source_timeframe != self.timeframe:
            self._aggs = {leg: Aggregator(source_timeframe, self.timeframe) for leg in ("gold", "btc", "ratio")}
        self.last_ts: int | None = None  # open time of the last joined candle
        self.candles = 0  # joined candles consumed
        self.context: MacroContext = neutral("no data yet")
        self._published: str | None = None
        self._last_attempt_ms: int | None = None

    # -- input -------------------------------------------------------------------------------
    def feed(self, gold: Iterable[Candle] = (), btc: Iterable[Candle] = (),
             ratio: Iterable[Candle] = ()) -> int:
        """Add closed candles (any order within a call); returns how many joined candles were
        consumed. Call ``update`` afterwards to refresh the context."""
        for leg, candles in (("gold", gold), ("btc", btc)):
            for c in self._own_tf(leg, candles):
                self._fed[leg] += 1
                if self.last_ts is None or c.ts_ms > self.last_ts:
                    self._pending[leg][c.ts_ms] = c
            if len(self._pending[leg]) > _MAX_PENDING:
                for ts in sorted(self._pending[leg])[: len(self._pending[leg]) - _MAX_PENDING]:
                    del self._pending[leg][ts]
        for c in self._own_tf("ratio", ratio):
            if not self._direct or c.ts_ms > self._direct[-1][0]:
                self._direct.append((c.ts_ms, c.close))
        return self._join()

    def _own_tf(self, leg: str, candles: Iterable[Candle]) -> list[Candle]:
        agg = self._aggs.get(leg)
        out = [h for c in candles for h in agg.update(c)] if agg else list(candles)
        for c in out:
            if c.ts_ms % self.tf_ms:
                raise ValueError(f"macro {leg} candle {c.ts_ms} is not aligned to {self.timeframe}")
        return out

    def _join(self) -> int:
        gold, btc = self._pending["gold"], self._pending["btc"]
        common = sorted(gold.keys() & btc.keys())
        for ts in common:
            g, b = gold[ts], btc[ts]
            self._gold_rsi.update(g)
            self._btc_rsi.update(b)
            self._ratio.append(g.close / b.close)
            self.last_ts = ts
            self.candles += 1
        if common:
            last = common[-1]
            for pending in (gold, btc):
                for ts in [t for t in pending if t <= last]:
                    del pending[ts]
        return len(common)

    # -- output ------------------------------------------------------------------------------
    def update(self, now_ms: int) -> Regime | None:
        """Refresh the context at ``now_ms``; a Regime event when the regime changed."""
        self.context = self._compute(now_ms)
        regime = self.context.regime
        if regime == self._published:
            return None
        previous = self._published or ""
        self._published = regime
        return Regime(now_ms, regime, previous, self.inputs(now_ms))

    def inputs(self, now_ms: int) -> dict[str, Any]:
        """The context's inputs and effects, with who and when: the Regime event's payload and
        one row of the macro history CSV."""
        rec = self.context.to_record()
        rec.update(profile=self.profile, timeframe=self.timeframe, now_ms=now_ms)
        return rec

    def _compute(self, now_ms: int) -> MacroContext:
        p = self.p
        names: dict[str, Any] = dict(gold_symbol=self.gold_symbol, btc_symbol=self.btc_symbol)
        if not p.enable_gold_btc_rsi_overlay:
            return neutral("disabled (ENABLE_GOLD_BTC_RSI_OVERLAY is off)", **names)
        if self.candles == 0:
            missing = [leg for leg in ("gold", "btc") if not self._fed[leg]]
            why = f"no {' or '.join(missing)} candles" if missing else "gold and btc candles do not overlap"
            return neutral(why, **names)
        names.update(candles=self.candles, asof_ms=self.last_ts)
        need = max(p.gold_min_candles, self._period + 1)
        if self.candles < need or not (self._gold_rsi.ready and self._btc_rsi.ready):
            return neutral(f"warming up: {self.candles}/{need} candles", **names)
        assert self.last_ts is not None
        overdue_ms = now_ms - (self.last_ts + 2 * self.tf_ms)
        max_age_ms = p.stale_macro_max_age_sec * 1000
        ratio_ret, source = self._ratio_return()
        ctx = decide(self._gold_rsi.value, self._btc_rsi.value, ratio_ret, p, ratio_source=source, **names)
        if max_age_ms > 0 and overdue_ms > max_age_ms:
            return neutral(f"stale: next {self.timeframe} candle overdue by {overdue_ms // 1000} s "
                           f"> {p.stale_macro_max_age_sec} s (last regime {ctx.regime})",
                           gold_rsi=ctx.gold_rsi, btc_rsi=ctx.btc_rsi, rsi_spread=ctx.rsi_spread,
                           gold_btc_ratio_return=ctx.gold_btc_ratio_return, ratio_source=ctx.ratio_source,
                           **names)
        return ctx

    def _ratio_return(self) -> tuple[float | None, str]:
        """From the direct gold/BTC market when enabled and it has the current candle,
        else from the joined gold and BTC closes (ratio_source says which)."""
        if self.p.use_direct_gold_btc_pair:
            closes = [c for ts, c in self._direct if ts <= (self.last_ts or 0)]
            current = any(ts == self.last_ts for ts, _ in self._direct)
            if current and len(closes) > self._period:
                return ratio_return(closes, self._period), "direct"
        return ratio_return(list(self._ratio), self._period), "synthetic"

    def overlay(self, side: str) -> Overlay:
        return overlay_for(side, self.context, self.p)

    def gate(self, side: str) -> GateResult:
        return macro_gate(side, self.context)

    # -- live polling --------------------------------------------------------------------------
    def fetch_due(self, now_ms: int) -> bool:
        """Whether the live engine should fetch macro candles now: a newer candle has closed
        and either nothing was tried since it closed or GOLD_CACHE_TTL_SEC has passed since
        the last try (failed fetches are retried at that pace)."""
        expected = last_closed_open_ts(now_ms, self.tf_ms)
        if self.last_ts is not None and self.last_ts >= expected:
            return False
        last = self._last_attempt_ms
        if last is None or last < expected + self.tf_ms:
            return True
        return now_ms - last >= self.p.gold_cache_ttl_sec * 1000

    def note_fetch(self, now_ms: int) -> None:
        """Record a fetch attempt (successful or not) for ``fetch_due``."""
        self._last_attempt_ms = now_ms
