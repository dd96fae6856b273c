"""Durable trading state in SQLite (aiosqlite, WAL): positions, entry ladders, orders, trades.

What the exchange cannot tell us after a restart (when a position opened, its initial size,
how many averaging stages were used, the runner's best price, cooldowns, recent ladders) lives
here. Each profile's state is written in one transaction per cycle; an order intent is written
before the order is sent and updated after, so a crash between the two is found again through
the order's deterministic client id.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import aiosqlite

from .inline_sqlite import InlineConnection

SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (
    profile TEXT NOT NULL, symbol TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (profile, symbol));
CREATE TABLE IF NOT EXISTS ladders (
    profile TEXT NOT NULL, symbol TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (profile, symbol));
CREATE TABLE IF NOT EXISTS profile_kv (
    profile TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (profile, key));
CREATE TABLE IF NOT EXISTS orders (
    client_order_id INTEGER PRIMARY KEY, profile TEXT NOT NULL, symbol TEXT NOT NULL,
    purpose TEXT NOT NULL, intent_key TEXT NOT NULL, side TEXT NOT NULL, price TEXT,
    amount TEXT NOT NULL, status TEXT NOT NULL, exchange_id TEXT, created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS orders_profile_status ON orders (profile, status);
CREATE INDEX IF NOT EXISTS orders_exchange_id ON orders (exchange_id);
CREATE TABLE IF NOT EXISTS trades (
    id INTEGER PRIMARY KEY AUTOINCREMENT, profile TEXT NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, opened_ms INTEGER NOT NULL, closed_ms INTEGER NOT NULL,
    entry_price TEXT NOT NULL, exit_price TEXT NOT NULL, contracts TEXT NOT NULL,
    pnl TEXT NOT NULL, fees TEXT NOT NULL, reason TEXT NOT NULL,
    UNIQUE (profile, symbol, opened_ms));
CREATE TABLE IF NOT EXISTS pending (
    profile TEXT PRIMARY KEY, now_ms INTEGER NOT NULL, plan TEXT NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS repairs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, profile TEXT NOT NULL,
    symbol TEXT NOT NULL, problem TEXT NOT NULL, action TEXT NOT NULL);
"""


