"""The life of an import job (docs/imports.md, "When a worker dies"): its claim, its lease, its
takeover by another run, its end, and the sweep that finds jobs nothing is running any more.

A running job holds a lease: `lease` names the run that holds it and `heartbeat_at` is renewed
by each stored batch, in the batch's transaction, which first locks the job's row and checks the
lease (batch_lease_check): a run that lost its lease stores nothing more. A job whose heartbeat
is older than IMPORT_STALL_SECONDS is taken over by its own task redelivered (acks_late) or by
the task the sweep sends it; the new run skips the records already stored (`rows_done`) and goes
on. After IMPORT_MAX_TAKEOVERS takeovers the job fails: no import comes back forever.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import kombu.exceptions
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crawls import events
from crawls.engine import lifecycle
from crawls.models import Crawl, ImportJob
from project.celery import app as celery_app

logger = logging.getLogger(__name__)

TASK = "crawls.import_run"
HANDED = "handed"  # a lease the sweep hands to the task it sends: "<its task id>/handed"


class LeaseLost(Exception):
    """Another run took the job over: this one stops and writes nothing more."""


class HandBack(Exception):
    """The worker is stopping: the run hands its job to a new task (job_hand_back)."""


@dataclass(frozen=True, slots=True)
class Run:
    """A run holding a job: its job (as claimed), its crawl, its lease."""

    job: ImportJob
    crawl: Crawl
    lease: str


def job_enqueue(job_id: int, *, task_id: str | None = None) -> None:
    """Send the job's task (after its transaction committed). An unreachable broker loses
    nothing: the sweep sends it again once its heartbeat is stale."""
    try:
        celery_app.send_task(TASK, args=[job_id], queue=settings.CRAWL_QUEUE, task_id=task_id)
    except kombu.exceptions.OperationalError as exc:
        logger.warning("import %s not sent, the broker is unreachable (%s)", job_id, exc)


def job_claim(*, job_id: int, task_id: str = "") -> Run | None:
    """Take a queued job, or take over a running one whose run is gone (its heartbeat stale, or
    this very task delivered again, or its lease handed to this task by the sweep). None when the
    job ended or a live run holds it; a takeover past IMPORT_MAX_TAKEOVERS fails the job."""
    now = timezone.now()
    lease = f"{task_id or 'local'}/{uuid.uuid4().hex[:12]}"
    with transaction.atomic():
        job = (
            ImportJob.objects.select_for_update(of=("self",))
            .select_related("source", "crawl")
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.status in ImportJob.FINISHED:
            return None
        if job.status == ImportJob.Status.QUEUED:
            job.status, job.started_at = ImportJob.Status.RUNNING, now
            job.lease, job.heartbeat_at = lease, now
            job.save(update_fields=["status", "started_at", "lease", "heartbeat_at"])
            return Run(job, _crawl_start(job, now), lease)
        counted = _takeover(job, task_id, now)
        if counted is None:
            return None
        if counted:
            if job.takeovers >= settings.IMPORT_MAX_TAKEOVERS:
                _give_up(job)
                return None
            job.takeovers += 1
        job.lease, job.heartbeat_at = lease, now
        job.save(update_fields=["lease", "heartbeat_at", "takeovers"])
        crawl = job.crawl if job.crawl is not None else _crawl_start(job, now)
        Crawl.objects.filter(pk=crawl.pk).update(revivals=job.takeovers, heartbeat_at=now)
        events.event_append(
            crawl_id=crawl.pk, workspace_id=job.workspace_id, type=events.RESUMED,
            payload={"revival": job.takeovers, "import": job.pk, "from_row": job.rows_done},
        )  # fmt: skip
    logger.warning("import %s taken over (%s) from row %s", job.pk, job.takeovers, job.rows_done)
    return Run(job, crawl, lease)


def _takeover(job: ImportJob, task_id: str, now: dt.datetime) -> bool | None:
    """Whether this run may take the running job over: None no (a live run holds it, or it
    has no kept file to resume from), else whether the takeover counts (the sweep counted its
    own when it handed the lease)."""
    if not job.path:
        return None  # run in a request or a command, from a file nobody else has
    if task_id and job.lease == f"{task_id}/{HANDED}":
        return False
    if task_id and job.lease.startswith(f"{task_id}/"):
        return True  # this task, delivered again: the run that had it died
    stale = now - dt.timedelta(seconds=settings.IMPORT_STALL_SECONDS)
    if job.heartbeat_at is None or job.heartbeat_at < stale:
        return True
    return None


def batch_lease_check(run: Run) -> None:
    """In a batch's transaction, before it stores anything: lock the job's row and check that
    this run still holds it (LeaseLost if not). A takeover waits for the batch to commit."""
    held = ImportJob.objects.select_for_update().filter(
        pk=run.job.pk, lease=run.lease, status=ImportJob.Status.RUNNING
    )
    if not list(held.values_list("pk", flat=True)):
        raise LeaseLost(f"import {run.job.pk}: another run took it over")


def job_hand_back(run: Run) -> bool:
    """The worker running the job is stopping (SIGTERM): hand its lease to a new task, sent
    when this commits, which goes on from the last stored batch at once (not a takeover: no
    count). False if this run had lost the job already."""
    task_id = str(uuid.uuid4())
    with transaction.atomic():
        handed = ImportJob.objects.filter(
            pk=run.job.pk, lease=run.lease, status=ImportJob.Status.RUNNING
        ).update(lease=f"{task_id}/{HANDED}", heartbeat_at=timezone.now())
        if handed:
            transaction.on_commit(lambda: job_enqueue(run.job.pk, task_id=task_id))
    if handed:
        logger.warning("import %s handed back by a stopping worker", run.job.pk)
    return bool(handed)


def job_finish(run: Run, *, error: str = "") -> bool:
    """End the job succeeded (or failed with `error`) with its crawl's final event, once, if
    this run still holds it; False if it lost it. Its kept file is removed."""
    with transaction.atomic():
        job = (
            ImportJob.objects.select_for_update()
            .filter(pk=run.job.pk, lease=run.lease, status=ImportJob.Status.RUNNING)
            .first()
        )
        if job is None:
            return False
        _job_end(job, run.crawl, error=error)
    return True


def _job_end(job: ImportJob, crawl: Crawl | None, *, error: str) -> None:
    """In the transaction that locked the job: remove its file, end its crawl (the final event,
    once) and the job."""
    now = timezone.now()
    if job.path:  # before the job ends: whoever sees it ended sees the file gone
        _remove(job.path)
    if crawl is not None:
        locked = Crawl.objects.select_for_update().get(pk=crawl.pk)
        if locked.status not in Crawl.FINISHED:
            locked.status = Crawl.Status.FAILED if error else Crawl.Status.SUCCEEDED
            locked.error, locked.finished_at = error, now
            locked.save(update_fields=["status", "error", "finished_at"])
            events.event_append(
                crawl_id=crawl.pk,
                workspace_id=crawl.workspace_id,
                type=events.FAILED if error else events.SUCCEEDED,
                payload={**lifecycle.crawl_final_figures(locked), "import": job.pk, "error": error},
            )
    status = ImportJob.Status.FAILED if error else ImportJob.Status.SUCCEEDED
    ImportJob.objects.filter(pk=job.pk).update(
        status=status, error=error, finished_at=now, path="", lease=""
    )


def _give_up(job: ImportJob) -> None:
    error = (
        f"gave up: the run importing it died {job.takeovers + 1} times "
        f"(IMPORT_MAX_TAKEOVERS={settings.IMPORT_MAX_TAKEOVERS})"
    )
    logger.error("import %s: %s", job.pk, error)
    _job_end(job, job.crawl, error=error)


def _crawl_start(job: ImportJob, now: dt.datetime) -> Crawl:
    """The job's own crawl, running, with its started event (in the claim's transaction)."""
    crawl = Crawl.objects.create(
        workspace_id=job.workspace_id,
        source_id=job.source_id,
        created_by_id=job.created_by_id,
        status=Crawl.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
    )
    ImportJob.objects.filter(pk=job.pk).update(crawl=crawl)
    job.crawl = crawl
    events.event_append(
        crawl_id=crawl.pk,
        workspace_id=crawl.workspace_id,
        type=events.STARTED,
        payload={"attempt": 1, "source": job.source_id, "import": job.pk},
    )
    return crawl


def import_sweep(*, stall_seconds: int | None = None) -> list[int]:
    """Jobs whose heartbeat is older than IMPORT_STALL_SECONDS (beat, with the crawls' sweep):
    a running one is handed to a new task (a takeover), a queued one is sent again (its message
    may be lost), one that cannot be resumed or was taken over too often is failed. The ids of
    the jobs sent."""
    stall = stall_seconds if stall_seconds is not None else settings.IMPORT_STALL_SECONDS
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=stall)
    sent: list[tuple[int, str]] = []
    with transaction.atomic():
        stale = (
            ImportJob.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("crawl")
            .filter(status__in=(ImportJob.Status.QUEUED, ImportJob.Status.RUNNING))
            .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at=None, created_at__lt=cutoff))
        )
        for job in stale:
            if not job.path:
                _job_end(job, job.crawl, error=_NOT_RESUMABLE)
                continue
            if job.status == ImportJob.Status.RUNNING and job.takeovers >= (
                settings.IMPORT_MAX_TAKEOVERS
            ):
                _give_up(job)
                continue
            task_id = str(uuid.uuid4())
            job.heartbeat_at = now
            if job.status == ImportJob.Status.RUNNING:
                job.lease, job.takeovers = f"{task_id}/{HANDED}", job.takeovers + 1
            job.save(update_fields=["heartbeat_at", "lease", "takeovers"])
            sent.append((job.pk, task_id))
        transaction.on_commit(lambda: _jobs_enqueue(sent))
    if sent:
        logger.warning("import jobs sent again: %s", [pk for pk, _ in sent])
    return [pk for pk, _ in sent]


def _jobs_enqueue(sent: list[tuple[int, str]]) -> None:
    for job_id, task_id in sent:
        job_enqueue(job_id, task_id=task_id)


_NOT_RESUMABLE = (
    "the request or command that ran this import ended before it did, and its file was not "
    "kept (IMPORT_SYNC_MAX_ROWS): import the file again"
)


def _remove(path: str) -> None:
    try:
        Path(settings.IMPORT_DIR).joinpath(path).unlink(missing_ok=True)
    except OSError:
        logger.warning("could not remove the import file %s", path)
