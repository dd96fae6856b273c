"""The replay results report: figures against hand computations, the report files in the run
folder, and `crot replay compare RUN_A RUN_B`."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest

from engine.cli import main
from engine.runtime.replay import ReplaySummary
from engine.runtime.replay_metrics import daily_returns, group_stats, sharpe_sortino, trade_stats
from engine.runtime.report import REPORT_JSON, write_replay_report

H = 3_600_000
DAY = 24 * H
T0 = 1_722_470_400_000 + 7 * 60_000  # 2024-08-01 00:07 UTC: not on a day boundary


def trade(symbol, side, pnl, fees, hours, reason, opened=T0):
    return {"profile": side, "symbol": symbol, "side": side, "opened_ms": opened, "closed_ms": opened + int(hours * H),
            "entry_price": "1", "exit_price": "1", "contracts": "1", "pnl": str(pnl), "fees": str(fees), "reason": reason}


ROWS = [trade("BTC/USDT:USDT", "long", "2.0", "0.1", 1, "take_profit"),
        trade("BTC/USDT:USDT", "short", "-1.0", "0.1", 3, "stop_loss"),
        trade("ETH/USDT:USDT", "long", "3.0", "0.2", 2, "runner_trailing"),
        trade("ETH/USDT:USDT", "long", "-2.0", "0.2", 6, "stop_loss")]


def summary(rows=ROWS, equity=(1010.0, 990.0, 1019.7), rejections=None) -> ReplaySummary:
    curve = [(T0 + i * DAY + 5 * H, Decimal(str(e))) for i, e in enumerate(equity)]
    return ReplaySummary(start_ms=T0, end_ms=T0 + 3 * DAY, steps=864, symbols=["BTC/USDT:USDT", "ETH/USDT:USDT"],
                         trades=len(rows), wins=sum(1 for r in rows if Decimal(r["pnl"]) > 0),
                         start_equity=Decimal(1000), end_equity=Decimal(str(equity[-1])), max_drawdown=0.0198,
                         fees=sum((Decimal(r["fees"]) for r in rows), Decimal(0)),
                         rejections=rejections or {"macro_trend": 10, "chop": 3}, trade_rows=list(rows),
                         funding=Decimal("-0.3"), funding_events=4, drawdown_peak_ms=curve[0][0],
                         drawdown_trough_ms=curve[1][0], equity_curve=curve)


def test_trade_figures_by_hand():
    s = trade_stats(ROWS)
    assert (s.trades, s.wins, s.win_rate) == (4, 2, 0.5)
    assert s.pnl == pytest.approx(2.0) and s.fees == pytest.approx(0.6)
    assert s.profit_factor == pytest.approx(5.0 / 3.0)  # (2 + 3) / (1 + 2)
    assert s.expectancy == pytest.approx(0.5)
    assert s.avg_duration_h == pytest.approx(3.0)
    g = group_stats(ROWS, "reason")
    assert list(g) == ["runner_trailing", "stop_loss", "take_profit"]
    assert g["stop_loss"].win_rate == 0 and g["stop_loss"].profit_factor == 0
    assert math.isinf(g["take_profit"].profit_factor)  # no loss: infinite, not a division error
    assert math.isnan(trade_stats([]).profit_factor) and math.isnan(trade_stats([]).win_rate)


def test_daily_returns_sharpe_and_sortino_by_hand():
    r = daily_returns([(T0, 1005.0), (T0 + 5 * H, 1010.0), (T0 + DAY, 989.8), (T0 + 2 * DAY, 1019.494)], 1000.0)
    assert r == pytest.approx([0.01, -0.02, 0.03])  # last equity of each UTC day
    sharpe, sortino = sharpe_sortino(r)
    # mean 0.0066667, sample sd 0.0251661, downside deviation sqrt(0.02^2 / 3) = 0.0115470
    assert sharpe == pytest.approx(0.02 / 3 / 0.0251661 * math.sqrt(365), rel=1e-5)
    assert sortino == pytest.approx(0.02 / 3 / 0.0115470 * math.sqrt(365), rel=1e-5)
    assert all(math.isnan(x) for x in sharpe_sortino([0.01]))


def test_report_files_and_their_figures(tmp_path):
    path = write_replay_report(summary(), tmp_path)
    rep = json.loads(path.read_text())
    o = rep["overall"]
    assert o["trades"] == 4 and o["win_rate"] == 0.5 and o["profit_factor"] == pytest.approx(5 / 3)
    assert o["funding"] == -0.3 and o["trade_fees"] == pytest.approx(0.6) and o["pnl"] == pytest.approx(19.7)
    assert o["max_drawdown_pct"] == pytest.approx(1.98) and o["drawdown_trough_ms"] == T0 + DAY + 5 * H
    assert rep["per_pair"]["ETH/USDT:USDT"]["trades"] == 2
    assert rep["per_exit_reason"]["take_profit"]["profit_factor"] == "inf"  # JSON has no infinity
    assert rep["rejections"] == {"macro_trend": 10, "chop": 3}
    text = (tmp_path / "replay_report.txt").read_text()
    for s in ("Replay summary", "Per pair", "Per exit reason", "profit factor / expectancy", "Sharpe / Sortino",
              "funding", "-0.3000", "peak 2024-08-01 05:07 -> trough 2024-08-02 05:07 UTC", "macro_trend"):
        assert s in text, s


def test_compare_two_runs_side_by_side(tmp_path, capsys):
    a, b = tmp_path / "run-a", tmp_path / "run-b"
    write_replay_report(summary(), a)
    write_replay_report(summary(rows=ROWS[:2], equity=(1001.0, 1000.5, 1001.0), rejections={"macro_trend": 7}), b)
    assert main(["replay", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "A: run-a" in out and "B: run-b" in out and "B - A" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("│ trades"))
    assert [c.strip() for c in line.split("│")[2:5]] == ["4", "2", "-2"]
    gates = next(ln for ln in out.splitlines() if ln.startswith("│ chop"))
    assert [c.strip() for c in gates.split("│")[2:5]] == ["3", "0", "-3"]


def test_compare_errors_are_one_line(tmp_path, capsys):
    assert main(["replay", "compare", str(tmp_path), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no {REPORT_JSON}" in err
    (tmp_path / REPORT_JSON).write_text("{not json")
    assert main(["replay", "compare", str(tmp_path), str(tmp_path)]) == 2
    assert "not a replay report" in capsys.readouterr().err
    assert main(["replay", "comapre", "a", "b"]) == 2
    assert "expected: crot replay compare RUN_A RUN_B" in capsys.readouterr().err


def test_a_recorded_replay_writes_its_report(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["replay", "--quiet", "--steps", "200", "--symbols", "AVAX,BTC,NEAR", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rep = json.loads((out / REPORT_JSON).read_text())
    assert rep["overall"]["candles"] == 200 and rep["overall"]["symbols"] == ["AVAX/USDT:USDT", "BTC/USDT:USDT",
                                                                              "NEAR/USDT:USDT"]
    assert f"{rep['overall']['trades']} (" in printed
    assert (out / "audit.sqlite").exists() and (out / "replay_report.txt").exists()
