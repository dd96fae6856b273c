"""A replay's charts, drawn with matplotlib (the optional ``report`` extra): equity and drawdown
over UTC dates with the trades' entries and exits marked, and realised PnL per pair.

matplotlib rather than ``engine.analysis.plots``' hand-written SVG: date axes, markers, a
legend, shaded drawdown and PNG output are what a kept library does well and ours does not.
Only ``matplotlib.figure.Figure`` is used (no pyplot): no GUI backend, no global figure state;
SVG is written with text kept as text and without a date stamp, so the same run gives the same
file. Without matplotlib, ``MissingPlotting`` says how to install it.
"""

from __future__ import annotations

import io
import math
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.settings.envfile import atomic_write_bytes

__all__ = ["EQUITY", "INSTALL_HINT", "PAIRS", "MissingPlotting", "drawdown_pct", "render", "write_plots"]

EQUITY = "replay_equity"  # file stems in the run folder: .svg and .png
PAIRS = "replay_pnl_per_pair"
INSTALL_HINT = "pip install 'crot[report]' (matplotlib)"
EQUITY_GID = "equity-curve"  # the SVG group id of the equity line (tests and readers find it by it)

# path.simplify off: the SVG's equity line has one vertex per step (exact, a few hundred kB for a
# month of 5m steps), so a reader, or a test, can take the figures back from it
_RC = {"svg.fonttype": "none", "svg.hashsalt": "crot-replay", "path.simplify": False, "font.size": 9,
       "axes.grid": True, "grid.color": "#e6e6e6", "axes.spines.top": False, "axes.spines.right": False,
       "timezone": "UTC"}
GREEN, RED, BLUE, GREY = "#2ca02c", "#d62728", "#1f77b4", "#7f7f7f"


class MissingPlotting(RuntimeError):
    """matplotlib is not installed."""


def _mpl() -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401  (Agg renders when saving; no pyplot)
    except ImportError:
        raise MissingPlotting(f"plots need matplotlib: {INSTALL_HINT}") from None
    return matplotlib


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def drawdown_pct(equity: Sequence[float]) -> list[float]:
    """Drawdown from the running peak, percent (0 at a new high, negative below it)."""
    out, peak = [], -math.inf
    for e in equity:
        peak = max(peak, e)
        out.append((e / peak - 1) * 100 if peak > 0 else 0.0)
    return out


def _at(ts: list[int], eq: list[float], t: int) -> float:
    """Equity at time ``t``: the last sample at or before it (the first if none)."""
    i = bisect_right(ts, t) - 1
    return eq[max(i, 0)]


def _short(sym: str) -> str:
    return sym.split("/")[0] if sym.endswith(":USDT") else sym


def _equity_figure(s: Any) -> Any:
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6), layout="constrained")
    ax, dax = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    ts = [int(t) for t, _ in s.equity_curve]
    eq = [float(e) for _, e in s.equity_curve]
    fig.suptitle(f"Replay {_utc(s.start_ms):%Y-%m-%d %H:%M} .. {_utc(s.end_ms):%Y-%m-%d %H:%M} UTC: "
                 f"equity {float(s.start_equity):.2f} -> {float(s.end_equity):.2f} "
                 f"({float(s.pnl):+.2f}, fees {float(s.fees):.4f}, funding {float(s.funding):+.4f})")
    if not ts:
        ax.text(0.5, 0.5, "no equity samples", ha="center", va="center", transform=ax.transAxes)
        return fig
    days = [_utc(t) for t in ts]
    (line,) = ax.plot(days, eq, color=BLUE, lw=1.2, label="equity")
    line.set_gid(EQUITY_GID)
    ax.axhline(float(s.start_equity), color=GREY, lw=0.8, ls="--", label="start")
    marks: dict[tuple[str, str], tuple[list, list, str, str, str]] = {
        ("entry", "long"): ([], [], "^", GREEN, "long entry"), ("entry", "short"): ([], [], "v", RED, "short entry"),
        ("exit", "win"): ([], [], "o", GREEN, "exit, won"), ("exit", "loss"): ([], [], "o", RED, "exit, lost")}
    for r in s.trade_rows:
        o, c = int(r["opened_ms"]), int(r["closed_ms"])
        side = "short" if r["side"] == "short" else "long"
        marks[("entry", side)][0].append(_utc(o))
        marks[("entry", side)][1].append(_at(ts, eq, o))
        won = "win" if Decimal(str(r["pnl"])) > 0 else "loss"
        marks[("exit", won)][0].append(_utc(c))
        marks[("exit", won)][1].append(_at(ts, eq, c))
    for (kind, _), (xs, ys, m, col, label) in marks.items():
        if xs:
            ax.scatter(xs, ys, marker=m, s=36 if kind == "entry" else 22, zorder=3, label=f"{label} ({len(xs)})",
                       facecolors=col if kind == "entry" else "none", edgecolors=col, linewidths=1.2)
    ax.set_ylabel("equity (USDT)")
    ax.legend(loc="best", fontsize=8, ncols=3)
    dd = drawdown_pct(eq)
    dax.fill_between(days, dd, 0, color=RED, alpha=0.3, lw=0)
    dax.plot(days, dd, color=RED, lw=0.8)
    dax.set_ylabel("drawdown (%)")
    if s.max_drawdown > 0 and s.drawdown_peak_ms is not None and s.drawdown_trough_ms is not None:
        p, t = _utc(s.drawdown_peak_ms), _utc(s.drawdown_trough_ms)
        for a in (ax, dax):
            a.axvspan(p, t, color=RED, alpha=0.07, lw=0)
        dax.set_title(f"max drawdown {s.max_drawdown * 100:.2f}% (shaded): peak {p:%Y-%m-%d %H:%M} -> "
                      f"trough {t:%Y-%m-%d %H:%M} UTC", loc="left", fontsize=8)
    dax.set_ylim(min(dd) * 1.08 if min(dd) < 0 else -0.01, 0.0)  # a flat run: a flat line, not a warning
    locator = mdates.AutoDateLocator(tz=timezone.utc)
    dax.xaxis.set_major_locator(locator)
    dax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=timezone.utc))
    dax.set_xlabel("UTC")
    return fig


