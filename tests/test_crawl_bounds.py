"""Nothing a page does holds a crawl: cancel is bounded, pages that keep killing or stalling
their worker are given up, and a crawl that keeps going silent is not revived forever."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import F
from django.utils import timezone

from crawls import events, services
from crawls.engine import frontier, urls
from crawls.models import Crawl, CrawlEvent, FrontierUrl
from tests.crawling import assert_exactly_expected, start_worker, wait_for_crawl

pytestmark = pytest.mark.django_db(transaction=True)


def _expire_leases(crawl: Crawl) -> None:
    """What the clock does to the leases of a worker that died holding them."""
    FrontierUrl.objects.filter(crawl=crawl, state="leased").update(
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )


def _frontier(crawl: Crawl, count: int) -> list[str]:
    links = [
        frontier.Link(url, urls.url_hash(url), 1, "item")
        for url in (f"https://board.example/notice/{i}" for i in range(count))
    ]
    frontier.frontier_add(
        crawl_id=crawl.pk, workspace_id=crawl.workspace_id, links=links, room=count
    )
    return [link.url for link in links]


def test_urls_of_a_dead_workers_batch_are_retried_one_at_a_time_and_given_up(demo_source, settings):
    crawl = services.crawl_start(source=demo_source, workers=0)
    FrontierUrl.objects.filter(crawl=crawl).delete()
    added = _frontier(crawl, 5)
    claim = {"crawl_id": crawl.pk, "limit": 10, "lease_seconds": 60}

    first = frontier.frontier_claim(owner="dead", **claim)
    assert [c.url for c in first] == added  # a normal batch
    _expire_leases(crawl)  # the worker died holding all five

    # Each suspect comes back alone, so that the page that kills workers blames only itself.
    suspect = frontier.frontier_claim(owner="next", **claim)
    assert [c.url for c in suspect] == added[:1]
    assert suspect[0].attempts == 2
    frontier.frontier_finish(
        owner="next", outcomes=[frontier.Outcome(suspect[0].id, "done", 200, "")]
    )
    for url in added[1:]:
        (alone,) = frontier.frontier_claim(owner="next", **claim)
        assert alone.url == url
        if url != added[-1]:
            frontier.frontier_finish(
                owner="next", outcomes=[frontier.Outcome(alone.id, "done", 200, "")]
            )
    # The last one keeps killing its worker: after CRAWL_URL_MAX_ATTEMPTS it is given up.
    for _ in range(settings.CRAWL_URL_MAX_ATTEMPTS - 2):
        _expire_leases(crawl)
        assert [c.url for c in frontier.frontier_claim(owner="next", **claim)] == added[-1:]
    _expire_leases(crawl)
    assert frontier.frontier_give_up(
        crawl_id=crawl.pk, max_attempts=settings.CRAWL_URL_MAX_ATTEMPTS
    ) == [added[-1]]
    poison = FrontierUrl.objects.get(crawl=crawl, url=added[-1])
    assert poison.state == "failed"
    assert poison.error.startswith("gave_up:")
    assert frontier.frontier_claim(owner="next", **claim) == []


def test_a_crawl_reports_the_url_it_gave_up_and_finishes_the_rest(
    demo_source, board, isolated_queue, tmp_path, settings
):
    crawl = services.crawl_start(source=demo_source, workers=0)
    (poison,) = _frontier(crawl, 1)  # an off-board URL: had it been fetched, it would fail
    FrontierUrl.objects.filter(crawl=crawl, url=poison).update(
        state="leased",
        lease_owner="a worker that died",
        attempts=settings.CRAWL_URL_MAX_ATTEMPTS,
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
    )
    worker = start_worker(isolated_queue, tmp_path, "poison")
    try:
        services._enqueue(crawl.pk)
        crawl = wait_for_crawl(crawl)
    finally:
        worker.stop()
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    assert crawl.errors["gave_up"] == 1
    given_up = FrontierUrl.objects.get(crawl=crawl, url=poison)
    assert given_up.state == "failed"
    assert given_up.error.startswith("gave_up:")
    reported = CrawlEvent.objects.filter(crawl=crawl, type=events.PAGE_ERROR)
    assert [e.payload["url"] for e in reported if e.payload["class"] == "gave_up"] == [poison]
    assert_exactly_expected(demo_source, board, crawl)


def test_the_sweep_gives_up_a_crawl_that_keeps_going_silent(demo_source, isolated_queue, settings):
    crawl = services.crawl_start(source=demo_source, workers=0)
    stale = timezone.now() - dt.timedelta(hours=1)
    for revival in range(1, settings.CRAWL_MAX_REVIVALS + 1):
        Crawl.objects.filter(pk=crawl.pk).update(heartbeat_at=stale)
        assert services.crawl_sweep(stall_seconds=60) == [crawl.pk]
        assert Crawl.objects.get(pk=crawl.pk).revivals == revival
    FrontierUrl.objects.filter(crawl=crawl).update(
        state="leased", lease_owner="gone", lease_expires_at=timezone.now()
    )
    Crawl.objects.filter(pk=crawl.pk).update(heartbeat_at=stale, attempt=F("attempt"))
    assert services.crawl_sweep(stall_seconds=60) == []
    crawl.refresh_from_db()
    assert crawl.status == Crawl.Status.FAILED
    assert crawl.error.startswith("gave up: its worker went silent")
    assert not FrontierUrl.objects.filter(crawl=crawl, state="leased").exists()
    last = CrawlEvent.objects.filter(crawl=crawl).order_by("-sequence").first()
    assert last.type == events.FAILED
    assert services.crawl_sweep(stall_seconds=0) == []  # finished: never revived again


def test_cancel_ends_a_crawl_whose_page_is_still_downloading(
    workspace_a, board, isolated_queue, tmp_path
):
    """The only page answers after a minute and the request timeout is longer still: only a
    cancel that does not wait for the batch can end this crawl while the page downloads."""
    slow = f"{board.base_url}/hostile/slow-headers"
    source = services.source_create(
        workspace=workspace_a,
        name="slow board",
        start_urls=[slow],
        rules={"items": ["a"], "fields": {"title": "h1"}},
        obey_robots=False,
    )
    worker = start_worker(
        isolated_queue, tmp_path, "cancel-slow", CRAWL_REQUEST_TIMEOUT="600", CRAWL_RETRIES="0"
    )
    try:
        crawl = services.crawl_start(source=source)
        worker.wait_until(
            lambda: FrontierUrl.objects.filter(crawl=crawl, state="leased").exists(),
            what="the slow page claimed",
            timeout=60,
        )
        services.crawl_cancel(crawl=crawl)
        crawl = wait_for_crawl(crawl, timeout=40)  # the page itself answers after 60 s
    finally:
        worker.stop()
    assert crawl.status == Crawl.Status.CANCELLED
    page = FrontierUrl.objects.get(crawl=crawl, url=slow)
    assert page.state == "queued"  # given back, never fetched
    assert page.fetched_at is None
