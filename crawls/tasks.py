"""Celery adapters: each takes ids, calls one engine or service function, and returns."""

import contextlib
import os
import threading

from billiard.process import current_process
from celery import Task, shared_task, signals
from django.conf import settings

from crawls import services, subscribers
from crawls.engine import run, shutdown
from crawls.services import import_jobs, imports

# A re-enqueue outlasts a short broker restart (about a minute); past that the sweep sends it.
REQUEUE_RETRY = {"max_retries": 15, "interval_start": 0, "interval_step": 1, "interval_max": 5}


@shared_task(name="crawls.run", bind=True)
def crawl_run_task(self, crawl_id: int) -> str:
    """Work on a crawl until its frontier is empty (several may share one crawl)."""
    owner = f"{self.request.hostname}/{os.getpid()}/{self.request.id}"
    with shutdown.sigterm_requests_here() if _in_pool_child() else contextlib.nullcontext():
        result = run.crawl_run(crawl_id, owner=owner)
    if result.retry_in is not None:
        # Published before we return (and so before this message is acknowledged): a crawl
        # handed back by a stopping worker (retry_in=0) is taken by another worker at once.
        crawl_run_task.apply_async(
            (crawl_id,),
            countdown=result.retry_in,
            queue=settings.CRAWL_QUEUE,
            retry_policy=REQUEUE_RETRY,
        )
    return result.status


@shared_task(name="crawls.scheduled")
def crawl_scheduled_task(source_id: int) -> int | None:
    """Beat's entry point for a scheduled source."""
    crawl = services.crawl_scheduled(source_id=source_id)
    return crawl.pk if crawl else None


@shared_task(name="crawls.sweep")
def crawl_sweep_task() -> list[int]:
    """Re-enqueue crawls whose workers died, and hand import jobs whose workers died to new
    tasks (run by beat every CRAWL_SWEEP_INTERVAL); the crawls re-enqueued."""
    revived = services.crawl_sweep()
    import_jobs.import_sweep()
    return revived


@shared_task(name="crawls.subscribers_catch_up")
def subscribers_catch_up_task() -> int:
    """Redeliver the crawl events subscribers have not taken (beat, every
    SUBSCRIBER_CATCH_UP_SECONDS); events taken."""
    taken = subscribers.subscribers_catch_up()
    return sum(sum(counts.values()) for counts in taken.values())


# --- Stopping workers hand their crawls back (crawls/engine/shutdown.py) -------------------------


@signals.worker_init.connect
def _arm_shutdown_flag(sender=None, **_kwargs) -> None:
    """In the worker's main process, before its pool forks: map the flag the children read."""
    shutdown.arm()
    if sender is None or not hasattr(sender, "wait_for_soft_shutdown"):
        return
    # A cold shutdown (SIGQUIT, or SIGTERM with REMAP_SIGTERM=SIGQUIT) waits
    # worker_soft_shutdown_timeout before it kills running tasks, but tells the children nothing:
    # raise the flag first, so that running crawls hand back during that wait.
    soft_wait = sender.wait_for_soft_shutdown

    def wait_for_soft_shutdown() -> None:
        shutdown.request()
        soft_wait()

    sender.wait_for_soft_shutdown = wait_for_soft_shutdown


def _in_pool_child() -> bool:
    """A prefork child runs tasks in its main thread; SIGTERM of the child alone is ours there
    (in the main process it starts Celery's warm shutdown, which raises the shared flag)."""
    return (
        current_process().name != "MainProcess"
        and threading.current_thread() is threading.main_thread()
    )


@signals.worker_shutting_down.connect
def _request_hand_back(**_kwargs) -> None:
    """SIGTERM (warm shutdown): running crawls hand back at their next batch; the worker waits."""
    shutdown.request()


@shared_task(name="crawls.import_run", bind=True)
def import_run_task(self: Task, job_id: int) -> str | None:  # type: ignore[type-arg]
    """Import a queued file of bids, or take over one whose worker died (docs/imports.md);
    None when another worker has it, or when this one stopped and handed it to a new task."""
    with shutdown.sigterm_requests_here() if _in_pool_child() else contextlib.nullcontext():
        job = imports.import_run(
            job_id=job_id, task_id=self.request.id or "", stopping=shutdown.requested
        )
    return job.status if job is not None else None
