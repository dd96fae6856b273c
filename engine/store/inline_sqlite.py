"""The part of aiosqlite's connection API the state store uses, run in the calling thread.

Live and paper keep aiosqlite: a slow disk must never stall the event loop (stops are placed
from it). A replay has no other work for the loop while the engine waits for its store, and
aiosqlite's thread hop costs two loop turns per statement (about 50 state statements per
replayed candle): `StateStore.open(path, inline=True)` runs the same SQL on the same
`sqlite3` connection settings in the loop's thread instead. Same statements, same
transactions, same files: only the waiting differs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable
from typing import Any


class InlineCursor:
    """An executed statement: awaitable (the cursor), an async context manager, and
    async-iterable over its rows, as aiosqlite's `execute` result is."""

    def __init__(self, cur: sqlite3.Cursor):
        self._cur = cur

    def __await__(self) -> Any:
        if False:  # pragma: no cover - makes this a generator, as __await__ must be
            yield
        return self

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._cur.close()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._rows()

    async def _rows(self) -> AsyncIterator[Any]:
        for row in self._cur:
            yield row

    async def fetchone(self) -> Any:
        return self._cur.fetchone()

    async def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    @property
    def description(self) -> Any:
        return self._cur.description

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cur.lastrowid


class InlineConnection:
    """`execute`, `executemany`, `executescript`, `close` and `stop` of aiosqlite.Connection."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    @classmethod
    def connect(cls, database: str, **kwargs: Any) -> InlineConnection:
        return cls(sqlite3.connect(database, **kwargs))

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> InlineCursor:
        return InlineCursor(self._conn.execute(sql, tuple(parameters)))

    def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> InlineCursor:
        return InlineCursor(self._conn.executemany(sql, parameters))

    def executescript(self, script: str) -> InlineCursor:
        return InlineCursor(self._conn.executescript(script))

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()
