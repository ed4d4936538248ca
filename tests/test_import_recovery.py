"""An import job survives the death of the run that had it (docs/imports.md, "When a worker
dies"): its lease, the takeover by its redelivered task or by the sweep, the resume from its last
stored batch, and the bounds (a missing file, too many takeovers)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
from pathlib import Path

import psutil
import pytest
from django.utils import timezone

from crawls import events, services
from crawls.models import Bid, BidRevision, Crawl, CrawlEvent, ImportJob
from crawls.services import import_jobs, imports
from project.celery import app as celery_app
from tests import crawling
from tests.clients import API
from tests.crawling import start_worker, stored_bids
from tests.processes import wait_until

HEADER = "url,title,department,amount,post_date,status,memo\n"


def csv_of(count: int, *, version: int = 1) -> bytes:
    """`count` rows, every 37th of them an error (no title); in version 2 every other title and
    every third amount differ from version 1."""
    lines = [HEADER]
    for n in range(1, count + 1):
        url = f"https://bids.example.org/n/{n}"
        if n % 37 == 0:
            lines.append(f"{url},,,,,,\n")
            continue
        title = f"도로 포장 공사 {n}" + (" (정정)" if version == 2 and n % 2 == 0 else "")
        amount = 1000 * n + (7 if version == 2 and n % 3 == 0 else 0)
        lines.append(f'{url},{title},서울시 도로과,"{amount}",2026-03-0{1 + n % 9},공고중,m{n}\n')
    return "".join(lines).encode()


def job_create(source, data: bytes, *, keep: bool = True) -> ImportJob:
    return imports.import_create(
        source=source, user=None, raw=io.BytesIO(data), filename="bids.csv", size=len(data),
        keep=keep,
    )  # fmt: skip


def outcome(job: ImportJob) -> dict:
    """What an import did, comparable between two sources: the job's and its crawl's figures,
    the stored bids, the revisions it wrote, the bids its events named, its final events."""
    job.refresh_from_db()
    crawl = Crawl.objects.get(pk=job.crawl_id)
    urls = dict(Bid.objects.filter(source_id=job.source_id).values_list("pk", "url"))
    items = CrawlEvent.objects.filter(crawl=crawl, type=events.ITEMS)
    named = {"new": [], "changed": []}
    for event in items:
        for key in named:
            named[key].extend(urls[pk] for pk in event.payload[key])
    revisions = BidRevision.objects.filter(crawl=crawl).values_list("bid__url", "changes")
    return {
        "job": (
            job.status, job.error, job.rows_total, job.rows_done, job.rows_failed, job.items_new,
            job.items_changed, job.items_unchanged, job.errors, job.path,
        ),
        "crawl": (crawl.status, crawl.items_new, crawl.items_changed, crawl.items_unchanged),
        "bids": stored_bids(job.source),
        "revisions": sorted((url, sorted(changes)) for url, changes in revisions),
        "named": {key: sorted(values) for key, values in named.items()},
        "finals": [
            event.type
            for event in CrawlEvent.objects.filter(crawl=crawl, type__in=events.FINAL_TYPES)
        ],
    }  # fmt: skip


def reference(source, *files: bytes) -> dict:
    """The outcome of importing `files` one after the other, each in one uninterrupted run."""
    for data in files:
        job = job_create(source, data, keep=False)
        imports.import_run(job_id=job.pk, raw=io.BytesIO(data))
    return outcome(job)


class Died(BaseException):
    """The run's process died here (not an error the run could catch and report)."""


def dies_after(batches: int):
    seen = []

    def progress(_job):
        seen.append(1)
        if len(seen) == batches:
            raise Died

    return progress


@pytest.fixture
def sent(monkeypatch):
    """The tasks the code sends (name, args, task_id), instead of sending them."""
    tasks = []
    monkeypatch.setattr(
        celery_app,
        "send_task",
        lambda name, **kw: tasks.append((name, kw["args"], kw.get("task_id"))),
    )
    return tasks


@pytest.fixture
def import_dir(settings, tmp_path):
    settings.IMPORT_DIR = tmp_path / "imports"
    settings.IMPORT_BATCH = int(WORKER_ENV["IMPORT_BATCH"])  # as the workers the tests start
    return settings.IMPORT_DIR


