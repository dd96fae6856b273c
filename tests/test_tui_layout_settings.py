"""The settings editor at 80x24 (issue 14): per-side overrides shown next to the shared value,
an inline error scrolled into view, and a save notice that clears."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crot_tui.app import CrotApp
from crot_tui.host import EngineHost
from crot_tui.screens import settings as settings_screen
from crot_tui.screens.settings import SettingsScreen
from crot_tui.testing import FAST_ENV, fast_settings, feed_runner, synthetic_recording, write_env


@pytest.fixture(scope="module")
def recording():
    return synthetic_recording()


async def open_settings(pilot, text: str) -> SettingsScreen:
    app = pilot.app
    await asyncio.wait_for(app.engine_done.wait(), 60)
    await pilot.pause()
    await pilot.press("e")
    screen = app.screen
    assert isinstance(screen, SettingsScreen)
    await screen.populated.wait()
    screen.query_one("#settings-search").value = text
    await pilot.pause(0.3)
    await screen.populated.wait()
    await pilot.pause()
    return screen


def make_app(recording, env: Path) -> CrotApp:
    host = EngineHost(fast_settings(), mode="demo", runner=feed_runner(recording))
    return CrotApp(host, env_path=env, show_summary=False)


def message(screen: SettingsScreen) -> str:
    return screen.query_one("#settings-message").content.plain


async def test_shared_view_lists_the_per_side_overrides_in_use(recording, tmp_path) -> None:
    env = write_env(tmp_path / ".env", FAST_ENV + "HARD_STOP_LOSS_PCT=0.015\nLONG_HARD_STOP_LOSS_PCT=0.02\n"
                    "SHORT_HARD_STOP_LOSS_PCT=0.01\nLONG_HARD_STOP_LOSS_ENABLED=false\n")
    app = make_app(recording, env)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, "hard_stop_loss")
        pct = screen.field("HARD_STOP_LOSS_PCT")
        over = pct.query_one("#overrides-HARD_STOP_LOSS_PCT")
        assert over.has_class("-visible") and over.display
        assert "long 0.02 / short 0.01" in over.content.plain
        enabled = screen.field("HARD_STOP_LOSS_ENABLED").query_one("#overrides-HARD_STOP_LOSS_ENABLED")
        assert "long false / short = shared" in enabled.content.plain
        # no override: nothing shown
        atr = screen.field("HARD_STOP_LOSS_ATR_MULTIPLIER").query_one("#overrides-HARD_STOP_LOSS_ATR_MULTIPLIER")
        assert not atr.has_class("-visible") and atr.content.plain == ""
        # an override edited in the LONG_ view (not saved yet) shows in the shared view
        await pilot.press("ctrl+o")
        await screen.populated.wait()
        await pilot.pause()
        screen.field("LONG_HARD_STOP_LOSS_ATR_MULTIPLIER").query_one("Input").value = "3"
        await pilot.pause()
        await pilot.press("ctrl+o", "ctrl+o")  # SHORT_, shared
        await screen.populated.wait()
        await pilot.pause()
        atr = screen.field("HARD_STOP_LOSS_ATR_MULTIPLIER").query_one("#overrides-HARD_STOP_LOSS_ATR_MULTIPLIER")
        assert "long 3 / short = shared" in atr.content.plain


async def test_an_error_is_scrolled_into_view(recording, tmp_path) -> None:
    env = write_env(tmp_path / ".env", FAST_ENV)
    app = make_app(recording, env)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, "stop_loss")
        box = screen.query_one("#settings-fields")
        key = screen._shown[-1]  # the last field: its error line is below the bottom edge
        inp = screen.query_one(f"#input-{key}")
        inp.focus()
        await pilot.pause()
        inp.value = "-5"
        await pilot.pause()
        await pilot.pause()
        err = screen.query_one(f"#error-{key}")
        assert err.has_class("-visible")
        assert err.region.height > 0 and box.scrollable_content_region.contains_region(err.region), \
            (err.region, box.scrollable_content_region)
        assert inp.region.height > 0 and box.scrollable_content_region.contains_region(inp.region)


async def test_the_save_notice_clears(recording, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(settings_screen, "NOTICE_S", 0.3)
    env = write_env(tmp_path / ".env", FAST_ENV)
    app = make_app(recording, env)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_settings(pilot, "hard_stop_loss_pct")
        hint = message(screen)
        assert hint.startswith("ctrl+s saves")
        inp = screen.query_one("#input-HARD_STOP_LOSS_PCT")
        inp.focus()
        inp.value = "0.015"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "saved 1 change(s)" in message(screen)
        for _ in range(50):  # it clears after NOTICE_S (a loaded machine may take longer to show it)
            await pilot.pause(0.1)
            if message(screen) == hint:
                break
        assert message(screen) == hint
        # a failed save stays until the next edit
        inp.value = "abc"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "not saved" in message(screen)
        await pilot.pause(0.6)
        assert "not saved" in message(screen)
        inp.value = "0.016"
        await pilot.pause()
        assert message(screen) == hint  # on the next edit
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "saved 1 change(s)" in message(screen)
        inp.value = "0.017"
        await pilot.pause()
        assert message(screen) == hint
