"""At-least-once delivery of crawl events to the subscribers (crawls/subscribers.py): positions,
the catch-up, and real workers that die or lose Redis between a batch's commit and its
subscribers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Count
from django.utils import timezone

from analytics import services as analytics_services
from analytics.models import DepartmentDay
from crawls import events, services, subscribers
from crawls.models import Bid, Crawl, CrawlEvent, SubscriberCursor
from crawls.tasks import crawl_run_task
from notifications import services as notification_services
from notifications.models import AlertMatch, Notification
from project.celery import app as celery_app
from tests import factories, faults
from tests.crawling import start_worker, wait_for_crawl
from tests.processes import Program, RedisServer, program_env, python, wait_until

NOTIFY = "notifications.subscribers.crawl_event"
ANALYTICS = "analytics.subscribers.crawl_event"
FLAKY = "tests.faults.flaky"
RECORD = "tests.faults.record"


@pytest.fixture
def fault_subscribers(settings):
    """The subscribers of this process: the flaky one first, then the recorder."""
    settings.CRAWL_EVENT_SUBSCRIBERS = [FLAKY, RECORD]
    faults.failing["flaky"] = False
    faults.recorded.clear()
    faults.recorded_flaky.clear()
    yield
    faults.failing["flaky"] = False


def positions(crawl: Crawl) -> dict[str, int]:
    return dict(SubscriberCursor.objects.filter(crawl=crawl).values_list("subscriber", "position"))


def append(crawl: Crawl, captured, type: str = events.PROGRESS) -> CrawlEvent:
    with captured(execute=True):
        return events.event_append(crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=type)


# --- Positions, in-process ------------------------------------------------------------------


def test_subscribers_deliver_keeps_a_failing_subscriber_behind_without_blocking_others(
    source_a, fault_subscribers, django_capture_on_commit_callbacks, django_assert_num_queries
):
    crawl = factories.start_crawl(source_a)  # its crawl.queued event: delivered, in this test
    faults.failing["flaky"] = True
    for _ in range(3):
        append(crawl, django_capture_on_commit_callbacks)
    crawl.refresh_from_db()
    sequences = list(range(1, crawl.event_seq + 1))
    assert crawl.event_seq == 4
    assert faults.recorded == [(crawl.pk, s) for s in sequences]
    assert faults.recorded_flaky == []
    assert positions(crawl) == {RECORD: 4, FLAKY: 0}

    faults.failing["flaky"] = False
    assert subscribers.subscribers_catch_up() == {crawl.pk: {FLAKY: 4}}
    assert faults.recorded_flaky == [(crawl.pk, s) for s in sequences]
    assert faults.recorded == [(crawl.pk, s) for s in sequences]  # nothing twice
    assert positions(crawl) == {RECORD: 4, FLAKY: 4}
    # Nobody behind: the one query that looks finds nothing.
    with django_assert_num_queries(1):
        assert subscribers.subscribers_catch_up() == {}


def test_a_subscriber_failing_mid_log_resumes_at_the_event_it_failed_on(
    source_a, fault_subscribers, django_capture_on_commit_callbacks
):
    crawl = factories.start_crawl(source_a)
    append(crawl, django_capture_on_commit_callbacks)
    faults.failing["flaky"] = True
    append(crawl, django_capture_on_commit_callbacks)
    faults.failing["flaky"] = False  # the next event's delivery takes the one that failed too
    append(crawl, django_capture_on_commit_callbacks)
    assert faults.recorded_flaky == [(crawl.pk, 1), (crawl.pk, 2), (crawl.pk, 3), (crawl.pk, 4)]
    assert positions(crawl) == {RECORD: 4, FLAKY: 4}


def test_subscribers_behind_keeps_to_the_window(source_a, fault_subscribers):
    now = timezone.now()
    running = {"status": Crawl.Status.RUNNING}
    lately = {"status": Crawl.Status.SUCCEEDED, "finished_at": now - dt.timedelta(hours=1)}
    long_ago = {"status": Crawl.Status.FAILED, "finished_at": now - dt.timedelta(hours=10)}
    active, recent, old, caught_up = (
        Crawl.objects.create(workspace=source_a.workspace, source=source_a, **values)
        for values in (running, lately, long_ago, lately)
    )
    for crawl in (active, recent, old, caught_up):  # one event each, its callbacks not run
        events.event_append(crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type="page.error")
    SubscriberCursor.objects.create(subscriber=FLAKY, crawl=caught_up, position=1)
    SubscriberCursor.objects.create(subscriber=RECORD, crawl=caught_up, position=1)
    SubscriberCursor.objects.create(subscriber=RECORD, crawl=recent, position=1)

    behind = subscribers.subscribers_behind(window_seconds=6 * 3600)
    assert behind == {active.pk: [FLAKY, RECORD], recent.pk: [FLAKY]}
    # One crawl on request, whatever its age (manage.py subscribers_catch_up --crawl).
    assert subscribers.subscribers_behind(crawl_id=old.pk) == {old.pk: [FLAKY, RECORD]}
    assert subscribers.subscribers_behind(crawl_id=caught_up.pk) == {}
    assert subscribers.subscribers_catch_up(crawl_id=old.pk) == {old.pk: {FLAKY: 1, RECORD: 1}}


@pytest.mark.django_db(transaction=True)
def test_processes_delivering_one_crawl_at_once_give_each_event_once_in_order(
    source_a, settings, tmp_path
):
    settings.CRAWL_EVENT_SUBSCRIBERS = []  # the log is written first, delivered by the others
    crawl = factories.start_crawl(source_a)
    for _ in range(79):
        events.event_append(crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type="page.error")
    record_file = tmp_path / "record.txt"
    env = program_env(
        CRAWL_EVENT_SUBSCRIBERS=f"{FLAKY},{RECORD}",
        FLAKY_ALWAYS="1",  # fails on every event: the recorder goes on regardless
        RECORD_FILE=str(record_file),
        RECORD_SLEEP="0.02",
    )
    programs = [
        Program(
            python("manage.py", "subscribers_catch_up", "--crawl", str(crawl.pk)),
            env=env,
            log=tmp_path / f"catch-up-{n}.log",
        )
        for n in range(3)
    ]
    for program in programs:
        assert program.proc.wait(120) == 0, program.output()
        program.stop()
    lines = [line.split() for line in record_file.read_text().splitlines()]
    assert [int(sequence) for _, sequence, _ in lines] == list(range(1, 81))
    assert {int(crawl_id) for crawl_id, _, _ in lines} == {crawl.pk}
    assert positions(crawl) == {RECORD: 80, FLAKY: 0}
    assert all("flaky subscriber refuses" in program.output() for program in programs)


# --- Real workers -------------------------------------------------------------------------------


def everything_rule(workspace, owner):
    return notification_services.alert_rule_create(
        workspace_id=workspace.pk, owner=owner, name="everything", filter={}
    )


def assert_matched_exactly_once(rule, crawl, source) -> None:
    """Every bid the crawl stored matched once; the rule's notification counted each once."""
    per_bid = dict(
        AlertMatch.objects.filter(rule=rule, crawl=crawl)
        .values_list("bid_id")
        .annotate(n=Count("id"))
    )
    bids = set(Bid.objects.filter(source=source).values_list("id", flat=True))
    assert bids
    assert set(per_bid) == bids
    assert set(per_bid.values()) == {1}
    notification = Notification.objects.get(
        kind=Notification.Kind.ALERT_MATCHED, rule=rule, crawl=crawl
    )
    assert notification.count == len(bids)


