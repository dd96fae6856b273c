"""The control socket of a headless bot: viewers attach to it, one of them may steer.

A bot run as a service (`crot-tui --no-ui`) serves a local Unix domain socket (mode 0600 in a
folder of mode 0700, and a peer of another user is refused by its credentials), so nothing
listens on the network. Every attached viewer gets the recent events first (the latest of
each kind of pane state and bounded rings of the rest) and then the live stream, one JSON
line per message (engine/runtime/wire.py). Exactly one client at a time holds the helm and
may send commands (profile switches, pause, manual actions, lifting protections, demo
playback); the others watch. A slow viewer loses its oldest queued lines, never slows the
engine; a viewer that goes away never stops the bot.

Protocol (version 1). The client's first line: {"op": "hello", "version": 1, "steer": bool,
"name": str}. Then {"op": "cmd", "id": int, "name": str, "args": {...}}; each gets
{"t": "reply", "id", "ok", "result" | "error"}. The server sends {"t": "hello", ...},
{"t": "event", "e": ...}, {"t": "progress", ...}, {"t": "state", ...}, {"t": "steer", ...}
and, when the bot stops, {"t": "bye", "reason": ...}.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import events as ev
from .events import Event, EventBus
from .wire import WireError, dumps, encode, loads

log = logging.getLogger("crot.control")

VERSION = 1
LINE_LIMIT = 16 * 1024 * 1024  # one Decisions event of a few hundred symbols fits
QUEUE_LINES = 4000  # per viewer; the oldest are dropped when a viewer falls behind
HELLO_TIMEOUT_S = 5.0
MAX_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
PROGRESS_EVERY_S = 0.1

# pane state: only the latest of each key matters to a viewer that attaches late
_LATEST: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    ev.Decisions: lambda e: (e.profile,),
    ev.Positions: lambda e: (e.profile,),
    ev.Stops: lambda e: (e.profile,),
    ev.CycleStats: lambda e: (e.profile,),
    ev.Premium: lambda e: (e.symbol,),
    # the newest status only: replaying older ones to a late viewer would show it flags that
    # no longer hold (a profile switched off since) until the newest one arrived
    ev.EngineStatus: lambda e: (),
}
_RING = 1000  # per other kind of event (orders, fills, trades, account, status, ...)

STEER_COMMANDS = frozenset({"toggle_profile", "pause_entries", "toggle_pause", "manual",
                            "lift_protections", "set_speed", "set_playback_paused"})


class ControlError(RuntimeError):
    """The control socket cannot be served (one line: what and where)."""


def _audit_path(target: Any) -> str:
    """The bot's audit SQLite (live / paper), for a viewer's history views; "" when none.
    The viewer runs as the same user (SO_PEERCRED), so it may read the file (read only)."""
    settings, mode = getattr(target, "settings", None), getattr(target, "mode", "")
    if settings is None or mode not in ("live", "paper"):
        return ""
    from engine.store.audit_query import audit_db_path

    try:
        return str(audit_db_path(settings.glob.data_dir, mode).absolute())
    except AttributeError:
        return ""


def default_socket_path(state_file: str | Path) -> Path:
    """The socket next to the bot's state file: one bot per state file, one socket per bot."""
    p = Path(state_file).expanduser()
    return p.with_name(p.stem + ".sock")