def _enc(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return {"$d": format(obj, "f")}
    raise TypeError(f"cannot store {type(obj).__name__}")


def _dec(obj: dict[str, Any]) -> Any:
    if set(obj) == {"$d"}:
        return Decimal(obj["$d"])
    return obj


def dumps(value: Any) -> str:
    return json.dumps(value, default=_enc, sort_keys=True, separators=(",", ":"))


def loads(text: str) -> Any:
    return json.loads(text, object_hook=_dec)


@dataclass
class PositionMeta:
    """What we remember about one open position beyond what the exchange reports."""

    symbol: str
    side: str
    opened_ms: int
    initial_notional: Decimal
    planned_notional: Decimal = Decimal(0)
    stages_done: int = 0
    last_add_ms: int | None = None
    runner_active: bool = False
    runner_best: Decimal | None = None
    breakeven: bool = False
    runner_candle_ts: int = 0
    runner_cid: int = 0  # client id of the runner's resting take-profit
    close_seq: int = 0  # market closes planned so far (each attempt is its own intent)
    stop_version: int = 0
    stop_trigger: Decimal | None = None
    stop_entry: Decimal | None = None  # entry price the stop was computed for
    exit_version: int = 0
    exit_phase: str = ""
    ladder_base: Decimal = Decimal(0)  # position size the exit ladder was planned for
    frozen_signature: str = ""
    contracts: Decimal = Decimal(0)  # size seen at the last cycle
    entry_price: Decimal = Decimal(0)
    adopted: bool = False  # found on the exchange without local state
    exits_missing_since: int | None = None  # first cycle its wanted exit orders were not resting
    exits_reported: bool = False  # the exit-coverage warning went out for this episode
    # controlled-loss exit (engine/exits/controlled_loss.py): the ramp and the loss it realized
    cl_started_ms: int | None = None  # when the position became a zombie (None: not one now)
    cl_last_ms: int = 0  # the last cycle the ramp advanced
    cl_progress: float = 0.0  # ramp minutes so far, speed-weighted
    cl_priced_ms: int | None = None  # when the order was last priced
    cl_priced_fraction: float = 0.0  # ramp fraction at that pricing
    cl_step: int = 0  # pricings so far (part of the exit phase)
    cl_price: Decimal | None = None  # the priced order
    cl_amount: Decimal = Decimal(0)
    cl_priced_contracts: Decimal = Decimal(0)  # position size at that pricing
    cl_contracts: Decimal = Decimal(0)  # position size at the last cycle (loss tracking)
    cl_spent: Decimal = Decimal(0)  # loss realized by controlled-loss fills of this position
    # soft-defensive exit (engine/exits/soft_defensive.py)
    sd_signal_ts: int = 0  # candle of the last signal update counted
    sd_confirmations: int = 0  # consecutive updates meeting the conditions
    sd_fraction: float = 0.0  # share of sd_base to have closed (0: not active)
    sd_base: Decimal = Decimal(0)  # position size when the exit started
    sd_priced_ms: int = 0
    sd_step: int = 0
    # breakeven mode: when it started (the re-price epochs of EMA_BREAKEVEN_REPRICE_MINUTES)
    breakeven_ms: int | None = None
    # runner closed by an aggressive limit (EMA_EXIT_RUNNER_USE_AGGRESSIVE_LIMIT): the order,
    # its amount and the position size when it went out; what is unfilled a cycle later goes
    # at market
    runner_close_cid: int = 0
    runner_close_amount: Decimal = Decimal(0)
    runner_close_base: Decimal = Decimal(0)
    # hard time exit paid by the profit bank (HARD_TIME_EXIT_BYPASS_PROFIT_BANK off): the step
    # whose loss-taking order went out, its price and the size at the last cycle (loss tracking)
    te_fraction: float = 0.0
    te_price: Decimal | None = None
    te_contracts: Decimal = Decimal(0)
    # the operator's limit close (engine/runtime/manual.py): while set, the exit planner keeps
    # one reduce-only limit at this price for the whole position in place of the exit ladder
    manual_close_price: Decimal | None = None

    @property
    def pos_id(self) -> str:
        return f"{self.symbol}@{self.opened_ms}"


@dataclass
class LadderMeta:
    """A live entry (or averaging) ladder: when it went out and what it was meant to buy."""

    symbol: str
    created_ms: int
    planned_notional: Decimal
    purpose: str  # entry | add
    key: str  # intent key prefix of its orders
    client_ids: list[int] = field(default_factory=list)


@dataclass
class ProfileState:
    positions: dict[str, PositionMeta] = field(default_factory=dict)
    ladders: dict[str, LadderMeta] = field(default_factory=dict)
    cooldown_until: dict[str, int] = field(default_factory=dict)
    ladder_times: list[int] = field(default_factory=list)
    last_cycle_ms: int = 0


def state_to_json(st: ProfileState) -> str:
    return dumps({"positions": {k: asdict(v) for k, v in st.positions.items()},
                  "ladders": {k: asdict(v) for k, v in st.ladders.items()},
                  "cooldown_until": st.cooldown_until, "ladder_times": st.ladder_times,
                  "last_cycle_ms": st.last_cycle_ms})


def state_from_json(text: str) -> ProfileState:
    d = loads(text)
    return ProfileState(
        positions={k: PositionMeta(**v) for k, v in d["positions"].items()},
        ladders={k: LadderMeta(**v) for k, v in d["ladders"].items()},
        cooldown_until={k: int(v) for k, v in d["cooldown_until"].items()},
        ladder_times=[int(t) for t in d["ladder_times"]],
        last_cycle_ms=int(d["last_cycle_ms"]))


APPLICATION_ID = 0x43524F54  # "CROT" in the SQLite header: marks a file as a CROT state database
_CORE_TABLES = ("positions", "orders")  # a state file made before the mark has at least these


class StateFileError(RuntimeError):
    """The state file cannot be used: not SQLite, damaged, locked, or another program's
    database. The message is one line naming the file and what to do."""


@cache
def _schema_columns() -> dict[str, set[str]]:
    """Columns of every table in SCHEMA (read from SQLite itself, so a new table is known)."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(SCHEMA)
        tables = [r[0] for r in mem.execute("SELECT name FROM sqlite_master WHERE type='table'"
                                            " AND name NOT LIKE 'sqlite_%'")]
        return {t: {r[1] for r in mem.execute(f"PRAGMA table_info({t})")} for t in tables}
    finally:
        mem.close()


async def _check_ours(db: aiosqlite.Connection | InlineConnection, path: str) -> None:
    """Refuse a file that is not (or no longer) a CROT state database; mark a new one."""
    async with db.execute("PRAGMA quick_check") as cur:
        verdict = [r[0] for r in await cur.fetchall()]
    if verdict != ["ok"]:
        raise StateFileError(f"state file {path} is damaged (SQLite: {verdict[0] if verdict else '?'}); "
                             "move it away to start with an empty state")
    async with db.execute("PRAGMA application_id") as cur:
        app_id = int((await cur.fetchone())[0])
    async with db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'") as cur:
        tables = {r[0] for r in await cur.fetchall()}
    foreign = f"state file {path} is not a CROT state database"
    if app_id not in (0, APPLICATION_ID):
        raise StateFileError(f"{foreign} (application id {app_id:#x}); point DATA_DIR or --db elsewhere")
    expected = _schema_columns()
    if app_id == 0 and tables and not set(_CORE_TABLES) <= tables:
        shown = ", ".join(sorted(tables)[:5])
        raise StateFileError(f"{foreign} (it holds other tables: {shown}); point DATA_DIR or --db elsewhere")
    for table in sorted(tables & set(expected)):
        async with db.execute(f"PRAGMA table_info({table})") as cur:
            have = {r[1] for r in await cur.fetchall()}
        missing = expected[table] - have
        if missing:
            raise StateFileError(f"{foreign} or was made by an incompatible version (table {table} lacks "
                                 f"{', '.join(sorted(missing))}); point DATA_DIR or --db elsewhere")
    if app_id == 0:
        await db.execute(f"PRAGMA application_id={APPLICATION_ID}")


async def _close_quietly(db: aiosqlite.Connection | InlineConnection) -> None:
    """Close a connection whose setup failed; its worker thread must end even then."""
    try:
        await db.close()
    except BaseException:
        db.stop()  # close() failed half-way: make sure the worker thread still ends


ACCOUNT_KEY = "*account*"  # profile_kv rows that belong to the account, not to one profile


class StateStore:
    def __init__(self, db: aiosqlite.Connection | InlineConnection):
        self.db = db

    @classmethod
    async def open(cls, path: str | Path, *, inline: bool = False) -> "StateStore":
        """Open (or create) the state database. A file that cannot be used raises
        StateFileError at once, and the connection's worker thread is stopped.

        `inline`: run the SQL in the calling thread (replay: engine/store/inline_sqlite.py);
        live and paper keep aiosqlite, so a slow disk never stalls the event loop."""
        shown = str(path)
        if shown != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateFileError(f"cannot create the folder of state file {shown}: {exc.strerror}") from None
        try:
            db = (InlineConnection.connect(shown, isolation_level=None) if inline
                  else await aiosqlite.connect(shown, isolation_level=None))
        except (sqlite3.Error, OSError) as exc:
            raise StateFileError(f"cannot open state file {shown}: {exc}") from None
        try:
            await db.execute("PRAGMA busy_timeout=5000")
            await _check_ours(db, shown)
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.executescript(SCHEMA)
        except BaseException as exc:
            await _close_quietly(db)
            if isinstance(exc, StateFileError):
                raise
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise StateFileError(f"state file {shown} is locked by another program; "
                                     "stop it first") from None
            if isinstance(exc, sqlite3.Error):
                raise StateFileError(f"state file {shown} is not a usable SQLite database ({exc}); "
                                     "move it away to start with an empty state") from None
            raise
        return cls(db)

    async def close(self) -> None:
        await self.db.close()

    async def load_profile(self, profile: str) -> ProfileState:
        st = ProfileState()
        async with self.db.execute("SELECT symbol, data FROM positions WHERE profile=?", (profile,)) as cur:
            async for symbol, data in cur:
                st.positions[symbol] = PositionMeta(**loads(data))
        async with self.db.execute("SELECT symbol, data FROM ladders WHERE profile=?", (profile,)) as cur:
            async for symbol, data in cur:
                st.ladders[symbol] = LadderMeta(**loads(data))
        async with self.db.execute("SELECT key, value FROM profile_kv WHERE profile=?", (profile,)) as cur:
            kv = {k: loads(v) async for k, v in cur}
        st.cooldown_until = {k: int(v) for k, v in kv.get("cooldown_until", {}).items()}
        st.ladder_times = [int(t) for t in kv.get("ladder_times", [])]
        st.last_cycle_ms = int(kv.get("last_cycle_ms", 0))
        return st

    async def save_pending(self, profile: str, now_ms: int, plan: str, st: ProfileState) -> None:
        """Write-ahead: the cycle's planned actions and the state they lead to, saved before
        any of them is sent. A crash mid-cycle resumes this plan instead of planning anew."""
        await self.db.execute(
            "INSERT OR REPLACE INTO pending (profile, now_ms, plan, state) VALUES (?,?,?,?)",
            (profile, now_ms, plan, state_to_json(st)))

    async def load_pending(self, profile: str) -> tuple[int, str, ProfileState] | None:
        async with self.db.execute("SELECT now_ms, plan, state FROM pending WHERE profile=?", (profile,)) as cur:
            row = await cur.fetchone()
        return None if row is None else (int(row[0]), row[1], state_from_json(row[2]))

    async def save_profile(self, profile: str, st: ProfileState) -> None:
        """Replace the profile's state and clear its pending plan, in one transaction."""
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            await self.db.execute("DELETE FROM pending WHERE profile=?", (profile,))
            await self.db.execute("DELETE FROM positions WHERE profile=?", (profile,))
            await self.db.execute("DELETE FROM ladders WHERE profile=?", (profile,))
            await self.db.executemany(
                "INSERT INTO positions (profile, symbol, data) VALUES (?, ?, ?)",
                [(profile, s, dumps(asdict(m))) for s, m in st.positions.items()])
            await self.db.executemany(
                "INSERT INTO ladders (profile, symbol, data) VALUES (?, ?, ?)",
                [(profile, s, dumps(asdict(m))) for s, m in st.ladders.items()])
            await self.db.executemany(
                "INSERT OR REPLACE INTO profile_kv (profile, key, value) VALUES (?, ?, ?)",
                [(profile, "cooldown_until", dumps(st.cooldown_until)),
                 (profile, "ladder_times", dumps(st.ladder_times)),
                 (profile, "last_cycle_ms", dumps(st.last_cycle_ms))])
            await self.db.execute("COMMIT")
        except BaseException:
            await self.db.execute("ROLLBACK")
            raise

    async def _put(self, profile: str, key: str, value: Any) -> None:
        await self.db.execute("INSERT OR REPLACE INTO profile_kv (profile, key, value) VALUES (?, ?, ?)",
                              (profile, key, dumps(value)))

    async def _get(self, profile: str, key: str) -> Any:
        """The stored value of one profile_kv row, or None."""
        async with self.db.execute("SELECT value FROM profile_kv WHERE profile=? AND key=?", (profile, key)) as cur:
            row = await cur.fetchone()
        return None if row is None else loads(row[0])

    async def save_unprotected(self, profile: str, since_ms: dict[str, int]) -> None:
        """When each position of `profile` was first seen without a confirmed stop. Kept apart
        from the cycle state (written at once, not at the end of a cycle) so a restart resumes
        the bounded close-out time instead of starting it again."""
        await self._put(profile, "unprotected_since", since_ms)

    async def save_protections(self, data: dict[str, Any]) -> None:
        """The account protections' locks and equity window (engine/risk/protections.py),
        written when they change so a restart keeps a lock in force."""
        await self._put(ACCOUNT_KEY, "protections", data)

    async def save_controls(self, enabled: dict[str, bool], paused: bool, frozen: list[str] | None = None) -> None:
        """The operator's switches (profile on/off, entries paused, frozen symbols): a restart,
        a crash or a watchdog restart comes back with them as they were."""
        await self._put(ACCOUNT_KEY, "controls", {"enabled": enabled, "paused": paused, "frozen": sorted(frozen or ())})

    async def load_controls(self) -> tuple[dict[str, bool], bool, list[str]] | None:
        """(profile switches, paused, frozen symbols) as stored, or None."""
        data = await self._get(ACCOUNT_KEY, "controls")
        if data is None:
            return None
        return ({str(k): bool(v) for k, v in data.get("enabled", {}).items()}, bool(data.get("paused", False)),
                [str(s) for s in data.get("frozen", [])])

    async def load_protections(self) -> dict[str, Any] | None:
        return await self._get(ACCOUNT_KEY, "protections")

    async def load_unprotected(self, profile: str) -> dict[str, int]:
        data = await self._get(profile, "unprotected_since")
        return {} if data is None else {str(k): int(v) for k, v in data.items()}

    async def record_intent(self, *, client_order_id: int, profile: str, symbol: str, purpose: str,
                            intent_key: str, side: str, price: Decimal | None, amount: Decimal,
                            now_ms: int) -> None:
        """Written before an order is sent; a repeat of the same intent is a no-op."""
        await self.db.execute(
            "INSERT OR IGNORE INTO orders (client_order_id, profile, symbol, purpose, intent_key, side,"
            " price, amount, status, created_ms, updated_ms) VALUES (?,?,?,?,?,?,?,?,'sending',?,?)",
            (client_order_id, profile, symbol, purpose, intent_key, side,
             None if price is None else format(price, "f"), format(amount, "f"), now_ms, now_ms))

    async def update_order(self, client_order_id: int, status: str, now_ms: int,
                           exchange_id: str | None = None, note: str = "") -> None:
        await self.db.execute(
            "UPDATE orders SET status=?, updated_ms=?, exchange_id=COALESCE(?, exchange_id),"
            " note=CASE WHEN ?='' THEN note ELSE ? END WHERE client_order_id=?",
            (status, now_ms, exchange_id, note, note, client_order_id))

    async def order_purpose(self, client_order_id: int) -> tuple[str, str, str] | None:
        """(profile, purpose, intent_key) of one of our orders, or None if it is not ours."""
        async with self.db.execute(
                "SELECT profile, purpose, intent_key FROM orders WHERE client_order_id=?",
                (client_order_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else (row[0], row[1], row[2])

    async def order_purpose_of_fill(self, client_order_id: int | None,
                                    order_id: str | None) -> tuple[str, str, str] | None:
        """Whose order a fill belongs to: by its client id, or else by the venue's order id,
        which is stored with every order we placed (a venue's fill record may carry only the
        order id, and a process restart loses any in-memory map from one to the other)."""
        if client_order_id:
            known = await self.order_purpose(client_order_id)
            if known is not None:
                return known
        if not order_id:
            return None
        async with self.db.execute(
                "SELECT profile, purpose, intent_key FROM orders WHERE exchange_id=? ORDER BY updated_ms DESC"
                " LIMIT 1", (str(order_id),)) as cur:
            row = await cur.fetchone()
        return None if row is None else (row[0], row[1], row[2])

    async def record_trade(self, *, profile: str, symbol: str, side: str, opened_ms: int, closed_ms: int,
                           entry_price: Decimal, exit_price: Decimal, contracts: Decimal, pnl: Decimal,
                           fees: Decimal, reason: str) -> bool:
        """Returns False when this trade was already recorded (a replayed close after restart)."""
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO trades (profile, symbol, side, opened_ms, closed_ms, entry_price,"
            " exit_price, contracts, pnl, fees, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (profile, symbol, side, opened_ms, closed_ms, format(entry_price, "f"), format(exit_price, "f"),
             format(contracts, "f"), format(pnl, "f"), format(fees, "f"), reason))
        return cur.rowcount == 1

    async def trades(self, profile: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT profile, symbol, side, opened_ms, closed_ms, entry_price, exit_price, contracts, pnl," \
              " fees, reason FROM trades"
        args: tuple[Any, ...] = ()
        if profile:
            sql += " WHERE profile=?"
            args = (profile,)
        sql += " ORDER BY closed_ms, id"
        async with self.db.execute(sql, args) as cur:
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row)) async for row in cur]

    async def record_repair(self, ts_ms: int, profile: str, symbol: str, problem: str, action: str) -> None:
        await self.db.execute(
            "INSERT INTO repairs (ts_ms, profile, symbol, problem, action) VALUES (?,?,?,?,?)",
            (ts_ms, profile, symbol, problem, action))
