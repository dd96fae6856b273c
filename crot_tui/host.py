"""Runs the engine for the UI and for `--no-ui`: one mode, one bus, a small command API.

Neither the UI nor the headless logger talks to the engine any other way: they read events
from `host.bus` and send commands through `toggle_profile`, `pause_entries` and
`request_stop`. The host never waits for a reader (the bus drops the oldest events of a slow
queue reader), and a stop request lets the engine finish the cycle it is in.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from engine.exchange.errors import redact, register_secret
from engine.runtime.events import Decisions, Event, EventBus
from engine.settings import Settings

log = logging.getLogger("crot.tui")

MODES = ("demo", "paper", "live")
DEFAULT_SPEED = 50.0  # demo candles per second once the indicators are warm


class ModeUnavailable(RuntimeError):
    """The requested mode cannot run in this build (a missing engine piece)."""


class StopRun(Exception):
    """Raised from the replay's step callback to end a demo between two steps."""


@dataclass
class RunResult:
    mode: str
    summary: Any = None  # engine.runtime.replay.ReplaySummary for a demo that ran to its end
    steps: int = 0
    stopped: bool = False  # ended by a stop request (quit, SIGTERM, SIGINT)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def load_live_runner() -> Callable[..., Awaitable[Any]]:
    """`engine.runtime.live.run_live`, isolated here so a build without it fails clearly."""
    try:
        from engine.runtime import live
    except ImportError as exc:
        raise ModeUnavailable(
            "live and paper modes need engine/runtime/live.py (run_live), which is not in this "
            f"build ({exc}); use --demo") from None
    run_live = getattr(live, "run_live", None)
    if run_live is None:
        raise ModeUnavailable("engine.runtime.live has no run_live(); live and paper modes are not "
                              "available in this build; use --demo")
    return run_live


def has_api_key(settings: Settings) -> bool:
    g = settings.glob
    return bool(g.htx_api_key.get_secret_value())


Runner = Callable[["EngineHost"], Awaitable[RunResult]]


