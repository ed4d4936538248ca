"""A crawl's state rebuilt from its event log alone (crawls/services/rebuild.py) equals its row
after real crawls: a normal one, one whose worker was killed mid-crawl, cancelled ones, a failed
one; a row changed behind the log's back is reported by `manage.py crawl_rebuild`."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.utils import timezone

from crawls import events, services
from crawls.models import Crawl, CrawlEvent
from crawls.services import rebuild
from tests.crawling import assert_exactly_expected, start_worker, wait_for_crawl
from tests.processes import wait_until
from tests.test_quality import redesign

# What the issue names: status, the counters, errors by class.
NAMED = {
    "status",
    "pages_done",
    "pages_failed",
    "pages_total",
    "items_new",
    "items_changed",
    "items_unchanged",
    "errors",
}


def run_command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("crawl_rebuild", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code), out.getvalue()
    return 0, out.getvalue()


def assert_rebuilt_equal(crawl: Crawl) -> rebuild.Comparison:
    comparison = services.crawl_rebuild(crawl_id=crawl.pk)
    assert (comparison.differences, comparison.after_final) == ({}, [])
    assert set(comparison.compared) >= NAMED, comparison.not_derivable
    assert set(comparison.not_derivable) == set(rebuild.NEVER)
    assert run_command(str(crawl.pk))[0] == 0
    return comparison


def event(sequence: int, type_: str, **payload) -> CrawlEvent:
    return CrawlEvent(sequence=sequence, type=type_, payload=payload)


# --- The fold alone ----------------------------------------------------------------------------


def test_crawl_state_fold_of_a_queued_crawl_is_a_new_row_with_its_seeds():
    state = services.crawl_state_fold([event(1, events.QUEUED, source=1, pages_total=3)])
    assert state.values["status"] == Crawl.Status.QUEUED
    assert (state.values["pages_total"], state.values["pages_done"]) == (3, 0)
    assert (state.values["errors"], state.values["event_seq"]) == ({}, 1)
    assert state.not_derivable == {}


def test_crawl_state_fold_follows_retries_revivals_and_item_batches():
    at = "2026-01-02T03:04:05.123456+00:00"
    log = [
        event(1, events.QUEUED, pages_total=3),
        event(2, events.STARTED, attempt=1, started_at=at, deadline_at=at),
        event(3, events.ITEMS, new=[1, 2, 3], changed=[]),
        event(4, events.RETRYING, attempt=2, in_seconds=0, error="boom"),
        event(5, events.RESUMED, revival=1),
        event(6, events.STARTED, attempt=2, started_at=at, deadline_at=at),
        event(7, events.ITEMS, new=[4], changed=[9, 10]),
    ]
    state = services.crawl_state_fold(log)
    values = state.values
    assert (values["status"], values["attempt"], values["revivals"]) == ("running", 2, 1)
    assert (values["items_new"], values["items_changed"], values["error"]) == (4, 2, "boom")
    assert values["started_at"] == dt.datetime.fromisoformat(at)
    # Running: the figures are throttled snapshots, so they are not claimed.
    assert state.not_derivable["pages_done"] == rebuild.ACTIVE
    assert "pages_done" not in values


def test_crawl_state_fold_of_an_older_log_names_what_it_lacks_instead_of_guessing():
    log = [
        event(1, events.QUEUED, source=1, trigger="manual", start_urls=1),  # no pages_total
        event(2, events.STARTED, attempt=1, source=1),  # no times
        event(3, events.CANCEL_REQUESTED),
        event(4, events.CANCELLED, pages_done=2, pages_failed=0, pages_total=5, items_new=0,
              items_changed=0, items_unchanged=0, errors={"http_4xx": 1}, error=""),
    ]  # fmt: skip
    state = services.crawl_state_fold(log)
    assert state.values["status"] == Crawl.Status.CANCELLED
    assert state.values["cancel_requested"] is True
    assert state.values["errors"] == {"http_4xx": 1}
    assert set(state.not_derivable) == {
        "started_at",
        "deadline_at",
        "finished_at",
        "capped",
        "quality",
    }
    assert "predates 'capped'" in state.not_derivable["capped"]


def test_crawl_state_fold_names_events_after_the_final_one():
    log = [
        event(1, events.QUEUED, pages_total=1),
        event(2, events.STARTED, attempt=1),
        event(3, events.CANCELLED, error="", pages_done=1),
        event(4, events.ITEMS, new=[7], changed=[]),  # a batch committed after the end
        event(5, events.PROGRESS, pages_done=2),
    ]
    state = services.crawl_state_fold(log)
    assert state.after_final == ["#4 crawl.items", "#5 crawl.progress"]
    assert (state.values["items_new"], state.values["pages_done"]) == (1, 1)  # the log's own


# --- Real crawls -------------------------------------------------------------------------------

real_crawls = pytest.mark.django_db(transaction=True)


@real_crawls
def test_crawl_rebuild_equals_the_row_after_a_crawl_of_the_demo_board(
    celery_worker, demo_source, board
):
    crawl = wait_for_crawl(services.crawl_start(source=demo_source))
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    comparison = assert_rebuilt_equal(crawl)
    assert crawl.items_new > 0
    assert crawl.errors.get("http_4xx", 0) > 0  # errors by class compared, not only empties
    assert comparison.events == crawl.event_seq
    code, out = run_command(str(crawl.pk))
    assert (code, out.splitlines()[0]) == (
        0,
        f"crawl {crawl.pk}: {len(comparison.compared)} fields rebuilt from "
        f"{crawl.event_seq} events: all equal to the row",
    )


@real_crawls
def test_crawl_rebuild_reports_a_row_changed_behind_the_logs_back(
    celery_worker, demo_source, board
):
    crawl = wait_for_crawl(services.crawl_start(source=demo_source))
    assert_rebuilt_equal(crawl)
    errors = {**crawl.errors, "http_4xx": crawl.errors["http_4xx"] + 1}
    Crawl.objects.filter(pk=crawl.pk).update(
        pages_done=F("pages_done") + 1, items_new=F("items_new") - 1, errors=errors
    )
    comparison = services.crawl_rebuild(crawl_id=crawl.pk)
    assert comparison.differences == {
        "pages_done": (crawl.pages_done + 1, crawl.pages_done),
        "items_new": (crawl.items_new - 1, crawl.items_new),
        "errors": (errors, crawl.errors),
    }
    code, out = run_command(str(crawl.pk))
    assert code == 1
    assert f"  pages_done: row {crawl.pages_done + 1}, log {crawl.pages_done}" in out
    assert f"  items_new: row {crawl.items_new - 1}, log {crawl.items_new}" in out
    code, out = run_command(str(crawl.pk), "--json")
    report = json.loads(out)
    assert (code, report["equal"], set(report["differences"])) == (
        1,
        False,
        {"pages_done", "items_new", "errors"},
    )
    assert report["differences"]["errors"]["log"] == crawl.errors
    # A deleted event is a difference too: the log is gapless or it is not the record.
    CrawlEvent.objects.filter(crawl=crawl, type=events.PROGRESS).order_by("sequence")[:1].get(
    ).delete()  # fmt: skip
    assert "event_seq" in services.crawl_rebuild(crawl_id=crawl.pk).differences


@real_crawls
def test_crawl_rebuild_of_a_missing_crawl_exits_2():
    with pytest.raises(CommandError) as raised:
        call_command("crawl_rebuild", "987654321")
    assert (raised.value.returncode, str(raised.value)) == (2, "no crawl 987654321")


@real_crawls
def test_crawl_rebuild_equals_the_row_after_its_worker_was_killed_mid_crawl(
    demo_source, board, isolated_queue, tmp_path
):
    services.source_update(source=demo_source, concurrency_per_host=1, delay_seconds=0.03)
    env = {"CRAWL_BATCH_SIZE": "4", "CRAWL_LEASE_SECONDS": "3"}
    doomed = start_worker(isolated_queue, tmp_path, "doomed", **env)
    crawl = services.crawl_start(source=demo_source)
    doomed.wait_until(
        lambda: Crawl.objects.get(pk=crawl.pk).items_new >= 8, what="some progress", timeout=60
    )
    os.killpg(doomed.proc.pid, signal.SIGKILL)  # the whole worker: main process and its pool
    doomed.stop()
    # Mid-crawl the status and item sums are already the row's; the figures wait for the end.
    running = services.crawl_rebuild(crawl_id=crawl.pk)
    assert running.differences == {}
    assert {"status", "items_new", "items_changed"} <= set(running.compared)
    assert running.not_derivable["pages_done"] == rebuild.ACTIVE
    fresh = start_worker(isolated_queue, tmp_path, "fresh", **env)
    try:
        wait_until(
            lambda: Crawl.objects.filter(pk=crawl.pk, heartbeat_at__lt=timezone.now()).exists(),
            what="a heartbeat in the past",
        )
        assert services.crawl_sweep(stall_seconds=0) == [crawl.pk]
        crawl = wait_for_crawl(crawl)
    finally:
        fresh.stop()
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    assert_exactly_expected(demo_source, board, crawl)
    comparison = assert_rebuilt_equal(crawl)
    assert crawl.revivals == 1
    assert "revivals" in comparison.compared


@real_crawls
def test_crawl_rebuild_equals_the_row_after_a_running_crawl_was_cancelled(
    demo_source, board, isolated_queue, tmp_path
):
    services.source_update(source=demo_source, concurrency_per_host=1, delay_seconds=0.05)
    worker = start_worker(isolated_queue, tmp_path, "cancel", CRAWL_BATCH_SIZE="4")
    try:
        crawl = services.crawl_start(source=demo_source)
        worker.wait_until(
            lambda: Crawl.objects.get(pk=crawl.pk).pages_done >= 4, what="progress", timeout=60
        )
        services.crawl_cancel(crawl=crawl)
        crawl = wait_for_crawl(crawl, timeout=30)
    finally:
        worker.stop()
    assert (crawl.status, crawl.cancel_requested) == (Crawl.Status.CANCELLED, True)
    assert crawl.pages_done >= 4
    assert_rebuilt_equal(crawl)


@real_crawls
def test_a_batch_in_flight_when_a_shared_crawl_is_cancelled_writes_nothing_after_the_end(
    demo_source, board, isolated_queue, tmp_path
):
    """Two workers share a crawl; the cancel lands while one still has a batch in flight. That
    batch is dropped (its URLs handed back), so the row still equals its log's fold and nothing
    follows the final event. Before the fix this failed about one time in three."""
    services.source_update(source=demo_source, concurrency_per_host=2, delay_seconds=0.05)
    for attempt in range(3):
        workers = [
            start_worker(isolated_queue, tmp_path, f"share{attempt}{i}", CRAWL_BATCH_SIZE="6")
            for i in (1, 2)
        ]
        try:
            crawl = services.crawl_start(source=demo_source, workers=2)
            pages = Crawl.objects.filter(pk=crawl.pk).values_list("pages_done", flat=True)
            workers[0].wait_until(lambda: pages.get() >= 8, what="progress", timeout=60)  # noqa: B023
            services.crawl_cancel(crawl=crawl)
            crawl = wait_for_crawl(crawl, timeout=60)
        finally:
            for worker in workers:  # a warm stop: whatever batch was in flight is handled first
                worker.stop()
        assert crawl.status == Crawl.Status.CANCELLED
        assert_rebuilt_equal(crawl)


@real_crawls
def test_crawl_rebuild_equals_the_row_of_a_crawl_cancelled_while_queued(demo_source):
    crawl = services.crawl_start(source=demo_source, workers=0)  # no task: it stays queued
    assert services.crawl_rebuild(crawl_id=crawl.pk).differences == {}
    crawl = services.crawl_cancel(crawl=crawl)
    crawl.refresh_from_db()
    assert crawl.status == Crawl.Status.CANCELLED
    assert crawl.pages_total > 0
    assert_rebuilt_equal(crawl)


@real_crawls
def test_crawl_rebuild_equals_the_row_of_a_crawl_that_was_retried_then_failed(
    celery_worker, demo_source, board
):
    services.source_update(
        source=demo_source,
        start_urls=[f"{board.base_url}/no-such-page"],
        retry_max=1,
        retry_backoff_seconds=0,
    )
    crawl = wait_for_crawl(services.crawl_start(source=demo_source))
    assert (crawl.status, crawl.attempt) == (Crawl.Status.FAILED, 2)
    assert crawl.error == "no page could be fetched"
    types = list(CrawlEvent.objects.filter(crawl=crawl).values_list("type", flat=True))
    assert events.RETRYING in types
    assert crawl.errors.get("http_4xx", 0) >= 1
    comparison = assert_rebuilt_equal(crawl)
    assert "attempt" in comparison.compared


@real_crawls
def test_crawl_rebuild_equals_the_row_of_recrawls_and_of_a_degraded_crawl(
    celery_worker, demo_source, board
):
    first = wait_for_crawl(services.crawl_start(source=demo_source))
    second = wait_for_crawl(services.crawl_start(source=demo_source))  # mostly unchanged (304s)
    assert (first.status, second.status) == (Crawl.Status.SUCCEEDED, Crawl.Status.SUCCEEDED)
    assert second.items_unchanged > 0
    redesign(board, on=True)
    try:
        degraded = wait_for_crawl(services.crawl_start(source=demo_source))
    finally:
        redesign(board, on=False)
    assert degraded.status == Crawl.Status.DEGRADED
    assert degraded.quality["breaches"]  # the report, compared whole
    for crawl in (first, second, degraded):
        comparison = assert_rebuilt_equal(crawl)
        assert "quality" in comparison.compared
