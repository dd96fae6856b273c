"""The loopback venue's HTX v5 order-push websocket (GET /ws/v5/notification), for ccxt.pro.

What HTX documents and this endpoint enforces (HTX USDT-M docs, "WebSocket Heartbeat and
Authentication Interface" and v5 "Subscribe to order data"):

* every server frame is GZIP-compressed JSON (binary frames);
* the server sends `{"op": "ping", "ts": "<ms>"}` every `ping_interval` s (HTX: 5 s); a
  client that lets `max_missed` pings go unanswered by `{"op": "pong", "ts": <same>}` is sent
  `{"op": "close"}` and disconnected (HTX tolerates 5 misses; this venue is stricter);
* `{"op": "auth", "type": "api", AccessKeyId, SignatureMethod: HmacSHA256, SignatureVersion: 2,
  Timestamp: YYYY-MM-DDThh:mm:ss (UTC), Signature}`: the signature is base64 HMAC-SHA256 of
  "GET\\n{Host}\\n/ws/v5/notification\\n{sorted url-encoded params}"; success is answered
  `{"op": "auth", "type": "api", "err-code": 0, "ts", "data": {"user-id"}}`; a bad signature,
  key or timestamp (more than 5 min off) gets err-code 2003, then `{"op": "close"}` and the
  connection closes; anything before auth gets 2002 and is closed too;
* `{"op": "sub", "cid", "topic": "orders", "contract_code": "*" | code}` is answered
  `{"op": "sub", "cid", "topic", "err-code": 0, "ts"}`; 2040 without contract_code, 2011 for an
  unknown contract, 2014 for a repeated subscription;
* order pushes: `{"op": "notify", "topic": "orders", "contract_code", "ts", "uid", "data": row}`.

Hostility a test can ask for: `drop()` closes every connection abruptly; `refuse = True`
answers the upgrade with 503 (a dead endpoint); `drop_after_pushes = n` drops a connection
after it carried n pushes. Not modelled: pushes for orders placed or cancelled (HTX sends
those too; only fills are pushed here, which is what the bot reacts to).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import gzip
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

PATH = "/ws/v5/notification"
USER_ID = "41312018"


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    authed: bool = False
    topics: set[str] = field(default_factory=set)  # contract codes subscribed ("*" = all)
    pings: dict[str, float] = field(default_factory=dict)  # ts sent -> when; removed when answered
    pushes: int = 0


class FakeHtxOrderPush:
    """Order pushes for one account; `publish(code, row)` sends a row to every subscriber."""

    def __init__(self, *, api_key: str, secret: str, contract_codes: Callable[[], set[str]],
                 ping_interval: float = 5.0, max_missed: int = 2):
        self.api_key, self.secret = api_key, secret
        self.contract_codes = contract_codes
        self.ping_interval, self.max_missed = ping_interval, max_missed
        self.refuse = False
        self.drop_after_pushes: int | None = None
        self.conns: list[_Conn] = []
        self.connections = 0  # upgrades accepted
        self.refused = 0  # upgrades answered 503 (`refuse`)
        self.auth_failures = 0
        self.closed_for_pong = 0
        self.pushed: list[dict] = []  # every push sent (with `sent_s`, monotonic)
        self.log: list[dict] = []  # every client frame received

    # ------------------------------------------------------------------ venue side

    def publish(self, contract_code: str, row: dict, ts_ms: int) -> None:
        msg = {"op": "notify", "topic": "orders", "contract_code": contract_code, "ts": ts_ms,
               "uid": USER_ID, "data": row}
        for c in list(self.conns):
            if c.authed and ("*" in c.topics or contract_code.lower() in c.topics):
                c.queue.put_nowait(msg)

    async def drop(self) -> None:
        """Close every connection abruptly (as a gateway restart does)."""
        for c in list(self.conns):
            c.queue.put_nowait(None)
            await c.ws.close(code=1006)

    # ------------------------------------------------------------------ the endpoint

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.refuse:
            self.refused += 1
            return web.Response(status=503, text="<html>503 Service Temporarily Unavailable</html>")
        ws = web.WebSocketResponse(autoping=True, compress=False)
        await ws.prepare(request)
        self.connections += 1
        conn = _Conn(ws)
        self.conns.append(conn)
        tasks = [asyncio.create_task(self._sender(conn)), asyncio.create_task(self._pinger(conn))]
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await self._send(conn, {"op": "error", "ts": _ms()})
                    continue
                self.log.append(frame)
                if not await self._on_frame(conn, request, frame):
                    break
        finally:
            for t in tasks:
                t.cancel()
            self.conns.remove(conn)
            if not ws.closed:
                await ws.close()
        return ws

    async def _on_frame(self, conn: _Conn, request: web.Request, frame: dict) -> bool:
        op = frame.get("op")
        if op == "pong":
            conn.pings.pop(str(frame.get("ts")), None)
            return True
        if op == "auth":
            if self._authentic(request, frame):
                conn.authed = True
                await self._send(conn, {"op": "auth", "type": "api", "cid": frame.get("cid"), "err-code": 0,
                                        "ts": _ms(), "data": {"user-id": USER_ID}})
                return True
            self.auth_failures += 1
            await self._send(conn, {"op": "auth", "type": "api", "err-code": 2003,
                                    "err-msg": "Authentication failed.", "ts": _ms()})
            return await self._close(conn)
        if not conn.authed:
            await self._send(conn, {"op": op, "cid": frame.get("cid"), "err-code": 2002,
                                    "err-msg": "Authentication required.", "ts": _ms()})
            return await self._close(conn)
        if op == "sub":
            reply = {"op": "sub", "cid": frame.get("cid"), "topic": frame.get("topic"), "ts": _ms()}
            code = str(frame.get("contract_code") or "")
            if frame.get("topic") != "orders":
                reply.update({"err-code": 2010, "err-msg": "Topic error."})
            elif not code:
                reply.update({"err-code": 2040, "err-msg": "Missing required parameter."})
            elif code != "*" and code.upper() not in self.contract_codes():
                reply.update({"err-code": 2011, "err-msg": "Contract doesn't exist."})
            elif code.lower() in conn.topics:
                reply.update({"err-code": 2014, "err-msg": "Repeated subscription."})
            else:
                conn.topics.add(code.lower())
                reply["err-code"] = 0
            await self._send(conn, reply)
            return True
        await self._send(conn, {"op": "error", "ts": _ms()})  # after auth: answered, kept open
        return True

    def _authentic(self, request: web.Request, frame: dict) -> bool:
        params = {k: frame.get(k) for k in ("AccessKeyId", "SignatureMethod", "SignatureVersion", "Timestamp")}
        if frame.get("type") != "api" or params["AccessKeyId"] != self.api_key:
            return False
        if params["SignatureMethod"] != "HmacSHA256" or str(params["SignatureVersion"]) != "2":
            return False
        try:
            stamp = dt.datetime.strptime(str(params["Timestamp"]), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            return False
        if abs(stamp.timestamp() - time.time()) > 300:
            return False
        query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in sorted(params.items()))
        payload = "\n".join(["GET", request.host, PATH, query])
        expected = base64.b64encode(hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).digest())
        return hmac.compare_digest(expected.decode(), str(frame.get("Signature", "")))

    async def _close(self, conn: _Conn) -> bool:
        await self._send(conn, {"op": "close", "ts": _ms()})
        conn.queue.put_nowait(None)
        await conn.ws.close()
        return False

    async def _send(self, conn: _Conn, msg: dict) -> None:
        if not conn.ws.closed:
            await conn.ws.send_bytes(gzip.compress(json.dumps(msg).encode()))

    async def _sender(self, conn: _Conn) -> None:
        while True:
            msg = await conn.queue.get()
            if msg is None or conn.ws.closed:
                return
            await self._send(conn, msg)
            conn.pushes += 1
            self.pushed.append({**msg, "sent_s": time.monotonic()})
            if self.drop_after_pushes is not None and conn.pushes >= self.drop_after_pushes:
                await conn.ws.close(code=1006)
                return

    async def _pinger(self, conn: _Conn) -> None:
        while not conn.ws.closed:
            await asyncio.sleep(self.ping_interval)
            if len(conn.pings) >= self.max_missed:
                self.closed_for_pong += 1
                await self._close(conn)
                return
            ts = str(_ms())
            conn.pings[ts] = time.monotonic()
            await self._send(conn, {"op": "ping", "ts": ts})


def _ms() -> int:
    return int(time.time() * 1000)
