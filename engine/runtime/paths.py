"""Where a live or paper bot keeps its files, in one place: the bot, its control socket and
the tools that look for them (crot-tui --no-ui / --attach) must agree on the same paths.

STATE_FILE and MARKETS_CACHE_FILE are process-wide: one bot has one state database and one
HTX market list for both profiles (the loader refuses LONG_/SHORT_ values of them).
Relative paths are relative to the working directory, like DATA_DIR.
"""

from __future__ import annotations

from pathlib import Path

from engine.settings import Settings

MARKETS_CACHE_NAME = "htx_markets.json"


class PathSettingError(ValueError):
    """A path setting that cannot be used (one line naming the keys)."""


def state_db_path(settings: Settings, mode: str) -> Path:
    """The state database of a live or paper bot: STATE_FILE for live, the same name with
    `.paper` before the extension for paper (simulated positions never enter the live
    record); unset: DATA_DIR/live.sqlite and DATA_DIR/paper.sqlite."""
    if mode not in ("live", "paper"):
        raise ValueError(f"no state database for mode {mode!r}")
    value = settings.glob.state_file
    if not value:
        return Path(settings.glob.data_dir) / f"{mode}.sqlite"
    p = Path(value).expanduser()
    if p.is_dir():
        raise PathSettingError(f"STATE_FILE={value!r} is a folder; give the path of the database file")
    return p if mode == "live" else p.with_name(f"{p.stem}.paper{p.suffix}")


def control_socket_path(settings: Settings, mode: str) -> Path:
    """The control socket of a bot run with `settings` in `mode`: next to its state database
    (demo: DATA_DIR/demo.sock), as an absolute path."""
    if mode == "demo":
        return (Path(settings.glob.data_dir) / "demo.sock").absolute()
    from .control import default_socket_path

    return default_socket_path(state_db_path(settings, mode)).absolute()


def check_paths(settings: Settings) -> str | None:
    """The one-line problem with STATE_FILE or MARKETS_CACHE_FILE, None when both are usable."""
    try:
        state_db_path(settings, "live")
        markets_cache_path(settings)
    except PathSettingError as exc:
        return str(exc)
    return None


def markets_cache_path(settings: Settings) -> Path:
    """MARKETS_CACHE_FILE, or DATA_DIR/htx_markets.json when it is empty."""
    value = settings.glob.markets_cache_file
    return Path(value).expanduser() if value else Path(settings.glob.data_dir) / MARKETS_CACHE_NAME
