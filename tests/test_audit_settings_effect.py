"""Audit file settings in effect (issue 18): each file-name setting, set in a .env, moves
that stream's rows to the named file (relative names under the profile's data folder), and
CSV_ROTATE_MAX_BYTES decides when a CSV is rotated into the archive."""

from __future__ import annotations

import pytest

from engine.runtime.events import CycleStats
from engine.store.audit import SETTING_OF_FILE, AuditWriter
from engine.store.audit_files import archived_files
from engine.store.audit_schema import FILE_NAMES
from settings_effect import settings
from test_audit_writer import T0, all_events

KEYS = {
    "CSV_LOG_FILE": "trades",
    "CYCLE_STATS_CSV_FILE": "cycles",
    "SIGNAL_ANALYTICS_CSV_FILE": "signals",
    "SIGNAL_ANALYTICS_JSONL_FILE": "signals_jsonl",
    "DIAGNOSTICS_CSV_FILE": "diagnostics",
    "DIAGNOSTICS_JSONL_FILE": "diagnostics_jsonl",
    "ACCOUNT_PNL_CSV_FILE": "account",
    "MACRO_CSV_FILE": "macro",
    "EXTERNAL_PRICE_CSV_FILE": "external",
}


def test_every_audit_file_has_its_setting_here():
    assert {k.lower() for k in KEYS} == set(SETTING_OF_FILE.values()) and set(KEYS.values()) == set(FILE_NAMES)


def write_all(tmp_path, **env: object):
    s = settings(BOT_PROFILES="long", AUDIT_SIGNAL_FILES="csv,jsonl", **env)
    w = AuditWriter.from_settings(s, tmp_path, db=False)
    for ev in all_events():
        w(ev)
    w.close()
    assert w.stats.failures == 0, w.stats.errors


@pytest.mark.parametrize("key", sorted(KEYS))
def test_a_file_name_setting_moves_its_stream_to_that_file(tmp_path, key):
    stream = KEYS[key]
    default = tmp_path / "long" / FILE_NAMES[stream]
    moved = tmp_path / "long" / "mine" / f"{stream}.{FILE_NAMES[stream].rsplit('.', 1)[1]}"
    write_all(tmp_path / "a")
    assert (tmp_path / "a" / "long" / FILE_NAMES[stream]).stat().st_size > 0
    write_all(tmp_path, **{key: f"mine/{moved.name}", f"SHORT_{key}": "never.csv"})
    assert moved.stat().st_size > 0 and not default.exists()


def test_csv_rotate_max_bytes_decides_when_a_csv_is_archived(tmp_path):
    def archived(folder, **env: object) -> int:
        w = AuditWriter.from_settings(settings(BOT_PROFILES="long", **env), folder, db=False)
        for i in range(40):
            w(CycleStats(T0 + i * 300_000 + 1_234, "long", 10, 10, i % 3, 0, 0, 0, 1.5))
            if i % 4 == 3:
                w.flush()
        w.close()
        current = folder / "long" / FILE_NAMES["cycles"]
        return len(archived_files(current, folder / "long" / "csv_archive"))

    assert archived(tmp_path / "default") == 0  # 1 MiB by default: 40 rows stay in one file
    assert archived(tmp_path / "small", CSV_ROTATE_MAX_BYTES=500) >= 3
