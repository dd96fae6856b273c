"""HTX order updates over the websocket (ccxt.pro): wake the live loop when an order of ours fills.

The live loop polls every POLL_INTERVAL_SEC; a stop for a partial fill (the stop attached to
the entry only activates once the entry has filled completely) waits for the next poll.
`OrderUpdates` watches the account's order pushes and sets `wake` on every fill, so the loop
polls at once. It is an accelerator, never a dependency: every failure is caught, logged
(redacted) and retried with a growing pause, and the loop keeps polling meanwhile.

HTX v5 (USDT-M, Multi-Assets Collateral accounts, which the REST adapter uses), "Subscribe to
order data" (https://www.htx.com/en-us/opend/newApiPages/?id=8cb89359-77b5-11ed-9966-195a208afe7):
address wss://api.hbdm.vn/ws/v5/notification (api.hbdm.com also), request
`{"op": "sub", "cid", "topic": "orders", "contract_code": "*"}`, pushes
`{"op": "notify", "topic": "orders", "contract_code", "ts", "uid", "data": {order row}}` with
`state` new | partially_filled | filled | partially_canceled | canceled | rejected and
`trade_volume` the volume filled so far. The legacy `orders_cross.*` topic on
/linear-swap-notification serves non-v5 accounts only; ccxt 4.5.90's `watch_orders` for linear
swaps uses the v5 address and topic. Transport (HTX USDT-M docs, "WebSocket Heartbeat and
Authentication Interface"): every server frame is GZIP-compressed; the server sends
`{"op": "ping", "ts"}` every 5 s and disconnects a client that ignores it (ccxt answers
`{"op": "pong", "ts"}`); `op: auth` carries AccessKeyId, SignatureMethod HmacSHA256,
SignatureVersion 2, Timestamp and Signature = base64 HMAC-SHA256 of
"GET\\n{host}\\n{path}\\n{sorted, url-encoded params}"; an error while connecting or
authenticating is answered `{"op": "close"}` and the connection is closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro

from . import errors as E

log = E.redacting_logger("engine.exchange.htx_orders_ws")
V5_PATH = "/ws/v5/notification"
FILLED_STATES = ("partially_filled", "filled", "partially_canceled")


def ws_url(scheme: str, hostname: str) -> str:
    """The v5 notification address on `hostname`: wss for https, ws for the loopback (http)."""
    return f"{'wss' if scheme == 'https' else 'ws'}://{hostname}{V5_PATH}"


class _ProHtx(ccxt.pro.htx):
    """ccxt.pro's htx client, signing the path of any ws URL.

    ccxt derives the signed path by stripping "wss://" + hostname from the URL, so over ws://
    (the loopback venue) it would sign the whole URL and be refused; this signs the URL's path,
    which is what HTX verifies. Over wss:// it is ccxt's own code path."""

    async def authenticate(self, params: dict = {}):  # noqa: B006 - ccxt's signature
        url, hostname = self.safe_string(params, "url"), self.safe_string(params, "hostname")
        if url is None or url.startswith("wss://") or self.safe_string(params, "type") == "spot":
            return await super().authenticate(params)
        self.check_required_credentials()
        client = self.client(url)
        future = client.reusableFuture("auth")
        if self.safe_value(client.subscriptions, "auth") is None:
            signed = self.keysort({"AccessKeyId": self.apiKey, "SignatureMethod": "HmacSHA256",
                                   "SignatureVersion": "2", "Timestamp": self.ymdhms(self.milliseconds(), "T")})
            payload = "\n".join(["GET", hostname, urlsplit(url).path, self.urlencode(signed, True)])
            signature = self.hmac(self.encode(payload), self.encode(self.secret), hashlib.sha256, "base64")
            request = {"op": "auth", "type": "api", **signed, "Signature": signature}
            subscription = {"id": self.request_id(), "messageHash": "auth", "params": params}
            self.watch(url, "auth", request, "auth", subscription)
        return await future


