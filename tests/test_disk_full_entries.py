"""A full disk under the audit record stops new entries and averaging; stops and exits go on.

A real replay (bundled USDT-M perps, 2024-08-05, the crash: trades on the short side) with its
audit record, whose disk guard measures a fake free space (the real disk is never filled):
from one step on the disk reports 100 MB free, below AUDIT_MIN_FREE_BYTES (512 MB), then
space comes back. While it is full no entry or averaging order is placed (the same replay
without the full disk places some there), the positions already open keep their stop on the
exchange and are closed by their exits and stops, the status says why (the disk, the free
space), and entries resume once space is back.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.runtime.events import EngineStatus, EventBus, OrderEvent, TradeClosed
from engine.runtime.replay import run_replay
from engine.settings import Settings
from engine.store import audit_retention

MB = 1 << 20
START = 1_722_816_000_000  # 2024-08-05 00:00 UTC
SYMBOLS = ["BTC", "ETH", "SOL"]
STEPS = 200
FULL_FROM, FULL_UNTIL = 62, 110  # on_step(done) values: steps done+1 .. FULL_UNTIL run with the disk full


class Disk:
    def __init__(self) -> None:
        self.free = 10_000 * MB

    def __call__(self, path: Path) -> int:
        return self.free


async def _replay(tmp: Path, monkeypatch, *, fill_disk: bool):
    disk = Disk()
    monkeypatch.setattr(audit_retention, "free_bytes", disk)
    bus = EventBus()
    step = [0]
    events: list[tuple[int, object]] = []
    bus.subscribe(lambda e: events.append((step[0], e)))
    engines = []
    unprotected: list[str] = []

    async def on_step(done: int, total: int) -> None:
        if fill_disk and FULL_FROM <= done < FULL_UNTIL:
            ex = engines[-1].exchange  # every open position has its stop on the exchange
            stops = {o.symbol for o in await ex.fetch_open_orders() if o.kind == "stop_loss"}
            unprotected.extend(f"step {done}: {p.symbol}" for p in await ex.fetch_positions() if p.symbol not in stops)
        step[0] = done
        if fill_disk:
            disk.free = 100 * MB if FULL_FROM <= done < FULL_UNTIL else 10_000 * MB

    summary = await run_replay(Settings.defaults(), symbols=SYMBOLS, start_ms=START, max_steps=STEPS,
                               audit_dir=tmp, bus=bus, on_step=on_step, on_engine=engines.append)
    return summary, events, unprotected


def _entries(events, lo: int, hi: int) -> list[str]:
    return [f"{k} {e.profile} {e.symbol} {e.purpose}" for k, e in events
            if isinstance(e, OrderEvent) and e.action == "placed" and e.purpose in ("entry", "add") and lo <= k < hi]


async def test_a_full_audit_disk_stops_entries_keeps_stops_and_exits_and_entries_resume(tmp_path, monkeypatch):
    _, base, _ = await _replay(tmp_path / "roomy", monkeypatch, fill_disk=False)
    assert _entries(base, FULL_FROM, FULL_UNTIL), "the replay must enter in the window for the test to mean anything"

    run = tmp_path / "full"
    summary, events, unprotected = await _replay(run, monkeypatch, fill_disk=True)
    # the steps before the disk filled ran as without it
    assert _entries(events, 0, FULL_FROM) == _entries(base, 0, FULL_FROM)
    # full: no new entry, no averaging
    assert _entries(events, FULL_FROM, FULL_UNTIL) == []
    # ... while the open positions keep their stops and are closed by their exits and stops
    assert unprotected == []
    closed = [e for k, e in events if isinstance(e, TradeClosed) and FULL_FROM <= k < FULL_UNTIL]
    assert closed, "a position open when the disk filled is closed while it is full"
    assert any(e.reason == "stop_loss" for e in closed)
    assert any(isinstance(e, OrderEvent) and e.action == "placed" and e.purpose == "stop"
               for k, e in events if FULL_FROM <= k < FULL_UNTIL)
    # loud: the status names the disk and the free space, once when it fills, once when it is back
    status = [(k, e.message) for k, e in events if isinstance(e, EngineStatus)]
    blocked = [m for k, m in status if "audit record disk full" in m]
    assert len(blocked) == 1 and "new entries and averaging blocked" in blocked[0]
    assert "only 100 MB free on" in blocked[0] and str(run) in blocked[0] and "AUDIT_MIN_FREE_BYTES" in blocked[0]
    assert [k for k, m in status if "audit record disk full" in m] == [FULL_FROM]
    assert any(k == FULL_UNTIL and "new entries and averaging allowed" in m for k, m in status)
    # space is back: entries resume
    assert _entries(events, FULL_UNTIL, STEPS)
    # the record kept every closed trade (trades are written while the disk is full)
    db = sqlite3.connect(run / "audit.sqlite")
    assert db.execute("SELECT count(*) FROM audit_trades WHERE event = 'close'").fetchone()[0] == summary.trades > 0


@pytest.mark.parametrize("free_mb", [100, 0])
def test_the_block_reason_names_the_disk_and_the_free_space(tmp_path, free_mb):
    from engine.store.audit import AuditWriter, RetentionPolicy

    w = AuditWriter(tmp_path, retention=RetentionPolicy.guard_only(min_free_bytes=512 * MB))
    w.guard.free = lambda path: free_mb * MB
    assert w.block_reason() == ""
    reason = w.check_disk()
    assert reason == w.block_reason() and f"only {free_mb} MB free on {tmp_path}" in reason
    w.guard.free = lambda path: 550 * MB  # above the floor, not above floor + margin: still full
    assert w.check_disk()
    w.guard.free = lambda path: 1024 * MB
    assert w.check_disk() == "" and not w.disk_full
    w.close()


async def test_paper_loop_holds_entries_while_the_audit_disk_is_full_and_enters_once_space_is_back(
        tmp_path, monkeypatch):
    """The live loop (paper mode, simulated fills, fake clock): the audit writer's block is
    registered there too, measured before the first step and at every flush after a step."""
    import asyncio

    from engine.exchange.sim import SimConfig, SimulatedExchange
    from engine.market.feeds import FileFeed
    from engine.runtime.live import LiveParts, run_live
    from engine.runtime.replay import demo_market

    from test_runtime_live import DEMO_DATA, XRP, make_settings

    settings = make_settings("COINS=xrp\nPOLL_INTERVAL_SEC=1\nENTRY_MIN_SCORE=0\nEMA_USE_RS_CONFIRMATION=false\n"
                             "EMA_VOLUME_CONFIRMATION_ENABLED=false\nEMA_CHOP_FILTER_ENABLED=false\n"
                             "ENTRY_MIN_RS60_ABS=0\nENTRY_MIN_RS30_ABS=0\n")
    feed = FileFeed.from_directory(DEMO_DATA, "5m", symbols=[XRP])
    history = feed.history(XRP)
    sim = SimulatedExchange([demo_market(XRP, history)], SimConfig(stops_reserve_closeable=False))
    clock = {"now": history[1500].ts_ms + 300_000, "step": 0}
    full_until = 10  # (without the full disk this run places its entry at step 3)

    class Feed:
        symbols = (XRP,)
        timeframe = "5m"

        async def poll(self, now_ms):
            return await feed.poll(now_ms)

    async def wait(seconds):
        clock["now"] += 300_000
        clock["step"] += 1
        await asyncio.sleep(0)

    monkeypatch.setattr(audit_retention, "free_bytes",
                        lambda path: 100 * MB if clock["step"] < full_until else 10_000 * MB)
    bus = EventBus()
    events: list[tuple[int, object]] = []
    bus.subscribe(lambda e: events.append((clock["step"], e)))
    await run_live(settings, bus=bus, paper=True, parts=LiveParts(sim, Feed(), None, sim),
                   db_path=tmp_path / "p.sqlite", clock_ms=lambda: clock["now"], max_steps=40, wait=wait,
                   benchmark=None)
    entries = [k for k, e in events if isinstance(e, OrderEvent) and e.action == "placed" and e.purpose == "entry"]
    assert entries and min(entries) > full_until  # nothing while full, entries once space is back
    status = [(k, e.message) for k, e in events if isinstance(e, EngineStatus)]
    blocked = [(k, m) for k, m in status if "audit record disk full" in m]
    assert len(blocked) == 1 and blocked[0][0] == 0  # before the first step could enter
    assert f"only 100 MB free on {tmp_path / 'paper'}" in blocked[0][1]
    assert any(k == full_until + 1 and "new entries and averaging allowed" in m for k, m in status)
