"""Enter on a position (dashboard) or a trade (trades screen): the detail view with its orders,
fills, stop moves and the gate decision that opened it, from the events the app received.

The feed is the synthetic recording: ETH/BTC long open (entry, stop, exit order, stop moved to
breakeven), LTC/BTC long open without a stop, XMR/BTC short open, ADA/BTC short closed."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from crot_tui.app import CrotApp
from crot_tui.screens.dashboard import DashboardScreen
from crot_tui.screens.detail import DetailScreen
from crot_tui.screens.inspector import InspectorScreen
from tui_kit import feed_app, publish, settle
from crot_tui.testing import SYN_STEP, SYN_T0, Recording, synthetic_recording
from engine.runtime import events as ev

END = SYN_T0 + 120 * SYN_STEP


@pytest.fixture(scope="module")
def recording() -> Recording:
    return synthetic_recording()


def make_app(recording: Recording, tmp_path: Path) -> CrotApp:
    return feed_app(recording, tmp_path)




def timeline(screen: DetailScreen) -> list[list[str]]:
    t = screen.query_one("#detail-timeline")
    return [[c.plain for c in t.get_row_at(i)] for i in range(t.row_count)]


def title(screen: DetailScreen) -> str:
    return screen.query_one("#detail-title").render().plain


async def test_enter_on_a_position_opens_its_orders_fills_stops_and_entry_decision(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.focused.id == "positions-table"  # the first row: ETH/BTC long
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        assert (screen.profile, screen.symbol, screen.trade_seq) == ("long", "ETH/BTC", None)
        rows = timeline(screen)
        assert [(r[1], r[2], r[3]) for r in rows] == [
            ("order", "placed", "entry"), ("order", "placed", "stop"), ("stop", "placed", "stop"),
            ("order", "placed", "exit"), ("stop", "moved", "stop"), ("order", "placed", "stop"),
            ("order", "cancelled", "stop")]
        assert rows[4][5] == "0.090500" and rows[4][7] == "breakeven"
        head = title(screen)
        assert "open" in head and "long 4 @ 0.091050" in head and "stop 0.090500" in head
        decision = app.state.episode("long", "ETH/BTC").decision
        assert decision is not None and decision.symbol == "ETH/BTC" and decision.side == "long"
        assert "entry decision 2018-01-10 08:20" in screen.query_one("#detail-decision").render().plain
        await pilot.press("tab")
        gates = screen.query_one("#detail-gates")
        assert screen.focused is gates
        assert gates.keys == [g.name for g in decision.gates]
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_enter_elsewhere_keeps_its_meaning(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("3", "down", "enter")  # the gates pane: the coin inspector, as before
        assert isinstance(app.screen, InspectorScreen)
        await pilot.press("escape", "2", "enter")  # the stops pane: nothing opens
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("1", "down", "enter")  # the second position: LTC/BTC, no stop
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.symbol == "LTC/BTC"
        assert "stop NONE" in title(screen)
        assert [r[2] for r in timeline(screen)] == ["placed", "rejected", "missing", "stop re-placed next cycle"]


async def test_the_detail_follows_the_position_until_it_closes(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        screen = app.screen
        assert len(timeline(screen)) == 7
        await publish(pilot, ev.StopEvent(END, "long", "ETH/BTC", "moved", D("0.09100"), D(4), "[htx] trail"))
        rows = timeline(screen)
        assert len(rows) == 8 and rows[-1][7] == "[htx] trail"  # literal brackets
        long_left = tuple(p for p in app.state.positions["long"] if p.symbol != "ETH/BTC")
        await publish(pilot,
                      ev.FillEvent(END + SYN_STEP, "long", "ETH/BTC", "sell", D("0.09100"), D(4), D("0.0001"), "stop"),
                      ev.Positions(END + SYN_STEP, "long", long_left),
                      ev.TradeClosed(END + SYN_STEP, "long", "ETH/BTC", "long", D("0.09105"), D("0.09100"), D(4),
                                     D("-0.0003"), D("0.0002"), SYN_T0 + 41 * SYN_STEP, "stop_loss"))
        rows = timeline(screen)
        assert [r[1] for r in rows[-2:]] == ["fill", "trade"]
        head = title(screen)
        assert "closed trade #2" in head and "exit: stop_loss" in head and "-0.0003" in head
        assert app.state.closed_trade(2).symbol == "ETH/BTC"


async def test_a_position_opened_before_the_app_started(tmp_path) -> None:
    """A viewer that attaches late has no orders of it: the detail says so, it does not fail."""
    view = ev.PositionView("short", "XMR/BTC", "short", D(9), D("0.02874"), D("0.0285"), D("0.2565"), D("0.01"),
                           D("0.02931"), 0.02, "normal", 0, 1, False, SYN_T0)
    rec = Recording((ev.Positions(SYN_T0 + SYN_STEP, "short", (view,)),), None, 1)
    app = make_app(rec, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.symbol == "XMR/BTC" and screen.profile == "short"
        assert timeline(screen) == []
        assert "no order, fill or stop of it reached this view yet" in title(screen)
        assert "entry decision: not seen" in screen.query_one("#detail-decision").render().plain
        # the position's first event after that starts its history
        await publish(pilot, ev.StopEvent(SYN_T0 + 2 * SYN_STEP, "short", "XMR/BTC", "moved", D("0.0290"), D(9),
                                          "trail"))
        assert [r[2] for r in timeline(screen)] == ["moved"]


# -- snapshots --------------------------------------------------------------------------------------
SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def snap_app(recording, tmp_path, monkeypatch) -> CrotApp:
    pytest.importorskip("pytest_textual_snapshot")
    monkeypatch.chdir(tmp_path)
    return make_app(recording, tmp_path)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_position_detail(snap_compare, snap_app, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")  # ETH/BTC long
        await pilot.pause()

    assert snap_compare(snap_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_trade_detail_gates(snap_compare, snap_app, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("h", "enter", "tab")  # ADA/BTC short, its entry gates
        await pilot.pause()

    assert snap_compare(snap_app, terminal_size=size, run_before=run_before)