@pytest.mark.django_db
def test_import_resumed_by_the_sweep_after_its_run_died_equals_an_uninterrupted_one(
    source_a,
    source_b,
    settings,
    sent,
    import_dir,
    django_capture_on_commit_callbacks,
    api,
    owner,
    client,
):
    settings.IMPORT_BATCH = 10
    first, second = csv_of(80), csv_of(80, version=2)
    expected = reference(source_b, first, second)
    assert expected["revisions"], "version 2 changes bids: revisions to compare"

    imports.import_run(job_id=job_create(source_a, first, keep=False).pk, raw=io.BytesIO(first))
    job = job_create(source_a, second)
    with pytest.raises(Died):  # the worker dies after its third batch committed
        imports.import_run(job_id=job.pk, task_id="t-1", progress=dies_after(3))
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.takeovers) == ("running", 30, 0)
    assert imports.import_run(job_id=job.pk, task_id="another") is None  # its lease is fresh

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert import_jobs.import_sweep() == []  # not stale yet
        assert import_jobs.import_sweep(stall_seconds=0) == [job.pk]
    ((name, args, task_id),) = sent
    assert (name, args) == ("crawls.import_run", [job.pk])
    assert imports.import_run(job_id=job.pk, task_id="another") is None  # handed to task_id
    ran = imports.import_run(job_id=job.pk, task_id=task_id)

    assert ran is not None
    assert ran.takeovers == 1
    got = outcome(ran)
    assert got == {**expected, "bids": got["bids"]}
    assert got["bids"] == expected["bids"]
    assert got["job"][:2] == ("succeeded", "")
    assert got["finals"] == [events.SUCCEEDED]
    resumed = CrawlEvent.objects.get(crawl_id=ran.crawl_id, type=events.RESUMED)
    assert resumed.payload == {"revival": 1, "import": job.pk, "from_row": 30}
    assert services.crawl_rebuild(crawl_id=ran.crawl_id).differences == {}
    assert not list(import_dir.iterdir())  # the kept file is removed
    assert api(owner).get(f"{API}/imports/{job.pk}/").json()["takeovers"] == 1
    client.force_login(owner)
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "Resumed 1 time from its last stored batch" in page


@pytest.mark.django_db
def test_import_taken_over_while_its_run_lives_stores_nothing_more_from_that_run(
    source_a, source_b, settings, sent, import_dir
):
    """Two runs never store one job's batches: the one that lost the lease stops at its next
    batch (which waits for the takeover's row lock, then sees another lease), writing nothing."""
    settings.IMPORT_BATCH = 10
    data = csv_of(60)
    expected = reference(source_b, data)
    job = job_create(source_a, data)
    settings.IMPORT_STALL_SECONDS = 0  # the first run looks dead to the second at once
    taken = []

    def progress(_job):
        if not taken:  # after the first run's first batch: another run takes the job over
            taken.append(imports.import_run(job_id=job.pk, task_id="second"))

    assert imports.import_run(job_id=job.pk, task_id="first", progress=progress) is None
    (second,) = taken
    assert second is not None
    assert (second.status, second.takeovers) == ("succeeded", 1)
    got = outcome(second)
    assert got == {**expected, "bids": got["bids"]}
    assert got["bids"] == expected["bids"]
    assert CrawlEvent.objects.filter(crawl_id=second.crawl_id, type=events.ITEMS).count() == 6


@pytest.mark.django_db
def test_import_task_delivered_again_takes_its_job_over_at_once(
    source_a, settings, sent, import_dir
):
    """The task of a run that died (acks_late, reject_on_worker_lost) takes over without waiting
    for the heartbeat to go stale; another task does not."""
    settings.IMPORT_BATCH = 10
    data = csv_of(30)
    job = job_create(source_a, data)
    with pytest.raises(Died):
        imports.import_run(job_id=job.pk, task_id="t-1", progress=dies_after(1))
    assert imports.import_run(job_id=job.pk, task_id="t-2") is None
    ran = imports.import_run(job_id=job.pk, task_id="t-1")
    assert ran is not None
    assert (ran.status, ran.takeovers, ran.rows_done, ran.items_new) == ("succeeded", 1, 30, 30)
    assert Bid.objects.filter(source=source_a).count() == 30


@pytest.mark.django_db
def test_import_whose_file_is_gone_when_taken_over_fails_naming_it(
    source_a, sent, import_dir, django_capture_on_commit_callbacks
):
    job = job_create(source_a, csv_of(30))
    with pytest.raises(Died):
        imports.import_run(job_id=job.pk, task_id="t-1", progress=dies_after(1))
    job.refresh_from_db()
    Path(job.path).unlink()  # IMPORT_DIR not shared, or the file deleted
    ran = imports.import_run(job_id=job.pk, task_id="t-1")
    assert ran is not None
    assert ran.status == "failed"
    assert job.path in ran.error
    assert "IMPORT_DIR" in ran.error
    assert ran.crawl.status == Crawl.Status.FAILED
    assert ran.crawl.error == ran.error
    assert [e.type for e in CrawlEvent.objects.filter(crawl=ran.crawl)][-1] == events.FAILED
    assert imports.import_run(job_id=job.pk, task_id="t-1") is None  # ended: no crash loop
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert import_jobs.import_sweep(stall_seconds=0) == []
    assert sent == []


