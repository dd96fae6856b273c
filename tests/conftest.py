"""Shared test setup."""

import pytest


@pytest.fixture(autouse=True)
def _private_account_locks(tmp_path_factory, monkeypatch):
    """Each test gets its own folder for the per-account live lock (engine/runtime/lock.py):
    tests that run the live loop with the same fake API key, in parallel test runs or after a
    killed one, must not see each other, nor write into the real home folder."""
    folder = tmp_path_factory.mktemp("account-locks")
    folder.chmod(0o700)
    monkeypatch.setenv("CROT_LOCK_DIR", str(folder))
