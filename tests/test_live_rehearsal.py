"""The paper rehearsal (see tests/rehearsal.py), short: it must trade, keep every position
stopped after every poll, never duplicate an order, and record each decision."""

from __future__ import annotations

from rehearsal import rehearse, stop_events


async def test_rehearsal_trades_on_an_accelerated_real_clock_under_faults(tmp_path):
    run = await rehearse(tmp_path, candles=100, factor=1500.0)
    assert run.steps > run.candles  # polls land inside candles, not one per boundary
    placed = run.orders("placed", "entry")
    assert placed, "the rehearsal must trade"
    assert stop_events(run), "filled entries must be protected"
    assert run.problems == [], run.problems[:3]
    # no order sent while one with its id was live (1050), and no intent executed twice: HTX
    # accepts an expired id again as a new order, harmless only when the first never filled
    assert run.duplicates == 0 and run.executed_twice == 0, run.reuses
    injected = {k: v for k, v in run.faults.items() if v}
    assert len(injected) >= 3, run.faults  # the faults did reach the venue
    # every closed candle after warm-up was decided, for every warm coin and both sides
    assert run.decided_per_candle and min(run.decided_per_candle[1:-1] or [4]) == 4
    assert run.audit_decision_rows >= run.decisions > 0
