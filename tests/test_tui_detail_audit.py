"""The detail view's second source: the audit trail on disk (engine/store/audit_query.py, read
only), for a position whose events the app did not see (a viewer attached after it opened)."""

from __future__ import annotations

import asyncio
import hashlib
from decimal import Decimal as D
from pathlib import Path

import pytest

from crot_tui.app import CrotApp
from crot_tui.host import EngineHost
from crot_tui.screens.detail import DetailScreen
from crot_tui.testing import SYN_STEP, SYN_T0, Recording, fast_settings, feed_runner, synthetic_recording, write_env
from engine.runtime import events as ev
from engine.store.audit import AuditWriter
from engine.store.audit_query import audit_db_path, entry_decision, position_events

T = SYN_T0 + 121 * SYN_STEP


def dash_trades() -> list[ev.Event]:
    t2 = T + 4 * SYN_STEP
    return [
        ev.OrderEvent(T, "long", "DASH/BTC", "placed", "entry", 501, "buy", D("0.0671"), D(3), False),
        ev.FillEvent(T + 1, "long", "DASH/BTC", "buy", D("0.0671"), D(3), D("0.0002"), "entry"),
        ev.StopEvent(T + 2, "long", "DASH/BTC", "placed", D("0.0660"), D(3), "[htx] attached"),
        ev.FillEvent(T + 2 * SYN_STEP, "long", "DASH/BTC", "sell", D("0.0660"), D(3), D("0.0002"), "stop"),
        ev.TradeClosed(T + 2 * SYN_STEP, "long", "DASH/BTC", "long", D("0.0671"), D("0.0660"), D(3),
                       D("-0.5000"), D("0.0004"), T + 1, "stop_loss"),
        ev.OrderEvent(t2, "long", "DASH/BTC", "placed", "entry", 601, "buy", D("0.0665"), D(3), False),
        ev.FillEvent(t2 + 1, "long", "DASH/BTC", "buy", D("0.0665"), D(3), D("0.0002"), "entry"),
        ev.StopEvent(t2 + 2, "long", "DASH/BTC", "moved", D("0.0670"), D(3), "trail"),
    ]


def write_audit(folder: Path, events) -> Path:
    w = AuditWriter(folder)
    for e in events:
        w(e)
    w.flush()
    w.close()
    return folder / "audit.sqlite"


@pytest.fixture(scope="module")
def events() -> list[ev.Event]:
    return list(synthetic_recording().events) + dash_trades()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_position_events_start_after_the_previous_close(tmp_path, events) -> None:
    db = write_audit(tmp_path, events)
    before = digest(db)
    second = position_events(db, "long", "DASH/BTC", opened_ms=T + 4 * SYN_STEP + 1)
    assert [(e.kind, getattr(e, "action", getattr(e, "purpose", ""))) for e in second] == [
        ("order", "placed"), ("fill", "entry"), ("stop", "moved")]
    first = position_events(db, "long", "DASH/BTC", opened_ms=T + 1, until_ms=T + 2 * SYN_STEP)
    assert [e.kind for e in first] == ["order", "fill", "stop", "fill", "trade"]
    assert first[2].reason == "[htx] attached" and first[-1].pnl == D("-0.5000")
    eth = position_events(db, "long", "ETH/BTC", opened_ms=SYN_T0 + 41 * SYN_STEP)
    assert [e.kind for e in eth] == ["order", "order", "stop", "order", "stop", "order", "order"]
    assert eth[0] == events[[i for i, e in enumerate(events) if e.kind == "order"][0]]  # the same event back
    assert len(position_events(db, "long", "ETH/BTC", opened_ms=SYN_T0 + 41 * SYN_STEP, limit=3)) == 3
    d = entry_decision(db, "long", "DASH/BTC", T)
    assert d is not None and d.symbol == "DASH/BTC" and d.side == "long" and d.ts_ms <= T
    assert [g.name for g in d.gates][:2] == ["strategy_enabled", "macro_trend"]
    assert digest(db) == before  # read only


def test_a_missing_or_broken_file_gives_nothing_and_creates_nothing(tmp_path) -> None:
    missing = tmp_path / "none" / "audit.sqlite"
    assert position_events(missing, "long", "X", opened_ms=1) == []
    assert entry_decision(missing, "long", "X", 1) is None
    assert not missing.exists() and not missing.parent.exists()
    junk = tmp_path / "audit.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    assert position_events(junk, "long", "X", opened_ms=1) == []
    assert entry_decision(junk, "long", "X", 1) is None
    assert audit_db_path("data", "paper") == Path("data") / "paper" / "audit.sqlite"


async def test_a_late_viewer_shows_the_position_history_from_the_audit_trail(tmp_path, events) -> None:
    data = tmp_path / "data"
    write_audit(data / "paper", events)
    # the app only sees the last positions (it attached after everything happened)
    last = {}
    for e in events:
        if isinstance(e, ev.Positions):
            last[e.profile] = e
    rec = Recording(tuple(last.values()), None, 1)
    host = EngineHost(fast_settings(f"DATA_DIR={data}\n"), mode="paper", runner=feed_runner(rec))
    app = CrotApp(host, env_path=write_env(tmp_path / ".env", ""), show_summary=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.engine_done.wait(), 60)
        for _ in range(3):
            await pilot.pause()
        app.drain_now()
        app.flush()
        await pilot.pause()
        assert app.state.episode("long", "ETH/BTC") is None
        await pilot.press("1", "enter")  # ETH/BTC long
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.symbol == "ETH/BTC"
        await asyncio.wait_for(screen.audit_loaded.wait(), 10)  # read in a thread
        await pilot.pause()
        t = screen.query_one("#detail-timeline")
        rows = [[c.plain for c in t.get_row_at(i)] for i in range(t.row_count)]
        assert [(r[1], r[2]) for r in rows] == [("order", "placed"), ("order", "placed"), ("stop", "placed"),
                                                ("order", "placed"), ("stop", "moved"), ("order", "placed"),
                                                ("order", "cancelled")]
        assert "7 earlier events from the audit trail" in screen.query_one("#detail-title").render().plain
        decision = screen.query_one("#detail-decision").render().plain
        assert "(audit trail)" in decision and "entry decision 2018-01-10 08:20" in decision
        await pilot.press("tab")
        assert screen.query_one("#detail-gates").row_count == 9
        # what arrives now is added after the audit's part
        app.host.bus.publish(ev.StopEvent(T, "long", "ETH/BTC", "moved", D("0.0911"), D(4), "trail"))
        app.drain_now()
        app.flush()
        await pilot.pause()
        assert t.row_count == 8
