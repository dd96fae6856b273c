"""Generated files stay in sync with the model, and secrets never leave through any output."""

import tomllib
from pathlib import Path

import pytest

from engine.cli import main
from engine.settings import Settings, catalog, load_settings
from engine.settings.render import REDACTED, env_example, settings_doc, snapshot, snapshot_toml

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "hx-key-7f3a9c2e11", "hx-secret-5d8b0e6f42"


def test_env_example_is_in_sync():
    assert (ROOT / ".env.example").read_text() == env_example(), (
        "regenerate with: crot config example --write .env.example")


def test_settings_doc_is_in_sync():
    assert (ROOT / "docs" / "SETTINGS.md").read_text() == settings_doc(), (
        "regenerate with: crot config docs --write docs/SETTINGS.md")


def test_env_example_loads_to_the_defaults(tmp_path):
    path = tmp_path / ".env"
    path.write_text(env_example())
    loaded = load_settings(path, missing_ok=False)
    defaults = Settings.defaults()
    assert loaded.glob == defaults.glob
    assert loaded.profiles == defaults.profiles
    text = env_example()
    for info in catalog():  # every setting shown, with a comment above it
        assert f"\n{info.key}=" in text
        assert info.description in text


@pytest.fixture
def secret_env(tmp_path):
    path = tmp_path / ".env"
    path.write_text(f"HTX_API_KEY={KEY}\nHTX_API_SECRET={SECRET}\nHTX_API_KEY_2={KEY}2\n"
                    f"HTX_API_SECRET_2={SECRET}2\nCOINS=btc,eth\n")
    path.chmod(0o600)
    return path


def test_snapshot_redacts_secrets(secret_env):
    s = load_settings(secret_env)
    snap = snapshot(s)
    assert snap["global"]["HTX_API_KEY"] == REDACTED
    text = snapshot_toml(s)
    assert KEY not in text and SECRET not in text
    parsed = tomllib.loads(text)
    assert parsed["long"]["HARD_STOP_LOSS_PCT"] == 0.02
    assert parsed["global"]["COINS"] == ["btc", "eth"]
    assert parsed["global"]["HTX_API_SECRET_2"] == REDACTED


def test_cli_outputs_never_show_secrets(secret_env, tmp_path, capsys):
    out_toml = tmp_path / "snap.toml"
    assert main(["config", "check", "--env", str(secret_env)]) == 0
    assert main(["config", "show", "--env", str(secret_env)]) == 0
    assert main(["config", "show", "--env", str(secret_env), "--key", "HTX_*"]) == 0
    assert main(["config", "show", "--env", str(secret_env), "--toml", str(out_toml)]) == 0
    captured = capsys.readouterr()
    for text in (captured.out, captured.err, out_toml.read_text()):
        assert KEY not in text and SECRET not in text
    assert REDACTED in captured.out


def test_error_messages_never_show_secrets(tmp_path, capsys):
    path = tmp_path / ".env"
    path.write_text(f"HTX_API_KEY={KEY}\nLONG_HTX_API_SECRET={SECRET}\nEMA_CHOP_MAX=x\n")
    with pytest.raises(SystemExit) as info:
        main(["config", "check", "--env", str(path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "LONG_HTX_API_SECRET" in err and "EMA_CHOP_MAX" in err
    assert KEY not in err and SECRET not in err


def test_config_check_exit_codes_and_notes(tmp_path, capsys):
    good = tmp_path / "good.env"
    good.write_text("EMA_CHOP_MAX=50\n")
    good.chmod(0o644)
    assert main(["config", "check", "--env", str(good)]) == 0
    out = capsys.readouterr()
    assert "OK" in out.out and "no HTX API key" in out.out and "readable by other users" in out.err
    with pytest.raises(SystemExit) as info:
        main(["config", "check", "--env", str(tmp_path / "missing.env")])
    assert info.value.code == 2


def test_config_show_changed_only(tmp_path, capsys):
    path = tmp_path / ".env"
    path.write_text("SHORT_EMA_POSITION_BUDGET_FRACTION=0.01\n")
    assert main(["config", "show", "--env", str(path), "--changed"]) == 0
    out = capsys.readouterr().out
    assert "EMA_POSITION_BUDGET_FRACTION" in out and "HARD_STOP_LOSS_PCT" not in out
