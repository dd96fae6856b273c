"""The demo's end screen shows the funding next to the fees (both are in the PnL)."""

from __future__ import annotations

import io
from decimal import Decimal

from rich.console import Console

from crot_tui.screens.summary import summary_renderable
from engine.runtime.replay import ReplaySummary


def test_the_summary_shows_fees_and_funding():
    s = ReplaySummary(start_ms=1_722_470_400_000, end_ms=1_722_556_800_000, steps=288, symbols=["BTC/USDT:USDT"],
                      trades=2, wins=1, start_equity=Decimal(1000), end_equity=Decimal("1001.2"), max_drawdown=0.01,
                      fees=Decimal("0.4321"), rejections={}, funding=Decimal("-0.1234"), funding_events=3)
    console = Console(file=io.StringIO(), width=100)
    console.print(summary_renderable(s))
    lines = console.file.getvalue().splitlines()
    fees = next(i for i, ln in enumerate(lines) if "│ fees" in ln)
    assert "0.4321" in lines[fees]
    assert "funding" in lines[fees + 1] and "-0.1234 (3 settlements, in the PnL" in lines[fees + 1]
