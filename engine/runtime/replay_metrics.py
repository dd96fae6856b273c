"""The figures of a replay's results report, from its trades and equity curve (pure functions).

Definitions (trade PnL is realised and after fees; funding is an account flow, not a trade's):
  win rate       trades with PnL > 0 / trades
  profit factor  sum of winning PnL / |sum of losing PnL| (inf without a loss, NaN without trades)
  expectancy     mean PnL per trade (quote currency) and as a fraction of the starting equity
  duration       closed - opened, hours
  Sharpe         mean / standard deviation (sample) of daily equity returns x sqrt(365)
  Sortino        mean / downside deviation (root mean square of the negative daily returns,
                 over all days) x sqrt(365); both NaN with fewer than two daily returns
  daily returns  from the last equity of each UTC day (the first: the starting equity)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

__all__ = ["TradeStats", "daily_returns", "fmt_num", "fmt_pct", "group_stats", "report_dict", "sharpe_sortino",
           "trade_stats"]

DAY_MS = 86_400_000


@dataclass(frozen=True)
class TradeStats:
    trades: int
    wins: int
    win_rate: float
    pnl: float
    fees: float
    profit_factor: float
    expectancy: float
    avg_duration_h: float


def trade_stats(rows: Iterable[dict[str, Any]]) -> TradeStats:
    rows = list(rows)
    pnl = [float(Decimal(str(r["pnl"]))) for r in rows]
    fees = sum(float(Decimal(str(r.get("fees", 0)))) for r in rows)
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p <= 0]
    gross_win, gross_loss = sum(wins), -sum(losses)
    if not pnl:
        pf = math.nan
    elif gross_loss == 0:
        pf = math.inf if gross_win > 0 else math.nan
    else:
        pf = gross_win / gross_loss
    durations = [(int(r["closed_ms"]) - int(r["opened_ms"])) / 3_600_000 for r in rows]
    n = len(pnl)
    return TradeStats(
        trades=n, wins=len(wins), win_rate=len(wins) / n if n else math.nan, pnl=sum(pnl), fees=fees,
        profit_factor=pf, expectancy=sum(pnl) / n if n else math.nan,
        avg_duration_h=sum(durations) / n if n else math.nan)


def group_stats(rows: Iterable[dict[str, Any]], key: str) -> dict[str, TradeStats]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r[key]), []).append(r)
    return {k: trade_stats(v) for k, v in sorted(groups.items())}


def daily_returns(curve: Sequence[tuple[int, Decimal | float]], start_equity: Decimal | float) -> list[float]:
    """Returns between the last equities of consecutive UTC days (the first day's against the
    starting equity)."""
    closes: dict[int, float] = {}
    for ts, eq in curve:
        closes[int(ts) // DAY_MS] = float(eq)
    prev = float(start_equity)
    out = []
    for day in sorted(closes):
        eq = closes[day]
        out.append(eq / prev - 1 if prev > 0 else math.nan)
        prev = eq
    return out


def sharpe_sortino(returns: Sequence[float], periods_per_year: float = 365.0) -> tuple[float, float]:
    r = [x for x in returns if math.isfinite(x)]
    if len(r) < 2:
        return math.nan, math.nan
    mean = sum(r) / len(r)
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1))
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    k = math.sqrt(periods_per_year)
    sharpe = mean / sd * k if sd > 0 else math.nan
    sortino = mean / down * k if down > 0 else (math.inf if mean > 0 else math.nan)
    return sharpe, sortino


def fmt_num(v: Any, digits: int = 2) -> str:
    """A report figure as text: "-" for none / NaN, "inf" for infinity (JSON keeps "inf" as text)."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    f = float(v)
    return "-" if math.isnan(f) else ("inf" if math.isinf(f) else f"{f:.{digits}f}")


def fmt_pct(v: Any) -> str:
    """A fraction as a percentage with one decimal ("-" for none / NaN)."""
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v) * 100:.1f}%"


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def report_dict(s: Any) -> dict[str, Any]:
    """Everything the report shows, JSON-friendly (``s``: a ReplaySummary)."""
    total = trade_stats(s.trade_rows)
    sharpe, sortino = sharpe_sortino(daily_returns(s.equity_curve, s.start_equity))
    start = float(s.start_equity)
    overall = {
        "start_ms": s.start_ms, "end_ms": s.end_ms, "candles": s.steps, "symbols": list(s.symbols),
        "start_equity": start, "end_equity": float(s.end_equity),
        **{("trades_pnl" if k == "pnl" else "trades_fees" if k == "fees" else k): v for k, v in asdict(total).items()},
        "pnl": float(s.pnl),  # the account's: trades, funding and what is still open
        "pnl_pct": float(s.pnl) / start * 100 if start else None,
        "expectancy_pct_of_equity": total.expectancy / start * 100 if start and total.trades else None,
        "sharpe": sharpe, "sortino": sortino,
        "max_drawdown_pct": s.max_drawdown * 100, "drawdown_peak_ms": s.drawdown_peak_ms,
        "drawdown_trough_ms": s.drawdown_trough_ms,
        "trade_fees": float(s.fees), "funding": float(s.funding), "funding_events": s.funding_events,
    }
    return {
        "overall": {k: _plain(v) for k, v in overall.items()},
        "per_pair": {k: {f: _plain(x) for f, x in asdict(v).items()} for k, v in group_stats(s.trade_rows, "symbol").items()},
        "per_exit_reason": {k: {f: _plain(x) for f, x in asdict(v).items()}
                            for k, v in group_stats(s.trade_rows, "reason").items()},
        "per_side": {k: {f: _plain(x) for f, x in asdict(v).items()} for k, v in group_stats(s.trade_rows, "side").items()},
        "rejections": dict(s.rejections),
        "inputs": dict(s.inputs), "data_settings": dict(s.data_settings),
    }
