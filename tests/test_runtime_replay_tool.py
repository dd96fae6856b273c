"""`crot replay` as a tool, on the bundled USDT-M demo: time range, symbols, data folder,
one-line errors (exit 2, never a traceback), a --db that cannot be resumed, and what the
replay takes from the folder: recorded funding charged at its event times, the second venue's
candles as the cross-exchange reference, the gold proxy for the macro overlay."""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from engine.cli import main
from engine.market.feeds import FileFeed, read_candles_csv, read_funding_csv
from engine.runtime.events import EventBus, Regime
from engine.runtime.replay import DEMO_DATA, DEMO_SYMBOLS, run_replay
from engine.runtime.replay_data import ReplayDataError, parse_timerange
from engine.settings import Settings

M5 = 300_000
ETH, BTC = "ETH/USDT:USDT", "BTC/USDT:USDT"


def ms(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> int:
    return int(datetime(y, m, d, h, mi, tzinfo=timezone.utc).timestamp() * 1000)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["replay", "--quiet", "--no-record", *args])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- bad input: one line, exit 2
@pytest.mark.parametrize(("args", "says"), [
    (["--symbols", "BTC,XRP"], ["XRP not recorded", "recorded: AVAX, BCH, BTC, DOT, ETH"]),
    (["--symbols", ","], ["no symbol given", "recorded: AVAX"]),
    (["--timerange", "20250101-20250105"], ["has no candles", "the data covers 2024-07-17 00:00 .. 2024-08-09 00:00"]),
    (["--timerange", "20240809-20240801"], ["the end must be after the start"]),
    (["--timerange", "2024-08-01"], ["not a date YYYYMMDD"]),
    (["--timerange", "20240801"], ["expected START-END"]),
    (["--timerange", "20240899-"], ["start '20240899' is not a date"]),
])
def test_bad_arguments_are_one_line_errors(capsys, args, says):
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for s in says:
        assert s in err, err


def test_bad_data_folders(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--data", str(tmp_path / "nope"))
    assert code == 2 and "no such folder" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "--data", str(tmp_path))
    assert code == 2 and "no recorded 5m candle files" in err and "the folder has none" in err
    (tmp_path / "ETH_USDT_USDT-1h-futures.csv").write_text("timestamp_ms,open,high,low,close,volume\n")
    code, _, err = run_cli(capsys, "--data", str(tmp_path))
    assert code == 2 and "found only: 1h futures" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ETH_USDT_USDT-5m-futures.csv").write_text(
        "timestamp_ms,open,high,low,close,volume\n1722470400000,1,2,0.5,1.5,10\n1722470700000,1,x,1,1,1\n")
    code, _, err = run_cli(capsys, "--data", str(bad))
    assert code == 2 and "ETH_USDT_USDT-5m-futures.csv:3" in err and "Traceback" not in err


def test_a_db_holding_a_previous_run_is_refused_not_silently_restarted(capsys, tmp_path):
    db = tmp_path / "state.sqlite"
    code, out, _ = run_cli(capsys, "--db", str(db), "--steps", "160", "--symbols", "AVAX,BTC,ETH,NEAR,SOL")
    assert code == 0 and "Replay summary" in out
    # as after a kill: the file holds orders / positions / trades of a simulated account that
    # no longer exists; a second run must not pair them with a fresh one
    code, out, err = run_cli(capsys, "--db", str(db), "--symbols", "AVAX,BTC,ETH,NEAR,SOL")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"--db {db} already holds a replay's state (" in err and "use a new --db file" in err
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    code, _, err = run_cli(capsys, "--db", str(junk))
    assert code == 2 and "not a CROT state file" in err


def test_timerange_and_short_symbols(capsys):
    code, out, err = run_cli(capsys, "--timerange", "20240801-20240809", "--symbols", "btc,ETH/USDT", "--steps", "3")
    assert code == 0, err
    assert "2024-08-01 00:00 .. 2024-08-01 00:15 UTC (3" in out
    assert "BTC/USDT:USDT, ETH/USDT:USDT" in out
    assert "warm-up" in out and "candles before 2024-08-01 00:00 UTC" in out


