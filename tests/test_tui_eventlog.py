"""The event log pane: it keeps 5000 lines (not 500), `/` filters them as you type (words, -word,
kind:..., level:...), `w` cycles the minimum level, Esc clears; texts with brackets stay literal."""

from __future__ import annotations

import logging
from decimal import Decimal as D
from pathlib import Path

import pytest
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, RichLog

import crot_tui.app
from crot_tui.app import CrotApp
from crot_tui.logsink import LogLine
from crot_tui.state import UiState
from tui_kit import feed_app, settle
from crot_tui.testing import SYN_STEP, SYN_T0, Recording, synthetic_recording
from crot_tui.widgets.eventlog import MAX_LINES, EventLogPane, LogFilter
from engine.runtime import events as ev

SYMBOLS = ("ADA/BTC", "ETH/BTC", "LTC/BTC")


def busy_events(n: int, t0: int = SYN_T0 + 121 * SYN_STEP) -> list[ev.Event]:
    """`n` log lines: orders (info), stops, every 10th a rejected order (warning), every 50th an
    error with a bracketed text."""
    out: list[ev.Event] = []
    for i in range(n):
        sym = SYMBOLS[i % 3]
        ts = t0 + i * 1000
        if i % 50 == 49:
            out.append(ev.ErrorEvent(ts, "exchange", f"[htx] 1040 rate limit #{i}", "long"))
        elif i % 10 == 9:
            out.append(ev.OrderEvent(ts, "long", sym, "rejected", "entry", i, "buy", D("1.5"), D(1), False,
                                     "InsufficientMargin"))
        elif i % 2:
            out.append(ev.StopEvent(ts, "short", sym, "moved", D("1.6"), D(2), "trail"))
        else:
            out.append(ev.OrderEvent(ts, "long", sym, "placed", "entry", i, "buy", D("1.5"), D(1), False))
    return out


@pytest.fixture(scope="module")
def recording() -> Recording:
    base = synthetic_recording()
    return Recording(base.events + tuple(busy_events(1200)), base.summary, base.steps)


def make_app(recording: Recording, tmp_path: Path, cls: type[CrotApp] = CrotApp) -> CrotApp:
    return feed_app(recording, tmp_path, cls=cls)




def shown(app: CrotApp) -> list[str]:
    return [strip.text for strip in app.screen.query_one("#event-log", RichLog).lines]


def pane(app: CrotApp) -> EventLogPane:
    return app.screen.query_one(EventLogPane)


# -- the pure parts ---------------------------------------------------------------------------------
def line(text: str, kind: str = "order", level: int = logging.INFO) -> LogLine:
    return LogLine(1, level, kind, text)


def test_the_filter_syntax() -> None:
    f = LogFilter.parse("ETH  Placed")
    assert f.matches(line("order  long  ETH/BTC placed entry")) and not f.matches(line("order ETH/BTC cancelled"))
    f = LogFilter.parse("eth -cancelled")
    assert f.matches(line("ETH placed")) and not f.matches(line("ETH cancelled"))
    f = LogFilter.parse("kind:stop,trades")
    assert f.kinds == {"stop", "trade"}
    assert f.matches(line("x", "stop")) and f.matches(line("x", "trade")) and not f.matches(line("x", "order"))
    f = LogFilter.parse("level:warn")
    assert not f.matches(line("x")) and f.matches(line("x", level=logging.WARNING))
    assert f.matches(line("x", level=logging.ERROR))
    assert LogFilter.parse("[htx]").matches(line("error  exchange: [htx] 1040", "error", logging.ERROR))
    assert not LogFilter.parse("").active and LogFilter.parse("", logging.ERROR).active
    assert LogFilter.parse("eth kind:fill level:error").describe() == "eth kind:fill level:error"


def test_the_state_keeps_5000_lines_bounded() -> None:
    s = UiState()
    for e in busy_events(6000):
        s.feed(e)
    assert len(s.log) == 5000 == MAX_LINES
    assert s.log[0].seq == 1001 and s.log[-1].seq == 6000
    assert len(s.take_log()) == 5000  # the lines not yet shown are bounded too