def check_socket_path(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if len(os.fsencode(str(p.absolute()))) > MAX_PATH:
        raise ControlError(f"control socket path {p} is longer than {MAX_PATH} bytes (a Unix socket "
                           "limit); give a shorter one with --socket")
    return p


def peer_uid(sock: socket.socket | None) -> int | None:
    """The user id of the process at the other end (Linux SO_PEERCRED; None elsewhere)."""
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    return struct.unpack("3i", creds)[1]


@dataclass(eq=False)
class _Client:
    cid: int
    name: str
    writer: asyncio.StreamWriter
    queue: deque[bytes] = field(default_factory=lambda: deque(maxlen=QUEUE_LINES))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0
    closed: bool = False

    def put(self, line: bytes) -> None:
        if self.closed:
            return
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(line)
        self.wake.set()

    def send_now(self, line: bytes) -> None:
        """Replies, state and goodbyes: written at once, never dropped with the events."""
        if self.closed:
            return
        with contextlib.suppress(Exception):
            self.writer.write(line)


class ControlServer:
    """Serves `target` (the engine host: flags(), toggle_profile(), manual(), ...) and the
    events of `bus` on a Unix socket at `path`."""

    def __init__(self, path: str | Path, target: Any, bus: EventBus, *, name: str = "crot") -> None:
        self.path = check_socket_path(path)
        self.target = target
        self.bus = bus
        self.name = name
        self._server: asyncio.AbstractServer | None = None
        self._clients: dict[int, _Client] = {}
        self._next_cid = 1
        self._seq = 0
        self._latest: dict[tuple[Any, ...], tuple[int, Event]] = {}
        self._rings: dict[type, deque[tuple[int, Event]]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._steerer: int | None = None
        self._progress: dict[str, Any] | None = None
        self._progress_at = 0.0
        self._inode: tuple[int, int] | None = None
        self.refused = 0  # connections refused (another user, bad hello)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise ControlError(f"control socket path {self.path} exists and is not a socket; "
                                   "remove it or choose another with --socket")
            if await _answers(self.path):
                raise ControlError(f"another bot already serves {self.path}; stop it first or choose "
                                   "another socket with --socket")
            self.path.unlink()  # left behind by a bot that crashed
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=LINE_LIMIT)
        except OSError as exc:
            raise ControlError(f"cannot serve the control socket {self.path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        st = os.lstat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        self._unsubscribe = self.bus.subscribe(self._on_event)
        log.info("control socket: %s (attach with: crot-tui --attach %s)", self.path, self.path)

    async def aclose(self, reason: str = "the bot stopped") -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for c in list(self._clients.values()):
            c.send_now(dumps({"t": "bye", "reason": reason}))
        if self._clients:  # let the writers send the goodbye
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._flushed(), 1.0)
        for c in list(self._clients.values()):
            self._drop(c)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        self._remove_socket()

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def _remove_socket(self) -> None:
        try:
            st = os.lstat(self.path)
        except OSError:
            return
        if self._inode == (st.st_dev, st.st_ino):  # never someone else's socket
            with contextlib.suppress(OSError):
                self.path.unlink()

    async def _flushed(self) -> None:
        for c in list(self._clients.values()):
            with contextlib.suppress(Exception):
                await c.writer.drain()

    @property
    def viewers(self) -> int:
        return len(self._clients)

    # -- what viewers get -------------------------------------------------------------------
    def _on_event(self, e: Event) -> None:
        self._seq += 1
        key_of = _LATEST.get(type(e))
        if key_of is not None:
            self._latest[(type(e), *key_of(e))] = (self._seq, e)
        else:
            ring = self._rings.get(type(e))
            if ring is None:
                ring = self._rings[type(e)] = deque(maxlen=_RING)
            ring.append((self._seq, e))
        if self._clients:
            try:
                line = dumps({"t": "event", "e": encode(e)})
            except (TypeError, ValueError):
                log.debug("event %s not sent to viewers", e.kind, exc_info=True)
                return
            for c in self._clients.values():
                c.put(line)

    def progress(self, done: int, total: int, warming: bool) -> None:
        """The replay's progress (a host's on_progress); sent at most 10 times a second."""
        self._progress = {"t": "progress", "done": done, "total": total, "warming": warming}
        now = time.monotonic()
        if self._clients and (now - self._progress_at >= PROGRESS_EVERY_S or done >= total):
            self._progress_at = now
            line = dumps(self._progress)
            for c in self._clients.values():
                c.put(line)

    def _snapshot(self) -> list[Event]:
        items = list(self._latest.values())
        for ring in self._rings.values():
            items.extend(ring)
        items.sort(key=lambda x: x[0])
        return [e for _, e in items]

    def _state(self) -> dict[str, Any]:
        t = self.target
        enabled, paused = t.flags()
        return {"t": "state", "enabled": enabled, "paused": paused,
                "frozen": sorted(t.frozen()), "positions": [list(p) for p in t.positions()],
                "speed": float(getattr(t, "speed", 0.0) or 0.0),
                "playback_paused": bool(getattr(t, "playback_paused", False)),
                "running": bool(getattr(t, "attached", True)), "steerer": self._steerer_name()}

    def _steerer_name(self) -> str:
        c = self._clients.get(self._steerer) if self._steerer is not None else None
        return c.name if c else ""

    def _steer_msg(self) -> bytes:
        c = self._clients.get(self._steerer) if self._steerer is not None else None
        return dumps({"t": "steer", "by": c.name if c else "", "cid": c.cid if c else 0})

    def _broadcast(self, line: bytes) -> None:
        for c in self._clients.values():
            c.send_now(line)

    # -- one viewer -------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = peer_uid(writer.get_extra_info("socket"))
        if uid is not None and uid != os.geteuid():
            self.refused += 1
            log.warning("control socket: refused a viewer of user id %d", uid)
            writer.close()
            return
        try:
            line = await asyncio.wait_for(reader.readline(), HELLO_TIMEOUT_S)
            hello = loads(line)
            if hello.get("op") != "hello" or int(hello.get("version", 0)) != VERSION:
                raise WireError(f"expected a version {VERSION} hello")
        except (asyncio.TimeoutError, WireError, ValueError, TypeError, ConnectionError) as exc:
            self.refused += 1
            with contextlib.suppress(Exception):
                writer.write(dumps({"t": "bye", "reason": f"bad hello: {exc}"}))
                await writer.drain()
            writer.close()
            return
        client = _Client(self._next_cid, str(hello.get("name") or "viewer")[:64], writer)
        self._next_cid += 1
        steer = False
        if hello.get("steer") and self._steerer is None:
            self._steerer, steer = client.cid, True
        t = self.target
        welcome = {"t": "hello", "version": VERSION, "name": self.name, "pid": os.getpid(),
                   "mode": getattr(t, "mode", ""), "steer": steer, "cid": client.cid,
                   "symbols": list(_symbols(t)), "audit": _audit_path(t)}
        welcome.update({k: v for k, v in self._state().items() if k != "t"})
        # hello and the snapshot go straight to the transport's buffer and the client joins
        # the broadcast with no await in between: no event is missed or sent twice
        client.send_now(dumps(welcome))
        for e in self._snapshot():
            with contextlib.suppress(TypeError, ValueError):
                client.send_now(dumps({"t": "event", "e": encode(e)}))
        if self._progress is not None:
            client.send_now(dumps(self._progress))
        self._clients[client.cid] = client
        if steer:
            self._broadcast(self._steer_msg())
        log.info("control socket: %s attached (%s)", client.name, "steering" if steer else "watching")
        pump = asyncio.create_task(self._pump(client))
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                await self._command(client, line)
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            self._drop(client)
            log.info("control socket: %s detached", client.name)

    async def _pump(self, c: _Client) -> None:
        try:
            while not c.closed:
                while c.queue:
                    c.writer.write(c.queue.popleft())
                    await c.writer.drain()
                c.wake.clear()
                if not c.queue:
                    await c.wake.wait()
        except (ConnectionError, RuntimeError):
            self._drop(c)

    def _drop(self, c: _Client) -> None:
        if c.closed:
            return
        c.closed = True
        c.wake.set()
        self._clients.pop(c.cid, None)
        with contextlib.suppress(Exception):
            c.writer.close()
        if self._steerer == c.cid:
            self._steerer = None
            self._broadcast(self._steer_msg())

    async def _command(self, c: _Client, line: bytes) -> None:
        rid: Any = None
        try:
            msg = loads(line)
            rid = msg.get("id")
            if msg.get("op") != "cmd":
                raise WireError(f"unknown op {msg.get('op')!r}; expected 'cmd'")
            name = str(msg.get("name", ""))
            args = msg.get("args") or {}
            if not isinstance(args, dict):
                raise WireError("args must be an object")
            result = self._run(c, name, args)
        except (WireError, ValueError, TypeError, KeyError) as exc:
            c.send_now(dumps({"t": "reply", "id": rid, "ok": False, "error": str(exc)}))
            return
        c.send_now(dumps({"t": "reply", "id": rid, "ok": True, "result": result}))
        if name in STEER_COMMANDS:
            self._broadcast(dumps(self._state()))

    def _run(self, c: _Client, name: str, args: dict[str, Any]) -> Any:
        t = self.target
        if name == "ping":
            return "pong"
        if name == "state":
            return {k: v for k, v in self._state().items() if k != "t"}
        if name == "steer":
            holder = self._clients.get(self._steerer) if self._steerer is not None else None
            if holder is not None and holder is not c and not args.get("force"):
                raise ValueError(f"{holder.name} steers this bot; close it, or take over with force")
            self._steerer = c.cid
            self._broadcast(self._steer_msg())
            return True
        if name == "release":
            if self._steerer == c.cid:
                self._steerer = None
                self._broadcast(self._steer_msg())
            return True
        if name not in STEER_COMMANDS:
            raise ValueError(f"unknown command {name!r}; expected one of: ping, state, steer, release, "
                             + ", ".join(sorted(STEER_COMMANDS)))
        if self._steerer != c.cid:
            holder = self._clients.get(self._steerer) if self._steerer is not None else None
            raise ValueError(f"{holder.name} steers this bot: this viewer only watches" if holder else
                             "this viewer only watches: take the helm first (steer)")
        if name == "toggle_profile":
            side = str(args.get("side", ""))
            if side not in ("long", "short"):
                raise ValueError(f"side {side!r}: expected long or short")
            return _running(t.toggle_profile(side))
        if name == "pause_entries":
            return _running(t.pause_entries(bool(args.get("paused", True))))
        if name == "toggle_pause":
            return _running(t.toggle_pause())
        if name == "manual":
            price = args.get("price")
            return _running(t.manual(str(args.get("kind", "")), str(args.get("symbol", "")),
                                     "" if price is None else str(price)))
        if name == "lift_protections":
            return _running(t.lift_protections())
        if name == "set_speed":
            if getattr(t, "mode", "") != "demo":
                raise ValueError("the speed is for a demo only")
            t.set_speed(float(args.get("speed", 0)))
            return float(t.speed)
        if name == "set_playback_paused":
            if getattr(t, "mode", "") != "demo":
                raise ValueError("playback control is for a demo only")
            t.playback_paused = bool(args.get("paused", True))
            return t.playback_paused
        raise AssertionError(name)


def _running(value: Any) -> Any:
    if value is None:
        raise ValueError("the engine is not running (yet): nothing done")
    return value


def _symbols(target: Any) -> list[str]:
    engine = getattr(target, "engine", None)
    return list(getattr(engine, "symbols", ()) or ())


async def _answers(path: Path) -> bool:
    """Whether a live server answers at `path` (a stale socket file refuses the connection)."""
    try:
        _, w = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    w.close()
    return True


__all__ = ["ControlError", "ControlServer", "STEER_COMMANDS", "VERSION", "check_socket_path",
           "default_socket_path", "peer_uid"]
