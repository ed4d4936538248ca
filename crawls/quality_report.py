"""What the pages and the API show of crawl quality (docs/quality.md): a source's trend over its
last crawls, its SVG chart (server-rendered, as analytics.charts), and a crawl's report as rows.
The report itself is crawls.engine.quality's."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from crawls.models import Crawl, Source

TREND_CRAWLS = 20  # the source page's chart; the API takes ?limit= up to TREND_MAX
TREND_MAX = 100
WIDTH, HEIGHT, PAD = 640, 200, 28


def quality_trend(*, source: Source, limit: int = TREND_CRAWLS) -> list[dict[str, Any]]:
    """The source's last `limit` crawls that ended with a report (succeeded or degraded), oldest
    first: id, status, finished_at, items, coverage by field and its mean. One query."""
    rows = list(
        Crawl.objects.filter(source_id=source.pk, quality__has_key="items")
        .order_by("-finished_at", "-id")
        .values("id", "status", "finished_at", "quality")[: max(1, min(limit, TREND_MAX))]
    )
    trend = []
    for row in reversed(rows):
        coverage = row["quality"].get("coverage") or {}
        trend.append(
            {
                "id": row["id"],
                "status": row["status"],
                "finished_at": row["finished_at"],
                "items": row["quality"].get("items", 0),
                "coverage": coverage,
                "mean_coverage": round(statistics.fmean(coverage.values()), 4)
                if coverage
                else None,
            }
        )
    return trend


@dataclass
class Point:
    x: float
    y: float
    crawl: int
    degraded: bool


@dataclass
class TrendChart:
    """Items (a line scaled to the most items) and mean coverage (a line from 0 to 100%) per
    crawl; degraded crawls marked."""

    width: int = WIDTH
    height: int = HEIGHT
    items_line: str = ""
    coverage_line: str = ""
    items_top: int = 0
    baseline: int = HEIGHT - PAD
    items: list[Point] = field(default_factory=list)
    coverage: list[Point] = field(default_factory=list)

    @property
    def degraded(self) -> list[Point]:
        return [p for p in self.items if p.degraded]


def trend_chart(trend: list[dict[str, Any]]) -> TrendChart:
    chart = TrendChart()
    top = max((row["items"] for row in trend), default=0) or 1
    chart.items_top = top
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / max(len(trend) - 1, 1)
    for i, row in enumerate(trend):
        x = round(PAD + i * step, 1)
        degraded = row["status"] == Crawl.Status.DEGRADED
        y = round(PAD + inner_h - inner_h * row["items"] / top, 1)
        chart.items.append(Point(x, y, row["id"], degraded))
        if row["mean_coverage"] is not None:
            y = round(PAD + inner_h - inner_h * row["mean_coverage"], 1)
            chart.coverage.append(Point(x, y, row["id"], degraded))
    chart.items_line = " ".join(f"{p.x},{p.y}" for p in chart.items)
    chart.coverage_line = " ".join(f"{p.x},{p.y}" for p in chart.coverage)
    return chart


def report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """A crawl report's coverage per field beside the recent median, breached ones flagged."""
    medians = (report.get("history") or {}).get("coverage_median") or {}
    coverage = report.get("coverage") or {}
    breached = {b.get("field") for b in report.get("breaches") or [] if b.get("field")}
    return [
        {
            "field": name,
            "coverage": coverage.get(name),
            "median": medians.get(name),
            "breached": name in breached,
        }
        for name in sorted(set(coverage) | set(medians))
    ]
