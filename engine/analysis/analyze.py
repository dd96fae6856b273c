"""The analysis of one run: labels, win-rate tables and Fama-MacBeth regressions.

Signals (by default the ``valid`` ones: a coherent directional signal, whatever the entry
gates said) are labelled with each barrier set; their outcome (the barrier return by default)
is regressed per side on the entry-filter values (``<gate>_value``), one cross-section per
``period_minutes`` bucket of signal time. Closed trades are matched to the signal that opened
them (the latest selected signal of the same profile and symbol before the position opened)
and regressed the same way when there are enough of them.

Regressors are chosen automatically unless given: gate values of the signal (portfolio gates
such as cooldown or rate limits are left out), mostly finite, not constant, and not a
near-duplicate (|corr| > 0.98) of a regressor already chosen -- several gates read the same
quantity (rs60 feeds two gates), and a duplicated column makes every cross-section singular.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.strategy.selection import SELECTION_GATES

from .fama_macbeth import FamaMacBethResult, fama_macbeth
from .records import RunRecord
from .risk_reward import break_even_win_rate, label_win_rates, trade_win_rates
from .triple_barrier import Barriers, triple_barrier

__all__ = ["AnalysisOptions", "AnalysisResult", "FmRun", "analyze", "choose_regressors", "match_trades"]

SIGNAL_SETS = ("all", "valid", "entry_valid", "selected")
OUTCOMES = ("exit_ret", "fwd_ret", "label")


@dataclass(frozen=True)
class AnalysisOptions:
    barriers: tuple[Barriers, ...]
    fee: float = 0.0  # round-trip fee rate
    signals: str = "valid"
    outcome: str = "exit_ret"
    period_minutes: int = 1440
    lags: int | None = None
    filters: tuple[str, ...] | None = None  # gate names; None = automatic choice
    max_regressors: int = 10
    min_finite: float = 0.8
    trade_match_minutes: float = 360.0
    trade_period_minutes: int = 1440

    def __post_init__(self) -> None:
        if not self.barriers:
            raise ValueError("at least one barrier set is needed")
        if self.signals not in SIGNAL_SETS:
            raise ValueError(f"signals must be one of {SIGNAL_SETS}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")


@dataclass
class FmRun:
    """One Fama-MacBeth regression (or why there is none)."""

    target: str  # 'signals' or 'trades'
    side: str
    outcome: str
    regressors: tuple[str, ...]
    rows: int
    result: FamaMacBethResult | None
    dropped: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass
class AnalysisResult:
    record: RunRecord
    options: AnalysisOptions
    labels: dict[str, pd.DataFrame]  # barrier label -> labelled signals
    label_table: pd.DataFrame  # win rates per barrier set and side
    trade_table: pd.DataFrame
    fm: list[FmRun]
    notes: list[str]
    symbols_without_candles: tuple[str, ...] = ()


def _select(signals: pd.DataFrame, which: str) -> pd.DataFrame:
    if which == "all" or not len(signals):
        return signals
    return signals[signals[which].astype(bool)]


def choose_regressors(data: pd.DataFrame, gates: Sequence[str], *, max_n: int = 10,
                      min_finite: float = 0.8) -> tuple[list[str], dict[str, str]]:
    """``<gate>_value`` columns usable as regressors, and why the others were dropped."""
    chosen: list[str] = []
    dropped: dict[str, str] = {}
    values: list[np.ndarray] = []
    for g in gates:
        col = f"{g}_value"
        if col not in data.columns:
            dropped[g] = "not in the record"
            continue
        x = pd.to_numeric(data[col], errors="coerce").replace([np.inf, -np.inf], np.nan)
        if len(x) == 0 or x.notna().mean() < min_finite:
            dropped[g] = "mostly missing"
            continue
        if x.nunique(dropna=True) <= 1:
            dropped[g] = "constant"
            continue
        arr = x.to_numpy(dtype=float)
        dup = None
        for name, other in zip(chosen, values):
            ok = ~(np.isnan(arr) | np.isnan(other))
            if ok.sum() > 2 and np.std(arr[ok]) > 0 and np.std(other[ok]) > 0:
                if abs(np.corrcoef(arr[ok], other[ok])[0, 1]) > 0.98:
                    dup = name
                    break
        if dup is not None:
            dropped[g] = f"duplicates {dup[:-len('_value')]}"
            continue
        if len(chosen) >= max_n:
            dropped[g] = "regressor limit"
            continue
        chosen.append(col)
        values.append(arr)
    return chosen, dropped


def match_trades(trades: pd.DataFrame, signals: pd.DataFrame, tolerance_minutes: float) -> pd.DataFrame:
    """Closed trades with the gate values of the signal that opened them: the latest signal
    of the same profile and symbol decided before the position opened (selected signals
    when the record has any, else entry-valid ones), within ``tolerance_minutes``."""
    if not len(trades) or not len(signals):
        return trades.iloc[0:0]
    pool = signals[signals["selected"]] if signals["selected"].any() else signals[signals["entry_valid"]]
    if not len(pool):
        return trades.iloc[0:0]
    decided = pool["cycle_ms"].where(pool["cycle_ms"].notna(), pool["ts_ms"])
    left = trades.assign(_t=trades["opened_ms"].astype("int64")).sort_values("_t")
    right = pool.assign(_t=decided.astype("int64")).sort_values("_t")
    keep = [c for c in right.columns if c not in left.columns or c in ("profile", "symbol", "_t")]
    merged = pd.merge_asof(left, right[keep], on="_t", by=["profile", "symbol"], direction="backward",
                           tolerance=int(tolerance_minutes * 60_000))
    return merged[merged["score"].notna()].drop(columns=["_t"]).reset_index(drop=True)


def _fm(target: str, side: str, data: pd.DataFrame, outcome: str, gates: Sequence[str],
        opts: AnalysisOptions, period_minutes: int, time_col: str) -> FmRun:
    if opts.filters:
        regs = [f"{g}_value" for g in opts.filters if f"{g}_value" in data.columns]
        dropped = {g: "not in the record" for g in opts.filters if f"{g}_value" not in data.columns}
    else:
        regs, dropped = choose_regressors(data, [g for g in gates if g not in SELECTION_GATES],
                                          max_n=opts.max_regressors, min_finite=opts.min_finite)
    run = FmRun(target, side, outcome, tuple(regs), len(data), None, dropped)
    if not regs:
        run.note = "no usable filter values"
        return run
    frame = data.assign(_period=(data[time_col] // (period_minutes * 60_000)).astype("int64"))
    res = fama_macbeth(frame, outcome, regs, "_period", lags=opts.lags)
    if res.periods < 3:
        run.note = (f"only {res.periods} usable cross-sections of {period_minutes} min "
                    f"(each needs {len(regs) + 2} complete rows); no regression")
        return run
    run.result = res
    return run


def analyze(record: RunRecord, candles: Mapping[str, Any], options: AnalysisOptions) -> AnalysisResult:
    """Run every analysis on ``record``; ``candles`` (symbol -> candles) feed the labels."""
    notes: list[str] = []
    signals = _select(record.signals, options.signals)
    missing = tuple(sorted(set(signals["symbol"]) - set(candles))) if len(signals) else ()
    if missing:
        notes.append(f"no candles for {len(missing)} symbol(s): {', '.join(missing[:8])}"
                     f"{' ...' if len(missing) > 8 else ''}; their signals are not labelled")
    labels: dict[str, pd.DataFrame] = {}
    tables = []
    for b in options.barriers:
        lab = triple_barrier(signals, candles, b) if len(signals) else signals.assign(
            entry_price=[], label=[], hit=[], exit_ts_ms=[], exit_ret=[], bars=[], fwd_ret=[], complete=[])
        labels[b.label] = lab
        if len(lab):
            t = label_win_rates(lab, b.take_profit, b.stop, options.fee)
            t.insert(0, "barriers", b.label)
            t.insert(1, "horizon_min", b.horizon_minutes)
            tables.append(t)
    label_table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    first = options.barriers[0]
    trade_table = (trade_win_rates(record.trades, first.take_profit, first.stop, options.fee)
                   if len(record.trades) else pd.DataFrame())
    fm: list[FmRun] = []
    lab = labels[first.label]
    for side in ("long", "short"):
        # complete horizons only: a signal near the end of the data is labelled only when it
        # hit a barrier, which would bias the outcome
        data = (lab[(lab["side"] == side) & lab[options.outcome].notna() & lab["complete"].astype(bool)]
                if len(lab) else lab)
        if not len(data):
            fm.append(FmRun("signals", side, options.outcome, (), 0, None, note="no labelled signals"))
            continue
        fm.append(_fm("signals", side, data, options.outcome, record.gates, options,
                      options.period_minutes, "ts_ms"))
    matched = match_trades(record.trades, record.signals, options.trade_match_minutes)
    for side in ("long", "short"):
        data = matched[matched["side"] == side] if len(matched) else matched
        if not len(data):
            fm.append(FmRun("trades", side, "ret", (), 0, None,
                            note="no closed trades matched to their entry signal"))
            continue
        fm.append(_fm("trades", side, data[data["ret"].notna()], "ret", record.gates, options,
                      options.trade_period_minutes, "opened_ms"))
    if len(record.trades) and len(matched) < len(record.trades):
        notes.append(f"{len(record.trades) - len(matched)} of {len(record.trades)} closed trades "
                     f"have no entry signal in the record")
    be = break_even_win_rate(first.take_profit, first.stop, options.fee, options.fee)
    notes.append(f"break-even win rate for take-profit {first.take_profit:.2%} / stop {first.stop:.2%}"
                 f" / fees {options.fee:.3%}: {be:.1%}")
    if options.outcome == "label":
        notes.append("outcome 'label': +1 / -1 / 0 regressed like a return")
    return AnalysisResult(record, options, labels, label_table, trade_table, fm, notes, missing)

