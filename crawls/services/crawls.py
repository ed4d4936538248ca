"""Crawls: start (manual, scheduled, retry), cancel, and the sweep that revives stalled ones.
Celery tasks are sent when the transaction that queued the crawl commits."""

from __future__ import annotations

import datetime as dt
import logging

import kombu.exceptions
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from crawls import events
from crawls.engine import frontier, guard, kinds, lifecycle, request, scope
from crawls.models import Crawl, ImportJob, Source
from project.celery import app as celery_app

logger = logging.getLogger(__name__)


class Backpressure(Exception):
    """The workspace has as many active crawls as it may (CRAWL_MAX_ACTIVE_PER_WORKSPACE)."""

    retry_after = 30

    def __init__(self, active: int):
        super().__init__(
            f"this workspace has {active} crawls queued or running, the most it may have; "
            f"try again when one has finished"
        )
        self.active = active


class CrawlConflict(Exception):
    """The source has an active crawl and its overlap policy is "skip"."""

    def __init__(self, active: Crawl):
        super().__init__(f"crawl {active.pk} of this source is still {active.status}")
        self.active = active


def _enqueue(crawl_id: int, *, workers: int = 1) -> None:
    """Send the crawl's tasks (after its transaction committed). A broker that cannot be
    reached loses nothing: the crawl stays queued and the sweep sends it again."""
    try:
        for _ in range(workers):
            celery_app.send_task("crawls.run", args=[crawl_id], queue=settings.CRAWL_QUEUE)
    except kombu.exceptions.OperationalError as exc:
        logger.warning(
            "crawl %s not sent, the broker is unreachable (%s): the sweep will", crawl_id, exc
        )


@transaction.atomic
def crawl_start(
    *, source: Source, user=None, trigger: str = "manual", workers: int | None = None
) -> Crawl:
    """Queue a crawl of `source`: the row, its seed URLs and a `queued` event in one
    transaction; `workers` Celery tasks (default CRAWL_WORKERS_PER_CRAWL) are sent when it
    commits. Raises CrawlConflict when the source has an active crawl and its overlap policy
    is "skip", Backpressure when the workspace has too many active crawls."""
    source = Source.objects.select_for_update().get(pk=source.pk)  # one start at a time
    active = source.crawls.filter(status__in=Crawl.ACTIVE).order_by("id").first()
    if active is not None and source.overlap_policy == Source.OverlapPolicy.SKIP:
        raise CrawlConflict(active)
    busy = Crawl.objects.filter(workspace_id=source.workspace_id, status__in=Crawl.ACTIVE).count()
    if busy >= settings.CRAWL_MAX_ACTIVE_PER_WORKSPACE:
        raise Backpressure(busy)
    crawl = Crawl.objects.create(
        workspace_id=source.workspace_id,
        source=source,
        created_by=user,
        heartbeat_at=timezone.now(),
    )
    parsed = kinds.rules_parse(source.kind, source.rules)
    allowlist = scope.allowlist()
    seeds, refused = [], []
    for url in source.start_urls:
        try:
            requests = kinds.start_requests(parsed, [url])
        except ValueError as exc:  # an URL that cannot be canonicalised, a template unfilled
            refused.append({"url": url, "class": "refused", "error": str(exc)})
            continue
        for seed in requests:
            try:
                guard.check_url(seed.url, allowlist=allowlist)
            except guard.Refused as exc:
                refused.append({"url": seed.describe(), "class": "refused", "error": exc.reason})
            else:
                plain = seed.is_plain_get
                seeds.append(
                    frontier.Link(
                        seed.url, request.request_hash(seed), 0, "list", None if plain else seed
                    )
                )
    added = frontier.frontier_add(
        crawl_id=crawl.pk, workspace_id=crawl.workspace_id, links=seeds, room=source.max_pages
    )
    Crawl.objects.filter(pk=crawl.pk).update(pages_total=added)
    crawl.pages_total = added
    events.event_append(
        crawl_id=crawl.pk,
        workspace_id=crawl.workspace_id,
        type=events.QUEUED,
        payload={
            "source": source.pk,
            "trigger": trigger,
            "start_urls": len(seeds),
            "pages_total": added,
        },
    )
    for payload in refused:
        events.event_append(
            crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.URL_REFUSED,
            payload=payload,
        )  # fmt: skip
    n = settings.CRAWL_WORKERS_PER_CRAWL if workers is None else workers
    transaction.on_commit(lambda: _enqueue(crawl.pk, workers=n))
    return crawl