class OrderUpdates:
    """The account's HTX order pushes as a wake-up: `wake` is set when an order fills (in part
    or fully). `run()` never raises (bar cancellation): it reconnects with a growing pause.

    `updates` counts order pushes seen, `fills` those that reported new volume filled,
    `errors` failures; `connected` is True from the first push after a (re)connection until
    the next failure, `connects` counts those (ccxt reports a subscription only by its first
    push)."""

    def __init__(self, *, api_key: str, secret: str, hostname: str, scheme: str = "https",
                 rest_markets: dict | None = None, wake: asyncio.Event | None = None,
                 first_pause: float = 0.5, max_pause: float = 30.0, timeout_ms: int = 10_000,
                 on_fill: Callable[[dict], None] | None = None, seed: int | None = None):
        E.register_secret(api_key, secret)
        self.url = ws_url(scheme, hostname)
        self.wake = wake or asyncio.Event()
        self.first_pause, self.max_pause = first_pause, max_pause
        self.on_fill = on_fill
        self.updates = self.fills = self.connects = self.errors = 0
        self.connected = False
        self.last_error = ""
        self._filled: dict[str, str] = {}  # order id -> trade_volume last seen
        self._rng = random.Random(seed)
        self._task: asyncio.Task | None = None
        self._client = _ProHtx({
            "apiKey": api_key, "secret": secret, "timeout": timeout_ms, "verbose": False,
            "logger": E.redacting_logger("engine.exchange.ccxt.htx.ws"),
            "options": {"defaultType": "swap", "defaultSubType": "linear",
                        "fetchMarkets": {"types": {"spot": False, "linear": True, "inverse": False}}},
        })
        self._client.urls["hostnames"]["contract"] = hostname
        self._client.urls["api"]["ws"]["api"]["swap"]["linear"]["privateV5"] = self.url
        if scheme != "https":
            self._client.urls["api"]["contract"] = f"{scheme}://{{hostname}}"
        if rest_markets:
            self._client.set_markets(rest_markets)

    @classmethod
    def for_exchange(cls, exchange: Any, **kw: Any) -> OrderUpdates | None:
        """The stream for an `HtxExchange` (same credentials, hostname and scheme), else None."""
        config = getattr(exchange, "config", None)
        if getattr(exchange, "name", None) != "htx" or not getattr(config, "api_key", ""):
            return None
        ccxt_client = getattr(exchange, "_ccxt", None)
        return cls(api_key=config.api_key, secret=config.secret, hostname=exchange.hostname,
                   scheme=config.scheme, rest_markets=getattr(ccxt_client, "markets", None) or None, **kw)

    def start(self) -> OrderUpdates:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="htx-order-updates")
        return self

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        try:
            await self._client.close()
        except Exception:
            pass

    async def run(self) -> None:
        pause = self.first_pause
        while True:
            try:
                orders = await self._client.watch_orders(None, params={"type": "swap", "subType": "linear"})
                if not self.connected:
                    self.connected, pause = True, self.first_pause
                    self.connects += 1
                self._seen(orders)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never into the engine: the loop keeps polling
                self.errors += 1
                if self.connected:  # pushes may have been missed while it broke: poll now
                    self.wake.set()
                self.connected = False
                self.last_error = f"{type(exc).__name__}: {E.redact(exc)}"[:300]
                log.warning("htx order updates down (%s); retrying in %.1f s, polling meanwhile",
                            self.last_error, pause)
                await asyncio.sleep(pause * (1 + 0.2 * self._rng.random()))
                pause = min(self.max_pause, pause * 2)

    def _seen(self, orders: list[dict]) -> None:
        for order in orders:
            self.updates += 1
            info = order.get("info") or {}
            row = info.get("data", info) if isinstance(info, dict) else {}
            oid = str(row.get("order_id") or order.get("id"))
            volume = str(row.get("trade_volume") or order.get("filled") or "0")
            state = row.get("state") or order.get("status")
            if (state in FILLED_STATES or _positive(volume)) and self._filled.get(oid) != volume:
                self._filled[oid] = volume
                self.fills += 1
                self.wake.set()
                if self.on_fill is not None:
                    self.on_fill(row)
        if len(self._filled) > 5000:  # ids of finished orders: keep the newest
            for key in list(self._filled)[:2500]:
                del self._filled[key]


def _positive(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


logging.getLogger("engine.exchange.ccxt.htx.ws").setLevel(logging.WARNING)
