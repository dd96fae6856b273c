"""A corrupt, foreign or unusable state file: a typed one-line error at once, never a hang,
and no aiosqlite worker thread left behind (issue 17, item 8)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from engine.cli import main as crot
from engine.store.state import APPLICATION_ID, SCHEMA, ProfileState, StateFileError, StateStore


def _live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()}


async def _refused(path: Path, match: str) -> StateFileError:
    before = _live_threads()
    t0 = time.monotonic()
    with pytest.raises(StateFileError, match=match) as info:
        await asyncio.wait_for(StateStore.open(path), timeout=20)
    assert time.monotonic() - t0 < 10  # promptly, not after a hang
    for _ in range(50):  # the worker thread ends once its stop item is processed
        if not (_live_threads() - before):
            break
        await asyncio.sleep(0.02)
    assert not (_live_threads() - before), "aiosqlite worker thread leaked"
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    return info.value


async def test_garbage_bytes_are_refused_without_leaking_the_worker_thread(tmp_path):
    db = tmp_path / "live.sqlite"
    db.write_bytes(b"\x00\xffnot a database at all" * 300)
    await _refused(db, "not a usable SQLite database")
    assert db.read_bytes().startswith(b"\x00\xffnot a database")  # left as it was


async def test_a_foreign_sqlite_file_is_refused(tmp_path):
    db = tmp_path / "live.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
        c.execute("INSERT INTO moz_places (url) VALUES ('https://example.org')")
    err = await _refused(db, "not a CROT state database")
    assert "moz_places" in str(err)
    with sqlite3.connect(db) as c:  # nothing was added to the other program's database
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"moz_places"}


async def test_another_programs_application_id_is_refused(tmp_path):
    db = tmp_path / "live.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA application_id=1196444487")  # GeoPackage
        c.executescript(SCHEMA)
    await _refused(db, "application id")


async def test_a_table_of_ours_with_other_columns_is_refused(tmp_path):
    db = tmp_path / "live.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE positions (id INTEGER, name TEXT)")
        c.execute("CREATE TABLE orders (id INTEGER, total REAL)")
    await _refused(db, "table orders lacks")


async def test_a_damaged_page_is_refused(tmp_path):
    db = tmp_path / "live.sqlite"
    store = await StateStore.open(db)
    for i in range(400):
        await store.record_repair(i, "long", f"S{i}", "x" * 200, "y" * 200)
    await store.close()
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = bytearray(db.read_bytes())
    page = 4096
    assert len(raw) > 6 * page
    raw[3 * page: 5 * page] = b"\xde\xad\xbe\xef" * (page // 2)
    db.write_bytes(bytes(raw))
    await _refused(db, "damaged|not a usable SQLite")


async def test_a_folder_in_place_of_the_file_is_refused(tmp_path):
    db = tmp_path / "live.sqlite"
    db.mkdir()
    await _refused(db, "cannot open state file")


async def test_a_state_file_from_before_the_mark_still_opens(tmp_path):
    db = tmp_path / "live.sqlite"
    with sqlite3.connect(db) as c:  # a CROT file written before the application id existed
        c.executescript(SCHEMA)
        c.execute("INSERT INTO profile_kv VALUES ('long', 'last_cycle_ms', '1234')")
    store = await StateStore.open(db)
    try:
        assert (await store.load_profile("long")).last_cycle_ms == 1234
    finally:
        await store.close()
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


async def test_a_new_and_a_reopened_state_file(tmp_path):
    db = tmp_path / "sub" / "live.sqlite"
    store = await StateStore.open(db)
    await store.save_profile("short", ProfileState(last_cycle_ms=99))
    await store.close()
    store = await StateStore.open(db)
    try:
        assert (await store.load_profile("short")).last_cycle_ms == 99
    finally:
        await store.close()
    mem = await StateStore.open(":memory:")
    await mem.close()


@pytest.mark.parametrize("kind", ["garbage", "foreign"])
def test_replay_with_a_bad_db_is_a_one_line_error(tmp_path, capsys, kind):
    db = tmp_path / "state.sqlite"
    if kind == "garbage":
        db.write_bytes(b"SQLite format 2\x00" + b"\x01" * 5000)
    else:
        with sqlite3.connect(db) as c:
            c.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    assert crot(["replay", "--db", str(db), "--quiet", "--no-record", "--steps", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(db) in err and "\n" not in err and "Traceback" not in err
    if kind == "foreign":
        assert "not a CROT state database" in err
