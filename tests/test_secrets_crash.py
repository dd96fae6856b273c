"""Secrets in crash output: the dashboard's crash screen and tracebacks logged with
`log.exception` never show the API secret or the raw `.env` text (issue 17, item 9)."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from crot_tui.__main__ import configure_logging
from engine.exchange.errors import register_secret

ROOT = Path(__file__).resolve().parents[1]
KEY = "hx-crash-key-51c0ffee"
SECRET = "hx-crash-secret-9a7be2d4c1"

CRASHING_TUI = textwrap.dedent("""
    import sys
    from pathlib import Path

    from crot_tui import __main__ as tui
    from crot_tui.app import CrotApp

    run = CrotApp.run

    def headless_run(self, *a, **kw):  # no terminal in a test: same app, headless driver
        kw["headless"] = True
        return run(self, *a, **kw)

    def on_ready(self):  # a bug in the dashboard, with secrets in its locals and its message
        raw_env = Path(sys.argv[1]).read_bytes()
        api_secret = [line for line in raw_env.decode().splitlines() if "SECRET" in line][0].split("=")[1]
        settings = self.host.settings
        raise RuntimeError(f"dashboard bug while showing {api_secret}")

    CrotApp.run = headless_run
    CrotApp.on_ready = on_ready
    raise SystemExit(tui.main(["--demo", "--env", sys.argv[1], "--steps", "50"]))
""")


def test_a_dashboard_crash_exits_1_and_shows_no_locals_or_secrets(tmp_path):
    env = tmp_path / ".env"
    env.write_text(f"HTX_API_KEY={KEY}\nHTX_API_SECRET={SECRET}\nCOINS=btc,eth\n"
                   f"DATA_DIR={tmp_path / 'data'}\n")
    env.chmod(0o600)
    script = tmp_path / "crash_tui.py"
    script.write_text(CRASHING_TUI)
    proc = subprocess.run([sys.executable, str(script), str(env)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]  # non-zero: a watchdog restarts a crashed dashboard
    assert "RuntimeError" in out and "dashboard bug while showing" in out  # the crash is still explained
    assert "on_ready" in out  # ...with its frames
    assert SECRET not in out and KEY not in out
    assert not re.search(r"raw_env\s*=\s*b'", out) and "HTX_API_SECRET=" not in out  # no locals


def _explode(token: str) -> None:
    api_secret = token  # a local: plain logging never prints locals, but the message has it too
    raise ValueError(f"venue rejected signature for {api_secret}")


def test_log_exception_tracebacks_are_redacted():
    register_secret(SECRET)
    stream = io.StringIO()
    handler = configure_logging(logging.INFO, stream)
    try:
        try:
            _explode(SECRET)
        except ValueError:
            logging.getLogger("crot.test").exception("step failed for %s", SECRET)
        try:
            _explode(SECRET)
        except ValueError:
            logging.getLogger("crot.test").error("again", exc_info=True, stack_info=True)
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback (most recent call last)" in text and "_explode" in text
    assert "venue rejected signature for <redacted>" in text
    assert "step failed for <redacted>" in text and "Stack (most recent call last)" in text
    assert SECRET not in text


def test_a_second_handler_does_not_get_the_raw_traceback():
    """The filter caches the redacted traceback on the record: a later handler without the
    filter prints that one, not a fresh render of the exception."""
    register_secret(SECRET)
    plain = io.StringIO()
    plain_handler = logging.StreamHandler(plain)
    filtered = configure_logging(logging.INFO, io.StringIO())
    root = logging.getLogger()
    root.addHandler(plain_handler)
    try:
        try:
            _explode(SECRET)
        except ValueError:
            logging.getLogger("crot.test").exception("boom")
    finally:
        root.removeHandler(filtered)
        root.removeHandler(plain_handler)
    assert "venue rejected signature for <redacted>" in plain.getvalue()
    assert SECRET not in plain.getvalue()


UNCAUGHT = textwrap.dedent("""
    import logging, sys
    from crot_tui import __main__ as tui
    from crot_tui import host

    async def broken_run(self):  # a bug outside the engine's own error handling
        logging.getLogger("crot.bug").warning("about to fail with %s", sys.argv[2])
        raise RuntimeError(f"uncaught with {sys.argv[2]}")

    host.EngineHost.run = broken_run
    tui.configure_logging = lambda *a, **k: None  # no handler: the last-resort one prints
    raise SystemExit(tui.main(["--demo", "--no-ui", "--env", sys.argv[1], "--steps", "5"]))
""")


def test_an_uncaught_exception_and_unconfigured_logging_are_redacted(tmp_path):
    env = tmp_path / ".env"
    env.write_text(f"HTX_API_KEY={KEY}\nHTX_API_SECRET={SECRET}\n")
    env.chmod(0o600)
    script = tmp_path / "uncaught.py"
    script.write_text(UNCAUGHT)
    proc = subprocess.run([sys.executable, str(script), str(env), SECRET], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "uncaught with <redacted>" in proc.stderr
    assert "about to fail with <redacted>" in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
