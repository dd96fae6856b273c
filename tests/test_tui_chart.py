"""The price chart (issue 14, "History and drill-down"): `c` on the dashboard, in the inspector or
in a position's detail draws the symbol's closes with the trigger EMAs, its fills marked and
each open position's entry and stop as lines, from the events the app received.

The feed is the synthetic recording (ETH/BTC long open with its stop moved to 0.09050, XMR/BTC
short open, ...); fills are published on top of it, at unaligned times inside the window."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from crot_tui.app import CrotApp
from crot_tui.screens.chart import ChartScreen, chart_data
from crot_tui.screens.detail import DetailScreen
from crot_tui.screens.inspector import InspectorScreen
from crot_tui.testing import SYN_STEP, SYN_T0, Recording, synthetic_recording
from engine.runtime import events as ev
from tui_kit import feed_app, publish, settle

BUY_TS = SYN_T0 + 61 * SYN_STEP + 37_113  # between two candles
SELL_TS = SYN_T0 + 100 * SYN_STEP + 211_009


@pytest.fixture(scope="module")
def recording() -> Recording:
    return synthetic_recording()


def fills() -> list[ev.Event]:
    return [ev.FillEvent(BUY_TS, "long", "ETH/BTC", "buy", D("0.09150"), D(4), D("0.0000011"), "entry"),
            ev.FillEvent(SELL_TS, "long", "ETH/BTC", "sell", D("0.09350"), D(2), D("0.0000011"), "exit"),
            ev.FillEvent(SYN_T0 - 3 * SYN_STEP, "long", "ETH/BTC", "buy", D("0.0900"), D(1), D(0), "entry")]


def legend(app: CrotApp) -> str:
    return app.screen.query_one("#chart-legend").render().plain


async def test_c_on_a_position_charts_its_closes_emas_fills_entry_and_stop(recording, tmp_path: Path) -> None:
    app = feed_app(recording, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await publish(pilot, *fills())
        assert app.focused.id == "positions-table"  # the first row: ETH/BTC long
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ChartScreen) and app.screen.symbol == "ETH/BTC"
        data = chart_data(app.state, "ETH/BTC")
        assert data["bars"] == len(data["close"]) == len(data["fast"]) == len(data["slow"]) > 100
        assert data["x"][-1] == 0.0 and data["x"][0] < 0
        assert min(data["close"]) < data["fast"][-1] < max(data["close"])  # EMAs drawn beside the price
        # the fills inside the window are marked where they happened; the older one is outside
        first = app.state.bars["ETH/BTC"][0][0]
        last = app.state.bars["ETH/BTC"][-1][0]
        assert data["buys"] == ([round((BUY_TS - last) / 3_600_000, 4)], [0.0915])
        assert data["sells"][1] == [0.0935] and BUY_TS > first
        # the open position's entry and its resting stop (moved to 0.09050) as lines
        names = dict(data["levels"])
        assert names["long stop"] == pytest.approx(0.0905)
        assert "long entry" in names
        assert "long stop 0.090500" in legend(app) and "1 buy" in legend(app) and "1 sell" in legend(app)
        plot = app.screen.query_one("#chart-plot").render().plain
        assert "close" in plot and "EMA fast" in plot and "^" in plot and "v" in plot
        await pilot.press("right_square_bracket")  # the next coin (sorted): LTC/BTC
        assert app.screen.symbol == "LTC/BTC"
        assert "0 buy" in legend(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, ChartScreen)


async def test_the_chart_follows_new_fills_live(recording, tmp_path: Path) -> None:
    app = feed_app(recording, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await pilot.pause()
        assert app.screen.symbol == "ETH/BTC" and "0 buy" in legend(app)
        await publish(pilot, fills()[0])
        await publish(pilot, ev.Positions(BUY_TS + 5, "long", app.state.positions["long"]))
        assert "1 buy" in legend(app)


async def test_c_in_the_inspector_and_in_the_detail_charts_that_symbol(recording, tmp_path: Path) -> None:
    app = feed_app(recording, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.inspect("ZEC/BTC")
        await pilot.pause()
        assert isinstance(app.screen, InspectorScreen)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ChartScreen) and app.screen.symbol == "ZEC/BTC"
        assert "no open position" in legend(app)
        await pilot.press("escape", "escape")
        await pilot.pause()
        await pilot.press("enter")  # the ETH/BTC long's detail
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ChartScreen) and app.screen.symbol == "ETH/BTC"


async def test_a_coin_without_closes_says_so(recording, tmp_path: Path) -> None:
    app = feed_app(recording, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.push_screen(ChartScreen("DOGE/USDT:USDT"))
        await pilot.pause()
        assert "no closes yet" in app.screen.query_one("#chart-plot").render().plain


# -- snapshots --------------------------------------------------------------------------------------
SIZES = [(80, 24), (160, 48)]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_price_chart(snap_compare, recording, tmp_path, monkeypatch, size) -> None:
    pytest.importorskip("pytest_textual_snapshot")
    monkeypatch.chdir(tmp_path)
    app = feed_app(recording, tmp_path)

    async def run_before(pilot) -> None:
        await settle(pilot)
        await publish(pilot, *fills())
        await pilot.press("c")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
