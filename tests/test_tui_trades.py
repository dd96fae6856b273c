"""The closed-trades screen: every trade the app received, filtered as you type, sorted by any
column, Enter for a trade's detail; and the bounded trade history in `UiState` behind it.

The feed is the synthetic recording (one trade) plus three more trades with their orders, fills
and stop moves, one of them with a reason in brackets ("[htx] forced exit")."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from crot_tui.app import CrotApp
from crot_tui.screens.dashboard import DashboardScreen
from crot_tui.screens.detail import DetailScreen
from crot_tui.screens.trades import TradeFilter, TradesScreen, select_trades
from crot_tui.state import UiState
from tui_kit import feed_app, settle
from crot_tui.testing import SYN_STEP, SYN_T0, Recording, synthetic_recording
from engine.runtime import events as ev

T = SYN_T0 + 121 * SYN_STEP


def extra_trades() -> list[ev.Event]:
    """DASH long stopped out, DASH long won again, ZEC short force-closed."""
    out: list[ev.Event] = []
    # DASH/BTC long, stopped out
    out += [
        ev.OrderEvent(T, "long", "DASH/BTC", "placed", "entry", 501, "buy", D("0.0671"), D(3), False),
        ev.FillEvent(T + 1, "long", "DASH/BTC", "buy", D("0.0671"), D(3), D("0.0002"), "entry"),
        ev.StopEvent(T + 2, "long", "DASH/BTC", "placed", D("0.0660"), D(3), "protect"),
        ev.StopEvent(T + SYN_STEP, "long", "DASH/BTC", "moved", D("0.0664"), D(3), "trail"),
        ev.FillEvent(T + 2 * SYN_STEP, "long", "DASH/BTC", "sell", D("0.0664"), D(3), D("0.0002"), "stop"),
        ev.TradeClosed(T + 2 * SYN_STEP, "long", "DASH/BTC", "long", D("0.0671"), D("0.0664"), D(3),
                       D("-0.5000"), D("0.0004"), T + 1, "stop_loss"),
        # the clean-up after the close belongs to the closed trade
        ev.OrderEvent(T + 2 * SYN_STEP, "long", "DASH/BTC", "cancelled", "exit", 502, "sell", D("0.0690"), D(3),
                      True, "position closed"),
    ]
    # DASH/BTC long again, a winner
    t2 = T + 4 * SYN_STEP
    out += [
        ev.OrderEvent(t2, "long", "DASH/BTC", "placed", "entry", 601, "buy", D("0.0665"), D(3), False),
        ev.FillEvent(t2 + 1, "long", "DASH/BTC", "buy", D("0.0665"), D(3), D("0.0002"), "entry"),
        ev.FillEvent(t2 + 3 * SYN_STEP, "long", "DASH/BTC", "sell", D("0.0690"), D(3), D("0.0002"), "exit"),
        ev.TradeClosed(t2 + 3 * SYN_STEP, "long", "DASH/BTC", "long", D("0.0665"), D("0.0690"), D(3),
                       D("0.9000"), D("0.0004"), t2 + 1, "take_profit"),
    ]
    # ZEC/BTC short, force-closed with a bracketed reason
    t3 = T + 5 * SYN_STEP
    out += [
        ev.OrderEvent(t3, "short", "ZEC/BTC", "placed", "entry", 701, "sell", D("0.0452"), D(5), False),
        ev.FillEvent(t3 + 1, "short", "ZEC/BTC", "sell", D("0.0452"), D(5), D("0.0003"), "entry"),
        ev.StopEvent(t3 + 2, "short", "ZEC/BTC", "placed", D("0.0460"), D(5), "[htx] attached"),
        ev.FillEvent(t3 + 12 * SYN_STEP, "short", "ZEC/BTC", "buy", D("0.0450"), D(5), D("0.0003"), "close"),
        ev.TradeClosed(t3 + 12 * SYN_STEP, "short", "ZEC/BTC", "short", D("0.0452"), D("0.0450"), D(5),
                       D("0.2000"), D("0.0006"), t3 + 1, "[htx] forced exit"),
    ]
    return out


def trades_recording() -> Recording:
    base = synthetic_recording()
    return Recording(base.events + tuple(extra_trades()), base.summary, base.steps)


@pytest.fixture(scope="module")
def recording() -> Recording:
    return trades_recording()


def make_app(recording: Recording, tmp_path: Path) -> CrotApp:
    return feed_app(recording, tmp_path)




def row_keys(screen: TradesScreen) -> list[int]:
    table = screen.query_one("#trades-table")
    return [int(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


def by_seq(app: CrotApp) -> dict[int, ev.TradeClosed]:
    return {ep.seq: ep.trade for ep in app.state.closed}


# -- the state behind it ----------------------------------------------------------------------------
def test_state_keeps_each_trade_with_its_own_orders_fills_and_stops() -> None:
    s = UiState()
    for e in trades_recording().events:
        s.feed(e)
    assert [(ep.seq, ep.symbol, ep.trade.reason) for ep in s.closed] == [
        (1, "ADA/BTC", "exit ladder"), (2, "DASH/BTC", "stop_loss"), (3, "DASH/BTC", "take_profit"),
        (4, "ZEC/BTC", "[htx] forced exit")]
    first_dash = s.closed_trade(2)
    kinds = [(e.kind, getattr(e, "action", getattr(e, "purpose", ""))) for e in first_dash.events]
    assert kinds == [("order", "placed"), ("fill", "entry"), ("stop", "placed"), ("stop", "moved"),
                     ("fill", "stop"), ("trade", ""), ("order", "cancelled")]
    # the second DASH trade starts afresh: none of the first one's events
    assert [e.kind for e in s.closed_trade(3).events] == ["order", "fill", "fill", "trade"]
    # the entry's gate decision was captured at the entry order
    assert first_dash.decision is not None and first_dash.decision.symbol == "DASH/BTC"
    assert first_dash.decision.side == "long"
    # the open positions' histories are there too
    assert [e.kind for e in s.episode("long", "ETH/BTC").events][:3] == ["order", "order", "stop"]
    assert s.episode("long", "DASH/BTC") is None


def test_trade_history_is_bounded() -> None:
    s = UiState(trade_limit=3)
    for i in range(10):
        s.feed(ev.OrderEvent(i * 10, "long", f"C{i}/USDT", "placed", "entry", i, "buy", D(1), D(1), False))
        s.feed(ev.TradeClosed(i * 10 + 5, "long", f"C{i}/USDT", "long", D(1), D(2), D(1), D(1), D(0), i * 10, "x"))
    assert [ep.seq for ep in s.closed] == [8, 9, 10]
    assert s.trade_seq == 10 and s.trades == 10
    assert s.closed_trade(1) is None and s.closed_trade(10).symbol == "C9/USDT"
    s2 = UiState()
    s2.feed(ev.OrderEvent(0, "long", "X/USDT", "placed", "entry", 1, "buy", D(1), D(1), False))
    for i in range(1000):
        s2.feed(ev.StopEvent(i, "long", "X/USDT", "moved", D(1), D(1), "trail"))
    ep = s2.episode("long", "X/USDT")
    assert len(ep.events) == 400 and ep.dropped == 601


def test_filter_and_sort_helpers() -> None:
    s = UiState()
    for e in trades_recording().events:
        s.feed(e)
    closed = list(s.closed)
    seqs = lambda eps: [ep.seq for ep in eps]  # noqa: E731
    assert seqs(select_trades(closed, TradeFilter())) == [4, 3, 2, 1]  # newest close first
    assert seqs(select_trades(closed, TradeFilter.parse("dash"))) == [3, 2]
    assert seqs(select_trades(closed, TradeFilter.parse("dash -stop"))) == [3]
    assert seqs(select_trades(closed, TradeFilter.parse("LOSS"))) == [2]
    assert seqs(select_trades(closed, TradeFilter.parse("win short"))) == [4, 1]
    assert seqs(select_trades(closed, TradeFilter.parse("[htx]"))) == [4]
    assert seqs(select_trades(closed, TradeFilter(), "pnl", True)) == [1, 3, 4, 2]
    assert seqs(select_trades(closed, TradeFilter(), "pnl", False)) == [2, 4, 3, 1]
    assert seqs(select_trades(closed, TradeFilter(), "symbol", False)) == [1, 2, 3, 4]
    assert seqs(select_trades(closed, TradeFilter(), "held", True)) == [4, 3, 2, 1]


# -- the screen -------------------------------------------------------------------------------------
async def test_h_opens_the_trades_screen_with_every_closed_trade(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("h")
        screen = app.screen
        assert isinstance(screen, TradesScreen)
        assert row_keys(screen) == [4, 3, 2, 1]
        table = screen.query_one("#trades-table")
        cells = dict(zip([str(k.value) for k in table.columns], [c.plain for c in table.get_row_at(0)]))
        assert [cells[k] for k in ("symbol", "side", "entry", "exit", "pnl", "fees", "held", "profile")] == [
            "ZEC/BTC", "short", "0.045200", "0.045000", "+0.2000", "0.0006", "59m", "short"]
        assert cells["reason"] == "[htx] forced exit"  # literal brackets, not markup
        summary = screen.query_one("#trades-summary").render().plain
        assert "4 trades" in summary and "3 won" in summary and "+2.2820" in summary
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_filter_as_you_type_and_esc_clears(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("h", "slash")
        screen = app.screen
        assert screen.focused is screen.query_one("#trades-filter")
        await pilot.press(*"dash")
        assert row_keys(screen) == [3, 2]
        await pilot.press(*" -stop")  # typing "s" and "r" filters, it does not sort
        assert row_keys(screen) == [3]
        assert screen.sort == "closed"
        assert "1 of 4 trades" in screen.query_one("#trades-summary").render().plain
        await pilot.press("escape")
        assert row_keys(screen) == [4, 3, 2, 1]
        assert screen.focused is screen.query_one("#trades-table")


async def test_sort_keys_and_header_click(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("h")
        screen = app.screen
        while screen.sort != "pnl":
            await pilot.press("s")
        assert row_keys(screen) == [1, 3, 4, 2]  # best first
        await pilot.press("r")
        assert row_keys(screen) == [2, 4, 3, 1]
        assert "PnL ▲" in screen.query_one("#trades-table").columns["pnl"].label.plain
        await pilot.click("#trades-table", offset=(20, 0))  # the "symbol" header
        await pilot.pause()
        assert screen.sort == "symbol"
        assert row_keys(screen) == [1, 2, 3, 4]


async def test_new_trades_appear_while_the_screen_is_open(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("h")
        screen = app.screen
        app.host.bus.publish(ev.TradeClosed(T + 40 * SYN_STEP, "long", "LTC/BTC", "long", D("0.01641"),
                                            D("0.0170"), D(12), D("0.7"), D("0.0001"), SYN_T0, "exit ladder"))
        app.drain_now()
        app.flush()
        await pilot.pause()
        assert row_keys(screen) == [5, 4, 3, 2, 1]


async def test_enter_on_a_trade_opens_its_detail(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("h", "down", "down", "enter")  # newest first: 4, 3, [2]
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        assert (detail.profile, detail.symbol, detail.trade_seq) == ("long", "DASH/BTC", 2)
        timeline = detail.query_one("#detail-timeline")
        assert timeline.row_count == 7
        assert [timeline.get_row_at(i)[1].plain for i in range(7)] == [
            "order", "fill", "stop", "stop", "fill", "trade", "order"]
        await pilot.press("escape")
        assert isinstance(app.screen, TradesScreen)


async def test_command_palette_offers_the_trades_and_every_trade(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        from crot_tui.commands import CrotCommands

        commands = {t: cb for t, cb, _ in CrotCommands(app.screen)._commands()}
        assert "Trade detail #4: short ZEC/BTC" in commands
        assert "Position detail: long ETH/BTC" in commands
        commands["Closed trades (history)"]()
        await pilot.pause()
        assert isinstance(app.screen, TradesScreen)
        commands["Trade detail #4: short ZEC/BTC"]()
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen) and app.screen.trade_seq == 4


async def test_the_palette_closes_a_position_at_a_limit_it_asks_for(recording, tmp_path, monkeypatch) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        from crot_tui.commands import CrotCommands
        from crot_tui.screens.limit_close import LimitCloseScreen

        sent: list[tuple[str, str, str]] = []
        monkeypatch.setattr(app.host, "manual", lambda kind, symbol="", price="": sent.append(
            (kind, symbol, price)) or f"{kind} {symbol}")
        monkeypatch.setattr(app.host, "positions", lambda: [("long", "ETH/BTC")])  # (a recording: no engine)
        commands = {t: cb for t, cb, _ in CrotCommands(app.screen)._commands()}
        commands["Close long position ETH/BTC at a limit..."]()
        await pilot.pause()
        assert isinstance(app.screen, LimitCloseScreen)
        field = app.screen.query_one("#limit-price")
        assert field.value  # the last price, to edit
        field.value = "abc"
        await pilot.press("enter")
        assert isinstance(app.screen, LimitCloseScreen) and sent == []
        assert "expected a positive number" in str(app.screen.query_one("#limit-hint").render())
        field.value = "0.0612"
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, LimitCloseScreen)
        assert sent == [("close", "ETH/BTC", "0.0612")]  # a demo: no question first
        commands["Close long position ETH/BTC at a limit..."]()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert sent == [("close", "ETH/BTC", "0.0612")]  # cancelled: nothing sent
        commands["Withdraw the limit close of ETH/BTC"]()
        await pilot.pause()
        assert sent[-1] == ("cancel_close", "ETH/BTC", "")


# -- snapshots --------------------------------------------------------------------------------------
SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def snap_app(recording, tmp_path, monkeypatch) -> CrotApp:
    pytest.importorskip("pytest_textual_snapshot")
    monkeypatch.chdir(tmp_path)
    return make_app(recording, tmp_path)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_trades(snap_compare, snap_app, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("h")
        await pilot.pause()

    assert snap_compare(snap_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_trades_filtered(snap_compare, snap_app, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("h", "slash", *"htx")
        await pilot.pause()

    assert snap_compare(snap_app, terminal_size=size, run_before=run_before)