def wait_for_positions(crawl: Crawl, paths: list[str]) -> None:
    """Every subscriber in `paths` took the crawl's whole log (its final event is delivered
    after the crawl's status commits)."""
    wait_until(
        lambda: (
            positions(crawl) == {path: Crawl.objects.get(pk=crawl.pk).event_seq for path in paths}
        ),
        what="subscribers at the end of the log",
        details=lambda: f"{positions(crawl)} of {Crawl.objects.get(pk=crawl.pk).event_seq}",
    )


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_worker_died_before_its_subscribers_is_matched_before_the_crawl_ends(
    owner, workspace_a, demo_source, board, isolated_queue, tmp_path
):
    rule = everything_rule(workspace_a, owner)
    services.source_update(source=demo_source, concurrency_per_host=1, delay_seconds=0.1)
    marker = tmp_path / "exited"
    worker = start_worker(
        isolated_queue, tmp_path, "doomed",
        CRAWL_BATCH_SIZE="4",
        CRAWL_EVENT_SUBSCRIBERS=f"tests.faults.exit_once_on_items,{NOTIFY},{ANALYTICS}",
        FAULT_MARKER=str(marker),
        CRAWL_LEASE_SECONDS="3",
    )  # fmt: skip
    try:
        crawl = services.crawl_start(source=demo_source)
        worker.wait_until(marker.exists, what="the worker's pool process killed", timeout=60)
        # Killed right after the first batch committed, before any subscriber took it.
        first = CrawlEvent.objects.filter(crawl=crawl, type=events.ITEMS).earliest("sequence")
        first_bids = [*first.payload["new"], *first.payload["changed"]]
        assert first_bids
        assert not AlertMatch.objects.filter(crawl=crawl, bid_id__in=first_bids).exists()

        # The worker's pool replaces the process and the crawl goes on; if its task message was
        # lost with the process, the stall sweep sends it again.
        def resumed() -> bool:
            if CrawlEvent.objects.filter(crawl=crawl, sequence__gt=first.sequence).exists():
                return True
            services.crawl_sweep(stall_seconds=5)
            return False

        wait_until(resumed, what="the crawl resumed", timeout=90)
        crawl = wait_for_crawl(crawl)
        assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
        paths = ["tests.faults.exit_once_on_items", NOTIFY, ANALYTICS]
        wait_for_positions(crawl, paths)
    finally:
        worker.stop()
    assert_matched_exactly_once(rule, crawl, demo_source)
    # The lost batch was matched from the log by the next delivery, before the crawl ended.
    final = CrawlEvent.objects.filter(crawl=crawl, type__in=events.FINAL_TYPES).get()
    first_matched = AlertMatch.objects.filter(crawl=crawl, bid_id__in=first_bids)
    assert first_matched.count() == len(set(first_bids))
    assert max(first_matched.values_list("created_at", flat=True)) < final.created_at


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def read_model(workspace) -> list[tuple]:
    return list(
        DepartmentDay.objects.filter(workspace=workspace)
        .order_by("source_id", "department", "day")
        .values_list("source_id", "department", "day", "bid_count", "total_amount", "max_views")
    )