@pytest.mark.django_db
def test_import_taken_over_too_often_fails(
    source_a, settings, sent, import_dir, django_capture_on_commit_callbacks
):
    """A file that kills every worker that reads it (a poison row, memory) ends failed after
    IMPORT_MAX_TAKEOVERS takeovers, by its task delivered again or by the sweep."""
    settings.IMPORT_MAX_TAKEOVERS = 2
    settings.IMPORT_BATCH = 5
    job = job_create(source_a, csv_of(30))
    for _ in range(3):  # the run and two takeovers die
        with pytest.raises(Died):
            imports.import_run(job_id=job.pk, task_id="t-1", progress=dies_after(1))
    job.refresh_from_db()
    assert (job.status, job.takeovers, job.rows_done) == ("running", 2, 15)
    assert imports.import_run(job_id=job.pk, task_id="t-1") is None
    job.refresh_from_db()
    assert job.status == "failed"
    assert "gave up" in job.error
    assert "IMPORT_MAX_TAKEOVERS=2" in job.error
    assert job.path == ""
    assert not list(import_dir.iterdir())
    finals = CrawlEvent.objects.filter(crawl_id=job.crawl_id, type__in=events.FINAL_TYPES)
    assert [event.type for event in finals] == [events.FAILED]

    other = job_create(source_a, csv_of(30))
    sent.clear()
    with pytest.raises(Died):
        imports.import_run(job_id=other.pk, task_id="t-2", progress=dies_after(1))
    ImportJob.objects.filter(pk=other.pk).update(takeovers=2)
    with django_capture_on_commit_callbacks(execute=True):
        assert import_jobs.import_sweep(stall_seconds=0) == []
    other.refresh_from_db()
    assert (other.status, other.crawl.status) == ("failed", Crawl.Status.FAILED)
    assert "gave up" in other.error
    assert sent == []


@pytest.mark.django_db
def test_import_sweep_sends_a_lost_queued_job_again_and_fails_one_it_cannot_resume(
    source_a, sent, import_dir, django_capture_on_commit_callbacks
):
    queued = job_create(source_a, csv_of(5))
    stuck = job_create(source_a, csv_of(5), keep=False)
    with pytest.raises(Died):  # a request (no kept file) that died mid-import
        imports.import_run(job_id=stuck.pk, raw=io.BytesIO(csv_of(5)), progress=dies_after(1))
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert import_jobs.import_sweep() == []
        assert import_jobs.import_sweep(stall_seconds=0) == [queued.pk]
    assert [(name, args) for name, args, _ in sent] == [("crawls.import_run", [queued.pk])]
    queued.refresh_from_db()
    assert (queued.status, queued.takeovers) == ("queued", 0)
    stuck.refresh_from_db()
    assert stuck.status == "failed"
    assert "import the file again" in stuck.error
    assert stuck.crawl.status == Crawl.Status.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        assert import_jobs.import_sweep() == []  # sent again once per IMPORT_STALL_SECONDS
    ran = imports.import_run(job_id=queued.pk, task_id=sent[0][2])
    assert (ran.status, ran.rows_done, ran.items_unchanged, ran.takeovers) == ("succeeded", 5, 5, 0)


@pytest.mark.django_db
def test_crawl_sweep_leaves_an_imports_crawl_to_the_import_sweep(source_a, sent, import_dir):
    job = job_create(source_a, csv_of(20))
    with pytest.raises(Died):
        imports.import_run(job_id=job.pk, task_id="t-1", progress=dies_after(1))
    job.refresh_from_db()
    Crawl.objects.filter(pk=job.crawl_id).update(heartbeat_at=timezone.now())
    assert services.crawl_sweep(stall_seconds=0) == []
    assert Crawl.objects.get(pk=job.crawl_id).revivals == 0


# --- Real workers killed mid-import ---------------------------------------------------------------

ROWS = 6000
WORKER_ENV = {"IMPORT_BATCH": "100"}


def _worker_started(queue, tmp_path, name, import_dir):
    return start_worker(queue, tmp_path, name, IMPORT_DIR=str(import_dir), **WORKER_ENV)


def _some_batches_stored(job):
    return ImportJob.objects.filter(pk=job.pk, rows_done__gte=500).exists()


def _finished(job):
    wait_until(
        lambda: ImportJob.objects.filter(pk=job.pk, status__in=ImportJob.FINISHED).exists(),
        what=f"import {job.pk}",
        timeout=240,
    )
    # The worker hands the final event to the subscribers after the job ends: let it.
    with contextlib.suppress(TimeoutError):
        wait_until(crawling.worker_caught_up, what="the worker's subscribers", timeout=30)
    job.refresh_from_db()
    return job


