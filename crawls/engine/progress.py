"""A crawl's progress figures, computed here only: percent done, pages processed and queued, pages
per second, ETA, error count.

The engine sends them in every `crawl.progress` and final event; the pages (dashboard, admin) and
the workspace snapshot compute them for a crawl row before any event. The browser (live.js) only
shows what it receives.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from crawls.models import Crawl


def crawl_progress(crawl: Crawl, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The figures of a crawl row, as JSON-ready values (None where not known yet)."""
    processed = crawl.pages_done + crawl.pages_failed
    remaining = max(crawl.pages_total - processed, 0)
    if crawl.status in (Crawl.Status.SUCCEEDED, Crawl.Status.DEGRADED):  # both completed
        percent = 100
    elif crawl.pages_total:
        percent = min(100, round(100 * processed / crawl.pages_total))
    else:
        percent = 0
    pages_per_s = eta_s = None
    if crawl.started_at is not None:
        end = crawl.finished_at or now or timezone.now()
        elapsed = max((end - crawl.started_at).total_seconds(), 1e-3)
        rate = processed / elapsed
        pages_per_s = round(rate, 1)
        if crawl.status in Crawl.ACTIVE and rate > 0:
            eta_s = round(remaining / rate)
    return {
        "percent": percent,
        "pages_processed": processed,
        "pages_queued": remaining,
        "pages_per_s": pages_per_s,
        "eta_s": eta_s,
        "error_count": sum((crawl.errors or {}).values()),
    }


def crawl_with_progress(crawl: Crawl) -> Crawl:
    """The crawl with its figures as attributes, for the templates (`crawl.percent` …)."""
    for name, value in crawl_progress(crawl).items():
        setattr(crawl, name, value)
    return crawl
