"""A crawl's state transitions, shared by the runs that work on it: started, finished once
(whoever gets there first), retried, handed back by a stopping worker."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from crawls import events
from crawls.engine import frontier, presence, progress, quality
from crawls.models import Crawl

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunResult:
    status: str
    retry_in: float | None = None  # the task adapter re-enqueues the crawl after this many seconds


def mark_running(crawl: Crawl) -> None:
    now = timezone.now()
    deadline = now + dt.timedelta(seconds=crawl.source.time_limit_seconds)
    with transaction.atomic():
        started = Crawl.objects.filter(pk=crawl.pk, status=Crawl.Status.QUEUED).update(
            status=Crawl.Status.RUNNING, started_at=now, heartbeat_at=now, deadline_at=deadline
        )
        if started:
            events.event_append(
                crawl_id=crawl.pk,
                workspace_id=crawl.workspace_id,
                type=events.STARTED,
                payload={
                    "attempt": crawl.attempt,
                    "source": crawl.source_id,
                    # the row's own times, so that crawl_rebuild can fold them (rebuild.py)
                    "started_at": now.isoformat(),
                    "deadline_at": deadline.isoformat(),
                },
            )
    crawl.refresh_from_db()


def crawl_summary(crawl: Crawl) -> dict[str, Any]:
    return {
        "pages_done": crawl.pages_done,
        "pages_failed": crawl.pages_failed,
        "pages_total": crawl.pages_total,
        "items_new": crawl.items_new,
        "items_changed": crawl.items_changed,
        "items_unchanged": crawl.items_unchanged,
        "errors": crawl.errors,
        "capped": crawl.capped,
    }


def crawl_final_figures(crawl: Crawl) -> dict[str, Any]:
    """What every final event carries of its row, whoever ends the crawl (a worker, a cancel
    while queued, an import): the summary and the rest of the final row, so that crawl_rebuild
    can fold it (crawls/services/rebuild.py)."""
    return {
        **crawl_summary(crawl),
        "finished_at": crawl.finished_at.isoformat() if crawl.finished_at else None,
        "quality": crawl.quality,
    }


def crawl_finish(crawl: Crawl, status: str, *, owner: str | None, error: str = "") -> bool:
    """Move a crawl to a final state once (whoever gets there first) with its final figures;
    give back the leases of `owner` (of every owner when None)."""
    with transaction.atomic():
        frontier.frontier_release(crawl_id=crawl.pk, owner=owner)
        locked = Crawl.objects.select_for_update().get(pk=crawl.pk)
        if locked.status in Crawl.FINISHED:
            return False
        totals = frontier.frontier_totals(crawl_id=crawl.pk)
        locked.pages_done = totals.get("done", 0)
        locked.pages_failed = totals.get("failed", 0)
        if status == Crawl.Status.SUCCEEDED and locked.pages_done == 0:
            status, error = Crawl.Status.FAILED, error or "no page could be fetched"
        if status == Crawl.Status.SUCCEEDED:
            assessment = quality.crawl_assess(locked)
            locked.quality = assessment.report
            if assessment.degraded:
                status = Crawl.Status.DEGRADED
                error = "; ".join(assessment.reasons)
            elif locked.source.track_removals and not locked.capped:
                presence.crawl_removals(locked)
        locked.status = status
        locked.error = error
        locked.finished_at = timezone.now()
        locked.save(
            update_fields=[
                "status",
                "error",
                "finished_at",
                "pages_done",
                "pages_failed",
                "quality",
            ]
        )
        final_type = {
            Crawl.Status.SUCCEEDED: events.SUCCEEDED,
            Crawl.Status.FAILED: events.FAILED,
            Crawl.Status.CANCELLED: events.CANCELLED,
            Crawl.Status.DEGRADED: events.DEGRADED,
        }[status]
        events.event_append(
            crawl_id=crawl.pk,
            workspace_id=crawl.workspace_id,
            type=final_type,
            payload={
                **crawl_final_figures(locked),
                **progress.crawl_progress(locked),
                "error": error,
            },
        )
    return True


def fail_or_retry(crawl: Crawl, *, owner: str, error: str) -> RunResult:
    source = crawl.source
    if crawl.attempt <= source.retry_max:
        delay = source.retry_backoff_seconds * 2 ** (crawl.attempt - 1)
        with transaction.atomic():
            frontier.frontier_release(crawl_id=crawl.pk, owner=owner)
            frontier.frontier_requeue_failed(crawl_id=crawl.pk)
            updated = Crawl.objects.filter(pk=crawl.pk, status=Crawl.Status.RUNNING).update(
                status=Crawl.Status.QUEUED,
                attempt=crawl.attempt + 1,
                error=error,
                # the sweep leaves it alone until it is due
                heartbeat_at=timezone.now() + dt.timedelta(seconds=delay),
            )
            if updated:
                events.event_append(
                    crawl_id=crawl.pk,
                    workspace_id=crawl.workspace_id,
                    type=events.RETRYING,
                    payload={"attempt": crawl.attempt + 1, "in_seconds": delay, "error": error},
                )
        if updated:
            return RunResult(Crawl.Status.QUEUED, retry_in=delay)
    crawl_finish(crawl, Crawl.Status.FAILED, owner=owner, error=error)
    return RunResult(Crawl.Status.FAILED)


def hand_back(crawl: Crawl, *, owner: str) -> RunResult:
    """Our worker is stopping: give back our URLs now and have the crawl re-enqueued at once, so
    that another worker resumes it without waiting for leases to expire or the sweep."""
    with transaction.atomic():
        released = frontier.frontier_release(crawl_id=crawl.pk, owner=owner)
        Crawl.objects.filter(pk=crawl.pk).update(heartbeat_at=timezone.now())
    logger.info("worker stopping: crawl %s handed back (%d URLs released)", crawl.pk, released)
    return RunResult(Crawl.Status.RUNNING, retry_in=0)
