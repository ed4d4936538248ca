"""Celery adapters: each takes ids, calls one engine or service function, and returns."""

import os

from celery import shared_task
from django.conf import settings

from crawls import services
from crawls.engine import run


@shared_task(name="crawls.run", bind=True)
def crawl_run_task(self, crawl_id: int) -> str:
    """Work on a crawl until its frontier is empty (several may share one crawl)."""
    owner = f"{self.request.hostname}/{os.getpid()}/{self.request.id}"
    result = run.crawl_run(crawl_id, owner=owner)
    if result.retry_in is not None:
        crawl_run_task.apply_async(
            (crawl_id,), countdown=result.retry_in, queue=settings.CRAWL_QUEUE
        )
    return result.status


@shared_task(name="crawls.scheduled")
def crawl_scheduled_task(source_id: int) -> int | None:
    """Beat's entry point for a scheduled source."""
    crawl = services.crawl_scheduled(source_id=source_id)
    return crawl.pk if crawl else None


@shared_task(name="crawls.sweep")
def crawl_sweep_task() -> list[int]:
    """Re-enqueue crawls whose workers died (run by beat every CRAWL_SWEEP_INTERVAL)."""
    return services.crawl_sweep()
