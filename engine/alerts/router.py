"""The alert router: a bus subscriber that turns engine events into alerts and sends them.

The engine never waits for an alert and an alert can never stop the engine: the bus handler
only runs the rules and appends to a bounded queue (when it is full the oldest alert is
dropped and counted); one background task sends, each send bounded by ALERT_SEND_TIMEOUT_SEC;
a failed send is logged (redacted, without the URL) and counted, never retried in a loop.
Every title and body goes through the audit scrubber before it leaves the process.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable

from engine.exchange.errors import redact, redacting_logger
from engine.store.scrub import scrub_full

from .rules import Alert, AlertConfig, AlertRules
from .sender import AlertsError, AppriseSender, Sender

log = redacting_logger("crot.alerts")

TITLE_MAX = 250
BODY_MAX = 3500  # under Telegram's 4096 and Discord's 4000 characters
UNLIMITED = frozenset({"daily_summary"})


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class RateLimiter:
    """At most `count` alerts of one kind in any `window_ms`; says how many were held back
    since the last one of that kind that went out."""

    def __init__(self, count: int, window_ms: int):
        self.count, self.window_ms = count, window_ms
        self._sent: dict[str, deque[int]] = {}
        self._held: dict[str, int] = {}

    def allow(self, kind: str, now_ms: int) -> tuple[bool, int]:
        sent = self._sent.setdefault(kind, deque())
        while sent and now_ms - sent[0] >= self.window_ms:
            sent.popleft()
        if len(sent) >= self.count:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False, 0
        sent.append(now_ms)
        return True, self._held.pop(kind, 0)


@dataclass
class AlertStats:
    sent: int = 0
    failed: int = 0  # the service refused, timed out or could not be reached
    suppressed: int = 0  # held back by the rate limit
    dropped: int = 0  # the queue was full (the services are slower than the alerts)


class AlertRouter:
    def __init__(self, config: AlertConfig, sender: Sender, *, clock_ms: Callable[[], int] | None = None,
                 queue_size: int = 100, tick_s: float = 30.0):
        self.config = config
        self.sender = sender
        self.rules = AlertRules(config)
        self.limiter = RateLimiter(config.rate_limit_count, config.rate_limit_ms)
        self.stats = AlertStats()
        self._clock = clock_ms
        self._tick_s = tick_s
        self._queue: deque[Alert] = deque()
        self._queue_size = queue_size
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending = False
        self._unsubscribe: Callable[[], Any] | None = None
        self._broken: set[str] = set()

    # -- the bus side (synchronous, quick, never raises) -----------------------------------------
    def attach(self, bus: Any) -> "AlertRouter":
        self._unsubscribe = bus.subscribe(self)
        return self

    def __call__(self, ev: Any) -> None:
        try:
            self._offer(self.rules.on_event(ev))
        except Exception:  # a rule bug must not cost the engine anything; said once per kind
            kind = getattr(ev, "kind", type(ev).__name__)
            if kind not in self._broken:
                self._broken.add(kind)
                log.exception("alert rules failed on a %s event", kind)
        self._ensure_worker()

    def tick(self, now_ms: int) -> None:
        """Time passed without events (the daily summary, a long outage)."""
        try:
            self._offer(self.rules.tick(now_ms))
        except Exception:
            log.exception("alert rules failed on a tick")
        self._ensure_worker()

    def _offer(self, alerts: list[Alert]) -> None:
        for a in alerts:
            if a.kind not in self.config.kinds:
                continue
            if a.kind not in UNLIMITED:
                ok, held = self.limiter.allow(a.kind, a.ts_ms)
                if not ok:
                    self.stats.suppressed += 1
                    self.rules.counted("suppressed")
                    continue
                if held:
                    a = replace(a, body=f"{a.body}\n({held} more {a.kind} alert(s) held back by the rate limit)")
            self._enqueue(a)

    def _enqueue(self, a: Alert) -> None:
        a = replace(a, title=_clip(scrub_full(a.title), TITLE_MAX), body=_clip(scrub_full(a.body), BODY_MAX))
        if len(self._queue) >= self._queue_size:
            self._queue.popleft()
            self.stats.dropped += 1
            self.rules.counted("dropped")
        self._queue.append(a)
        if self._wake is not None:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue) + (1 if self._sending else 0)

    # -- the sending side ------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the alerts wait in the queue for the first event inside one
        self._wake = asyncio.Event()
        if self._queue:
            self._wake.set()
        self._task = loop.create_task(self._run(), name="crot-alerts")

    async def _run(self) -> None:
        assert self._wake is not None
        last_tick = time.monotonic()
        while True:
            if self._clock is not None and time.monotonic() - last_tick >= self._tick_s:
                last_tick = time.monotonic()
                try:
                    self._offer(self.rules.tick(self._clock()))
                except Exception:
                    log.exception("alert rules failed on a tick")
            if not self._queue:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._tick_s if self._clock is not None else None)
                except asyncio.TimeoutError:
                    pass
                continue
            await self._send(self._queue.popleft())

    async def _send(self, alert: Alert) -> None:
        self._sending = True
        ok = False
        try:
            ok = await asyncio.wait_for(self.sender.send(alert), self.config.send_timeout_s)
        except asyncio.TimeoutError:
            log.warning("alert %s not delivered within %.0f s", alert.kind, self.config.send_timeout_s)
        except Exception as exc:  # a library or network error: counted, the engine goes on
            log.warning("alert %s not delivered: %s: %s", alert.kind, type(exc).__name__, redact(exc))
        finally:
            self._sending = False
        if ok:
            self.stats.sent += 1
            self.rules.counted(alert.kind)
        else:
            self.stats.failed += 1
            self.rules.counted("failed")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued alert was sent or given up; False on timeout."""
        self._ensure_worker()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def aclose(self, timeout: float | None = None) -> bool:
        """Stop listening, send what is queued (the engine's last 'stopped' status is usually
        among it) within `timeout` (default: one send timeout), then stop the sender task."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        drained = await self.flush(self.config.send_timeout_s + 1 if timeout is None else timeout)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        return drained


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _alert_settings(settings: Any) -> Any:
    """The settings object that carries the ALERT_ fields (Settings.glob, or that object)."""
    g = getattr(settings, "glob", settings)
    if not hasattr(g, "alert_urls"):
        raise AlertsError("the ALERT_ settings are not registered (engine/settings/groups/alerts.py is "
                          "missing from GLOBAL_GROUPS)")
    return g


_DEFAULT_CLOCK: Any = object()


def start_alerts(settings: Any, bus: Any, *, mode: str = "live", sender: Sender | None = None,
                 clock_ms: Callable[[], int] | None = _DEFAULT_CLOCK) -> AlertRouter | None:
    """Subscribe an AlertRouter to `bus`, or None when ALERT_URLS is empty (or in a replay or
    the demo unless ALERT_REPLAY). A URL Apprise cannot use raises AlertsError (one line,
    without the URL). In live and paper mode a wall-clock tick sends the daily summary even
    while the engine is quiet; `await router.aclose()` after the engine stops."""
    g = _alert_settings(settings)
    urls = g.alert_urls.get_secret_value().strip()
    if not urls or (mode in ("replay", "demo") and not g.alert_replay):
        return None
    if sender is None:
        sender = AppriseSender(urls)
    if clock_ms is _DEFAULT_CLOCK:
        clock_ms = wall_clock_ms if mode in ("live", "paper") else None
    router = AlertRouter(AlertConfig.from_settings(g, mode), sender, clock_ms=clock_ms).attach(bus)
    schemes = getattr(sender, "schemes", None)
    log.info("alerts on: %d service(s)%s, kinds: %s", sender.services,
             f" ({', '.join(schemes)})" if schemes else "", ", ".join(sorted(router.config.kinds)) or "none")
    return router


def check_alerts(settings: Any) -> str | None:
    """For `crot config check`: None when the alert settings can work, else a one-line error."""
    try:
        g = _alert_settings(settings)
        urls = g.alert_urls.get_secret_value().strip()
        if urls:
            AppriseSender(urls)
    except AlertsError as exc:
        return str(exc)
    return None