class EngineHost:
    """Owns the bus and the engine of one run (demo, paper or live)."""

    def __init__(self, settings: Settings, *, mode: str = "demo", bus: EventBus | None = None,
                 speed: float = DEFAULT_SPEED, data_dir: str | Path | None = None,
                 symbols: list[str] | None = None, max_steps: int | None = None,
                 runner: Runner | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.settings = settings
        self.mode = mode
        self.bus = bus or EventBus()
        self.speed = float(speed)
        self.data_dir = Path(data_dir) if data_dir else None
        self.symbols = symbols
        self.max_steps = max_steps
        self.engine: Any = None
        self.done = 0
        self.total = 0
        self.warm = False
        self.playback_paused = False
        self.running = False
        self.result: RunResult | None = None
        self.on_progress: Callable[[int, int, bool], None] | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._next_at: float | None = None
        self._runner = runner
        g = settings.glob
        register_secret(*(s.get_secret_value() for s in (g.htx_api_key, g.htx_api_secret,
                                                         g.htx_api_key_2, g.htx_api_secret_2)))
        self.bus.subscribe(self._watch)

    # -- commands ---------------------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return self.engine is not None

    def flags(self) -> tuple[dict[str, bool], bool]:
        if self.engine is None:
            return {s: s in self.settings.enabled for s in ("long", "short")}, False
        f = self.engine.flags
        return dict(f.enabled), bool(f.paused)

    def toggle_profile(self, side: str) -> bool | None:
        """Toggle new entries of one side; None when no engine runs (yet)."""
        if self.engine is None:
            return None
        return bool(self.engine.toggle_profile(side))

    def pause_entries(self, paused: bool) -> bool | None:
        if self.engine is None:
            return None
        self.engine.pause_entries(paused)
        return paused

    def toggle_pause(self) -> bool | None:
        if self.engine is None:
            return None
        return self.pause_entries(not self.engine.flags.paused)

    def manual(self, kind: str, symbol: str = "", price: str = "") -> str | None:
        """Queue a manual action (engine/runtime/manual.py); its description, or None when no
        engine runs (yet). `price`: a close at this limit ("" = at market). A symbol that is
        not traded, or a bad price, raises ValueError (one line)."""
        if self.engine is None:
            return None
        from engine.runtime.manual import ManualRequest, limit_price

        req = ManualRequest(kind, symbol, limit_price(price))  # type: ignore[arg-type]
        return str(self.engine.request_manual(req))

    def positions(self) -> list[tuple[str, str]]:
        """(side, symbol) of every open position the engine knows of."""
        if self.engine is None:
            return []
        profiles = getattr(self.engine, "profiles", {})
        return sorted((side, s) for side, r in profiles.items() for s in r.state.positions)

    def frozen(self) -> set[str]:
        return set(getattr(self.engine, "frozen", ())) if self.engine is not None else set()

    def lift_protections(self) -> int | None:
        """Lift every account protection now; None when no engine runs (yet)."""
        if self.engine is None:
            return None
        return int(self.engine.lift_protections())

    def request_stop(self) -> None:
        """Stop after the current engine cycle (a demo: after the current candle)."""
        self._stop_requested = True
        if self._stop is not None:
            self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def set_speed(self, speed: float) -> float:
        self.speed = max(0.0, float(speed))
        self._next_at = None
        return self.speed

    def set_playback_paused(self, paused: bool) -> bool:
        """Hold or resume a demo between two candles."""
        self.playback_paused = bool(paused)
        return self.playback_paused

    # -- running ----------------------------------------------------------------------------
    async def run(self) -> RunResult:
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        self.running = True
        try:
            if self._runner is not None:
                result = await self._runner(self)
            elif self.mode == "demo":
                result = await self._run_demo()
            else:
                result = await self._run_live(paper=self.mode == "paper")
        except ModeUnavailable as exc:
            result = RunResult(self.mode, error=str(exc))
        except StopRun:
            result = RunResult(self.mode, steps=self.done, stopped=True)
        except asyncio.CancelledError:
            self.result = RunResult(self.mode, steps=self.done, stopped=True)
            raise
        except Exception as exc:  # reported, never swallowed silently
            log.debug("engine run failed", exc_info=True)
            result = RunResult(self.mode, steps=self.done, error=f"{type(exc).__name__}: {redact(exc)}")
        finally:
            self.running = False
        self.result = result
        return result

    def _attach(self, engine: Any) -> None:
        self.engine = engine

    def _watch(self, e: Event) -> None:
        if not self.warm and isinstance(e, Decisions) and e.decisions:
            self.warm = True
            self._next_at = None

    async def _run_demo(self) -> RunResult:
        from engine.runtime.replay import DEMO_DATA, demo_symbols, run_replay

        data = self.data_dir or DEMO_DATA
        symbols = self.symbols if self.symbols is not None else (demo_symbols(self.settings) if self.data_dir is None else None)
        summary = await run_replay(self.settings, data_dir=data, symbols=symbols, bus=self.bus,
                                   on_step=self._pace, on_engine=self._attach, max_steps=self.max_steps)
        return RunResult("demo", summary=summary, steps=summary.steps)

    async def _pace(self, done: int, total: int) -> None:
        """Called by the replay after every complete step: report, stop, or wait."""
        if self.max_steps is not None:
            total = min(total, self.max_steps)
        self.done, self.total = done, total
        if self.on_progress is not None:
            self.on_progress(done, total, not self.warm)
        if self._stop_requested:
            raise StopRun()
        while self.playback_paused and not self._stop_requested:
            await asyncio.sleep(0.05)
            self._next_at = None
        if self._stop_requested:
            raise StopRun()
        if self.speed <= 0 or not self.warm:
            await asyncio.sleep(0)  # warm-up runs at full speed, but lets the UI breathe
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._next_at is None or now - self._next_at > 0.5:
            self._next_at = now
        self._next_at += 1.0 / self.speed
        delay = self._next_at - now
        await asyncio.sleep(delay if delay > 0 else 0)

    async def _run_live(self, *, paper: bool) -> RunResult:
        run_live = load_live_runner()
        assert self._stop is not None
        from engine.alerts.router import start_alerts

        alerts = start_alerts(self.settings, self.bus, mode="paper" if paper else "live")
        try:
            steps = await run_live(self.settings, bus=self.bus, paper=paper, stop=self._stop,
                                   on_engine=self._attach)
        finally:
            if alerts is not None:
                await alerts.aclose()
        return RunResult(self.mode, steps=int(steps or 0), stopped=self._stop_requested)
