"""Offline test support: a loopback HTTP server speaking recorded venue JSON, and a network guard.

The real ccxt clients are pointed at `LoopbackServer` (their URL templates are the seam), so
signing, routing, rate limiting, HTTP handling and parsing are all ccxt's own code; the server
records every request (method, path, query, JSON body) for exact assertions.

`deny_network()` makes any connection or DNS lookup to a non-loopback host fail loudly, so a
mis-pointed client can never reach a real exchange from a test.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON body (None when empty)
    headers: dict[str, str]


@dataclass
class Reply:
    json: Any = None
    status: int = 200
    delay: float = 0.0  # seconds before answering (longer than the client timeout = lost reply)
    text: str | None = None  # raw body instead of JSON


Handler = Callable[[RecordedRequest], "Reply | dict | list"]


@dataclass
class _Route:
    replies: list[Any] = field(default_factory=list)  # Reply | dict | list | Handler; last repeats
    calls: int = 0

    def next(self) -> Any:
        reply = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        return reply


class LoopbackServer:
    """Scripted aiohttp server on 127.0.0.1; unknown routes answer 404 and are recorded."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._routes: dict[tuple[str, str], _Route] = {}
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def route(self, method: str, path: str, *replies: Any) -> None:
        """Serve `replies` in order for METHOD path (the last one repeats)."""
        if not replies:
            raise ValueError("at least one reply")
        self._routes[(method.upper(), path)] = _Route(list(replies))

    @property
    def host(self) -> str:
        assert self.port is not None, "server not started"
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def calls(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and (path is None or r.path == path)
        ]

    async def start(self) -> LoopbackServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LoopbackServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(parse_qsl(request.query_string, keep_blank_values=True)),
            body=body,
            headers=dict(request.headers),
        )
        self.requests.append(recorded)
        route = self._routes.get((request.method, request.path))
        if route is None:
            return web.json_response({"status": "error", "err_msg": f"no route {request.method} {request.path}"}, status=404)
        reply = route.next()
        if callable(reply) and not isinstance(reply, Reply):
            reply = reply(recorded)
        if not isinstance(reply, Reply):
            reply = Reply(json=reply)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.text is not None:
            return web.Response(text=reply.text, status=reply.status, content_type="text/html")
        return web.json_response(reply.json, status=reply.status)


def load_fixture(directory: Path, name: str) -> Any:
    return json.loads((directory / name).read_text())


# --------------------------------------------------------------------------- network guard

_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkDenied(ConnectionRefusedError):
    pass


@contextmanager
def deny_network() -> Iterator[list[str]]:
    """Refuse every non-loopback connect / DNS lookup; yields the list of refused targets."""
    refused: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(address, (str, bytes)) and not isinstance(address, tuple):
            return  # AF_UNIX path
        if not _is_loopback(host):
            refused.append(str(host))
            raise NetworkDenied(f"test tried to reach non-loopback host {host!r}")

    def connect(self: socket.socket, address: Any) -> Any:
        check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            refused.append(str(host))
            raise NetworkDenied(f"test tried to resolve non-loopback host {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield refused
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo  # type: ignore[assignment]