@pytest.mark.django_db(transaction=True)
def test_subscribers_failing_through_a_redis_outage_catch_up_afterwards(
    owner, workspace_a, demo_source, board, own_redis, tmp_path
):
    rule = everything_rule(workspace_a, owner)
    services.source_update(source=demo_source, concurrency_per_host=1, delay_seconds=0.3)
    worker = start_worker(
        "celery", tmp_path, "outage", REDIS_URL=own_redis.url, CRAWL_BATCH_SIZE="4"
    )
    try:
        crawl = services.crawl_start(source=demo_source, workers=0)
        with celery_app.connection_for_write(own_redis.url) as conn:
            crawl_run_task.apply_async((crawl.pk,), connection=conn, queue="celery")
        worker.wait_until(
            lambda: Crawl.objects.get(pk=crawl.pk).pages_done >= 8, what="progress", timeout=90
        )

        own_redis.kill()
        killed_at = Crawl.objects.get(pk=crawl.pk).event_seq
        items = CrawlEvent.objects.filter(crawl=crawl, type=events.ITEMS, sequence__gt=killed_at)
        worker.wait_until(lambda: items.count() >= 2, what="batches in the outage", timeout=90)
        second = items.order_by("sequence")[1].sequence
        # Matching needs PostgreSQL only: it keeps up. Analytics' cache bump fails: it stays
        # before the outage's first batch, whatever comes after.
        wait_until(lambda: positions(crawl)[NOTIFY] >= second, what="matching kept up")
        assert positions(crawl)[ANALYTICS] < items.order_by("sequence")[0].sequence
        assert "subscriber analytics.subscribers.crawl_event failed" in worker.output()
        own_redis.start()

        crawl = wait_for_crawl(crawl, timeout=180)
        assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
        wait_for_positions(crawl, [NOTIFY, ANALYTICS])
    finally:
        worker.stop()
    assert_matched_exactly_once(rule, crawl, demo_source)
    incremental = read_model(workspace_a)
    analytics_services.summary_rebuild(workspace_ids=[workspace_a.pk])
    assert incremental == read_model(workspace_a)
    assert incremental


def test_the_catch_up_is_on_beats_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["crawls-subscribers-catch-up"]
    assert entry["task"] == "crawls.subscribers_catch_up"
    assert entry["schedule"] == settings.SUBSCRIBER_CATCH_UP_SECONDS
    assert "crawls.subscribers_catch_up" in celery_app.tasks
