"""`crot replay`'s charts and HTML report, through the public CLI on the bundled demo: the page's
tables carry replay_report.json's figures, the equity SVG's line is the run's equity curve, the
page needs no network, `--no-plots` writes none of it, and without matplotlib the page still has
the tables and says how to get the charts."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.cli import main
from engine.runtime.replay_html import REPORT_HTML, render_html

X, S = "{http://www.w3.org/1999/xhtml}", "{http://www.w3.org/2000/svg}"
# the 2024-08-05 crash, two symbols: trades won and lost, several exit reasons, a funding event
ARGS = ["replay", "--quiet", "--symbols", "ETH,SOL", "--timerange", "20240804-20240806"]


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*ARGS, *args])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> tuple[Path, str]:
    pytest.importorskip("matplotlib")  # the `report` extra (in `test` too)
    d = tmp_path_factory.mktemp("replay") / "run"
    code, printed = run("--out", str(d))
    assert code == 0
    return d, printed


def day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def num(v, digits: int = 2) -> str:
    return v if isinstance(v, str) else "-" if v is None else f"{v:.{digits}f}"  # JSON: "inf" as text, NaN as null


def table(root: ET.Element, tid: str) -> list[list[str]]:
    t = next(e for e in root.iter(f"{X}table") if e.get("id") == tid)
    return [[c.text or "" for c in tr if c.tag in (f"{X}td", f"{X}th")] for tr in t.iter(f"{X}tr")]


def test_the_page_has_the_reports_figures(run_dir):
    d, printed = run_dir
    page = d / REPORT_HTML
    assert f"HTML report (open it in a browser): {page}" in printed
    rep = json.loads((d / "replay_report.json").read_text())
    o = rep["overall"]
    assert o["trades"] > o["wins"] > 0 and o["funding_events"] > 0  # the run is not an empty one
    root = ET.parse(page).getroot()  # well-formed: XHTML syntax with the SVG inline
    rows = dict(table(root, "summary"))
    assert rows["period"] == f"{day(o['start_ms'])} .. {day(o['end_ms'])} UTC ({o['candles']} candles)"
    assert rows["trades"] == f"{o['trades']} ({o['wins']} won)"
    assert rows["equity"] == f"{o['start_equity']:.2f} -> {o['end_equity']:.2f}"
    assert rows["PnL"] == f"{o['pnl']:+.2f} ({o['pnl_pct']:+.2f}%)"
    assert rows["max drawdown"] == (f"{o['max_drawdown_pct']:.2f}% (peak {day(o['drawdown_peak_ms'])} -> trough "
                                    f"{day(o['drawdown_trough_ms'])} UTC)")
    assert rows["win rate / avg duration"] == f"{o['win_rate'] * 100:.1f}% / {o['avg_duration_h']:.1f} h"
    assert rows["profit factor / expectancy"].startswith(
        f"{num(o['profit_factor'])} / {o['expectancy']:.4f} per trade ({o['expectancy_pct_of_equity']:.3f}% of")
    assert rows["Sharpe / Sortino"].startswith(f"{num(o['sharpe'])} / {num(o['sortino'])} ")
    assert rows["fees"] == f"{o['trade_fees']:.4f}"
    assert rows["funding"].startswith(f"{o['funding']:+.4f} ({o['funding_events']} settlements")

    def stats(groups):
        return [[k.removesuffix("/USDT:USDT"), str(g["trades"]), f"{g['win_rate'] * 100:.1f}%", f"{g['pnl']:.4f}",
                 f"{g['fees']:.4f}", num(g["profit_factor"]), f"{g['expectancy']:.4f}", f"{g['avg_duration_h']:.1f}"]
                for k, g in groups.items()]

    head = ["trades", "win", "PnL", "fees", "PF", "exp", "h"]
    assert table(root, "per_pair") == [["pair", *head], *stats(rep["per_pair"])]
    assert [r[0] for r in table(root, "per_pair")[1:]] == ["ETH", "SOL"]
    assert table(root, "per_exit_reason") == [["exit", *head], *stats(rep["per_exit_reason"])]
    assert len(rep["per_exit_reason"]) >= 2
    gates = table(root, "rejections")
    assert gates[0] == ["gate", "count"] and {g: int(c) for g, c in gates[1:]} == rep["rejections"]
    assert [int(c) for _, c in gates[1:]] == sorted(rep["rejections"].values(), reverse=True)  # most first
    # the JSON's parts add up
    assert sum(g["trades"] for g in rep["per_pair"].values()) == o["trades"]
    assert sum(g["pnl"] for g in rep["per_pair"].values()) == pytest.approx(o["trades_pnl"])
    # the text report shows the same strings
    text = (d / "replay_report.txt").read_text()
    for label in ("trades", "fees", "equity"):
        assert rows[label] in text


def _vertices(d: str) -> list[tuple[float, float]]:
    nums = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", d)]
    assert re.fullmatch(r"\s*M[\d\s.L-]*", d), "a polyline: M x y L x y ..."
    return list(zip(nums[0::2], nums[1::2]))


def test_the_equity_svg_draws_the_runs_equity_over_dates(run_dir):
    d, _ = run_dir
    o = json.loads((d / "replay_report.json").read_text())["overall"]
    root = ET.parse(d / "replay_equity.svg").getroot()
    assert root.tag == f"{S}svg"
    line = next(g for g in root.iter(f"{S}g") if g.get("id") == "equity-curve")
    pts = _vertices(next(line.iter(f"{S}path")).get("d"))
    assert len(pts) == o["candles"]  # one vertex per 5m step
    dx = [b[0] - a[0] for a, b in zip(pts, pts[1:])]
    assert min(dx) > 0 and max(dx) == pytest.approx(min(dx), rel=1e-3)  # evenly spaced in time
    # the y axis' labelled ticks give the pixel -> equity map; the line then ends at the end equity
    # and its deepest fall from a running peak is the report's maximum drawdown
    axes = next(g for g in root.iter(f"{S}g") if g.get("id") == "axes_1")
    ticks = []
    for g in axes.iter(f"{S}g"):
        if g.get("id", "").startswith("ytick_"):
            use, text = next(g.iter(f"{S}use")), next(g.iter(f"{S}text")).text
            ticks.append((float(use.get("y")), float(text.replace("\u2212", "-"))))
    (y0, e0), (y1, e1) = ticks[0], ticks[-1]
    equity = [e0 + (y - y0) * (e1 - e0) / (y1 - y0) for _, y in pts]
    assert equity[-1] == pytest.approx(o["end_equity"], abs=1e-4)
    peak, dd = 0.0, 0.0
    for e in equity:
        peak = max(peak, e)
        dd = max(dd, (peak - e) / peak * 100)
    assert dd == pytest.approx(o["max_drawdown_pct"], rel=1e-3)
    texts = [t.text or "" for t in root.iter(f"{S}text")]
    assert "UTC" in texts and any(t.startswith("Aug-05") or t == "Aug-05" for t in texts)  # dates on the x axis
    assert any(t.startswith(f"max drawdown {o['max_drawdown_pct']:.2f}%") for t in texts)
    assert any(re.fullmatch(r"short entry \(\d+\)|long entry \(\d+\)", t) for t in texts)  # trades marked
    assert any(re.fullmatch(r"exit, (won|lost) \(\d+\)", t) for t in texts)
    pairs = ET.parse(d / "replay_pnl_per_pair.svg").getroot()
    assert {g.get("id") for g in pairs.iter(f"{S}g")} >= {"pair-ETH", "pair-SOL"}
    for stem in ("replay_equity", "replay_pnl_per_pair"):
        assert (d / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_page_needs_no_network(run_dir):
    d, _ = run_dir
    html = (d / REPORT_HTML).read_text()
    root = ET.fromstring(html)
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(http" not in html
    assert not [e for e in root.iter() if e.get("src")]
    refs = [v for e in root.iter() for k, v in e.attrib.items() if k in ("href", "{http://www.w3.org/1999/xlink}href")]
    assert refs and all(r.startswith("#") or (d / r).is_file() for r in refs), refs  # in-page or beside it
    ids = {e.get("id") for e in root.iter() if e.get("id")}
    assert all(r[1:] in ids for r in refs if r.startswith("#"))  # every marker / clip path it uses is inline
    assert any(e.get("id") == "equity-curve" for e in root.iter(f"{S}g"))


def test_no_plots_writes_none_of_it(tmp_path):
    d = tmp_path / "run"
    code, printed = run("--steps", "12", "--no-plots", "--out", str(d))
    assert code == 0 and (d / "replay_report.json").exists() and (d / "replay_report.txt").exists()
    assert not list(d.glob("*.html")) and not list(d.glob("*.svg")) and not list(d.glob("*.png"))
    assert "HTML report" not in printed


def test_without_matplotlib_the_page_has_the_tables_and_says_how_to_get_charts(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    d = tmp_path / "run"
    code, printed = run("--steps", "12", "--out", str(d))
    assert code == 0
    assert "pip install 'crot[report]'" in printed and printed.count("HTML report") == 1
    root = ET.parse(d / REPORT_HTML).getroot()
    assert dict(table(root, "summary"))["period"].endswith("(12 candles)")
    note = next(p for p in root.iter(f"{X}p") if p.get("class") == "note").text
    assert note.startswith("No charts: plots need matplotlib: pip install 'crot[report]'")
    assert not list(root.iter(f"{S}svg")) and not list(d.glob("*.svg"))


def test_an_empty_run_renders(tmp_path):
    rep = {"overall": {"start_ms": 0, "end_ms": 300_000, "candles": 1, "symbols": ["BTC/USDT:USDT"], "trades": 0,
                       "wins": 0, "start_equity": 1000.0, "end_equity": 1000.0, "pnl": 0.0, "max_drawdown_pct": 0.0,
                       "drawdown_peak_ms": None, "drawdown_trough_ms": None, "win_rate": None, "avg_duration_h": None,
                       "profit_factor": None, "expectancy": None, "expectancy_pct_of_equity": None, "sharpe": None,
                       "sortino": None, "trade_fees": 0.0, "funding": 0.0, "funding_events": 0},
           "per_pair": {}, "per_exit_reason": {}, "per_side": {}, "rejections": {}, "inputs": {},
           "data_settings": {}}
    root = ET.fromstring(render_html(rep, note="a <note> & more"))
    rows = dict(table(root, "summary"))
    assert rows["win rate / avg duration"] == "- / - h" and rows["max drawdown"] == "0.00%"
    texts = [p.text for p in root.iter(f"{X}p")]
    assert "a <note> & more" in texts and "no closed trades" in texts and "no rejected entries" in texts


@pytest.mark.filterwarnings("error")  # no matplotlib warning (identical limits, empty legend, ...)
@pytest.mark.parametrize("steps", [0, 3])
def test_charts_of_a_run_without_trades(steps):
    pytest.importorskip("matplotlib")
    from decimal import Decimal

    from engine.runtime.replay import ReplaySummary
    from engine.runtime.replay_metrics import report_dict
    from engine.runtime.replay_plots import EQUITY, PAIRS, render

    t0 = 1_722_470_400_000
    s = ReplaySummary(start_ms=t0, end_ms=t0 + steps * 300_000, steps=steps, symbols=["BTC/USDT:USDT"], trades=0,
                      wins=0, start_equity=Decimal(1000), end_equity=Decimal(1000), max_drawdown=0.0, fees=Decimal(0),
                      rejections={}, equity_curve=[(t0 + (i + 1) * 300_000, Decimal(1000)) for i in range(steps)])
    charts = render(s, report_dict(s))
    texts = {stem: [t.text for t in ET.fromstring(c["svg"]).iter(f"{S}text")] for stem, c in charts.items()}
    assert "no closed trades" in texts[PAIRS]
    assert ("no equity samples" in texts[EQUITY]) == (steps == 0)
