"""The dependency-free SVG charts: well-formed, scaled, robust to missing values."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from engine.analysis.plots import _nice, bar_chart, line_chart

NS = "{http://www.w3.org/2000/svg}"


def test_axis_bounds_are_widened_to_round_ticks():
    assert _nice(0.0, 0.736) == (0.0, 0.8, [0.0, 0.2, 0.4, 0.6, 0.8])
    lo, hi, ticks = _nice(-0.0213, 0.011)
    assert lo <= -0.0213 and hi >= 0.011 and ticks[0] == lo and ticks[-1] == hi
    assert _nice(5.0, 5.0)[:2] == (4.0, 6.0)


def test_bar_heights_are_proportional():
    svg = ET.fromstring(bar_chart(["a", "b"], {"x": [0.2, 0.4], "y": [0.1, math.nan]}, "t", "fraction"))
    bars = [r for r in svg.iter(f"{NS}rect") if r.get("width") not in ("720", "10")]
    heights = [float(r.get("height")) for r in bars]
    assert len(heights) == 3  # the NaN bar is skipped
    assert heights[1] / heights[0] == 0.5 and heights[2] / heights[0] == 2.0  # a.x, a.y, b.x


def test_line_chart_and_empty_inputs():
    svg = ET.fromstring(line_chart({"a": ([1, 2, 3], [0.0, 1.0, math.inf]), "b": ([1, 2], [-1.0, 2.0])}, "t<&>",
                                   "x", "y", hline=0.0))
    lines = list(svg.iter(f"{NS}polyline"))
    assert len(lines) == 2 and len(lines[0].get("points").split()) == 2  # inf point dropped
    assert any(t.text == "t<&>" for t in svg.iter(f"{NS}text"))  # escaped, parsed back
    empty = ET.fromstring(line_chart({}, "nothing"))
    assert any(t.text == "no data" for t in empty.iter(f"{NS}text"))
    assert any(t.text == "no data" for t in ET.fromstring(bar_chart([], {}, "x")).iter(f"{NS}text"))
