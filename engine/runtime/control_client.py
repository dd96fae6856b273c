"""The viewer's end of the control socket (engine/runtime/control.py): connect, send commands,
read the stream. Used by `crot-tui --attach` and by `crot ctl`."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from pathlib import Path
from typing import Any

from .control import LINE_LIMIT, VERSION, check_socket_path
from .wire import WireError, decode, dumps, loads


class ControlUnavailable(ConnectionError):
    """No bot answers on the socket (one line: where and what to do)."""


class CommandRefused(ValueError):
    """The bot refused a command (its one-line reason)."""


class ControlClient:
    def __init__(self, path: str | Path, *, steer: bool = True, name: str = "") -> None:
        self.path = check_socket_path(path)
        self.want_steer = steer
        self.name = name or f"viewer pid {os.getpid()}"
        self.hello: dict[str, Any] = {}
        self.steering = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.closed_reason = ""

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing() and self._task is not None \
            and not self._task.done()

    async def connect(self, timeout: float = 5.0) -> dict[str, Any]:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.path), limit=LINE_LIMIT), timeout)
        except FileNotFoundError:
            raise ControlUnavailable(f"no bot serves {self.path} (no such socket); start one with "
                                     "crot-tui --no-ui, or give its socket with --attach PATH") from None
        except (ConnectionRefusedError, asyncio.TimeoutError, OSError) as exc:
            raise ControlUnavailable(f"no bot answers on {self.path} ({type(exc).__name__}); is it "
                                     "running?") from None
        self._writer.write(dumps({"op": "hello", "version": VERSION, "steer": self.want_steer,
                                  "name": self.name}))
        try:
            line = await asyncio.wait_for(self._reader.readline(), timeout)
            hello = loads(line) if line else {"t": "bye", "reason": "the bot closed the connection"}
        except (asyncio.TimeoutError, WireError, ConnectionError) as exc:
            await self.aclose()
            raise ControlUnavailable(f"the bot at {self.path} did not greet ({exc})") from None
        if hello.get("t") != "hello":
            await self.aclose()
            raise ControlUnavailable(f"the bot at {self.path} refused: {hello.get('reason', hello)}")
        self.hello = hello
        self.steering = bool(hello.get("steer"))
        self._task = asyncio.create_task(self._read())
        return hello

    async def _read(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    self.closed_reason = self.closed_reason or "the bot closed the connection"
                    break
                try:
                    msg = loads(line)
                except WireError:
                    continue
                t = msg.get("t")
                if t == "reply":
                    fut = self._pending.pop(msg.get("id"), None)
                    if fut is not None and not fut.done():
                        if msg.get("ok"):
                            fut.set_result(msg.get("result"))
                        else:
                            fut.set_exception(CommandRefused(str(msg.get("error", "refused"))))
                    continue
                if t == "steer":
                    self.steering = bool(msg.get("cid")) and msg.get("cid") == self.hello.get("cid")
                if t == "bye":
                    self.closed_reason = str(msg.get("reason", "the bot stopped"))
                await self._inbox.put(msg)
        except (ConnectionError, ValueError, asyncio.LimitOverrunError) as exc:
            self.closed_reason = self.closed_reason or f"connection lost ({type(exc).__name__})"
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ControlUnavailable(f"not sent: {self.closed_reason}"))
            self._pending.clear()
            await self._inbox.put(None)

    async def request(self, name: str, timeout: float = 10.0, **args: Any) -> Any:
        """Send one command and wait for its reply; CommandRefused with the bot's reason."""
        if not self.connected:
            raise ControlUnavailable(f"not connected to the bot at {self.path}: nothing sent")
        assert self._writer is not None
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self._writer.write(dumps({"op": "cmd", "id": rid, "name": name, "args": args}))
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self._pending.pop(rid, None)
            raise ControlUnavailable(f"the bot did not answer {name} within {timeout:g} s "
                                     "(it may still apply it)") from None

    async def next_message(self) -> dict[str, Any] | None:
        """The next message that is not a reply; None once the connection is gone."""
        return await self._inbox.get()

    @staticmethod
    def event_of(msg: dict[str, Any]) -> Any:
        return decode(msg["e"])

    async def aclose(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


__all__ = ["CommandRefused", "ControlClient", "ControlUnavailable"]
