"""The analysis on real candles: a signal replay and a full engine replay of the bundled data,
recorded by the AuditWriter, read back from SQLite and CSV, labelled, regressed, reported."""

from __future__ import annotations

from pathlib import Path
import argparse
import math
import xml.etree.ElementTree as ET
from decimal import Decimal

import pandas as pd
import pytest

from engine.analysis.analyze import AnalysisOptions, analyze, choose_regressors, match_trades
from engine.analysis.cli import add_analyze_parser, run_analyze
from engine.analysis.records import load_run
from engine.analysis.report import print_report, write_report
from engine.analysis.signal_replay import record_signals
from engine.analysis.triple_barrier import Barriers, load_candles
from engine.market.feeds import read_candles_csv
from engine.runtime.events import EventBus
from engine.runtime.replay import run_replay
from engine.settings import Settings
from engine.store.audit import AuditWriter

from test_analysis_triple_barrier import scan

#: the 2018 BTC-quoted set and the XRP perp files: test data since the demo moved to USDT-M perps
DEMO_DATA = Path(__file__).resolve().parent / "fixtures" / "market_2018"

SYMBOLS = ["ADA/BTC", "ETH/BTC", "LTC/BTC", "XMR/BTC", "ZEC/BTC", "XLM/BTC"]
BARRIERS = Barriers(0.008, 0.02, 240, "b240")


@pytest.fixture(scope="module")
def signal_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("signals")
    w = AuditWriter(d)
    n = record_signals(Settings.defaults(), DEMO_DATA, w, symbols=SYMBOLS, every=12)
    w.close()
    assert w.stats.failures == 0 and n > 3000
    return d


@pytest.fixture(scope="module")
def candles():
    return load_candles(DEMO_DATA, symbols=SYMBOLS)


def test_sqlite_and_csv_records_agree(signal_run):
    db = load_run(signal_run)
    csv = load_run(signal_run / "long").signals
    assert db.kind == "sqlite" and load_run(signal_run / "long").kind == "csv"
    both = load_run(signal_run / "audit.sqlite").signals
    assert len(both) == len(db.signals)
    long_db = db.signals[db.signals["profile"] == "long"].reset_index(drop=True)
    assert len(long_db) == len(csv)
    assert db.gates[:3] == ("strategy_enabled", "macro_trend", "trigger_trend")
    assert db.gate_kinds["macro_trend"] == "hard"
    cols = ["ts_ms", "symbol", "side", "valid", "entry_valid", "first_rejection", "score",
            "chop_value", "chop_passed", "pullback_cross_age_value", "f_close", "f_spike_direction"]
    pd.testing.assert_frame_equal(long_db[cols], csv[cols], check_dtype=False)
    assert csv["valid"].dtype == bool and csv["score"].dtype.kind == "f"


def test_labels_on_the_recorded_signals_match_a_direct_scan(signal_run, candles):
    rec = load_run(signal_run)
    res = analyze(rec, candles, AnalysisOptions(barriers=(BARRIERS,), signals="all"))
    lab = res.labels["b240"]
    assert len(lab) == len(rec.signals) and lab["label"].notna().mean() > 0.95
    series = {s: read_candles_csv(DEMO_DATA / f"{s.replace('/', '_')}-5m.csv") for s in SYMBOLS}
    index = {s: {c.ts_ms: i for i, c in enumerate(cs)} for s, cs in series.items()}
    sample = lab.iloc[::37]
    for _, row in sample.iterrows():
        cs = series[row["symbol"]]
        label, ret = scan(cs, index[row["symbol"]][row["ts_ms"]], row["side"], 0.008, 0.02, 240 * 60_000)
        if label is None:
            assert math.isnan(row["label"])
        else:
            assert row["label"] == label and row["exit_ret"] == pytest.approx(ret)
    t = res.label_table.set_index("side")
    for side in ("long", "short"):
        g = lab[lab["side"] == side]
        done = g["complete"].astype(bool)  # late signals are reported apart, not in the win rate
        assert t.loc[side, "tp"] == (g.loc[done, "label"] == 1).sum()
        assert t.loc[side, "late_tp"] == (g.loc[~done, "label"] == 1).sum()
        assert t.loc[side, "break_even"] == pytest.approx(0.02 / 0.028)


def test_fama_macbeth_on_the_recorded_signals(signal_run, candles):
    rec = load_run(signal_run)
    res = analyze(rec, candles, AnalysisOptions(barriers=(BARRIERS,), signals="valid"))
    runs = {(r.target, r.side): r for r in res.fm}
    for side in ("long", "short"):
        run = runs[("signals", side)]
        assert run.result is not None, run.note
        s = run.result.summary
        assert run.result.periods >= 10
        assert s.loc["const", "periods"] == run.result.periods
        assert s["coef"].notna().all() and s["t"].notna().any()
        assert "strategy_enabled" in run.dropped and run.dropped["strategy_enabled"] == "constant"
        assert len(run.regressors) <= 10
        assert runs[("trades", side)].result is None  # a signal replay has no trades


