"""Analytics selectors, the read model (incremental = rebuild), the cache and the commands."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
from decimal import Decimal

import pytest
from django.core.cache import cache as django_cache
from django.core.management import call_command
from django.utils import timezone

from analytics import cache, selectors, services, subscribers
from analytics.models import DepartmentDay
from crawls import events
from crawls import services as crawls_services
from crawls.engine.store import Item, bids_store
from crawls.models import Bid, Crawl, Source
from tests.crawling import wait_for_crawl
from tests.processes import http_get

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_stale_answers():
    """Cached answers of an earlier run may name the same workspace ids: drop them."""
    client = django_cache._cache.get_client(write=True)
    for key in client.scan_iter(match="*analytics:*"):
        client.delete(key)


def summary_rows(*, workspace_id: int) -> list[tuple]:
    """The read model of a workspace as sorted tuples, to compare."""
    return list(
        DepartmentDay.objects.filter(workspace_id=workspace_id)
        .order_by("source_id", "department", "day")
        .values_list("source_id", "department", "day", "bid_count", "total_amount", "max_views")
    )


def source_of(workspace, name="Board") -> Source:
    return Source.objects.create(
        workspace=workspace, name=name, start_urls=["https://example.org/"], rules={}
    )


def bid(
    source, n, *, department="Roads", days_ago=0, views=None, amount=None, post=True, **columns
):
    url = f"https://example.org/{source.pk}/{n}"
    now = timezone.now()
    return Bid.objects.create(
        workspace_id=source.workspace_id,
        source=source,
        url=url,
        url_hash=hashlib.md5(url.encode()).digest(),  # noqa: S324 - an id, not security
        title=f"Notice {n}",
        department=department,
        views=views,
        amount=None if amount is None else Decimal(amount),
        post_date=TODAY - dt.timedelta(days=days_ago) if post else None,
        content_hash="x",
        first_seen_at=now,
        last_seen_at=now,
        changed_at=now,
        **columns,
    )


@pytest.fixture
def seeded(workspace_a, workspace_b):
    """Two sources in A with known bids; one bid in B that must never show in A's answers."""
    board, portal = source_of(workspace_a, "Board"), source_of(workspace_a, "Portal")
    bid(board, 1, department="Roads", days_ago=0, views=500, amount="100")
    bid(board, 2, department="Roads", days_ago=1, views=5, amount="2000")
    bid(board, 3, department="Water", days_ago=1, views=50, amount="300")
    bid(portal, 4, department="Roads", days_ago=2, views=1000, amount=None)
    bid(portal, 5, department="Water", days_ago=9, views=900, amount="5000")  # outside 7 days
    bid(portal, 6, department="Parks", days_ago=0, views=None, amount="10")
    bid(portal, 7, department="Parks", post=False, views=10_000, amount="99999")  # no post date
    bid(source_of(workspace_b), 8, department="Roads", days_ago=0, views=10_000, amount="9")
    services.summary_rebuild(workspace_ids=[workspace_a.pk, workspace_b.pk])
    return board, portal


# --- Selectors against hand-computed answers ----------------------------------------------------


def test_high_value_by_department_counts_views_or_amount_above_the_thresholds(
    seeded, workspace_a, django_assert_num_queries
):
    with django_assert_num_queries(1):  # the GROUP BY over crawls_bid
        rows = selectors.high_value_by_department(
            workspace_id=workspace_a.pk, today=TODAY, days=7, min_views=100,
            min_amount=Decimal(1000), limit=10,
        )  # fmt: skip
    # views > 100 or amount > 1000 within 7 days: bids 1, 2 (Roads), 4 (Roads); 5 is too old.
    assert rows == [
        {"department": "Roads", "bids": 3, "total_amount": Decimal(2100), "max_views": 1000}
    ]
    only_views = selectors.high_value_by_department(
        workspace_id=workspace_a.pk, today=TODAY, days=10, min_views=40, min_amount=None, limit=10
    )
    assert [(r["department"], r["bids"]) for r in only_views] == [("Roads", 2), ("Water", 2)]


