"""`crot-tui --attach`: the dashboard on a bot that runs in another process.

`RemoteHost` stands in for `EngineHost`: the app reads events from `host.bus` (rebuilt from
the control socket, engine/runtime/control.py) and sends its commands through the same
methods, which here are coroutines that return the bot's answer or raise its refusal. A
command is never queued behind the operator's back: when the viewer is not connected it is
refused at once with a message. Quitting the viewer only closes the connection; the bot goes
on. When the connection drops (the bot restarts under its watchdog) the viewer says so and
reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Callable

from engine.runtime import events as ev
from engine.runtime.control_client import CommandRefused, ControlClient, ControlUnavailable
from engine.runtime.events import EventBus
from engine.runtime.wire import WireError

from .host import RunResult

log = logging.getLogger("crot.tui")

RECONNECT_S = (0.5, 1.0, 2.0, 5.0)


class RemoteHost:
    remote = True

    def __init__(self, path: str | Path, *, steer: bool = True, name: str = "",
                 reconnect: bool = True) -> None:
        self.path = Path(path)
        self.want_steer = steer
        self.name = name
        self.reconnect = reconnect
        self.bus = EventBus()
        self.mode = "live"
        self.speed = 0.0
        self.playback_paused = False
        self.running = False
        self.result: RunResult | None = None
        self.on_progress: Callable[[int, int, bool], None] | None = None
        self.on_notice: Callable[[str, str], None] | None = None  # (message, severity)
        self.on_state: Callable[[], None] | None = None  # flags or steering changed
        self.symbols: list[str] = []
        self.audit_path = ""  # the bot's audit SQLite (from its hello), for the history views
        self.steering = False
        self.steerer = ""
        self.connected = False
        self.bot_pid = 0
        self._enabled = {"long": True, "short": True}
        self._paused = False
        self._frozen: set[str] = set()
        self._positions: list[tuple[str, str]] = []
        self._client: ControlClient | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False

    # -- what the app reads -----------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return self.connected

    def flags(self) -> tuple[dict[str, bool], bool]:
        return dict(self._enabled), self._paused

    def positions(self) -> list[tuple[str, str]]:
        return list(self._positions)

    def frozen(self) -> set[str]:
        return set(self._frozen)

    def describe(self) -> str:
        role = "steering" if self.steering else (f"watching ({self.steerer} steers)" if self.steerer
                                                 else "watching")
        return f"attached to {self.mode} bot pid {self.bot_pid} at {self.path}, {role}"

    # -- commands (coroutines: the bot's answer, or its refusal raised) ---------------------
    async def _cmd(self, name: str, **args: Any) -> Any:
        client = self._client
        if client is None or not client.connected:
            raise ControlUnavailable(f"not connected to the bot at {self.path}: nothing sent")
        return await client.request(name, **args)

    async def toggle_profile(self, side: str) -> bool:
        on = bool(await self._cmd("toggle_profile", side=side))
        self._enabled[side] = on
        return on

    async def pause_entries(self, paused: bool) -> bool:
        self._paused = bool(await self._cmd("pause_entries", paused=paused))
        return self._paused

    async def toggle_pause(self) -> bool:
        self._paused = bool(await self._cmd("toggle_pause"))
        return self._paused

    async def manual(self, kind: str, symbol: str = "", price: str = "") -> str:
        return str(await self._cmd("manual", kind=kind, symbol=symbol, price=price))

    async def lift_protections(self) -> int:
        return int(await self._cmd("lift_protections"))

    async def set_speed(self, speed: float) -> float:
        self.speed = float(await self._cmd("set_speed", speed=speed))
        return self.speed

    async def set_playback_paused(self, paused: bool) -> bool:
        self.playback_paused = bool(await self._cmd("set_playback_paused", paused=paused))
        return self.playback_paused

    async def take_helm(self) -> bool:
        return bool(await self._cmd("steer", force=True))

    def request_stop(self) -> None:
        """Detach: the viewer closes its connection; the bot keeps running."""
        self._stop_requested = True
        if self._stop is not None:
            self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    # -- running ----------------------------------------------------------------------------
    async def run(self) -> RunResult:
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        self.running = True
        attempt = 0
        try:
            while not self._stop_requested:
                client = ControlClient(self.path, steer=self.want_steer, name=self.name)
                try:
                    hello = await client.connect()
                except ControlUnavailable as exc:
                    if not self.reconnect:
                        self.result = RunResult(self.mode, error=str(exc))
                        return self.result
                    if attempt == 0 or attempt % 20 == 0:
                        self._notice(f"{exc}; retrying", "warning")
                    await self._wait(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
                    attempt += 1
                    continue
                attempt = 0
                self._client = client
                self._welcome(hello)
                reason = await self._pump(client)
                self.connected = False
                self._client = None
                await client.aclose()
                if self._stop_requested:
                    break
                if not self.reconnect:
                    self.result = RunResult(self.mode, stopped=True, error="" if "stopped" in reason
                                            or "finished" in reason else reason)
                    return self.result
                self._notice(f"the bot at {self.path}: {reason}; waiting for it to come back (q quits "
                             "the viewer)", "warning")
                self._publish_status(f"detached: {reason}")
        finally:
            self.running = False
            self.connected = False
            if self._client is not None:
                await self._client.aclose()
                self._client = None
        self.result = RunResult(self.mode, stopped=True)
        return self.result

    async def _wait(self, seconds: float) -> None:
        assert self._stop is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def _welcome(self, hello: dict[str, Any]) -> None:
        self.connected = True
        self.mode = str(hello.get("mode") or self.mode)
        self.bot_pid = int(hello.get("pid") or 0)
        self.symbols = [str(s) for s in hello.get("symbols", ())]
        self.audit_path = str(hello.get("audit") or "")  # the bot's audit trail, for the history views
        self.steering = bool(hello.get("steer"))
        self._apply_state(hello)
        self._publish_status(self.describe())
        if self.on_state is not None:
            self.on_state()
        if self.want_steer and not self.steering:
            self._notice("another viewer steers this bot: this one only watches (palette: Take the helm)",
                         "warning")

    async def _pump(self, client: ControlClient) -> str:
        """Feed the bot's messages to the local bus until the connection ends; its reason."""
        assert self._stop is not None
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                nxt = asyncio.ensure_future(client.next_message())
                done, _ = await asyncio.wait({nxt, stop}, return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:
                    nxt.cancel()
                    return "detached"
                msg = nxt.result()
                if msg is None:
                    return client.closed_reason or "connection lost"
                self._on_message(msg)
        finally:
            stop.cancel()

    def _on_message(self, msg: dict[str, Any]) -> None:
        t = msg.get("t")
        if t == "event":
            try:
                e = ControlClient.event_of(msg)
            except (WireError, KeyError) as exc:
                log.debug("bad event from the bot: %s", exc)
                return
            if isinstance(e, ev.EngineStatus):
                self._enabled = {s: s in e.enabled for s in ("long", "short")}
                self._paused = bool(e.paused)
            elif isinstance(e, ev.Positions):
                others = [p for p in self._positions if p[0] != e.profile]
                self._positions = sorted(others + [(e.profile, p.symbol) for p in e.positions])
            self.bus.publish(e)
        elif t == "progress":
            if self.on_progress is not None:
                self.on_progress(int(msg.get("done", 0)), int(msg.get("total", 0)), bool(msg.get("warming")))
        elif t == "state":
            self._apply_state(msg)
            if self.on_state is not None:
                self.on_state()
        elif t == "steer":
            was = self.steering
            self.steering = bool(msg.get("cid")) and msg.get("cid") == getattr(self._client, "hello", {}).get("cid")
            self.steerer = "" if self.steering else str(msg.get("by", ""))
            if was and not self.steering:
                self._notice(f"{self.steerer or 'another viewer'} took the helm: this viewer only watches",
                             "warning")
            elif self.steering and not was:
                self._notice("this viewer steers the bot", "information")
            if self.on_state is not None:
                self.on_state()

    def _apply_state(self, msg: dict[str, Any]) -> None:
        enabled = msg.get("enabled")
        if isinstance(enabled, dict):
            self._enabled = {s: bool(enabled.get(s, False)) for s in ("long", "short")}
        self._paused = bool(msg.get("paused", self._paused))
        self._frozen = {str(s) for s in msg.get("frozen", ())}
        self._positions = sorted((str(a), str(b)) for a, b in msg.get("positions", ()))
        self.speed = float(msg.get("speed", self.speed) or 0.0)
        self.playback_paused = bool(msg.get("playback_paused", self.playback_paused))

    def _publish_status(self, message: str) -> None:
        enabled = tuple(s for s, on in self._enabled.items() if on)
        self.bus.publish(ev.EngineStatus(int(time.time() * 1000), self.mode, enabled, self._paused, message))

    def _notice(self, message: str, severity: str) -> None:
        if self.on_notice is not None:
            self.on_notice(message, severity)
        else:
            log.info(message)


async def probe(path: str | Path, timeout: float = 3.0) -> dict[str, Any]:
    """Connect once as a watcher and return the bot's hello; ControlUnavailable otherwise."""
    client = ControlClient(path, steer=False, name="probe")
    try:
        return await client.connect(timeout)
    finally:
        await client.aclose()


__all__ = ["CommandRefused", "ControlUnavailable", "RemoteHost", "probe"]
