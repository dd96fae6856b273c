"""The dashboard driven with Pilot: the demo engine in a worker, keys, toggles, screens, and the
settings editor writing `.env`."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from pathlib import Path

import pytest

from tui_kit import settle as kit_settle
from crot_tui.app import CrotApp
from crot_tui.host import EngineHost
from crot_tui.screens.dashboard import DashboardScreen
from crot_tui.screens.help import HelpScreen
from crot_tui.screens.inspector import InspectorScreen
from crot_tui.screens.settings import SettingsScreen
from crot_tui.testing import FAST_ENV, feed_runner, fast_settings, record_demo, write_env
from crot_tui.widgets import StatusBar
from crot_tui.widgets.base import KeyedTable

SIZES = [(80, 24), (120, 40)]


@pytest.fixture(scope="module")
def recording():
    return record_demo()


def status_text(app: CrotApp) -> str:
    return app.screen_stack[0].query_one(StatusBar).content.plain  # type: ignore[union-attr]


def table(app: CrotApp, wid: str) -> KeyedTable:
    return app.screen_stack[0].query_one(f"#{wid}", KeyedTable)


async def settle(pilot, app: CrotApp, timeout: float = 60.0) -> None:
    """Wait for the engine run to end and every pane to show the final state."""
    await kit_settle(pilot, timeout)


def recorded_app(recording, tmp_path: Path, **kw) -> CrotApp:
    """An app fed by the recorded events (`recording=None`: no engine at all)."""
    runner = feed_runner(recording) if recording is not None else None
    host = EngineHost(fast_settings(), mode="demo", runner=runner)
    if recording is None:
        kw["start_engine"] = False
    env = kw.pop("env", None) or write_env(tmp_path / ".env", FAST_ENV)
    return CrotApp(host, env_path=env, show_summary=kw.pop("show_summary", False), **kw)


# -- the real demo engine in a worker ---------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
async def test_demo_replay_runs_in_a_worker_and_fills_the_panes(size, tmp_path) -> None:
    host = EngineHost(fast_settings(), mode="demo", speed=0, max_steps=200)
    app = CrotApp(host, env_path=tmp_path / ".env", show_summary=True)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        assert host.result is not None and host.result.ok and host.result.steps == 200
        assert len(table(app, "rejections-table").keys) == 10  # every demo coin has a verdict
        assert len(table(app, "premium-table").keys) == 10
        assert app.state.trades >= 1 and app.state.log
        assert "demo finished: 200 candles" in status_text(app)
        assert app.screen.id == "summary"  # the demo's end shows the summary
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_profile_toggles_and_pause_reach_the_engine_while_it_runs(tmp_path) -> None:
    host = EngineHost(fast_settings(), mode="demo", speed=0, max_steps=2000)
    app = CrotApp(host, env_path=tmp_path / ".env", show_summary=False)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            if host.attached:
                break
            await pilot.pause(0.02)
        assert host.attached and host.running
        host.playback_paused = True  # hold the replay so the engine is alive for the keys
        await pilot.press("l")
        assert host.engine.flags.enabled == {"long": False, "short": True}
        await pilot.pause()
        assert "LONG  OFF" in status_text(app)
        await pilot.press("s")
        assert host.engine.flags.enabled == {"long": False, "short": False}
        await pilot.press("l")
        assert host.engine.flags.enabled["long"] is True
        await pilot.press("p")
        assert host.engine.flags.paused is True
        await pilot.pause()
        assert "entries PAUSED" in status_text(app)
        await pilot.press("p")
        assert host.engine.flags.paused is False
        await pilot.press("q")  # quit: stops the replay after its current candle
        await pilot.pause(0.2)
    assert host.result is not None and host.result.stopped and not host.result.error


# -- keys and screens on a recorded feed ------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
async def test_help_inspector_and_pane_keys(size, recording, tmp_path) -> None:
    app = recorded_app(recording, tmp_path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        assert dash.compact == (size == (80, 24))
        await pilot.press("2")
        assert dash.active == "stops"
        await pilot.press("tab")
        assert dash.active == "rejections"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is dash
        await pilot.press("3", "down", "enter")
        assert isinstance(app.screen, InspectorScreen)
        assert app.screen.symbol == "BCH/USDT:USDT"  # the demo's second coin (AVAX, BCH, BTC, ...)
        gates = app.screen.query_one("#gates-long", KeyedTable)
        decision = app.state.decision("BCH/USDT:USDT", "long")
        assert gates.keys == [g.name for g in decision.gates]  # every gate, in evaluation order
        await pilot.press("right_square_bracket")
        assert app.screen.symbol == "BTC/USDT:USDT"
        await pilot.press("escape")
        assert app.screen is dash


async def test_rows_are_updated_in_place_not_rebuilt(recording, tmp_path) -> None:
    app = recorded_app(recording, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        t = table(app, "rejections-table")
        before = {k: t.get_row_index(k) for k in t.keys}
        added = []
        t.add_row = lambda *a, **k: added.append(a)  # type: ignore[method-assign]
        app.state.dirty.add("rejections")
        app.flush()
        await pilot.pause()
        assert added == []  # same symbols: cells updated, no row re-added
        assert {k: t.get_row_index(k) for k in t.keys} == before


async def test_command_palette_lists_coins_and_themes(recording, tmp_path) -> None:
    app = recorded_app(recording, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        from crot_tui.commands import CrotCommands

        provider = CrotCommands(app.screen)
        titles = [t for t, _, _ in provider._commands()]
        assert "Inspect coin ETH/USDT:USDT" in titles
        assert any(t.startswith("Theme: light") for t in titles)
        assert any(t.startswith("Toggle long profile") for t in titles)
        app.apply_theme("light")
        await pilot.pause()
        assert app.theme == "crot-light" and app.theme_name == "light"


# -- settings editor --------------------------------------------------------------------------
async def _open_settings(pilot, app: CrotApp) -> SettingsScreen:
    await pilot.press("e")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, SettingsScreen)
    await screen.populated.wait()
    return screen


async def _search(pilot, screen: SettingsScreen, text: str) -> None:
    await pilot.press("slash")
    await pilot.press(*text[:3])  # typed (debounced) ...
    screen.query_one("#settings-search").value = text  # ... and the rest at once, to keep tests fast
    await pilot.pause(0.3)
    await screen.populated.wait()
    await pilot.pause()


async def test_settings_editor_inline_error_then_save_writes_env(tmp_path) -> None:
    env = write_env(tmp_path / ".env", "# my settings\n" + FAST_ENV + "HARD_STOP_LOSS_PCT=0.02  # keep\n")
    app = recorded_app(None, tmp_path, env=env)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_settings(pilot, app)
        await _search(pilot, screen, "hard_stop_loss_pct")
        field = screen.field("HARD_STOP_LOSS_PCT")
        assert field is not None
        inp = field.query_one("#input-HARD_STOP_LOSS_PCT")
        inp.focus()
        inp.value = "abc"
        await pilot.pause()
        error = field.query_one("#error-HARD_STOP_LOSS_PCT")
        assert error.has_class("-visible") and "not valid" in error.content.plain
        await pilot.press("ctrl+s")
        assert "abc" not in env.read_text()  # nothing written while a value is invalid
        inp.value = "0.015"
        await pilot.pause()
        assert not error.has_class("-visible")
        await pilot.press("ctrl+s")
        await pilot.pause()
        text = env.read_text()
        assert re.search(r"^HARD_STOP_LOSS_PCT=0\.015\s+# keep$", text, re.MULTILINE)
        assert text.startswith("# my settings\n" + FAST_ENV)  # everything else untouched
        assert stat.S_IMODE(os.stat(env).st_mode) == 0o600
        message = screen.query_one("#settings-message").content.plain
        assert "saved 1 change(s)" in message and "restart the bot to apply" in message


async def test_settings_editor_warns_loudly_about_a_risky_fraction_it_saved(tmp_path) -> None:
    """Issue 18: a 12% stop is legal but rarely meant (a percentage typed as a fraction)."""
    env = write_env(tmp_path / ".env", FAST_ENV)
    app = recorded_app(None, tmp_path, env=env)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_settings(pilot, app)
        await _search(pilot, screen, "hard_stop_loss_min_emergency_pct")
        screen.field("HARD_STOP_LOSS_MIN_EMERGENCY_PCT").query_one("Input").value = "0.2"
        await _search(pilot, screen, "hard_stop_loss_atr_max_pct")
        screen.field("HARD_STOP_LOSS_ATR_MAX_PCT").query_one("Input").value = "0.12"
        await _search(pilot, screen, "hard_stop_loss_pct")
        inp = screen.field("HARD_STOP_LOSS_PCT").query_one("#input-HARD_STOP_LOSS_PCT")
        inp.focus()
        inp.value = "0.12"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "HARD_STOP_LOSS_PCT=0.12" in env.read_text()
        message = screen.query_one("#settings-message").content.plain
        assert "saved 3 change(s)" in message
        assert "DANGER: HARD_STOP_LOSS_PCT=0.12 is 12%" in message and "fraction" in message


async def test_settings_editor_per_side_override_and_reset(tmp_path) -> None:
    env = write_env(tmp_path / ".env", FAST_ENV + "SHORT_EMA_POSITION_BUDGET_FRACTION=0.01\n")
    app = recorded_app(None, tmp_path, env=env)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_settings(pilot, app)
        await pilot.press("ctrl+o")  # LONG_
        await screen.populated.wait()
        await _search(pilot, screen, "ema_position_budget_fraction")
        long_field = screen.field("LONG_EMA_POSITION_BUDGET_FRACTION")
        assert long_field is not None
        long_field.query_one("Input").value = "0.015"
        await pilot.pause()
        await pilot.press("ctrl+o")  # SHORT_
        await pilot.pause()
        await screen.populated.wait()
        short_field = screen.field("SHORT_EMA_POSITION_BUDGET_FRACTION")
        assert short_field is not None and short_field.query_one("Input").value == "0.01"
        short_field.query_one("Input").focus()
        await pilot.press("ctrl+r")  # back to the shared value when saved
        await pilot.press("ctrl+s")
        await pilot.pause()
        text = env.read_text()
        assert "LONG_EMA_POSITION_BUDGET_FRACTION=0.015\n" in text
        assert "SHORT_EMA_POSITION_BUDGET_FRACTION" not in text


async def test_settings_editor_save_errors_come_from_the_whole_file(tmp_path) -> None:
    env = write_env(tmp_path / ".env", FAST_ENV)
    app = recorded_app(None, tmp_path, env=env)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_settings(pilot, app)
        await _search(pilot, screen, "ema_macro_fast_minutes")
        field = screen.field("EMA_MACRO_FAST_MINUTES")
        field.query_one("Input").value = "99999"  # valid alone, but must stay below the slow EMA
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert env.read_text() == FAST_ENV  # nothing written
        message = screen.query_one("#settings-message").content.plain
        assert "not saved" in message and "line" in message


async def test_secrets_are_never_shown(tmp_path) -> None:
    secret = "Sup3rSecretApiKeyValue"
    env = write_env(tmp_path / ".env", FAST_ENV + f"HTX_API_KEY={secret}\n")
    app = recorded_app(None, tmp_path, env=env)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_settings(pilot, app)
        await _search(pilot, screen, "htx_api_key")
        field = screen.field("HTX_API_KEY")
        inp = field.query_one("Input")
        assert inp.password and inp.value == ""  # never pre-filled
        assert "***" in inp.placeholder
        svg = app.export_screenshot()
        assert secret not in svg
        assert "***" in field.query_one(f"#status-HTX_API_KEY").content.plain
        # a new secret is typed masked and saved; the old one is replaced
        inp.focus()
        await pilot.press(*"NewSecretValue987")  # typed, masked
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "HTX_API_KEY=NewSecretValue987" in env.read_text()
        assert "NewSecretValue987" not in app.export_screenshot()


async def test_leaving_settings_with_unsaved_changes_asks(tmp_path) -> None:
    env = write_env(tmp_path / ".env", FAST_ENV)
    app = recorded_app(None, tmp_path, env=env)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_settings(pilot, app)
        await _search(pilot, screen, "hard_stop_loss_pct")
        screen.field("HARD_STOP_LOSS_PCT").query_one("Input").value = "0.01"
        await pilot.pause()
        screen.query_one("#settings-groups").focus()
        await pilot.press("escape")
        assert app.screen.has_class("confirm")
        await pilot.press("n")
        assert app.screen is screen
        await pilot.press("escape", "y")
        assert isinstance(app.screen, DashboardScreen)
        assert env.read_text() == FAST_ENV