def test_amounts_of_other_currencies_are_neither_compared_nor_added(seeded, workspace_a, settings):
    board, _ = seeded
    bid(board, 20, department="Roads", views=1, amount="5000", currency="USD")
    bid(board, 21, department="Roads", views=1, amount="3000", currency="KRW")
    services.summary_rebuild(workspace_ids=[workspace_a.pk])
    rows = selectors.high_value_by_department(
        workspace_id=workspace_a.pk, today=TODAY, days=7, min_views=None,
        min_amount=Decimal(1000), limit=10,
    )  # fmt: skip
    # amount > 1000 in KRW (or none named): bids 2 and 21; the USD 5000 is not "above 1000 won".
    assert rows == [
        {"department": "Roads", "bids": 2, "total_amount": Decimal(5000), "max_views": 5}
    ]
    top = selectors.top_departments(workspace_id=workspace_a.pk, today=TODAY, days=7, limit=10)
    assert top[0] == {"department": "Roads", "total_amount": Decimal(5100), "bids": 5}
    settings.ANALYTICS_CURRENCY = "USD"  # another workspace's money: the rebuild re-sums
    services.summary_rebuild(workspace_ids=[workspace_a.pk])
    top = selectors.top_departments(workspace_id=workspace_a.pk, today=TODAY, days=7, limit=10)
    assert top[0] == {"department": "Roads", "total_amount": Decimal(7100), "bids": 5}


def test_a_batch_recomputes_amounts_in_one_currency(seeded, workspace_a):
    board, _ = seeded
    crawl = Crawl.objects.create(workspace_id=workspace_a.pk, source=board, status="running")
    usd = bid(board, 30, department="Parks", amount="70", currency="USD")
    services.summary_apply_items(
        workspace_id=workspace_a.pk, crawl_id=crawl.pk, new=[usd.pk], changed=[]
    )
    incremental = summary_rows(workspace_id=workspace_a.pk)
    services.summary_rebuild(workspace_ids=[workspace_a.pk])
    assert incremental == summary_rows(workspace_id=workspace_a.pk)
    parks_today = DepartmentDay.objects.get(
        workspace_id=workspace_a.pk, source=board, department="Parks", day=TODAY
    )
    assert (parks_today.bid_count, parks_today.total_amount) == (1, None)


def test_procurement_summary_counts_statuses_and_sums_each_currency(
    seeded, workspace_a, django_assert_num_queries
):
    board, portal = seeded
    bid(board, 40, status="cancelled", currency="USD", amount="10.5")
    bid(portal, 41, status="cancelled", currency="USD", amount="4", days_ago=3)
    bid(portal, 42, status="awarded", currency="EUR", amount=None, days_ago=30)  # outside
    with django_assert_num_queries(1):  # one scan, two groupings
        answer = selectors.procurement_summary(workspace_id=workspace_a.pk, today=TODAY, days=7)
    assert answer["by_status"] == [
        {"status": "active", "bids": 0},
        {"status": "cancelled", "bids": 2},
        {"status": "awarded", "bids": 0},
        {"status": "closed", "bids": 0},
        {"status": "unknown", "bids": 5},
    ]
    assert answer["by_currency"] == [
        {"currency": "", "bids": 5, "total_amount": Decimal(2410)},
        {"currency": "USD", "bids": 2, "total_amount": Decimal("14.50")},
    ]


def test_bids_per_day_by_department_and_by_source(seeded, workspace_a, django_assert_num_queries):
    board, _ = seeded
    with django_assert_num_queries(1):
        answer = selectors.bids_per_day(
            workspace_id=workspace_a.pk, today=TODAY, days=3, by="department", limit=10
        )
    assert answer["days"] == [TODAY - dt.timedelta(days=2), TODAY - dt.timedelta(days=1), TODAY]
    assert answer["totals"] == [1, 2, 2]
    assert [(s["key"], s["counts"]) for s in answer["series"]] == [
        ("Roads", [1, 1, 1]),
        ("Parks", [0, 0, 1]),
        ("Water", [0, 1, 0]),
    ]
    by_source = selectors.bids_per_day(
        workspace_id=workspace_a.pk, today=TODAY, days=3, by="source", limit=1
    )
    assert [(s["key"], s["label"], s["counts"]) for s in by_source["series"]] == [
        (board.pk, "Board", [0, 2, 1])
    ]
    assert by_source["totals"] == [1, 2, 2]  # every source counts in the totals