def _assert_like_uninterrupted(job, source_b, data):
    expected = reference(source_b, data)
    got = outcome(job)
    assert got == {**expected, "bids": got["bids"]}
    assert got["bids"] == expected["bids"]
    assert got["job"][:4] == ("succeeded", "", ROWS, ROWS)
    assert got["finals"] == [events.SUCCEEDED]
    assert len(got["named"]["new"]) == len(set(got["named"]["new"])) == ROWS - ROWS // 37
    assert services.crawl_rebuild(crawl_id=job.crawl_id).differences == {}


@pytest.mark.django_db(transaction=True)
def test_import_worker_killed_mid_import_is_resumed_by_a_new_worker_exactly(
    source_a, source_b, isolated_queue, import_dir, tmp_path
):
    """kill -9 of the whole worker (its task message stays unacknowledged with it): the sweep
    hands the job to a new worker, which goes on from the last stored batch."""
    data = csv_of(ROWS)
    doomed = _worker_started(isolated_queue, tmp_path, "doomed", import_dir)
    job = job_create(source_a, data)
    try:
        doomed.wait_until(lambda: _some_batches_stored(job), what="some batches", timeout=120)
        os.killpg(doomed.proc.pid, signal.SIGKILL)  # main process and its pool
    finally:
        doomed.stop()
    job.refresh_from_db()
    assert job.status == "running"
    assert 500 <= job.rows_done < ROWS
    stored_before = job.rows_done

    fresh = _worker_started(isolated_queue, tmp_path, "fresh", import_dir)
    try:
        # What beat's sweep does once the job has shown no sign of life for IMPORT_STALL_SECONDS
        # (PostgreSQL may take a moment to end the dead worker's transaction, and its lock).
        swept: list[int] = []
        wait_until(
            lambda: bool(swept.extend(import_jobs.import_sweep(stall_seconds=0)) or swept),
            what="the sweep",
            timeout=30,
        )
        assert swept == [job.pk]
        job = _finished(job)
    finally:
        fresh.stop()
    assert job.takeovers == 1
    resumed = CrawlEvent.objects.get(crawl_id=job.crawl_id, type=events.RESUMED)
    assert resumed.payload["from_row"] == stored_before
    _assert_like_uninterrupted(job, source_b, data)
    assert "taken over" in fresh.output()


@pytest.mark.django_db(transaction=True)
def test_import_worker_process_killed_is_taken_over_by_its_task_delivered_again(
    source_a, source_b, isolated_queue, import_dir, tmp_path
):
    """kill -9 of the pool process running the import (the OOM killer's way): the worker
    delivers the task again (reject_on_worker_lost) and its new process takes the job over at
    once, without the sweep."""
    data = csv_of(ROWS)
    worker = _worker_started(isolated_queue, tmp_path, "oom", import_dir)
    try:
        job = job_create(source_a, data)
        worker.wait_until(lambda: _some_batches_stored(job), what="some batches", timeout=120)
        (child,) = psutil.Process(worker.proc.pid).children()
        child.send_signal(signal.SIGKILL)
        job = _finished(job)
    finally:
        worker.stop()
    assert job.takeovers == 1
    assert "WorkerLostError" in worker.output() or "SIGKILL" in worker.output()
    _assert_like_uninterrupted(job, source_b, data)


@pytest.mark.django_db(transaction=True)
def test_import_of_a_stopping_worker_is_handed_to_another_at_once(
    source_a, source_b, isolated_queue, import_dir, tmp_path
):
    """SIGTERM (a deploy): the worker's run stops after its batch in flight and hands the job
    to a new task, which another worker takes at once (no stale heartbeat to wait for, no
    takeover counted)."""
    data = csv_of(ROWS)
    stopping = _worker_started(isolated_queue, tmp_path, "stopping", import_dir)
    try:
        job = job_create(source_a, data)
        stopping.wait_until(lambda: _some_batches_stored(job), what="some batches", timeout=120)
        stopping.signal(signal.SIGTERM)  # warm shutdown of the main process
        assert stopping.proc.wait(60) == 0, stopping.output()
    finally:
        stopping.stop()
    job.refresh_from_db()
    assert job.status == "running"
    assert job.rows_done < ROWS
    assert job.lease.endswith("/handed")
    assert "handed back by a stopping worker" in stopping.output()

    fresh = _worker_started(isolated_queue, tmp_path, "after", import_dir)
    try:
        job = _finished(job)
    finally:
        fresh.stop()
    assert job.takeovers == 0
    _assert_like_uninterrupted(job, source_b, data)
