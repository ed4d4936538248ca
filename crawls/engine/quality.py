"""Extraction quality of a crawl (docs/quality.md): counters gathered batch by batch, and the
report a completed crawl ends with, against the medians of the source's recent crawls. A crawl
that breaches a threshold ends `degraded` with the reasons.

Seam (issue 13): `crawl_assess` is called by lifecycle.crawl_finish, inside its transaction,
for a crawl about to succeed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crawls.models import Crawl


@dataclass(frozen=True, slots=True)
class Assessment:
    report: dict[str, Any] = field(default_factory=dict)  # stored in Crawl.quality
    reasons: tuple[str, ...] = ()  # the thresholds breached; empty: the crawl succeeded

    @property
    def degraded(self) -> bool:
        return bool(self.reasons)


def crawl_assess(crawl: Crawl) -> Assessment:
    """The report of a crawl about to succeed (its row is locked by the caller)."""
    return Assessment(report=dict(crawl.quality or {}))
