"""Settings group `monitoring`: Monitoring, logs and audit files."""

from typing import Annotated, Literal  # noqa: F401

from pydantic import BaseModel, BeforeValidator, SecretStr  # noqa: F401

from ..fields import ProfileList, Str, Timeframe, WordList, _lower_list, float_list, setting  # noqa: F401

SignalFileList = Annotated[tuple[Literal["csv", "jsonl"], ...], BeforeValidator(_lower_list)]
"""Which live signal files are written, e.g. `csv,jsonl`; empty = none."""


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
    audit_signal_files: SignalFileList = setting(
        (),
        "Signal files also written live beside the audit SQLite: csv, jsonl, both or empty (none; "
        "`crot audit export` writes them from the SQLite on demand).",
        group="monitoring", scope="global",
    )
    audit_rotate_max_bytes: int = setting(
        268435456,
        "The audit SQLite is moved to audit_archive/ and a new one begun once it is larger than this.",
        group="monitoring", scope="global", unit="bytes", gt=0,
    )
    audit_rotate_max_age_hours: float = setting(
        168.0,
        "Every audit file (SQLite, CSV, JSONL) is rotated once it has been written this long; 0 = by size only.",
        group="monitoring", scope="global", unit="hours", ge=0,
    )
    audit_retention_days: float = setting(
        90.0,
        "Rotated audit files whose newest row is older than this are deleted; 0 = kept (AUDIT_MAX_BYTES still applies).",
        group="monitoring", scope="global", unit="days", ge=0,
    )
    audit_max_bytes: int = setting(
        2147483648,
        "Total size of the audit record (current and rotated files); beyond it the oldest rotated files are deleted.",
        group="monitoring", scope="global", unit="bytes", gt=0,
    )
    audit_min_free_bytes: int = setting(
        536870912,
        "Free disk below this: 'disk full', new entries stop, bulk audit rows are held back, trades, orders and "
        "stops still written; 0 = only a failed write.",
        group="monitoring", scope="global", unit="bytes", ge=0,
    )
