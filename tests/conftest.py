"""Shared test setup."""

import os

import pytest


def _without_effect(name: str) -> None:
    """bench/setting_effect_check.py: every read of setting `name` returns its default, as if
    the engine ignored the value in .env (the tests that show its effect must then fail)."""
    from engine.settings import GlobalSettings, ProfileSettings

    for top in (GlobalSettings, ProfileSettings):
        if name in top.model_fields:
            default = getattr(top(), name)
            # on every class that has the field: tests also build the settings groups alone
            for cls in top.__mro__:
                if name in getattr(cls, "model_fields", {}):
                    setattr(cls, name, property(lambda self, d=default: d))
            return
    raise SystemExit(f"CROT_SETTING_WITHOUT_EFFECT={name}: no such setting field")


def _daemon_sqlite_threads() -> None:
    """A test that fails before closing its aiosqlite store would leave the connection's
    worker thread running and the test process hanging at exit: in tests it is a daemon."""
    import functools
    import threading

    import aiosqlite.core

    aiosqlite.core.Thread = functools.partial(threading.Thread, daemon=True)  # type: ignore[attr-defined]


_daemon_sqlite_threads()

if os.environ.get("CROT_SETTING_WITHOUT_EFFECT"):
    _without_effect(os.environ["CROT_SETTING_WITHOUT_EFFECT"])


@pytest.fixture(autouse=True)
def _private_account_locks(tmp_path_factory, monkeypatch):
    """Each test gets its own folder for the per-account live lock (engine/runtime/lock.py):
    tests that run the live loop with the same fake API key, in parallel test runs or after a
    killed one, must not see each other, nor write into the real home folder."""
    folder = tmp_path_factory.mktemp("account-locks")
    folder.chmod(0o700)
    monkeypatch.setenv("CROT_LOCK_DIR", str(folder))


# --------------------------------------------------------------------------- shared exchange set-ups
# (additive: used by tests/test_exchange_contract.py; other suites may take them instead of
# repeating the same few lines. Imports are lazy so a test that needs neither pays nothing.)

FAKE_HTX_API_KEY = "AKfake-5c0n7r4c-shared-key"
FAKE_HTX_SECRET = "SKfake-5c0n7r4c-shared-secret"


@pytest.fixture
def start_fake_htx_venue():
    """`async with start_fake_htx_venue(**kw) as venue:` a started loopback HTX v5 venue
    (tests/fake_htx_venue.py; `kw` goes to `FakeHtxVenue`, default keys, contracts and recorded
    series) with every non-loopback connection refused while it runs. For fixtures that decide
    at run time whether they need the venue (a parametrised fixture cannot request an async
    one through `request.getfixturevalue`)."""
    import contextlib

    from engine.exchange.testing import deny_network
    from fake_htx_venue import FakeHtxVenue

    @contextlib.asynccontextmanager
    async def start(**kw):
        kw.setdefault("api_key", FAKE_HTX_API_KEY)
        kw.setdefault("secret", FAKE_HTX_SECRET)
        with deny_network():
            async with FakeHtxVenue(**kw) as venue:
                yield venue

    return start


@pytest.fixture
async def fake_htx_venue(start_fake_htx_venue):
    """A started loopback HTX v5 venue with the network denied (see `start_fake_htx_venue`).
    Point ccxt's real client at it with `HtxExchange(fake_htx_venue.htx_config(...))`."""
    async with start_fake_htx_venue() as venue:
        yield venue


@pytest.fixture
def fake_htx_markets():
    """The fake venue's contracts (BTC, ETH, XRP USDT-M swaps) as `Market`s, for a
    `SimulatedExchange` that trades exactly what the loopback HTX venue lists."""
    from fake_htx_venue import CONTRACTS

    return [c.market() for c in CONTRACTS]