def _pairs_figure(rep: dict[str, Any]) -> Any:
    from matplotlib.figure import Figure

    pairs = sorted(rep["per_pair"].items(), key=lambda kv: kv[1]["pnl"])
    fig = Figure(figsize=(8, max(2.5, 0.45 * len(pairs) + 1.4)), layout="constrained")
    ax = fig.subplots()
    o = rep["overall"]
    ax.set_title(f"Realised PnL per pair, after fees ({o['trades']} trades; funding {o['funding']:+.4f} "
                 "is an account flow, not in these bars)")
    if not pairs:
        ax.text(0.5, 0.5, "no closed trades", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    names = [_short(k) for k, _ in pairs]
    pnl = [float(v["pnl"]) for _, v in pairs]
    bars = ax.barh(names, pnl, color=[GREEN if x > 0 else RED for x in pnl])
    for b, name in zip(bars, names):
        b.set_gid(f"pair-{name}")
    ax.bar_label(bars, labels=[f"{float(v['pnl']):+.4f} ({v['trades']} tr, {float(v['win_rate']) * 100:.0f}% won)"
                               for _, v in pairs], padding=3, fontsize=8)
    ax.axvline(0, color="#333", lw=0.8)
    lo, hi = min(0.0, *pnl), max(0.0, *pnl)
    pad = (hi - lo) * 0.45 or 1.0
    ax.set_xlim(lo - (pad if lo < 0 else 0), hi + pad)
    ax.set_xlabel("USDT")
    ax.grid(axis="y", visible=False)
    ax.set_axisbelow(True)
    return fig


def render(s: Any, rep: dict[str, Any]) -> dict[str, dict[str, bytes]]:
    """``{stem: {"svg": bytes, "png": bytes}}`` for the equity and the per-pair charts (``s``: a
    ReplaySummary, ``rep``: its ``report_dict``). Raises MissingPlotting without matplotlib."""
    mpl = _mpl()
    out: dict[str, dict[str, bytes]] = {}
    with mpl.rc_context(_RC):
        for stem, fig in ((EQUITY, _equity_figure(s)), (PAIRS, _pairs_figure(rep))):
            out[stem] = {}
            for fmt, meta in (("svg", {"Date": None}), ("png", {"Software": None})):
                buf = io.BytesIO()
                fig.savefig(buf, format=fmt, dpi=110, metadata=meta)
                out[stem][fmt] = buf.getvalue()
    return out


def write_plots(charts: dict[str, dict[str, bytes]], out_dir: str | Path) -> list[Path]:
    """Write ``render``'s charts as ``<stem>.svg`` / ``<stem>.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, files in charts.items():
        for fmt, data in files.items():
            atomic_write_bytes(out / f"{stem}.{fmt}", data, mode=0o644)
            paths.append(out / f"{stem}.{fmt}")
    return paths
