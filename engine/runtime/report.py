"""A replay's results: a progress bar while it runs, then the report (rich tables) in the
terminal and in the run folder (``replay_report.json`` to compare runs, ``replay_report.txt``
as printed), and a side-by-side comparison of two runs (``crot replay compare A B``)."""

from __future__ import annotations

import io
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from engine.settings import Settings

from .replay import ReplaySummary, run_replay
from .replay_data import ReplayDataError
from .replay_metrics import fmt_num as _num
from .replay_metrics import fmt_pct as _pct
from .replay_metrics import report_dict

REPORT_JSON = "replay_report.json"
REPORT_TXT = "replay_report.txt"


async def replay_with_progress(settings: Settings, *, quiet: bool = False, **kw: Any) -> ReplaySummary:
    if quiet:
        return await run_replay(settings, **kw)
    with Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.completed}/{task.total} candles"),
                  TimeRemainingColumn(), transient=True) as progress:
        task = progress.add_task("replay", total=None)

        def on_step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return await run_replay(settings, on_step=on_step, **kw)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def summary_rows(rep: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary's (label, value) rows from a ``report_dict``: the terminal, the text file and
    the HTML page show these same strings."""
    o = rep["overall"]
    start = o["start_equity"]
    pct = o["pnl"] / start * 100 if start else 0.0
    dd = f"{o['max_drawdown_pct']:.2f}%"
    if o["drawdown_peak_ms"] is not None and o["drawdown_trough_ms"] is not None and o["max_drawdown_pct"] > 0:
        dd += f" (peak {_day(o['drawdown_peak_ms'])} -> trough {_day(o['drawdown_trough_ms'])} UTC)"
    rows = [
        ("period", f"{_day(o['start_ms'])} .. {_day(o['end_ms'])} UTC ({o['candles']} candles)"),
        ("symbols", ", ".join(o["symbols"])),
        ("trades", f"{o['trades']} ({o['wins']} won)"),
        ("equity", f"{start:.2f} -> {o['end_equity']:.2f}"),
        ("PnL", f"{o['pnl']:+.2f} ({pct:+.2f}%)"),
        ("max drawdown", dd),
        ("win rate / avg duration", f"{_pct(o['win_rate'])} / {_num(o['avg_duration_h'], 1)} h"),
        ("profit factor / expectancy", f"{_num(o['profit_factor'])} / {_num(o['expectancy'], 4)} per trade "
         f"({_num(o['expectancy_pct_of_equity'], 3)}% of equity)"),
        ("Sharpe / Sortino", f"{_num(o['sharpe'])} / {_num(o['sortino'])} (daily equity returns, x sqrt(365))"),
        ("fees", f"{o['trade_fees']:.4f}"),
        ("funding", f"{o['funding']:+.4f} ({o['funding_events']} settlements; in the PnL, negative = paid)"),
    ]
    rows += list(rep["inputs"].items())
    if rep["data_settings"]:
        rows.append(("data settings", ", ".join(f"{k}={v}" for k, v in rep["data_settings"].items())
                     + " (from the data folder's replay.env; set them in .env to change)"))
    return rows


STATS_TABLES = (("Per pair", "per_pair", "pair"), ("Per exit reason", "per_exit_reason", "exit"),
                ("Per side", "per_side", "side"))
STATS_COLUMNS = ("trades", "win", "PnL", "fees", "PF", "exp", "h")
STATS_CAPTION = "PF: profit factor; exp: expectancy (mean PnL per trade); h: average hours held"
REJECTIONS_TITLE = "Entry rejections by first failing gate (symbol x candle)"


def stats_rows(groups: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per group of a per-pair / per-exit / per-side table (``STATS_COLUMNS`` after the name)."""
    return [[k.removesuffix("/USDT:USDT"), str(g["trades"]), _pct(g["win_rate"]), _num(g["pnl"], 4),
             _num(g["fees"], 4), _num(g["profit_factor"]), _num(g["expectancy"], 4), _num(g["avg_duration_h"], 1)]
            for k, g in groups.items()]


def print_replay_summary(s: ReplaySummary, console: Console | None = None) -> None:
    console = console or Console()
    rep = report_dict(s)
    t = Table(title="Replay summary", show_header=False)
    for label, value in summary_rows(rep):
        t.add_row(label, value)
    console.print(t)
    if rep["rejections"]:
        r = Table(title=REJECTIONS_TITLE)
        r.add_column("gate")
        r.add_column("count", justify="right")
        for name, count in rep["rejections"].items():
            r.add_row(name, str(count))
        console.print(r)
    for title, key, label in STATS_TABLES:
        if rep[key]:
            console.print(_stats_table(title, label, rep[key]))


def _stats_table(title: str, label: str, groups: dict[str, dict[str, Any]]) -> Table:
    t = Table(title=title, caption=STATS_CAPTION)
    t.add_column(label, no_wrap=True)
    for c in STATS_COLUMNS:
        t.add_column(c, justify="right")
    for row in stats_rows(groups):
        t.add_row(*row)
    return t


def write_replay_report(s: ReplaySummary, out_dir: str | Path) -> Path:
    """``replay_report.json`` and ``replay_report.txt`` (the terminal report) in ``out_dir``."""
    from engine.settings.envfile import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / REPORT_JSON, json.dumps(report_dict(s), indent=1, sort_keys=True) + "\n", mode=0o644)
    console = Console(record=True, width=110, file=io.StringIO())
    print_replay_summary(s, console)
    atomic_write_text(out / REPORT_TXT, console.export_text(), mode=0o644)
    return out / REPORT_JSON


