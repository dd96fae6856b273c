"""Replay stand-in for the reference venue: book tops of both venues derived from candles.

Recorded data has no MEXC book, so ``RecordedReference`` builds both venues' tops from
recorded candles: the HTX mid follows a straight line from the open to the close of the
candle that has just closed (only closed candles are used: no look-ahead). The reference mid
comes from a second venue's recorded candles when given (``reference``: the same path rule,
e.g. the demo's Binance and Gate.io perps, so the premium is the real one between two
venues; a symbol or time without such a candle has no reference top, as when the venue is
unreachable), else it is the HTX price without a constructed premium. Either can carry
optional seeded noise (the same seed, symbol and time always give the same noise, whatever
the call order).
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Mapping, Sequence
from decimal import Decimal

import numpy as np

from engine.exchange.types import BookTop
from engine.market.candles import Candle, timeframe_ms

from .tracker import ReferenceTracker

__all__ = ["RecordedReference"]


def _dec(x: float) -> Decimal:
    return Decimal(f"{x:.12g}")


class RecordedReference:
    def __init__(
        self,
        candles: Mapping[str, Sequence[Candle]],
        timeframe: str,
        *,
        reference: Mapping[str, Sequence[Candle]] | None = None,
        venue: str = "mexc",
        premium_bps: float | Mapping[str, float] = 0.0,
        noise_bps: float = 0.0,
        seed: int = 0,
        spread_bps: float = 2.0,
        depth_usdt: float = 10_000.0,
        sample_offsets_ms: Sequence[int] = (60_000, 30_000, 0),
    ):
        """``premium_bps``: constructed HTX premium over the reference (one value, or per
        symbol); ``noise_bps``: standard deviation of the reference's noise; ``spread_bps``
        and ``depth_usdt``: each book's bid/ask spread and best-level notional;
        ``sample_offsets_ms``: the times before ``now`` that ``feed`` samples; ``reference``:
        the reference venue's recorded candles per symbol (same timeframe), ``venue`` its
        name on the reference tops."""
        self.tf_ms = timeframe_ms(timeframe)
        self._candles = {s: sorted(cs, key=lambda c: c.ts_ms) for s, cs in candles.items()}
        self._ts = {s: [c.ts_ms for c in cs] for s, cs in self._candles.items()}
        self._ref = ({s: sorted(cs, key=lambda c: c.ts_ms) for s, cs in reference.items()}
                     if reference is not None else None)
        self._ref_ts = {s: [c.ts_ms for c in cs] for s, cs in (self._ref or {}).items()}
        self.venue = venue
        self.premium_bps = premium_bps
        self.noise_bps = noise_bps
        self.seed = seed
        self.spread_bps = spread_bps
        self.depth_usdt = depth_usdt
        self.sample_offsets_ms = tuple(sorted(sample_offsets_ms, reverse=True))

    @property
    def symbols(self) -> list[str]:
        return list(self._candles)

    def _mid(self, ts: list[int] | None, candles: Sequence[Candle], t_ms: int) -> float | None:
        if not ts:
            return None
        i = bisect.bisect_left(ts, t_ms - self.tf_ms)  # first candle with ts >= t - tf
        if i >= len(ts) or ts[i] >= t_ms:  # only a candle closed by t_ms
            return None
        c = candles[i]
        frac = (t_ms - c.ts_ms) / self.tf_ms
        return c.open + (c.close - c.open) * frac

    def htx_mid(self, symbol: str, t_ms: int) -> float | None:
        """Price on the candle that contains ``t_ms`` (open at its start, close at its end)."""
        return self._mid(self._ts.get(symbol), self._candles.get(symbol, ()), t_ms)

    def reference_mid(self, symbol: str, t_ms: int) -> float | None:
        if self._ref is not None:
            mid = self._mid(self._ref_ts.get(symbol), self._ref.get(symbol, ()), t_ms)
        else:
            mid = self.htx_mid(symbol, t_ms)
        if mid is None:
            return None
        prem = self.premium_bps.get(symbol, 0.0) if isinstance(self.premium_bps, Mapping) else self.premium_bps
        ref = mid / (1.0 + prem / 1e4)
        if self.noise_bps:
            rng = np.random.default_rng([self.seed, zlib.crc32(symbol.encode()), t_ms])
            ref *= 1.0 + self.noise_bps * float(rng.standard_normal()) / 1e4
        return ref

    def _top(self, venue: str, symbol: str, mid: float, t_ms: int) -> BookTop:
        half = mid * self.spread_bps / 2e4
        bid, ask = _dec(mid - half), _dec(mid + half)
        return BookTop(venue, symbol, bid, ask, _dec(self.depth_usdt / float(bid)), _dec(self.depth_usdt / float(ask)),
                       t_ms, t_ms)

    def tops_at(self, t_ms: int) -> tuple[dict[str, BookTop], dict[str, BookTop]]:
        """(HTX tops, reference tops) of every symbol at ``t_ms``."""
        htx, ref = {}, {}
        for s in self._candles:
            h, r = self.htx_mid(s, t_ms), self.reference_mid(s, t_ms)
            if h is not None and r is not None:
                htx[s], ref[s] = self._top("htx", s, h, t_ms), self._top(self.venue, s, r, t_ms)
        return htx, ref

    def feed(self, tracker: ReferenceTracker, now_ms: int) -> None:
        """Give ``tracker`` the samples at now - 60 s, now - 30 s and now (by default)."""
        for off in self.sample_offsets_ms:
            t = now_ms - off
            tracker.update(*self.tops_at(t), t)
