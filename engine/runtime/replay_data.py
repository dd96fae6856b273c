"""What a replay reads from its data folder, checked before anything runs.

Layout of a replay folder (names as ``engine.market.feeds`` parses them; ``.csv`` or ``.csv.gz``):

    <BASE>_USDT_USDT-5m-futures.csv[.gz]        traded perps: timestamp_ms,open,high,low,close,volume
    <GOLD>_USDT[_USDT]-5m[-futures].csv[.gz]    the gold proxy (GOLD_COINS): read, never traded
    <BASE>_USDT_USDT-8h-funding_rate.csv[.gz]   funding events: timestamp_ms,funding_rate
    reference/<BASE>_USDT_USDT-5m-futures.csv[.gz]  a second venue's candles: the cross-exchange
                                                reference (premium) in place of MEXC's book
    replay.env                                  settings this data needs (e.g. GOLD_COINS=paxg);
                                                a key set in the user's .env wins
    replay.timerange                            the default --timerange (e.g. 20240724-): the
                                                candles before its start are the warm-up

Every problem is a ``ReplayDataError`` with one line naming what is wrong and what exists.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from engine.market.feeds import read_funding_csv, recorded_files
from engine.settings import Settings
from engine.settings.envfile import parse_lines
from engine.settings.loader import lookup, validate_value

__all__ = [
    "DATA_SETTINGS_FILE", "REFERENCE_DIR", "TIMERANGE_FILE", "ReplayDataError", "apply_data_settings",
    "check_fresh_state", "folder_timerange", "load_funding", "parse_timerange", "resolve_symbols_arg", "traded_candidates", "utc",
]

REFERENCE_DIR = "reference"
DATA_SETTINGS_FILE = "replay.env"
TIMERANGE_FILE = "replay.timerange"


class ReplayDataError(ValueError):
    """A replay input that cannot be used; the message is one line for the user."""


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _day(text: str, what: str) -> int:
    try:
        d = datetime.strptime(text, "%Y%m%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ReplayDataError(f"--timerange: {what} {text!r} is not a date YYYYMMDD "
                              "(expected e.g. 20240801-20240809)") from None
    return int(d.timestamp() * 1000)


def parse_timerange(text: str | None) -> tuple[int | None, int | None]:
    """'20240801-20240809' -> (Aug 1 00:00, Aug 9 00:00) UTC in ms: candles that OPEN in
    [start, end) are replayed; either side may be left open ('20240801-', '-20240809')."""
    if text is None or text.strip() == "":
        return None, None
    a, sep, b = text.strip().partition("-")
    if not sep:
        raise ReplayDataError(f"--timerange {text!r}: expected START-END as YYYYMMDD-YYYYMMDD, e.g. 20240801-20240809")
    start = _day(a, "start") if a else None
    end = _day(b, "end") if b else None
    if start is None and end is None:
        raise ReplayDataError(f"--timerange {text!r}: give a start, an end or both, e.g. 20240801-20240809")
    if start is not None and end is not None and end <= start:
        raise ReplayDataError(f"--timerange {text!r}: the end must be after the start")
    return start, end


def folder_timerange(data_dir: str | Path) -> tuple[int | None, int | None]:
    """The folder's default time range (``replay.timerange``, one line), or (None, None)."""
    path = Path(data_dir) / TIMERANGE_FILE
    if not path.is_file():
        return None, None
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    try:
        return parse_timerange(lines[0] if lines else "")
    except ReplayDataError as exc:
        raise ReplayDataError(f"{path}: {exc}") from None


def traded_candidates(data_dir: str | Path, timeframe: str) -> list[str]:
    """Symbols with trade candles of ``timeframe`` in the folder (not its sub-folders)."""
    d = Path(data_dir)
    if not d.is_dir():
        raise ReplayDataError(f"--data {d}: no such folder")
    found = [f.symbol for f in recorded_files(d) if f.timeframe == timeframe and f.kind in ("spot", "futures")]
    if not found:
        other = sorted({f"{f.timeframe} {f.kind}" for f in recorded_files(d)})
        raise ReplayDataError(
            f"--data {d}: no recorded {timeframe} candle files (expected names like "
            f"BTC_USDT_USDT-{timeframe}-futures.csv or .csv.gz)"
            + (f"; found only: {', '.join(other)}" if other else "; the folder has none"))
    return found