def test_top_departments_by_total_amount(seeded, workspace_a, django_assert_num_queries):
    with django_assert_num_queries(1):
        rows = selectors.top_departments(workspace_id=workspace_a.pk, today=TODAY, days=30, limit=2)
    assert rows == [
        {"department": "Water", "total_amount": Decimal(5300), "bids": 2},
        {"department": "Roads", "total_amount": Decimal(2100), "bids": 3},
    ]


def test_crawl_health_per_source(seeded, workspace_a, django_assert_num_queries):
    board, _ = seeded
    start = NOW - dt.timedelta(hours=5)

    def crawl(source, status, *, pages, seconds, errors=None, finished=True, created=start):
        return Crawl.objects.create(
            workspace=workspace_a, source=source, status=status, pages_done=pages,
            pages_failed=0, errors=errors or {}, created_at=created, started_at=created,
            finished_at=created + dt.timedelta(seconds=seconds) if finished else None,
        )  # fmt: skip

    crawl(board, "succeeded", pages=1, seconds=1, created=NOW - dt.timedelta(days=40))  # old
    crawl(board, "succeeded", pages=20, seconds=30, created=start - dt.timedelta(hours=1))
    last = crawl(board, "succeeded", pages=100, seconds=10, errors={"http_4xx": 2})
    crawl(board, "failed", pages=0, seconds=10, errors={"http_4xx": 1, "timeout": 3})
    crawl(board, "degraded", pages=30, seconds=10)  # finished, not a success (docs/quality.md)
    crawl(board, "running", pages=7, seconds=0, finished=False)
    with django_assert_num_queries(1):
        rows = selectors.crawl_health(workspace_id=workspace_a.pk, now=NOW, days=30)
    assert [r["source_name"] for r in rows] == ["Board", "Portal"]
    assert rows[0] == {
        "source": board.pk, "source_name": "Board", "crawls": 5, "succeeded": 2, "degraded": 1,
        "finished": 4, "success_rate": 0.5, "pages_per_second": 2.5,  # 150 pages in 60 s
        "errors": {"timeout": 3, "http_4xx": 3}, "last_success_at": last.finished_at,
    }  # fmt: skip
    assert rows[1]["crawls"] == 0
    assert rows[1]["success_rate"] is None
    assert rows[1]["last_success_at"] is None


# --- The read model -----------------------------------------------------------------------------


def test_rebuild_counts_bids_per_source_department_and_day(seeded, workspace_a):
    board, portal = seeded
    rows = summary_rows(workspace_id=workspace_a.pk)
    assert (board.pk, "Roads", TODAY, 1, Decimal(100), 500) in rows
    assert (portal.pk, "Parks", TODAY, 1, Decimal(10), None) in rows
    assert len(rows) == 6  # bid 7 has no post date; B's bid is B's
    assert DepartmentDay.objects.count() == 7


def item(n: int, **fields) -> Item:
    url = f"https://board.example/{n}"
    return Item(
        url=url,
        url_hash=hashlib.md5(url.encode()).digest(),  # noqa: S324 - an id, not security
        fields={"title": f"Notice {n}", **fields},
        content_hash=hashlib.md5(repr(sorted(fields.items())).encode()).hexdigest(),  # noqa: S324
    )


def crawl_batch(crawl: Crawl, items: list[Item], captured, *, event=True):
    """Store one batch as the engine does and append its crawl.items event; commit callbacks
    (the subscribers) run."""
    with captured(execute=True):
        stored = bids_store(
            crawl_id=crawl.pk, source_id=crawl.source_id, workspace_id=crawl.workspace_id,
            items=items, now=timezone.now(),
        )  # fmt: skip
        if event:
            events.event_append(
                crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.ITEMS,
                payload={"new": stored.new, "changed": stored.changed},
            )  # fmt: skip
    return stored