def test_parse_timerange():
    assert parse_timerange("20240801-20240809") == (ms(2024, 8, 1), ms(2024, 8, 9))
    assert parse_timerange("20240801-") == (ms(2024, 8, 1), None)
    assert parse_timerange("-20240809") == (None, ms(2024, 8, 9))
    assert parse_timerange(None) == (None, None)
    with pytest.raises(ReplayDataError):
        parse_timerange("-")


# --------------------------------------------------------------------------- what the replay takes from the folder
async def test_the_range_is_replayed_with_the_earlier_candles_as_warm_up():
    start, end = ms(2024, 8, 4), ms(2024, 8, 4, 2)
    steps = []
    summary = await run_replay(Settings.defaults(), symbols=["BTC", "ETH"], start_ms=start, end_ms=end,
                               on_step=lambda done, total: steps.append((done, total)))
    assert summary.steps == 24 and steps[-1] == (24, 24)
    assert (summary.start_ms, summary.end_ms) == (start, end)
    assert summary.inputs["warm-up"].startswith(f"{(start - ms(2024, 7, 17)) // M5} candles before")


async def test_recorded_funding_is_charged_at_the_event_times_with_the_sign_of_each_side():
    captured = {}

    def keep(sim):
        captured["sim"] = sim
        return sim

    summary = await run_replay(Settings.defaults(), exchange_wrapper=keep)  # the whole demo
    sim = captured["sim"]
    assert summary.funding_events == len(sim.funding_payments) > 10
    assert summary.funding == sum(p.amount for p in sim.funding_payments) != 0
    events = {s: dict(read_funding_csv(DEMO_DATA / f"{s.split('/')[0]}_USDT_USDT-8h-funding_rate.csv.gz"))
              for s in DEMO_SYMBOLS}
    sides_seen = set()
    for p in sim.funding_payments:
        assert p.rate == Decimal(repr(events[p.symbol][p.ts_ms]))  # the recorded event and rate
        held = [t for t in summary.trade_rows
                if t["symbol"] == p.symbol and t["opened_ms"] <= p.ts_ms < t["closed_ms"]]
        assert held, f"funding charged at {p.ts_ms} on {p.symbol} without an open position"
        sign = 1 if held[0]["side"] == "long" else -1
        if p.rate != 0:
            assert (p.amount < 0) == (sign * p.rate > 0)  # longs pay positive funding, shorts receive it
            sides_seen.add(held[0]["side"])
    assert sides_seen == {"long", "short"}
    # in the PnL: the account ends with the trades' PnL plus the funding
    trades_pnl = sum(Decimal(t["pnl"]) for t in summary.trade_rows)
    assert summary.end_equity - summary.start_equity == pytest.approx(trades_pnl + summary.funding, abs=Decimal("1e-6"))


