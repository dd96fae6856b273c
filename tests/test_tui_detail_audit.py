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
from tui_kit import settle

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


def paper_app(tmp_path: Path, data: Path, events) -> CrotApp:
    """An app on a paper bot with DATA_DIR `data` whose engine is the recorded `events`."""
    host = EngineHost(fast_settings(f"DATA_DIR={data}\n"), mode="paper",
                      runner=feed_runner(Recording(tuple(events), None, 1)))
    return CrotApp(host, env_path=write_env(tmp_path / ".env", ""), show_summary=False)


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
    app = paper_app(tmp_path, data, rec.events)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
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


async def test_the_trades_screen_shows_the_audit_trails_earlier_trades_and_their_detail(tmp_path, events) -> None:
    """Issue 14, history: a viewer started after trades closed lists them from the audit trail
    (once, under the trades it saw itself, none twice), and Enter on one shows its orders,
    fills and stop from the audit trail."""
    from crot_tui.screens.trades import TradesScreen
    from engine.store.audit_query import recent_trades

    data = tmp_path / "data"
    db = write_audit(data / "paper", events)
    history = recent_trades(db)
    assert [(t.symbol, t.reason, t.pnl) for t in history] == [("ADA/BTC", "exit ladder", D("1.6820")),
                                                              ("DASH/BTC", "stop_loss", D("-0.5000"))]
    assert recent_trades(db, 1) == history[-1:]  # the newest
    assert recent_trades(tmp_path / "missing.sqlite") == []
    # the app saw only the DASH trade's close (it attached just before): it is not listed twice
    seen = [e for e in events if isinstance(e, ev.TradeClosed) and e.symbol == "DASH/BTC"]
    rec = Recording(tuple(seen), None, 1)
    app = paper_app(tmp_path, data, rec.events)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert len(app.state.closed) == 1
        await pilot.press("h")
        screen = app.screen
        assert isinstance(screen, TradesScreen)
        await asyncio.wait_for(screen.history_loaded.wait(), 10)
        await pilot.pause()
        assert [(ep.symbol, ep.history) for ep in app.state.closed] == [("ADA/BTC", True), ("DASH/BTC", False)]
        assert screen.query_one("#trades-table").row_count == 2
        assert "2 trades" in screen.query_one("#trades-summary").render().plain
        screen.set_filter("ada")
        await pilot.pause()
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, DetailScreen) and detail.symbol == "ADA/BTC"
        await asyncio.wait_for(detail.audit_loaded.wait(), 10)
        await pilot.pause()
        t = detail.query_one("#detail-timeline")
        kinds = [t.get_row_at(i)[1].plain for i in range(t.row_count)]
        assert "order" in kinds and kinds[-1] == "trade" and kinds.count("trade") == 1
        await pilot.press("escape", "escape", "h")  # reopened: history is not merged again
        await pilot.pause()
        assert len(app.state.closed) == 2


async def test_the_event_log_starts_with_the_audit_trails_last_lines(tmp_path, events) -> None:
    """Issue 14: the event log of a viewer started after the bot ran holds the record's
    earlier orders, stops, fills and closes before its own lines (bounded, none twice)."""
    from crot_tui.widgets.eventlog import EventLogPane
    from engine.store.audit_query import recent_events

    data = tmp_path / "data"
    db = write_audit(data / "paper", events)
    recorded = recent_events(db)
    kinds = {e.kind for e in recorded}
    assert {"order", "stop", "fill", "trade"} <= kinds
    assert [e.ts_ms for e in recorded] == sorted(e.ts_ms for e in recorded)
    assert len(recent_events(db, 5)) == 5 and recent_events(db, 5) == recorded[-5:]
    assert recent_events(db, before_ms=T) == [e for e in recorded if e.ts_ms < T][-2500:]
    assert recent_events(tmp_path / "missing.sqlite") == []
    seen = [e for e in events if isinstance(e, ev.TradeClosed) and e.symbol == "DASH/BTC"]
    app = paper_app(tmp_path, data, seen)
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(app.log_history_loaded.wait(), 10)
        await settle(pilot)
        lines = list(app.state.log)
        history = [x for x in lines if x.seq < 0]
        assert len(history) >= 10 and lines[: len(history)] == history  # the record's lines come first
        texts = [x.text for x in lines]
        dash_close = [t for t in texts if "DASH/BTC" in t and t.startswith("trade")]
        assert len(dash_close) == 1, dash_close  # seen live and recorded: once
        assert any(t.startswith("order") and "ETH/BTC" in t for t in texts[: len(history)])
        pane = app.screen.query_one(EventLogPane)
        assert f"{len(lines)} events" in str(pane.border_subtitle)


async def test_an_attached_viewer_reads_the_bots_audit_trail(tmp_path, events) -> None:
    """A viewer attached over the control socket learns the bot's audit trail from its hello
    and shows the record's earlier log lines and trades, as a local app does."""
    import tempfile

    from crot_tui.remote import RemoteHost
    from engine.runtime.control import ControlServer

    data = tmp_path / "data"
    db = write_audit(data / "paper", events)
    bot = EngineHost(fast_settings(f"DATA_DIR={data}\n"), mode="paper", runner=feed_runner(Recording((), None, 1)))
    server = ControlServer(Path(tempfile.mkdtemp(prefix="crot", dir="/tmp")) / "b.sock", bot, bot.bus)
    await server.start()
    try:
        viewer = RemoteHost(server.path, name="history")
        app = CrotApp(viewer, env_path=write_env(tmp_path / ".env", ""), show_summary=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await asyncio.wait_for(app.log_history_loaded.wait(), 20)
            await pilot.pause()
            assert viewer.audit_path == str(db.absolute())
            history = [x for x in app.state.log if x.seq < 0]
            assert any(x.text.startswith("trade") and "DASH/BTC" in x.text for x in history)
            await pilot.press("h")
            await asyncio.wait_for(app.screen.history_loaded.wait(), 10)
            assert [ep.symbol for ep in app.state.closed] == ["ADA/BTC", "DASH/BTC"]
    finally:
        await server.aclose()
