"""Column lists of the audit trail: one source for the CSV headers, the SQLite tables and the
analysis loaders.

Streams (file name in a profile directory / SQLite table):

=============  =========================================  ==================  ==========
stream         files                                      table               scope
=============  =========================================  ==================  ==========
trades         trades.csv                                 audit_trades        profile
cycles         cycle_stats.csv                            audit_cycles        profile
signals        signal_analytics.csv + .jsonl (optional)   audit_signals (*)   profile
diagnostics    diagnostics.csv + .jsonl                   audit_diagnostics   profile
account        account_pnl.csv                            audit_account       global
macro          macro.csv                                  audit_macro         global
external       external_prices.csv                        audit_external      global
=============  =========================================  ==================  ==========

(*) schema 2 stores signals compactly in ``audit_signal_rows`` and friends (see
``audit_signals``); ``audit_signals`` is a view with the schema-1 columns below.

``ts_ms`` is the event time in epoch milliseconds and ``time`` the same instant in UTC ISO-8601;
for signals ``ts_ms`` is the OPEN time of the closed candle the decision was made on and
``cycle_ms`` the time of the cycle that published it. Decimals are written exactly, NaN as an
empty field (NULL), infinities as 'inf' / '-inf', booleans as true/false (0/1 in SQLite).

Global streams are written into every profile directory (each folder is a complete record)
and once into SQLite. The signal CSV has, after ``SIGNAL_COLUMNS``, three columns per gate
(``<gate>_value``, ``<gate>_threshold``, ``<gate>_passed``, gates in order of first
appearance) and then one column per strategy feature (``f_<feature>``). The signal JSONL and
the SQLite row carry the complete gate list (``gates``: name, value, threshold, passed, kind,
op, detail, score_delta, score_factor) and the feature dict (``features``); diagnostics JSONL
and SQLite carry the event's full record (``record``).
"""

from __future__ import annotations

from engine.strategy.features import FEATURE_FIELDS

TRADE_COLUMNS: tuple[str, ...] = (
    "ts_ms", "time", "profile", "event", "symbol", "side", "purpose", "price", "amount", "fee",
    "entry_price", "exit_price", "contracts", "pnl", "fees", "ret", "opened_ms", "hold_min",
    "reason",
)
CYCLE_COLUMNS: tuple[str, ...] = (
    "ts_ms", "time", "profile", "symbols", "evaluated", "entry_valid", "selected",
    "orders_placed", "positions", "duration_ms",
)
SIGNAL_COLUMNS: tuple[str, ...] = (
    "ts_ms", "time", "profile", "symbol", "side", "score", "raw_score", "valid", "entry_valid",
    "add_valid", "first_rejection", "rejections", "selected", "cycle_ms",
)
#: per-gate CSV columns: f"{gate}{suffix}"
GATE_SUFFIXES: tuple[str, ...] = ("_value", "_threshold", "_passed")
FEATURE_COLUMNS: tuple[str, ...] = tuple(
    f"f_{name}" for name in FEATURE_FIELDS if name not in ("symbol", "ts_ms")
)
DIAGNOSTIC_COLUMNS: tuple[str, ...] = (
    "ts_ms", "time", "profile", "kind", "symbol", "action", "purpose", "side", "price",
    "amount", "client_order_id", "reduce_only", "fatal", "message",
)
ACCOUNT_COLUMNS: tuple[str, ...] = (
    "ts_ms", "time", "equity", "free_margin", "used_margin", "unrealized_pnl", "realized_pnl",
    "fees", "total_pnl",
)
MACRO_COLUMNS: tuple[str, ...] = ("ts_ms", "time", "regime", "previous", "inputs")
EXTERNAL_COLUMNS: tuple[str, ...] = (
    "ts_ms", "time", "symbol", "premium_bps", "divergence_1m_bps", "reference_age_ms", "blocked",
    "reason",
)

#: stream -> fixed columns (shared by the CSV header and the SQLite table)
COLUMNS: dict[str, tuple[str, ...]] = {
    "trades": TRADE_COLUMNS,
    "cycles": CYCLE_COLUMNS,
    "signals": SIGNAL_COLUMNS,
    "diagnostics": DIAGNOSTIC_COLUMNS,
    "account": ACCOUNT_COLUMNS,
    "macro": MACRO_COLUMNS,
    "external": EXTERNAL_COLUMNS,
}
#: stream -> JSON columns added to the SQLite table (and to the JSONL record)
JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "signals": ("gates", "features"),
    "diagnostics": ("record",),
}
GLOBAL_STREAMS: frozenset[str] = frozenset(("account", "macro", "external"))
#: streams that also have a JSONL file
JSONL_STREAMS: frozenset[str] = frozenset(("signals", "diagnostics"))
TABLES: dict[str, str] = {s: f"audit_{s}" for s in COLUMNS}
#: default file names inside a profile directory
FILE_NAMES: dict[str, str] = {
    "trades": "trades.csv",
    "cycles": "cycle_stats.csv",
    "signals": "signal_analytics.csv",
    "signals_jsonl": "signal_analytics.jsonl",
    "diagnostics": "diagnostics.csv",
    "diagnostics_jsonl": "diagnostics.jsonl",
    "account": "account_pnl.csv",
    "macro": "macro.csv",
    "external": "external_prices.csv",
}
DB_NAME = "audit.sqlite"
ARCHIVE_DIR_NAME = "csv_archive"
#: rotated SQLite files, beside the current one
DB_ARCHIVE_DIR_NAME = "audit_archive"
#: the live signal files that ``signal_files`` / AUDIT_SIGNAL_FILES can switch on
SIGNAL_FILE_FORMATS: tuple[str, ...] = ("csv", "jsonl")


def gate_columns(gate: str) -> tuple[str, ...]:
    """The three signal-CSV columns of one gate."""
    return tuple(f"{gate}{suffix}" for suffix in GATE_SUFFIXES)
