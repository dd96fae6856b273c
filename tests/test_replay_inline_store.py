"""Replay's state store runs its SQL in the event loop's thread (engine/store/inline_sqlite.py)
instead of aiosqlite's worker thread (issue 16: about 50 thread hops per replayed candle). The
speed must not change a result: the same trades, fills, equity curve and state database rows,
to the last digit, as the aiosqlite store that live and paper use."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

from engine.exchange.sim import SimConfig
from engine.runtime.events import EventBus
from engine.runtime.replay import DEMO_SYMBOLS, run_replay
from engine.settings import Settings
from engine.store.inline_sqlite import InlineConnection
from engine.store.state import StateStore

STEPS = 1800


def _rows(path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("orders", "trades", "positions", "ladders", "profile_kv", "repairs")}
    finally:
        db.close()


async def _run(tmp_path, name: str, inline: bool):
    events: list = []
    bus = EventBus()
    bus.subscribe(lambda e: events.append(e) if e.kind in ("order", "fill", "trade", "stop") else None)
    db = tmp_path / f"{name}.sqlite"
    summary = await run_replay(Settings.defaults(), symbols=DEMO_SYMBOLS[:6], max_steps=STEPS, db_path=db, bus=bus,
                               sim_config=SimConfig(initial_wallet=Decimal("1000"), stops_reserve_closeable=False),
                               inline_store=inline)
    return summary, events, _rows(db)


async def test_the_inline_store_gives_the_same_replay_to_the_last_digit(tmp_path):
    inline, inline_events, inline_rows = await _run(tmp_path, "inline", True)
    thread, thread_events, thread_rows = await _run(tmp_path, "thread", False)
    assert inline.trades > 3 and len(inline_events) > 50  # not trivially empty
    assert inline.trade_rows == thread.trade_rows
    assert inline.equity_curve == thread.equity_curve
    assert (inline.end_equity, inline.fees, inline.rejections) == (thread.end_equity, thread.fees, thread.rejections)
    assert inline_events == thread_events  # every order, fill, stop and trade, in order
    assert inline_rows == thread_rows and inline_rows["orders"]


async def test_the_inline_store_is_the_same_store(tmp_path):
    """Transactions, a refused foreign file and reopening behave as with aiosqlite."""
    path = tmp_path / "s.sqlite"
    store = await StateStore.open(path, inline=True)
    assert isinstance(store.db, InlineConnection)
    assert await store.record_trade(profile="long", symbol="X", side="long", opened_ms=1, closed_ms=2,
                                    entry_price=Decimal("1.5"), exit_price=Decimal("1.6"), contracts=Decimal(3),
                                    pnl=Decimal("0.3"), fees=Decimal("0.01"), reason="tp")
    assert not await store.record_trade(profile="long", symbol="X", side="long", opened_ms=1, closed_ms=2,
                                        entry_price=Decimal("1.5"), exit_price=Decimal("1.6"),
                                        contracts=Decimal(3), pnl=Decimal("0.3"), fees=Decimal("0.01"), reason="tp")
    await store.close()
    again = await StateStore.open(path)  # aiosqlite reads what the inline store wrote
    assert [t["pnl"] for t in await again.trades()] == ["0.3"]
    await again.close()
    foreign = tmp_path / "f.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE other (x)")
    db.commit()
    db.close()
    import pytest

    from engine.store.state import StateFileError

    with pytest.raises(StateFileError, match="not a CROT state database"):
        await StateStore.open(foreign, inline=True)
