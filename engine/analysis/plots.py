"""Small dependency-free SVG charts for the file report (line and grouped bar charts).

Plain SVG text: no matplotlib needed, opens in any browser and renders inside Markdown
viewers that show images. Enough for coefficient paths, win rates and an equity curve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["bar_chart", "line_chart"]

W, H = 720, 360
ML, MR, MT, MB = 70, 170, 40, 50  # margins: the legend sits on the right
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.2e}"
    return f"{v:.4g}"


def _nice(lo: float, hi: float, n: int = 5) -> tuple[float, float, list[float]]:
    """Axis bounds widened to round tick values, and the ticks."""
    if hi == lo:
        lo, hi = lo - 1.0, hi + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    a, b = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    ticks = [round(a + i * step, 12) for i in range(int(round((b - a) / step)) + 1)]
    return a, b, ticks


def _frame(title: str, xlabel: str, ylabel: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<text x="{ML + (W - ML - MR) / 2}" y="{H - 10}" text-anchor="middle">{escape(xlabel)}</text>',
        f'<text x="14" y="{MT + (H - MT - MB) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {MT + (H - MT - MB) / 2})">{escape(ylabel)}</text>',
    ]


def _y_axis(parts: list[str], ticks: list[float], y_of) -> None:
    for t in ticks:
        y = y_of(t)
        parts.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{ML - 5}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    parts.append(f'<line x1="{ML}" x2="{ML}" y1="{MT}" y2="{H - MB}" stroke="#333"/>')
    parts.append(f'<line x1="{ML}" x2="{W - MR}" y1="{H - MB}" y2="{H - MB}" stroke="#333"/>')


def _legend(parts: list[str], names: Sequence[str]) -> None:
    for i, name in enumerate(names):
        y = MT + 16 * i
        parts.append(f'<rect x="{W - MR + 10}" y="{y}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text x="{W - MR + 25}" y="{y + 9}">{escape(str(name))[:26]}</text>')


def line_chart(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str,
               xlabel: str = "", ylabel: str = "", hline: float | None = None) -> str:
    """One polyline per named (x, y) series; non-finite points are skipped."""
    pts = {k: [(float(x), float(y)) for x, y in zip(xs, ys) if math.isfinite(float(x)) and math.isfinite(float(y))]
           for k, (xs, ys) in series.items()}
    allp = [p for v in pts.values() for p in v]
    parts = _frame(title, xlabel, ylabel)
    if not allp:
        parts.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text></svg>')
        return "\n".join(parts)
    ys = [p[1] for p in allp] + ([hline] if hline is not None else [])
    x0, x1, xticks = _nice(min(p[0] for p in allp), max(p[0] for p in allp))
    y0, y1, yticks = _nice(min(ys), max(ys))
    x_of = lambda x: ML + (x - x0) / (x1 - x0) * (W - ML - MR)  # noqa: E731
    y_of = lambda y: H - MB - (y - y0) / (y1 - y0) * (H - MT - MB)  # noqa: E731
    _y_axis(parts, yticks, y_of)
    for t in xticks:
        parts.append(f'<text x="{x_of(t):.1f}" y="{H - MB + 15}" text-anchor="middle">{_fmt(t)}</text>')
    if hline is not None:
        parts.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y_of(hline):.1f}" y2="{y_of(hline):.1f}" '
                     'stroke="#000" stroke-dasharray="4 3"/>')
    for i, (name, p) in enumerate(pts.items()):
        if p:
            d = " ".join(f"{x_of(x):.1f},{y_of(y):.1f}" for x, y in p)
            parts.append(f'<polyline fill="none" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="1.5" points="{d}"/>')
    _legend(parts, list(pts))
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(categories: Sequence[str], groups: Mapping[str, Sequence[float]], title: str,
              ylabel: str = "") -> str:
    """Grouped bars: one group of bars per category, one colour per named series."""
    parts = _frame(title, "", ylabel)
    vals = [v for vs in groups.values() for v in vs if math.isfinite(v)]
    if not categories or not vals:
        parts.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text></svg>')
        return "\n".join(parts)
    y0, y1, yticks = _nice(min(0.0, min(vals)), max(0.0, max(vals)))
    y_of = lambda y: H - MB - (y - y0) / (y1 - y0) * (H - MT - MB)  # noqa: E731
    _y_axis(parts, yticks, y_of)
    slot = (W - ML - MR) / len(categories)
    bw = slot * 0.8 / max(1, len(groups))
    for ci, cat in enumerate(categories):
        cx = ML + slot * ci + slot * 0.1
        for gi, vs in enumerate(groups.values()):
            v = vs[ci]
            if not math.isfinite(v):
                continue
            top, base = y_of(max(v, 0.0)), y_of(min(v, 0.0))
            parts.append(f'<rect x="{cx + gi * bw:.1f}" y="{top:.1f}" width="{bw * 0.95:.1f}" '
                         f'height="{max(base - top, 0.5):.1f}" fill="{PALETTE[gi % len(PALETTE)]}"/>')
        parts.append(f'<text x="{ML + slot * (ci + 0.5):.1f}" y="{H - MB + 15}" text-anchor="middle">'
                     f'{escape(str(cat))[:22]}</text>')
    _legend(parts, list(groups))
    parts.append("</svg>")
    return "\n".join(parts)
