"""Crash emulation for restart tests: the process 'dies' at chosen exchange calls.

`CrashingExchange` wraps the exchange and raises `SimulatedCrash` (a BaseException, so no
`except Exception` in the engine can swallow it) at the N-th async call, either before the
call reaches the exchange or after it was carried out but before the reply is seen (a lost
reply). The replay driver then throws the whole engine away and starts a new one from the
state store, exactly as a restarted process would.
"""

from __future__ import annotations

import inspect
from typing import Any


class SimulatedCrash(BaseException):
    """The process died here."""


WRITES = ("place_", "cancel_", "close_", "amend_")


class Passthrough:
    """An exchange wrapper that forwards everything; subclasses wrap the calls they care about."""

    def __init__(self, inner: Any):
        self._inner = inner

    @property
    def name(self) -> str:
        return self._inner.name

    def market(self, symbol: str) -> Any:
        return self._inner.market(symbol)

    def __getattr__(self, item: str) -> Any:
        return getattr(self._inner, item)


class CrashingExchange(Passthrough):
    """Counts calls (only order-changing ones with `writes_only`) and crashes at `crash_at`."""

    def __init__(self, inner: Any, crash_at: set[int], after_call: bool = False, writes_only: bool = False):
        super().__init__(inner)
        self._crash_at = set(crash_at)
        self._after = after_call
        self._writes_only = writes_only
        self.calls = 0
        self.crashes = 0

    def __getattr__(self, item: str) -> Any:
        attr = getattr(self._inner, item)
        if not inspect.iscoroutinefunction(attr):
            return attr

        counted = not self._writes_only or item.startswith(WRITES)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if not counted:
                return await attr(*args, **kwargs)
            self.calls += 1
            hit = self.calls in self._crash_at
            if hit and not self._after:
                self.crashes += 1
                raise SimulatedCrash(f"crash before call {self.calls} ({item})")
            result = await attr(*args, **kwargs)
            if hit and self._after:
                self.crashes += 1
                raise SimulatedCrash(f"crash after call {self.calls} ({item})")
            return result

        return call