def test_choose_regressors_drops_duplicates_and_constants():
    df = pd.DataFrame({"a_value": [1.0, 2, 3, 4, 5], "b_value": [2.0, 4, 6, 8, 10.01],
                       "c_value": [1.0] * 5, "d_value": [None, None, None, 1.0, 2.0],
                       "e_value": [5.0, 1, 4, 2, 3]})
    chosen, dropped = choose_regressors(df, ["a", "b", "c", "d", "e", "f"])
    assert chosen == ["a_value", "e_value"]
    assert dropped == {"b": "duplicates a", "c": "constant", "d": "mostly missing", "f": "not in the record"}
    assert choose_regressors(df, ["a", "e"], max_n=1)[1] == {"e": "regressor limit"}


def test_reports_terminal_and_files(signal_run, candles, tmp_path):
    from rich.console import Console

    rec = load_run(signal_run)
    res = analyze(rec, candles, AnalysisOptions(barriers=(BARRIERS, Barriers(0.01, 0.01, 120, "b120"))))
    console = Console(record=True, width=200)
    print_report(res, console)
    text = console.export_text()
    assert "Triple-barrier labels" in text and "Fama-MacBeth: signals, long" in text
    assert "break-even win rate" in text
    path = write_report(res, tmp_path / "out")
    md = path.read_text()
    assert "## Fama-MacBeth regressions" in md and "![win rates](plots/win_rates.svg)" in md
    for svg in (tmp_path / "out" / "plots").glob("*.svg"):
        root = ET.parse(svg).getroot()  # well-formed
        assert root.tag.endswith("svg")
    assert (tmp_path / "out" / "plots" / "fm_signals_long.svg").exists()
    tables = {p.name for p in (tmp_path / "out" / "tables").iterdir()}
    assert {"win_rates_labels.csv", "labels_b240.csv", "fm_signals_long_summary.csv",
            "fm_signals_short_coefficients.csv"} <= tables
    back = pd.read_csv(tmp_path / "out" / "tables" / "fm_signals_long_summary.csv", index_col=0)
    assert list(back.columns) == ["coef", "se", "t", "periods", "lags"]


def _parse(argv):
    parser = argparse.ArgumentParser(prog="crot")
    add_analyze_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli(signal_run, tmp_path, capsys):
    out = tmp_path / "report"
    args = _parse(["analyze", "--run", str(signal_run), "--out", str(out), "--horizon-minutes", "240",
                   "--env", str(tmp_path / "none.env"), "--filters", "chop,pullback_gap,min_score"])
    assert args.func is run_analyze
    assert run_analyze(args) == 2  # a named settings file must exist
    args.env = ".env"
    assert run_analyze(args) == 0
    printed = capsys.readouterr().out
    assert "report written to" in printed and (out / "report.md").exists()
    assert "custom" in (out / "report.md").read_text()  # the --horizon-minutes barrier set
    assert run_analyze(_parse(["analyze", "--run", str(tmp_path / "missing")])) == 2
    empty = tmp_path / "empty"
    AuditWriter(empty).close()
    (empty / "long").mkdir(parents=True)
    (empty / "long" / "trades.csv").write_text("ts_ms\n")
    assert run_analyze(_parse(["analyze", "--run", str(empty / "long"), "--no-files"])) == 1


async def test_full_engine_replay_is_recorded_and_analysed(tmp_path, candles):
    settings = Settings.defaults()
    bus = EventBus()
    w = AuditWriter.from_settings(settings, tmp_path)
    bus.subscribe(w)
    flusher = __import__("asyncio").create_task(w.run_flusher(0.05))
    summary = await run_replay(settings, data_dir=DEMO_DATA, symbols=["XMR/BTC", "ZEC/BTC"], bus=bus,
                               max_steps=1900)
    await w.aclose()
    await flusher
    assert w.stats.failures == 0 and w.stats.dropped_events == 0
    rec = load_run(tmp_path)
    csv = load_run(tmp_path / "long")
    assert summary.trades > 0
    assert len(rec.trades) == summary.trades == len(csv.trades) + len(load_run(tmp_path / "short").trades)
    by_key = {(t["symbol"], int(t["opened_ms"])): t for t in summary.trade_rows}
    for _, t in rec.trades.iterrows():  # the audit trail agrees with the state store
        ref = by_key[(t["symbol"], int(t["opened_ms"]))]
        assert Decimal(str(t["pnl"])) == pytest.approx(Decimal(ref["pnl"]))
        assert t["exit_price"] == pytest.approx(float(ref["exit_price"]))
    assert len(match_trades(rec.trades, rec.signals, 360)) == len(rec.trades)
    assert {"order", "stop"} <= set(rec.diagnostics["kind"])
    assert len(rec.cycles) == 2 * 1900 and len(rec.account) == 1900
    res = analyze(rec, candles, AnalysisOptions(barriers=(BARRIERS,)))
    assert len(res.trade_table) >= 1 and res.trade_table["trades"].sum() == summary.trades
    assert not res.symbols_without_candles
