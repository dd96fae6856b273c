"""No secret, signed URL or credential parameter ever reaches an audit file or table."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal

import pytest

from engine.runtime.events import (
    Account,
    CycleStats,
    Decisions,
    EngineStatus,
    ErrorEvent,
    FillEvent,
    OrderEvent,
    Premium,
    Regime,
    Repair,
    StopEvent,
    TradeClosed,
)
from engine.settings import GlobalSettings, ProfileSettings, Settings
from engine.store.audit import AuditWriter
from engine.store.scrub import REDACTED, register_settings_secrets, scrub, scrub_obj
from engine.strategy.decision import HARD, GateResult

from test_audit_writer import T0, decision

KEY = "AKfake-0c1d2e3f4a5b"
SECRET = "SKfake-9z8y7x6w5v4u"
SIG = "sigVALUEabc123XYZ"
SIG_ENC = "encSIGqwerty789"
TOKEN = "tokBEARER55aa66bb"
SETTINGS_KEY = "AKsettings-77c3d1"
SIGNED_URL = (f"https://api.hbdm.com/linear-swap-api/v1/swap_cross_order?AccessKeyId={KEY}"
              f"&SignatureMethod=HmacSHA256&SignatureVersion=2&Timestamp=2026-01-01T00%3A00%3A00"
              f"&Signature={SIG}")
BARE_QUERY = f"/linear-swap-api/v1/swap_cross_order?AccessKeyId={KEY}&Signature={SIG}"
ENCODED = f"next=https%3A%2F%2Fapi.hbdm.com%2Fx%3FAccessKeyId%3D{KEY}%26Signature%3D{SIG_ENC}"
LEAKS = (KEY, SECRET, SIG, SIG_ENC, TOKEN, SETTINGS_KEY)


@pytest.fixture(autouse=True)
def _registered():
    settings = Settings(GlobalSettings(htx_api_key=SETTINGS_KEY, htx_api_secret=SECRET),
                        {"long": ProfileSettings(), "short": ProfileSettings()})
    assert register_settings_secrets(settings) == 2
    # KEY is registered by nobody: it must go through the URL / parameter patterns


def leaky_text(i: int) -> str:
    return [
        f"GET {SIGNED_URL} -> 403",
        f"POST {BARE_QUERY} body={{'apiKey': '{SETTINGS_KEY}', 'secret': '{SECRET}'}}",
        f"redirect {ENCODED}",
        f"headers {{'Authorization': 'Bearer {TOKEN}', 'X-MBX-APIKEY': '{SETTINGS_KEY}'}}",
        f"plain {SECRET} and {SETTINGS_KEY} in a sentence",
        f"multi\nline {SIGNED_URL}\n{SECRET}",
    ][i % 6]


def leaky_events(i: int) -> list:
    t = leaky_text(i)
    gates = (GateResult("macro_trend", 1.0, 0.0, True, HARD, ">", t),
             GateResult(f"g{i % 2}", 1.0, 0.0, True, HARD, ">", SECRET))
    return [
        Decisions(T0 + i, "long", (decision(ts=T0 + i, gates=gates),), ()),
        OrderEvent(T0 + i, "long", "ETH/USDT", "rejected", "entry", i, "buy", Decimal(1), Decimal(1), False, t),
        FillEvent(T0 + i, "short", "ETH/USDT", "sell", Decimal(1), Decimal(1), Decimal(0), t),
        StopEvent(T0 + i, "short", "ETH/USDT", "missing", None, Decimal(1), t),
        Repair(T0 + i, "long", "ETH/USDT", t, t),
        ErrorEvent(T0 + i, t, t),
        ErrorEvent(T0 + i, "exchange", t, profile="short", fatal=True),
        EngineStatus(T0 + i, "live", ("long",), False, t),
        TradeClosed(T0 + i, "long", "ETH/USDT", "long", Decimal(1), Decimal(2), Decimal(1), Decimal(1),
                    Decimal(0), T0, t),
        CycleStats(T0 + i, "short", 1, 1, 0, 0, 0, 0, 1.0),
        Account(T0 + i, Decimal(1), Decimal(1), Decimal(0), Decimal(0), Decimal(0), Decimal(0)),
        Regime(T0 + i, "risk_off", "neutral", {"apiKey": SETTINGS_KEY, "why": t, SECRET: [t, {"u": SIGNED_URL}]}),
        Premium(T0 + i, "ETH/USDT", 1.0, 2.0, 3, True, t),
    ]


def test_no_secret_anywhere_on_disk(tmp_path):
    w = AuditWriter(tmp_path / "run", max_bytes=2_000)  # small: archives are checked too
    for i in range(24):
        for ev in leaky_events(i):
            w(ev)
        if i % 4 == 3:
            w.flush()
    w.close()
    assert w.stats.failures == 0, w.stats.errors
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"audit.sqlite", "signal_analytics.csv", "signal_analytics.jsonl", "diagnostics.csv",
            "diagnostics.jsonl", "trades.csv", "cycle_stats.csv", "account_pnl.csv", "macro.csv",
            "external_prices.csv"} <= names
    assert any("csv_archive" in p.parts for p in files)
    for p in files:
        data = p.read_bytes()
        for leak in LEAKS:
            assert leak.encode() not in data, f"{leak} in {p}"
    # the redacted rows are still there and readable
    diag = (tmp_path / "run" / "long" / "diagnostics.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in diag)
    assert REDACTED in "".join(diag)
    db = sqlite3.connect(tmp_path / "run" / "audit.sqlite")
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for table in tables:
        for row in db.execute(f"SELECT * FROM {table}"):
            text = " ".join(str(v) for v in row)
            assert not any(leak in text for leak in LEAKS), table
    assert db.execute("SELECT COUNT(*) FROM audit_diagnostics").fetchone()[0] == 24 * 6


@pytest.mark.parametrize("text", [leaky_text(i) for i in range(6)])
def test_scrub_removes_every_pattern(text):
    out = scrub(text)
    assert not any(leak in out for leak in LEAKS), out
    assert REDACTED in out


def test_scrub_keeps_ordinary_text():
    text = "chop 61.5 > 55.0; SignatureMethod=HmacSHA256 signal ok, https://www.htx.com/en-us/ path"
    assert scrub(text) == text


def test_scrub_obj_keeps_json_structure():
    obj = {"apiKey": KEY, "list": [SIGNED_URL, 1.5, None], SECRET: True}
    out = scrub_obj(obj)
    dumped = json.dumps(out)
    assert not any(leak in dumped for leak in LEAKS)
    assert out["list"][1:] == [1.5, None] and list(out.values())[-1] is True


from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

from engine.store.scrub import scrub_full  # noqa: E402

_PIECES = st.sampled_from([
    "a", "Z", "0", " ", "=", ":", "%", "%3D", "?", "&", "/", "'", '"', ",", "}", "\n", "://", "https",
    "sign", "Signature", "AccessKeyId", "apiKey", "secret", "Bearer ", "authorization", "x-mexc-apikey",
    SECRET, SETTINGS_KEY, SECRET[:5], "bear", "er", "é",
])


@hsettings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_fast_scrub_equals_the_full_scrub(text):
    assert scrub(text) == scrub_full(text)
    assert scrub(text) == scrub_full(text)  # memoised answer too


def test_memo_is_dropped_when_a_secret_is_registered_later():
    from engine.store.scrub import register_secret

    text = "value tok-late-registered-0042 in text"
    assert scrub(text) == text
    register_secret("tok-late-registered-0042")
    assert scrub(text) == f"value {REDACTED} in text"