def random_fields(rng: random.Random) -> dict:
    return {
        "department": rng.choice(["Roads", "Water", "Parks", ""]),
        "post_date": rng.choice([None, *(TODAY - dt.timedelta(days=d) for d in range(4))]),
        "views": rng.choice([None, rng.randrange(0, 2000)]),
        "amount": rng.choice([None, Decimal(rng.randrange(0, 10_000))]),
    }


def test_incremental_read_model_equals_a_rebuild_after_random_crawls(
    workspace_a, django_capture_on_commit_callbacks
):
    rng = random.Random(20261123)  # noqa: S311 - test data, reproducible
    source = source_of(workspace_a)
    for round_ in range(6):
        crawl = Crawl.objects.create(workspace=workspace_a, source=source, status="running")
        numbers = rng.sample(range(40), 25)
        for start in range(0, len(numbers), 10):  # batches of 10, several per crawl
            batch = [item(n, **random_fields(rng)) for n in numbers[start : start + 10]]
            stored = crawl_batch(crawl, batch, django_capture_on_commit_callbacks)
        if round_:
            assert stored.changed  # later rounds change bids, moving them between keys
        incremental = summary_rows(workspace_id=workspace_a.pk)
        services.summary_rebuild(workspace_ids=[workspace_a.pk])
        assert incremental == summary_rows(workspace_id=workspace_a.pk), round_
    assert incremental  # something was counted


def test_a_batch_applies_in_one_statement_whatever_its_size(
    workspace_a, django_capture_on_commit_callbacks, django_assert_num_queries
):
    source = source_of(workspace_a)
    crawl = Crawl.objects.create(workspace=workspace_a, source=source, status="running")
    rng = random.Random(60)  # noqa: S311 - test data, reproducible
    batch = [item(n, **random_fields(rng)) for n in range(60)]
    stored = crawl_batch(crawl, batch, django_capture_on_commit_callbacks, event=False)
    # savepoint, the advisory lock with index-only planning, the recompute (INSERT … ON CONFLICT
    # + DELETE), release
    with django_assert_num_queries(4):
        keys = services.summary_apply_items(
            workspace_id=workspace_a.pk, crawl_id=crawl.pk, new=stored.new, changed=[]
        )
    assert keys == DepartmentDay.objects.filter(workspace=workspace_a).count() > 0


def test_a_final_event_repairs_a_missed_batch_event(
    workspace_a, django_capture_on_commit_callbacks
):
    source = source_of(workspace_a)
    first = Crawl.objects.create(workspace=workspace_a, source=source, status="running")
    crawl_batch(first, [item(1, department="Roads", post_date=TODAY)],
                django_capture_on_commit_callbacks)  # fmt: skip
    second = Crawl.objects.create(workspace=workspace_a, source=source, status="running")
    # The bid moves to another department and day, and the batch event is lost.
    crawl_batch(second, [item(1, department="Water", post_date=TODAY - dt.timedelta(days=1))],
                django_capture_on_commit_callbacks, event=False)  # fmt: skip
    assert summary_rows(workspace_id=workspace_a.pk) == [(source.pk, "Roads", TODAY, 1, None, None)]
    with django_capture_on_commit_callbacks(execute=True):
        events.event_append(crawl_id=second.pk, workspace_id=workspace_a.pk, type=events.SUCCEEDED)
    assert summary_rows(workspace_id=workspace_a.pk) == [
        (source.pk, "Water", TODAY - dt.timedelta(days=1), 1, None, None)
    ]


def test_the_subscriber_ignores_other_events(workspace_a):
    source = source_of(workspace_a)
    crawl = Crawl.objects.create(workspace=workspace_a, source=source, status="running")
    before = cache.generation(workspace_id=workspace_a.pk)
    event = events.CrawlEvent(
        crawl=crawl, workspace=workspace_a, sequence=1, type=events.PROGRESS, payload={}
    )
    subscribers.crawl_event(event)
    assert cache.generation(workspace_id=workspace_a.pk) == before


