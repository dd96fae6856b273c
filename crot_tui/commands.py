"""Command palette (ctrl+p or /): every action, every coin, every pane and every theme."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider

from . import themes
from .screens.chart import open_chart
from .screens.dashboard import PANES
from .screens.detail import open_detail
from .screens.trades import open_trades


def _filter_log(app: Any) -> None:
    """Show the log pane and open its filter line."""
    app.show_pane("log")
    try:
        app.screen.query_one("#log").action_open_filter()
    except Exception:  # not on the dashboard (it would be the top screen after show_pane)
        pass


class CrotCommands(Provider):
    def _commands(self) -> Iterator[tuple[str, Callable[[], Any], str]]:
        app: Any = self.app
        host = app.host
        enabled, paused = host.flags()
        for side in ("long", "short"):
            state = "on" if enabled.get(side) else "off"
            yield (f"Toggle {side} profile (now {state})", partial(app.toggle_profile, side),
                   f"allow or stop new {side} entries; open positions stay managed")
        yield (("Resume new entries" if paused else "Pause new entries"), app.toggle_pause,
               "exits, stops and open positions keep running")
        for side, symbol in host.positions():
            yield (f"Close {side} position {symbol} at market", partial(app.manual, "close", symbol),
                   "reduce-only; its exits are cancelled first, the stop stays until it is gone")
            yield (f"Close {side} position {symbol} at a limit...", partial(app.close_at_limit, side, symbol),
                   "a reduce-only limit for the whole position in place of its exit ladder; the stop stays")
            yield (f"Withdraw the limit close of {symbol}", partial(app.manual, "cancel_close", symbol),
                   "its exit ladder returns")
        if host.positions():
            yield ("Flatten everything", partial(app.manual, "flatten"),
                   "close every position and cancel every entry order; pauses new entries")
        frozen = host.frozen()
        for symbol in sorted(app.state.symbols):
            yield (f"Cancel entry orders of {symbol}", partial(app.manual, "cancel_entries", symbol),
                   "its resting entry and averaging orders; positions and stops stay")
            if symbol in frozen:
                yield f"Unfreeze {symbol}", partial(app.manual, "unfreeze", symbol), "allow new entries again"
            else:
                yield (f"Freeze {symbol}", partial(app.manual, "freeze", symbol),
                       "no new entry or averaging on it; its position keeps stop and exits")
        yield ("Lift account protections", app.lift_protections,
               "end a drawdown lock, daily-loss halt or stop-loss-streak pause now")
        if getattr(host, "remote", False):
            yield ("Take the helm" if not host.steering else "This viewer steers the bot", app.take_helm,
                   "steer the attached bot (the viewer that steered only watches from now on)")
        yield "Settings editor", app.action_settings, "edit .env (validated, atomic save)"
        yield ("Closed trades (history)", partial(open_trades, app),
               "entry, exit, PnL, fees, time held, exit reason; filter, sort, Enter for the detail (key h)")
        for p in app.state.all_positions():
            yield (f"Position detail: {p.side} {p.symbol}", partial(open_detail, app, p.profile, p.symbol),
                   "its orders, fills, stop moves and the gate decision that opened it")
        for ep in list(app.state.closed)[-20:][::-1]:
            t = ep.trade
            yield (f"Trade detail #{ep.seq}: {t.side} {ep.symbol}",
                   partial(open_detail, app, ep.profile, ep.symbol, ep.seq),
                   f"closed PnL {t.pnl:+.4f}: its orders, fills, stop moves and entry decision")
        yield ("Filter the event log", partial(_filter_log, app),
               "show only the lines with some words, kinds (kind:order) or levels (level:warn)")
        yield "Help: keys and panes", app.action_help, "every binding and what each pane shows"
        for pid, label in PANES:
            yield f"Show pane: {label[2:]}", partial(app.show_pane, pid), f"key {label[0]}"
        for symbol in sorted(app.state.symbols):
            yield f"Inspect coin {symbol}", partial(app.inspect, symbol), "every gate, long and short"
            yield f"Price chart {symbol}", partial(open_chart, app, symbol), "closes, EMAs, fills, entry and stop"
        for name in themes.names():
            current = " (current)" if name == app.theme_name else ""
            yield f"Theme: {name}{current}", partial(app.apply_theme, name), "colours from themes/" + name + ".tcss"
        if host.mode == "demo":
            yield ("Resume demo playback" if host.playback_paused else "Pause demo playback"), \
                app.toggle_playback, "the replay of recorded candles"
            yield "Demo faster", partial(app.change_speed, 2.0), "double the candles per second"
            yield "Demo slower", partial(app.change_speed, 0.5), "halve the candles per second"
        if app.last_summary is not None:
            yield "Show demo summary", app.show_summary, "the replay's results"
        yield "Quit", app.action_quit, "stop the engine after its current cycle and exit"

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
