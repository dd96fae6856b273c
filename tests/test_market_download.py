"""`crot download` against loopback venues: ccxt's real HTX and MEXC clients over HTTP.

The venues (tests/fake_venue_history.py) serve real recordings (Bybit perps as HTX's candles,
Bybit funding as HTX's funding history, Binance / Gate.io candles as MEXC's) and enforce the
documented page limits: at most 2000 candles per kline request, at most 100 funding rows,
funding newest first and truncated. What is checked here: the files a replay reads (names,
columns, units, values as served), paging, resuming (counted in venue requests), atomic files
after a kill, one-line errors per symbol, bad input (exit 2), and that `crot replay --data`
runs on the downloaded folder unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
from pathlib import Path

import pytest

from engine.exchange.retry import RetryPolicy
from engine.exchange.testing import deny_network
from engine.market.download import COVERAGE_FILE, download
from engine.market.download_cli import add_download_parser
from engine.market.feeds import read_candles_csv, read_funding_csv
from engine.runtime.replay_data import parse_timerange
from engine.settings import load_settings

from fake_htx_venue import BTC, ETH, Fault, Reply
from fake_venue_history import (
    FUNDING_V1_MAX, KLINE_MAX, PAXG, SOL, FakeHtxHistory, FakeMexcHistory, perp2024_history,
)

API_KEY = "AKfake-0d1e2f3a-download-key"
SECRET = "SKfake-4b5c6d7e-download-secret"
TF = 300_000
HISTORY = perp2024_history()
START, END = parse_timerange("20240725-20240809")  # the whole fixture: 4320 candles per coin
ENV = "COINS=eth,sol\nGOLD_COINS=xaut,paxg\nGOLD_TIMEFRAME=1h\n"  # xaut: not on the venue, paxg is


def _env(tmp: Path, text: str = ENV) -> Path:
    p = tmp / "test.env"
    p.write_text(text)
    return p


def _settings(tmp: Path, text: str = ENV):
    return load_settings(_env(tmp, text), missing_ok=False)


@contextlib.asynccontextmanager
async def serve(now_ms: int, **htx_kw):
    """HTX and MEXC loopback venues whose clocks stand at ``now_ms``; nothing else is reachable."""
    with deny_network() as refused:
        async with FakeHtxHistory(api_key=API_KEY, secret=SECRET, series=HISTORY.candles,
                                  funding_history=HISTORY.funding, start_candles=10, **htx_kw) as htx:
            htx.advance_to(now_ms)
            async with FakeMexcHistory(HISTORY.reference, now_ms=lambda: htx.now_ms) as mexc:
                yield htx, mexc
    assert refused == []


@pytest.fixture
async def venues():
    """The venues after the last recorded candle."""
    async with serve(END) as v:
        yield v


def _configs(htx: FakeHtxHistory, mexc: FakeMexcHistory):
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, reconcile_delay=0.01, seed=1)
    return htx.htx_config(retry=retry), mexc.config()


def _cli(argv: list[str], htx: FakeHtxHistory, mexc: FakeMexcHistory) -> int:
    parser = argparse.ArgumentParser(prog="crot")
    sub = parser.add_subparsers(dest="command", required=True)
    add_download_parser(sub, lambda env, missing_ok: load_settings(env, missing_ok=missing_ok),
                        venue_configs=lambda s: _configs(htx, mexc))
    args = parser.parse_args(["download", *argv])
    return args.func(args)


async def run_cli(argv: list[str], htx: FakeHtxHistory, mexc: FakeMexcHistory) -> int:
    # the command runs its own event loop (asyncio.run): in a thread, so the venues keep serving
    return await asyncio.to_thread(_cli, argv, htx, mexc)


async def fetch(tmp: Path, htx: FakeHtxHistory, mexc: FakeMexcHistory, start=START, end=END, **kw):
    h, m = _configs(htx, mexc)
    return await download(_settings(tmp), tmp / "data", start, end, htx_config=h, mexc_config=m,
                          clock_ms=lambda: htx.now_ms, **kw)


def _in_range(candles, lo=START, hi=END):
    return [c for c in candles if lo <= c.ts_ms < hi]


def _history_requests(htx: FakeHtxHistory, mexc: FakeMexcHistory) -> int:
    return len(htx.kline_requests()) + len(htx.funding_requests()) + len(mexc.kline_requests())


# --------------------------------------------------------------------------- layout, paging, replay


async def test_download_writes_the_replay_layout_then_crot_replay_runs_on_it(tmp_path, venues, capsys, monkeypatch):
    htx, mexc = venues
    data = tmp_path / "data"
    code = await run_cli(["--env", str(_env(tmp_path)), "--data", str(data), "--timerange", "20240725-20240809"],
                         htx, mexc)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""  # no progress bar: stderr is not a terminal
    assert f"replay it with: crot replay --data {data}" in out

    names = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
    assert names == [COVERAGE_FILE, "BTC_USDT_USDT-5m-futures.csv.gz", "BTC_USDT_USDT-8h-funding_rate.csv.gz",
                     "ETH_USDT_USDT-5m-futures.csv.gz", "ETH_USDT_USDT-8h-funding_rate.csv.gz",
                     "PAXG_USDT_USDT-5m-futures.csv.gz", "SOL_USDT_USDT-5m-futures.csv.gz",
                     "SOL_USDT_USDT-8h-funding_rate.csv.gz", "reference/BTC_USDT_USDT-5m-futures.csv.gz",
                     "reference/ETH_USDT_USDT-5m-futures.csv.gz", "reference/SOL_USDT_USDT-5m-futures.csv.gz"]
    with gzip.open(data / "BTC_USDT_USDT-5m-futures.csv.gz", "rt") as fh:
        assert fh.readline() == "timestamp_ms,open,high,low,close,volume\n"
    with gzip.open(data / "BTC_USDT_USDT-8h-funding_rate.csv.gz", "rt") as fh:
        assert fh.readline() == "timestamp_ms,funding_rate\n"

    # HTX candles: exactly the served candles (open time ms, USDT prices, coin volume)
    for symbol in (BTC, ETH, SOL, PAXG):
        base = symbol.split("/")[0]
        got = read_candles_csv(data / f"{base}_USDT_USDT-5m-futures.csv.gz")
        assert got == _in_range(HISTORY.candles[symbol]), symbol
    assert len(read_candles_csv(data / "ETH_USDT_USDT-5m-futures.csv.gz")) == 4320
    # funding: every recorded event in the range, at its time
    for symbol in (BTC, ETH, SOL):
        base = symbol.split("/")[0]
        got = read_funding_csv(data / f"{base}_USDT_USDT-8h-funding_rate.csv.gz")
        want = [(t, float(r)) for t, r in HISTORY.funding[symbol] if START <= t < END]
        assert got == want and len(want) == 45
    # reference: MEXC's candles, volume back in coins (MEXC sends contracts); ETH only from 08-01
    for symbol in (BTC, ETH, SOL):
        base = symbol.split("/")[0]
        got = read_candles_csv(data / "reference" / f"{base}_USDT_USDT-5m-futures.csv.gz")
        want = _in_range(HISTORY.reference[symbol])
        assert [(c.ts_ms, c.open, c.high, c.low, c.close) for c in got] == \
               [(c.ts_ms, c.open, c.high, c.low, c.close) for c in want]
        assert [c.volume for c in got] == pytest.approx([c.volume for c in want], rel=1e-12)
    assert len(read_candles_csv(data / "reference" / "ETH_USDT_USDT-5m-futures.csv.gz")) == 2304

    # paging: 4320 candles = 3 windows of at most 2000 slots, by from/to (never `size`)
    for code_ in ("BTC-USDT", "ETH-USDT", "SOL-USDT", "PAXG-USDT"):
        reqs = htx.kline_requests(code_)
        assert len(reqs) == 3
        for r in reqs:
            assert "size" not in r.query
            assert (int(r.query["to"]) - int(r.query["from"])) // 300 + 1 <= KLINE_MAX
    assert len(mexc.kline_requests(ETH)) == 3
    assert htx.refused == [] and htx.unexpected == [] and mexc.refused == []

    # `crot replay --data` reads the folder unchanged
    from engine.cli import main

    monkeypatch.setenv("COLUMNS", "250")
    code = await asyncio.to_thread(main, ["replay", "--data", str(data), "--env", str(_env(tmp_path)),
                                          "--timerange", "20240805-20240806", "--steps", "12", "--quiet",
                                          "--no-record"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "gold PAXG/USDT:USDT" in out  # the gold proxy is read, not traded
    assert "recorded events, 3 of 3 symbols" in out  # BTC, ETH, SOL funding
    assert "a second venue's recorded candles for 3 of 3 symbols" in out


# --------------------------------------------------------------------------- resume


async def test_a_second_run_fetches_only_what_is_missing(tmp_path):
    # venues whose clocks stand at 2024-08-05 12:02: a forming candle is served
    mid = parse_timerange("20240805-")[0] + 12 * 3600_000 + 120_000
    async with serve(mid) as (venue, ref):
        first = await fetch(tmp_path, venue, ref, end=None)
        assert first.errors == []
        newest = (mid // TF) * TF  # the forming candle opened here: not written
        eth = read_candles_csv(tmp_path / "data" / "ETH_USDT_USDT-5m-futures.csv.gz")
        assert eth[-1].ts_ms == newest - TF and eth == _in_range(HISTORY.candles[ETH], START, newest)

        before = _history_requests(venue, ref)
        again = await fetch(tmp_path, venue, ref, end=None)  # same moment: nothing is missing
        assert _history_requests(venue, ref) == before and again.requests == 0
        assert all(r.added == 0 for r in again.results)

        venue.advance(100)  # 8 h 20 min later: 100 new candles, one funding event
        tail_from = newest // 1000
        before_htx, before_ref = len(venue.kline_requests()), len(ref.kline_requests())
        later = await fetch(tmp_path, venue, ref, end=None)
        assert later.errors == []
        new_htx = venue.kline_requests()[before_htx:]
        assert sorted(r.query["contract_code"] for r in new_htx) == ["BTC-USDT", "ETH-USDT", "PAXG-USDT",
                                                                     "SOL-USDT"]
        assert all(int(r.query["from"]) == tail_from for r in new_htx)  # only the tail
        assert len(ref.kline_requests()) - before_ref == 3
        added = {(r.venue, r.symbol, r.kind): r.added for r in later.results}
        assert added[("htx", ETH, "candles")] == 100 and added[("mexc", SOL, "candles")] == 100
        assert added[("htx", PAXG, "candles")] == 0  # its recording ended on 07-30
        assert added[("htx", BTC, "funding")] == 1
        eth = read_candles_csv(tmp_path / "data" / "ETH_USDT_USDT-5m-futures.csv.gz")
        assert eth == _in_range(HISTORY.candles[ETH], START, newest + 100 * TF)


async def test_a_failed_symbol_resumes_from_its_last_saved_page(tmp_path, venues, capsys):
    htx, mexc = venues
    first_from = START // 1000
    fault = htx.inject(Fault("GET", "/linear-swap-ex/market/history/kline", times=10, execute=False,
                             match=lambda r: r.query.get("contract_code") == "ETH-USDT"
                             and int(r.query["from"]) > first_from,
                             reply=Reply(status=502, text="<html>502 Bad Gateway</html>"), name="eth down"))
    code = await run_cli(["--env", str(_env(tmp_path)), "--data", str(tmp_path / "data"),
                          "--timerange", "20240725-20240809"], htx, mexc)
    out, err = capsys.readouterr()
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ETH/USDT:USDT candles (htx): ")
    assert "Traceback" not in err and fault.hits
    assert "run the same command again to resume" in out
    eth = read_candles_csv(tmp_path / "data" / "ETH_USDT_USDT-5m-futures.csv.gz")
    assert eth == _in_range(HISTORY.candles[ETH])[:KLINE_MAX]  # the page that arrived is kept
    assert len(read_candles_csv(tmp_path / "data" / "SOL_USDT_USDT-5m-futures.csv.gz")) == 4320  # others: done

    fault.times = 0
    before = len(htx.kline_requests())
    code = await run_cli(["--env", str(_env(tmp_path)), "--data", str(tmp_path / "data"),
                          "--timerange", "20240725-20240809"], htx, mexc)
    assert code == 0, capsys.readouterr().err
    resumed = htx.kline_requests()[before:]
    assert [(r.query["contract_code"], int(r.query["from"])) for r in resumed] == \
           [("ETH-USDT", first_from + KLINE_MAX * 300), ("ETH-USDT", first_from + 2 * KLINE_MAX * 300)]
    assert read_candles_csv(tmp_path / "data" / "ETH_USDT_USDT-5m-futures.csv.gz") == _in_range(HISTORY.candles[ETH])


async def test_a_killed_run_leaves_complete_files_and_resumes(tmp_path, venues):
    htx, mexc = venues
    second_page = START // 1000 + KLINE_MAX * 300
    htx.inject(Fault("GET", "/linear-swap-ex/market/history/kline", delay=1.0, name="slow",
                     match=lambda r: r.query.get("contract_code") == "SOL-USDT" and int(r.query["from"]) == second_page))
    task = asyncio.create_task(fetch(tmp_path, htx, mexc))
    while not any(r.fault == "slow" for r in htx.requests):
        await asyncio.sleep(0.01)
    task.cancel()  # as Ctrl-C / a kill would, while a request is in flight
    with pytest.raises(asyncio.CancelledError):
        await task
    data = tmp_path / "data"
    assert not [p for p in data.rglob("*") if p.name.endswith(".tmp")]
    assert read_candles_csv(data / "ETH_USDT_USDT-5m-futures.csv.gz") == _in_range(HISTORY.candles[ETH])
    assert len(read_candles_csv(data / "SOL_USDT_USDT-5m-futures.csv.gz")) == KLINE_MAX  # saved on the way out
    assert not (data / "BTC_USDT_USDT-5m-futures.csv.gz").exists()
    record = json.loads((data / COVERAGE_FILE).read_text())
    assert record["covered"]["SOL_USDT_USDT-5m-futures.csv.gz"] == [[START, START + KLINE_MAX * TF]]

    before = len(htx.kline_requests())
    report = await fetch(tmp_path, htx, mexc)
    assert report.errors == []
    resumed = [(r.query["contract_code"], int(r.query["from"])) for r in htx.kline_requests()[before:]]
    assert ("ETH-USDT", START // 1000) not in resumed and resumed[0] == ("SOL-USDT", second_page)
    assert read_candles_csv(data / "SOL_USDT_USDT-5m-futures.csv.gz") == _in_range(HISTORY.candles[SOL])
    assert read_candles_csv(data / "BTC_USDT_USDT-5m-futures.csv.gz") == _in_range(HISTORY.candles[BTC])


# --------------------------------------------------------------------------- errors


async def test_a_symbol_that_does_not_exist_is_one_line_and_the_others_download(tmp_path, venues, capsys):
    htx, mexc = venues
    code = await run_cli(["--env", str(_env(tmp_path)), "--data", str(tmp_path / "data"), "--symbols", "eth,nope,so",
                          "--timerange", "20240725-20240809", "--no-reference"], htx, mexc)
    out, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines() == ["error: NOPE/USDT:USDT: HTX lists no such USDT-M perpetual",
                                "error: SO/USDT:USDT: HTX lists no such USDT-M perpetual; close: SOL/USDT:USDT"]
    assert len(read_candles_csv(tmp_path / "data" / "ETH_USDT_USDT-5m-futures.csv.gz")) == 4320
    assert len(read_candles_csv(tmp_path / "data" / "BTC_USDT_USDT-5m-futures.csv.gz")) == 4320
    assert not (tmp_path / "data" / "reference").exists()
    assert not [r for r in htx.kline_requests() if r.query.get("contract_code") in ("NOPE-USDT", "SO-USDT")]


async def test_a_listed_contract_the_venue_has_no_history_for_is_one_line(tmp_path, venues):
    htx, mexc = venues
    htx.kline_missing.add("SOL-USDT")  # listed, but its kline answers HTX 1013
    report = await fetch(tmp_path, htx, mexc)
    assert len(report.errors) == 1
    assert report.errors[0].startswith("SOL/USDT:USDT candles (htx): [htx 1013]")
    assert report.unknown == [SOL]  # the venue says it does not exist: bad input, exit 2
    assert len(read_candles_csv(tmp_path / "data" / "ETH_USDT_USDT-5m-futures.csv.gz")) == 4320
    assert len(read_funding_csv(tmp_path / "data" / "SOL_USDT_USDT-8h-funding_rate.csv.gz")) == 45


async def test_no_gold_proxy_on_the_venue_is_one_line(tmp_path, venues):
    htx, mexc = venues
    h, m = _configs(htx, mexc)
    settings = _settings(tmp_path, "COINS=eth\nGOLD_COINS=xaut\n")
    report = await download(settings, tmp_path / "data", START, END, htx_config=h, mexc_config=m,
                            clock_ms=lambda: htx.now_ms, funding=False, reference=False)
    assert report.errors == ["gold proxy: none of GOLD_COINS=xaut has an HTX USDT-M perpetual "
                             "(the macro overlay would be unavailable in the replay)"]
    assert [r.symbol for r in report.results] == [ETH, BTC]


@pytest.mark.parametrize("value, says", [
    ("20240801", "expected START-END as YYYYMMDD-YYYYMMDD"),
    ("2024-08-01", "start '2024' is not a date YYYYMMDD"),
    ("20240809-20240801", "the end must be after the start"),
    ("2024080-", "'2024080' is not a date YYYYMMDD"),
    ("-20240809", "give a start date"),
])
async def test_a_bad_timerange_is_one_line_and_exit_2(tmp_path, venues, capsys, value, says):
    htx, mexc = venues
    code = await run_cli(["--env", str(_env(tmp_path)), "--data", str(tmp_path / "data"), f"--timerange={value}"],
                         htx, mexc)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: --timerange") and says in err
    assert _history_requests(htx, mexc) == 0 and not (tmp_path / "data").exists()


async def test_a_range_after_the_newest_candle_is_one_line_and_exit_2(tmp_path, venues, capsys):
    htx, mexc = venues
    code = await run_cli(["--env", str(_env(tmp_path)), "--data", str(tmp_path / "data"),
                          "--timerange", "20240809-20240810"], htx, mexc)
    _, err = capsys.readouterr()
    assert code == 2
    assert err == ("error: --timerange starts at 2024-08-09 00:00 UTC, but the newest closed 5m candle opened at "
                   "2024-08-08 23:55 UTC: nothing to download\n")


# --------------------------------------------------------------------------- funding paging, progress


async def test_full_funding_pages_are_split_so_no_event_is_lost(tmp_path, venues):
    htx, mexc = venues
    # ask 10 rows at a time: every 16-day window (45 events) comes back full, newest first
    report = await fetch(tmp_path, htx, mexc, funding_page=10, reference=False)
    assert report.errors == []
    for symbol, code in ((BTC, "BTC-USDT"), (ETH, "ETH-USDT")):
        got = read_funding_csv(tmp_path / "data" / f"{symbol.split('/')[0]}_USDT_USDT-8h-funding_rate.csv.gz")
        assert got == [(t, float(r)) for t, r in HISTORY.funding[symbol] if START <= t < END]
        reqs = htx.funding_requests(code)
        assert len(reqs) > 5 and all(r.query["limit"] == "10" and "end_time" in r.query for r in reqs)
    assert htx.refused == []


async def test_a_venue_serving_fewer_rows_than_asked_loses_no_funding_event(tmp_path, monkeypatch):
    """HTX documents 50 rows at most for its v1 funding history page: a venue that silently
    serves 50 where 100 were asked must not look complete. One window holds the demo's 69
    recorded BTC events (2024-07-17 .. 08-09); the download still gets every one of them."""
    from engine.market import download as dl

    monkeypatch.setattr(dl, "FUNDING_WINDOW_MS", 32 * 86_400_000)  # the whole range in one window
    start = parse_timerange("20240717-20240809")[0]
    events = [(t, r) for t, r in HISTORY.funding[BTC] if start <= t < END]
    assert len(events) > 60 > FUNDING_V1_MAX
    async with serve(END, funding_serve_max=FUNDING_V1_MAX) as (htx, mexc):
        report = await fetch(tmp_path, htx, mexc, start=start, symbols=["btc"], reference=False)
        reqs = htx.funding_requests("BTC-USDT")
    assert report.errors == [] and htx.refused == []
    got = read_funding_csv(tmp_path / "data" / "BTC_USDT_USDT-8h-funding_rate.csv.gz")
    assert got == [(t, float(r)) for t, r in events]
    assert len(reqs) == 3 and all(r.query["limit"] == "100" for r in reqs)  # the full page split once


async def test_progress_reaches_the_total(tmp_path, venues):
    htx, mexc = venues
    seen: list[tuple[int, int, str]] = []
    await fetch(tmp_path, htx, mexc, progress=lambda done, total, what: seen.append((done, total, what)))
    assert seen and seen[-1][0] == seen[-1][1]
    # 4 HTX series x 4320 slots + 3 reference x 4320 + 3 funding windows
    assert seen[-1][1] == 7 * 4320 + 3
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)

