"""Settings group `runtime`: Runtime."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import AlwaysOn, FolderPath, ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class RuntimeSettings(BaseModel):
    """Per-side `runtime` settings (none today: one state database and one market list serve
    both profiles, so STATE_FILE and MARKETS_CACHE_FILE are process-wide)."""


class RuntimeGlobalSettings(BaseModel):
    """Process-wide `runtime` settings."""

    data_dir: FolderPath = setting(
        "data",
        "Folder for the state database, audit files and logs (relative to the working directory).",
        group="runtime", scope="global",
    )
    state_file: Str = setting(
        '',
        "Live state database (SQLite); paper adds .paper before the extension; empty = DATA_DIR/live.sqlite and "
        "paper.sqlite. The control socket sits beside it.",
        group="runtime", scope="global",
    )
    markets_cache_file: Str = setting(
        '',
        "Cached HTX markets (JSON), reused at start while younger than MARKETS_CACHE_MAX_AGE_SEC; empty = "
        "DATA_DIR/htx_markets.json.",
        group="runtime", scope="global",
    )
    dry_run: bool = setting(
        False,
        "Paper mode: simulate fills on live HTX prices instead of sending orders (no keys needed).",
        group="runtime", scope="global",
    )
    dry_run_equity: float = setting(
        1000.0,
        "Starting equity of the simulated account in paper mode and replays.",
        group="runtime", scope="global", unit="USDT", gt=0,
    )
    order_timeout_sec: int = setting(
        90,
        "Entry orders older than this are treated as stale and cancelled.",
        group="runtime", scope="global", unit="seconds", gt=0,
    )
    poll_interval_sec: int = setting(
        3,
        "Time between trading cycles.",
        group="runtime", scope="global", unit="seconds", ge=1,
    )
    market_data_max_workers: int = setting(
        8,
        "Maximum parallel candle requests per cycle.",
        group="runtime", scope="global", unit="count", ge=1,
    )
    post_only_enabled: AlwaysOn = setting(
        True,
        "Send entry limit orders as post-only (maker only).",
        group="runtime", scope="global",
    )
    reduce_only_enabled: AlwaysOn = setting(
        True,
        "Send all exits as reduce-only; when off the bot refuses to place exits.",
        group="runtime", scope="global",
    )
    fetch_fill_details_on_sync: bool = setting(
        True,
        "Read fills at sync for exact trade prices, fees and fill events; off: trades priced from entry and "
        "the close order's average, fees from the fee rates.",
        group="runtime", scope="global",
    )
    fill_detail_lookback_sec: int = setting(
        21600,
        "No fill older than this is read at sync (the first cycle after a start reads this window); 0 = no "
        "bound.",
        group="runtime", scope="global", unit="seconds", ge=0,
    )