def load_report(run: str | Path) -> dict[str, Any]:
    p = Path(run)
    p = p / REPORT_JSON if p.is_dir() else p
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise ReplayDataError(f"{run}: no {REPORT_JSON} (a run folder written by crot replay without --no-record)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReplayDataError(f"{p}: not a replay report ({exc})") from None


_COMPARE = [("period", None), ("candles", "candles"), ("trades", "trades"), ("win rate", "win_rate"),
            ("PnL", "pnl"), ("PnL %", "pnl_pct"), ("profit factor", "profit_factor"), ("expectancy", "expectancy"),
            ("avg hours", "avg_duration_h"), ("Sharpe", "sharpe"), ("Sortino", "sortino"),
            ("max drawdown %", "max_drawdown_pct"), ("fees", "trade_fees"), ("funding", "funding")]


def print_comparison(run_a: str | Path, run_b: str | Path, console: Console | None = None) -> None:
    """Two runs side by side, with B - A where both are numbers."""
    a, b = load_report(run_a), load_report(run_b)
    console = console or Console()
    t = Table(title="Replay comparison")
    t.add_column("")
    t.add_column(f"A: {Path(run_a).name}", justify="right")
    t.add_column(f"B: {Path(run_b).name}", justify="right")
    t.add_column("B - A", justify="right")
    for label, key in _COMPARE:
        if key is None:
            pa = f"{_day(a['overall']['start_ms'])} .. {_day(a['overall']['end_ms'])}"
            pb = f"{_day(b['overall']['start_ms'])} .. {_day(b['overall']['end_ms'])}"
            t.add_row(label, pa, pb, "")
            continue
        va, vb = a["overall"].get(key), b["overall"].get(key)
        digits = 4 if key in ("pnl", "expectancy", "trade_fees", "funding") else 2

        def fmt(v: Any) -> str:
            if key == "win_rate":
                return _pct(v)
            return str(v) if isinstance(v, int) else _num(v, digits)

        diff = ""
        if isinstance(va, int) and isinstance(vb, int):
            diff = f"{vb - va:+d}"
        elif isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            d = vb - va
            diff = (f"{d * 100:+.1f} pts" if key == "win_rate" else
                    ("-" if math.isnan(d) else f"{d:+.{digits}f}"))
        t.add_row(label, fmt(va), fmt(vb), diff)
    console.print(t)
    gates = sorted(set(a["rejections"]) | set(b["rejections"]), key=lambda g: -(b["rejections"].get(g, 0) + a["rejections"].get(g, 0)))
    if gates:
        r = Table(title="Rejections by first failing gate")
        for c in ("gate", "A", "B", "B - A"):
            r.add_column(c, justify="left" if c == "gate" else "right")
        for g in gates:
            x, y = a["rejections"].get(g, 0), b["rejections"].get(g, 0)
            r.add_row(g, str(x), str(y), f"{y - x:+d}")
        console.print(r)
    pairs = sorted(set(a["per_pair"]) | set(b["per_pair"]))
    if pairs:
        p = Table(title="PnL per pair")
        for c in ("pair", "A trades", "A PnL", "B trades", "B PnL"):
            p.add_column(c, justify="left" if c == "pair" else "right")
        for k in pairs:
            ga, gb = a["per_pair"].get(k, {}), b["per_pair"].get(k, {})
            p.add_row(k, str(ga.get("trades", 0)), _num(ga.get("pnl"), 4), str(gb.get("trades", 0)), _num(gb.get("pnl"), 4))
        console.print(p)
