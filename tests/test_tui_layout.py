"""The dashboard at 80x24 (SSH + tmux), 120x40 and 160x48: every pane's key columns are fully on
screen, and a table wider than its pane says so ("→ more") (issue 14).

The check is geometric (where each key column ends against the width the table has) and textual
(the header labels, whole, in the rendered screen), on the synthetic feed of the snapshots."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from tui_kit import settle as settled
from crot_tui.app import CrotApp
from crot_tui.host import EngineHost
from crot_tui.screens.dashboard import PANES, DashboardScreen
from crot_tui.testing import FAST_ENV, fast_settings, feed_runner, synthetic_recording, write_env
from crot_tui.widgets.base import KeyedTable, Pane

SIZES = [(80, 24), (110, 32), (120, 40), (160, 48)]  # 110x32: one pane at a time too
TABLE_PANES = ["positions", "stops", "rejections", "regime", "premium"]


@pytest.fixture(scope="module")
def recording():
    return synthetic_recording()


def make_app(recording, tmp_path: Path) -> CrotApp:
    env = write_env(tmp_path / ".env", FAST_ENV)
    host = EngineHost(fast_settings(), mode="demo", runner=feed_runner(recording))
    return CrotApp(host, env_path=env, show_summary=False)




def screen_lines(app) -> list[str]:
    w, h = app.size
    console = Console(width=w, height=h, file=io.StringIO(), force_terminal=True, record=True,
                      legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text().splitlines()


def text_in(lines: list[str], region) -> list[str]:
    return [line[region.x:region.right] for line in lines[region.y:region.bottom]]


async def show(pilot, pid: str) -> Pane:
    key = str([p for p, _ in PANES].index(pid) + 1)
    await pilot.press(key)
    await pilot.pause()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, DashboardScreen)
    return screen.pane(pid)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_every_pane_shows_its_key_columns_whole(recording, tmp_path, size) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=size) as pilot:
        await settled(pilot)
        screen = app.screen
        assert screen.compact == (size[0] < 120)
        for pid in TABLE_PANES:
            pane = await show(pilot, pid)
            table = pane.query_one(KeyedTable)
            assert pane.KEY_COLUMNS, pid
            assert pane.display and pane.region.width > 0 and screen.region.contains_region(pane.region), pid
            visible = table.scrollable_content_region.width
            labels = {k.value: c.label.plain for k, c in table.columns.items()}
            for key in pane.KEY_COLUMNS:
                # the column's cells end within the table's visible width (its right padding may not)
                end = table.column_extent(key) - table.cell_padding
                assert end <= visible, (pid, key, end, visible)
            header = text_in(screen_lines(app), table.region)[0]
            for key in pane.KEY_COLUMNS:
                assert f" {labels[key]} " in f"{header} ", (pid, labels[key], header)
            # and the cells of the key columns too (e.g. 'NO STOP', 'BLOCKED ...' whole)
            body = "\n".join(text_in(screen_lines(app), table.region))
            if pid == "stops":
                assert "NO STOP" in body and "derived" in body
            if pid == "premium":
                assert "BLOCKED" in body


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_account_and_regime_figures_are_not_cut(recording, tmp_path, size) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=size) as pilot:
        await settled(pilot)
        pane = await show(pilot, "equity")
        text = "\n".join(text_in(screen_lines(app), pane.query_one("#equity-figures").region))
        for needle in ("equity     1,001.82 +0.18%", "margin use", "used 0.16", "free", "unrealized",
                       "fees 0.0361", "1 won"):
            assert needle in text, (needle, text)
        pane = await show(pilot, "regime")
        text = "\n".join(text_in(screen_lines(app), pane.query_one("#regime-now").region))
        assert "budget long x0.50 short x1.00  ladder x0.80" in text, text


async def test_compact_layout_gives_a_right_column_pane_the_whole_width(recording, tmp_path) -> None:
    """The side-by-side layout holds the right column at 46..64 cells; alone, a pane is as wide
    as the terminal."""
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        for pid in ("stops", "equity", "regime", "premium"):
            pane = await show(pilot, pid)
            assert pane.region.width == 80, (pid, pane.region)


async def test_a_wide_table_says_it_scrolls(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        pane = await show(pilot, "positions")
        table = pane.query_one(KeyedTable)
        assert table.virtual_size.width > table.scrollable_content_region.width  # 'mark' and 'age' are cut
        assert "→ more" in str(pane.border_title)
        assert "→ more" in screen_lines(app)[pane.region.y]
        table.scroll_to(x=table.max_scroll_x, animate=False)
        await pilot.pause()
        await pilot.pause()
        assert "← more" in str(pane.border_title) and "→" not in str(pane.border_title)
        assert " age " in screen_lines(app)[table.region.y] + " "
        # a table that fits says nothing
        pane = await show(pilot, "rejections")
        assert "more" not in str(pane.border_title)
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        for pid in TABLE_PANES:
            pane = app.screen.pane(pid)
            assert "more" not in str(pane.border_title), pid
