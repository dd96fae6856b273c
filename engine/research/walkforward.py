"""Walk-forward windows and the objectives a study can optimise.

The replayed range [start, end) is cut into ``folds`` rolling windows that end at ``end``:
fold i trains on ``train_days`` and tests on the ``test_days`` right after them; the last
fold's test window ends at ``end``, each earlier fold one test window sooner. A trial is
scored on its training windows only (the mean over the folds); its test windows are the
out-of-sample figures, which the optimiser never sees.

Objectives (figures of ``engine.runtime.replay_metrics.report_dict``): ``pnl`` (account PnL
in USDT, maximise), ``sharpe`` (daily, annualised, maximise; no daily variation = 0),
``drawdown`` (maximum drawdown in % of peak equity, minimise), ``profit_factor`` (maximise;
no trade = 0, no losing trade = PROFIT_FACTOR_CAP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.runtime.replay_data import ReplayDataError, utc

__all__ = ["DAY_MS", "Fold", "OBJECTIVES", "PROFIT_FACTOR_CAP", "make_folds", "objective_value", "parse_objectives"]

DAY_MS = 86_400_000
PROFIT_FACTOR_CAP = 10.0

#: objective name -> (Optuna direction, the report_dict figure it reads, its label)
OBJECTIVES: dict[str, tuple[str, str, str]] = {
    "pnl": ("maximize", "pnl", "PnL USDT"),
    "sharpe": ("maximize", "sharpe", "Sharpe"),
    "drawdown": ("minimize", "max_drawdown_pct", "max DD %"),
    "profit_factor": ("maximize", "profit_factor", "profit factor"),
}


@dataclass(frozen=True)
class Fold:
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    def describe(self) -> str:
        return (f"train {utc(self.train_start)[:10]} .. {utc(self.train_end)[:10]}, "
                f"test .. {utc(self.test_end)[:10]}")

    def as_dict(self) -> dict[str, Any]:
        return {"train": [utc(self.train_start), utc(self.train_end)], "test": [utc(self.test_start), utc(self.test_end)],
                "train_ms": [self.train_start, self.train_end], "test_ms": [self.test_start, self.test_end]}


def parse_objectives(names: list[str] | str) -> tuple[str, ...]:
    items = [n.strip().lower() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if not items:
        raise ReplayDataError(f"--objectives: none given; expected one or more of: {', '.join(OBJECTIVES)}")
    bad = [n for n in items if n not in OBJECTIVES]
    if bad:
        raise ReplayDataError(f"--objectives: {bad[0]!r} is not an objective; expected one or more of: "
                              f"{', '.join(OBJECTIVES)}")
    if len(set(items)) != len(items):
        raise ReplayDataError(f"--objectives: {','.join(items)} names one twice")
    return tuple(items)


def make_folds(start_ms: int, end_ms: int, folds: int, train_days: int | None, test_days: int | None) -> list[Fold]:
    """Rolling windows of whole days in [start, end); without day counts, the span is split so
    that a training window is twice a test window."""
    span_days = (end_ms - start_ms) // DAY_MS
    if folds < 1:
        raise ReplayDataError(f"--folds {folds}: expected at least 1")
    if test_days is None and train_days is None:
        test_days = span_days // (folds + 2)
        train_days = 2 * test_days
    elif test_days is None:
        test_days = (span_days - int(train_days)) // folds  # type: ignore[arg-type]
    elif train_days is None:
        train_days = span_days - folds * test_days
    assert train_days is not None and test_days is not None
    need = train_days + folds * test_days
    if train_days < 1 or test_days < 1 or need > span_days:
        raise ReplayDataError(
            f"--timerange {utc(start_ms)[:10]} .. {utc(end_ms)[:10]} holds {span_days} whole days; {folds} fold(s) of "
            f"{max(train_days, 1)} training and {max(test_days, 1)} test days need {max(need, folds + 1)} "
            "(widen --timerange, or lower --folds, --train-days or --test-days)")
    out = []
    for i in range(folds):
        test_end = end_ms - (folds - 1 - i) * test_days * DAY_MS
        test_start = test_end - test_days * DAY_MS
        out.append(Fold(test_start - train_days * DAY_MS, test_start, test_start, test_end))
    return out


def objective_value(name: str, overall: dict[str, Any]) -> float:
    """The number Optuna optimises, from a replay report's ``overall`` figures (JSON-friendly:
    None for NaN, "inf" for infinity)."""
    v = overall.get(OBJECTIVES[name][1])
    if name == "profit_factor":
        if v is None:
            return 0.0
        if v == "inf":
            return PROFIT_FACTOR_CAP
        return min(float(v), PROFIT_FACTOR_CAP)
    if v is None or isinstance(v, str):
        return 0.0
    return float(v)