async def test_the_second_venue_is_the_reference_and_the_gold_proxy_feeds_the_regime():
    now = ms(2024, 8, 5, 6)  # in the crash, Gate.io recorded for ETH, Binance for BTC
    start = now - 6 * M5
    grabbed = {}
    bus = EventBus()
    regimes = []
    bus.subscribe(lambda ev: regimes.append(ev) if isinstance(ev, Regime) else None)

    def at_step(done, total):
        if start + done * M5 == now:
            e = grabbed["engine"]
            grabbed["checks"] = {s: e.reference.check("long", s, now, e.settings.side("long")) for s in (ETH, BTC)}
            grabbed["tops"] = {s: (e.reference.top("htx", s), e.reference.top("mexc", s)) for s in (ETH, BTC)}

    summary = await run_replay(Settings.defaults(), symbols=["ETH", "BTC"], start_ms=start, end_ms=now + M5,
                               on_engine=lambda e: grabbed.__setitem__("engine", e), on_step=at_step, bus=bus)
    assert "2 of 2 symbols" in summary.inputs["reference"]
    for s, ref_dir in ((ETH, "reference"), (BTC, "reference")):
        mine = {c.ts_ms: c for c in read_candles_csv(DEMO_DATA / f"{s.split('/')[0]}_USDT_USDT-5m-futures.csv.gz")}
        other = {c.ts_ms: c for c in read_candles_csv(DEMO_DATA / ref_dir / f"{s.split('/')[0]}_USDT_USDT-5m-futures.csv.gz")}
        last = now - M5  # the candle that has just closed
        htx, ref = grabbed["tops"][s]
        # the reference is the other venue's close; the HTX side is the simulator's book at
        # the traded venue's close (its touch: within one tick of it)
        assert float(ref.mid) == pytest.approx(other[last].close, rel=1e-9) and ref.venue == "reference"
        assert abs(float(htx.mid) - mine[last].close) <= float(grabbed["engine"].markets[s].price_step)
        r = grabbed["checks"][s]
        assert r.status == "ok" and r.premium_bps == pytest.approx((float(htx.mid) / other[last].close - 1) * 1e4)
        real = (mine[last].close / other[last].close - 1) * 1e4  # a real premium between two venues
        assert real != 0 and abs(r.premium_bps - real) < 0.5
    # the demo's gold proxy is PAXG (its folder's replay.env); in August it has no data
    assert summary.data_settings == {"GOLD_COINS": "paxg,xaut", "GOLD_TIMEFRAME": "1h"}
    assert summary.inputs["macro inputs"].startswith("gold PAXG/USDT (07-22..07-30)")
    assert {r.regime for r in regimes} == {"unavailable"}


async def test_the_macro_regime_lives_while_the_gold_proxy_has_data():
    regimes = []
    bus = EventBus()
    bus.subscribe(lambda ev: regimes.append(ev) if isinstance(ev, Regime) else None)
    await run_replay(Settings.defaults(), symbols=["BTC"], start_ms=ms(2024, 7, 27), end_ms=ms(2024, 7, 27, 1), bus=bus)
    assert regimes and all(r.regime in ("normal", "risk_off", "panic", "risk_on") for r in regimes), \
        [(r.regime, r.inputs) for r in regimes]


def test_a_user_setting_wins_over_the_folder_settings(tmp_path):
    from engine.runtime.replay_data import apply_data_settings
    from engine.settings.envfile import parse_lines
    from engine.settings.loader import settings_from_assignments

    mine = settings_from_assignments(parse_lines(["GOLD_TIMEFRAME=4h"])[0])
    s, applied = apply_data_settings(mine, DEMO_DATA)
    assert applied == {"GOLD_COINS": "paxg,xaut"}
    assert s.side("short").gold_timeframe == "4h" and s.side("long").gold_coins == ("paxg", "xaut")
    (tmp_path / "replay.env").write_text("GOLD_TIMEFRAME=7q\n")
    with pytest.raises(ReplayDataError, match=r"replay.env:1: .*7q"):
        apply_data_settings(Settings.defaults(), tmp_path)


def test_gzip_and_plain_files_read_the_same(tmp_path):
    src = DEMO_DATA / "ETH_USDT_USDT-5m-futures.csv.gz"
    plain = tmp_path / "ETH_USDT_USDT-5m-futures.csv"
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    assert read_candles_csv(plain) == read_candles_csv(src)
    feed = FileFeed.from_directory(tmp_path)
    assert feed.symbols == (ETH,) and len(feed.history(ETH)) == 6624
    shutil.copy(src, tmp_path)
    with pytest.raises(ValueError, match="two recorded files"):
        FileFeed.from_directory(tmp_path)


def test_the_demo_is_small_and_documented():
    files = [p for p in DEMO_DATA.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3_000_000
    assert (DEMO_DATA / "PROVENANCE.md").read_text().count("GPL-3.0") >= 1
    assert len(list(DEMO_DATA.glob("*-5m-futures.csv.gz"))) == len(DEMO_SYMBOLS) == 10
    assert (DEMO_DATA / "PAXG_USDT-5m.csv.gz").exists()
    assert len(list((DEMO_DATA / "reference").glob("*.csv.gz"))) == 10
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "GPL-3.0" in readme
