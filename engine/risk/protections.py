"""Account protections: a max-drawdown lock, a daily-loss halt and a stop-loss-streak pause.

Like freqtrade's protections, each one stops new risk (new entries and averaging; resting
entry orders are cancelled) for a cool-off and then lifts by itself; the operator can lift
them earlier. They never touch stops or exits. The state is plain data so a restart resumes
a lock (and the equity window behind it) instead of forgetting it.

- max drawdown: account equity (wallet + open PnL) `PROTECT_MAX_DRAWDOWN` below its peak
  within the last `PROTECT_MAX_DRAWDOWN_LOOKBACK_HOURS` locks both sides for the cool-off.
  The window starts again when it fires, so a lock that ends is not renewed by the same peak.
- daily loss: equity `PROTECT_DAILY_LOSS` below its first reading of the UTC day halts both
  sides until the next UTC day.
- stop-loss streak: `PROTECT_STOPLOSS_STREAK` stop-loss exits of one profile in a row (a trade
  closed another way ends the streak), within the lookback, pause that profile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

DAY_MS = 86_400_000
SAMPLE_MS = 60_000  # a falling equity is kept at most once a minute (the window is hours long)
STOP_REASONS = frozenset(("stop_loss", "stop_breached"))
BOTH = ""  # a lock on both profiles


@dataclass(frozen=True)
class Lock:
    name: str  # max_drawdown | daily_loss | stoploss_streak
    profile: str  # "" = both profiles
    reason: str
    since_ms: int
    until_ms: int

    def covers(self, profile: str) -> bool:
        return self.profile in (BOTH, profile)


@dataclass(frozen=True)
class ProtectionParams:
    max_drawdown: float = 0.0  # fraction of the peak; 0 = off
    drawdown_lookback_ms: int = 72 * 3_600_000
    drawdown_cooloff_ms: int = 12 * 3_600_000
    daily_loss: float = 0.0  # fraction of the day's first equity; 0 = off
    streak: int = 0  # stop-loss exits in a row; 0 = off
    streak_lookback_ms: int = 24 * 3_600_000
    streak_cooloff_ms: int = 4 * 3_600_000

    @classmethod
    def from_settings(cls, g: Any) -> "ProtectionParams":
        return cls(max_drawdown=float(g.protect_max_drawdown),
                   drawdown_lookback_ms=int(g.protect_max_drawdown_lookback_hours * 3_600_000),
                   drawdown_cooloff_ms=int(g.protect_max_drawdown_cooloff_minutes * 60_000),
                   daily_loss=float(g.protect_daily_loss),
                   streak=int(g.protect_stoploss_streak),
                   streak_lookback_ms=int(g.protect_stoploss_streak_lookback_hours * 3_600_000),
                   streak_cooloff_ms=int(g.protect_stoploss_streak_cooloff_minutes * 60_000))


@dataclass
class ProtectionState:
    equity: list[tuple[int, float]] = field(default_factory=list)  # (ts_ms, equity): falling candidate peaks
    day: int = -1  # UTC day number of day_start
    day_start: float = 0.0
    streaks: dict[str, list[int]] = field(default_factory=dict)  # profile -> close times of the streak
    locks: list[Lock] = field(default_factory=list)
    last_equity: float = 0.0


class AccountProtections:
    """Feed it equity readings and closed trades; ask it what blocks a profile now. Every
    method returns the locks that fired or lifted, for the caller to announce."""

    def __init__(self, params: ProtectionParams, state: ProtectionState | None = None):
        self.p = params
        self.s = state or ProtectionState()

    # -- inputs ---------------------------------------------------------------------------
    def on_equity(self, now_ms: int, equity: Decimal | float) -> list[Lock]:
        eq = float(equity)
        if eq <= 0:
            return []  # no reading (an empty or unreadable account) is no drawdown
        fired: list[Lock] = []
        s, p = self.s, self.p
        s.last_equity = eq
        day = now_ms // DAY_MS
        if day != s.day:
            s.day, s.day_start = day, eq
        # candidate peaks only (equity falling from oldest to newest): the first is the peak
        while s.equity and s.equity[-1][1] <= eq:
            s.equity.pop()
        if not s.equity or now_ms - s.equity[-1][0] >= SAMPLE_MS:
            s.equity.append((now_ms, eq))
        while len(s.equity) > 1 and s.equity[0][0] < now_ms - p.drawdown_lookback_ms:
            s.equity.pop(0)
        if p.max_drawdown > 0 and not self._active("max_drawdown", BOTH, now_ms):
            peak = max(s.equity[0][1], eq)
            drawdown = (peak - eq) / peak
            if drawdown >= p.max_drawdown:
                fired.append(self._lock("max_drawdown", BOTH, now_ms, now_ms + p.drawdown_cooloff_ms,
                                        f"equity {eq:.2f} is {drawdown:.1%} below its peak {peak:.2f} "
                                        f"(limit {p.max_drawdown:.1%})"))
                s.equity = [(now_ms, eq)]  # a new window: the same peak does not lock again
        if p.daily_loss > 0 and s.day_start > 0 and not self._active("daily_loss", BOTH, now_ms):
            loss = (s.day_start - eq) / s.day_start
            if loss >= p.daily_loss:
                fired.append(self._lock("daily_loss", BOTH, now_ms, (day + 1) * DAY_MS,
                                        f"equity {eq:.2f} is {loss:.1%} below the day's start {s.day_start:.2f} "
                                        f"(limit {p.daily_loss:.1%}); halted until 00:00 UTC"))
        return fired

    def on_trade(self, now_ms: int, profile: str, reason: str) -> list[Lock]:
        p = self.p
        if p.streak <= 0:
            return []
        streak = self.s.streaks.setdefault(profile, [])
        if reason not in STOP_REASONS:
            streak.clear()
            return []
        streak.append(now_ms)
        streak[:] = [t for t in streak if t >= now_ms - p.streak_lookback_ms]
        if len(streak) < p.streak or self._active("stoploss_streak", profile, now_ms):
            return []
        streak.clear()
        hours = p.streak_lookback_ms / 3_600_000
        return [self._lock("stoploss_streak", profile, now_ms, now_ms + p.streak_cooloff_ms,
                           f"{p.streak} stop-loss exits in a row within {hours:g} h")]

    # -- state ----------------------------------------------------------------------------
    def expire(self, now_ms: int) -> list[Lock]:
        """The locks whose cool-off is over, removed."""
        done = [lk for lk in self.s.locks if lk.until_ms <= now_ms]
        self.s.locks = [lk for lk in self.s.locks if lk.until_ms > now_ms]
        return done

    def lift(self) -> list[Lock]:
        """The operator lifts every lock now. The drawdown window and the day's start begin
        again at the last reading, so the same loss does not lock straight back; a further
        loss of the limit from here does."""
        done, self.s.locks = self.s.locks, []
        if done and self.s.equity:
            last = self.s.last_equity or self.s.equity[-1][1]
            self.s.equity = [(self.s.equity[-1][0], last)]
            self.s.day_start = last
        for streak in self.s.streaks.values():
            streak.clear()
        return done

    def blocked(self, profile: str, now_ms: int) -> str:
        """Why `profile` may take no new risk now ("" when nothing locks it)."""
        return "; ".join(f"{lk.name.replace('_', ' ')}: {lk.reason}" for lk in self.s.locks
                         if lk.covers(profile) and lk.until_ms > now_ms)

    @property
    def locks(self) -> tuple[Lock, ...]:
        return tuple(self.s.locks)

    def to_state(self) -> dict[str, Any]:
        s = self.s
        return {"equity": s.equity, "day": s.day, "day_start": s.day_start, "streaks": s.streaks,
                "locks": [asdict(lk) for lk in s.locks], "last_equity": s.last_equity}

    @classmethod
    def from_state(cls, params: ProtectionParams, data: dict[str, Any] | None) -> "AccountProtections":
        if not data:
            return cls(params)
        state = ProtectionState(
            equity=[(int(t), float(e)) for t, e in data.get("equity", [])],
            day=int(data.get("day", -1)), day_start=float(data.get("day_start", 0.0)),
            streaks={str(k): [int(t) for t in v] for k, v in data.get("streaks", {}).items()},
            locks=[Lock(**lk) for lk in data.get("locks", [])],
            last_equity=float(data.get("last_equity", 0.0)))
        return cls(params, state)

    # -- helpers --------------------------------------------------------------------------
    def _active(self, name: str, profile: str, now_ms: int) -> bool:
        return any(lk.name == name and lk.profile == profile and lk.until_ms > now_ms for lk in self.s.locks)

    def _lock(self, name: str, profile: str, now_ms: int, until_ms: int, reason: str) -> Lock:
        lk = Lock(name, profile, reason, now_ms, until_ms)
        self.s.locks.append(lk)
        return lk
