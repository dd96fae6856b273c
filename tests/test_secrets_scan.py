"""Secrets never leave `.env`: run everything a user runs with API keys configured, then scan
every file the runs produced (logs, snapshots, audit records, reports, state databases) and
everything they printed for the key and the secret."""

import os
import subprocess
import sys
from pathlib import Path

from engine.cli import main as crot

KEY = "hx-scan-key-7c1e5f0a9b"
SECRET = "hx-scan-secret-3d8e2b6f14"
ROOT = Path(__file__).resolve().parents[1]


def test_no_run_output_contains_the_api_key_or_secret(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env_file = tmp_path / ".env"
    env_file.write_text(f"HTX_API_KEY={KEY}\nHTX_API_SECRET={SECRET}\nHTX_API_KEY_2={KEY}2\n"
                        f"HTX_API_SECRET_2={SECRET}2\nCOINS=eth,ltc\nDATA_DIR={tmp_path / 'data'}\n")
    env_file.chmod(0o600)

    assert crot(["config", "check"]) == 0
    assert crot(["config", "show"]) == 0
    assert crot(["config", "show", "--toml", "snapshot.toml"]) == 0
    assert crot(["replay", "--quiet", "--steps", "1800", "--out", "runs/r1"]) == 0
    assert crot(["analyze", "--run", "runs/r1", "--out", "runs/r1/report"]) == 0
    printed = capsys.readouterr()

    headless = subprocess.run(
        [sys.executable, "-m", "crot_tui", "--no-ui", "--demo", "--steps", "1600", "--env", str(env_file)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert headless.returncode == 0, headless.stderr[-2000:]

    outputs = [printed.out, printed.err, headless.stdout, headless.stderr]
    assert "order" in headless.stderr or "order" in headless.stdout  # the run really logged trading
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != env_file]
    assert any(p.suffix == ".csv" for p in files) and any(p.suffix == ".sqlite" for p in files)
    assert any(p.name == "report.md" for p in files) and any(p.name == "snapshot.toml" for p in files)
    for text in outputs:
        assert KEY not in text and SECRET not in text
    for p in files:
        data = p.read_bytes()
        assert KEY.encode() not in data and SECRET.encode() not in data, p
