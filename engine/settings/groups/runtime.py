"""Settings group `runtime`: Runtime."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import AlwaysOn, FolderPath, ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class RuntimeSettings(BaseModel):
    """Per-side `runtime` settings."""

    state_file: Str = setting(
        '',
        "Per-profile state file; empty = computed from the profile's data directory.",
        group="runtime", planned=True,
    )
    markets_cache_file: Str = setting(
        '',
        "Per-profile cached exchange markets file; empty = computed from the profile's data directory.",
        group="runtime", planned=True,
    )


class RuntimeGlobalSettings(BaseModel):
    """Process-wide `runtime` settings."""

    data_dir: FolderPath = setting(
        "data",
        "Folder for the state database, audit files and logs (relative to the working directory).",
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
        "Maximum parallel market-data requests per cycle.",
        group="runtime", planned=True, scope="global", unit="count", ge=1,
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
        "Fetch individual fills during state sync for exact prices and fees.",
        group="runtime", planned=True, scope="global",
    )
    fill_detail_lookback_sec: int = setting(
        21600,
        "How far back fill details are fetched during state sync.",
        group="runtime", planned=True, scope="global", unit="seconds", ge=0,
    )
