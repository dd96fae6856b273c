"""Snapshots of every screen (dashboard, inspector, settings, help, summary, confirm) at 80x24
(SSH + tmux) and 160x48, the dashboard at 120x40 too, and each dashboard pane alone at 80x24
(pytest-textual-snapshot). tests/test_tui_layout.py checks the same layouts for cut columns.

The feed is `crot_tui.testing.synthetic_recording()`: a fixed, hand-built stream of real event
types (positions, stops, a missing stop, gates, a regime change, a blocked premium, a trade), so
a snapshot changes only when the UI (or the shape of the events) does, never with timing or with
the strategy; the views show engine time, never the wall clock. (The Pilot tests in
test_tui_app.py run the real replay.)
Update after an intended change with: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytest_textual_snapshot")

from tui_kit import settle as settled
from crot_tui.app import CrotApp  # noqa: E402
from crot_tui.host import EngineHost  # noqa: E402
from crot_tui.screens.confirm import ConfirmScreen  # noqa: E402
from crot_tui.testing import FAST_ENV, fast_settings, feed_runner, synthetic_recording, write_env  # noqa: E402

SIZES = [(80, 24), (160, 48)]
SIZE_IDS = ["80x24", "160x48"]
DASHBOARD_SIZES = [(80, 24), (120, 40), (160, 48)]
DASHBOARD_IDS = ["80x24", "120x40", "160x48"]


@pytest.fixture(scope="module")
def recording():
    return synthetic_recording()


@pytest.fixture
def app(recording, tmp_path, monkeypatch) -> CrotApp:
    monkeypatch.chdir(tmp_path)  # the settings screen shows the path: keep it ".env"
    write_env(Path(".env"), FAST_ENV + "HARD_STOP_LOSS_PCT=0.015\nHTX_API_KEY=NeverShowThisKey42\n")
    host = EngineHost(fast_settings(), mode="demo", runner=feed_runner(recording))
    return CrotApp(host, env_path=Path(".env"), show_summary=False)




@pytest.mark.parametrize("size", DASHBOARD_SIZES, ids=DASHBOARD_IDS)
def test_dashboard(snap_compare, app, size) -> None:
    assert snap_compare(app, terminal_size=size, run_before=settled)


@pytest.mark.parametrize("key", ["2", "4", "5", "6", "7"], ids=["stops", "account", "regime", "premium", "log"])
def test_dashboard_pane_80x24(snap_compare, app, key) -> None:
    """At 80x24 the dashboard shows one pane at a time, across the whole width."""
    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press(key)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_dashboard_positions_scrolled_80x24(snap_compare, app) -> None:
    """A table wider than its pane says so in its title: '→ more', then '← more' at the end."""
    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press("1", *["right"] * 12)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", DASHBOARD_SIZES, ids=DASHBOARD_IDS)
def test_dashboard_gates_pane(snap_compare, app, size) -> None:
    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press("3")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_inspector(snap_compare, app, size) -> None:
    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press("3", "down", "down", "enter")  # ETH/BTC
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_settings(snap_compare, app, size) -> None:
    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press("e")
        await pilot.app.screen.populated.wait()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def _settings_search(pilot, text: str):
    await settled(pilot)
    await pilot.press("e")
    screen = pilot.app.screen
    await screen.populated.wait()
    screen.query_one("#settings-search").value = text
    await pilot.pause(0.3)
    await screen.populated.wait()
    return screen


def test_settings_inline_error(snap_compare, app) -> None:
    async def run_before(pilot) -> None:
        screen = await _settings_search(pilot, "hard_stop_loss_pct")
        screen.query_one("#input-HARD_STOP_LOSS_PCT").value = "-1"
        await pilot.pause()
        screen.query_one("#settings-groups").focus()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_settings_secrets_masked(snap_compare, app) -> None:
    async def run_before(pilot) -> None:
        screen = await _settings_search(pilot, "htx_api")
        screen.query_one("#settings-groups").focus()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_no_snapshot_shows_a_secret() -> None:
    folder = Path(__file__).parent / "__snapshots__" / "test_tui_snapshots"
    for svg in folder.glob("*.svg"):
        assert "NeverShowThisKey42" not in svg.read_text(), svg.name


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_help(snap_compare, app, size) -> None:
    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press("question_mark")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_demo_summary(snap_compare, recording, tmp_path, monkeypatch, size) -> None:
    monkeypatch.chdir(tmp_path)
    host = EngineHost(fast_settings(), mode="demo", runner=feed_runner(recording))
    app = CrotApp(host, env_path=Path(".env"), show_summary=True)
    assert snap_compare(app, terminal_size=size, run_before=settled)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_confirm(snap_compare, app, size) -> None:
    """The question a live bot asks before it quits (pushed directly: the demo never asks)."""
    async def run_before(pilot) -> None:
        await settled(pilot)
        pilot.app.push_screen(ConfirmScreen("Stop real-money trading and quit? The engine finishes its current "
                                            "cycle; stop-loss orders stay on the exchange.", yes="Stop and quit",
                                            no="Keep running"))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_limit_close(snap_compare, app, size) -> None:
    """The price a manual close at a limit asks for (the command palette's "at a limit...")."""
    async def run_before(pilot) -> None:
        from decimal import Decimal

        from crot_tui.screens.limit_close import LimitCloseScreen

        await settled(pilot)
        pilot.app.push_screen(LimitCloseScreen("long", "ETH/USDT:USDT", Decimal(12), Decimal("3412.55")))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_settings_drop_unsaved_confirm(snap_compare, app) -> None:
    async def run_before(pilot) -> None:
        screen = await _settings_search(pilot, "hard_stop_loss_pct")
        screen.query_one("#input-HARD_STOP_LOSS_PCT").value = "0.03"
        await pilot.pause()
        screen.query_one("#settings-groups").focus()
        await pilot.press("escape")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_settings_overrides_in_use(snap_compare, recording, tmp_path, monkeypatch) -> None:
    """The shared view lists the LONG_/SHORT_ overrides of a per-side setting."""
    monkeypatch.chdir(tmp_path)
    write_env(Path(".env"), FAST_ENV + "HARD_STOP_LOSS_PCT=0.015\nLONG_HARD_STOP_LOSS_PCT=0.02\n"
              "SHORT_HARD_STOP_LOSS_PCT=0.01\n")
    host = EngineHost(fast_settings(), mode="demo", runner=feed_runner(recording))
    app = CrotApp(host, env_path=Path(".env"), show_summary=False)

    async def run_before(pilot) -> None:
        screen = await _settings_search(pilot, "hard_stop_loss_pct")
        screen.query_one("#settings-groups").focus()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