def resolve_symbols_arg(requested: Iterable[str], available: Sequence[str], data_dir: str | Path) -> list[str]:
    """Map 'BTC', 'BTC/USDT', 'btcusdt' or 'BTC/USDT:USDT' to the recorded symbol; unknown or
    ambiguous names raise with the list of what is recorded."""
    out: list[str] = []
    unknown: list[str] = []
    for raw in requested:
        name = raw.strip()
        if not name:
            continue
        if name in available:
            out.append(name)
            continue
        key = name.upper().replace(":USDT", "").replace("/", "").replace("-", "").replace("_", "")
        hits = [s for s in available
                if key in (s.split("/")[0].upper(), s.split(":")[0].replace("/", "").upper())]
        perps = [s for s in hits if ":" in s]
        pick = perps if len(perps) == 1 else hits
        if len(pick) == 1:
            out.append(pick[0])
        else:
            unknown.append(name)
    if unknown:
        raise ReplayDataError(f"--symbols: {', '.join(unknown)} not recorded in {data_dir}; "
                              f"recorded: {', '.join(_short(s) for s in available)}")
    if not out:
        raise ReplayDataError(f"--symbols: no symbol given; recorded: {', '.join(_short(s) for s in available)}")
    return list(dict.fromkeys(out))


def _short(symbol: str) -> str:
    return symbol.split("/")[0] if symbol.endswith("/USDT:USDT") else symbol


def apply_data_settings(settings: Settings, data_dir: str | Path) -> tuple[Settings, dict[str, str]]:
    """The settings with the data folder's ``replay.env`` applied to every key the user did
    not set (``settings.source``); returns them and the applied keys (to be shown)."""
    path = Path(data_dir) / DATA_SETTINGS_FILE
    if not path.is_file():
        return settings, {}
    assignments, errors = parse_lines(path.read_text(encoding="utf-8").splitlines())
    if errors:
        raise ReplayDataError(f"{path}:{errors[0].line_no}: {errors[0].reason}")
    applied: dict[str, str] = {}
    glob_update: dict[str, object] = {}
    side_update: dict[str, object] = {}
    for a in assignments:
        if a.key in settings.source:
            continue
        info = lookup(a.key)
        if info is None or info.key != a.key:
            raise ReplayDataError(f"{path}:{a.line_no}: {a.key} is not a setting (per-side keys are not allowed here)")
        try:
            value = validate_value(a.key, a.value)
        except ValueError as exc:
            raise ReplayDataError(f"{path}:{a.line_no}: {exc}") from None
        (glob_update if info.scope == "global" else side_update)[info.name] = value
        applied[a.key] = a.value
    if not applied:
        return settings, {}
    glob = settings.glob.model_copy(update=glob_update) if glob_update else settings.glob
    profiles = {s: p.model_copy(update=side_update) for s, p in settings.profiles.items()}
    return Settings(glob, profiles, settings.source), applied


def load_funding(data_dir: str | Path, symbols: Iterable[str]) -> dict[str, list[tuple[int, Decimal]]]:
    """Recorded funding events of the traded ``symbols`` (those that have a funding file)."""
    wanted = set(symbols)
    out: dict[str, list[tuple[int, Decimal]]] = {}
    for f in recorded_files(data_dir):
        if f.kind == "funding_rate" and f.symbol in wanted:
            if f.symbol in out:
                raise ReplayDataError(f"{data_dir}: two funding files for {f.symbol}")
            try:
                out[f.symbol] = [(t, Decimal(repr(r))) for t, r in read_funding_csv(f.path)]
            except ValueError as exc:
                raise ReplayDataError(str(exc)) from None
    return out


_STATE_TABLES = ("orders", "trades", "positions", "pending")


def check_fresh_state(db_path: str | Path) -> None:
    """Refuse a ``--db`` that already holds a replay's state: the simulated exchange lives in
    memory, so "resuming" would pair the old positions and trades with a fresh account and
    report a different PnL."""
    if str(db_path) == ":memory:":
        return
    p = Path(db_path)
    if not p.exists() or p.stat().st_size == 0:
        return
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            rows = {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in _STATE_TABLES if t in names}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise ReplayDataError(f"--db {p}: not a CROT state file ({exc})") from None
    used = {t: n for t, n in rows.items() if n}
    if used:
        what = ", ".join(f"{n} {t}" for t, n in used.items())
        raise ReplayDataError(f"--db {p} already holds a replay's state ({what}); a replay cannot resume "
                              "its simulated exchange after a stop: use a new --db file or delete this one")
