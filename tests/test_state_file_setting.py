"""STATE_FILE: the state database of the live and paper bots, and the control socket beside it.

Paper mode runs the real live loop (`run_live`) on the simulator with a fake clock; the files
it leaves show where the database, the folder lock, the audit record and the heartbeat went.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.exchange.sim import SimConfig, SimulatedExchange
from engine.market.feeds import FileFeed
from engine.runtime.events import EventBus
from engine.runtime.live import LiveParts, run_live
from engine.runtime.paths import PathSettingError, control_socket_path, state_db_path
from engine.runtime.replay import demo_market
from engine.settings.envfile import Assignment
from engine.settings.loader import SettingsError, settings_from_assignments
from engine.store.state import StateStore

from crot_tui.__main__ import default_socket

DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"
XRP = "XRP/USDT:USDT"


def make_settings(**values: str):
    base = {"COINS": "xrp", "POLL_INTERVAL_SEC": "1", **values}
    return settings_from_assignments([Assignment(k, v, i + 1) for i, (k, v) in enumerate(base.items())])


def test_defaults_are_per_mode_files_in_the_data_dir(tmp_path):
    s = make_settings(DATA_DIR=str(tmp_path / "data"))
    assert state_db_path(s, "live") == tmp_path / "data" / "live.sqlite"
    assert state_db_path(s, "paper") == tmp_path / "data" / "paper.sqlite"
    assert default_socket(s, "live") == tmp_path / "data" / "live.sock"
    assert default_socket(s, "demo") == tmp_path / "data" / "demo.sock"


def test_state_file_names_the_live_database_and_a_paper_sibling(tmp_path):
    s = make_settings(DATA_DIR=str(tmp_path / "data"), STATE_FILE=str(tmp_path / "db" / "bot.sqlite"))
    assert state_db_path(s, "live") == tmp_path / "db" / "bot.sqlite"
    assert state_db_path(s, "paper") == tmp_path / "db" / "bot.paper.sqlite"  # never the live record
    assert default_socket(s, "live") == control_socket_path(s, "live") == tmp_path / "db" / "bot.sock"
    assert default_socket(s, "paper") == tmp_path / "db" / "bot.paper.sock"


def test_relative_state_file_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = make_settings(STATE_FILE="state/bot.sqlite")
    assert state_db_path(s, "live").absolute() == tmp_path / "state" / "bot.sqlite"
    assert default_socket(s, "live") == tmp_path / "state" / "bot.sock"


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(PathSettingError, match="is a folder"):
        state_db_path(make_settings(STATE_FILE=str(tmp_path)), "live")


@pytest.mark.parametrize("key", ["STATE_FILE", "MARKETS_CACHE_FILE"])
def test_a_per_side_value_is_refused_naming_its_line(key):
    """One bot has one state database and one market list for both profiles."""
    with pytest.raises(SettingsError, match=f"4: LONG_{key}: {key} is a process-wide setting"):
        make_settings(DATA_DIR="d", **{f"LONG_{key}": "a", f"SHORT_{key}": "b"})


async def test_paper_run_keeps_its_state_in_the_state_file(tmp_path):
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    s = make_settings(DATA_DIR=str(data), STATE_FILE=str(elsewhere / "bot.sqlite"))
    feed = FileFeed.from_directory(DATA, "5m", symbols=[XRP])
    history = feed.history(XRP)
    sim = SimulatedExchange([demo_market(XRP, history)], SimConfig(stops_reserve_closeable=False))
    clock = {"now": history[300].ts_ms + 300_000}

    async def wait(seconds):
        clock["now"] += 300_000
        await asyncio.sleep(0)

    steps = await run_live(s, bus=EventBus(), paper=True, parts=LiveParts(sim, feed, None, sim),
                           clock_ms=lambda: clock["now"], max_steps=2, wait=wait, benchmark=None)
    assert steps == 2
    db = elsewhere / "bot.paper.sqlite"
    assert db.is_file() and not (data / "paper.sqlite").exists() and not (elsewhere / "bot.sqlite").exists()
    store = await StateStore.open(db)  # a real state database, left closed and reopenable
    await store.close()
    assert (elsewhere / "crot.lock").exists()  # the folder lock beside the database
    assert (data / "heartbeat").exists()  # where the watchdog looks (DATA_DIR/heartbeat)
    assert (data / "crot.lock").exists()  # DATA_DIR (audit, heartbeat) is locked as well


def test_config_check_refuses_a_per_side_state_file_in_one_line_per_problem(tmp_path, capsys):
    from engine.cli import main

    env = tmp_path / ".env"
    env.write_text("LONG_STATE_FILE=a.sqlite\nSHORT_STATE_FILE=b.sqlite\n")
    env.chmod(0o600)
    with pytest.raises(SystemExit) as info:
        main(["config", "check", "--env", str(env)])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "LONG_STATE_FILE" in err and "SHORT_STATE_FILE" in err and "Traceback" not in err
    env.write_text("STATE_FILE=a.sqlite\n")
    assert main(["config", "check", "--env", str(env)]) == 0
