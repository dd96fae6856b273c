"""A replay's report as one self-contained HTML page (``replay_report.html`` in the run folder).

The page holds the text report's tables (the same strings: ``report.summary_rows`` and
``report.stats_rows`` of the same ``report_dict`` that is ``replay_report.json``) and the charts
of ``replay_plots`` as inline SVG: no script, no stylesheet or font to fetch, so it opens in a
browser offline and can be mailed as one file. It is also well-formed XML (XHTML syntax), which
keeps it parseable by any tool. Without matplotlib the page has the tables and says how to get
the charts.
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path
from typing import Any

from .replay_metrics import report_dict
from .report import (REJECTIONS_TITLE, STATS_CAPTION, STATS_COLUMNS, STATS_TABLES, _day, stats_rows,
                     summary_rows)

__all__ = ["REPORT_HTML", "render_html", "write_replay_html"]

REPORT_HTML = "replay_report.html"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;max-width:1100px;
padding:0 1em;color:#222;background:#fff}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:.92em}
th,td{padding:.25em .7em;border-bottom:1px solid #eee;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
table.kv th{text-align:left;font-weight:600;white-space:nowrap}table.kv td{text-align:left}
thead th{border-bottom:2px solid #bbb}caption{caption-side:bottom;color:#666;font-size:.85em;text-align:left}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}figcaption{color:#666;font-size:.85em}
.note{background:#fff6d5;border:1px solid #e8d47a;padding:.6em 1em}.muted{color:#666;font-size:.85em}
"""


def _inline_svg(svg: str) -> str:
    """The ``<svg>`` element of an SVG file, without its XML declaration, DOCTYPE and metadata
    (matplotlib's RDF block: names, not links, but the page needs none of it)."""
    i = svg.find("<svg")
    if i < 0:
        raise ValueError("not an SVG document")
    return re.sub(r"\s*<metadata>.*?</metadata>", "", svg[i:], count=1, flags=re.S).strip()


def _kv_table(tid: str, rows: list[tuple[str, str]]) -> list[str]:
    out = [f'<table id="{tid}" class="kv"><tbody>']
    out += [f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows]
    out.append("</tbody></table>")
    return out


def _grid_table(tid: str, head: list[str], rows: list[list[str]], caption: str = "") -> list[str]:
    out = [f'<table id="{tid}">']
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>")
    out += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows]
    out.append("</tbody></table>")
    return out


def _figure(stem: str, svg: str, caption: str) -> list[str]:
    return [f'<figure id="{escape(stem)}">', _inline_svg(svg),
            f'<figcaption>{escape(caption)} Files: <a href="{escape(stem)}.svg">{escape(stem)}.svg</a>, '
            f'<a href="{escape(stem)}.png">{escape(stem)}.png</a>.</figcaption>', "</figure>"]


def render_html(rep: dict[str, Any], svgs: dict[str, str] | None = None, note: str | None = None) -> str:
    """The page for a ``report_dict`` with the charts' SVG text by file stem (``replay_plots``'
    EQUITY / PAIRS); ``note``: shown at the top (e.g. why there are no charts)."""
    from .replay_plots import EQUITY, PAIRS

    svgs = svgs or {}
    o = rep["overall"]
    period = f"{_day(o['start_ms'])} .. {_day(o['end_ms'])} UTC"
    parts = ['<!DOCTYPE html>', '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">', "<head>",
             '<meta charset="utf-8"/>', '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
             f"<title>CROT replay {escape(period)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
             f"<h1>CROT replay report</h1><p class=\"muted\">{escape(period)}, {escape(', '.join(o['symbols']))}. "
             "The same figures as replay_report.txt and replay_report.json in this folder.</p>"]
    if note:
        parts.append(f'<p class="note">{escape(note)}</p>')
    parts.append("<h2>Summary</h2>")
    parts += _kv_table("summary", summary_rows(rep))
    if EQUITY in svgs:
        parts.append("<h2>Equity and drawdown</h2>")
        parts += _figure(EQUITY, svgs[EQUITY], "Equity per 5m step (UTC dates); triangles: entries (up long, "
                         "down short), circles: exits (green won, red lost); below: drawdown from the running "
                         "peak, the maximum drawdown shaded.")
    for title, key, label in STATS_TABLES:
        parts.append(f"<h2>{escape(title)}</h2>")
        if key == "per_pair" and PAIRS in svgs:
            parts += _figure(PAIRS, svgs[PAIRS], "Realised PnL of closed trades per pair, after fees.")
        if rep[key]:
            parts += _grid_table(key, [label, *STATS_COLUMNS], stats_rows(rep[key]), STATS_CAPTION)
        else:
            parts.append('<p class="muted">no closed trades</p>')
    parts.append(f"<h2>{escape(REJECTIONS_TITLE)}</h2>")
    if rep["rejections"]:
        parts += _grid_table("rejections", ["gate", "count"], [[k, str(v)] for k, v in rep["rejections"].items()])
    else:
        parts.append('<p class="muted">no rejected entries</p>')
    parts += ["<p class=\"muted\">Written by crot replay. Trade PnL is realised and after fees; funding is an "
              "account flow, in the account's PnL but not in any trade's.</p>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_replay_html(s: Any, out_dir: str | Path, plots: bool = True) -> tuple[Path, list[Path], str | None]:
    """Write the charts (``plots``) and ``replay_report.html`` for a ReplaySummary into ``out_dir``.

    Returns (the page, the chart files written, a note when the charts could not be drawn)."""
    from engine.settings.envfile import atomic_write_text

    from .replay_plots import MissingPlotting, render, write_plots

    out = Path(out_dir)
    rep = report_dict(s)
    svgs: dict[str, str] = {}
    files: list[Path] = []
    note = None
    if plots:
        try:
            charts = render(s, rep)
        except MissingPlotting as exc:
            note = f"No charts: {exc}; then run the replay again."
        else:
            files = write_plots(charts, out)
            svgs = {stem: f["svg"].decode("utf-8") for stem, f in charts.items()}
    page = out / REPORT_HTML
    atomic_write_text(page, render_html(rep, svgs, note), mode=0o644)
    return page, files, note
