"""The CROT dashboard app: hosts the engine in a worker and forwards its events to the panes.

Two workers run beside the UI:
  * `engine`: `EngineHost.run()` (demo replay, paper or live); the engine never waits for the UI.
  * `drain`: reads a bounded bus queue (the bus drops the oldest events if the UI falls behind),
    folds bursts into `UiState` (latest positions per profile, latest decisions, ...) and, at
    most `refresh_hz` times per second, posts one message per changed pane.
Commands (toggle a profile, pause entries, quit) go through `EngineHost`; the UI never calls
the exchange. Attached to a bot in another process (`crot-tui --attach`) the host is a
`RemoteHost` (crot_tui/remote.py): the same app, its commands answered over the socket, and
quitting detaches the viewer without stopping the bot.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import time
from pathlib import Path
from typing import Any, Iterable

from rich.segment import Segments
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget

from . import themes
from .commands import CrotCommands
from .host import EngineHost, RunResult
from .messages import PANE_MESSAGES, EngineFinished, LogAppended, StateMessage
from .screens.confirm import ConfirmScreen
from .screens.dashboard import DashboardScreen
from .screens.help import HelpScreen
from .screens.inspector import InspectorScreen
from .screens.settings import SettingsScreen
from .screens.summary import SummaryScreen
from .state import PANES, UiState

REFRESH_HZ = 4.0
QUEUE_SIZE = 5000
STOP_TIMEOUT_S = {"demo": 5.0, "paper": 60.0, "live": 60.0}


class CrotApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "CROT"
    SUB_TITLE = "CryptoRoboTrading"
    COMMANDS = App.COMMANDS | {CrotCommands}
    COMMAND_PALETTE_DISPLAY = "^p"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, host: EngineHost | Any, *, env_path: Path | str = ".env", theme_name: str | None = None,
                 refresh_hz: float = REFRESH_HZ, show_summary: bool = True, start_engine: bool = True) -> None:
        super().__init__()
        self.host = host
        self.env_path = Path(env_path)
        self.state = UiState()
        self.state.mode = host.mode
        enabled, paused = host.flags()
        self.state.set_flags(enabled, paused)
        self.refresh_period = 1.0 / refresh_hz if refresh_hz > 0 else 0.0
        self.show_summary_at_end = show_summary
        self.start_engine = start_engine
        self.last_summary: Any = None
        self.tones: dict[str, str] = {}
        self.theme_name = ""
        self._listeners: dict[type[Message], list[Widget]] = {}
        self._queue: asyncio.Queue[Any] | None = None
        self._getter: asyncio.Future[Any] | None = None
        self._engine_done = asyncio.Event()
        self._quitting = False
        self._signals: list[int] = []
        self.log_history_loaded = asyncio.Event()  # set once the audit trail's earlier lines are in (or none)
        self._log_history_asked = False
        self.apply_theme(theme_name or themes.DEFAULT_THEME, initial=True)

    # -- screens ----------------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        return DashboardScreen()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for cmd in super().get_system_commands(screen):
            if cmd.title not in ("Theme", "Quit"):  # CROT themes and a safe quit are in CrotCommands
                yield cmd

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_settings(self) -> None:
        if not isinstance(self.screen, SettingsScreen):
            self.push_screen(SettingsScreen(self.env_path))

    def inspect(self, symbol: str) -> None:
        if isinstance(self.screen, InspectorScreen):
            self.screen.symbol = symbol
            self.screen.update_state(self.state)
            return
        self.push_screen(InspectorScreen(symbol))

    def show_pane(self, pid: str) -> None:
        while not isinstance(self.screen, DashboardScreen) and len(self.screen_stack) > 1:
            self.pop_screen()
        if isinstance(self.screen, DashboardScreen):
            self.screen.show_pane(pid)

    def show_summary(self) -> None:
        if self.last_summary is not None and not isinstance(self.screen, SummaryScreen):
            self.push_screen(SummaryScreen(self.last_summary))

    # -- themes -----------------------------------------------------------------------------
    def get_theme_variable_defaults(self) -> dict[str, str]:
        defaults = dict(super().get_theme_variable_defaults())
        defaults.update({"crot-long": "#5fafff", "crot-short": "#d787ff", "crot-muted": "#8a8a8a"})
        return defaults

    def apply_theme(self, name: str, *, initial: bool = False) -> None:
        try:
            tf = themes.load(name)
        except ValueError as exc:
            if initial:
                raise
            self.notify(str(exc), severity="error")
            return
        self.register_theme(tf.to_textual())
        self.stylesheet.add_source(tf.css, read_from=("crot-theme", ""), tie_breaker=100)
        changed = self.theme != tf.textual_name
        self.theme = tf.textual_name
        self.theme_name = name
        if not initial:
            if not changed:
                self.refresh_css(animate=False)
            self._update_colors()
            self.state.dirty |= set(PANES)
            self.flush()

    def action_next_theme(self) -> None:
        names = themes.names()
        i = names.index(self.theme_name) if self.theme_name in names else -1
        name = names[(i + 1) % len(names)]
        self.apply_theme(name)
        self.notify(f"theme: {name}", timeout=2)

    def _update_colors(self) -> None:
        v = self.get_css_variables()
        self.tones = {
            "profit": v.get("success", "green"), "loss": v.get("error", "red"), "warn": v.get("warning", "yellow"),
            "accent": v.get("accent", "cyan"), "muted": v.get("crot-muted", "grey50"),
            "long": v.get("crot-long", "blue"), "short": v.get("crot-short", "magenta"),
        }

    # -- lifecycle --------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._update_colors()
        self._queue = self.host.bus.queue(maxsize=QUEUE_SIZE)
        self.host.on_progress = self._on_progress
        if getattr(self.host, "remote", False):  # an attached viewer: the bot's notices and state
            self.host.on_notice = lambda text, severity: self.notify(text, severity=severity, timeout=6)
            self.host.on_state = self._after_command
        self.run_worker(self._drain(), name="drain", group="drain", exclusive=True)
        self._load_log_history()
        if self.start_engine:
            self.run_worker(self._run_engine(), name="engine", group="engine", exclusive=True,
                            exit_on_error=False)
        else:
            self._engine_done.set()
        if not self.is_headless:
            loop = asyncio.get_running_loop()
            for s in (signal.SIGTERM, signal.SIGHUP):
                try:
                    loop.add_signal_handler(s, lambda: self.call_later(self.shutdown))
                    self._signals.append(s)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass

    def _load_log_history(self) -> None:
        """A live or paper bot on this machine: the event log starts with the audit trail's
        last lines from before the app started (read in a thread; bounded by the log's size)."""
        from .screens.detail import audit_db

        if self._log_history_asked:
            return
        path = audit_db(self)
        if path is None:
            if not getattr(self.host, "remote", False) or getattr(self.host, "connected", False):
                self.log_history_loaded.set()  # nothing to read (an attached viewer asks again once connected)
            return
        self._log_history_asked = True
        started = int(time.time() * 1000)

        def load() -> None:
            from engine.store.audit_query import recent_events

            events: list[Any] = []
            try:
                events = recent_events(path, self.state.log_limit // 2, before_ms=started)
            finally:
                self.call_from_thread(self._log_history_done, events)

        self.run_worker(load, thread=True, name="log-history", exit_on_error=False)

    def _log_history_done(self, events: list[Any]) -> None:
        n = self.state.add_log_history(events)
        if n:
            from .widgets.eventlog import EventLogPane

            for pane in self.query(EventLogPane):
                pane.history_added(n)
        self.log_history_loaded.set()

    def on_unmount(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            for s in self._signals:
                loop.remove_signal_handler(s)
        except RuntimeError:
            pass
        if self._queue is not None:
            self.host.bus.unsubscribe_queue(self._queue)

    async def _run_engine(self) -> None:
        try:
            result = await self.host.run()
        finally:
            self._engine_done.set()
        self.drain_now()
        self.state.finished = _finished_text(result)
        self.state.dirty.add("status")
        self.flush()
        self.post_message(EngineFinished(result))

    def _on_progress(self, done: int, total: int, warming: bool) -> None:
        self.state.set_progress(done, total, warming)

    def on_engine_finished(self, message: EngineFinished) -> None:
        result: RunResult = message.result
        if self._quitting:
            return
        if result.error:
            self.notify(result.error, title="Engine stopped", severity="error", timeout=30)
        elif result.summary is not None:
            self.last_summary = result.summary
            if self.show_summary_at_end:
                self.show_summary()

    @property
    def engine_done(self) -> asyncio.Event:
        return self._engine_done

    # -- the drain: bus -> UiState -> pane messages -----------------------------------------
    async def _drain(self) -> None:
        q = self._queue
        assert q is not None
        loop = asyncio.get_running_loop()
        next_flush = loop.time()
        try:
            while True:
                if self._getter is None:  # one pending get, never cancelled: no event lost
                    self._getter = asyncio.ensure_future(q.get())
                timeout = max(0.0, next_flush - loop.time())
                await asyncio.wait({self._getter}, timeout=timeout)
                if self._take_getter():
                    n = 0
                    while n < 2000 and not q.empty():  # a burst: fold it, in chunks
                        self.state.feed(q.get_nowait())
                        n += 1
                if loop.time() >= next_flush:
                    self.flush()
                    next_flush = loop.time() + self.refresh_period
                await asyncio.sleep(0)
        finally:
            if self._getter is not None:
                self._getter.cancel()

    def _take_getter(self) -> bool:
        """Fold the event the pending get holds (it left the queue: it comes first)."""
        g = self._getter
        if g is None or not g.done():
            return False
        self._getter = None
        if not g.cancelled() and g.exception() is None:
            self.state.feed(g.result())
        return True

    def drain_now(self) -> None:
        """Fold every queued event now (the end of a run, tests)."""
        q = self._queue
        if q is None:
            return
        self._take_getter()
        while True:
            try:
                self.state.feed(q.get_nowait())
            except asyncio.QueueEmpty:
                return

    def listen(self, widget: Widget) -> None:
        for cls in getattr(widget, "LISTENS", ()):
            targets = self._listeners.setdefault(cls, [])
            if widget not in targets:
                targets.append(widget)

    def unlisten(self, widget: Widget) -> None:
        for targets in self._listeners.values():
            if widget in targets:
                targets.remove(widget)

    def flush(self) -> None:
        """Post one message per changed pane to its listeners (once per widget)."""
        dirty = self.state.take_dirty()
        notified: set[int] = set()
        for pane in PANES:
            if pane not in dirty or pane == "log":
                continue
            cls = PANE_MESSAGES[pane]
            for w in list(self._listeners.get(cls, ())):
                if id(w) in notified:
                    continue
                notified.add(id(w))
                w.post_message(cls(self.state))
        lines = self.state.take_log()
        if lines:
            for w in list(self._listeners.get(LogAppended, ())):
                w.post_message(LogAppended(self.state, lines))

    # -- commands ---------------------------------------------------------------------------
    def _after_command(self) -> None:
        if not self._log_history_asked:
            self._load_log_history()  # an attached viewer knows the bot's audit trail once connected
        enabled, paused = self.host.flags()
        self.state.set_flags(enabled, paused)
        self.flush()

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Toasts show their text literally ("[htx]" stays "[htx]"): engine messages are data."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def _command(self, call: Any, then: Any, *, idle: str = "the engine is not running (yet): nothing done") -> None:
        """Run one host command and hand its answer to `then`. An attached viewer's host
        answers with a coroutine (the bot's reply over the socket): awaited in a worker, and a
        refusal or a lost connection is shown, never swallowed."""
        try:
            result = call()
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        if not inspect.isawaitable(result):
            if result is None:
                self.notify(idle, severity="warning")
                return
            then(result)
            return

        async def wait() -> None:
            try:
                answer = await result
            except (ValueError, ConnectionError) as exc:  # CommandRefused, ControlUnavailable
                self.notify(str(exc), severity="error", timeout=6)
                return
            then(answer)

        self.run_worker(wait(), group="commands", exit_on_error=False)

    def toggle_profile(self, side: str) -> None:
        def then(on: bool) -> None:
            self._after_command()
            if on:
                self.notify(f"{side.upper()} profile ON: new {side} entries allowed", timeout=3)
            else:
                self.notify(f"{side.upper()} profile OFF: no new {side} entries; open positions, stops and "
                            "exits stay managed", severity="warning", timeout=4)

        self._command(lambda: self.host.toggle_profile(side), then,
                      idle="the engine is not running (yet): nothing to toggle")

    def toggle_pause(self) -> None:
        def then(paused: bool) -> None:
            self._after_command()
            if paused:
                self.notify("new entries PAUSED (both sides); exits and stops keep running", severity="warning",
                            timeout=4)
            else:
                self.notify("new entries resumed", timeout=3)

        self._command(self.host.toggle_pause, then, idle="the engine is not running (yet): nothing to pause")

    def manual(self, kind: str, symbol: str = "", price: str = "") -> None:
        """A manual action; in live mode it asks first (y/n). `price`: a close at this limit."""
        from engine.runtime.manual import ManualRequest, limit_price

        what = ManualRequest(kind, symbol, limit_price(price)).describe()  # type: ignore[arg-type]

        def then(done: str) -> None:
            self._after_command()
            self.notify(f"{done}: sent with the next step; stops stay until each position is gone", timeout=4)

        def go(yes: bool | None = True) -> None:
            if not yes:
                self.notify(f"not done: {what}", timeout=2)
                return
            self._command(lambda: self.host.manual(kind, symbol, price), then)

        if self.host.mode == "live" and kind not in ("freeze", "unfreeze"):
            from .screens.confirm import ConfirmScreen

            self.push_screen(ConfirmScreen(f"LIVE account: {what}?", yes="Do it", no="Cancel"), go)
        else:
            go(True)

    def close_at_limit(self, side: str, symbol: str) -> None:
        """Ask for a limit price, then close the position there (reduce-only, kept by the exit
        planner in place of the ladder; the stop stays)."""
        from .screens.limit_close import LimitCloseScreen

        view = next((p for p in self.state.all_positions() if p.symbol == symbol and p.profile == side), None)

        def then(price: str | None) -> None:
            if price:
                self.manual("close", symbol, price)
            else:
                self.notify(f"not done: close {symbol} at a limit", timeout=2)

        self.push_screen(LimitCloseScreen(side, symbol, view.contracts if view else None,
                                          view.mark_price if view else None), then)

    def lift_protections(self) -> None:
        def then(lifted: int) -> None:
            self.flush()
            self.notify(f"{lifted} account protection(s) lifted: new entries allowed again" if lifted
                        else "no account protection is in force", timeout=3)

        self._command(self.host.lift_protections, then, idle="the engine is not running (yet): nothing to lift")

    def take_helm(self) -> None:
        """An attached viewer takes the commands over from the one that steers."""
        take = getattr(self.host, "take_helm", None)
        if take is None:
            self.notify("this dashboard runs the engine itself: it always steers", timeout=3)
            return
        self._command(take, lambda _: self.notify("this viewer steers the bot now", timeout=3))

    def toggle_playback(self) -> None:
        if self.host.mode != "demo":
            self.notify("playback control is for the demo only", severity="warning")
            return

        def then(_: Any) -> None:
            self.state.dirty.add("status")
            self.flush()

        self._command(lambda: self.host.set_playback_paused(not self.host.playback_paused), then)

    def change_speed(self, factor: float) -> None:
        if self.host.mode != "demo":
            return
        speed = self.host.speed or 800.0
        speed = min(2000.0, max(1.0, speed * factor))

        def then(_: Any) -> None:
            self.state.dirty.add("status")
            self.flush()
            self.notify(f"demo speed: {speed:g} candles/s", timeout=2)

        self._command(lambda: self.host.set_speed(speed), then)

    # -- crashing ---------------------------------------------------------------------------
    def _fatal_error(self) -> None:
        """An unhandled exception: Textual's crash screen, minus local variables (they hold the
        raw `.env` text and the API secret) and with secrets redacted; the exit code stays 1."""
        import rich

        from .crash import safe_traceback

        self.bell()
        traceback = safe_traceback(width=None, suppress=[rich])
        self._exit_renderables.append(Segments(self.console.render(traceback, self.console.options)))
        self._close_messages_no_wait()

    # -- quitting ---------------------------------------------------------------------------
    async def action_quit(self) -> None:
        if getattr(self.host, "remote", False):  # a viewer: the bot goes on without it
            await self.shutdown()
            return
        if self.host.mode in ("live", "paper") and self.host.running:
            def answer(yes: bool | None) -> None:
                if yes:
                    self.call_later(self.shutdown)

            what = "real-money trading" if self.host.mode == "live" else "paper trading"
            self.push_screen(ConfirmScreen(f"Stop {what} and quit? The engine finishes its current cycle; "
                                           "stop-loss orders stay on the exchange.", yes="Stop and quit",
                                           no="Keep running"), answer)
            return
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop the engine after its current cycle, then exit."""
        if self._quitting:
            return
        self._quitting = True
        self.host.request_stop()
        if self.host.running:
            self.notify("stopping after the current cycle...", timeout=10)
            try:
                await asyncio.wait_for(self._engine_done.wait(), STOP_TIMEOUT_S.get(self.host.mode, 10.0))
            except asyncio.TimeoutError:
                pass
        self.exit(0)


def _finished_text(result: RunResult) -> str:
    if result.error:
        return "engine stopped: error"
    if result.stopped:
        return f"stopped after {result.steps} candles" if result.mode == "demo" else "stopped"
    if result.mode == "demo":
        return f"demo finished: {result.steps} candles"
    return "engine finished"


__all__ = ["CrotApp", "StateMessage"]
