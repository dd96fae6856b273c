"""Reports of an analysis: rich tables in the terminal, Markdown + SVG plots + CSV tables on disk.

File report layout (``out_dir``)::

    report.md                      the readable report (links the plots)
    plots/win_rates.svg            realised vs break-even win rate per barrier set and side
    plots/fm_<target>_<side>.svg   cumulative Fama-MacBeth coefficients over the cross-sections
    plots/equity.svg               account equity (when the record has it)
    tables/*.csv                   every table of the report, plus the labelled signals
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from .analyze import AnalysisResult, FmRun
from .plots import bar_chart, line_chart

__all__ = ["fm_table", "print_report", "write_report"]


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _num(v: Any, pct: bool = False, digits: int = 4) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(f):
        return "-"
    if pct:
        return f"{f * 100:.1f}%"
    return f"{f:.{digits}g}"


def _summary_rows(res: AnalysisResult) -> list[tuple[str, str]]:
    rec = res.record
    span = rec.span_ms
    sig = rec.signals
    n_sel = sum(len(v) for v in list(res.labels.values())[:1])
    rows = [
        ("record", f"{rec.source} ({rec.kind})"),
        ("period", f"{_day(span[0])} .. {_day(span[1])} UTC" if span else "-"),
        ("profiles", ", ".join(rec.profiles) or "-"),
        ("signals", f"{len(sig)} decisions, {n_sel} analysed ({res.options.signals}), "
                    f"{sig['symbol'].nunique() if len(sig) else 0} symbols"),
        ("closed trades", str(len(rec.trades))),
        ("filters (gates)", str(len(rec.gates))),
    ]
    return rows


def _barrier_lines(res: AnalysisResult) -> list[str]:
    return [f"{b.label}: take-profit {b.take_profit:.2%}, stop {b.stop:.2%}, time {b.horizon_minutes / 60:g} h"
            for b in res.options.barriers]


def _label_rows(res: AnalysisResult) -> tuple[list[str], list[list[str]]]:
    head = ["barriers", "side", "signals", "tp/stop/time/open", "late tp/stop", "win rate [95% CI]", "break-even",
            "net ret", "verdict"]
    rows = []
    for _, r in res.label_table.iterrows():
        rows.append([
            str(r["barriers"]), str(r["side"]), str(r["signals"]),
            f"{r['tp']}/{r['stop']}/{r['timeout']}/{r['open']}",
            f"{r.get('late_tp', 0)}/{r.get('late_stop', 0)}",
            f"{_num(r['win_rate'], True)} [{_num(r['ci_low'], True)}, {_num(r['ci_high'], True)}]",
            _num(r["break_even"], True), _bps(r["mean_net_ret"]), str(r["verdict"]),
        ])
    return head, rows


def _bps(v: Any) -> str:
    f = float(v)
    return "-" if math.isnan(f) else f"{f * 1e4:+.1f} bp"


def _trade_rows(res: AnalysisResult) -> tuple[list[str], list[list[str]]]:
    head = ["side", "trades", "wins", "win rate [95% CI]", "break-even (settings)",
            "break-even (realised payoffs)", "avg win", "avg loss", "pnl", "verdict"]
    rows = []
    for _, r in res.trade_table.iterrows():
        rows.append([
            str(r["side"]), str(r["trades"]), str(r["wins"]),
            f"{_num(r['win_rate'], True)} [{_num(r['ci_low'], True)}, {_num(r['ci_high'], True)}]",
            _num(r["break_even"], True), _num(r["realised_break_even"], True),
            _bps(r["avg_win_ret"]), _bps(r["avg_loss_ret"]), _num(r["pnl"]), str(r["verdict"]),
        ])
    return head, rows


def fm_table(run: FmRun) -> pd.DataFrame:
    """The summary of one regression with readable regressor names (the gate names)."""
    if run.result is None:
        return pd.DataFrame()
    s = run.result.summary.copy()
    s.index = [i[: -len("_value")] if i.endswith("_value") else i for i in s.index]
    s.index.name = "regressor"
    return s


def _fm_caption(run: FmRun) -> str:
    if run.result is None:
        return run.note
    r = run.result
    text = (f"outcome {run.outcome}; {run.rows} rows in {r.periods} cross-sections "
            f"(mean {r.n_obs.mean():.0f} rows, mean R2 {r.r2.mean():.3f}, {r.skipped} skipped); "
            f"regressors standardised per cross-section; t = mean / Newey-West se")
    if run.dropped:
        text += "; left out: " + ", ".join(f"{k} ({v})" for k, v in run.dropped.items())
    return text


# --------------------------------------------------------------------------- terminal
def print_report(res: AnalysisResult, console: Console | None = None) -> None:
    console = console or Console()
    t = Table(title="Run record", show_header=False)
    for k, v in _summary_rows(res):
        t.add_row(k, v)
    console.print(t)
    if len(res.label_table):
        head, rows = _label_rows(res)
        t = Table(title="Triple-barrier labels vs break-even win rate",
                  caption="; ".join(_barrier_lines(res)) + ". Win rate = tp / (tp + stop); one candle "
                  "reaching both barriers counts as a stop; net ret = mean barrier return after fees.")
        for h in head:
            t.add_column(h, justify="left" if h in ("barriers", "side", "verdict") else "right")
        for row in rows:
            style = {"above": "green", "below": "red"}.get(row[-1])
            t.add_row(*row, style=style)
        console.print(t)
    if len(res.trade_table):
        head, rows = _trade_rows(res)
        t = Table(title="Closed trades vs risk/reward")
        for h in head:
            t.add_column(h, justify="left" if h in ("side", "verdict") else "right")
        for row in rows:
            t.add_row(*row)
        console.print(t)
    for run in res.fm:
        title = f"Fama-MacBeth: {run.target}, {run.side}"
        if run.result is None:
            console.print(f"[bold]{title}[/bold]: {run.note}")
            continue
        t = Table(title=title, caption=_fm_caption(run))
        for h in ("regressor", "coef", "NW se", "t", "periods", "lags"):
            t.add_column(h, justify="left" if h == "regressor" else "right")
        for name, r in fm_table(run).iterrows():
            strong = math.isfinite(r["t"]) and abs(r["t"]) >= 2.0 and name != "const"
            t.add_row(str(name), _num(r["coef"]), _num(r["se"]), _num(r["t"], digits=3),
                      str(int(r["periods"])), str(int(r["lags"])), style="bold" if strong else None)
        console.print(t)
    for n in res.notes:
        console.print(f"note: {n}")


# --------------------------------------------------------------------------- files
def _md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _plots(res: AnalysisResult, plots: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    plots.mkdir(parents=True, exist_ok=True)
    lt = res.label_table
    if len(lt):
        cats = [f"{b} {s}" for b, s in zip(lt["barriers"], lt["side"])]
        svg = bar_chart(cats, {"realised win rate": list(lt["win_rate"].astype(float)),
                               "break-even": list(lt["break_even"].astype(float))},
                        "Win rate: realised (triple barrier) vs break-even", "fraction of resolved signals")
        (plots / "win_rates.svg").write_text(svg)
        out["win_rates"] = "plots/win_rates.svg"
    for run in res.fm:
        if run.result is None:
            continue
        coefs = run.result.coefs.drop(columns=["const"])
        series = {}
        for c in coefs.columns:
            cum = coefs[c].fillna(0.0).cumsum()
            series[c[: -len("_value")] if c.endswith("_value") else c] = (list(range(1, len(cum) + 1)), list(cum))
        name = f"fm_{run.target}_{run.side}"
        svg = line_chart(series, f"Cumulative Fama-MacBeth coefficients: {run.target}, {run.side}",
                         "cross-section", f"sum of coefficients ({run.outcome} per 1 sd)", hline=0.0)
        (plots / f"{name}.svg").write_text(svg)
        out[name] = f"plots/{name}.svg"
    acc = res.record.account
    if len(acc) and "equity" in acc:
        t0 = float(acc["ts_ms"].min())
        svg = line_chart({"equity": ([(t - t0) / 3_600_000 for t in acc["ts_ms"]], list(acc["equity"]))},
                         "Account equity", "hours since the first sample", "equity")
        (plots / "equity.svg").write_text(svg)
        out["equity"] = "plots/equity.svg"
    return out


def write_report(res: AnalysisResult, out_dir: str | Path) -> Path:
    """Write report.md, the SVG plots and the CSV tables into ``out_dir``; returns report.md."""
    out = Path(out_dir)
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    plots = _plots(res, out / "plots")
    md: list[str] = ["# CROT run analysis", ""]
    md += ["## Run", "", _md_table(["", ""], [[k, v] for k, v in _summary_rows(res)]), ""]
    if len(res.label_table):
        head, rows = _label_rows(res)
        md += ["## Triple-barrier labels and win rates", "",
               "Label +1: the take-profit was reached first; -1: the stop (also when one candle reached "
               "both: OHLC data cannot order them, so the pessimistic reading is used); 0: neither "
               "within the holding time. Win rate = take-profits / (take-profits + stops), Wilson 95% "
               "interval; the verdict compares that interval with the break-even win rate the "
               "take-profit, stop and round-trip fees imply; net ret is the mean barrier return of the "
               "resolved signals after round-trip fees. Signals in the last holding time of the data "
               "are left out of the win rate (they are labelled only when they hit a barrier, which "
               "would bias it); 'late tp/stop' counts their barrier hits apart.", ""]
        md += [f"- {line}" for line in _barrier_lines(res)] + ["", _md_table(head, rows), ""]
        if "win_rates" in plots:
            md += [f"![win rates]({plots['win_rates']})", ""]
        res.label_table.to_csv(tables / "win_rates_labels.csv", index=False)
        for name, lab in res.labels.items():
            lab.to_csv(tables / f"labels_{name}.csv", index=False)
    if len(res.trade_table):
        head, rows = _trade_rows(res)
        md += ["## Closed trades vs risk/reward", "", _md_table(head, rows), ""]
        res.trade_table.to_csv(tables / "win_rates_trades.csv", index=False)
    md += ["## Fama-MacBeth regressions of outcomes on entry-filter values", ""]
    for run in res.fm:
        md += [f"### {run.target}, {run.side}", ""]
        if run.result is None:
            md += [run.note, ""]
            continue
        s = fm_table(run)
        rows = [[str(i), _num(r["coef"]), _num(r["se"]), _num(r["t"], digits=3), str(int(r["periods"])),
                 str(int(r["lags"]))] for i, r in s.iterrows()]
        md += [_fm_caption(run) + ".", "", _md_table(["regressor", "coef", "NW se", "t", "periods", "lags"], rows), ""]
        name = f"fm_{run.target}_{run.side}"
        if name in plots:
            md += [f"![{name}]({plots[name]})", ""]
        s.to_csv(tables / f"{name}_summary.csv")
        run.result.coefs.to_csv(tables / f"{name}_coefficients.csv")
    if "equity" in plots:
        md += ["## Account equity", "", f"![equity]({plots['equity']})", ""]
    if res.notes:
        md += ["## Notes", ""] + [f"- {n}" for n in res.notes] + [""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path