# -- the pane ---------------------------------------------------------------------------------------
async def test_the_pane_keeps_more_than_500_lines(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        lines = shown(app)
        total = len(app.state.log)
        assert total > 1200 and len(lines) == total
        assert "[htx] 1040 rate limit #49" in lines[-1200 + 49]  # literal brackets
        assert pane(app).border_subtitle == f"{total} events"


async def test_slash_filters_as_you_type_and_esc_clears(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        total = len(app.state.log)
        await pilot.press("7", "slash")
        assert app.focused.id == "log-filter"
        await pilot.press(*"ltc")
        lines = shown(app)
        expected = [ln for ln in app.state.log if "ltc" in ln.text.lower()]
        assert len(lines) == len(expected) > 300 and all("LTC" in t for t in lines)
        assert pane(app).border_subtitle.startswith(f"{len(expected)} of {total} events")
        await pilot.press(*" -moved")
        assert shown(app) and all("LTC" in t and "moved" not in t for t in shown(app))
        await pilot.press("enter")  # back to the log, the filter stays
        assert app.focused.id == "event-log" and "LTC" in shown(app)[0]
        await pilot.press("slash", "escape")
        assert len(shown(app)) == total and app.focused.id == "event-log"
        assert pane(app).border_subtitle == f"{total} events"
        # new lines that match arrive while filtered; the others are counted, not shown
        await pilot.press("slash", *"kind:error")
        before = len(shown(app))
        for e in busy_events(100, SYN_T0 + 200 * SYN_STEP):
            app.host.bus.publish(e)
        app.drain_now()
        app.flush()
        await pilot.pause()
        assert len(shown(app)) == before + 2 and all("error" in t for t in shown(app))
        assert f"of {total + 100} events" in pane(app).border_subtitle


async def test_w_cycles_the_minimum_level(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("7", "w")
        warn = [ln for ln in app.state.log if ln.level >= logging.WARNING]
        assert len(shown(app)) == len(warn) and any("rejected entry" in t for t in shown(app))
        await pilot.press("w")
        errors = [ln for ln in app.state.log if ln.level >= logging.ERROR]
        assert len(shown(app)) == len(errors) and not any("rejected entry" in t for t in shown(app))
        assert "level:error" in pane(app).border_subtitle
        await pilot.press("w")
        assert len(shown(app)) == len(app.state.log)


async def test_the_palette_opens_the_log_filter(recording, tmp_path) -> None:
    app = make_app(recording, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        from crot_tui.commands import CrotCommands

        commands = {t: cb for t, cb, _ in CrotCommands(app.screen)._commands()}
        commands["Filter the event log"]()
        await pilot.pause()
        assert app.screen.active == "log" and app.focused.id == "log-filter"
        await pilot.press(*"[htx]")
        assert shown(app) and all("[htx]" in t for t in shown(app))


# -- snapshots: the pane alone (the dashboard's layout is covered by test_tui_snapshots.py) --------
class LogScreen(Screen):
    def compose(self) -> ComposeResult:
        yield EventLogPane(id="log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(EventLogPane).focus_main()


class LogOnlyApp(CrotApp):
    CSS_PATH = str(Path(crot_tui.app.__file__).with_name("app.tcss"))  # relative to this file otherwise

    def get_default_screen(self) -> Screen:
        return LogScreen()


SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def snap_app(recording, tmp_path, monkeypatch) -> CrotApp:
    pytest.importorskip("pytest_textual_snapshot")
    monkeypatch.chdir(tmp_path)
    return make_app(recording, tmp_path, LogOnlyApp)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_event_log_filtered(snap_compare, snap_app, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("slash", *"eth -moved")
        await pilot.pause()

    assert snap_compare(snap_app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_snapshot_event_log_errors_only(snap_compare, snap_app, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("w", "w")
        await pilot.pause()

    assert snap_compare(snap_app, terminal_size=size, run_before=run_before)
