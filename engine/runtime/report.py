"""Terminal output for a replay: a progress bar while it runs and a summary when it ends."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from engine.settings import Settings

from .replay import ReplaySummary, run_replay


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


def print_replay_summary(s: ReplaySummary, console: Console | None = None) -> None:
    console = console or Console()
    t = Table(title="Replay summary", show_header=False)
    t.add_row("period", f"{_day(s.start_ms)} .. {_day(s.end_ms)} UTC ({s.steps} candles)")
    t.add_row("symbols", ", ".join(s.symbols))
    t.add_row("trades", f"{s.trades} ({s.wins} won)")
    t.add_row("equity", f"{s.start_equity:.2f} -> {s.end_equity:.2f}")
    pct = float(s.pnl / s.start_equity * 100) if s.start_equity else 0.0
    t.add_row("PnL", f"{s.pnl:+.2f} ({pct:+.2f}%)")
    t.add_row("max drawdown", f"{s.max_drawdown * 100:.2f}%")
    t.add_row("fees", f"{s.fees:.4f}")
    console.print(t)
    if s.rejections:
        r = Table(title="Entry rejections by first failing gate (symbol x candle)")
        r.add_column("gate")
        r.add_column("count", justify="right")
        for name, count in s.rejections.items():
            r.add_row(name, str(count))
        console.print(r)
