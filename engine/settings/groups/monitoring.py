"""Settings group `monitoring`: Monitoring, logs and audit files."""

from typing import Literal  # noqa: F401

from pydantic import BaseModel, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, float_list, setting  # noqa: F401


class MonitoringSettings(BaseModel):
    """Per-side `monitoring` settings."""

    cycle_stats_csv_file: Str = setting(
        '',
        "Per-profile CSV of closed-cycle stats; empty = computed from the profile's data directory.",
        group="monitoring",
    )
    csv_log_file: Str = setting(
        '',
        "Per-profile trade-event CSV log; empty = computed from the profile's data directory.",
        group="monitoring",
    )
    macro_csv_file: Str = setting(
        '',
        "Per-profile macro-context history CSV; empty = computed from the profile's data directory.",
        group="monitoring",
    )
    external_price_csv_file: Str = setting(
        '',
        "Per-profile cross-exchange price feed CSV; empty = computed from the profile's data directory.",
        group="monitoring",
    )
    account_pnl_csv_file: Str = setting(
        '',
        "Per-profile account-PnL CSV; empty = computed from the profile's data directory.",
        group="monitoring",
    )
    signal_analytics_csv_file: Str = setting(
        '',
        "Per-profile signal analytics CSV; empty = computed from the profile's data directory.",
        group="monitoring",
    )
    signal_analytics_jsonl_file: Str = setting(
        '',
        "Per-profile signal analytics JSONL; empty = computed from the profile's data directory.",
        group="monitoring",
    )
    diagnostics_csv_file: Str = setting(
        '',
        "Per-profile diagnostics CSV; empty = computed from the profile's data directory.",
        group="monitoring",
    )
    diagnostics_jsonl_file: Str = setting(
        '',
        "Per-profile diagnostics JSONL; empty = computed from the profile's data directory.",
        group="monitoring",
    )


class MonitoringGlobalSettings(BaseModel):
    """Process-wide `monitoring` settings."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = setting(
        'INFO',
        "Minimum level of log messages written; one of: DEBUG, INFO, WARNING, ERROR.",
        group="monitoring", scope="global",
    )
    csv_archive_dir: Str = setting(
        '',
        "Directory for rotated CSV files; relative = under the profile dir; empty = computed (csv_archive).",
        group="monitoring", scope="global",
    )
    csv_rotate_max_bytes: int = setting(
        1048576,
        "A CSV log larger than this is rotated into the archive directory.",
        group="monitoring", scope="global", unit="bytes", gt=0,
    )