# --- Cache --------------------------------------------------------------------------------------


def test_answers_are_cached_until_a_crawl_changes_items(
    workspace_a, django_capture_on_commit_callbacks
):
    source = source_of(workspace_a)
    today = timezone.localdate()
    crawl = Crawl.objects.create(workspace=workspace_a, source=source, status="running")
    crawl_batch(crawl, [item(1, department="Roads", post_date=today, amount=Decimal(5))],
                django_capture_on_commit_callbacks)  # fmt: skip
    calls = []

    def compute():
        calls.append(1)
        return selectors.top_departments(workspace_id=workspace_a.pk, today=today, days=7, limit=5)

    def answer():
        return cache.cached(
            workspace_id=workspace_a.pk, name="top", params={"days": 7}, compute=compute
        )

    assert answer()[0]["total_amount"] == Decimal(5)
    assert answer()[0]["total_amount"] == Decimal(5)
    assert len(calls) == 1  # the second came from the cache
    crawl_batch(crawl, [item(2, department="Roads", post_date=today, amount=Decimal(7))],
                django_capture_on_commit_callbacks)  # fmt: skip
    assert answer()[0]["total_amount"] == Decimal(12)
    assert len(calls) == 2


def test_no_cache_when_its_lifetime_is_zero(workspace_a, settings):
    settings.ANALYTICS_CACHE_SECONDS = 0
    calls = []
    for _ in range(2):
        cache.cached(
            workspace_id=workspace_a.pk, name="n", params={}, compute=lambda: calls.append(1)
        )
    assert len(calls) == 2


# --- Commands -----------------------------------------------------------------------------------


def test_analytics_rebuild_repairs_one_workspace_or_all(seeded, workspace_a, workspace_b):
    expected_a = summary_rows(workspace_id=workspace_a.pk)
    expected_b = summary_rows(workspace_id=workspace_b.pk)
    DepartmentDay.objects.all().update(bid_count=99)
    DepartmentDay.objects.filter(workspace=workspace_a).first().delete()
    out = io.StringIO()
    call_command("analytics_rebuild", "--workspace", str(workspace_a.pk), stdout=out)
    assert "Rebuilt 6 rows for 1 workspace" in out.getvalue()
    assert summary_rows(workspace_id=workspace_a.pk) == expected_a
    assert summary_rows(workspace_id=workspace_b.pk) != expected_b
    call_command("analytics_rebuild", stdout=out)
    assert summary_rows(workspace_id=workspace_b.pk) == expected_b


def test_analytics_explain_prints_a_plan_of_every_query(seeded, workspace_a):
    out = io.StringIO()
    call_command("analytics_explain", "--workspace", str(workspace_a.pk), stdout=out)
    text = out.getvalue()
    titles = ("high-value", "bids-per-day by source", "top-departments", "crawl-health",
              "bids list (-views)", "bids list (department)", "bids list (search)")  # fmt: skip
    for title in titles:
        assert f"== {title}" in text
    assert text.count("Execution Time") == 11  # 5 analytics, 5 bids lists, 1 batch
    assert "== read model: one crawl.items batch" in text
    assert "analytics_departmentday" in text


# --- End to end: real crawls of the demo board --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_real_crawls_and_a_recrawl_keep_the_read_model_equal_to_a_rebuild(
    celery_worker, demo_source, board
):
    """The worker's subscriber applies each batch (and the final event) as the board changes."""
    workspace_id = demo_source.workspace_id
    for epoch in (0, 1, 2):
        assert http_get(f"{board.base_url}/_control/epoch?set={epoch}")[0] == 200
        crawl = wait_for_crawl(crawls_services.crawl_start(source=demo_source))
        assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
        incremental = summary_rows(workspace_id=workspace_id)
        services.summary_rebuild(workspace_ids=[workspace_id])
        assert incremental == summary_rows(workspace_id=workspace_id), epoch
    assert (
        sum(row[3] for row in incremental)
        == Bid.objects.filter(source=demo_source, post_date__isnull=False).count()
    )
    assert crawl.items_changed  # the last crawl moved bids between keys
