"""`.env` editing: atomic, mode 0600, only the edited lines change."""

import os
import stat

import pytest

from engine.settings import SettingsError, load_settings, save_settings
from engine.settings.envfile import atomic_write_text, update_env_file, update_env_text

ORIGINAL = """# My CROT settings
# ---- sizing ----
EMA_POSITION_BUDGET_FRACTION=0.02 # 2% of equity per position

export EMA_CHOP_MAX=61.8
MY_OWN_TOOL_KEY=keep me
HTX_API_KEY='abc def'
"""


def test_update_changes_only_edited_lines_and_keeps_everything_else():
    new = update_env_text(ORIGINAL, {"EMA_POSITION_BUDGET_FRACTION": "0.01", "EMA_CHOP_MAX": "55"})
    old_lines, new_lines = ORIGINAL.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b]
    assert changed == [2, 4]
    assert new_lines[2] == "EMA_POSITION_BUDGET_FRACTION=0.01 # 2% of equity per position"
    assert new_lines[4] == "export EMA_CHOP_MAX=55"
    assert "MY_OWN_TOOL_KEY=keep me" in new_lines
    assert new.endswith("\n")


def test_new_key_is_appended_and_none_removes():
    new = update_env_text(ORIGINAL, {"LONG_HARD_STOP_LOSS_PCT": "0.015", "EMA_CHOP_MAX": None})
    assert new.splitlines()[-1] == "LONG_HARD_STOP_LOSS_PCT=0.015"
    assert "EMA_CHOP_MAX" not in new
    assert "# My CROT settings" in new


def test_values_needing_quotes_are_quoted_and_read_back():
    new = update_env_text("", {"HTX_API_KEY": "a b#c", "COINS": "btc,eth"})
    assert "HTX_API_KEY='a b#c'" in new and "COINS=btc,eth" in new


def test_line_breaks_in_values_are_refused():
    with pytest.raises(ValueError):
        update_env_text("", {"COINS": "btc\nHTX_API_KEY=x"})


def test_atomic_write_mode_0600_and_no_temp_left(tmp_path):
    target = tmp_path / ".env"
    target.write_text("A=1\n")
    os.chmod(target, 0o644)
    update_env_file(target, {"A": "2"})
    assert target.read_text() == "A=2\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    target = tmp_path / ".env"
    target.write_text("A=1\n")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "A=2\n")
    assert target.read_text() == "A=1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


def test_save_settings_validates_before_writing(tmp_path):
    target = tmp_path / ".env"
    target.write_text(ORIGINAL.replace("MY_OWN_TOOL_KEY=keep me\n", ""))
    before = target.read_text()
    with pytest.raises(SettingsError) as info:
        save_settings(target, {"EMA_LADDER_FRACTIONS": "0.9,0.9"})
    assert "EMA_LADDER_FRACTIONS" in str(info.value)
    assert target.read_text() == before  # untouched

    s = save_settings(target, {"SHORT_EMA_POSITION_BUDGET_FRACTION": "0.01"})
    assert s.side("short").ema_position_budget_fraction == 0.01
    reloaded = load_settings(target)
    assert reloaded.side("short").ema_position_budget_fraction == 0.01
    assert reloaded.side("long").ema_position_budget_fraction == 0.02
    assert reloaded.glob.htx_api_key.get_secret_value() == "abc def"
    assert "# My CROT settings" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_missing_file(tmp_path):
    assert load_settings(tmp_path / "nope.env").enabled == ("long", "short")
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.env", missing_ok=False)
