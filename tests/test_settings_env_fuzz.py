"""`.env` edge cases from an outside fuzz (issue 17, item 10): each one is a clear error naming
the key and the line, or a loud warning for the dangerous-but-legal ones; never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from crot_tui.__main__ import load as tui_load
from engine.cli import main as crot
from engine.settings import SettingsError, load_settings, save_settings
from engine.settings.envfile import update_env_text


def write(tmp_path: Path, data: bytes | str, name: str = ".env") -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    p.chmod(0o600)
    return p


def problems(path: Path) -> list[tuple[str | None, int | None, str]]:
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    return [(p.key, p.line, p.message) for p in info.value.problems]


def check_fails(path: Path, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        crot(["config", "check", "--env", str(path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_file_that_is_not_utf8_names_the_line_and_key(tmp_path, capsys):
    p = write(tmp_path, b"COINS=btc\nHTX_API_SECRET=ab\xffcd\nEMA_CHOP_MAX=55\n")
    [(key, line, msg)] = problems(p)
    assert (key, line) == ("HTX_API_SECRET", 2)
    assert "not UTF-8" in msg and "0xff" in msg and "column 18" in msg
    err = check_fails(p, capsys)
    assert f"{p}:2: HTX_API_SECRET:" in err and "abcd" not in err


def test_a_latin1_comment_line_names_the_line_without_a_key(tmp_path):
    p = write(tmp_path, "COINS=btc\n\n# caf\xe9 notes\n".encode("latin-1"))
    [(key, line, msg)] = problems(p)
    assert key is None and line == 3 and "not UTF-8" in msg


def test_a_byte_order_mark_does_not_hide_the_first_key(tmp_path):
    p = write(tmp_path, "\ufeffCOINS=btc,eth\r\nDATA_DIR=state\r\n")
    s = load_settings(p)
    assert s.glob.coins == ("btc", "eth") and s.glob.data_dir == "state"
    assert "COINS" in s.source


@pytest.mark.parametrize(("char", "name"), [("\x0c", "form feed"), ("\u2028", "line separator"),
                                            ("\x0b", "vertical tab"), ("\x85", "next line"),
                                            ("\u200b", "zero-width space")])
def test_a_separator_inside_a_value_is_an_error_and_shifts_no_line(tmp_path, char, name):
    p = write(tmp_path, f"COINS=btc\nHTX_API_KEY=ab{char}cd\nEMA_CHOP_MAXX=55\n")
    found = problems(p)
    assert ("HTX_API_KEY", 2) == found[0][:2] and name in found[0][2] and "position 3" in found[0][2]
    assert found[1][:2] == ("EMA_CHOP_MAXX", 3)  # the next line keeps its number
    assert "did you mean EMA_CHOP_MAX" in found[1][2]


def test_a_separator_in_a_comment_keeps_the_line_numbers(tmp_path):
    p = write(tmp_path, "# notes\x0cmore notes\u2028and more\nCOINS=btc\nEMA_CHOP_MAX=x\n")
    [(key, line, _)] = problems(p)
    assert (key, line) == ("EMA_CHOP_MAX", 3)


@pytest.mark.parametrize("raw", ["btc\x00eth", "btc/usdt", "btc-usdt", "btc,eth/usdt", "BTC_USDT", "é"])
def test_coins_must_be_coin_names(tmp_path, raw, capsys):
    p = write(tmp_path, f"EMA_CHOP_MAX=55\nCOINS={raw}\n")
    [(key, line, msg)] = problems(p)
    assert (key, line) == ("COINS", 2)
    assert "coin name" in msg or "invisible character" in msg
    assert "COINS:" in check_fails(p, capsys)


def test_coin_names_are_lowercased_and_gold_coins_checked_too(tmp_path):
    s = load_settings(write(tmp_path, "COINS=BTC, Eth ,xrp,1000pepe\nGOLD_COINS=XAUT\n"))
    assert s.glob.coins == ("btc", "eth", "xrp", "1000pepe")
    p = write(tmp_path, "GOLD_COINS=xaut/usdt\n", "bad.env")
    assert problems(p)[0][:2] == ("GOLD_COINS", 1)


@pytest.mark.parametrize("raw", ["", "''", '""', "   ", "'  '"])
def test_an_empty_data_dir_is_an_error_not_the_working_directory(tmp_path, raw, capsys):
    p = write(tmp_path, f"COINS=btc\nDATA_DIR={raw}\n")
    [(key, line, msg)] = problems(p)
    assert (key, line) == ("DATA_DIR", 2) and "folder path" in msg
    check_fails(p, capsys)


def test_hard_stop_off_is_a_loud_warning_at_check_and_at_start(tmp_path, capsys):
    p = write(tmp_path, "COINS=btc\nHARD_STOP_LOSS_ENABLED=false\n")
    assert crot(["config", "check", "--env", str(p)]) == 0  # legal...
    err = capsys.readouterr().err
    assert "DANGER" in err and "HARD_STOP_LOSS_ENABLED=false" in err and "NO stop-loss" in err
    assert "long profile and short profile" in err
    tui_load(str(p))  # ...and said again when the bot starts
    assert "DANGER" in capsys.readouterr().err


def test_hard_stop_off_on_one_side_names_that_side(tmp_path, capsys):
    p = write(tmp_path, "COINS=btc\nSHORT_HARD_STOP_LOSS_ENABLED=false\n")
    assert crot(["config", "check", "--env", str(p)]) == 0
    err = capsys.readouterr().err
    assert "SHORT_HARD_STOP_LOSS_ENABLED=false" in err and "short profile" in err and "long profile" not in err
    p = write(tmp_path, "COINS=btc\nHARD_STOP_LOSS_ENABLED=true\n", "ok.env")
    assert crot(["config", "check", "--env", str(p)]) == 0
    assert "DANGER" not in capsys.readouterr().err


def test_the_editor_refuses_a_value_with_a_separator_and_keeps_the_file(tmp_path):
    p = write(tmp_path, "COINS=btc\n")
    with pytest.raises(SettingsError, match="COINS.*invisible character"):
        save_settings(p, {"COINS": "btc\u2028eth"})
    assert p.read_text() == "COINS=btc\n"


def test_editing_a_file_with_a_form_feed_comment_touches_only_the_edited_line():
    text = "# a\x0cb\nCOINS=btc\n# c\u2028d\nEMA_CHOP_MAX=55\n"
    new = update_env_text(text, {"EMA_CHOP_MAX": "50"})
    assert new == "# a\x0cb\nCOINS=btc\n# c\u2028d\nEMA_CHOP_MAX=50\n"