def crawl_scheduled(*, source_id: int) -> Crawl | None:
    """What beat runs for a scheduled source: a crawl, or none when the policy says skip."""
    source = Source.objects.filter(pk=source_id).first()
    if source is None:
        return None
    try:
        return crawl_start(source=source, trigger="schedule")
    except (CrawlConflict, Backpressure) as refusal:
        logger.info("source %s: scheduled crawl skipped (%s)", source_id, refusal)
        return None


@transaction.atomic
def crawl_cancel(*, crawl: Crawl) -> Crawl:
    """Cancel a crawl: at once when queued, between two batches when running."""
    crawl = Crawl.objects.select_for_update().get(pk=crawl.pk)
    if crawl.status == Crawl.Status.QUEUED:
        crawl.status = Crawl.Status.CANCELLED
        crawl.cancel_requested = True
        crawl.finished_at = timezone.now()
        crawl.save(update_fields=["status", "cancel_requested", "finished_at"])
        events.event_append(
            crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.CANCELLED,
            payload=lifecycle.crawl_final_figures(crawl),
        )  # fmt: skip
    elif crawl.status == Crawl.Status.RUNNING and not crawl.cancel_requested:
        crawl.cancel_requested = True
        crawl.save(update_fields=["cancel_requested"])
        events.event_append(
            crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.CANCEL_REQUESTED
        )
    return crawl


def crawl_retry(*, crawl: Crawl, user=None) -> Crawl:
    """Start a new crawl of a finished crawl's source."""
    if crawl.is_active:
        raise CrawlConflict(crawl)
    return crawl_start(source=crawl.source, user=user, trigger="retry")


def crawl_sweep(*, stall_seconds: int | None = None) -> list[int]:
    """Re-enqueue active crawls that show no sign of life (their worker died, or their task
    message was lost); the frontier's expired leases let the new worker carry on. A crawl that
    went silent more than CRAWL_MAX_REVIVALS times is failed instead: nothing comes back forever."""
    stall = stall_seconds if stall_seconds is not None else settings.CRAWL_STALL_SECONDS
    cutoff = timezone.now() - dt.timedelta(seconds=stall)
    revived = []
    with transaction.atomic():
        stalled = (
            Crawl.objects.select_for_update(skip_locked=True)
            .filter(status__in=Crawl.ACTIVE, heartbeat_at__lt=cutoff)
            .exclude(Exists(ImportJob.objects.filter(crawl=OuterRef("pk"))))  # import_sweep's
            .only("id", "workspace_id", "status", "revivals")
        )
        for crawl in stalled:
            if crawl.revivals >= settings.CRAWL_MAX_REVIVALS:
                _crawl_give_up(crawl, stall)
                continue
            Crawl.objects.filter(pk=crawl.pk).update(
                heartbeat_at=timezone.now(), revivals=F("revivals") + 1
            )
            events.event_append(
                crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.RESUMED,
                payload={"stalled_for_more_than_s": stall, "revival": crawl.revivals + 1},
            )  # fmt: skip
            revived.append(crawl.pk)
        transaction.on_commit(lambda: [_enqueue(pk) for pk in revived])
    if revived:
        logger.warning("re-enqueued stalled crawls %s", revived)
    return revived


def _crawl_give_up(crawl: Crawl, stall: int) -> None:
    error = (
        f"gave up: its worker went silent for more than {stall}s "
        f"{crawl.revivals + 1} times (CRAWL_MAX_REVIVALS={settings.CRAWL_MAX_REVIVALS})"
    )
    lifecycle.crawl_finish(crawl, Crawl.Status.FAILED, owner=None, error=error)
    logger.error("crawl %s: %s", crawl.pk, error)
