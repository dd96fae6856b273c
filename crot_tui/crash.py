"""The crash screen without secrets.

Textual's own crash screen renders a rich traceback with every frame's local variables: in
CROT those include the raw `.env` text, the settings and the API secret. This one shows the
frames and the code, never the locals, and passes every exception text through `redact()`.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Iterable

from rich.traceback import Stack, Trace, Traceback

from engine.exchange.errors import redact


def _scrub_stacks(stacks: Iterable[Stack]) -> None:
    for stack in stacks:
        stack.exc_value = redact(stack.exc_value)
        stack.notes = [redact(n) for n in stack.notes]
        for frame in stack.frames:
            frame.locals = None
        if stack.syntax_error is not None:
            stack.syntax_error.line = redact(stack.syntax_error.line)
            stack.syntax_error.msg = redact(stack.syntax_error.msg)
        for inner in stack.exceptions:  # exception groups
            _scrub_stacks(inner.stacks)


def safe_trace(exc_type: type[BaseException], exc_value: BaseException,
               tb: TracebackType | None) -> Trace:
    """The rich Trace of an exception with no locals and redacted messages."""
    trace = Traceback.extract(exc_type, exc_value, tb, show_locals=False)
    _scrub_stacks(trace.stacks)
    return trace


def safe_traceback(exc_info: tuple | None = None, **kw: object) -> Traceback:
    """A renderable traceback of the current (or given) exception, safe to show."""
    exc_type, exc_value, tb = exc_info or sys.exc_info()
    if exc_type is None or exc_value is None:
        raise ValueError("safe_traceback: no exception is being handled")
    return Traceback(safe_trace(exc_type, exc_value, tb), show_locals=False, **kw)  # type: ignore[arg-type]
