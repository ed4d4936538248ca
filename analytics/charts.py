"""Server-rendered SVG charts: the geometry of bars and of a line/area, for the templates.

No JavaScript: templates/analytics/_bars.html and _line.html draw what these return, with a
<title>/<desc> and a data table beside each chart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

WIDTH = 640
BAR_HEIGHT = 22
BAR_GAP = 6
LABEL_WIDTH = 220
LINE_HEIGHT = 200
PAD = 24


@dataclass
class Bar:
    label: str
    value: float
    shown: str
    y: int
    width: float


@dataclass
class Bars:
    bars: list[Bar] = field(default_factory=list)
    width: int = WIDTH
    height: int = 0
    label_width: int = LABEL_WIDTH


def bars(rows: list[tuple[str, float | None]], *, unit: str = "") -> Bars:
    """Horizontal bars, longest = the largest value; `rows` are (label, value)."""
    top = max((float(v or 0) for _, v in rows), default=0) or 1
    span = WIDTH - LABEL_WIDTH - 90
    chart = Bars(height=max(len(rows), 1) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP)
    for i, (label, value) in enumerate(rows):
        number = float(value or 0)
        chart.bars.append(
            Bar(
                label=label or "(no department)",
                value=number,
                shown=f"{number:,.0f}{unit}",
                y=BAR_GAP + i * (BAR_HEIGHT + BAR_GAP),
                width=round(span * number / top, 1),
            )
        )
    return chart


@dataclass
class Line:
    width: int
    height: int
    line: str  # the polyline's points
    area: str  # the polygon's points (the line closed along the x axis)
    top: int
    first: dt.date | None
    last: dt.date | None
    baseline: float


def line(days: list[dt.date], values: list[int]) -> Line:
    """A line over an area: one point per day, scaled to the largest value."""
    top = max(values, default=0) or 1
    inner_w, inner_h = WIDTH - 2 * PAD, LINE_HEIGHT - 2 * PAD
    step = inner_w / max(len(values) - 1, 1)
    points = [
        (round(PAD + i * step, 1), round(PAD + inner_h - inner_h * v / top, 1))
        for i, v in enumerate(values)
    ]
    baseline = PAD + inner_h
    line_points = " ".join(f"{x},{y}" for x, y in points)
    area = f"{PAD},{baseline} {line_points} {points[-1][0]},{baseline}" if points else ""
    return Line(
        width=WIDTH,
        height=LINE_HEIGHT,
        line=line_points,
        area=area,
        top=top,
        first=days[0] if days else None,
        last=days[-1] if days else None,
        baseline=baseline,
    )
